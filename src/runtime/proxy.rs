//! The PROXY header gate: connections on a `--proxy-protocol` listener wait here, in the
//! acceptor's own `Poll`, until their header has arrived; only then do they go to a worker,
//! with the client address the header names.
//!
//! Why in the acceptor and not in a worker: no `ServerConnection` (which stages our version
//! line at once) may exist before the header is checked, and the acceptor already owns the
//! moment between accept and hand-off, so the worker's loop stays as it is. Nothing here blocks:
//! sockets are non-blocking, the header is looked at with `peek` (so not one byte of the SSH
//! stream is taken; the worker reads it as usual), and exactly the header's length is then
//! read, which the kernel already holds. Bounded: at most [`MAX_PENDING`] connections wait, each
//! at most `--proxy-timeout`, and a peer outside `--proxy-from` is closed before any read.

use crate::proxy_protocol::{self, Cidr, Parsed, MAX_HEADER_LEN};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use slab::Slab;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Connections waiting for their header at once; past it new ones are closed (only trusted
/// balancers get this far, so this is a safety net, not a normal limit).
pub const MAX_PENDING: usize = 4096;
/// Tokens of waiting connections in the acceptor's `Poll`: `TOKEN_BASE + slab key`.
pub const TOKEN_BASE: usize = 1 << 21;

/// A connection ready for a worker: socket, client address (from the header, or the socket's
/// peer for LOCAL / UNKNOWN), accept time.
pub type Admitted = (TcpStream, SocketAddr, Instant);

struct Pending {
    stream: TcpStream,
    peer: SocketAddr,
    accepted_at: Instant,
    deadline: Instant,
}

/// Outcome counters, for the metrics endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyCounts {
    pub ok: u64,
    pub untrusted: u64,
    pub invalid: u64,
    pub timeout: u64,
    pub closed: u64,
    pub overflow: u64,
}

impl ProxyCounts {
    pub fn labelled(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("ok", self.ok),
            ("untrusted", self.untrusted),
            ("invalid", self.invalid),
            ("timeout", self.timeout),
            ("closed", self.closed),
            ("overflow", self.overflow),
        ]
    }
}

pub struct ProxyGate {
    allowed: Vec<Cidr>,
    timeout: Duration,
    pending: Slab<Pending>,
    pub counts: ProxyCounts,
}

enum Step {
    Done(SocketAddr),
    Wait,
    Refuse(&'static str),
}

impl ProxyGate {
    pub fn new(allowed: Vec<Cidr>, timeout: Duration) -> Self {
        ProxyGate { allowed, timeout, pending: Slab::new(), counts: ProxyCounts::default() }
    }

