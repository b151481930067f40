//! The client side of user authentication (RFC 4252) and the connection protocol (RFC 4254)
//! that the harness needs, on top of sshfront's `ClientConnection`. Sans-IO like the core.

use sshfront::algo::host_key::{HostKeyAlg, HostKeyPair};
use sshfront::client::ClientConnection;
use sshfront::packet::PayloadAt;
use sshfront::transport::{DisconnectReason, Event, Read};
use sshfront::wire::{msg_no as m, Reader, Writer};
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

/// Our channel number (one channel per connection).
const LOCAL_ID: u32 = 0;
/// Window and max packet we offer for inbound data.
const LOCAL_WINDOW: u32 = 2 * 1024 * 1024;
const LOCAL_MAX_PACKET: u32 = 32 * 1024;
/// Largest CHANNEL_DATA payload we send, whatever the peer allows.
const MAX_CHUNK: u32 = 32 * 1024;
static ZEROS: [u8; MAX_CHUNK as usize] = [0u8; MAX_CHUNK as usize];

/// One client connection above the transport.
pub struct Session {
    pub conn: ClientConnection,
    plan: Arc<Plan>,
    pub phase: Phase,
    pub fail: Option<FailKind>,
    remote_id: u32,
    remote_window: u64,
    remote_max: u32,
    /// Inbound channel bytes not yet given back with WINDOW_ADJUST.
    consumed: u32,
    pub sent: u64,
    /// When the channel became ready for data.
    pub data_start: Option<Instant>,
    pub done_at: Option<Instant>,
}

