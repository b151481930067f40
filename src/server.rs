//! `ServerConnection`: what a worker drives for one client — transport, then the service layers
//! on top (user authentication, connection protocol), sans-IO.

use crate::algo::{Rng, SystemRng};
use crate::packet::PayloadAt;
use crate::transport::{self, CryptoJob, DisconnectReason, JobDone, Read, Transport, TransportConfig};
use crate::wire::{msg_no, Writer};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::transport::KexSummary;

/// Services a client may request with SERVICE_REQUEST.
const SERVICES: &[&str] = &["ssh-userauth"];

/// Default time from accept until authentication must have succeeded (OpenSSH: 120 s).
pub const DEFAULT_LOGIN_GRACE_TIME: Duration = Duration::from_secs(120);

/// Everything a server connection needs to know; immutable, shared by all connections that
/// started under it (SIGHUP builds a new one for new connections).
pub struct ServerConfig {
    pub transport: TransportConfig,
    /// Time from accept until authentication must have succeeded.
    pub login_grace_time: Duration,
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
    Closed { code: u32, reason: String, by_peer: bool },
    /// Something worth a log line (DEBUG with always_display, an ignored oddity).
    Log(String),
}

/// One client connection's protocol state.
pub struct ServerConnection {
    transport: Transport,
    config: Arc<ServerConfig>,
    peer: SocketAddr,
    login_deadline: Instant,
    events: VecDeque<Event>,
}

impl ServerConnection {
    /// Stages our version line and KEXINIT for `poll_transmit`.
    pub fn new(config: Arc<ServerConfig>, peer: SocketAddr, now: Instant) -> Self {
        Self::with_rng(config, peer, Box::new(SystemRng), now)
    }

    /// As [`ServerConnection::new`] with a chosen RNG (deterministic tests, fuzzing).
    pub fn with_rng(
        config: Arc<ServerConfig>,
        peer: SocketAddr,
        rng: Box<dyn Rng>,
        now: Instant,
    ) -> Self {
        let transport = Transport::new_server(Arc::new(config.transport.clone()), rng, SERVICES, now);
        ServerConnection {
            transport,
            login_deadline: now + config.login_grace_time,
            config,
            peer,
            events: VecDeque::new(),
        }
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    pub fn transport_mut(&mut self) -> &mut Transport {
        &mut self.transport
    }

    /// Consumes as much of `input` as it can and returns how many bytes it used; the rest must be
    /// presented again (with more appended) next time. Stops early while a crypto job is in flight
    /// or output is backed up. On a protocol error a DISCONNECT is staged, `Event::Closed` is
    /// queued and all further input is discarded.
    pub fn handle_input(&mut self, input: &mut [u8], now: Instant) -> usize {
        let mut off = 0usize;
        loop {
            let Some(rest) = input.get_mut(off..) else { return input.len() };
            match self.transport.read(rest, now) {
                Read::Consumed(n) => off += n,
                Read::Service { consumed, payload, seq } => {
                    let base = off;
                    off += consumed;
                    match payload {
                        PayloadAt::Input(r) => {
                            let p = input.get(base + r.start..base + r.end).unwrap_or(&[]);
                            self.on_service_message(p, seq, now);
                        }
                        PayloadAt::Inflated => {
                            let v = self.transport.take_inflated();
                            self.on_service_message(&v, seq, now);
                            self.transport.restore_inflated(v);
                        }
                    }
                }
                Read::Wait => return off,
                Read::Closed => return input.len(),
            }
            if !self.wants_input() {
                return off;
            }
        }
    }

    /// A message for user authentication or the connection protocol.
    fn on_service_message(&mut self, p: &[u8], _seq: u32, _now: Instant) {
        let Some(&msg) = p.first() else { return };
        match msg {
            msg_no::USERAUTH_REQUEST => {
                // No authentication method is configured in this build of the service layer:
                // every request fails, listing what a client could try once it is.
                let _ = self.transport.send_with(|o| {
                    Writer::new(o).u8(msg_no::USERAUTH_FAILURE).name_list(["publickey", "password"]).bool(false);
                });
            }
            _ => {
                let _ = self.transport.send_with(|o| {
                    Writer::new(o).u8(msg_no::UNIMPLEMENTED).u32(_seq);
                });
            }
        }
    }

    pub fn handle_job_done(&mut self, done: JobDone, now: Instant) {
        self.transport.handle_job_done(done, now);
    }

    /// Call when `poll_timeout`'s deadline has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.transport.is_authenticated() && now >= self.login_deadline {
            self.transport.close(DisconnectReason::ByApplication, "login grace time exceeded");
            return;
        }
        self.transport.handle_timeout(now);
    }

    /// Appends every sealed byte ready to send to `out`.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        self.transport.poll_transmit(out);
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        if let Some(e) = self.events.pop_front() {
            return Some(e);
        }
        self.transport.poll_event().map(|e| match e {
            transport::Event::Job(j) => Event::Job(j),
            transport::Event::KexDone(s) => Event::KexDone(s),
            transport::Event::ServiceAccepted(s) => Event::ServiceAccepted(s),
            transport::Event::Closed { code, reason, by_peer } => Event::Closed { code, reason, by_peer },
            transport::Event::Log(s) => Event::Log(s),
        })
    }

    /// The next deadline (login grace, KEX timeout, rekey by time), if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.transport.is_closed() {
            return None;
        }
        let t = self.transport.poll_timeout();
        if self.transport.is_authenticated() {
            return t;
        }
        Some(t.map_or(self.login_deadline, |t| t.min(self.login_deadline)))
    }

    /// Ends the connection from our side: stages DISCONNECT(reason, description).
    pub fn close(&mut self, reason: DisconnectReason, description: &str, _now: Instant) {
        self.transport.close(reason, description);
    }

    /// The peer closed its end of the TCP connection (EOF) without a DISCONNECT.
    pub fn peer_closed(&mut self) {
        self.transport.peer_closed();
    }

    /// False while the core cannot take more input (job in flight, output backed up): the
    /// runtime stops reading this socket until it turns true.
    pub fn wants_input(&self) -> bool {
        !self.transport.is_closed()
            && !self.transport.is_waiting_for_job()
            && !self.transport.is_backpressured()
    }

    /// True once the connection is over; close the socket after the output is flushed.
    pub fn is_closed(&self) -> bool {
        self.transport.is_closed()
    }

    pub fn is_authenticated(&self) -> bool {
        self.transport.is_authenticated()
    }

    /// Whether a key exchange is running (e.g. for the runtime's drain decisions).
    pub fn is_handshaking(&self) -> bool {
        self.transport.is_handshaking()
    }

    /// Gives back idle buffer capacity.
    pub fn release_buffers(&mut self) {
        self.transport.release_buffers();
    }

    /// The config this connection started with.
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }
}
