//! A proxied connection's upstream side as data: the link a worker slot holds beside the
//! downstream core (`Conn::upstream`), its phase and its session recordings. A leaf of the
//! runtime, so `conn.rs` can hold one without importing the worker; the worker's methods that
//! drive it live in `runtime/upstream.rs` (its output: `runtime/upstream_output.rs`).

use crate::client::ClientConnection;
use crate::connection::ChannelId;
use crate::proxy::agent_login::AgentLogin;
use crate::proxy::bridge::Bridge;
use crate::proxy::{Pick, RouteMatch};
use crate::runtime::buffers::Buf;
use crate::runtime::out_queue::OutQueue;
use crate::runtime::recording::Recording;
use mio::net::TcpStream;
use std::net::SocketAddr;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::runtime) enum Phase {
    /// The upstream's host name is being looked up (off the worker).
    Resolving,
    Connecting,
    /// Key exchange, host key check, login.
    Login,
    Ready,
    /// Failed or ended: the socket is gone; new channels fail at once.
    Dead,
}

/// A proxied connection's upstream side.
pub struct UpstreamLink {
    pub(in crate::runtime) socket: Option<TcpStream>,
    pub(in crate::runtime) core: ClientConnection,
    pub(in crate::runtime) bridge: Bridge,
    pub(in crate::runtime) recs: Recordings,
    /// The upstream chosen (counts as one active session for least-conn until dropped).
    pub(in crate::runtime) pick: Option<Pick>,
    pub(in crate::runtime) route: RouteMatch,
    /// `host:port`, for messages.
    pub(in crate::runtime) target: String,
    /// Addresses still to try, last first (a host name may have several).
    pub(in crate::runtime) addrs: Vec<SocketAddr>,
    /// Metrics label of the route (bounded set).
    pub(in crate::runtime) label: String,
    /// Counts this session in `sshfront_proxy_sessions_active{route}` until the link drops.
    pub(in crate::runtime) _active: crate::metrics::proxy::ActiveSession,
    pub(in crate::runtime) phase: Phase,
    /// The user's password, for `auth = "password"`, until sent once.
    pub(in crate::runtime) password: Option<crate::auth::Secret>,
    /// `auth = "agent"`: the login through the user's forwarded agent.
    pub(in crate::runtime) agent: Option<AgentLogin>,
    pub(in crate::runtime) readable: bool,
    pub(in crate::runtime) writable: bool,
    pub(in crate::runtime) rbuf: Option<Buf>,
    /// Sealed batches the upstream socket has not taken yet, in the pooled buffers they were
    /// encoded in (counted by the pool, not in `held_bytes`).
    pub(in crate::runtime) wq: OutQueue,
    /// Size of the last sealed batch: the next lent output buffer is sized by it.
    pub(in crate::runtime) out_hint: u32,
    /// The core holds a pooled output buffer it has not sealed a batch in yet.
    pub(in crate::runtime) lent: bool,
    pub(in crate::runtime) started: Instant,
    pub(in crate::runtime) connect_deadline: Instant,
    pub(in crate::runtime) login_deadline: Instant,
}

impl UpstreamLink {
    /// Memory the upstream core holds (staged output, received channel bytes, a partial
    /// agent reply): charged with the connection's. Sealed batches waiting in `wq` are the
    /// pool's to count, as a downstream connection's are.
    pub fn held_bytes(&self) -> usize {
        self.core.held_bytes() + self.agent.as_ref().map_or(0, AgentLogin::held_bytes)
    }

    /// Logged in with channels to carry: a bridge pump stages up to its budget each way.
    pub fn is_carrying(&self) -> bool {
        self.phase == Phase::Ready && self.core.channel_count() > 0
    }

    /// Sealed bytes waiting for the upstream socket.
    pub fn pending_out(&self) -> usize {
        self.wq.len()
    }

    /// The earliest deadline: connect or login bound, or the core's (KEX timeout, rekey).
    pub fn next_deadline(&self) -> Option<Instant> {
        let bound = match self.phase {
            Phase::Resolving | Phase::Connecting => {
                Some(self.connect_deadline.min(self.login_deadline))
            }
            Phase::Login => Some(self.login_deadline),
            Phase::Ready | Phase::Dead => None,
        };
        let core = if self.phase == Phase::Dead { None } else { self.core.poll_timeout() };
        match (bound, core) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Readiness of the upstream socket (from the worker's poll loop).
    pub fn mark_ready(&mut self, readable: bool, writable: bool) {
        self.readable |= readable;
        self.writable |= writable;
    }
}

/// Recordings of this connection's proxied PTY sessions (route `record_dir`), one per
/// downstream channel; at most one per open channel, so bounded by the channel limit. What
/// the user's terminal receives from the upstream is copied to the recorder thread, which
/// never makes the worker wait (`runtime::recording`).
#[derive(Default)]
pub(in crate::runtime) struct Recordings(pub(in crate::runtime) Vec<(ChannelId, Recording)>);

impl Recordings {
    pub(in crate::runtime) fn get(&mut self, ch: ChannelId) -> Option<&mut Recording> {
        self.0.iter_mut().find(|(c, _)| *c == ch).map(|(_, r)| r)
    }

    pub(in crate::runtime) fn output(&mut self, ch: ChannelId, data: &[u8]) {
        if let Some(r) = self.get(ch) {
            r.output(data);
        }
    }

    /// The session's channel ended: its recording is finished.
    pub(in crate::runtime) fn end(&mut self, ch: ChannelId) {
        if !self.0.is_empty() {
            self.0.retain(|(c, _)| *c != ch);
        }
    }
}
