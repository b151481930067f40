//! `ClientConnection`: sshfront's client role (bench harness, tests, the upstream side of the
//! session proxy). The same transport core as the server, driven the same sans-IO way, with user
//! authentication ([`userauth`]) and channels ([`channels`]) on top.
//!
//! How a caller drives it, per turn:
//! 1. `handle_input(&mut buf, now)` with the bytes read; keep the unconsumed rest.
//! 2. `handle_job_done` for each finished KEX job, `sign_done` for a signature asked for with
//!    [`Event::Sign`].
//! 3. What it wants: `authenticate`, `open_session`, `open_direct_tcpip`, the `request_*`
//!    methods, `send_data`, `consume`, `send_eof`, `close_channel`.
//! 4. `poll_transmit(&mut out)`, then `poll_event()` until `None`, then `poll_timeout()`.
//!
//! A connection made with [`ClientConnection::new_raw`] does none of the service layer: every
//! service message goes to [`ClientConnection::next_message`] (tests that speak bytes).

pub mod channels;
pub mod userauth;

use crate::algo::Rng;
use crate::auth::msgs as auth_msgs;
use crate::connection::msgs as conn_msgs;
use crate::connection::msgs::WinSize;
use crate::packet::PayloadAt;
use crate::service::ServiceError;
use crate::transport::{
    self, CryptoJob, DisconnectReason, JobDone, KexSummary, Read, Transport, TransportConfig,
};
use crate::wire::{msg_no, Reader};
use channels::{Chan, Table};
pub use channels::{ClientChannel, MAX_CHANNELS};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;
pub use userauth::{AgentKey, LocalKey, Method, SignRequest, UserSigner};

/// A service-layer message the client received (raw mode only).
pub type Message = Vec<u8>;

/// Messages buffered for the caller in raw mode before `handle_input` stops reading.
const MAX_INBOX: usize = 256;
/// Events queued before `handle_input` stops reading (the caller drains them every turn).
const MAX_EVENTS: usize = 1024;
/// Default window and maximum packet we offer on channels we open.
pub const DEFAULT_WINDOW: u32 = 2 * 1024 * 1024;
pub const DEFAULT_MAX_PACKET: u32 = 32 * 1024;
/// Largest CHANNEL_DATA payload we send, whatever the peer allows.
pub const MAX_CHUNK: usize = 32 * 1024;

/// What happened, for the caller to act on.
pub enum Event {
    /// Run this on the crypto pool and feed the result to `handle_job_done`.
    Job(CryptoJob),
    KexDone(KexSummary),
    ServiceAccepted(&'static str),
    /// The connection is over; flush what `poll_transmit` still gives, then close.
    Closed {
        code: u32,
        reason: String,
        by_peer: bool,
    },
    Log(String),
    /// The server's USERAUTH_BANNER text (cut to a bound).
    Banner(String),
    /// Sign `data` with the key (crypto pool for a local key, the agent otherwise), then
    /// `sign_done`.
    Sign(SignRequest),
    /// USERAUTH_SUCCESS: channels may be opened.
    Authenticated,
    /// The attempt failed; `methods` can continue (comma separated), `partial` as in RFC 4252.
    AuthFailed {
        methods: String,
        partial: bool,
    },
    ChannelOpened {
        channel: ClientChannel,
    },
    ChannelOpenFailed {
        channel: ClientChannel,
        code: u32,
        text: String,
    },
    /// The reply to a want-reply request (`pty-req`, `shell`, `exec`, `subsystem`).
    RequestDone {
        channel: ClientChannel,
        request: &'static str,
        ok: bool,
    },
    /// `stdout(channel)` or `stderr(channel)` has bytes (it had none before).
    ChannelReadable {
        channel: ClientChannel,
    },
    /// `send_capacity(channel)` grew from zero.
    ChannelWritable {
        channel: ClientChannel,
    },
    ExitStatus {
        channel: ClientChannel,
        code: u32,
    },
    ExitSignal {
        channel: ClientChannel,
        signal: String,
        core_dumped: bool,
        message: String,
    },
    /// eow@openssh.com: the server reads no more of this channel's data.
    Eow {
        channel: ClientChannel,
    },
    /// The reply to a global request (`tcpip-forward`: `port` is the bound port when 0 was
    /// asked for).
    GlobalReply {
        request: &'static str,
        ok: bool,
        port: Option<u32>,
    },
    /// The server opens a channel to us (`forwarded-tcpip` after tcpip-forward,
    /// `auth-agent@openssh.com` after agent forwarding): `accept_channel` or `reject_channel`.
    IncomingChannel {
        channel: ClientChannel,
        kind: IncomingKind,
        /// forwarded-tcpip: the address and port that were connected, and the originator.
        connected: Option<(String, u16)>,
        originator: Option<(String, u16)>,
    },
    /// The server sent EOF; what it sent before is in the buffers.
    ChannelEof {
        channel: ClientChannel,
    },
    /// Both CLOSEs went and the buffers were drained: the channel number is free.
    ChannelClosed {
        channel: ClientChannel,
    },
}

/// Channel types a server may open to us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncomingKind {
    ForwardedTcpip,
    AuthAgent,
}

