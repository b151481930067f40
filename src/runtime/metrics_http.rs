//! `--metrics-listen`: `/metrics` (Prometheus text), `/healthz` and `/readyz` over a minimal
//! HTTP/1.1, on a thread of its own with its own `mio::Poll`.
//!
//! It never touches a worker: the acceptor publishes the merged worker snapshots it already
//! collects (about once a second) into [`Health`], readiness is an atomic the acceptor flips,
//! and the crypto queue depth is the pool's own atomic. Rendering happens here, off the
//! acceptor. Every request is bounded (request line ≤ 1 KiB, headers ≤ 8 KiB, a few seconds),
//! at most [`MAX_CLIENTS`] are served at once, and each connection closes after its response.

use super::crypto_pool::JobBudget;
use crate::metrics::prometheus::{self, Extra};
use crate::metrics::Metrics;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest request line we read.
pub const MAX_REQUEST_LINE: usize = 1024;
/// Longest header block (after the request line).
pub const MAX_HEADERS: usize = 8 * 1024;
/// Clients served at once; more wait in the kernel backlog.
pub const MAX_CLIENTS: usize = 64;
/// Time a client has to send its request and take the response.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the acceptor asks the workers for fresh snapshots for the exposition.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(1);

const LISTENER: Token = Token(usize::MAX);

