//! `ServerConnection`: what a worker drives for one client — transport, then the service layers
//! on top (user authentication, connection protocol), sans-IO.
//!
//! How a runtime drives it, per readiness or wake-up:
//! 1. `handle_input(&mut buf, now)` with the bytes read; keep the unconsumed rest for next time.
//!    It stops early when `wants_input()` turns false (a KEX or authentication job is out,
//!    output is backed up): stop reading the socket until it is true again, then present the
//!    rest again.
//! 2. `handle_job_done(done, now)` for each finished [`ServerJob`] (KEX and auth alike).
//! 3. The mutators for what happened elsewhere: `backend_connected` / `backend_failed`,
//!    `backend_consumed` after writing `inbound(channel)` to a backend, `send_data` /
//!    `send_stderr` with what a backend produced (at most `send_capacity`), `backend_eof`,
//!    `backend_closed`, `child_exited`, `listen_result`, `forwarded_connection`.
//! 4. `poll_transmit(&mut out)`, then `poll_event()` until `None`, then `poll_timeout()`.
//!
//! Message routing: numbers 50–79 go to `auth` until USERAUTH_SUCCESS (which only `auth`
//! sends, and only then is the transport marked authenticated); after it they are ignored
//! (RFC 4252 §5.1) and numbers ≥ 80 go to `connection`. A fault in either layer stages the
//! DISCONNECT through the transport, so `Event::Closed` follows; on it, drop every backend
//! socket, child and listener of the connection.

use crate::algo::{Rng, SystemRng};
use crate::auth::{Auth, AuthContext, AuthJob, AuthJobResult, AuthOutcome, AuthPolicy};
use crate::config::users::KeyOptions;
use crate::connection::{
    self as conn, AgentChannelError, ChannelId, Connection, ConnectionPolicy, DataSink, ExitStatus,
    ForwardError, ListenerId,
};
use crate::packet::PayloadAt;
use crate::service::ServiceError;
use crate::transport::{
    self, CryptoJob, DisconnectReason, JobDone, Read, Transport, TransportConfig,
};
use crate::wire::msg_no;
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
///
/// The parts a connection keeps are behind `Arc`s, so a new connection shares them (a
/// reference count each) instead of cloning algorithm lists, permit lists and host keys.
pub struct ServerConfig {
    pub transport: Arc<TransportConfig>,
    /// Time from accept until authentication must have succeeded.
    pub login_grace_time: Duration,
    /// User authentication: methods, limits, where keys and passwords come from.
    pub auth: AuthPolicy,
    /// Connection protocol: channel limits, windows, permit lists, keepalives.
    pub connection: Arc<ConnectionPolicy>,
    /// For the runtime only (the core never reads it): session commands, backend connect
    /// timeout.
    pub gateway: Arc<GatewayConfig>,
}

/// What the runtime needs to serve channels: how session requests run and how long a backend
/// connect may take. Part of [`ServerConfig`] so a connection keeps the settings it started with.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// `--session-command`: run for every exec/shell/subsystem.
    pub session_command: Option<String>,
    /// `--allow-exec`: run the client's command through `/bin/sh -c`.
    pub allow_exec: bool,
    /// `--connect-timeout`: backend connect, name lookup included.
    pub connect_timeout: Duration,
    /// `--set-env NAME=VALUE`: set for every command, over the client's `env` requests.
    pub set_env: Vec<(String, String)>,
    /// The session proxy's routes (`--routes` or the config file's `[routes]`); None: no
    /// proxying. A connection keeps the routes it started with; SIGHUP brings new ones.
    pub routes: Option<std::sync::Arc<crate::proxy::Routes>>,
    /// `--record-dir`: asciicast recordings of local PTY sessions (routes have their own).
    pub record_dir: Option<std::path::PathBuf>,
    /// `--record-max-size`: bytes per recording file, for local sessions and routes alike.
    pub record_max_bytes: u64,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            session_command: None,
            allow_exec: false,
            connect_timeout: Duration::from_secs(crate::cli::DEFAULT_CONNECT_TIMEOUT),
            set_env: Vec::new(),
            routes: None,
            record_dir: None,
            record_max_bytes: 64 << 20,
        }
    }
}

