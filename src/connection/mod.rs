//! ssh-connection, server side (RFC 4254), sans-IO.
//!
//! [`Connection`] takes the client's messages (numbers ≥ 80, only after authentication: the
//! transport's state table refuses them before) and answers through an
//! [`crate::service::Outbound`]. What needs the outside world leaves as an [`Event`]:
//! connect a backend, listen on a port, start a command, inbound data waiting. The runtime
//! reports back with the mutators (`backend_connected`, `backend_consumed`, `send_data`,
//! `child_exited`, …).
//!
//! Peer faults and what they cost (RFC 4254 leaves the choice to us):
//! - data past our window, or larger than our maximum packet, on any channel: DISCONNECT 2.
//!   Dropping it would hide a broken or hostile peer and desynchronise both windows; closing
//!   only the channel would still leave the peer believing in a window we no longer honour.
//! - WINDOW_ADJUST that takes the peer's window past 2^32−1 (RFC 4254 §5.2): DISCONNECT 2.
//! - any channel message for a channel number we do not have: DISCONNECT 2.
//! - data or EOF after the client's EOF or CLOSE: DISCONNECT 2.

pub mod channel;
pub mod forward;
pub mod msgs;
pub mod session;

use crate::config::users::KeyOptions;
use crate::service::{Outbound, ServiceError};
use crate::transport::DisconnectReason;
use crate::wire::msg_no;
use channel::{Channel, Kind, Phase};
pub use session::{ExitStatus, Pty};
use session::{Session, SessionAction};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// Default bound on session channels per connection (`--max-sessions`; OpenSSH's MaxSessions,
/// which counts shell/exec/subsystem sessions only, not forwarded connections).
pub const DEFAULT_MAX_SESSIONS: usize = 10;
/// Default bound on channels of any kind per connection (`--max-channels`): room for a jump
/// host carrying many `-L`/`-R`/`-D` forwards. Memory stays bounded by
/// [`DEFAULT_WINDOW_BUDGET`], not by this count.
pub const DEFAULT_MAX_CHANNELS: usize = 1024;
/// Sum of the receive windows we grant over all channels of one connection: what a client can
/// make us buffer (data sent within the window that the backend has not taken yet) is bounded
/// by it. Once the channels in the table hold this much window, a new channel gets only one
/// maximum packet of window, so the worst case per connection is
/// `window_budget + max_channels * max_packet` (32 MiB + 1024 * 32 KiB = 64 MiB by default).
pub const DEFAULT_WINDOW_BUDGET: usize = 32 * 1024 * 1024;
/// Our default window per channel (RFC 4254 §5.2): 2 MiB.
pub const DEFAULT_WINDOW: u32 = 2 * 1024 * 1024;
/// Our default maximum data per CHANNEL_DATA message: 32 KiB.
pub const DEFAULT_MAX_PACKET: u32 = 32 * 1024;
/// Default bound on active or pending remote listeners per connection.
pub const DEFAULT_MAX_LISTENERS: usize = 16;
/// Default missed keepalive replies before we give up (`--keepalive-count-max`).
pub const DEFAULT_KEEPALIVE_COUNT_MAX: u32 = 3;
/// Most global-request replies waiting on the runtime at once (they must go out in order,
/// RFC 4254 §4).
pub const MAX_PENDING_GLOBAL_REPLIES: usize = 32;
/// Largest data we put into one CHANNEL_DATA, whatever the peer's maximum packet.
pub const MAX_SEND_CHUNK: usize = 64 * 1024;

/// Our number for a channel (the "recipient channel" the client uses): a table slot plus a
/// generation, so a number is not reused right after its channel closed and a late call from
/// the runtime about an old channel cannot touch a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(pub u32);

/// A remote-forward listener, named by the request that asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerId(pub u32);

/// The ssh-connection side of the server's configuration.
#[derive(Debug, Clone)]
pub struct ConnectionPolicy {
    /// Session channels open at once (`--max-sessions`).
    pub max_sessions: usize,
    /// Channels of any kind open or opening at once (`--max-channels`).
    pub max_channels: usize,
    /// Bound on the sum of the receive windows of all channels (see [`DEFAULT_WINDOW_BUDGET`]).
    pub window_budget: usize,
    pub window: u32,
    pub max_packet: u32,
    /// `--permit-open HOST:PORT` patterns; empty: no direct-tcpip.
    pub permit_open: Vec<String>,
    /// `--permit-listen [HOST:]PORT` patterns; empty: no tcpip-forward.
    pub permit_listen: Vec<String>,
    /// `--permit-open-path GLOB`: Unix sockets direct-streamlocal may reach; empty: none.
    pub permit_open_path: Vec<String>,
    /// `--permit-listen-path GLOB`: where streamlocal-forward may listen; empty: nowhere.
    pub permit_listen_path: Vec<String>,
    /// `env` names accepted (wildcards allowed).
    pub env_allow: Vec<String>,
    /// `--subsystem NAME=COMMAND`: the subsystems a session may start (sshd's Subsystem).
    pub subsystems: Vec<(String, String)>,
    pub max_listeners: usize,
    /// `--keepalive-interval`; None: no server keepalives.
    pub keepalive_interval: Option<Duration>,
    pub keepalive_count_max: u32,
}

impl Default for ConnectionPolicy {
    fn default() -> Self {
        ConnectionPolicy {
            max_sessions: DEFAULT_MAX_SESSIONS,
            max_channels: DEFAULT_MAX_CHANNELS,
            window_budget: DEFAULT_WINDOW_BUDGET,
            window: DEFAULT_WINDOW,
            max_packet: DEFAULT_MAX_PACKET,
            permit_open: Vec::new(),
            permit_listen: Vec::new(),
            permit_open_path: Vec::new(),
            permit_listen_path: Vec::new(),
            env_allow: vec!["LANG".into(), "LC_*".into()],
            subsystems: Vec::new(),
            max_listeners: DEFAULT_MAX_LISTENERS,
            keepalive_interval: None,
            keepalive_count_max: DEFAULT_KEEPALIVE_COUNT_MAX,
        }
    }
}

