//! The mio engine: many non-blocking client connections on one thread, crypto jobs inline.

use crate::proto::{FailKind, Phase, Plan, Session};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use socket2::{Domain, Protocol, Socket, Type};
use sshfront::algo::SystemRng;
use sshfront::client::ClientConnection;
use sshfront::transport::TransportConfig;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Output we let pile up (sealed, unsent) before the data pump pauses.
const OUT_HIGH: usize = 512 * 1024;
/// Read/process/write rounds per connection per event before it yields to the others.
const ROUNDS: usize = 64;
/// Input buffered before we stop reading for the turn.
const IN_HIGH: usize = 1024 * 1024;

struct Conn {
    sock: TcpStream,
    sess: Session,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    out_off: usize,
    started: Instant,
    connected: bool,
    eof: bool,
    /// Any byte from the server yet (a close before the first byte is a refusal at accept).
    got_bytes: bool,
    /// Counted in `Engine::holding` (kept in step with the phase after every drive).
    held: bool,
}

/// A connection that reached its goal or failed.
pub struct Finished {
    pub started: Instant,
    pub sess: Session,
    /// The server sent at least one byte.
    pub got_bytes: bool,
}

pub struct Engine {
    poll: Poll,
    events: Events,
    conns: Slab<Conn>,
    cfg: Arc<TransportConfig>,
    plan: Arc<Plan>,
    addr: SocketAddr,
    timeout: Duration,
    again: Vec<usize>,
    last_sweep: Instant,
    /// Local source addresses for new connections, used in turn (attack runs act as a separate
    /// source; a large idle run spreads over several); empty: the kernel's choice.
    binds: Vec<IpAddr>,
    next_bind: usize,
    /// Connections in `Phase::Holding`.
    holding: usize,
}

impl Engine {
    pub fn new(
        cfg: Arc<TransportConfig>,
        plan: Arc<Plan>,
        addr: SocketAddr,
        timeout: Duration,
    ) -> io::Result<Engine> {
        Ok(Engine {
            poll: Poll::new()?,
            events: Events::with_capacity(1024),
            conns: Slab::new(),
            cfg,
            plan,
            addr,
            timeout,
            again: Vec::new(),
            last_sweep: Instant::now(),
            binds: Vec::new(),
            next_bind: 0,
            holding: 0,
        })
    }

    /// Connect new connections from this local address (port chosen by the kernel).
    pub fn set_bind(&mut self, ip: IpAddr) {
        self.set_binds(vec![ip]);
    }

    /// Connect new connections from these local addresses in turn.
    pub fn set_binds(&mut self, ips: Vec<IpAddr>) {
        self.binds = ips;
        self.next_bind = 0;
    }

    /// Connections open (in progress or held).
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Connections that reached the idle goal and are being held.
    /// A counter, not a scan: an idle run asks once per turn with tens of thousands open.
    pub fn holding(&self) -> usize {
        self.holding
    }

    /// Connections whose channel is pushing (or has pushed) data.
    pub fn data_started(&self) -> usize {
        self.conns.iter().filter(|(_, c)| c.sess.data_start.is_some()).count()
    }

    /// Starts one connection; an immediate connect error comes back as a failure.
    pub fn open(&mut self, now: Instant) -> Result<(), FailKind> {
        let bind = self.binds.get(self.next_bind).copied();
        if !self.binds.is_empty() {
            self.next_bind = (self.next_bind + 1) % self.binds.len();
        }
        let mut sock = connect_from(bind, self.addr).map_err(|e| classify(&e))?;
        let _ = sock.set_nodelay(true);
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        self.poll
            .registry()
            .register(&mut sock, Token(key), Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| FailKind::Io(e.to_string()))?;
        let conn = ClientConnection::new(self.cfg.clone(), Box::new(SystemRng), None, now);
        entry.insert(Conn {
            sock,
            sess: Session::new(conn, self.plan.clone()),
            inbuf: Vec::new(),
            out: Vec::new(),
            out_off: 0,
            started: now,
            connected: false,
            eof: false,
            got_bytes: false,
            held: false,
        });
        Ok(())
    }

    /// Waits up to `max_wait` for events, drives the ready connections, applies timeouts and
    /// returns those that finished.
    pub fn turn(&mut self, max_wait: Duration) -> Vec<Finished> {
        let wait = if self.again.is_empty() { max_wait } else { Duration::ZERO };
        if let Err(e) = self.poll.poll(&mut self.events, Some(wait)) {
            if e.kind() != io::ErrorKind::Interrupted {
                eprintln!("poll: {e}");
            }
        }
        let mut ready: Vec<usize> = self.events.iter().map(|e| e.token().0).collect();
        ready.append(&mut self.again);
        ready.sort_unstable();
        ready.dedup();
        let mut finished = Vec::new();
        for key in ready {
            let now = Instant::now();
            let Some(c) = self.conns.get_mut(key) else { continue };
            if drive(c, now) {
                self.again.push(key);
            }
            let holds = c.sess.phase == Phase::Holding;
            if holds != c.held {
                c.held = holds;
                if holds {
                    self.holding += 1;
                } else {
                    self.holding -= 1;
                }
            }
            if c.sess.is_finished() {
                finished.push(self.remove(key));
            }
        }
        let now = Instant::now();
        if now.duration_since(self.last_sweep) >= Duration::from_millis(20) {
            self.last_sweep = now;
            let late: Vec<usize> = self
                .conns
                .iter()
                .filter(|(_, c)| {
                    c.sess.phase != Phase::Holding && now.duration_since(c.started) > self.timeout
                })
                .map(|(k, _)| k)
                .collect();
            for key in late {
                if let Some(c) = self.conns.get_mut(key) {
                    c.sess.socket_failed(FailKind::Timeout);
                }
                finished.push(self.remove(key));
            }
        }
        finished
    }

