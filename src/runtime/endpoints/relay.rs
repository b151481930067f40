//! Moving bytes for one endpoint in one connection turn: client data from the channel's
//! `inbound` to a backend socket or child stdin, and endpoint output to the channel no faster
//! than `send_capacity` allows; connect completion, EOF and errors on the way. Free functions
//! over one endpoint and the connection, so the module above keeps the bookkeeping.

use super::backend::{Backend, Phase, Stream};
use super::child::{ChildProc, Out};
use super::forward_listen::{ForwardListener, ACCEPTS_PER_TURN};
use crate::connection::ChannelId;
use crate::runtime::conn::{token_of, Conn, SocketKind, WRITE_HIGH_WATER};
use crate::runtime::core::Core;
use mio::net::TcpStream;
use mio::{Interest, Registry};
use std::path::Path;
use std::time::Instant;

/// What to do with an endpoint after its pump.
pub(super) enum Fate {
    Keep,
    /// Connect failed: CHANNEL_OPEN_FAILURE with this text.
    ConnectFailed(String),
    /// The socket failed after opening: EOF + CLOSE to the client.
    Failed,
}

/// The worker's relay buffer and this turn's budget, lent to one endpoint's pump.
pub(super) struct Relay<'a> {
    pub buf: &'a mut Vec<u8>,
    pub budget: &'a mut usize,
    pub progress: &'a mut bool,
    /// Bytes read through `buf` and copied into a packet (the fallback path).
    pub copied: &'a mut u64,
    pub now: Instant,
}

impl Relay<'_> {
    /// How much to read now for a channel with `cap` bytes of send capacity (0: do not read).
    fn room<C: Core>(&self, conn: &Conn<C>, cap: usize) -> usize {
        if conn.pending_out() >= WRITE_HIGH_WATER || conn.hold_back {
            return 0;
        }
        cap.min(self.buf.len()).min(*self.budget)
    }

    fn took(&mut self, n: usize) {
        *self.budget = self.budget.saturating_sub(n);
        *self.progress = true;
    }
}

