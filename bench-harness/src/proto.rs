//! What each harness connection does (authenticate, open a channel, push bytes, hold), on top
//! of sshfront's client core, which does user authentication, channels and flow control.

use sshfront::algo::host_key::HostKeyPair;
use sshfront::client::{ClientChannel, ClientConnection, Event, LocalKey, Method};
use sshfront::transport::DisconnectReason;
use std::sync::Arc;
use std::time::Instant;

/// How to authenticate.
#[derive(Clone)]
pub enum AuthMethod {
    /// No user authentication: KEX + SERVICE_ACCEPT(ssh-userauth) count as done.
    None,
    Password(String),
    /// ed25519 key; the public blob is cached.
    PublicKey(Arc<HostKeyPair>),
}

/// Where channel data goes.
#[derive(Clone, Debug)]
pub enum Target {
    /// direct-tcpip to this loopback host and port.
    Direct(String, u16),
    /// A session channel running this command (e.g. `cat > /dev/null`).
    Exec(String),
}

/// What each connection does once the transport is up.
#[derive(Clone)]
pub enum Goal {
    /// Authenticate, optionally open one session channel (done at its confirmation), then
    /// disconnect.
    Handshake { channel: bool },
    /// Authenticate, run this command in a session channel and wait for the server's CLOSE
    /// (done then), so a proxy that confirms the channel before its upstream is ready is timed
    /// to the command's end.
    Exec(String),
    /// Authenticate, push `bytes` through one channel, wait for the peer's CLOSE.
    Bulk { bytes: u64, target: Target },
    /// Authenticate and stay open.
    Idle,
}

/// Everything connections share.
pub struct Plan {
    pub user: String,
    pub auth: AuthMethod,
    pub goal: Goal,
}

/// Why a connection failed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailKind {
    Refused,
    Timeout,
    /// DISCONNECT received (or sent by us) with this code.
    Disconnect(u32),
    /// TCP closed by the peer without DISCONNECT.
    ConnectionLost,
    AuthRejected,
    ChannelRejected,
    Io(String),
    Protocol(String),
}