impl Session {
    pub fn new(conn: ClientConnection, plan: Arc<Plan>) -> Session {
        let mut s = Session {
            conn,
            plan,
            phase: Phase::Transport,
            fail: None,
            remote_id: 0,
            remote_window: 0,
            remote_max: 0,
            consumed: 0,
            sent: 0,
            data_start: None,
            done_at: None,
        };
        if let Err(e) = s.conn.transport_mut().request_service("ssh-userauth") {
            s.set_failed(FailKind::Protocol(e.to_string()));
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
        self.conn.transport_mut().close(DisconnectReason::ByApplication, "bench done");
        // The Closed event this queues is ours, not a failure.
        while self.conn.poll_event().is_some() {}
    }

    /// Ends the connection from our side (idle hold over, or the load's time is up).
    pub fn close(&mut self) {
        self.conn.transport_mut().close(DisconnectReason::ByApplication, "bench done");
        while self.conn.poll_event().is_some() {}
    }

    /// The TCP connection ended or failed under us.
    pub fn socket_failed(&mut self, k: FailKind) {
        if self.phase == Phase::Holding {
            self.phase = Phase::Done;
        }
        self.set_failed(k);
    }

    /// Feeds received bytes to the transport and acts on each service message as soon as it is
    /// opened (not batched like `ClientConnection::handle_input`): USERAUTH_SUCCESS must mark
    /// the transport authenticated before the next packet, which from sshd is often a
    /// GLOBAL_REQUEST in the same read. Returns the bytes consumed.
    pub fn handle_input(&mut self, input: &mut [u8], now: Instant) -> usize {
        let mut off = 0usize;
        while !self.is_finished() {
            let Some(rest) = input.get_mut(off..) else { return input.len() };
            match self.conn.transport_mut().read(rest, now) {
                Read::Consumed(0) => return off,
                Read::Consumed(n) => off += n,
                Read::Service { consumed, payload, .. } => {
                    let msg = match payload {
                        PayloadAt::Input(r) => rest.get(r).unwrap_or(&[]).to_vec(),
                        PayloadAt::Inflated => {
                            let t = self.conn.transport_mut();
                            let v = t.take_inflated();
                            let m = v.clone();
                            t.restore_inflated(v);
                            m
                        }
                    };
                    off += consumed;
                    self.on_service_message(&msg, now);
                }
                Read::Wait => return off,
                Read::Closed => return input.len(),
            }
        }
        off
    }

    fn on_service_message(&mut self, msg: &[u8], now: Instant) {
        if self.is_finished() {
            return;
        }
        if let Err(e) = self.on_message(msg, now) {
            self.conn.transport_mut().close(DisconnectReason::ProtocolError, &e);
            while self.conn.poll_event().is_some() {}
            self.set_failed(FailKind::Protocol(e));
        }
    }

    /// Runs events (crypto jobs inline), service messages and the data pump.
    /// `out_room`: how many more bytes of channel data the caller will take this turn.
    pub fn process(&mut self, now: Instant, out_room: usize) {
        while let Some(ev) = self.conn.poll_event() {
            match ev {
                Event::Job(job) => {
                    let done = job.run();
                    self.conn.handle_job_done(done, now);
                }
                Event::ServiceAccepted(_) => self.on_service_accepted(now),
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
                Event::KexDone(_) | Event::Log(_) => {}
            }
        }
        if self.phase == Phase::Data {
            self.pump(now, out_room);
        }
        self.conn.transport_mut().check_rekey(now);
    }

    fn on_service_accepted(&mut self, now: Instant) {
        if self.phase != Phase::Transport {
            return;
        }
        let plan = self.plan.clone();
        let mut p = Vec::with_capacity(256);
        match &plan.auth {
            AuthMethod::None if matches!(plan.goal, Goal::Idle) => {
                self.phase = Phase::Holding;
                self.done_at = Some(now);
                return;
            }
            AuthMethod::None => return self.set_done(now),
            AuthMethod::Password(pw) => {
                Writer::new(&mut p)
                    .u8(m::USERAUTH_REQUEST)
                    .string(plan.user.as_bytes())
                    .string(b"ssh-connection")
                    .string(b"password")
                    .bool(false)
                    .string(pw.as_bytes());
            }
            AuthMethod::PublicKey(key) => {
                let Some(sid) = self.conn.transport().session_id().map(<[u8]>::to_vec) else {
                    return self.set_failed(FailKind::Protocol("no session id".into()));
                };
                match publickey_request(&plan.user, key, &sid) {
                    Ok(v) => p = v,
                    Err(e) => return self.set_failed(FailKind::Protocol(e)),
                }
            }
        }
        self.send(&p);
        self.phase = Phase::Auth;
    }

    fn send(&mut self, payload: &[u8]) {
        if let Err(e) = self.conn.send(payload) {
            self.set_failed(FailKind::Protocol(format!("send: {e}")));
        }
    }

    fn on_message(&mut self, msg: &[u8], now: Instant) -> Result<(), String> {
        let mut r = Reader::new(msg);
        let no = r.u8("msg").map_err(|e| e.to_string())?;
        let err = |e: sshfront::wire::DecodeError| e.to_string();
        match (self.phase, no) {
            (_, m::USERAUTH_BANNER) => {}
            (Phase::Auth, m::USERAUTH_SUCCESS) => {
                self.conn.transport_mut().set_authenticated();
                self.after_auth(now);
            }
            (Phase::Auth, m::USERAUTH_FAILURE) => self.set_failed(FailKind::AuthRejected),
            (_, m::GLOBAL_REQUEST) => {
                let _name = r.string("name").map_err(err)?;
                if r.bool("want_reply").map_err(err)? {
                    self.send(&[m::REQUEST_FAILURE]);
                }
            }
            (Phase::ChannelOpen, m::CHANNEL_OPEN_CONFIRMATION) => {
                let _ours = r.u32("recipient").map_err(err)?;
                self.remote_id = r.u32("sender").map_err(err)?;
                self.remote_window = u64::from(r.u32("window").map_err(err)?);
                self.remote_max = r.u32("max_packet").map_err(err)?;
                self.on_channel_open(now);
            }
            (Phase::ChannelOpen, m::CHANNEL_OPEN_FAILURE) => {
                self.set_failed(FailKind::ChannelRejected)
            }
            (Phase::ExecRequest, m::CHANNEL_SUCCESS) => self.start_data(now),
            (Phase::ExecRequest, m::CHANNEL_FAILURE) => self.set_failed(FailKind::ChannelRejected),
            (_, m::CHANNEL_WINDOW_ADJUST) => {
                let _ours = r.u32("recipient").map_err(err)?;
                let add = r.u32("bytes").map_err(err)?;
                self.remote_window = self.remote_window.saturating_add(u64::from(add));
            }
            (_, m::CHANNEL_DATA | m::CHANNEL_EXTENDED_DATA) => {
                let _ours = r.u32("recipient").map_err(err)?;
                if no == m::CHANNEL_EXTENDED_DATA {
                    r.u32("code").map_err(err)?;
                }
                let data = r.string("data").map_err(err)?;
                let n = u32::try_from(data.len()).unwrap_or(u32::MAX);
                self.consumed = self.consumed.saturating_add(n);
                if self.consumed >= LOCAL_WINDOW / 2 {
                    let mut p = Vec::with_capacity(9);
                    Writer::new(&mut p)
                        .u8(m::CHANNEL_WINDOW_ADJUST)
                        .u32(self.remote_id)
                        .u32(self.consumed);
                    self.consumed = 0;
                    self.send(&p);
                }
            }
            (_, m::CHANNEL_REQUEST) => {
                let _ours = r.u32("recipient").map_err(err)?;
                let _name = r.string("name").map_err(err)?;
                if r.bool("want_reply").map_err(err)? {
                    let mut p = Vec::with_capacity(5);
                    Writer::new(&mut p).u8(m::CHANNEL_FAILURE).u32(self.remote_id);
                    self.send(&p);
                }
            }
            (_, m::CHANNEL_EOF) => {}
            (Phase::Draining, m::CHANNEL_CLOSE) => {
                let mut p = Vec::with_capacity(5);
                Writer::new(&mut p).u8(m::CHANNEL_CLOSE).u32(self.remote_id);
                self.send(&p);
                self.set_done(now);
            }
            (Phase::Data, m::CHANNEL_CLOSE) => self
                .set_failed(FailKind::Protocol("channel closed before all data was sent".into())),
            (
                _,
                m::REQUEST_SUCCESS | m::REQUEST_FAILURE | m::CHANNEL_SUCCESS | m::CHANNEL_FAILURE,
            ) => {}
            (ph, n) => return Err(format!("unexpected message {n} in {ph:?}")),
        }
        Ok(())
    }

    fn after_auth(&mut self, now: Instant) {
        let plan = self.plan.clone();
        let mut p = Vec::with_capacity(128);
        let mut w = Writer::new(&mut p);
        w.u8(m::CHANNEL_OPEN);
        match &plan.goal {
            Goal::Idle => {
                self.phase = Phase::Holding;
                self.done_at = Some(now);
                return;
            }
            Goal::Handshake { channel: false } => return self.set_done(now),
            Goal::Handshake { channel: true } | Goal::Bulk { target: Target::Exec(_), .. } => {
                w.string(b"session").u32(LOCAL_ID).u32(LOCAL_WINDOW).u32(LOCAL_MAX_PACKET);
            }
            Goal::Bulk { target: Target::Direct(host, port), .. } => {
                w.string(b"direct-tcpip")
                    .u32(LOCAL_ID)
                    .u32(LOCAL_WINDOW)
                    .u32(LOCAL_MAX_PACKET)
                    .string(host.as_bytes())
                    .u32(u32::from(*port))
                    .string(b"127.0.0.1")
                    .u32(40000);
            }
        }
        self.send(&p);
        self.phase = Phase::ChannelOpen;
    }

    fn on_channel_open(&mut self, now: Instant) {
        let plan = self.plan.clone();
        match &plan.goal {
            Goal::Bulk { target: Target::Exec(cmd), .. } => {
                let mut p = Vec::with_capacity(64 + cmd.len());
                Writer::new(&mut p)
                    .u8(m::CHANNEL_REQUEST)
                    .u32(self.remote_id)
                    .string(b"exec")
                    .bool(true)
                    .string(cmd.as_bytes());
                self.send(&p);
                self.phase = Phase::ExecRequest;
            }
            Goal::Bulk { .. } => self.start_data(now),
            _ => {
                // The open round trip is what we measure; CLOSE goes out with the DISCONNECT
                // (some servers, russh 0.54 among them, never answer a client's CLOSE).
                let mut p = Vec::with_capacity(5);
                Writer::new(&mut p).u8(m::CHANNEL_CLOSE).u32(self.remote_id);
                self.send(&p);
                self.set_done(now);
            }
        }
    }

    fn start_data(&mut self, now: Instant) {
        self.phase = Phase::Data;
        self.data_start = Some(now);
    }

    /// Sends CHANNEL_DATA within the peer's window and max packet, up to `room` bytes.
    fn pump(&mut self, _now: Instant, mut room: usize) {
        let total = match &self.plan.goal {
            Goal::Bulk { bytes, .. } => *bytes,
            _ => 0,
        };
        while self.sent < total && room > 0 && !self.conn.transport().is_handshaking() {
            let n = (total - self.sent)
                .min(self.remote_window)
                .min(u64::from(self.remote_max.min(MAX_CHUNK)))
                .min(room as u64) as usize;
            if n == 0 {
                return;
            }
            let rid = self.remote_id;
            let data = &ZEROS[..n];
            let res = self.conn.transport_mut().send_with(|out| {
                Writer::new(out).u8(m::CHANNEL_DATA).u32(rid).string(data);
            });
            if let Err(e) = res {
                return self.set_failed(FailKind::Protocol(format!("send: {e}")));
            }
            self.sent += n as u64;
            self.remote_window -= n as u64;
            room = room.saturating_sub(n);
        }
        if self.sent >= total {
            let mut p = Vec::with_capacity(5);
            Writer::new(&mut p).u8(m::CHANNEL_EOF).u32(self.remote_id);
            self.send(&p);
            self.phase = Phase::Draining;
        }
    }
}

/// USERAUTH_REQUEST "publickey" with signature (RFC 4252 §7), ssh-ed25519.
pub fn publickey_request(
    user: &str,
    key: &HostKeyPair,
    session_id: &[u8],
) -> Result<Vec<u8>, String> {
    let alg = HostKeyAlg::Ed25519;
    let mut blob = Vec::with_capacity(256);
    Writer::new(&mut blob)
        .string(session_id)
        .u8(m::USERAUTH_REQUEST)
        .string(user.as_bytes())
        .string(b"ssh-connection")
        .string(b"publickey")
        .bool(true)
        .string(alg.name().as_bytes())
        .string(key.public_blob());
    let sig =
        key.sign(alg, &blob, &mut sshfront::algo::SystemRng).map_err(|e| format!("sign: {e}"))?;
    let mut p = Vec::with_capacity(256);
    Writer::new(&mut p)
        .u8(m::USERAUTH_REQUEST)
        .string(user.as_bytes())
        .string(b"ssh-connection")
        .string(b"publickey")
        .bool(true)
        .string(alg.name().as_bytes())
        .string(key.public_blob())
        .string(&sig);
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sshfront::algo::host_key::{verify, KeyKind};

    #[test]
    fn publickey_request_is_rfc4252_and_signature_verifies() {
        let (key, _) = HostKeyPair::generate(KeyKind::Ed25519).unwrap();
        let sid = [7u8; 32];
        let p = publickey_request("bench", &key, &sid).unwrap();
        let mut r = Reader::new(&p);
        assert_eq!(r.u8("msg").unwrap(), m::USERAUTH_REQUEST);
        assert_eq!(r.string("user").unwrap(), b"bench");
        assert_eq!(r.string("service").unwrap(), b"ssh-connection");
        assert_eq!(r.string("method").unwrap(), b"publickey");
        assert!(r.bool("has_sig").unwrap());
        assert_eq!(r.string("alg").unwrap(), b"ssh-ed25519");
        assert_eq!(r.string("key").unwrap(), key.public_blob());
        let sig = r.string("sig").unwrap();
        r.finish("request").unwrap();
        // The signed blob: session id, then the request up to the signature.
        let mut signed = Vec::new();
        Writer::new(&mut signed).string(&sid);
        signed.extend_from_slice(&p[..p.len() - 4 - sig.len()]);
        verify(HostKeyAlg::Ed25519, key.public_blob(), &signed, sig).unwrap();
        // Any other session id does not verify.
        signed[4] ^= 1;
        assert!(verify(HostKeyAlg::Ed25519, key.public_blob(), &signed, sig).is_err());
    }

    #[test]
    fn fail_kinds_have_stable_labels() {
        assert_eq!(FailKind::Refused.label(), "refused");
        assert_eq!(FailKind::Timeout.label(), "timeout");
        assert_eq!(FailKind::Disconnect(2).label(), "disconnect_2");
        assert_eq!(FailKind::AuthRejected.label(), "auth_rejected");
    }
}
