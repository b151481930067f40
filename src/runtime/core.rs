//! The contract between a worker and the protocol core it drives.
//!
//! It is exactly `ServerConnection`'s API; the trait exists so the worker's event loop (reads,
//! writes, timers, close and drain) can be tested with a small fake core, independently of the
//! protocol.

use crate::server::{Event, ServerConnection};
use crate::transport::{DisconnectReason, JobDone};
use std::time::Instant;

pub trait Core {
    fn handle_input(&mut self, input: &mut [u8], now: Instant) -> usize;
    fn handle_job_done(&mut self, done: JobDone, now: Instant);
    fn handle_timeout(&mut self, now: Instant);
    fn poll_transmit(&mut self, out: &mut Vec<u8>);
    fn poll_event(&mut self) -> Option<Event>;
    fn poll_timeout(&self) -> Option<Instant>;
    fn close(&mut self, reason: DisconnectReason, description: &str, now: Instant);
    fn wants_input(&self) -> bool;
    fn is_closed(&self) -> bool;
    fn is_authenticated(&self) -> bool;
    /// The peer closed its end (EOF) without a DISCONNECT.
    fn peer_closed(&mut self, now: Instant) {
        self.close(DisconnectReason::ConnectionLost, "connection closed by peer", now);
    }
}

impl Core for ServerConnection {
    fn handle_input(&mut self, input: &mut [u8], now: Instant) -> usize {
        ServerConnection::handle_input(self, input, now)
    }
    fn handle_job_done(&mut self, done: JobDone, now: Instant) {
        ServerConnection::handle_job_done(self, done, now)
    }
    fn handle_timeout(&mut self, now: Instant) {
        ServerConnection::handle_timeout(self, now)
    }
    fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        ServerConnection::poll_transmit(self, out)
    }
    fn poll_event(&mut self) -> Option<Event> {
        ServerConnection::poll_event(self)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        ServerConnection::poll_timeout(self)
    }
    fn close(&mut self, reason: DisconnectReason, description: &str, now: Instant) {
        ServerConnection::close(self, reason, description, now)
    }
    fn wants_input(&self) -> bool {
        ServerConnection::wants_input(self)
    }
    fn is_closed(&self) -> bool {
        ServerConnection::is_closed(self)
    }
    fn is_authenticated(&self) -> bool {
        ServerConnection::is_authenticated(self)
    }
    fn peer_closed(&mut self, _now: Instant) {
        ServerConnection::peer_closed(self)
    }
}