    fn remove(&mut self, key: usize) -> Finished {
        let mut c = self.conns.remove(key);
        if c.held {
            self.holding -= 1;
        }
        flush(&mut c);
        let _ = self.poll.registry().deregister(&mut c.sock);
        Finished { started: c.started, sess: c.sess, got_bytes: c.got_bytes }
    }

    /// Sends DISCONNECT on every open connection (best effort) and drops them all.
    pub fn close_all(&mut self) -> Vec<Finished> {
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(c) = self.conns.get_mut(key) {
                c.sess.close();
            }
            out.push(self.remove(key));
        }
        self.again.clear();
        out
    }
}

/// Non-blocking connect to `addr`, from `bind` if given (socket2: bind before connect).
pub fn connect_from(bind: Option<IpAddr>, addr: SocketAddr) -> io::Result<TcpStream> {
    let Some(ip) = bind else { return TcpStream::connect(addr) };
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_nonblocking(true)?;
    sock.bind(&SocketAddr::new(ip, 0).into())?;
    match sock.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(sock.into()))
}

pub fn classify(e: &io::Error) -> FailKind {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => FailKind::Refused,
        io::ErrorKind::TimedOut => FailKind::Timeout,
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => FailKind::ConnectionLost,
        _ => FailKind::Io(e.kind().to_string()),
    }
}

/// One best-effort write of whatever is sealed (for the DISCONNECT on the way out).
fn flush(c: &mut Conn) {
    c.sess.conn.poll_transmit(&mut c.out);
    if c.out_off < c.out.len() {
        let _ = c.sock.write(&c.out[c.out_off..]);
    }
}

/// Reads, processes and writes until nothing moves. True: it used its rounds and has more.
fn drive(c: &mut Conn, now: Instant) -> bool {
    if !c.connected {
        match c.sock.take_error() {
            Ok(Some(e)) | Err(e) => {
                c.sess.socket_failed(classify(&e));
                return false;
            }
            Ok(None) => {}
        }
        match c.sock.peer_addr() {
            Ok(_) => c.connected = true,
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return false,
            Err(e) => {
                c.sess.socket_failed(classify(&e));
                return false;
            }
        }
    }
    for _ in 0..ROUNDS {
        let mut moved = false;
        // Read until the socket is dry (or enough is buffered).
        while !c.eof && c.inbuf.len() < IN_HIGH {
            let len = c.inbuf.len();
            c.inbuf.resize(len + 64 * 1024, 0);
            match c.sock.read(&mut c.inbuf[len..]) {
                Ok(0) => {
                    c.inbuf.truncate(len);
                    c.eof = true;
                }
                Ok(n) => {
                    c.inbuf.truncate(len + n);
                    c.got_bytes = true;
                    moved = true;
                }
                Err(e) => {
                    c.inbuf.truncate(len);
                    match e.kind() {
                        io::ErrorKind::WouldBlock => break,
                        io::ErrorKind::Interrupted => continue,
                        _ => {
                            c.sess.socket_failed(classify(&e));
                            return false;
                        }
                    }
                }
            }
        }
        if !c.inbuf.is_empty() {
            let used = c.sess.handle_input(&mut c.inbuf, now);
            if used > 0 {
                c.inbuf.drain(..used);
                moved = true;
            }
        }
        if c.eof && !c.sess.conn.is_closed() {
            c.sess.conn.transport_mut().peer_closed();
        }
        let pending = c.out.len() - c.out_off + c.sess.conn.transport().pending_transmit();
        c.sess.process(now, OUT_HIGH.saturating_sub(pending));
        // Write.
        if c.out_off > 0 && c.out_off == c.out.len() {
            c.out.clear();
            c.out_off = 0;
        }
        c.sess.conn.poll_transmit(&mut c.out);
        let mut blocked = false;
        while c.out_off < c.out.len() {
            match c.sock.write(&c.out[c.out_off..]) {
                Ok(0) => break,
                Ok(n) => {
                    c.out_off += n;
                    moved = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    blocked = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    c.sess.socket_failed(classify(&e));
                    return false;
                }
            }
        }
        if c.out_off == c.out.len() {
            c.out.clear();
            c.out_off = 0;
        }
        if c.sess.is_finished() || c.eof {
            return false;
        }
        if c.inbuf.is_empty() && c.sess.phase == Phase::Holding {
            // An idle connection keeps no buffers.
            c.inbuf = Vec::new();
            c.out = Vec::new();
            c.sess.conn.transport_mut().release_buffers();
        }
        if !moved || blocked && c.inbuf.is_empty() {
            return false;
        }
    }
    true
}