/// What the runtime must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// direct-tcpip allowed: connect to `host:port` (without blocking), then call
    /// `backend_connected` or `backend_failed`.
    OpenBackend {
        channel: ChannelId,
        host: String,
        port: u16,
        originator: String,
        originator_port: u16,
    },
    /// direct-streamlocal@openssh.com allowed: connect to the Unix socket `path` (without
    /// blocking), then `backend_connected` or `backend_failed`.
    OpenUnixBackend { channel: ChannelId, path: String },
    /// tcpip-forward allowed: listen on `addr:port` (port 0: any), then call `listen_result`.
    Listen { listener: ListenerId, addr: String, port: u16 },
    /// streamlocal-forward@openssh.com allowed: listen on the Unix socket `path` (mode 0600,
    /// removed when the listener goes), then call `listen_result` (the port is ignored).
    ListenUnix { listener: ListenerId, path: String },
    /// Stop listening (cancel-tcpip-forward).
    Unlisten { listener: ListenerId },
    /// exec / shell / subsystem on a session: start the command; `forced_command` is the key's
    /// `command=` (run it instead, with the request as SSH_ORIGINAL_COMMAND). CHANNEL_SUCCESS
    /// already went (if asked): a command that cannot start is reported like one that failed,
    /// with a message through `send_stderr` and `child_exited(ExitStatus::Code(1))`.
    Exec {
        channel: ChannelId,
        command: Option<String>,
        subsystem: Option<String>,
        env: Vec<(String, String)>,
        forced_command: Option<String>,
        /// pty-req was accepted before the command: run it on a terminal of this kind and size.
        pty: Option<Pty>,
    },
    /// window-change on a session running with a PTY: resize it (TIOCSWINSZ).
    WindowChange { channel: ChannelId, size: msgs::WinSize },
    /// signal on a proxied session: pass it upstream (name without "SIG").
    Signal { channel: ChannelId, name: String },
    /// break on a proxied session: pass it upstream (length in ms).
    Break { channel: ChannelId, ms: u32 },
    /// eow@openssh.com on a proxied session: pass it upstream.
    Eow { channel: ChannelId },
    /// Inbound data is waiting (`inbound`), and there was none before: write it to the
    /// backend, then `backend_consumed`.
    ChannelReadable { channel: ChannelId },
    /// The peer's window opened from zero (or output backpressure ended): `send_capacity`.
    ChannelWritable { channel: ChannelId },
    /// The client sent EOF: after writing what `inbound` still holds, shut down the backend's
    /// write side.
    ChannelEof { channel: ChannelId },
    /// The channel is gone (both CLOSEs, or a refused open of ours): drop its backend or
    /// child. Inbound data not yet consumed is dropped.
    ChannelClosed { channel: ChannelId },
    /// The client confirmed a forwarded-tcpip channel we opened: start relaying.
    ChannelOpened { channel: ChannelId },
    /// The client refused a forwarded-tcpip channel we opened (the id is free again).
    ChannelOpenFailed { channel: ChannelId, code: u32, text: String },
    /// The client asked for agent forwarding on this session (`ssh -A`) and it is allowed
    /// (`allow_agent_forwarding`): `open_agent_channel` reaches its agent from now on.
    AgentForwarding { channel: ChannelId },
}

/// Where inbound CHANNEL_DATA can go without a copy: the runtime's backend writer, offered the
/// bytes while the packet is still in the input buffer.
pub trait DataSink {
    /// Writes what the backend of `channel` takes now (non-blocking) and returns how many
    /// bytes that was; 0 if it has no backend yet or would block. The rest is queued in
    /// `inbound` with a `ChannelReadable`.
    fn write(&mut self, channel: ChannelId, data: &[u8]) -> usize;
}

/// Why `open_agent_channel` could not open a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentChannelError {
    /// No open session asked for agent forwarding (or it is not allowed).
    NotRequested,
    /// The channel table is full.
    TooManyChannels,
}

/// Why `forwarded_connection` could not open a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardError {
    /// No active listener with that id.
    NoListener,
    /// The channel table is full.
    TooManyChannels,
}

#[derive(Debug)]
struct Listener {
    id: ListenerId,
    addr: String,
    /// As requested (0: any).
    requested_port: u16,
    /// As bound, once active (0 for a Unix socket).
    bound_port: Option<u16>,
    /// A streamlocal-forward: `addr` is the socket path.
    unix: bool,
    /// The slot of its reply in `replies`, when the client wants one.
    reply: Option<u64>,
}

#[derive(Debug)]
enum Reply {
    Pending,
    Success(Option<u32>),
    Failure,
}

/// One connection's channels and global-request state.
pub struct Connection {
    policy: Arc<ConnectionPolicy>,
    restrictions: KeyOptions,
    channels: Vec<Option<Channel>>,
    /// Per slot, bumped when a channel leaves it; the high 16 bits of a [`ChannelId`].
    gens: Vec<u16>,
    listeners: Vec<Listener>,
    next_listener: u32,
    /// Replies to the client's global requests, in request order (RFC 4254 §4).
    replies: VecDeque<(u64, Reply)>,
    next_reply: u64,
    no_more_sessions: bool,
    /// The session proxy carries this connection upstream: subsystems of any name pass
    /// through and direct-tcpip is the upstream's to allow (key options still apply).
    proxied: bool,
    keepalives_outstanding: u32,
    keepalives_missed: u32,
    events: VecDeque<Event>,
    /// The runtime lets sessions ask for agent forwarding (the session proxy, for routes with
    /// `auth = "agent"`); off: auth-agent-req is refused, as before.
    agent_allowed: bool,
    /// The session that asked for agent forwarding.
    agent_session: Option<ChannelId>,
    /// Inbound channel bytes copied into a channel's queue because the backend did not take
    /// them straight from the packet (the copy-count check).
    copied: u64,
}

impl Connection {
    /// `policy` is shared (an `Arc`) by all connections made from one config.
    pub fn new(policy: impl Into<Arc<ConnectionPolicy>>) -> Self {
        let policy = policy.into();
        Connection {
            policy,
            restrictions: KeyOptions::default(),
            channels: Vec::new(),
            gens: Vec::new(),
            listeners: Vec::new(),
            next_listener: 0,
            replies: VecDeque::new(),
            next_reply: 0,
            no_more_sessions: false,
            proxied: false,
            keepalives_outstanding: 0,
            keepalives_missed: 0,
            events: VecDeque::new(),
            agent_allowed: false,
            agent_session: None,
            copied: 0,
        }
    }

    /// Lets sessions ask for agent forwarding (`auth-agent-req@openssh.com`), unless the
    /// login key says `no-agent-forwarding` / `restrict`.
    pub fn allow_agent_forwarding(&mut self, allow: bool) {
        self.agent_allowed = allow;
    }

    /// The open session that asked for agent forwarding, if any.
    pub fn agent_requested(&self) -> Option<ChannelId> {
        self.agent_session.filter(|&id| self.get(id).is_some_and(|c| !c.close_sent))
    }

    /// The options of the key the user logged in with (`permitopen=`, `command=`, …).
    /// Marks the connection as carried upstream by the session proxy (see `proxied`).
    pub fn set_proxied(&mut self) {
        self.proxied = true;
    }

    pub fn set_restrictions(&mut self, r: KeyOptions) {
        self.restrictions = r;
    }