/// Which of the pool's queues a job waits in: each is bounded on its own and drained in turn,
/// so a flood of one kind (a password spray) cannot starve the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobClass {
    /// Key exchange and host-key signing.
    Kex,
    /// A user's publickey signature.
    Verify,
    /// Password hashing (slow on purpose; at most a share of the pool's threads).
    Password,
    /// File reads (authorized_keys): on a reader thread, never where KEX runs.
    Read,
}

impl JobClass {
    pub const ALL: [JobClass; 4] =
        [JobClass::Kex, JobClass::Verify, JobClass::Password, JobClass::Read];

    /// Position in [`JobClass::ALL`], for per-class arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            JobClass::Kex => "kex",
            JobClass::Verify => "verify",
            JobClass::Password => "password",
            JobClass::Read => "read",
        }
    }
}

/// Work a server connection hands to the runtime: the transport's key exchange, or the
/// authentication layer's checks. Transport knows nothing of the latter.
pub enum ServerJob {
    Kex(CryptoJob),
    Auth(AuthJob),
    /// The session proxy's upstream connection: its key exchange (same pool, same
    /// connection tag; the result goes to the upstream core, not this one).
    UpstreamKex(CryptoJob),
    /// The upstream login's publickey signature with the route's identity file.
    UpstreamSign(crate::client::SignRequest),
}

/// A finished [`ServerJob`], fed back with `handle_job_done`.
pub enum ServerJobDone {
    Kex(JobDone),
    Auth(AuthJobResult),
    UpstreamKex(JobDone),
    UpstreamSign(Result<Vec<u8>, String>),
}

impl ServerJob {
    /// For per-kind histograms: the KEX method, or `auth-…`.
    pub fn label(&self) -> &'static str {
        match self {
            ServerJob::Kex(j) | ServerJob::UpstreamKex(j) => j.label(),
            ServerJob::Auth(j) => j.label(),
            ServerJob::UpstreamSign(_) => "upstream-sign",
        }
    }

    /// Bytes the job holds for the peer while queued or running (memory budget).
    pub fn held_bytes(&self) -> usize {
        match self {
            ServerJob::Kex(j) | ServerJob::UpstreamKex(j) => j.held_bytes(),
            ServerJob::Auth(j) => j.held_bytes(),
            ServerJob::UpstreamSign(r) => std::mem::size_of_val(r) + r.data.len(),
        }
    }

    /// The queue this job waits in.
    pub fn class(&self) -> JobClass {
        match self {
            ServerJob::Kex(_) | ServerJob::UpstreamKex(_) | ServerJob::UpstreamSign(_) => {
                JobClass::Kex
            }
            ServerJob::Auth(AuthJob::LoadKeys { .. }) => JobClass::Read,
            // A password file read at each check is file IO: never where KEX runs.
            ServerJob::Auth(AuthJob::CheckPassword(c))
                if matches!(c.source, crate::auth::PasswordSource::File(_)) =>
            {
                JobClass::Read
            }
            ServerJob::Auth(AuthJob::CheckPassword(_)) => JobClass::Password,
            ServerJob::Auth(AuthJob::VerifySignature(_)) => JobClass::Verify,
        }
    }
}