    pub fn owns(&self, token: Token) -> bool {
        token.0 >= TOKEN_BASE && token.0 - TOKEN_BASE < MAX_PENDING
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// A freshly accepted socket: refused, admitted at once (header already there), or parked
    /// until it is readable.
    pub fn admit(
        &mut self,
        registry: &Registry,
        mut stream: TcpStream,
        peer: SocketAddr,
        now: Instant,
    ) -> Option<Admitted> {
        if !proxy_protocol::allowed(&self.allowed, peer.ip()) {
            self.counts.untrusted += 1;
            log::warn!("{peer}: not in --proxy-from, closing before any byte");
            return None; // dropping the stream closes it
        }
        match read_header(&mut stream) {
            Step::Done(client) => return self.done(stream, peer, client, now),
            Step::Refuse(why) => {
                self.refuse(peer, why);
                return None;
            }
            Step::Wait => {}
        }
        if self.pending.len() >= MAX_PENDING {
            self.counts.overflow += 1;
            log::warn!(
                "{peer}: {MAX_PENDING} connections already wait for a PROXY header; closing"
            );
            return None;
        }
        let entry = self.pending.vacant_entry();
        let token = Token(TOKEN_BASE + entry.key());
        if let Err(e) = registry.register(&mut stream, token, Interest::READABLE) {
            log::warn!("{peer}: cannot register: {e}");
            return None;
        }
        entry.insert(Pending { stream, peer, accepted_at: now, deadline: now + self.timeout });
        None
    }

    /// A waiting socket became readable: admitted, refused, or still waiting.
    pub fn readable(&mut self, registry: &Registry, token: Token) -> Option<Admitted> {
        let key = token.0.checked_sub(TOKEN_BASE)?;
        let p = self.pending.get_mut(key)?;
        match read_header(&mut p.stream) {
            Step::Wait => None,
            Step::Refuse(why) => {
                let mut p = self.pending.remove(key);
                let _ = registry.deregister(&mut p.stream);
                self.refuse(p.peer, why);
                None
            }
            Step::Done(client) => {
                let mut p = self.pending.remove(key);
                // Deregister before a worker registers it in its own Poll.
                let _ = registry.deregister(&mut p.stream);
                self.done(p.stream, p.peer, client, p.accepted_at)
            }
        }
    }

    /// Closes every connection whose header is overdue.
    pub fn expire(&mut self, registry: &Registry, now: Instant) {
        let overdue: Vec<usize> =
            self.pending.iter().filter(|(_, p)| p.deadline <= now).map(|(k, _)| k).collect();
        for key in overdue {
            let mut p = self.pending.remove(key);
            let _ = registry.deregister(&mut p.stream);
            self.counts.timeout += 1;
            log::warn!("{}: no PROXY header within {:?}, closing", p.peer, self.timeout);
        }
    }

    /// Closes every waiting connection (shutdown).
    pub fn clear(&mut self, registry: &Registry) {
        for mut p in self.pending.drain() {
            let _ = registry.deregister(&mut p.stream);
        }
    }

    /// The earliest header deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.iter().map(|(_, p)| p.deadline).min()
    }

    fn done(
        &mut self,
        stream: TcpStream,
        peer: SocketAddr,
        client: SocketAddr,
        accepted_at: Instant,
    ) -> Option<Admitted> {
        self.counts.ok += 1;
        log::debug!("{peer}: PROXY header for client {client}");
        Some((stream, client, accepted_at))
    }