/// A caller's mistake (the connection is unharmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UseError {
    NotAuthenticated,
    AuthInProgress,
    TooManyChannels,
    NoSuchChannel,
    /// The channel is not open, or its output side was shut (EOF/CLOSE sent or received).
    ChannelNotWritable,
    TooManyPendingRequests,
    Closed,
}

impl std::fmt::Display for UseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// One client connection's protocol state.
pub struct ClientConnection {
    transport: Transport,
    raw: bool,
    /// Raw mode: service-layer messages for the caller.
    inbox: VecDeque<Message>,
    events: VecDeque<Event>,
    auth: userauth::State,
    channels: Table,
    window: u32,
    max_packet: u32,
    /// Global requests sent with want-reply, oldest first.
    global_replies: VecDeque<&'static str>,
}

impl ClientConnection {
    pub fn new(
        config: Arc<TransportConfig>,
        rng: Box<dyn Rng>,
        expected_host_key: Option<Arc<[u8]>>,
        now: Instant,
    ) -> Self {
        ClientConnection {
            transport: Transport::new_client(config, rng, expected_host_key, now),
            raw: false,
            inbox: VecDeque::new(),
            events: VecDeque::new(),
            auth: userauth::State::Idle,
            channels: Table::default(),
            window: DEFAULT_WINDOW,
            max_packet: DEFAULT_MAX_PACKET,
            global_replies: VecDeque::new(),
        }
    }

    /// Transport only: service messages are queued for [`next_message`](Self::next_message)
    /// and the caller sends its own.
    pub fn new_raw(
        config: Arc<TransportConfig>,
        rng: Box<dyn Rng>,
        expected_host_key: Option<Arc<[u8]>>,
        now: Instant,
    ) -> Self {
        let mut c = Self::new(config, rng, expected_host_key, now);
        c.raw = true;
        c
    }

    /// The window and maximum packet offered on channels opened from now on.
    pub fn set_channel_window(&mut self, window: u32, max_packet: u32) {
        self.window = window.max(1);
        self.max_packet = max_packet.clamp(1, 256 * 1024);
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    pub fn transport_mut(&mut self) -> &mut Transport {
        &mut self.transport
    }

    pub fn is_authenticated(&self) -> bool {
        self.transport.is_authenticated()
    }

    /// Memory held on the server's behalf: sealed output not yet taken and received channel
    /// bytes not yet consumed (the proxy charges it to the buffer budget).
    pub fn held_bytes(&self) -> usize {
        self.transport.held_bytes() + self.channels.buffered()
    }

    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    // ---- input ---------------------------------------------------------------------------

    /// Same contract as `ServerConnection::handle_input`: returns the bytes consumed and stops
    /// early while the caller has too many undrained events or messages.
    pub fn handle_input(&mut self, input: &mut [u8], now: Instant) -> usize {
        let mut off = 0usize;
        while self.inbox.len() < MAX_INBOX && self.events.len() < MAX_EVENTS {
            let Some(rest) = input.get_mut(off..) else { return input.len() };
            match self.transport.read(rest, now) {
                Read::Consumed(0) | Read::Wait => break,
                Read::Consumed(n) => off += n,
                Read::Service { consumed, payload, .. } => {
                    off += consumed;
                    match payload {
                        PayloadAt::Input(r) => {
                            self.on_message(rest.get(r).unwrap_or(&[]));
                        }
                        PayloadAt::Inflated => {
                            let v = self.transport.take_inflated();
                            self.on_message(&v);
                            self.transport.restore_inflated(v);
                        }
                    }
                }
                Read::Closed => {
                    off = input.len();
                    break;
                }
            }
        }
        self.pull_transport_events();
        off
    }

    /// The next service-layer message received (raw mode).
    pub fn next_message(&mut self) -> Option<Message> {
        self.inbox.pop_front()
    }

    pub fn handle_job_done(&mut self, done: JobDone, now: Instant) {
        self.transport.handle_job_done(done, now);
        self.pull_transport_events();
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.transport.handle_timeout(now);
        self.pull_transport_events();
    }

    /// Checks the rekey limits (call once per turn after sending bulk data).
    pub fn check_rekey(&mut self, now: Instant) {
        self.transport.check_rekey(now);
        self.pull_transport_events();
    }

    /// Gives back what the queues and buffers grew to during KEX, login and traffic, where
    /// they are empty now: a proxied session's upstream core lives as long as the session and
    /// is mostly idle.
    pub fn release_idle_memory(&mut self) {
        self.transport.release_idle_memory();
        self.channels.release_idle_memory();
        if self.events.is_empty() {
            self.events = VecDeque::new();
        }
        if self.inbox.is_empty() {
            self.inbox = VecDeque::new();
        }
        if self.global_replies.is_empty() {
            self.global_replies = VecDeque::new();
        }
    }

    /// The TCP connection ended under us.
    pub fn peer_closed(&mut self) {
        self.transport.peer_closed();
        self.pull_transport_events();
    }

    /// Ends the connection with DISCONNECT.
    pub fn close(&mut self, reason: DisconnectReason, description: &str) {
        self.transport.close(reason, description);
        self.pull_transport_events();
    }

    // ---- output --------------------------------------------------------------------------

    /// Seals everything staged in one pass and hands the batch to `out` (swapped when `out`
    /// is empty: the sealed bytes leave in the buffer they were encoded in). Returns the
    /// packets in the batch. See [`Transport::poll_transmit`].
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        self.transport.poll_transmit(out)
    }