/// What happened, for the runtime to act on or log.
pub enum Event {
    /// Run this off the worker (crypto pool or reader thread) and feed the result to
    /// `handle_job_done`.
    Job(ServerJob),
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
    /// direct-tcpip allowed by the permit lists: connect to `host:port` without blocking, then
    /// call `backend_connected` or `backend_failed` (RFC 4254 §7.2).
    OpenBackend {
        channel: ChannelId,
        host: String,
        port: u16,
        originator: String,
        originator_port: u16,
    },
    /// direct-streamlocal@openssh.com allowed: connect to the Unix socket `path`, then
    /// `backend_connected` / `backend_failed`.
    OpenUnixBackend { channel: ChannelId, path: String },
    /// tcpip-forward allowed: listen on `addr:port` (0: any port), then `listen_result`.
    Listen { listener: ListenerId, addr: String, port: u16 },
    /// streamlocal-forward@openssh.com allowed: listen on the Unix socket `path`, then
    /// `listen_result`.
    ListenUnix { listener: ListenerId, path: String },
    /// cancel-tcpip-forward: close that listener.
    Unlisten { listener: ListenerId },
    /// exec / shell / subsystem on a session channel: start the command (or `forced_command`,
    /// from the key's `command=`, with the request as SSH_ORIGINAL_COMMAND); `env` holds the
    /// allow-listed `env` requests. Report its output with `send_data` / `send_stderr` and its
    /// end with `child_exited`.
    Exec {
        channel: ChannelId,
        command: Option<String>,
        subsystem: Option<String>,
        env: Vec<(String, String)>,
        forced_command: Option<String>,
        /// pty-req was accepted: run the command on a PTY of this TERM and size.
        pty: Option<conn::Pty>,
    },
    /// window-change on a PTY session: resize the terminal (TIOCSWINSZ on the master).
    WindowChange { channel: ChannelId, size: conn::msgs::WinSize },
    /// signal on a proxied session (name without "SIG"): pass it upstream.
    Signal { channel: ChannelId, name: String },
    /// break on a proxied session (RFC 4335, length in ms): pass it upstream.
    Break { channel: ChannelId, ms: u32 },
    /// eow@openssh.com on a proxied session: pass it upstream.
    Eow { channel: ChannelId },
    /// Client data is waiting in `inbound(channel)` (there was none before): write it to the
    /// backend or child, then `backend_consumed`.
    ChannelReadable { channel: ChannelId },
    /// `send_capacity(channel)` grew from zero: read from the backend again.
    ChannelWritable { channel: ChannelId },
    /// The client sent EOF: once `inbound` is drained, shut down the backend's write side.
    ChannelEof { channel: ChannelId },
    /// The channel is gone (both CLOSEs sent): drop its backend socket or child.
    ChannelClosed { channel: ChannelId },
    /// The client accepted a forwarded-tcpip channel from `forwarded_connection`: relay.
    ChannelOpened { channel: ChannelId },
    /// The client refused a forwarded-tcpip channel: drop the accepted socket.
    ChannelOpenFailed { channel: ChannelId, code: u32, text: String },
    /// A session asked for agent forwarding and `allow_agent_forwarding` is on:
    /// `open_agent_channel` reaches the client's agent from now on.
    AgentForwarding { channel: ChannelId },
}

impl Event {
    /// The variant's name, for log lines.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Job(..) => "Job",
            Event::KexDone(..) => "KexDone",
            Event::ServiceAccepted(..) => "ServiceAccepted",
            Event::Authenticated { .. } => "Authenticated",
            Event::Closed { .. } => "Closed",
            Event::Log(..) => "Log",
            Event::OpenBackend { .. } => "OpenBackend",
            Event::Listen { .. } => "Listen",
            Event::OpenUnixBackend { .. } => "OpenUnixBackend",
            Event::ListenUnix { .. } => "ListenUnix",
            Event::Unlisten { .. } => "Unlisten",
            Event::Exec { .. } => "Exec",
            Event::WindowChange { .. } => "WindowChange",
            Event::Signal { .. } => "Signal",
            Event::Break { .. } => "Break",
            Event::Eow { .. } => "Eow",
            Event::ChannelReadable { .. } => "ChannelReadable",
            Event::ChannelWritable { .. } => "ChannelWritable",
            Event::ChannelEof { .. } => "ChannelEof",
            Event::ChannelClosed { .. } => "ChannelClosed",
            Event::ChannelOpened { .. } => "ChannelOpened",
            Event::ChannelOpenFailed { .. } => "ChannelOpenFailed",
            Event::AgentForwarding { .. } => "AgentForwarding",
        }
    }
}