impl FailKind {
    pub fn label(&self) -> String {
        match self {
            FailKind::Refused => "refused".into(),
            FailKind::Timeout => "timeout".into(),
            FailKind::Disconnect(c) => format!("disconnect_{c}"),
            FailKind::ConnectionLost => "connection_lost".into(),
            FailKind::AuthRejected => "auth_rejected".into(),
            FailKind::ChannelRejected => "channel_rejected".into(),
            FailKind::Io(e) => format!("io:{e}"),
            FailKind::Protocol(e) => format!("protocol:{e}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Transport,
    Auth,
    ChannelOpen,
    ExecRequest,
    Data,
    /// EOF sent; waiting for the peer's CLOSE.
    Draining,
    /// Idle goal reached.
    Holding,
    Done,
    Failed,
}

/// Window and max packet we offer for inbound data.
const LOCAL_WINDOW: u32 = 2 * 1024 * 1024;
const LOCAL_MAX_PACKET: u32 = 32 * 1024;
/// Largest slice of zeros handed to the core per call (it splits at the peer's max packet).
const CHUNK: usize = 256 * 1024;
static ZEROS: [u8; CHUNK] = [0u8; CHUNK];

/// One client connection above sshfront's client core: the goal's steps, and what is counted.
pub struct Session {
    pub conn: ClientConnection,
    plan: Arc<Plan>,
    pub phase: Phase,
    pub fail: Option<FailKind>,
    channel: Option<ClientChannel>,
    pub sent: u64,
    /// When the channel became ready for data.
    pub data_start: Option<Instant>,
    pub done_at: Option<Instant>,
}

impl Session {
    pub fn new(mut conn: ClientConnection, plan: Arc<Plan>) -> Session {
        conn.set_channel_window(LOCAL_WINDOW, LOCAL_MAX_PACKET);
        let mut s = Session {
            conn,
            plan,
            phase: Phase::Transport,
            fail: None,
            channel: None,
            sent: 0,
            data_start: None,
            done_at: None,
        };
        let method = match &s.plan.auth {
            AuthMethod::None => None,
            AuthMethod::Password(pw) => Some(Method::Password(pw.as_bytes().to_vec())),
            AuthMethod::PublicKey(key) => {
                Some(Method::PublicKey(Arc::new(LocalKey::new(key.clone()))))
            }
        };
        let res = match method {
            None => {
                s.conn.transport_mut().request_service("ssh-userauth").map_err(|e| e.to_string())
            }
            Some(m) => {
                let user = s.plan.user.clone();
                s.conn.authenticate(&user, m).map_err(|e| e.to_string())
            }
        };
        if let Err(e) = res {
            s.set_failed(FailKind::Protocol(e));
        }
        s
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Done | Phase::Failed)
    }

    fn set_failed(&mut self, k: FailKind) {
        if !self.is_finished() {
            self.fail = Some(k);
            self.phase = Phase::Failed;
        }
    }

    fn set_done(&mut self, now: Instant) {
        self.phase = Phase::Done;
        self.done_at = Some(now);
        self.close();
    }

    /// Ends the connection from our side (idle hold over, or the load's time is up).
    pub fn close(&mut self) {
        self.conn.close(DisconnectReason::ByApplication, "bench done");
        // The Closed event this queues is ours, not a failure.
        while self.conn.poll_event().is_some() {}
    }

    /// The TCP connection ended or failed under us.
    pub fn socket_failed(&mut self, k: FailKind) {
        if self.phase == Phase::Holding {
            self.phase = Phase::Done;
        }
        self.set_failed(k);
    }

    /// Feeds received bytes to the client core. Returns the bytes consumed.
    pub fn handle_input(&mut self, input: &mut [u8], now: Instant) -> usize {
        if self.is_finished() {
            return input.len();
        }
        self.conn.handle_input(input, now)
    }

    /// Runs events (crypto jobs and signatures inline) and the data pump.
    /// `out_room`: how many more bytes of channel data the caller will take this turn.
    pub fn process(&mut self, now: Instant, out_room: usize) {
        while let Some(ev) = self.conn.poll_event() {
            if self.is_finished() {
                continue;
            }
            self.on_event(ev, now);
        }
        if self.phase == Phase::Data {
            self.pump(now, out_room);
        }
        self.conn.check_rekey(now);
    }

    fn on_event(&mut self, ev: Event, now: Instant) {
        match ev {
            Event::Job(job) => {
                let done = job.run();
                self.conn.handle_job_done(done, now);
            }
            Event::Sign(req) => {
                let sig = req.run_local().unwrap_or_else(|| Err("no local key".into()));
                self.conn.sign_done(sig);
            }
            Event::ServiceAccepted(_) => match self.plan.auth {
                AuthMethod::None if matches!(self.plan.goal, Goal::Idle) => {
                    self.phase = Phase::Holding;
                    self.done_at = Some(now);
                }
                AuthMethod::None => self.set_done(now),
                _ => self.phase = Phase::Auth,
            },
            Event::Authenticated => self.after_auth(now),
            Event::AuthFailed { .. } => self.set_failed(FailKind::AuthRejected),
            Event::ChannelOpened { channel } => self.on_channel_open(channel, now),
            Event::ChannelOpenFailed { .. } => self.set_failed(FailKind::ChannelRejected),
            Event::RequestDone { ok: true, .. } if matches!(self.plan.goal, Goal::Exec(_)) => {
                self.phase = Phase::Draining;
            }
            Event::RequestDone { ok: true, .. } => self.start_data(now),
            Event::RequestDone { ok: false, .. } => self.set_failed(FailKind::ChannelRejected),
            Event::ChannelReadable { channel } => {
                // Whatever comes back is counted as read and given back as window.
                let n = self.conn.stdout(channel).len();
                self.conn.consume(channel, n);
                let n = self.conn.stderr(channel).len();
                self.conn.consume_stderr(channel, n);
            }
            Event::ChannelClosed { .. } => match self.phase {
                Phase::Draining => self.set_done(now),
                _ => self.set_failed(FailKind::Protocol(
                    "channel closed before all data was sent".into(),
                )),
            },
            Event::Closed { code, by_peer, .. } => {
                if self.phase == Phase::Holding {
                    self.phase = Phase::Done;
                }
                let k = if by_peer && code == DisconnectReason::ConnectionLost.code() {
                    FailKind::ConnectionLost
                } else {
                    FailKind::Disconnect(code)
                };
                self.set_failed(k);
            }
            Event::KexDone(_)
            | Event::Log(_)
            | Event::Banner(_)
            | Event::ChannelWritable { .. }
            | Event::ExitStatus { .. }
            | Event::ExitSignal { .. }
            | Event::Eow { .. }
            | Event::ChannelEof { .. }
            | Event::GlobalReply { .. } => {}
            Event::IncomingChannel { channel, .. } => {
                let _ = self.conn.reject_channel(channel, 1, "not accepted by the bench harness");
            }
        }
    }

    fn after_auth(&mut self, now: Instant) {
        let plan = self.plan.clone();
        let opened = match &plan.goal {
            Goal::Idle => {
                self.phase = Phase::Holding;
                self.done_at = Some(now);
                return;
            }
            Goal::Handshake { channel: false } => return self.set_done(now),
            Goal::Handshake { channel: true }
            | Goal::Exec(_)
            | Goal::Bulk { target: Target::Exec(_), .. } => self.conn.open_session(),
            Goal::Bulk { target: Target::Direct(host, port), .. } => {
                self.conn.open_direct_tcpip((host, *port), ("127.0.0.1", 40000))
            }
        };
        match opened {
            Ok(ch) => {
                self.channel = Some(ch);
                self.phase = Phase::ChannelOpen;
            }
            Err(e) => self.set_failed(FailKind::Protocol(e.to_string())),
        }
    }

    fn on_channel_open(&mut self, ch: ClientChannel, now: Instant) {
        let plan = self.plan.clone();
        match &plan.goal {
            Goal::Exec(cmd) | Goal::Bulk { target: Target::Exec(cmd), .. } => {
                match self.conn.request_exec(ch, cmd.as_bytes()) {
                    Ok(()) => self.phase = Phase::ExecRequest,
                    Err(e) => self.set_failed(FailKind::Protocol(e.to_string())),
                }
            }
            Goal::Bulk { .. } => self.start_data(now),
            _ => {
                // The open round trip is what we measure; CLOSE goes out with the DISCONNECT
                // (some servers, russh 0.54 among them, never answer a client's CLOSE).
                let _ = self.conn.close_channel(ch);
                self.set_done(now);
            }
        }
    }

    fn start_data(&mut self, now: Instant) {
        self.phase = Phase::Data;
        self.data_start = Some(now);
    }

    /// Sends channel data within the peer's window and max packet, up to `room` bytes.
    fn pump(&mut self, _now: Instant, room: usize) {
        let total = match &self.plan.goal {
            Goal::Bulk { bytes, .. } => *bytes,
            _ => 0,
        };
        let Some(ch) = self.channel else { return };
        let mut room = room;
        while self.sent < total && room > 0 && !self.conn.transport().is_handshaking() {
            let n = (total - self.sent).min(room as u64).min(CHUNK as u64) as usize;
            let took = self.conn.send_data(ch, &ZEROS[..n]);
            if took == 0 {
                break;
            }
            self.sent += took as u64;
            room = room.saturating_sub(took);
        }
        if self.conn.is_closed() {
            return;
        }
        if self.sent >= total {
            if let Err(e) = self.conn.send_eof(ch) {
                return self.set_failed(FailKind::Protocol(format!("eof: {e}")));
            }
            self.phase = Phase::Draining;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_kinds_have_stable_labels() {
        assert_eq!(FailKind::Refused.label(), "refused");
        assert_eq!(FailKind::Timeout.label(), "timeout");
        assert_eq!(FailKind::Disconnect(2).label(), "disconnect_2");
        assert_eq!(FailKind::AuthRejected.label(), "auth_rejected");
    }
}