    pub fn restrictions(&self) -> &KeyOptions {
        &self.restrictions
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Channels in the table (open, opening or closing).
    /// Memory held for channels' inbound data (bounded by the receive windows).
    pub fn held_bytes(&self) -> usize {
        self.channels.iter().flatten().map(Channel::held_bytes).sum()
    }

    pub fn channel_count(&self) -> usize {
        self.channels.iter().filter(|c| c.is_some()).count()
    }

    // ---- input -------------------------------------------------------------------------

    /// One message numbered ≥ 80 from the client.
    pub fn handle_message(&mut self, out: &mut dyn Outbound, p: &[u8]) -> Result<(), ServiceError> {
        self.handle_message_with(out, p, None)
    }

    /// As [`Connection::handle_message`], offering CHANNEL_DATA to `sink` first (zero-copy
    /// path: the runtime writes straight from the decrypted packet to the backend).
    pub fn handle_message_with(
        &mut self,
        out: &mut dyn Outbound,
        p: &[u8],
        sink: Option<&mut dyn DataSink>,
    ) -> Result<(), ServiceError> {
        let Some(&msg) = p.first() else {
            return Err(ServiceError::protocol("empty message"));
        };
        match msg {
            msg_no::GLOBAL_REQUEST => self.on_global_request(out, p),
            msg_no::REQUEST_SUCCESS | msg_no::REQUEST_FAILURE => self.on_global_reply(),
            msg_no::CHANNEL_OPEN => self.on_channel_open(out, p),
            msg_no::CHANNEL_OPEN_CONFIRMATION => self.on_open_confirmation(p),
            msg_no::CHANNEL_OPEN_FAILURE => self.on_open_failure(p),
            msg_no::CHANNEL_WINDOW_ADJUST => self.on_window_adjust(out, p),
            msg_no::CHANNEL_DATA => self.on_data(out, p, false, sink),
            msg_no::CHANNEL_EXTENDED_DATA => self.on_data(out, p, true, None),
            msg_no::CHANNEL_EOF => self.on_eof(p),
            msg_no::CHANNEL_CLOSE => self.on_close(out, p),
            msg_no::CHANNEL_REQUEST => self.on_channel_request(out, p),
            // We never ask with want-reply; a reply for a channel we have is harmless.
            msg_no::CHANNEL_SUCCESS | msg_no::CHANNEL_FAILURE => {
                self.open_channel(msgs::recipient(p)?)?;
                Ok(())
            }
            _ => Err(ServiceError::protocol(format!("unexpected connection message {msg}"))),
        }
    }

    fn on_global_request(&mut self, out: &mut dyn Outbound, p: &[u8]) -> Result<(), ServiceError> {
        let (name, want_reply, mut r) = msgs::parse_global_request(p)?;
        match name {
            b"tcpip-forward" => {
                let (addr, port) = msgs::host_port(&mut r, "address to bind")?;
                r.finish("tcpip-forward")?;
                // Proxied: the upstream decides where it listens; key options still apply.
                let permitted = if self.proxied {
                    let r = &self.restrictions;
                    !r.no_port_forwarding
                        && r.permit_listen
                            .as_ref()
                            .map_or(true, |k| forward::permit_listen_allows(k, addr, port))
                } else {
                    forward::may_listen(&self.policy.permit_listen, &self.restrictions, addr, port)
                };
                let allowed = permitted && self.listeners.len() < self.policy.max_listeners;
                if !allowed {
                    return self.reply(out, want_reply, Reply::Failure);
                }
                let reply = if want_reply { Some(self.push_reply(Reply::Pending)?) } else { None };
                let id = ListenerId(self.next_listener);
                self.next_listener = self.next_listener.wrapping_add(1);
                self.listeners.push(Listener {
                    id,
                    addr: addr.to_string(),
                    requested_port: port,
                    bound_port: None,
                    unix: false,
                    reply,
                });
                self.events.push_back(Event::Listen { listener: id, addr: addr.to_string(), port });
                Ok(())
            }
            b"streamlocal-forward@openssh.com" => {
                let path = msgs::socket_path(&mut r, "socket path")?;
                r.finish("streamlocal-forward")?;
                let allowed = msgs::socket_path_usable(path)
                    && forward::may_listen_path(
                        &self.policy.permit_listen_path,
                        &self.restrictions,
                        path,
                    )
                    && self.listeners.len() < self.policy.max_listeners
                    && !self.listeners.iter().any(|l| l.unix && l.addr == path);
                if !allowed {
                    return self.reply(out, want_reply, Reply::Failure);
                }
                let reply = if want_reply { Some(self.push_reply(Reply::Pending)?) } else { None };
                let id = ListenerId(self.next_listener);
                self.next_listener = self.next_listener.wrapping_add(1);
                self.listeners.push(Listener {
                    id,
                    addr: path.to_string(),
                    requested_port: 0,
                    bound_port: None,
                    unix: true,
                    reply,
                });
                self.events.push_back(Event::ListenUnix { listener: id, path: path.to_string() });
                Ok(())
            }
            b"cancel-streamlocal-forward@openssh.com" => {
                let path = msgs::socket_path(&mut r, "socket path")?;
                r.finish("cancel-streamlocal-forward")?;
                let found = self.listeners.iter().position(|l| {
                    l.unix && l.addr == path && l.bound_port.is_some() && l.reply.is_none()
                });
                match found {
                    Some(i) => {
                        let l = self.listeners.remove(i);
                        self.events.push_back(Event::Unlisten { listener: l.id });
                        self.reply(out, want_reply, Reply::Success(None))
                    }
                    None => self.reply(out, want_reply, Reply::Failure),
                }
            }
            b"cancel-tcpip-forward" => {
                let (addr, port) = msgs::host_port(&mut r, "address to bind")?;
                r.finish("cancel-tcpip-forward")?;
                let found = self.listeners.iter().position(|l| {
                    !l.unix && l.addr == addr && l.bound_port == Some(port) && l.reply.is_none()
                });
                match found {
                    Some(i) => {
                        let l = self.listeners.remove(i);
                        self.events.push_back(Event::Unlisten { listener: l.id });
                        self.reply(out, want_reply, Reply::Success(None))
                    }
                    None => self.reply(out, want_reply, Reply::Failure),
                }
            }
            b"no-more-sessions@openssh.com" => {
                self.no_more_sessions = true;
                self.reply(out, want_reply, Reply::Success(None))
            }
            _ => self.reply(out, want_reply, Reply::Failure),
        }
    }

    /// Queues a reply slot; replies must leave in request order.
    fn push_reply(&mut self, reply: Reply) -> Result<u64, ServiceError> {
        if self.replies.len() >= MAX_PENDING_GLOBAL_REPLIES {
            return Err(ServiceError::protocol("too many outstanding global requests"));
        }
        let id = self.next_reply;
        self.next_reply = self.next_reply.wrapping_add(1);
        self.replies.push_back((id, reply));
        Ok(id)
    }

    fn reply(
        &mut self,
        out: &mut dyn Outbound,
        want_reply: bool,
        reply: Reply,
    ) -> Result<(), ServiceError> {
        if want_reply {
            self.push_reply(reply)?;
            self.flush_replies(out)?;
        }
        Ok(())
    }

    fn flush_replies(&mut self, out: &mut dyn Outbound) -> Result<(), ServiceError> {
        while let Some((_, r)) = self.replies.front() {
            match r {
                Reply::Pending => break,
                Reply::Success(port) => {
                    let port = *port;
                    out.send_with(&mut |o| msgs::encode_request_success(o, port))?;
                }
                Reply::Failure => out.send_with(&mut |o| msgs::encode_request_failure(o))?,
            }
            self.replies.pop_front();
        }
        Ok(())
    }

    /// A reply to one of our keepalives: the client is alive.
    fn on_global_reply(&mut self) -> Result<(), ServiceError> {
        if self.keepalives_outstanding == 0 {
            return Err(ServiceError::protocol("global request reply without a request"));
        }
        self.keepalives_outstanding -= 1;
        self.keepalives_missed = 0;
        Ok(())
    }

    fn on_channel_open(&mut self, out: &mut dyn Outbound, p: &[u8]) -> Result<(), ServiceError> {
        let open = msgs::ChannelOpen::parse(p)?;
        let sender = open.sender;
        let refuse = |out: &mut dyn Outbound, code: u32, text: &str| -> Result<(), ServiceError> {
            out.send_with(&mut |o| msgs::encode_open_failure(o, sender, code, text))?;
            Ok(())
        };
        match open.channel_type {
            b"session" => {
                open.rest.finish("session open")?;
                if self.no_more_sessions {
                    return refuse(out, msgs::OPEN_ADMINISTRATIVELY_PROHIBITED, "no more sessions");
                }
                if self.session_count() >= self.policy.max_sessions {
                    return refuse(out, msgs::OPEN_RESOURCE_SHORTAGE, "too many sessions");
                }
                let Some(id) = self.free_slot() else {
                    return refuse(out, msgs::OPEN_RESOURCE_SHORTAGE, "too many channels");
                };
                let window = self.new_window();
                let session = Session { any_subsystem: self.proxied, ..Session::default() };
                let mut ch = Channel::new(Kind::Session(session), Phase::Open, sender, window);
                ch.peer_window = open.window;
                ch.peer_max_packet = open.max_packet;
                self.insert(id, ch);
                let (w, m) = (window, self.policy.max_packet);
                out.send_with(&mut |o| msgs::encode_open_confirmation(o, sender, id.0, w, m))?;
                Ok(())
            }
            b"direct-tcpip" => {
                let ((host, port), (orig, orig_port)) = msgs::parse_direct_tcpip(open.rest)?;
                let allowed = if self.proxied {
                    let r = &self.restrictions;
                    !r.no_port_forwarding
                        && r.permit_open
                            .as_ref()
                            .map_or(true, |k| forward::permit_open_allows(k, host, port))
                } else {
                    forward::may_open(&self.policy.permit_open, &self.restrictions, host, port)
                };
                if !allowed {
                    return refuse(
                        out,
                        msgs::OPEN_ADMINISTRATIVELY_PROHIBITED,
                        "administratively prohibited",
                    );
                }
                let Some(id) = self.free_slot() else {
                    return refuse(out, msgs::OPEN_RESOURCE_SHORTAGE, "too many channels");
                };
                let window = self.new_window();
                let mut ch = Channel::new(Kind::DirectTcpip, Phase::OpeningBackend, sender, window);
                ch.peer_window = open.window;
                ch.peer_max_packet = open.max_packet;
                self.insert(id, ch);
                self.events.push_back(Event::OpenBackend {
                    channel: id,
                    host: host.to_string(),
                    port,
                    originator: orig.to_string(),
                    originator_port: orig_port,
                });
                Ok(())
            }
            b"direct-streamlocal@openssh.com" => {
                let path = msgs::parse_direct_streamlocal(open.rest)?;
                // Proxied: the upstream's socket, the upstream's to allow.
                let allowed = msgs::socket_path_usable(path)
                    && if self.proxied {
                        !self.restrictions.no_port_forwarding
                    } else {
                        forward::may_open_path(
                            &self.policy.permit_open_path,
                            &self.restrictions,
                            path,
                        )
                    };
                if !allowed {
                    return refuse(
                        out,
                        msgs::OPEN_ADMINISTRATIVELY_PROHIBITED,
                        "administratively prohibited",
                    );
                }
                let Some(id) = self.free_slot() else {
                    return refuse(out, msgs::OPEN_RESOURCE_SHORTAGE, "too many channels");
                };
                let window = self.new_window();
                let mut ch = Channel::new(Kind::DirectTcpip, Phase::OpeningBackend, sender, window);
                ch.peer_window = open.window;
                ch.peer_max_packet = open.max_packet;
                self.insert(id, ch);
                self.events
                    .push_back(Event::OpenUnixBackend { channel: id, path: path.to_string() });
                Ok(())
            }
            _ => refuse(out, msgs::OPEN_UNKNOWN_CHANNEL_TYPE, "unknown channel type"),
        }
    }

    fn on_open_confirmation(&mut self, p: &[u8]) -> Result<(), ServiceError> {
        let (id, sender, window, max_packet) = msgs::parse_open_confirmation(p)?;
        let ch = self.channel_mut(id)?;
        if ch.phase != Phase::OpeningByUs {
            return Err(ServiceError::protocol("confirmation for a channel we did not open"));
        }
        ch.phase = Phase::Open;
        ch.peer_id = sender;
        ch.peer_window = window;
        ch.peer_max_packet = max_packet;
        self.events.push_back(Event::ChannelOpened { channel: ChannelId(id) });
        Ok(())
    }

    fn on_open_failure(&mut self, p: &[u8]) -> Result<(), ServiceError> {
        let (id, code, text) = msgs::parse_open_failure(p)?;
        let ch = self.channel_mut(id)?;
        if ch.phase != Phase::OpeningByUs {
            return Err(ServiceError::protocol("open failure for a channel we did not open"));
        }
        self.remove(ChannelId(id));
        let text = String::from_utf8_lossy(text.get(..256).unwrap_or(text)).into_owned();
        self.events.push_back(Event::ChannelOpenFailed { channel: ChannelId(id), code, text });
        Ok(())
    }

    fn on_window_adjust(&mut self, out: &mut dyn Outbound, p: &[u8]) -> Result<(), ServiceError> {
        let (id, n) = msgs::parse_window_adjust(p)?;
        let backpressured = out.is_backpressured();
        let ch = self.open_channel(id)?;
        let was_zero = ch.peer_window == 0;
        ch.peer_window = ch
            .peer_window
            .checked_add(n)
            .ok_or_else(|| ServiceError::protocol("window adjust past 2^32-1"))?;
        if was_zero && n > 0 && ch.can_send() && !backpressured {
            self.events.push_back(Event::ChannelWritable { channel: ChannelId(id) });
        }
        Ok(())
    }

    fn on_data(
        &mut self,
        out: &mut dyn Outbound,
        p: &[u8],
        extended: bool,
        sink: Option<&mut dyn DataSink>,
    ) -> Result<(), ServiceError> {
        let (id, _code, data) = msgs::parse_data(p, extended)?;
        let max_packet = self.policy.max_packet as usize;
        let ch = self.open_channel(id)?;
        if data.len() > max_packet {
            return Err(ServiceError::protocol("channel data larger than the maximum packet"));
        }
        if data.len() > ch.recv_window as usize {
            return Err(ServiceError::protocol("channel data past the window"));
        }
        if ch.peer_eof {
            return Err(ServiceError::protocol("channel data after EOF"));
        }
        // Our stdin has no stderr; after our CLOSE nobody reads: count it, give it back.
        if extended || ch.close_sent {
            ch.discard(data.len());
            return self.maybe_adjust(out, ChannelId(id));
        }
        let was_empty = ch.pending().is_empty();
        // Zero-copy: with nothing queued before it, the runtime may take the bytes straight
        // from the packet; they count as consumed at once. Only the rest is copied and queued.
        let taken = match sink {
            Some(sink) if was_empty && !data.is_empty() => {
                sink.write(ChannelId(id), data).min(data.len())
            }
            _ => 0,
        };
        let rest = data.get(taken..).unwrap_or(&[]);
        if taken > 0 {
            ch.discard(taken);
        }
        ch.push_inbound(rest);
        self.copied = self.copied.saturating_add(rest.len() as u64);
        if taken > 0 {
            self.maybe_adjust(out, ChannelId(id))?;
        }
        if was_empty && !rest.is_empty() {
            self.events.push_back(Event::ChannelReadable { channel: ChannelId(id) });
        }
        Ok(())
    }

    fn on_eof(&mut self, p: &[u8]) -> Result<(), ServiceError> {
        let id = msgs::recipient(p)?;
        let ch = self.open_channel(id)?;
        if ch.peer_eof {
            return Err(ServiceError::protocol("second EOF"));
        }
        ch.peer_eof = true;
        let closing = ch.close_sent;
        if !closing {
            self.events.push_back(Event::ChannelEof { channel: ChannelId(id) });
        }
        Ok(())
    }

    /// RFC 4254 §5.3: answer CLOSE with CLOSE unless ours already went; then the number is free.
    /// Data the client sent before its CLOSE is still delivered: while `inbound` holds some,
    /// the answer waits until the runtime has written it (`backend_consumed`) or the backend
    /// is gone (`backend_closed`); the runtime sees this as EOF.
    fn on_close(&mut self, out: &mut dyn Outbound, p: &[u8]) -> Result<(), ServiceError> {
        let id = msgs::recipient(p)?;
        let ch = self.open_channel(id)?;
        ch.peer_closed = true;
        if !ch.close_sent && !ch.pending().is_empty() {
            if !ch.peer_eof {
                ch.peer_eof = true;
                self.events.push_back(Event::ChannelEof { channel: ChannelId(id) });
            }
            return Ok(());
        }
        if !ch.close_sent {
            ch.close_sent = true;
            let peer = ch.peer_id;
            out.send_with(&mut |o| msgs::encode_channel_only(o, msg_no::CHANNEL_CLOSE, peer))?;
        }
        self.finish(ChannelId(id));
        Ok(())
    }

    fn on_channel_request(&mut self, out: &mut dyn Outbound, p: &[u8]) -> Result<(), ServiceError> {
        let (id, name, want_reply, r) = msgs::parse_channel_request(p)?;
        if name == b"auth-agent-req@openssh.com" {
            r.finish("auth-agent-req")?;
            return self.on_agent_request(out, id, want_reply);
        }
        let forced_command = self.restrictions.command.clone();
        let allow_pty = !self.restrictions.no_pty;
        let env_allow = &self.policy.env_allow;
        let subsystems = &self.policy.subsystems;
        let Some(ch) = slot_mut(&mut self.channels, &self.gens, ChannelId(id)) else {
            return Err(ServiceError::protocol("request for an unknown channel"));
        };
        if ch.phase != Phase::Open || ch.peer_closed {
            return Err(ServiceError::protocol("request for a channel that is not open"));
        }
        let peer = ch.peer_id;
        let closing = ch.close_sent;
        let action = match &mut ch.kind {
            Kind::Session(s) if !closing => s.request(name, r, env_allow, subsystems, allow_pty)?,
            _ => SessionAction::Refuse,
        };
        let ok = !matches!(action, SessionAction::Refuse);
        if want_reply && !closing {
            let m = if ok { msg_no::CHANNEL_SUCCESS } else { msg_no::CHANNEL_FAILURE };
            out.send_with(&mut |o| msgs::encode_channel_only(o, m, peer))?;
        }
        if let SessionAction::Resize(size) = action {
            self.events.push_back(Event::WindowChange { channel: ChannelId(id), size });
        }
        if let SessionAction::Signal(name) = &action {
            self.events.push_back(Event::Signal { channel: ChannelId(id), name: name.clone() });
        }
        if let SessionAction::Break(ms) = action {
            self.events.push_back(Event::Break { channel: ChannelId(id), ms });
        }
        if let SessionAction::Eow = action {
            self.events.push_back(Event::Eow { channel: ChannelId(id) });
        }
        if let SessionAction::Start { command, subsystem } = action {
            let (env, pty) = match &ch.kind {
                Kind::Session(s) => (s.env.clone(), s.pty.clone()),
                _ => (Vec::new(), None),
            };
            self.events.push_back(Event::Exec {
                channel: ChannelId(id),
                command,
                subsystem,
                env,
                forced_command,
                pty,
            });
        }
        Ok(())
    }

    /// auth-agent-req@openssh.com (OpenSSH PROTOCOL.agent): noted for the session proxy when
    /// allowed, refused otherwise. Only a session may ask, once it is open.
    fn on_agent_request(
        &mut self,
        out: &mut dyn Outbound,
        id: u32,
        want_reply: bool,
    ) -> Result<(), ServiceError> {
        let allowed = self.agent_allowed && !self.restrictions.no_agent_forwarding;
        let Some(ch) = slot_mut(&mut self.channels, &self.gens, ChannelId(id)) else {
            return Err(ServiceError::protocol("request for an unknown channel"));
        };
        if ch.phase != Phase::Open || ch.peer_closed {
            return Err(ServiceError::protocol("request for a channel that is not open"));
        }
        let ok = allowed && !ch.close_sent && matches!(ch.kind, Kind::Session(_));
        let peer = ch.peer_id;
        if want_reply && !ch.close_sent {
            let m = if ok { msg_no::CHANNEL_SUCCESS } else { msg_no::CHANNEL_FAILURE };
            out.send_with(&mut |o| msgs::encode_channel_only(o, m, peer))?;
        }
        if ok && self.agent_requested().is_none() {
            self.agent_session = Some(ChannelId(id));
            self.events.push_back(Event::AgentForwarding { channel: ChannelId(id) });
        }
        Ok(())
    }

    /// Opens an `auth-agent@openssh.com` channel to the client's agent (after
    /// [`Event::AgentForwarding`]). The answer comes as `ChannelOpened` or `ChannelOpenFailed`;
    /// then agent requests go out with `send_data` and replies come in as `inbound` (consumed
    /// with `backend_consumed`), as on any channel, and `backend_closed` ends it.
    pub fn open_agent_channel(
        &mut self,
        out: &mut dyn Outbound,
    ) -> Result<Result<ChannelId, AgentChannelError>, ServiceError> {
        if self.agent_requested().is_none() || !self.agent_allowed {
            return Ok(Err(AgentChannelError::NotRequested));
        }
        let Some(id) = self.free_slot() else {
            return Ok(Err(AgentChannelError::TooManyChannels));
        };
        let window = self.new_window();
        self.insert(id, Channel::new(Kind::Agent, Phase::OpeningByUs, 0, window));
        let m = self.policy.max_packet;
        out.send_with(&mut |o| msgs::encode_open_agent(o, id.0, window, m))?;
        Ok(Ok(id))
    }

    // ---- mutators from the runtime -------------------------------------------------------

    /// The backend of a direct-tcpip channel connected: CHANNEL_OPEN_CONFIRMATION.
    pub fn backend_connected(
        &mut self,
        out: &mut dyn Outbound,
        channel: ChannelId,
    ) -> Result<(), ServiceError> {
        let m = self.policy.max_packet;
        let Some(ch) = self.get_mut(channel) else {
            return Ok(());
        };
        if ch.phase != Phase::OpeningBackend {
            return Ok(());
        }
        ch.phase = Phase::Open;
        let w = ch.initial_window;
        let peer = ch.peer_id;
        out.send_with(&mut |o| msgs::encode_open_confirmation(o, peer, channel.0, w, m))?;
        Ok(())
    }

    /// The backend could not be reached: CHANNEL_OPEN_FAILURE with an RFC 4254 §5.1 code
    /// (`msgs::OPEN_CONNECT_FAILED` usually), and the number is free again.
    pub fn backend_failed(
        &mut self,
        out: &mut dyn Outbound,
        channel: ChannelId,
        code: u32,
        text: &str,
    ) -> Result<(), ServiceError> {
        let Some(ch) = self.get_mut(channel) else {
            return Ok(());
        };
        if ch.phase != Phase::OpeningBackend {
            return Ok(());
        }
        let peer = ch.peer_id;
        self.remove(channel);
        out.send_with(&mut |o| msgs::encode_open_failure(o, peer, code, text))?;
        Ok(())
    }

    /// Inbound channel bytes queued (copied) because the backend did not take them from the
    /// packet.
    pub fn bytes_copied(&self) -> u64 {
        self.copied
    }

    /// Inbound bytes waiting for the backend (borrowed; nothing is copied out).
    pub fn inbound(&self, channel: ChannelId) -> &[u8] {
        self.get(channel).map_or(&[], |c| c.pending())
    }

    /// The backend took `n` bytes of `inbound`: they leave the buffer and, once enough has
    /// gathered, go back to the client as window (WINDOW_ADJUST). Returns how many were taken.
    pub fn backend_consumed(
        &mut self,
        out: &mut dyn Outbound,
        channel: ChannelId,
        n: usize,
    ) -> Result<usize, ServiceError> {
        let Some(ch) = self.get_mut(channel) else {
            return Ok(0);
        };
        let n = ch.consume(n);
        if ch.peer_closed && !ch.close_sent && ch.pending().is_empty() {
            // The client's CLOSE waited for this data (see `on_close`): answer it now.
            ch.close_sent = true;
            let peer = ch.peer_id;
            out.send_with(&mut |o| msgs::encode_channel_only(o, msg_no::CHANNEL_CLOSE, peer))?;
            self.finish(channel);
            return Ok(n);
        }
        self.maybe_adjust(out, channel)?;
        Ok(n)
    }

    fn maybe_adjust(
        &mut self,
        out: &mut dyn Outbound,
        channel: ChannelId,
    ) -> Result<(), ServiceError> {
        let Some(ch) = self.get_mut(channel) else {
            return Ok(());
        };
        if ch.phase != Phase::Open {
            return Ok(());
        }
        if let Some(n) = ch.take_window_adjust() {
            let peer = ch.peer_id;
            out.send_with(&mut |o| msgs::encode_window_adjust(o, peer, n))?;
        }
        Ok(())
    }

    /// How many bytes `send_data` would take now: the peer's window, or 0 when the channel
    /// cannot send or output is backed up. Read at most this much from the backend.
    pub fn send_capacity(&self, out: &dyn Outbound, channel: ChannelId) -> usize {
        match self.get(channel) {
            Some(c) if c.can_send() && !out.is_backpressured() && c.peer_max_packet > 0 => {
                c.peer_window as usize
            }
            _ => 0,
        }
    }

    /// Sends backend bytes to the client as CHANNEL_DATA, as much as the peer's window allows,
    /// split at its maximum packet. Returns how many bytes were taken; keep the rest.
    pub fn send_data(
        &mut self,
        out: &mut dyn Outbound,
        channel: ChannelId,
        data: &[u8],
    ) -> Result<usize, ServiceError> {
        self.send_inner(out, channel, data, None)
    }

    /// Room for up to `max` bytes of channel data (`stderr`: extended data type 1) inside the
    /// output buffer itself, within the peer's window and maximum packet: the runtime reads
    /// the backend straight into it and then calls [`Connection::data_filled`]. `None` when
    /// nothing can be sent now or the transport cannot stage in place (use `send_data`).
    pub fn data_slot<'o>(
        &mut self,
        out: &'o mut dyn Outbound,
        channel: ChannelId,
        max: usize,
        stderr: bool,
    ) -> Option<&'o mut [u8]> {
        let cap = self.send_capacity(out, channel);
        let ch = self.get(channel)?;
        let chunk = (ch.peer_max_packet as usize).clamp(1, MAX_SEND_CHUNK);
        let n = max.min(cap).min(chunk);
        if n == 0 {
            return None;
        }
        let [r0, r1, r2, r3] = ch.peer_id.to_be_bytes();
        let [e0, e1, e2, e3] = msgs::EXTENDED_DATA_STDERR.to_be_bytes();
        // Everything up to the data, ending with its uint32 length (patched on commit).
        let data = [msg_no::CHANNEL_DATA, r0, r1, r2, r3, 0, 0, 0, 0];
        let ext = [msg_no::CHANNEL_EXTENDED_DATA, r0, r1, r2, r3, e0, e1, e2, e3, 0, 0, 0, 0];
        out.begin_fill(if stderr { &ext } else { &data }, n)
    }

    /// The slot from [`Connection::data_slot`] holds `n` bytes: the message is staged and the
    /// peer's window shrinks by `n` (0 cancels it). Returns the bytes sent.
    pub fn data_filled(
        &mut self,
        out: &mut dyn Outbound,
        channel: ChannelId,
        n: usize,
    ) -> Result<usize, ServiceError> {
        out.commit_fill(n)?;
        if let Some(ch) = self.get_mut(channel) {
            ch.peer_window = ch.peer_window.saturating_sub(u32::try_from(n).unwrap_or(u32::MAX));
        }
        Ok(n)
    }

    /// As `send_data`, as CHANNEL_EXTENDED_DATA type 1 (stderr) for session channels.
    pub fn send_stderr(
        &mut self,
        out: &mut dyn Outbound,
        channel: ChannelId,
        data: &[u8],
    ) -> Result<usize, ServiceError> {
        self.send_inner(out, channel, data, Some(msgs::EXTENDED_DATA_STDERR))
    }

    fn send_inner(
        &mut self,
        out: &mut dyn Outbound,
        channel: ChannelId,
        data: &[u8],
        ext: Option<u32>,
    ) -> Result<usize, ServiceError> {
        let cap = self.send_capacity(out, channel);
        let Some(ch) = self.get_mut(channel) else {
            return Ok(0);
        };
        let total = data.len().min(cap);
        let chunk = (ch.peer_max_packet as usize).clamp(1, MAX_SEND_CHUNK);
        let peer = ch.peer_id;
        let mut sent = 0;
        for part in data.get(..total).unwrap_or(&[]).chunks(chunk) {
            match ext {
                None => out.send_with(&mut |o| msgs::encode_data(o, peer, part))?,
                Some(code) => {
                    out.send_with(&mut |o| msgs::encode_extended_data(o, peer, code, part))?
                }
            }
            sent += part.len();
        }
        ch.peer_window = ch.peer_window.saturating_sub(u32::try_from(sent).unwrap_or(u32::MAX));
        Ok(sent)
    }

    /// The backend will send no more (its read side hit EOF): CHANNEL_EOF, once.
    pub fn backend_eof(
        &mut self,
        out: &mut dyn Outbound,
        channel: ChannelId,
    ) -> Result<(), ServiceError> {
        let Some(ch) = self.get_mut(channel) else {
            return Ok(());
        };
        if ch.phase != Phase::Open || ch.eof_sent || ch.close_sent {
            return Ok(());
        }
        ch.eof_sent = true;
        let peer = ch.peer_id;
        out.send_with(&mut |o| msgs::encode_channel_only(o, msg_no::CHANNEL_EOF, peer))?;
        Ok(())
    }

    /// eow@openssh.com to the client (a proxied upstream will read no more of this session's
    /// data); only on an open session.
    pub fn send_eow(
        &mut self,
        out: &mut dyn Outbound,
        channel: ChannelId,
    ) -> Result<(), ServiceError> {
        let Some(ch) = self.get_mut(channel) else {
            return Ok(());
        };
        if ch.phase != Phase::Open || ch.close_sent || !matches!(ch.kind, Kind::Session(_)) {
            return Ok(());
        }
        let peer = ch.peer_id;
        out.send_with(&mut |o| msgs::encode_eow(o, peer))?;
        Ok(())
    }

    /// The backend is gone: EOF (if not sent) then CLOSE, once each. The number is free once
    /// the client's CLOSE arrives too.
    pub fn backend_closed(
        &mut self,
        out: &mut dyn Outbound,
        channel: ChannelId,
    ) -> Result<(), ServiceError> {
        self.backend_eof(out, channel)?;
        let Some(ch) = self.get_mut(channel) else {
            return Ok(());
        };
        if ch.phase != Phase::Open || ch.close_sent {
            return Ok(());
        }
        ch.close_sent = true;
        let peer = ch.peer_id;
        out.send_with(&mut |o| msgs::encode_channel_only(o, msg_no::CHANNEL_CLOSE, peer))?;
        self.finish(channel);
        Ok(())
    }

    /// The session's child exited (call after its output was sent): exit-status or
    /// exit-signal, then EOF, then CLOSE (RFC 4254 §6.10: the status goes before CLOSE).
    pub fn child_exited(
        &mut self,
        out: &mut dyn Outbound,
        channel: ChannelId,
        status: ExitStatus,
    ) -> Result<(), ServiceError> {
        let Some(ch) = self.get_mut(channel) else {
            return Ok(());
        };
        let Kind::Session(s) = &mut ch.kind else {
            return Ok(());
        };
        if s.exited || ch.close_sent || ch.phase != Phase::Open {
            return Ok(());
        }
        s.exited = true;
        let peer = ch.peer_id;
        match &status {
            ExitStatus::Code(c) => out.send_with(&mut |o| msgs::encode_exit_status(o, peer, *c))?,
            ExitStatus::Signal { name, core_dumped, message } => {
                // RFC 4254 §6.10: the name without the "SIG" prefix.
                let name = name.strip_prefix("SIG").unwrap_or(name);
                let (core, msg) = (*core_dumped, message.as_str());
                out.send_with(&mut |o| msgs::encode_exit_signal(o, peer, name, core, msg))?
            }
        }
        self.backend_closed(out, channel)
    }

    /// The result of a `Listen` event: the bound port, or failure. Replies to the client in
    /// request order (with the port when it asked for port 0, RFC 4254 §7.1).
    pub fn listen_result(
        &mut self,
        out: &mut dyn Outbound,
        listener: ListenerId,
        result: Result<u16, ()>,
    ) -> Result<(), ServiceError> {
        let Some(i) =
            self.listeners.iter().position(|l| l.id == listener && l.bound_port.is_none())
        else {
            return Ok(());
        };
        let reply = match result {
            Ok(port) => {
                let l = self.listeners.get_mut(i);
                let mut reply = None;
                if let Some(l) = l {
                    l.bound_port = Some(port);
                    let with_port = l.requested_port == 0 && !l.unix;
                    reply = l
                        .reply
                        .take()
                        .map(|slot| (slot, Reply::Success(with_port.then_some(u32::from(port)))));
                }
                reply
            }
            Err(()) => {
                let l = self.listeners.remove(i);
                l.reply.map(|slot| (slot, Reply::Failure))
            }
        };
        if let Some((slot, r)) = reply {
            if let Some(entry) = self.replies.iter_mut().find(|(s, _)| *s == slot) {
                entry.1 = r;
            }
            self.flush_replies(out)?;
        }
        Ok(())
    }

    /// A connection arrived on a listener: opens a forwarded-tcpip channel to the client
    /// (RFC 4254 §7.2). The answer comes as `ChannelOpened` or `ChannelOpenFailed`.
    pub fn forwarded_connection(
        &mut self,
        out: &mut dyn Outbound,
        listener: ListenerId,
        originator: &str,
        originator_port: u16,
    ) -> Result<Result<ChannelId, ForwardError>, ServiceError> {
        let Some(l) = self.listeners.iter().find(|l| l.id == listener) else {
            return Ok(Err(ForwardError::NoListener));
        };
        let Some(port) = l.bound_port else {
            return Ok(Err(ForwardError::NoListener));
        };
        let (addr, unix) = (l.addr.clone(), l.unix);
        let Some(id) = self.free_slot() else {
            return Ok(Err(ForwardError::TooManyChannels));
        };
        let window = self.new_window();
        let ch = Channel::new(Kind::ForwardedTcpip(listener), Phase::OpeningByUs, 0, window);
        self.insert(id, ch);
        let (w, m) = (window, self.policy.max_packet);
        if unix {
            out.send_with(&mut |o| msgs::encode_open_forwarded_streamlocal(o, id.0, w, m, &addr))?;
            return Ok(Ok(id));
        }
        out.send_with(&mut |o| {
            msgs::encode_open_forwarded(o, id.0, w, m, (&addr, port), (originator, originator_port))
        })?;
        Ok(Ok(id))
    }

    /// A keepalive is due (`--keepalive-interval`): a global request with want-reply, as
    /// OpenSSH's ClientAliveInterval. Past `keepalive_count_max` unanswered: give up.
    pub fn keepalive_tick(&mut self, out: &mut dyn Outbound) -> Result<(), ServiceError> {
        if self.keepalives_missed >= self.policy.keepalive_count_max {
            return Err(ServiceError::new(DisconnectReason::ConnectionLost, "keepalive timeout"));
        }
        self.keepalives_missed += 1;
        self.keepalives_outstanding = self.keepalives_outstanding.saturating_add(1);
        out.send_with(&mut |o| msgs::encode_global_request(o, "keepalive@openssh.com", true))?;
        Ok(())
    }

    /// Output backpressure ended (e.g. after a key exchange): every channel that can send
    /// gets a `ChannelWritable`.
    pub fn notify_writable(&mut self) {
        for (i, c) in self.channels.iter().enumerate() {
            if let (Some(c), Some(&g)) = (c, self.gens.get(i)) {
                if c.can_send() && c.peer_window > 0 {
                    self.events.push_back(Event::ChannelWritable { channel: make_id(i, g) });
                }
            }
        }
    }

    /// The listener a forwarded-tcpip channel came from.
    pub fn channel_listener(&self, channel: ChannelId) -> Option<ListenerId> {
        match self.get(channel).map(|c| &c.kind) {
            Some(Kind::ForwardedTcpip(l)) => Some(*l),
            _ => None,
        }
    }

    // ---- table ---------------------------------------------------------------------------

    /// Session channels in the table (what `--max-sessions` bounds).
    fn session_count(&self) -> usize {
        self.channels.iter().flatten().filter(|c| matches!(c.kind, Kind::Session(_))).count()
    }

    /// The receive window for a new channel: the configured one while the connection's
    /// window budget has room, else one maximum packet (a trickle that still works).
    fn new_window(&self) -> u32 {
        let granted: usize =
            self.channels.iter().flatten().map(|c| c.initial_window as usize).sum();
        let room = self.policy.window_budget.saturating_sub(granted);
        let room = u32::try_from(room).unwrap_or(u32::MAX);
        self.policy.window.min(room.max(self.policy.max_packet))
    }

    fn free_slot(&mut self) -> Option<ChannelId> {
        if let Some(i) = self.channels.iter().position(Option::is_none) {
            return Some(make_id(i, self.gens.get(i).copied().unwrap_or(0)));
        }
        if self.channels.len() >= self.policy.max_channels.min(MAX_SLOTS) {
            return None;
        }
        self.channels.push(None);
        self.gens.push(0);
        Some(make_id(self.channels.len() - 1, 0))
    }

    fn insert(&mut self, id: ChannelId, ch: Channel) {
        if let Some(slot) = self.channels.get_mut(slot_of(id)) {
            *slot = Some(ch);
        }
    }

    /// Empties the slot; its next channel gets another id, so a late mutator call for this
    /// one can never reach it.
    fn remove(&mut self, id: ChannelId) {
        if self.get(id).is_none() {
            return;
        }
        if let Some(slot) = self.channels.get_mut(slot_of(id)) {
            *slot = None;
        }
        if let Some(g) = self.gens.get_mut(slot_of(id)) {
            *g = g.wrapping_add(1);
        }
    }

    /// Frees the slot once both CLOSEs went, and tells the runtime.
    fn finish(&mut self, id: ChannelId) {
        if self.get(id).is_some_and(Channel::is_finished) {
            self.remove(id);
            self.events.push_back(Event::ChannelClosed { channel: id });
        }
    }

    fn get(&self, id: ChannelId) -> Option<&Channel> {
        let i = slot_of(id);
        if self.gens.get(i).map(|&g| u32::from(g)) != Some(id.0 >> 16) {
            return None;
        }
        self.channels.get(i).and_then(Option::as_ref)
    }

    fn get_mut(&mut self, id: ChannelId) -> Option<&mut Channel> {
        slot_mut(&mut self.channels, &self.gens, id)
    }

    fn channel_mut(&mut self, id: u32) -> Result<&mut Channel, ServiceError> {
        self.get_mut(ChannelId(id))
            .ok_or_else(|| ServiceError::protocol(format!("message for unknown channel {id}")))
    }

    /// A channel the client may talk about: known, opened, not closed by the client.
    fn open_channel(&mut self, id: u32) -> Result<&mut Channel, ServiceError> {
        let ch = self.channel_mut(id)?;
        if ch.phase != Phase::Open {
            return Err(ServiceError::protocol(format!(
                "message for channel {id} before it is open"
            )));
        }
        if ch.peer_closed {
            return Err(ServiceError::protocol(format!(
                "message for channel {id} after its CLOSE"
            )));
        }
        Ok(ch)
    }
}

/// Slots are numbered in the low 16 bits of a [`ChannelId`].
const MAX_SLOTS: usize = 1 << 16;

/// Our channel number: slot in the low 16 bits, the slot's generation in the high 16.
fn make_id(slot: usize, gen: u16) -> ChannelId {
    ChannelId((u32::from(gen) << 16) | (slot as u32 & 0xffff))
}

fn slot_of(id: ChannelId) -> usize {
    (id.0 & 0xffff) as usize
}

fn slot_mut<'c>(
    channels: &'c mut [Option<Channel>],
    gens: &[u16],
    id: ChannelId,
) -> Option<&'c mut Channel> {
    let i = slot_of(id);
    if gens.get(i).map(|&g| u32::from(g)) != Some(id.0 >> 16) {
        return None;
    }
    channels.get_mut(i).and_then(Option::as_mut)
}

#[cfg(test)]
mod tests;
