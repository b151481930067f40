//! The contract between a worker and the protocol core it drives.
//!
//! Why a trait and not `ServerConnection` itself: it is what lets the worker's event loop
//! (reads, writes, timers, buffer budget, close and drain) be tested with a small fake core
//! (`worker_tests.rs`, a line echo), apart from the protocol. That is its only reason; there is
//! one real implementation. So the trait is `ServerConnection`'s API as the worker uses it,
//! the impl below only forwards to it, and every method a fake need not care about (channels,
//! routes, penalties, output lending) has a default fit for a fake.

use crate::connection::{ChannelId, DataSink, ExitStatus, ForwardError, ListenerId};
use crate::server::{Event, ServerConnection, ServerJobDone};
use crate::transport::DisconnectReason;
use std::time::Instant;

pub trait Core {
    fn handle_input(&mut self, input: &mut [u8], now: Instant) -> usize;
    /// As `handle_input`, offering inbound channel data to `sink` straight from the decrypted
    /// packet (zero-copy to backends).
    fn handle_input_with(
        &mut self,
        input: &mut [u8],
        now: Instant,
        _sink: &mut dyn DataSink,
    ) -> usize {
        self.handle_input(input, now)
    }
    fn handle_job_done(&mut self, done: ServerJobDone, now: Instant);
    fn handle_timeout(&mut self, now: Instant);
    /// Seals the staged batch into `out` (swapped when empty); returns its packet count.
    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize;
    /// Lends an empty pooled buffer to stage output in; returned when not needed.
    fn lend_output(&mut self, buf: Vec<u8>) -> Option<Vec<u8>> {
        Some(buf)
    }
    /// Takes the output buffer back when it is empty.
    fn reclaim_output(&mut self) -> Option<Vec<u8>> {
        None
    }
    /// Payload bytes the core copied, (outbound, inbound) (see
    /// `ServerConnection::bytes_copied`).
    fn bytes_copied(&self) -> (u64, u64) {
        (0, 0)
    }
    /// Capacity of the buffer the core stages output in (0: lend it one). Test cores have
    /// their own.
    fn output_capacity(&self) -> usize {
        1
    }
    fn poll_event(&mut self) -> Option<Event>;
    fn poll_timeout(&self) -> Option<Instant>;
    fn close(&mut self, reason: DisconnectReason, description: &str, now: Instant);
    fn wants_input(&self) -> bool;
    fn is_closed(&self) -> bool;
    fn is_authenticated(&self) -> bool;
    /// Memory the core holds for the peer (see `ServerConnection::held_bytes`); test cores
    /// hold none unless they say so.
    fn held_bytes(&self) -> usize {
        0
    }
    /// The penalty the connection's source earned, judged as it ends (see
    /// `ServerConnection::penalty`); test cores earn none.
    fn penalty(&self, _now: Instant) -> Option<crate::server::PenaltyKind> {
        None
    }
    /// The transport settings this connection runs with (the proxy's upstream uses the same
    /// algorithm choices); test cores have none.
    fn transport_config(&self) -> Option<&std::sync::Arc<crate::transport::TransportConfig>> {
        None
    }
    /// The session-proxy route chosen at login, once (see `ServerConnection::take_route`).
    fn take_route(&mut self) -> Option<crate::proxy::RouteMatch> {
        None
    }
    /// The password the login succeeded with, once.
    fn take_password(&mut self) -> Option<crate::auth::Secret> {
        None
    }
    /// The peer closed its end (EOF) without a DISCONNECT.
    fn peer_closed(&mut self, now: Instant) {
        self.close(DisconnectReason::ConnectionLost, "connection closed by peer", now);
    }

    // Channel mutators (see `ServerConnection`). The defaults are for test cores that never
    // emit channel events.
    fn backend_connected(&mut self, _channel: ChannelId) {}
    fn backend_failed(&mut self, _channel: ChannelId, _code: u32, _text: &str) {}
    fn inbound(&self, _channel: ChannelId) -> &[u8] {
        &[]
    }
    fn backend_consumed(&mut self, _channel: ChannelId, _n: usize) -> usize {
        0
    }
    /// An inbound chunk to give back to the pool (see `ServerConnection::take_spent_inbound`).
    fn take_spent_inbound(&mut self) -> Option<Vec<u8>> {
        None
    }
    /// Inbound chunks the core allocated itself (see `ServerConnection::own_inbound_chunks`).
    fn own_inbound_chunks(&self) -> u64 {
        0
    }
    fn send_capacity(&self, _channel: ChannelId) -> usize {
        0
    }
    fn send_data(&mut self, _channel: ChannelId, _data: &[u8], _now: Instant) -> usize {
        0
    }
    /// Room for channel data inside the core's output buffer (see `ServerConnection`).
    fn data_slot(&mut self, _channel: ChannelId, _max: usize, _stderr: bool) -> Option<&mut [u8]> {
        None
    }
    fn data_filled(&mut self, _channel: ChannelId, _n: usize, _now: Instant) -> usize {
        0
    }
    fn send_stderr(&mut self, _channel: ChannelId, _data: &[u8], _now: Instant) -> usize {
        0
    }
    fn backend_eof(&mut self, _channel: ChannelId) {}
    fn send_eow(&mut self, _channel: ChannelId) {}
    fn backend_closed(&mut self, _channel: ChannelId) {}
    fn child_exited(&mut self, _channel: ChannelId, _status: ExitStatus) {}
    fn listen_result(&mut self, _listener: ListenerId, _result: Result<u16, ()>) {}
    fn forwarded_connection(
        &mut self,
        _listener: ListenerId,
        _originator: &str,
        _originator_port: u16,
    ) -> Result<ChannelId, ForwardError> {
        Err(ForwardError::NoListener)
    }
    /// The open session that forwarded the user's agent (see `ServerConnection`).
    fn agent_requested(&self) -> Option<ChannelId> {
        None
    }
    /// Opens an agent channel to the user (see `ServerConnection::open_agent_channel`).
    fn open_agent_channel(&mut self) -> Option<ChannelId> {
        None
    }
}

