//! `ServerConnection`: what a worker drives for one client — transport + (later) user
//! authentication + connection protocol, sans-IO. STUB API.

use crate::transport::{CryptoJob, DisconnectReason, JobDone, TransportConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Everything a server connection needs to know; immutable, shared by all connections that
/// started under it (SIGHUP builds a new one for new connections).
pub struct ServerConfig {
    pub transport: TransportConfig,
    /// Time from accept until authentication must have succeeded.
    pub login_grace_time: std::time::Duration,
}

/// What happened, for the runtime to act on or log.
pub enum Event {
    /// Run this on the crypto pool and feed the result to `handle_job_done`.
    Job(CryptoJob),
    /// A key exchange finished (first or rekey); algorithms as negotiated.
    KexDone(KexSummary),
    /// The peer asked for and we accepted a service (`ssh-userauth`).
    ServiceAccepted(&'static str),
    /// User authentication succeeded.
    Authenticated { user: String, method: &'static str },
    /// The connection is over. `by_peer`: the peer sent DISCONNECT (or closed) rather than us.
    /// Flush what `poll_transmit` still gives, then close the socket.
    Closed {
        code: u32,
        reason: String,
        by_peer: bool,
    },
    /// Something worth a log line (DEBUG with always_display, an ignored oddity).
    Log(String),
}

/// Negotiated algorithms and timing of one key exchange.
#[derive(Debug, Clone)]
pub struct KexSummary {
    pub first: bool,
    pub kex: &'static str,
    pub host_key: &'static str,
    pub cipher_in: &'static str,
    pub cipher_out: &'static str,
    pub mac_in: &'static str,
    pub mac_out: &'static str,
    pub compression_in: &'static str,
    pub compression_out: &'static str,
    /// From the first byte of the exchange (KEXINIT) to NEWKEYS both ways.
    pub duration: std::time::Duration,
}

/// One client connection's protocol state. STUB.
pub struct ServerConnection {}

impl ServerConnection {
    /// Stages our version line (and KEXINIT) for `poll_transmit`.
    pub fn new(_config: Arc<ServerConfig>, _peer: SocketAddr, _now: Instant) -> Self {
        todo!()
    }

    /// Consumes as much of `input` as it can and returns how many bytes it used; the rest must be
    /// presented again (with more appended) next time. Stops early while a crypto job is in flight
    /// or output is backed up. On a protocol error a DISCONNECT is staged, `Event::Closed` is
    /// queued and all further input is discarded.
    pub fn handle_input(&mut self, _input: &mut [u8], _now: Instant) -> usize {
        todo!()
    }

    pub fn handle_job_done(&mut self, _done: JobDone, _now: Instant) {
        todo!()
    }

    /// Call when `poll_timeout`'s deadline has passed.
    pub fn handle_timeout(&mut self, _now: Instant) {
        todo!()
    }

    /// Appends every sealed byte ready to send to `out`.
    pub fn poll_transmit(&mut self, _out: &mut Vec<u8>) {
        todo!()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        todo!()
    }

    /// The next deadline (login grace, KEX timeout, rekey by time), if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!()
    }

    /// Ends the connection from our side: stages DISCONNECT(reason, description).
    pub fn close(&mut self, _reason: DisconnectReason, _description: &str, _now: Instant) {
        todo!()
    }

    /// False while the core cannot take more input (job in flight, output backed up): the
    /// runtime stops reading this socket until it turns true.
    pub fn wants_input(&self) -> bool {
        todo!()
    }

    /// True once the connection is over; close the socket after the output is flushed.
    pub fn is_closed(&self) -> bool {
        todo!()
    }

    pub fn is_authenticated(&self) -> bool {
        todo!()
    }

    /// Whether a key exchange is running (e.g. for the runtime's drain decisions).
    pub fn is_handshaking(&self) -> bool {
        todo!()
    }
}