    /// Lends the core an empty buffer (the runtime's pooled one) to stage output in, if it
    /// holds none (else returns it), as the server core is lent one.
    pub fn lend_output(&mut self, buf: Vec<u8>) -> Option<Vec<u8>> {
        self.transport.lend_output(buf)
    }

    /// Takes the output buffer back when it is empty (an idle core holds none).
    pub fn reclaim_output(&mut self) -> Option<Vec<u8>> {
        self.transport.reclaim_output()
    }

    /// Capacity of the output buffer (0: none; lend one).
    pub fn output_capacity(&self) -> usize {
        self.transport.output_capacity()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.pull_transport_events();
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.transport.poll_timeout()
    }

    /// Sends an encoded service message as is (tests, raw mode).
    pub fn send(&mut self, payload: &[u8]) -> Result<(), transport::Error> {
        self.transport.send(payload)
    }

    pub fn is_closed(&self) -> bool {
        self.transport.is_closed()
    }

    fn pull_transport_events(&mut self) {
        while let Some(e) = self.transport.poll_event() {
            let e = match e {
                transport::Event::Job(j) => Event::Job(j),
                transport::Event::KexDone(k) => Event::KexDone(k),
                transport::Event::ServiceAccepted(s) => {
                    self.events.push_back(Event::ServiceAccepted(s));
                    self.on_service_accepted();
                    continue;
                }
                transport::Event::Closed { code, reason, by_peer } => {
                    Event::Closed { code, reason, by_peer }
                }
                transport::Event::Log(l) => Event::Log(l),
            };
            self.events.push_back(e);
        }
    }

    /// A service-layer fault: DISCONNECT with its code.
    fn fail(&mut self, e: ServiceError) {
        self.transport.fail(e.into_transport());
    }

    fn send_with(&mut self, f: impl FnOnce(&mut Vec<u8>)) {
        if let Err(e) = self.transport.send_with(f) {
            self.fail(e.into());
        }
    }

    // ---- user authentication -------------------------------------------------------------

    /// Starts one authentication attempt for `user`; asks for the `ssh-userauth` service first
    /// if that was not done. The result is [`Event::Authenticated`] or [`Event::AuthFailed`].
    pub fn authenticate(&mut self, user: &str, method: Method) -> Result<(), UseError> {
        if self.transport.is_closed() {
            return Err(UseError::Closed);
        }
        match self.auth {
            userauth::State::Idle => {}
            _ => return Err(UseError::AuthInProgress),
        }
        self.auth = userauth::State::WaitService { user: user.to_string(), method };
        if self.transport.service().is_some() {
            self.on_service_accepted();
        } else if !self.transport.service_requested() {
            if let Err(e) = self.transport.request_service("ssh-userauth") {
                self.fail(e.into());
            }
        }
        Ok(())
    }

    fn on_service_accepted(&mut self) {
        let userauth::State::WaitService { user, method } = std::mem::take(&mut self.auth) else {
            return;
        };
        match method {
            Method::PublicKey(signer) => {
                let Some(sid) = self.transport.session_id() else {
                    return self.fail(ServiceError::protocol("no session id"));
                };
                let data = userauth::signed_data(sid, &user, &*signer);
                self.events.push_back(Event::Sign(SignRequest { signer: signer.clone(), data }));
                self.auth = userauth::State::Signing { user, signer };
            }
            m => {
                self.send_with(|out| userauth::encode_simple(out, &user, &m));
                self.auth = userauth::State::Sent;
            }
        }
    }

    /// The signature asked for with [`Event::Sign`]; an error ends the attempt as a failure.
    pub fn sign_done(&mut self, sig: Result<Vec<u8>, String>) {
        let userauth::State::Signing { user, signer } = std::mem::take(&mut self.auth) else {
            return;
        };
        match sig {
            Ok(sig) => {
                self.send_with(|out| userauth::encode_signed(out, &user, &*signer, &sig));
                self.auth = userauth::State::Sent;
            }
            Err(e) => {
                self.events.push_back(Event::Log(format!("user key signature failed: {e}")));
                self.events.push_back(Event::AuthFailed { methods: String::new(), partial: false });
            }
        }
    }