/// The one real core: each method forwards to the inherent method of the same name.
impl Core for ServerConnection {
    fn handle_input(&mut self, input: &mut [u8], now: Instant) -> usize {
        ServerConnection::handle_input(self, input, now)
    }
    fn handle_input_with(
        &mut self,
        input: &mut [u8],
        now: Instant,
        sink: &mut dyn DataSink,
    ) -> usize {
        ServerConnection::handle_input_with(self, input, now, sink)
    }
    fn handle_job_done(&mut self, done: ServerJobDone, now: Instant) {
        ServerConnection::handle_job_done(self, done, now)
    }
    fn handle_timeout(&mut self, now: Instant) {
        ServerConnection::handle_timeout(self, now)
    }
    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        ServerConnection::poll_transmit(self, out)
    }
    fn lend_output(&mut self, buf: Vec<u8>) -> Option<Vec<u8>> {
        ServerConnection::lend_output(self, buf)
    }
    fn reclaim_output(&mut self) -> Option<Vec<u8>> {
        ServerConnection::reclaim_output(self)
    }
    fn output_capacity(&self) -> usize {
        self.transport().output_capacity()
    }
    fn bytes_copied(&self) -> (u64, u64) {
        ServerConnection::bytes_copied(self)
    }
    fn data_slot(&mut self, channel: ChannelId, max: usize, stderr: bool) -> Option<&mut [u8]> {
        ServerConnection::data_slot(self, channel, max, stderr)
    }
    fn data_filled(&mut self, channel: ChannelId, n: usize, now: Instant) -> usize {
        ServerConnection::data_filled(self, channel, n, now)
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
    fn held_bytes(&self) -> usize {
        ServerConnection::held_bytes(self)
    }
    fn penalty(&self, now: Instant) -> Option<crate::server::PenaltyKind> {
        ServerConnection::penalty(self, now)
    }
    fn peer_closed(&mut self, _now: Instant) {
        ServerConnection::peer_closed(self)
    }
    fn take_route(&mut self) -> Option<crate::proxy::RouteMatch> {
        ServerConnection::take_route(self)
    }
    fn transport_config(&self) -> Option<&std::sync::Arc<crate::transport::TransportConfig>> {
        Some(&self.config().transport)
    }
    fn take_password(&mut self) -> Option<crate::auth::Secret> {
        ServerConnection::take_password(self)
    }
    fn backend_connected(&mut self, channel: ChannelId) {
        ServerConnection::backend_connected(self, channel)
    }
    fn backend_failed(&mut self, channel: ChannelId, code: u32, text: &str) {
        ServerConnection::backend_failed(self, channel, code, text)
    }
    fn inbound(&self, channel: ChannelId) -> &[u8] {
        ServerConnection::inbound(self, channel)
    }
    fn backend_consumed(&mut self, channel: ChannelId, n: usize) -> usize {
        ServerConnection::backend_consumed(self, channel, n)
    }
    fn take_spent_inbound(&mut self) -> Option<Vec<u8>> {
        ServerConnection::take_spent_inbound(self)
    }
    fn own_inbound_chunks(&self) -> u64 {
        ServerConnection::own_inbound_chunks(self)
    }
    fn send_capacity(&self, channel: ChannelId) -> usize {
        ServerConnection::send_capacity(self, channel)
    }
    fn send_data(&mut self, channel: ChannelId, data: &[u8], now: Instant) -> usize {
        ServerConnection::send_data(self, channel, data, now)
    }
    fn send_stderr(&mut self, channel: ChannelId, data: &[u8], now: Instant) -> usize {
        ServerConnection::send_stderr(self, channel, data, now)
    }
    fn send_eow(&mut self, channel: ChannelId) {
        ServerConnection::send_eow(self, channel)
    }
    fn backend_eof(&mut self, channel: ChannelId) {
        ServerConnection::backend_eof(self, channel)
    }
    fn backend_closed(&mut self, channel: ChannelId) {
        ServerConnection::backend_closed(self, channel)
    }
    fn child_exited(&mut self, channel: ChannelId, status: ExitStatus) {
        ServerConnection::child_exited(self, channel, status)
    }
    fn listen_result(&mut self, listener: ListenerId, result: Result<u16, ()>) {
        ServerConnection::listen_result(self, listener, result)
    }
    fn forwarded_connection(
        &mut self,
        listener: ListenerId,
        originator: &str,
        originator_port: u16,
    ) -> Result<ChannelId, ForwardError> {
        ServerConnection::forwarded_connection(self, listener, originator, originator_port)
    }
    fn agent_requested(&self) -> Option<ChannelId> {
        ServerConnection::agent_requested(self)
    }
    fn open_agent_channel(&mut self) -> Option<ChannelId> {
        ServerConnection::open_agent_channel(self).ok()
    }
}