impl From<conn::Event> for Event {
    fn from(e: conn::Event) -> Self {
        use conn::Event as C;
        match e {
            C::OpenBackend { channel, host, port, originator, originator_port } => {
                Event::OpenBackend { channel, host, port, originator, originator_port }
            }
            C::Listen { listener, addr, port } => Event::Listen { listener, addr, port },
            C::OpenUnixBackend { channel, path } => Event::OpenUnixBackend { channel, path },
            C::ListenUnix { listener, path } => Event::ListenUnix { listener, path },
            C::Unlisten { listener } => Event::Unlisten { listener },
            C::Exec { channel, command, subsystem, env, forced_command, pty } => {
                Event::Exec { channel, command, subsystem, env, forced_command, pty }
            }
            C::WindowChange { channel, size } => Event::WindowChange { channel, size },
            C::Signal { channel, name } => Event::Signal { channel, name },
            C::Break { channel, ms } => Event::Break { channel, ms },
            C::Eow { channel } => Event::Eow { channel },
            C::ChannelReadable { channel } => Event::ChannelReadable { channel },
            C::ChannelWritable { channel } => Event::ChannelWritable { channel },
            C::ChannelEof { channel } => Event::ChannelEof { channel },
            C::ChannelClosed { channel } => Event::ChannelClosed { channel },
            C::ChannelOpened { channel } => Event::ChannelOpened { channel },
            C::ChannelOpenFailed { channel, code, text } => {
                Event::ChannelOpenFailed { channel, code, text }
            }
            C::AgentForwarding { channel } => Event::AgentForwarding { channel },
        }
    }
}

/// Why a connection's source deserves a penalty when it ends (OpenSSH's PerSourcePenalties
/// kinds); the runtime adds the configured duration to the source's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PenaltyKind {
    AuthFail,
    NoAuth,
    GraceExceeded,
    InvalidUser,
    RefuseConnection,
}

impl PenaltyKind {
    /// The reason in log lines and for refused connections.
    pub fn reason(self) -> &'static str {
        match self {
            PenaltyKind::AuthFail => "penalty: failed authentication",
            PenaltyKind::NoAuth => "penalty: connections without attempting authentication",
            PenaltyKind::GraceExceeded => "penalty: exceeded login grace time",
            PenaltyKind::InvalidUser => "penalty: attempted authentication by invalid user",
            PenaltyKind::RefuseConnection => "penalty: connection refused",
        }
    }
}