/// The merged worker metrics and the PROXY header counts, as last published.
type Snapshot = (Arc<Metrics>, Vec<(&'static str, u64)>);

/// What the endpoint reports, shared with the acceptor.
pub struct Health {
    ready: AtomicBool,
    snapshot: Mutex<Snapshot>,
    crypto: JobBudget,
    /// Every job class's own queue (kex, verify, password, read), for per-class depth gauges.
    classes: Vec<(&'static str, JobBudget)>,
    started: Instant,
    /// SIGHUP reloads that failed validation (the old configuration stayed).
    reload_failures: std::sync::atomic::AtomicU64,
}

impl Health {
    pub fn new(crypto: JobBudget) -> Arc<Health> {
        Self::with_classes(crypto, Vec::new())
    }

    /// As [`Health::new`], also reporting each job class's queue.
    pub fn with_classes(crypto: JobBudget, classes: Vec<(&'static str, JobBudget)>) -> Arc<Health> {
        Arc::new(Health {
            ready: AtomicBool::new(true),
            snapshot: Mutex::new((Arc::new(Metrics::default()), Vec::new())),
            crypto,
            classes,
            started: Instant::now(),
            reload_failures: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    pub fn count_reload_failure(&self) {
        self.reload_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Replaces the published snapshot (acceptor thread; the lock is only ever shared with the
    /// metrics thread, which holds it for a pointer copy).
    pub fn publish(&self, merged: Metrics, proxy: Vec<(&'static str, u64)>) {
        if let Ok(mut g) = self.snapshot.lock() {
            *g = (Arc::new(merged), proxy);
        }
    }

    /// The exposition as of the last snapshot.
    pub fn render(&self) -> String {
        let (m, proxy) = match self.snapshot.lock() {
            Ok(g) => (g.0.clone(), g.1.clone()),
            Err(_) => (Arc::new(Metrics::default()), Vec::new()),
        };
        let extra = Extra {
            ready: self.is_ready(),
            crypto_in_flight: self.crypto.in_flight(),
            crypto_bound: self.crypto.bound(),
            crypto_classes: self
                .classes
                .iter()
                .map(|(name, b)| (*name, b.in_flight() as u64, b.bound() as u64))
                .collect(),
            proxy,
            uptime_seconds: self.started.elapsed().as_secs_f64(),
            config_reload_failures: self.reload_failures.load(Ordering::Relaxed),
            log_dropped: super::log::dropped(),
            log_suppressed: super::log::suppressed(),
            penalised_sources: super::penalty::PENALISED_SOURCES.load(Ordering::Relaxed) as u64,
            penalty_refused: super::penalty::PENALTY_REFUSED.load(Ordering::Relaxed),
            buffer_memory: {
                let (used, peak, limit) = super::buffers::global_usage();
                (used as u64, peak as u64, limit as u64)
            },
        };
        prometheus::render(&m, &extra)
    }
}

/// Binds `addr` (errors name the flag) and starts the endpoint's thread.
pub fn start(addr: SocketAddr, health: Arc<Health>) -> io::Result<SocketAddr> {
    let mut listener = TcpListener::bind(addr)
        .map_err(|e| io::Error::new(e.kind(), format!("--metrics-listen {addr}: {e}")))?;
    let local = listener.local_addr()?;
    let poll = Poll::new()?;
    poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
    std::thread::Builder::new()
        .name("sshfront-metrics".into())
        .spawn(move || serve(poll, listener, health))?;
    log::info!("metrics, /healthz and /readyz on http://{local}");
    Ok(local)
}

struct Client {
    stream: TcpStream,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    sent: usize,
    deadline: Instant,
}

fn serve(mut poll: Poll, listener: TcpListener, health: Arc<Health>) {
    let mut clients: Slab<Client> = Slab::new();
    let mut events = Events::with_capacity(64);
    loop {
        let now = Instant::now();
        let timeout = clients
            .iter()
            .map(|(_, c)| c.deadline.saturating_duration_since(now))
            .min()
            .unwrap_or(Duration::from_secs(60));
        if let Err(e) = poll.poll(&mut events, Some(timeout)) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            log::error!("metrics endpoint: poll failed: {e}; stopping it");
            return;
        }
        let now = Instant::now();
        for ev in events.iter() {
            if ev.token() != LISTENER {
                serve_one(&mut poll, &mut clients, ev.token().0, &health);
            }
        }
        let overdue: Vec<usize> =
            clients.iter().filter(|(_, c)| c.deadline <= now).map(|(k, _)| k).collect();
        for key in overdue {
            let mut c = clients.remove(key);
            let _ = poll.registry().deregister(&mut c.stream);
        }
        // Accept last, after this turn's clients freed their slots. The listener is
        // edge-triggered, so whatever waits in the backlog at the bound is taken on a later turn
        // (every finished or expired client means one), never left waiting for a new edge.
        while clients.len() < MAX_CLIENTS {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    let entry = clients.vacant_entry();
                    let key = entry.key();
                    if poll
                        .registry()
                        .register(&mut stream, Token(key), Interest::READABLE | Interest::WRITABLE)
                        .is_ok()
                    {
                        entry.insert(Client {
                            stream,
                            inbuf: Vec::with_capacity(512),
                            out: Vec::new(),
                            sent: 0,
                            deadline: now + CLIENT_TIMEOUT,
                        });
                        serve_one(&mut poll, &mut clients, key, &health);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::warn!("metrics endpoint: accept: {e}");
                    break;
                }
            }
        }
    }
}

/// Steps one client; removes it when it is finished.
fn serve_one(poll: &mut Poll, clients: &mut Slab<Client>, key: usize, health: &Health) {
    let done = match clients.get_mut(key) {
        Some(c) => step(c, health),
        None => return,
    };
    if done {
        let mut c = clients.remove(key);
        let _ = poll.registry().deregister(&mut c.stream);
    }
}

/// Reads what is there, answers once the request is complete, writes. True when finished.
fn step(c: &mut Client, health: &Health) -> bool {
    if c.out.is_empty() {
        let mut buf = [0u8; 2048];
        loop {
            match c.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(n) => {
                    let room = (MAX_REQUEST_LINE + MAX_HEADERS).saturating_sub(c.inbuf.len());
                    c.inbuf.extend_from_slice(buf.get(..n.min(room)).unwrap_or_default());
                    if n > room {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => return true,
            }
        }
        match parse_request(&c.inbuf) {
            Request::Incomplete => return false,
            req => c.out = respond(&req, health),
        }
    }
    while c.sent < c.out.len() {
        match c.stream.write(c.out.get(c.sent..).unwrap_or_default()) {
            Ok(0) => return true,
            Ok(n) => c.sent += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
    true
}

/// A request as far as this endpoint cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Not all headers yet (and within the bounds).
    Incomplete,
    /// `head`: HEAD rather than GET (same status and headers, no body).
    Get { path: String, head: bool },
    /// Another method: 405.
    OtherMethod,
    /// Malformed, or a line/header block over its bound: 400 (431 for headers too large).
    Bad(u16),
}

/// Parses the request line and waits for the end of the headers (which we do not need).
pub fn parse_request(buf: &[u8]) -> Request {
    let Some(eol) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > MAX_REQUEST_LINE { Request::Bad(414) } else { Request::Incomplete };
    };
    if eol > MAX_REQUEST_LINE {
        return Request::Bad(414);
    }
    let line = buf.get(..eol).unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Ok(line) = std::str::from_utf8(line) else {
        return Request::Bad(400);
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Request::Bad(400);
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Request::Bad(400);
    }
    // Headers end at an empty line (CRLF CRLF, or bare LFs).
    let rest = buf.get(eol + 1..).unwrap_or_default();
    let end = if rest.starts_with(b"\r\n") || rest.starts_with(b"\n") {
        Some(0)
    } else {
        rest.windows(4)
            .position(|w| w == b"\r\n\r\n")
            .or_else(|| rest.windows(2).position(|w| w == b"\n\n"))
    };
    if end.is_none() {
        return if rest.len() > MAX_HEADERS { Request::Bad(431) } else { Request::Incomplete };
    }
    if end.is_some_and(|e| e > MAX_HEADERS) {
        return Request::Bad(431);
    }
    let path = target.split('?').next().unwrap_or(target).to_string();
    match method {
        "GET" => Request::Get { path, head: false },
        "HEAD" => Request::Get { path, head: true },
        _ => Request::OtherMethod,
    }
}

/// The full response bytes for a request.
pub fn respond(req: &Request, health: &Health) -> Vec<u8> {
    let (status, ctype, body, head) = match req {
        Request::Get { path, head } => match path.as_str() {
            "/metrics" => (200, prometheus::CONTENT_TYPE, health.render(), *head),
            "/healthz" => (200, "text/plain", "ok\n".to_string(), *head),
            "/readyz" if health.is_ready() => (200, "text/plain", "ready\n".into(), *head),
            "/readyz" => (503, "text/plain", "draining\n".into(), *head),
            _ => (404, "text/plain", "not found\n".into(), *head),
        },
        Request::OtherMethod => (405, "text/plain", "method not allowed\n".into(), false),
        Request::Bad(code) => (*code, "text/plain", "bad request\n".into(), false),
        Request::Incomplete => (400, "text/plain", "bad request\n".into(), false),
    };
    response(status, ctype, &body, head)
}

fn response(status: u16, ctype: &str, body: &str, head: bool) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Bad Request",
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n",
        body.len()
    );
    if status == 405 {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
    if !head {
        out.push_str(body);
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Request {
        Request::Get { path: path.into(), head: false }
    }

    #[test]
    fn request_lines_and_headers() {
        assert_eq!(parse_request(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), get("/metrics"));
        assert_eq!(parse_request(b"GET /readyz?x=1 HTTP/1.0\r\n\r\n"), get("/readyz"));
        assert_eq!(parse_request(b"GET /healthz HTTP/1.1\n\n"), get("/healthz"));
        assert_eq!(
            parse_request(b"HEAD /healthz HTTP/1.1\r\n\r\n"),
            Request::Get { path: "/healthz".into(), head: true }
        );
        assert_eq!(parse_request(b"POST /metrics HTTP/1.1\r\n\r\n"), Request::OtherMethod);
        // Incomplete: no line end yet, or headers not finished.
        assert_eq!(parse_request(b""), Request::Incomplete);
        assert_eq!(parse_request(b"GET /metrics HTT"), Request::Incomplete);
        assert_eq!(parse_request(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"), Request::Incomplete);
    }

    #[test]
    fn malformed_and_oversize_requests() {
        for bad in [
            &b"GET\r\n\r\n"[..],
            b"GET /metrics\r\n\r\n",
            b"GET /a b HTTP/1.1\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics SSH-2.0\r\n\r\n",
            b"\xff\xfe /x HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(parse_request(bad), Request::Bad(400), "{bad:?}");
        }
        let long_line = vec![b'a'; MAX_REQUEST_LINE + 1];
        assert_eq!(parse_request(&long_line), Request::Bad(414));
        let mut long_target = b"GET /".to_vec();
        long_target.extend(vec![b'a'; MAX_REQUEST_LINE]);
        long_target.extend_from_slice(b" HTTP/1.1\r\n\r\n");
        assert_eq!(parse_request(&long_target), Request::Bad(414));
        let mut many_headers = b"GET / HTTP/1.1\r\n".to_vec();
        while many_headers.len() < MAX_HEADERS + 100 {
            many_headers.extend_from_slice(b"X-Filler: yes\r\n");
        }
        assert_eq!(parse_request(&many_headers), Request::Bad(431));
        many_headers.extend_from_slice(b"\r\n");
        assert_eq!(parse_request(&many_headers), Request::Bad(431));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x: u32 = 0x1234_5678;
        for len in 0..2000usize {
            let b: Vec<u8> = (0..len % 300)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    [b'G', b'E', b'T', b' ', b'/', b'\r', b'\n', x as u8][(x % 8) as usize]
                })
                .collect();
            let _ = parse_request(&b);
        }
    }

    #[test]
    fn responses_by_path_and_readiness() {
        let h = Health::new(JobBudget::new(4));
        let text = |r: Vec<u8>| String::from_utf8(r).unwrap();
        let r = text(respond(&get("/healthz"), &h));
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("\r\n\r\nok\n"), "{r}");
        assert!(r.contains("Connection: close\r\n") && r.contains("Content-Length: 3\r\n"));
        assert!(text(respond(&get("/readyz"), &h)).starts_with("HTTP/1.1 200 "));
        h.set_ready(false);
        let r = text(respond(&get("/readyz"), &h));
        assert!(r.starts_with("HTTP/1.1 503 ") && r.ends_with("draining\n"), "{r}");
        assert!(text(respond(&get("/healthz"), &h)).starts_with("HTTP/1.1 200 "));
        let r = text(respond(&get("/metrics"), &h));
        assert!(r.contains("Content-Type: text/plain; version=0.0.4"), "{r}");
        assert!(r.contains("\nsshfront_ready 0\n") && r.contains("sshfront_crypto_queue_limit 4"));
        let m = Metrics { accepted: 9, ..Metrics::default() };
        h.publish(m, vec![("ok", 2)]);
        let r = text(respond(&get("/metrics"), &h));
        assert!(r.contains("\nsshfront_accepted_total 9\n"), "{r}");
        assert!(r.contains("sshfront_proxy_headers_total{result=\"ok\"} 2"), "{r}");
        assert!(text(respond(&get("/nope"), &h)).starts_with("HTTP/1.1 404 "));
        assert!(text(respond(&Request::OtherMethod, &h)).contains("Allow: GET, HEAD"));
        let r = text(respond(&Request::Get { path: "/healthz".into(), head: true }, &h));
        assert!(
            r.ends_with(
                "Content-Length: 3\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
            ),
            "{r}"
        );
        assert!(text(respond(&Request::Bad(431), &h)).starts_with("HTTP/1.1 431 "));
    }

    #[test]
    fn serves_over_tcp() {
        let h = Health::new(JobBudget::new(4));
        let addr = start("127.0.0.1:0".parse().unwrap(), h.clone()).unwrap();
        let fetch = |req: &[u8]| {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            for chunk in req.chunks(7) {
                s.write_all(chunk).unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        };
        assert!(fetch(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").ends_with("ok\n"));
        h.set_ready(false);
        assert!(fetch(b"GET /readyz HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 503"));
        assert!(fetch(b"GET /metrics HTTP/1.1\r\n\r\n").contains("sshfront_up 1"));
        // Many at once, more than MAX_CLIENTS: all answered.
        let hs: Vec<_> = (0..MAX_CLIENTS + 20)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut s = std::net::TcpStream::connect(addr).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    s.write_all(b"GET /healthz HTTP/1.1\r\n\r\n").unwrap();
                    let mut out = String::new();
                    s.read_to_string(&mut out).unwrap();
                    out
                })
            })
            .collect();
        for t in hs {
            assert!(t.join().unwrap().ends_with("ok\n"));
        }

        // All slots taken by silent clients: the next requests wait in the backlog and are
        // answered as soon as the silent ones hang up (not at the next new connection).
        let idle: Vec<_> =
            (0..MAX_CLIENTS).map(|_| std::net::TcpStream::connect(addr).unwrap()).collect();
        std::thread::sleep(Duration::from_millis(100));
        let waiting: Vec<_> = (0..5)
            .map(|_| {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                s.write_all(b"GET /healthz HTTP/1.1\r\n\r\n").unwrap();
                s
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100));
        drop(idle);
        for mut s in waiting {
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            assert!(out.ends_with("ok\n"), "{out}");
        }
    }
}