    fn refuse(&mut self, peer: SocketAddr, why: &'static str) {
        if why == EOF {
            self.counts.closed += 1;
            log::debug!("{peer}: closed before sending a PROXY header");
        } else {
            self.counts.invalid += 1;
            log::warn!("{peer}: {why}, closing before any byte");
        }
    }
}

const EOF: &str = "closed before the PROXY header";

/// Peeks at what has arrived; on a complete header reads exactly its bytes. `Done` carries the
/// client address (`peer` of the socket when the header says LOCAL or UNKNOWN).
fn read_header(stream: &mut TcpStream) -> Step {
    let mut buf = [0u8; MAX_HEADER_LEN];
    let n = loop {
        match stream.peek(&mut buf) {
            Ok(0) => return Step::Refuse(EOF),
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Wait,
            Err(_) => return Step::Refuse(EOF),
        }
    };
    let (len, source) = match proxy_protocol::parse_header(buf.get(..n).unwrap_or_default()) {
        Parsed::Incomplete => return Step::Wait,
        Parsed::Invalid(why) => return Step::Refuse(why),
        Parsed::Header { len, source } => (len, source),
    };
    // The kernel holds these `len` bytes already (peek saw them): this read cannot block.
    let mut dst = buf.get_mut(..len).unwrap_or_default();
    while !dst.is_empty() {
        match stream.read(dst) {
            Ok(0) => return Step::Refuse(EOF),
            Ok(k) => dst = dst.get_mut(k..).unwrap_or_default(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Step::Refuse(EOF),
        }
    }
    match source.or_else(|| stream.peer_addr().ok()) {
        Some(client) => Step::Done(client),
        None => Step::Refuse(EOF),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};
    use std::io::Write;

    fn setup() -> (Poll, mio::net::TcpListener, SocketAddr) {
        let poll = Poll::new().unwrap();
        let l = mio::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let a = l.local_addr().unwrap();
        (poll, l, a)
    }

    fn accept(l: &mio::net::TcpListener) -> (TcpStream, SocketAddr) {
        for _ in 0..200 {
            if let Ok(x) = l.accept() {
                return x;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("no connection");
    }

    fn gate(cidr: &str, timeout_ms: u64) -> ProxyGate {
        ProxyGate::new(vec![Cidr::parse(cidr).unwrap()], Duration::from_millis(timeout_ms))
    }

    #[test]
    fn header_in_two_parts_then_ssh_bytes_stay_for_the_worker() {
        let (mut poll, l, addr) = setup();
        let mut g = gate("127.0.0.0/8", 5000);
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        let (s, peer) = accept(&l);
        assert!(g.admit(poll.registry(), s, peer, Instant::now()).is_none());
        assert_eq!(g.pending(), 1);
        c.write_all(b"PROXY TCP4 203.0.113.9 10.0.0.1 40000").unwrap();
        c.flush().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let mut events = Events::with_capacity(8);
        let mut got = None;
        let mut sent_rest = false;
        for _ in 0..100 {
            poll.poll(&mut events, Some(Duration::from_millis(20))).unwrap();
            for ev in events.iter() {
                assert!(g.owns(ev.token()));
                if let Some(a) = g.readable(poll.registry(), ev.token()) {
                    got = Some(a);
                }
            }
            if got.is_some() {
                break;
            }
            if !sent_rest {
                sent_rest = true;
                c.write_all(b" 22\r\nSSH-2.0-client\r\n").unwrap();
            }
        }
        let (mut s, client, _) = got.expect("admitted");
        assert_eq!(client, "203.0.113.9:40000".parse().unwrap());
        assert_eq!(g.pending(), 0);
        assert_eq!(g.counts.ok, 1);
        let mut rest = [0u8; 64];
        let n = s.read(&mut rest).unwrap();
        assert_eq!(&rest[..n], b"SSH-2.0-client\r\n");
    }

    #[test]
    fn untrusted_garbage_and_silent_peers_are_closed() {
        let (poll, l, addr) = setup();
        // Untrusted: closed without reading.
        let mut g = gate("10.0.0.0/8", 5000);
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.write_all(b"PROXY UNKNOWN\r\n").unwrap();
        let (s, peer) = accept(&l);
        assert!(g.admit(poll.registry(), s, peer, Instant::now()).is_none());
        assert_eq!((g.pending(), g.counts.untrusted), (0, 1));
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut b = [0u8; 8];
        assert!(matches!(c.read(&mut b), Ok(0) | Err(_)), "closed, nothing sent");

        // Garbage (an SSH client talking directly): closed at once.
        let mut g = gate("127.0.0.1", 5000);
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let (s, peer) = accept(&l);
        assert!(g.admit(poll.registry(), s, peer, Instant::now()).is_none());
        assert_eq!((g.pending(), g.counts.invalid), (0, 1));

        // Silent: parked, then closed at the deadline.
        let _c = std::net::TcpStream::connect(addr).unwrap();
        let (s, peer) = accept(&l);
        let t0 = Instant::now();
        assert!(g.admit(poll.registry(), s, peer, t0).is_none());
        assert_eq!(g.pending(), 1);
        assert_eq!(g.next_deadline(), Some(t0 + Duration::from_secs(5)));
        g.expire(poll.registry(), t0 + Duration::from_secs(4));
        assert_eq!(g.pending(), 1);
        g.expire(poll.registry(), t0 + Duration::from_secs(5));
        assert_eq!((g.pending(), g.counts.timeout), (0, 1));
    }

    #[test]
    fn local_command_uses_the_socket_peer() {
        let (poll, l, addr) = setup();
        let mut g = gate("127.0.0.1/32", 5000);
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        let mut h = proxy_protocol::V2_SIGNATURE.to_vec();
        h.extend_from_slice(&[0x20, 0x00, 0x00, 0x00]);
        c.write_all(&h).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let (s, peer) = accept(&l);
        let (_, client, _) = g.admit(poll.registry(), s, peer, Instant::now()).expect("admitted");
        assert_eq!(client, c.local_addr().unwrap());
    }
}
