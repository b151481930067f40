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
mod flow;
pub mod forward;
mod forwarding;
mod inbound;
mod lifecycle;
pub mod msgs;
mod requests;
pub mod session;
mod table;

use crate::config::users::KeyOptions;
use crate::service::{Outbound, ServiceError};
use crate::wire::msg_no;
use channel::Channel;
pub use session::{ExitStatus, Pty};
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

    /// An empty buffer from the runtime's pool, with room for at least `min` bytes if it can,
    /// to queue in what the backend did not take (the channel holds it, counted in
    /// `held_bytes`, until the backend took it all and it comes back through
    /// [`Connection::take_spent_inbound`]). `None`: the core allocates one itself.
    fn inbound_buffer(&mut self, _min: usize) -> Option<Vec<u8>> {
        None
    }
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
    /// Sessions may ask for agent forwarding (proxied connections); off: auth-agent-req is
    /// refused, as before.
    agent_allowed: bool,
    /// The session that asked for agent forwarding.
    agent_session: Option<ChannelId>,
    /// Inbound channel bytes copied into a channel's queue because the backend did not take
    /// them straight from the packet (the copy-count check).
    copied: u64,
    /// Inbound chunks channels have emptied (or left behind as they closed), for the runtime
    /// to give back to its pool ([`Connection::take_spent_inbound`]).
    spent_inbound: Vec<Vec<u8>>,
    /// Inbound chunks allocated here because the runtime lent none.
    own_inbound: u64,
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
            spent_inbound: Vec::new(),
            own_inbound: 0,
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

    /// Marks the connection as carried upstream by the session proxy (see `proxied`).
    pub fn set_proxied(&mut self) {
        self.proxied = true;
    }

    /// The options of the key the user logged in with (`permitopen=`, `command=`, …).
    pub fn set_restrictions(&mut self, r: KeyOptions) {
        self.restrictions = r;
    }

    pub fn restrictions(&self) -> &KeyOptions {
        &self.restrictions
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Memory held for channels' inbound data (bounded by the receive windows).
    pub fn held_bytes(&self) -> usize {
        self.channels.iter().flatten().map(Channel::held_bytes).sum::<usize>()
            + self.spent_inbound.iter().map(Vec::capacity).sum::<usize>()
    }

    /// An inbound chunk a channel no longer needs, to go back to the pool it was lent from.
    pub fn take_spent_inbound(&mut self) -> Option<Vec<u8>> {
        let v = self.spent_inbound.pop();
        if self.spent_inbound.is_empty() && self.spent_inbound.capacity() > 16 {
            self.spent_inbound = Vec::new();
        }
        v
    }

    /// Inbound chunks allocated by the core itself because no pooled one was lent.
    pub fn own_inbound_chunks(&self) -> u64 {
        self.own_inbound
    }

    /// Channels in the table (open, opening or closing).
    pub fn channel_count(&self) -> usize {
        self.channels.iter().filter(|c| c.is_some()).count()
    }

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
        // Each concern in its own file: global requests and forwarding (`forwarding.rs`), a
        // channel's open and close (`lifecycle.rs`), windows and data (`flow.rs`), channel
        // requests (`requests.rs`); the slots they share in `table.rs`.
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
}

#[cfg(test)]
mod tests;