/// One client connection's protocol state.
pub struct ServerConnection {
    transport: Transport,
    config: Arc<ServerConfig>,
    peer: SocketAddr,
    login_deadline: Instant,
    events: VecDeque<Event>,
    auth: Auth,
    conn: Connection,
    /// Next server keepalive (after authentication, with `keepalive_interval` set).
    next_keepalive: Option<Instant>,
    /// The session-proxy route chosen at login, until the runtime takes it.
    route: Option<Box<crate::proxy::RouteMatch>>,
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
        let transport = Transport::new_server(config.transport.clone(), rng, SERVICES, now);
        ServerConnection {
            transport,
            login_deadline: now + config.login_grace_time,
            auth: Auth::new(peer.ip()),
            conn: Connection::new(config.connection.clone()),
            next_keepalive: None,
            route: None,
            config,
            peer,
            events: VecDeque::new(),
        }
    }

    /// As [`ServerConnection::with_rng`] with a chosen publickey signature verifier (fuzzing
    /// with a no-security provider, tests).
    pub fn with_verifier(
        config: Arc<ServerConfig>,
        peer: SocketAddr,
        rng: Box<dyn Rng>,
        verify: crate::auth::VerifyFn,
        now: Instant,
    ) -> Self {
        let mut c = Self::with_rng(config, peer, rng, now);
        c.auth = Auth::with_verifier(peer.ip(), verify);
        c
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
        self.handle_input_inner(input, now, None)
    }

    /// As [`ServerConnection::handle_input`], offering inbound channel data to `sink` straight
    /// from the decrypted packet (no copy); what it does not take is queued in `inbound`.
    pub fn handle_input_with(
        &mut self,
        input: &mut [u8],
        now: Instant,
        sink: &mut dyn DataSink,
    ) -> usize {
        self.handle_input_inner(input, now, Some(sink))
    }

    fn handle_input_inner(
        &mut self,
        input: &mut [u8],
        now: Instant,
        mut sink: Option<&mut dyn DataSink>,
    ) -> usize {
        let mut off = 0usize;
        loop {
            let Some(rest) = input.get_mut(off..) else {
                return input.len();
            };
            match self.transport.read(rest, now) {
                Read::Consumed(n) => off += n,
                Read::Service { consumed, payload, seq } => {
                    let base = off;
                    off += consumed;
                    match payload {
                        PayloadAt::Input(r) => {
                            let p = input.get(base + r.start..base + r.end).unwrap_or(&[]);
                            self.on_service_message(
                                p,
                                seq,
                                now,
                                sink.as_mut().map(|s| &mut **s as &mut dyn DataSink),
                            );
                        }
                        PayloadAt::Inflated => {
                            let v = self.transport.take_inflated();
                            self.on_service_message(
                                &v,
                                seq,
                                now,
                                sink.as_mut().map(|s| &mut **s as &mut dyn DataSink),
                            );
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

    /// A message for user authentication (before success) or the connection protocol (after).
    /// The transport's state table already refused connection messages before authentication
    /// and client-sent USERAUTH_SUCCESS/FAILURE/PK_OK: only `auth` can authenticate.
    fn on_service_message(
        &mut self,
        p: &[u8],
        _seq: u32,
        now: Instant,
        sink: Option<&mut dyn DataSink>,
    ) {
        let Some(&msg) = p.first() else { return };
        if !self.transport.is_authenticated() {
            self.auth_step(now, |auth, cx, t| auth.handle_message(cx, t, p));
            return;
        }
        if msg < msg_no::GLOBAL_REQUEST {
            // RFC 4252 §5.1: authentication requests after success are ignored.
            return;
        }
        let r = self.conn.handle_message_with(&mut self.transport, p, sink);
        self.after_conn(r);
    }

    fn on_auth_outcome(&mut self, r: Result<AuthOutcome, ServiceError>, now: Instant) {
        match r {
            Ok(AuthOutcome::Continue) => {}
            Ok(AuthOutcome::Log(s)) => self.events.push_back(Event::Log(s)),
            Ok(AuthOutcome::Job(job)) => self.events.push_back(Event::Job(ServerJob::Auth(job))),
            Ok(AuthOutcome::Success { user, method }) => {
                // The one place that authenticates: USERAUTH_SUCCESS was just staged by auth.
                self.transport.set_authenticated();
                self.conn.set_restrictions(self.auth.restrictions().clone());
                self.next_keepalive = self.config.connection.keepalive_interval.map(|i| now + i);
                // Chosen before any channel message is read, so a routed connection's channels
                // are proxied from the first one.
                self.route = self
                    .config
                    .gateway
                    .routes
                    .as_ref()
                    .and_then(|r| r.select(&user, self.peer.ip()))
                    .map(Box::new);
                if self.route.is_some() {
                    self.conn.set_proxied();
                    // A proxied session may forward the user's agent (upstream login with it,
                    // `ssh-add -l` on the backend), unless the login key forbids it; local
                    // sessions still refuse `ssh -A`.
                    self.conn.allow_agent_forwarding(true);
                }
                self.events.push_back(Event::Authenticated { user, method });
            }
            Err(e) => self.transport.fail(e.into_transport()),
        }
    }

    /// After any call into the connection layer: a fault ends the connection; its events go out.
    fn after_conn<T>(&mut self, r: Result<T, ServiceError>) -> Option<T> {
        let v = match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.transport.fail(e.into_transport());
                None
            }
        };
        while let Some(e) = self.conn.poll_event() {
            self.events.push_back(e.into());
        }
        v
    }

    /// A finished crypto job: KEX jobs go to the transport, authentication jobs to `auth`.
    pub fn handle_job_done(&mut self, done: ServerJobDone, now: Instant) {
        let result = match done {
            ServerJobDone::Kex(done) => return self.transport.handle_job_done(done, now),
            ServerJobDone::Auth(result) => result,
            // The runtime routes these to the upstream core; never ours.
            ServerJobDone::UpstreamKex(_) | ServerJobDone::UpstreamSign(_) => return,
        };
        if self.transport.is_closed() {
            return;
        }
        self.auth_step(now, |auth, cx, t| auth.handle_job_result(cx, t, result));
    }

    /// One step of user authentication (a message or a finished job) with the context it needs:
    /// the session id it signs over and whether both directions are encrypted (password
    /// methods are offered only then). Logs counted failures and acts on the outcome.
    fn auth_step(
        &mut self,
        now: Instant,
        step: impl FnOnce(
            &mut Auth,
            AuthContext<'_>,
            &mut Transport,
        ) -> Result<AuthOutcome, ServiceError>,
    ) {
        let config = self.config.clone();
        let sid = self.transport.session_id().map(<[u8]>::to_vec).unwrap_or_default();
        let (enc_in, enc_out) = self.transport.is_encrypted();
        let cx =
            AuthContext { policy: &config.auth, session_id: &sid, encrypted: enc_in && enc_out };
        let before = self.auth.failures();
        let r = step(&mut self.auth, cx, &mut self.transport);
        self.log_auth_failure(before);
        self.on_auth_outcome(r, now);
    }

    /// A log line for each counted authentication failure (same text for unknown users).
    fn log_auth_failure(&mut self, before: u32) {
        let n = self.auth.failures();
        if n > before {
            let user = self.auth.user().unwrap_or("");
            let max = self.config.auth.max_auth_tries;
            self.events.push_back(Event::Log(format!(
                "authentication failed user={user:?} ({n} of {max})"
            )));
        }
    }

    /// Call when `poll_timeout`'s deadline has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.transport.is_authenticated() && now >= self.login_deadline {
            self.transport.close(DisconnectReason::ByApplication, "login grace time exceeded");
            return;
        }
        if let (Some(at), Some(every)) =
            (self.next_keepalive, self.config.connection.keepalive_interval)
        {
            if now >= at {
                self.next_keepalive = Some(now + every);
                let r = self.conn.keepalive_tick(&mut self.transport);
                self.after_conn(r);
            }
        }
        self.transport.handle_timeout(now);
    }

    /// Seals everything staged in one pass and hands the batch to `out` (swapped when `out`
    /// is empty: give an empty pooled buffer, the core stages its next messages in it).
    /// Returns the packets in the batch. See [`Transport::poll_transmit`].
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        self.transport.poll_transmit(out)
    }

    /// Lends the core an empty buffer to stage output in, if it holds none (else returns it).
    pub fn lend_output(&mut self, buf: Vec<u8>) -> Option<Vec<u8>> {
        self.transport.lend_output(buf)
    }

    /// Takes the output buffer back when it is empty.
    pub fn reclaim_output(&mut self) -> Option<Vec<u8>> {
        self.transport.reclaim_output()
    }

    /// Payload bytes copied in user space beyond encoding, decryption and (de)compression,
    /// (outbound, inbound): outbound see [`Transport::bytes_copied`]; inbound, channel data
    /// the backend did not take straight from the packet (queued once). The copy-count tests
    /// check them.
    pub fn bytes_copied(&self) -> (u64, u64) {
        (self.transport.bytes_copied(), self.conn.bytes_copied())
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        if let Some(e) = self.events.pop_front() {
            return Some(e);
        }
        self.transport.poll_event().map(|e| match e {
            transport::Event::Job(j) => Event::Job(ServerJob::Kex(j)),
            transport::Event::KexDone(s) => {
                // Held-back output was flushed with NEWKEYS: producers may resume.
                if self.transport.is_authenticated() {
                    self.conn.notify_writable();
                    while let Some(e) = self.conn.poll_event() {
                        self.events.push_back(e.into());
                    }
                }
                Event::KexDone(s)
            }
            transport::Event::ServiceAccepted(s) => Event::ServiceAccepted(s),
            transport::Event::Closed { code, reason, by_peer } => {
                Event::Closed { code, reason, by_peer }
            }
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
            return match (t, self.next_keepalive) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
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
            && !self.auth.is_waiting()
    }

    /// True once the connection is over; close the socket after the output is flushed.
    pub fn is_closed(&self) -> bool {
        self.transport.is_closed()
    }

    pub fn is_authenticated(&self) -> bool {
        self.transport.is_authenticated()
    }

    /// Memory this connection's core holds on the peer's behalf: channel inbound buffers,
    /// sealed output not yet taken, the held-back queue and decompression output. The runtime
    /// charges it against `--max-buffer-memory` after each turn (the core stays sans-IO).
    pub fn held_bytes(&self) -> usize {
        self.transport.held_bytes() + self.conn.held_bytes()
    }

    /// The penalty this connection earned its source, judged as it ends at `now`: none once
    /// authenticated; grace exceeded past the login deadline; failed authentication after a
    /// counted failure (invalid user when no lookup found the user); otherwise no
    /// authentication attempted. The peer sees the same failure either way; only the penalty
    /// differs.
    pub fn penalty(&self, now: Instant) -> Option<PenaltyKind> {
        if self.is_authenticated() {
            None
        } else if now >= self.login_deadline {
            Some(PenaltyKind::GraceExceeded)
        } else if self.auth.failures() > 0 && self.auth.invalid_user() {
            Some(PenaltyKind::InvalidUser)
        } else if self.auth.failures() > 0 {
            Some(PenaltyKind::AuthFail)
        } else {
            Some(PenaltyKind::NoAuth)
        }
    }

    /// Whether a key exchange is running (e.g. for the runtime's drain decisions).
    pub fn is_handshaking(&self) -> bool {
        self.transport.is_handshaking()
    }

    /// Gives back idle buffer capacity.
    pub fn release_buffers(&mut self) {
        self.transport.release_buffers();
    }

    // ---- connection-protocol mutators (what the runtime learned elsewhere) ----------------

    /// Options of the key the user logged in with (`permitopen=`, `command=`, …); empty for
    /// password logins. Already applied by the connection layer.
    pub fn restrictions(&self) -> &KeyOptions {
        self.conn.restrictions()
    }

    /// The backend for `OpenBackend` connected: CHANNEL_OPEN_CONFIRMATION.
    pub fn backend_connected(&mut self, channel: ChannelId) {
        let r = self.conn.backend_connected(&mut self.transport, channel);
        self.after_conn(r);
    }

    /// The backend for `OpenBackend` failed: CHANNEL_OPEN_FAILURE with an RFC 4254 §5.1 code
    /// (`connection::msgs::OPEN_CONNECT_FAILED` for refused / unreachable / timed out).
    pub fn backend_failed(&mut self, channel: ChannelId, reason_code: u32, text: &str) {
        let r = self.conn.backend_failed(&mut self.transport, channel, reason_code, text);
        self.after_conn(r);
    }

    /// Client data waiting for the backend (borrowed, bounded by the channel window): the
    /// first contiguous run of it, empty only when none waits.
    pub fn inbound(&self, channel: ChannelId) -> &[u8] {
        self.conn.inbound(channel)
    }

    /// All client data waiting for the backend of `channel`.
    pub fn inbound_len(&self, channel: ChannelId) -> usize {
        self.conn.inbound_len(channel)
    }

    /// The backend took `n` bytes from the front of `inbound`; the window grows back only
    /// through this, so a slow backend stops the client. Returns the bytes taken.
    pub fn backend_consumed(&mut self, channel: ChannelId, n: usize) -> usize {
        let r = self.conn.backend_consumed(&mut self.transport, channel, n);
        self.after_conn(r).unwrap_or(0)
    }

    /// An inbound chunk (lent through [`DataSink::inbound_buffer`]) the channels no longer
    /// need: give it back to the pool. Call until `None` after the backends took their bytes.
    pub fn take_spent_inbound(&mut self) -> Option<Vec<u8>> {
        self.conn.take_spent_inbound()
    }

    /// Inbound chunks the core allocated itself because none was lent (pooled: 0).
    pub fn own_inbound_chunks(&self) -> u64 {
        self.conn.own_inbound_chunks()
    }

    /// How many bytes `send_data` takes now (peer window; 0 while output is backed up).
    pub fn send_capacity(&self, channel: ChannelId) -> usize {
        self.conn.send_capacity(&self.transport, channel)
    }

    /// Backend bytes to the client; returns how many were taken (keep the rest). `now` lets a
    /// volume rekey start on outbound-only traffic.
    pub fn send_data(&mut self, channel: ChannelId, data: &[u8], now: Instant) -> usize {
        let r = self.conn.send_data(&mut self.transport, channel, data);
        let n = self.after_conn(r).unwrap_or(0);
        self.transport.check_rekey(now);
        n
    }

    /// Room for up to `max` bytes of channel data (stderr: extended data) in the output buffer
    /// itself: read the backend straight into it, then call [`ServerConnection::data_filled`]
    /// (with 0 if the read gave nothing). `None`: use `send_data`.
    pub fn data_slot(&mut self, channel: ChannelId, max: usize, stderr: bool) -> Option<&mut [u8]> {
        self.conn.data_slot(&mut self.transport, channel, max, stderr)
    }

    /// The slot from `data_slot` holds `n` bytes: staged as CHANNEL_DATA (0 cancels it).
    pub fn data_filled(&mut self, channel: ChannelId, n: usize, now: Instant) -> usize {
        let r = self.conn.data_filled(&mut self.transport, channel, n);
        let n = self.after_conn(r).unwrap_or(0);
        self.transport.check_rekey(now);
        n
    }

    /// A session child's stderr to the client (extended data type 1), as `send_data`.
    pub fn send_stderr(&mut self, channel: ChannelId, data: &[u8], now: Instant) -> usize {
        let r = self.conn.send_stderr(&mut self.transport, channel, data);
        let n = self.after_conn(r).unwrap_or(0);
        self.transport.check_rekey(now);
        n
    }

    /// eow@openssh.com to the client (the proxied upstream reads no more of this session).
    pub fn send_eow(&mut self, channel: ChannelId) {
        let r = self.conn.send_eow(&mut self.transport, channel);
        self.after_conn(r);
    }

    /// The backend's read side hit EOF: CHANNEL_EOF (once).
    pub fn backend_eof(&mut self, channel: ChannelId) {
        let r = self.conn.backend_eof(&mut self.transport, channel);
        self.after_conn(r);
    }

    /// The backend is gone: EOF then CLOSE (once each).
    pub fn backend_closed(&mut self, channel: ChannelId) {
        let r = self.conn.backend_closed(&mut self.transport, channel);
        self.after_conn(r);
    }

    /// A session's child exited and its output was sent: exit-status / exit-signal, EOF, CLOSE.
    pub fn child_exited(&mut self, channel: ChannelId, status: ExitStatus) {
        let r = self.conn.child_exited(&mut self.transport, channel, status);
        self.after_conn(r);
    }

    /// The outcome of a `Listen` event: the bound port, or `Err(())` if it failed.
    pub fn listen_result(&mut self, listener: ListenerId, result: Result<u16, ()>) {
        let r = self.conn.listen_result(&mut self.transport, listener, result);
        self.after_conn(r);
    }

    /// A connection was accepted on a listener: opens a forwarded-tcpip channel to the client.
    /// Relay once `ChannelOpened` arrives; on `ChannelOpenFailed` (or an error here) drop it.
    pub fn forwarded_connection(
        &mut self,
        listener: ListenerId,
        originator: &str,
        originator_port: u16,
    ) -> Result<ChannelId, ForwardError> {
        let r = self.conn.forwarded_connection(
            &mut self.transport,
            listener,
            originator,
            originator_port,
        );
        self.after_conn(r).unwrap_or(Err(ForwardError::NoListener))
    }

    /// The listener a forwarded-tcpip channel belongs to.
    pub fn channel_listener(&self, channel: ChannelId) -> Option<ListenerId> {
        self.conn.channel_listener(channel)
    }

    /// Lets sessions ask for agent forwarding (`ssh -A`; off by default: refused). On for
    /// every routed (proxied) connection.
    pub fn allow_agent_forwarding(&mut self, allow: bool) {
        self.conn.allow_agent_forwarding(allow);
    }

    /// The open session that asked for agent forwarding (see [`Event::AgentForwarding`]).
    pub fn agent_requested(&self) -> Option<ChannelId> {
        self.conn.agent_requested()
    }

    /// Opens an `auth-agent@openssh.com` channel to the client's agent. On `ChannelOpened`
    /// send requests (`proxy::agent`) with `send_data`, read replies from `inbound` and
    /// `backend_consumed` them; `backend_closed` ends the channel.
    pub fn open_agent_channel(&mut self) -> Result<ChannelId, AgentChannelError> {
        let r = self.conn.open_agent_channel(&mut self.transport);
        self.after_conn(r).unwrap_or(Err(AgentChannelError::NotRequested))
    }

    /// The session-proxy route chosen at login (once; `None` for a user with no route).
    pub fn take_route(&mut self) -> Option<crate::proxy::RouteMatch> {
        self.route.take().map(|r| *r)
    }

    /// The password the login succeeded with (once), for a route that logs in upstream with
    /// it; drop it otherwise (it is wiped).
    pub fn take_password(&mut self) -> Option<crate::auth::Secret> {
        self.auth.take_password()
    }

    /// The config this connection started with.
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }
}