/// Starts a connect to the next address left; `Err` with the last error when none works.
pub(super) fn connect_next(
    registry: &Registry,
    ekey: usize,
    generation: u32,
    b: &mut Backend,
) -> Result<(), String> {
    let mut last = String::from("no address");
    while let Some(addr) = b.more_addrs.pop() {
        match TcpStream::connect(addr) {
            Ok(mut s) => {
                let t = token_of(SocketKind::Backend, ekey, generation);
                if let Err(e) =
                    registry.register(&mut s, t, Interest::READABLE | Interest::WRITABLE)
                {
                    last = e.to_string();
                    continue;
                }
                let _ = s.set_nodelay(true);
                b.stream = Some(Stream::Tcp(s));
                b.phase = Phase::Connecting;
                b.readable = false;
                b.writable = false;
                return Ok(());
            }
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}

/// Starts a non-blocking connect to a Unix socket (direct-streamlocal); `Err` at once when
/// the path cannot be connected (missing, refused, permission).
pub(super) fn connect_unix(
    registry: &Registry,
    ekey: usize,
    generation: u32,
    b: &mut Backend,
    path: &Path,
) -> Result<(), String> {
    let mut s =
        mio::net::UnixStream::connect(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let t = token_of(SocketKind::Backend, ekey, generation);
    registry
        .register(&mut s, t, Interest::READABLE | Interest::WRITABLE)
        .map_err(|e| e.to_string())?;
    b.stream = Some(Stream::Unix(s));
    b.phase = Phase::Connecting;
    b.readable = false;
    b.writable = false;
    Ok(())
}

pub(super) fn pump_backend<C: Core>(
    conn: &mut Conn<C>,
    b: &mut Backend,
    registry: &Registry,
    ekey: usize,
    generation: u32,
    relay: &mut Relay<'_>,
) -> Fate {
    match b.phase {
        Phase::Resolving | Phase::AwaitingOpen => return Fate::Keep,
        Phase::Connecting => {
            if !b.readable && !b.writable {
                return Fate::Keep;
            }
            match b.check_connected() {
                Ok(false) => {
                    b.readable = false;
                    b.writable = false;
                    return Fate::Keep;
                }
                Ok(true) => {
                    b.phase = Phase::Open;
                    b.deadline = None;
                    b.readable = true;
                    b.writable = true;
                    *relay.progress = true;
                    conn.core.backend_connected(b.channel);
                }
                Err(e) => {
                    if let Some(mut s) = b.stream.take() {
                        let _ = registry.deregister(&mut s);
                    }
                    if b.more_addrs.is_empty() {
                        return Fate::ConnectFailed(e.to_string());
                    }
                    if let Err(text) = connect_next(registry, ekey, generation, b) {
                        return Fate::ConnectFailed(text);
                    }
                    return Fate::Keep;
                }
            }
        }
        Phase::Open => {}
    }
    let ch = b.channel;
    // Client → backend, straight from the channel's inbound buffer.
    while !b.write_shut && b.writable {
        let data = conn.core.inbound(ch);
        if data.is_empty() {
            break;
        }
        match b.write_some(data) {
            Ok(0) => break,
            Ok(n) => {
                conn.core.backend_consumed(ch, n);
                *relay.progress = true;
            }
            Err(_) => return Fate::Failed,
        }
    }
    if b.client_eof && !b.write_shut && conn.core.inbound(ch).is_empty() {
        b.shutdown_write();
    }
    // Backend → client, no more than the channel can take now: read straight into the payload
    // area of a CHANNEL_DATA packet in the connection's output buffer; through the relay
    // buffer (one copy) only when the core cannot stage in place (held back during a KEX).
    while b.readable && !b.read_eof {
        let room = relay.room(conn, conn.core.send_capacity(ch));
        if room == 0 {
            break;
        }
        if let Some(res) = read_in_place(conn, ch, room, false, relay.now, |d| b.read_once(d)) {
            match res {
                Ok(None) => break,
                Ok(Some(0)) => {
                    b.read_eof = true;
                    *relay.progress = true;
                    conn.core.backend_eof(ch);
                }
                Ok(Some(n)) => relay.took(n),
                Err(_) => return Fate::Failed,
            }
            continue;
        }
        let Some(dst) = relay.buf.get_mut(..room) else { break };
        match b.read_once(dst) {
            Ok(None) => break,
            Ok(Some(0)) => {
                b.read_eof = true;
                *relay.progress = true;
                conn.core.backend_eof(ch);
            }
            Ok(Some(n)) => {
                let data = relay.buf.get(..n).unwrap_or_default();
                let taken = conn.core.send_data(ch, data, relay.now);
                *relay.copied += taken as u64;
                if taken < n {
                    // Cannot happen (n ≤ send_capacity); never drop bytes silently.
                    log::error!("channel {ch:?}: core took {taken} of {n} bytes");
                    return Fate::Failed;
                }
                relay.took(n);
            }
            Err(_) => return Fate::Failed,
        }
    }
    if b.read_eof && b.write_shut && !b.close_sent {
        b.close_sent = true;
        conn.core.backend_closed(ch);
    }
    Fate::Keep
}

/// Reads at most `room` bytes with `read` straight into a channel-data packet staged in the
/// core's output buffer (`stderr`: extended data) and stages it; `None` when the core cannot
/// stage in place now (the caller reads into the relay buffer instead).
fn read_in_place<C: Core>(
    conn: &mut Conn<C>,
    ch: ChannelId,
    room: usize,
    stderr: bool,
    now: Instant,
    read: impl FnOnce(&mut [u8]) -> std::io::Result<Option<usize>>,
) -> Option<std::io::Result<Option<usize>>> {
    let slot = conn.core.data_slot(ch, room, stderr)?;
    let res = read(slot);
    let n = match res {
        Ok(Some(n)) => n,
        _ => 0,
    };
    // 0 cancels the staged packet.
    let taken = conn.core.data_filled(ch, n, now);
    if taken < n {
        // The core failed the connection (a sealing fault); the bytes go nowhere.
        return Some(Err(std::io::Error::other("channel data not staged")));
    }
    Some(res)
}

/// Feeds stdin, reads stdout/stderr, and reports the exit once the output has ended. Returns a
/// deadline for the next reap attempt when the child has not exited yet.
pub(super) fn pump_child<C: Core>(
    conn: &mut Conn<C>,
    c: &mut ChildProc,
    registry: &Registry,
    relay: &mut Relay<'_>,
) -> Option<Instant> {
    let ch = c.channel;
    loop {
        let data = conn.core.inbound(ch);
        if data.is_empty() {
            break;
        }
        if c.stdin.is_none() {
            // The child closed its stdin: what the client still sends is dropped, and its
            // window given back, as sshd does.
            let n = data.len();
            conn.core.backend_consumed(ch, n);
            continue;
        }
        if !c.stdin_writable {
            break;
        }
        match c.write_stdin(data) {
            Ok(0) => break,
            Ok(n) => {
                conn.core.backend_consumed(ch, n);
                *relay.progress = true;
            }
            Err(_) => {
                if let Some(mut p) = c.stdin.take() {
                    let _ = registry.deregister(&mut p);
                }
            }
        }
    }
    if c.client_eof && conn.core.inbound(ch).is_empty() {
        if let Some(mut p) = c.stdin.take() {
            let _ = registry.deregister(&mut p);
        }
    }
    for which in [Out::Stdout, Out::Stderr] {
        while c.readable(which) {
            let room = relay.room(conn, conn.core.send_capacity(ch));
            if room == 0 {
                break;
            }
            let stderr = matches!(which, Out::Stderr);
            let direct = read_in_place(conn, ch, room, stderr, relay.now, |d| {
                let r = c.read_once(which, d);
                if let (Ok(Some(n)), Some(rec)) = (&r, c.recording.as_mut()) {
                    rec.output(d.get(..*n).unwrap_or_default());
                }
                r
            });
            let res = match direct {
                Some(res) => res,
                None => {
                    let Some(dst) = relay.buf.get_mut(..room) else { break };
                    match c.read_once(which, dst) {
                        Ok(Some(n)) if n > 0 => {
                            let data = relay.buf.get(..n).unwrap_or_default();
                            if let Some(r) = c.recording.as_mut() {
                                r.output(data);
                            }
                            let taken = match which {
                                Out::Stdout => conn.core.send_data(ch, data, relay.now),
                                Out::Stderr => conn.core.send_stderr(ch, data, relay.now),
                            };
                            if taken < n {
                                log::error!("channel {ch:?}: core took {taken} of {n} bytes");
                            }
                            *relay.copied += taken as u64;
                            Ok(Some(n))
                        }
                        other => other,
                    }
                }
            };
            match res {
                Ok(None) => break,
                Ok(Some(0)) | Err(_) => {
                    let pipe = match which {
                        Out::Stdout => c.stdout.take(),
                        Out::Stderr => c.stderr.take(),
                    };
                    if let Some(mut p) = pipe {
                        let _ = registry.deregister(&mut p);
                    }
                    *relay.progress = true;
                }
                Ok(Some(n)) => relay.took(n),
            }
        }
    }
    if !c.output_done() || c.reported {
        return None;
    }
    if let Some(status) = c.try_reap() {
        c.reported = true;
        *relay.progress = true;
        if let Some(mut p) = c.stdin.take() {
            let _ = registry.deregister(&mut p);
        }
        conn.core.child_exited(ch, status);
        return None;
    }
    if c.reap_at.is_some() {
        return None; // a retry is already armed
    }
    let at = relay.now + c.reap_step;
    c.reap_at = Some(at);
    Some(at)
}

/// Accepts on a forward listener (bounded per turn); each connection asks the core for a
/// forwarded-tcpip channel. Returns how many were accepted.
pub(super) fn accept_forwarded<C: Core>(
    conn: &mut Conn<C>,
    l: &mut ForwardListener,
    accepted: &mut Vec<(ChannelId, Stream)>,
) -> usize {
    let mut n = 0;
    while l.readable && n < ACCEPTS_PER_TURN {
        match l.accept() {
            Ok(Some((stream, peer))) => {
                n += 1;
                // A Unix listener's peers have no address: the core sends the path instead.
                let (ip, port) =
                    peer.map_or((String::new(), 0), |p| (p.ip().to_string(), p.port()));
                match conn.core.forwarded_connection(l.id, &ip, port) {
                    Ok(ch) => accepted.push((ch, stream)),
                    Err(e) => log::debug!("forwarded connection from {peer:?} refused: {e:?}"),
                }
            }
            Ok(None) => break,
            Err(e) => {
                log::debug!("accept on a forward listener: {e}");
                break;
            }
        }
    }
    n
}

pub(super) fn close_pipes(c: &mut ChildProc, registry: &Registry) {
    if let Some(mut p) = c.stdin.take() {
        let _ = registry.deregister(&mut p);
    }
    if let Some(mut p) = c.stdout.take() {
        let _ = registry.deregister(&mut p);
    }
    if let Some(mut p) = c.stderr.take() {
        let _ = registry.deregister(&mut p);
    }
}