    fn on_userauth(&mut self, no: u8, p: &[u8]) -> Result<(), ServiceError> {
        if !matches!(self.auth, userauth::State::Sent) {
            if no == msg_no::USERAUTH_BANNER {
                return self.on_banner(p);
            }
            return Err(ServiceError::protocol(format!("unexpected userauth message {no}")));
        }
        match no {
            msg_no::USERAUTH_BANNER => self.on_banner(p)?,
            msg_no::USERAUTH_SUCCESS => {
                if p.len() != 1 {
                    return Err(ServiceError::protocol("trailing bytes in USERAUTH_SUCCESS"));
                }
                self.transport.set_authenticated();
                self.auth = userauth::State::Done;
                self.events.push_back(Event::Authenticated);
            }
            msg_no::USERAUTH_FAILURE => {
                let (methods, partial) = auth_msgs::parse_failure(p)?;
                let methods = String::from_utf8_lossy(methods).into_owned();
                self.auth = userauth::State::Idle;
                self.events.push_back(Event::AuthFailed { methods, partial });
            }
            n => return Err(ServiceError::protocol(format!("unexpected userauth message {n}"))),
        }
        Ok(())
    }

    fn on_banner(&mut self, p: &[u8]) -> Result<(), ServiceError> {
        let text = auth_msgs::parse_banner(p)?;
        self.events.push_back(Event::Banner(String::from_utf8_lossy(text).into_owned()));
        Ok(())
    }

    // ---- channels: opening and requests ------------------------------------------------

    fn open_with(
        &mut self,
        f: impl FnOnce(&mut Vec<u8>, u32, u32, u32),
    ) -> Result<ClientChannel, UseError> {
        if self.transport.is_closed() {
            return Err(UseError::Closed);
        }
        if !self.transport.is_authenticated() {
            return Err(UseError::NotAuthenticated);
        }
        let id = self.channels.insert(Chan::new(self.window)).ok_or(UseError::TooManyChannels)?;
        let (window, max_packet) = (self.window, self.max_packet);
        self.send_with(|out| f(out, id.0, window, max_packet));
        Ok(id)
    }

    /// CHANNEL_OPEN "session"; [`Event::ChannelOpened`] or [`Event::ChannelOpenFailed`] follows.
    pub fn open_session(&mut self) -> Result<ClientChannel, UseError> {
        self.open_with(conn_msgs::encode_open_session)
    }

    /// CHANNEL_OPEN "direct-tcpip" to `target`, telling the server `originator`.
    pub fn open_direct_tcpip(
        &mut self,
        target: (&str, u16),
        originator: (&str, u16),
    ) -> Result<ClientChannel, UseError> {
        self.open_with(|out, id, w, m| {
            conn_msgs::encode_open_direct_tcpip(out, id, w, m, target, originator)
        })
    }

    /// direct-streamlocal@openssh.com: a channel to the server's Unix socket `path`.
    pub fn open_direct_streamlocal(&mut self, path: &str) -> Result<ClientChannel, UseError> {
        self.open_with(|out, id, w, m| {
            conn_msgs::encode_open_direct_streamlocal(out, id, w, m, path)
        })
    }

    fn request(
        &mut self,
        ch: ClientChannel,
        name: &'static str,
        want_reply: bool,
        body: impl FnOnce(&mut crate::wire::Writer<'_>),
    ) -> Result<(), UseError> {
        let c = self.channels.get_mut(ch).ok_or(UseError::NoSuchChannel)?;
        if !c.open || c.close_sent || c.peer_closed {
            return Err(UseError::ChannelNotWritable);
        }
        if want_reply {
            if c.replies.len() >= channels::MAX_PENDING_REPLIES {
                return Err(UseError::TooManyPendingRequests);
            }
            c.replies.push_back(name);
        }
        let peer = c.peer_id;
        self.send_with(|out| {
            let mut w = conn_msgs::channel_request_head(out, peer, name, want_reply);
            body(&mut w);
        });
        Ok(())
    }

    /// pty-req (RFC 4254 §6.2); `modes` is the encoded terminal modes (empty: none).
    pub fn request_pty(
        &mut self,
        ch: ClientChannel,
        term: &str,
        size: WinSize,
        modes: &[u8],
    ) -> Result<(), UseError> {
        self.request(ch, "pty-req", true, |w| {
            w.string(term.as_bytes())
                .u32(size.cols)
                .u32(size.rows)
                .u32(size.width_px)
                .u32(size.height_px)
                .string(modes);
        })
    }

    pub fn request_shell(&mut self, ch: ClientChannel) -> Result<(), UseError> {
        self.request(ch, "shell", true, |_| {})
    }

    pub fn request_exec(&mut self, ch: ClientChannel, command: &[u8]) -> Result<(), UseError> {
        self.request(ch, "exec", true, |w| {
            w.string(command);
        })
    }

    pub fn request_subsystem(&mut self, ch: ClientChannel, name: &str) -> Result<(), UseError> {
        self.request(ch, "subsystem", true, |w| {
            w.string(name.as_bytes());
        })
    }

    /// env (RFC 4254 §6.4), without want-reply as OpenSSH sends it: a refusal is silent.
    pub fn request_env(
        &mut self,
        ch: ClientChannel,
        name: &str,
        value: &[u8],
    ) -> Result<(), UseError> {
        self.request(ch, "env", false, |w| {
            w.string(name.as_bytes()).string(value);
        })
    }

    pub fn window_change(&mut self, ch: ClientChannel, size: WinSize) -> Result<(), UseError> {
        self.request(ch, "window-change", false, |w| {
            w.u32(size.cols).u32(size.rows).u32(size.width_px).u32(size.height_px);
        })
    }

    /// signal (RFC 4254 §6.9): the name without "SIG".
    /// break (RFC 4335): a BREAK of `ms` milliseconds on the server's terminal line (no reply
    /// asked).
    pub fn send_break(&mut self, ch: ClientChannel, ms: u32) -> Result<(), UseError> {
        self.request(ch, "break", false, |w| {
            w.u32(ms);
        })
    }

    /// eow@openssh.com (OpenSSH PROTOCOL §2.1): we read no more of this channel's data.
    pub fn send_eow(&mut self, ch: ClientChannel) -> Result<(), UseError> {
        self.request(ch, "eow@openssh.com", false, |_| {})
    }

    pub fn signal(&mut self, ch: ClientChannel, name: &str) -> Result<(), UseError> {
        self.request(ch, "signal", false, |w| {
            w.string(name.as_bytes());
        })
    }

    /// GLOBAL_REQUEST with want-reply; [`Event::GlobalReply`] follows.
    fn global_request(
        &mut self,
        name: &'static str,
        body: impl FnOnce(&mut crate::wire::Writer<'_>),
    ) -> Result<(), UseError> {
        if self.transport.is_closed() {
            return Err(UseError::Closed);
        }
        if !self.transport.is_authenticated() {
            return Err(UseError::NotAuthenticated);
        }
        if self.global_replies.len() >= channels::MAX_PENDING_REPLIES {
            return Err(UseError::TooManyPendingRequests);
        }
        self.global_replies.push_back(name);
        self.send_with(|out| {
            let mut w = crate::wire::Writer::new(out);
            w.u8(msg_no::GLOBAL_REQUEST).string(name.as_bytes()).bool(true);
            body(&mut w);
        });
        Ok(())
    }

    /// tcpip-forward (RFC 4254 §7.1): the server listens on `addr:port` (0: it picks) and opens
    /// a forwarded-tcpip channel ([`Event::IncomingChannel`]) per connection.
    pub fn tcpip_forward(&mut self, addr: &str, port: u16) -> Result<(), UseError> {
        self.global_request("tcpip-forward", |w| {
            w.string(addr.as_bytes()).u32(u32::from(port));
        })
    }

    pub fn cancel_tcpip_forward(&mut self, addr: &str, port: u16) -> Result<(), UseError> {
        self.global_request("cancel-tcpip-forward", |w| {
            w.string(addr.as_bytes()).u32(u32::from(port));
        })
    }

    /// Asks for agent forwarding on a session (auth-agent-req@openssh.com, no reply wanted).
    pub fn request_agent_forwarding(&mut self, ch: ClientChannel) -> Result<(), UseError> {
        self.request(ch, "auth-agent-req@openssh.com", false, |_| {})
    }

    /// Accepts a channel the server opened ([`Event::IncomingChannel`]) with our window.
    pub fn accept_channel(&mut self, ch: ClientChannel) -> Result<(), UseError> {
        let (window, max_packet) = (self.window, self.max_packet);
        let c = self.channels.get_mut(ch).ok_or(UseError::NoSuchChannel)?;
        if c.open || !c.incoming {
            return Err(UseError::ChannelNotWritable);
        }
        c.open = true;
        c.incoming = false;
        c.initial_window = window;
        c.recv_window = window;
        let peer = c.peer_id;
        self.send_with(|out| {
            conn_msgs::encode_open_confirmation(out, peer, ch.0, window, max_packet)
        });
        Ok(())
    }

    /// Refuses a channel the server opened, with an RFC 4254 §5.1 reason code.
    pub fn reject_channel(
        &mut self,
        ch: ClientChannel,
        code: u32,
        text: &str,
    ) -> Result<(), UseError> {
        let c = self.channels.get(ch).ok_or(UseError::NoSuchChannel)?;
        if c.open || !c.incoming {
            return Err(UseError::ChannelNotWritable);
        }
        let peer = c.peer_id;
        self.channels.remove(ch);
        self.send_with(|out| conn_msgs::encode_open_failure(out, peer, code, text));
        Ok(())
    }

    // ---- channels: data --------------------------------------------------------------------

    /// Bytes received on the channel's data stream, not yet consumed.
    pub fn stdout(&self, ch: ClientChannel) -> &[u8] {
        self.channels.get(ch).map_or(&[], |c| c.stdout.bytes())
    }

    /// Bytes received as extended data (stderr), not yet consumed.
    pub fn stderr(&self, ch: ClientChannel) -> &[u8] {
        self.channels.get(ch).map_or(&[], |c| c.stderr.bytes())
    }

    /// Marks `n` bytes of `stdout(ch)` taken; they go back to the server as window.
    pub fn consume(&mut self, ch: ClientChannel, n: usize) -> usize {
        self.consume_inner(ch, n, false)
    }

    /// Marks `n` bytes of `stderr(ch)` taken.
    pub fn consume_stderr(&mut self, ch: ClientChannel, n: usize) -> usize {
        self.consume_inner(ch, n, true)
    }

    fn consume_inner(&mut self, ch: ClientChannel, n: usize, stderr: bool) -> usize {
        let Some(c) = self.channels.get_mut(ch) else { return 0 };
        let n = if stderr { c.stderr.take(n) } else { c.stdout.take(n) };
        c.credited(n);
        self.after_consume(ch);
        n
    }

    /// Sends WINDOW_ADJUST when due, and our deferred CLOSE once the buffers are drained.
    fn after_consume(&mut self, ch: ClientChannel) {
        let Some(c) = self.channels.get_mut(ch) else { return };
        let peer = c.peer_id;
        if let Some(n) = c.take_window_adjust() {
            self.send_with(|out| conn_msgs::encode_window_adjust(out, peer, n));
        }
        self.maybe_finish(ch);
    }

    /// How many bytes `send_data` takes now.
    pub fn send_capacity(&self, ch: ClientChannel) -> usize {
        match self.channels.get(ch) {
            Some(c) if c.can_send() && !self.transport.is_backpressured() => c.peer_window as usize,
            _ => 0,
        }
    }

    /// Sends `data` as CHANNEL_DATA within the peer's window and maximum packet; returns how
    /// much was taken (the rest waits for [`Event::ChannelWritable`]).
    pub fn send_data(&mut self, ch: ClientChannel, data: &[u8]) -> usize {
        let Some(c) = self.channels.get(ch) else { return 0 };
        if !c.can_send() {
            return 0;
        }
        let (peer, max) = (c.peer_id, (c.peer_max_packet as usize).clamp(1, MAX_CHUNK));
        let mut sent = 0usize;
        let mut window = c.peer_window as usize;
        while sent < data.len() && window > 0 && !self.transport.is_backpressured() {
            let n = (data.len() - sent).min(window).min(max);
            let chunk = data.get(sent..sent + n).unwrap_or(&[]);
            if let Err(e) = self.transport.send_with(|out| conn_msgs::encode_data(out, peer, chunk))
            {
                self.fail(e.into());
                break;
            }
            sent += n;
            window -= n;
        }
        if let Some(c) = self.channels.get_mut(ch) {
            c.peer_window = u32::try_from(window).unwrap_or(0);
        }
        sent
    }

    /// CHANNEL_EOF: we send no more data (once; after it `send_data` takes nothing).
    pub fn send_eof(&mut self, ch: ClientChannel) -> Result<(), UseError> {
        let c = self.channels.get_mut(ch).ok_or(UseError::NoSuchChannel)?;
        if !c.can_send() {
            return Err(UseError::ChannelNotWritable);
        }
        c.eof_sent = true;
        let peer = c.peer_id;
        self.send_with(|out| conn_msgs::encode_channel_only(out, msg_no::CHANNEL_EOF, peer));
        Ok(())
    }

    /// CHANNEL_CLOSE from our side; what the server still sends is dropped.
    /// [`Event::ChannelClosed`] follows the server's CLOSE.
    pub fn close_channel(&mut self, ch: ClientChannel) -> Result<(), UseError> {
        let c = self.channels.get_mut(ch).ok_or(UseError::NoSuchChannel)?;
        if !c.open || c.close_sent {
            return Err(UseError::ChannelNotWritable);
        }
        c.close_sent = true;
        // Nobody reads what is buffered now: give it back so the accounting stays whole.
        let n = c.buffered();
        c.stdout.take(n);
        c.stderr.take(n);
        c.credited(n);
        let peer = c.peer_id;
        self.send_with(|out| conn_msgs::encode_channel_only(out, msg_no::CHANNEL_CLOSE, peer));
        self.maybe_finish(ch);
        Ok(())
    }

    /// After the server's CLOSE: our CLOSE goes once the caller has drained the buffers, then
    /// the channel number is freed.
    fn maybe_finish(&mut self, ch: ClientChannel) {
        let Some(c) = self.channels.get_mut(ch) else { return };
        if !c.peer_closed {
            return;
        }
        if !c.close_sent && c.buffered() == 0 {
            c.close_sent = true;
            let peer = c.peer_id;
            self.send_with(|out| conn_msgs::encode_channel_only(out, msg_no::CHANNEL_CLOSE, peer));
        }
        if self.channels.get(ch).is_some_and(Chan::is_finished) {
            self.channels.remove(ch);
            self.events.push_back(Event::ChannelClosed { channel: ch });
        }
    }

    // ---- received messages -----------------------------------------------------------------

    fn on_message(&mut self, p: &[u8]) {
        let Some(&no) = p.first() else { return };
        // USERAUTH_SUCCESS changes which messages may follow in this very read (a server sends
        // GLOBAL_REQUEST right after it), so the phase moves now.
        if self.raw {
            if no == msg_no::USERAUTH_SUCCESS && !self.transport.is_authenticated() {
                self.transport.set_authenticated();
            }
            self.inbox.push_back(p.to_vec());
            return;
        }
        let r = if (50..80).contains(&no) {
            if self.transport.is_authenticated() {
                // RFC 4252 §5.1: later userauth messages are ignored.
                Ok(())
            } else {
                self.on_userauth(no, p)
            }
        } else {
            self.on_connection(no, p)
        };
        if let Err(e) = r {
            self.fail(e);
        }
    }

    fn chan(&mut self, id: u32) -> Result<&mut Chan, ServiceError> {
        self.channels
            .get_mut(ClientChannel(id))
            .ok_or_else(|| ServiceError::protocol(format!("message for unknown channel {id}")))
    }

    fn open_chan(&mut self, id: u32) -> Result<&mut Chan, ServiceError> {
        let c = self.chan(id)?;
        if !c.open || c.peer_closed {
            return Err(ServiceError::protocol(format!("message for channel {id} not open")));
        }
        Ok(c)
    }

    fn on_connection(&mut self, no: u8, p: &[u8]) -> Result<(), ServiceError> {
        if !self.transport.is_authenticated() {
            return Err(ServiceError::protocol(format!("message {no} before authentication")));
        }
        match no {
            msg_no::GLOBAL_REQUEST => {
                let (_name, want_reply, _) = conn_msgs::parse_global_request(p)?;
                if want_reply {
                    self.send_with(conn_msgs::encode_request_failure);
                }
            }
            msg_no::REQUEST_SUCCESS | msg_no::REQUEST_FAILURE => {
                let request = self.global_replies.pop_front().ok_or_else(|| {
                    ServiceError::protocol("global request reply we did not ask for")
                })?;
                let ok = no == msg_no::REQUEST_SUCCESS;
                // tcpip-forward to port 0: the bound port follows (RFC 4254 §7.1).
                let mut r = Reader::new(p);
                r.u8("message number")?;
                let port = if ok && !r.is_empty() { Some(r.u32("bound port")?) } else { None };
                self.events.push_back(Event::GlobalReply { request, ok, port });
            }
            msg_no::CHANNEL_OPEN => self.on_channel_open(p)?,
            msg_no::CHANNEL_OPEN_CONFIRMATION => {
                let (id, sender, window, max_packet) = conn_msgs::parse_open_confirmation(p)?;
                let c = self.chan(id)?;
                if c.open || c.incoming {
                    return Err(ServiceError::protocol("open confirmation for a channel not ours"));
                }
                c.open = true;
                c.peer_id = sender;
                c.peer_window = window;
                c.peer_max_packet = max_packet;
                self.events.push_back(Event::ChannelOpened { channel: ClientChannel(id) });
            }
            msg_no::CHANNEL_OPEN_FAILURE => {
                let (id, code, text) = conn_msgs::parse_open_failure(p)?;
                let c = self.chan(id)?;
                if c.open || c.incoming {
                    return Err(ServiceError::protocol("open failure for an open channel"));
                }
                self.channels.remove(ClientChannel(id));
                let text = String::from_utf8_lossy(text.get(..256).unwrap_or(text)).into_owned();
                let channel = ClientChannel(id);
                self.events.push_back(Event::ChannelOpenFailed { channel, code, text });
            }
            msg_no::CHANNEL_WINDOW_ADJUST => {
                let (id, n) = conn_msgs::parse_window_adjust(p)?;
                let c = self.open_chan(id)?;
                let was_zero = c.peer_window == 0;
                c.peer_window = c
                    .peer_window
                    .checked_add(n)
                    .ok_or_else(|| ServiceError::protocol("window adjust past 2^32-1"))?;
                if was_zero && n > 0 && c.can_send() {
                    self.events.push_back(Event::ChannelWritable { channel: ClientChannel(id) });
                }
            }
            msg_no::CHANNEL_DATA | msg_no::CHANNEL_EXTENDED_DATA => {
                self.on_data(p, no == msg_no::CHANNEL_EXTENDED_DATA)?;
            }
            msg_no::CHANNEL_EOF => {
                let id = conn_msgs::recipient(p)?;
                let c = self.open_chan(id)?;
                if c.peer_eof {
                    return Err(ServiceError::protocol("second EOF"));
                }
                c.peer_eof = true;
                self.events.push_back(Event::ChannelEof { channel: ClientChannel(id) });
            }
            msg_no::CHANNEL_CLOSE => {
                let id = conn_msgs::recipient(p)?;
                self.open_chan(id)?.peer_closed = true;
                self.maybe_finish(ClientChannel(id));
            }
            msg_no::CHANNEL_REQUEST => self.on_channel_request(p)?,
            msg_no::CHANNEL_SUCCESS | msg_no::CHANNEL_FAILURE => {
                let id = conn_msgs::recipient(p)?;
                let request = self.open_chan(id)?.replies.pop_front().ok_or_else(|| {
                    ServiceError::protocol("channel request reply we did not ask for")
                })?;
                let ok = no == msg_no::CHANNEL_SUCCESS;
                let channel = ClientChannel(id);
                self.events.push_back(Event::RequestDone { channel, request, ok });
            }
            n => return Err(ServiceError::protocol(format!("unexpected message {n}"))),
        }
        Ok(())
    }

    /// The server opens a channel: forwarded-tcpip and auth-agent go to the caller; x11,
    /// session and anything else are refused at once.
    fn on_channel_open(&mut self, p: &[u8]) -> Result<(), ServiceError> {
        let o = conn_msgs::ChannelOpen::parse(p)?;
        let sender = o.sender;
        let refuse = |this: &mut Self, code: u32, text: &'static str| {
            this.send_with(|out| conn_msgs::encode_open_failure(out, sender, code, text));
        };
        let (kind, connected, originator) = match o.channel_type {
            b"forwarded-tcpip" => {
                let (c, orig) = conn_msgs::parse_direct_tcpip(o.rest)?;
                let c = Some((c.0.to_string(), c.1));
                (IncomingKind::ForwardedTcpip, c, Some((orig.0.to_string(), orig.1)))
            }
            b"auth-agent@openssh.com" => (IncomingKind::AuthAgent, None, None),
            _ => {
                refuse(self, conn_msgs::OPEN_UNKNOWN_CHANNEL_TYPE, "not accepted by this client");
                return Ok(());
            }
        };
        let mut c = Chan::new(self.window);
        c.incoming = true;
        c.peer_id = sender;
        c.peer_window = o.window;
        c.peer_max_packet = o.max_packet;
        let Some(channel) = self.channels.insert(c) else {
            refuse(self, conn_msgs::OPEN_RESOURCE_SHORTAGE, "too many channels");
            return Ok(());
        };
        self.events.push_back(Event::IncomingChannel { channel, kind, connected, originator });
        Ok(())
    }

    fn on_data(&mut self, p: &[u8], extended: bool) -> Result<(), ServiceError> {
        let (id, code, data) = conn_msgs::parse_data(p, extended)?;
        let max_packet = self.max_packet as usize;
        let c = self.open_chan(id)?;
        if data.len() > max_packet {
            return Err(ServiceError::protocol("channel data larger than the maximum packet"));
        }
        if data.len() > c.recv_window as usize {
            return Err(ServiceError::protocol("channel data past the window"));
        }
        if c.peer_eof {
            return Err(ServiceError::protocol("channel data after EOF"));
        }
        let n = u32::try_from(data.len()).unwrap_or(u32::MAX);
        c.received(n);
        let was_empty = c.buffered() == 0;
        // After our CLOSE nobody reads; extended types other than stderr have no reader.
        if c.close_sent || (extended && code != conn_msgs::EXTENDED_DATA_STDERR) {
            c.credited(data.len());
            self.after_consume(ClientChannel(id));
            return Ok(());
        }
        if extended {
            c.stderr.push(data);
        } else {
            c.stdout.push(data);
        }
        if was_empty && !data.is_empty() {
            self.events.push_back(Event::ChannelReadable { channel: ClientChannel(id) });
        }
        Ok(())
    }

    fn on_channel_request(&mut self, p: &[u8]) -> Result<(), ServiceError> {
        let (id, name, want_reply, r) = conn_msgs::parse_channel_request(p)?;
        let c = self.open_chan(id)?;
        let peer = c.peer_id;
        let channel = ClientChannel(id);
        match name {
            b"exit-status" => {
                let mut r = r;
                let code = r.u32("exit status")?;
                r.finish("exit-status")?;
                self.events.push_back(Event::ExitStatus { channel, code });
            }
            b"exit-signal" => {
                let (sig, core_dumped, msg) = conn_msgs::parse_exit_signal(r)?;
                let signal = String::from_utf8_lossy(sig).into_owned();
                let message = String::from_utf8_lossy(msg).into_owned();
                self.events.push_back(Event::ExitSignal { channel, signal, core_dumped, message });
            }
            b"eow@openssh.com" => {
                r.finish("eow@openssh.com")?;
                self.events.push_back(Event::Eow { channel });
            }
            // keepalive@openssh.com and anything else: nothing to do.
            _ => {
                if want_reply {
                    self.send_with(|out| {
                        conn_msgs::encode_channel_only(out, msg_no::CHANNEL_FAILURE, peer)
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
