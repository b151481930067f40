//! Upstream health checks for the session proxy: one thread with its own `mio::Poll` that, at
//! each route's `health_interval`, connects to every upstream and waits for its SSH version line
//! (`SSH-2.0-…`), bounded by the route's `connect_timeout`. Verdicts go through the sans-IO
//! [`Health`] state (fall/rise) and are published into the routes' [`Upstream`]s (atomics read
//! by `Route::pick_healthy` on the workers) and the per-route gauges.
//!
//! Bounded work: at most [`MAX_IN_FLIGHT`] checks at once (the rest wait their turn), each
//! reads at most [`MAX_PREFIX`] bytes. A host name is looked up here (blocking `getaddrinfo`),
//! which only ever delays other checks, never a worker. On SIGHUP the acceptor hands over the
//! new routes; checks of the old ones are dropped, and an upstream still listed keeps its
//! verdict.

use crate::proxy::health::Health;
use crate::proxy::{Route, Routes, Upstream};
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use std::collections::{HashMap, VecDeque};
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Checks running at once.
pub const MAX_IN_FLIGHT: usize = 64;
/// Bytes read looking for the version line (RFC 4253 §4.2 allows lines before it; a server
/// that says more than this without one is not healthy).
pub const MAX_PREFIX: usize = 1024;
/// Longest a single check may take, whatever the route's connect timeout.
pub const MAX_CHECK_TIME: Duration = Duration::from_secs(10);

const WAKER: Token = Token(usize::MAX);
/// Route changes queued for the thread (it takes the latest).
const CONTROL_QUEUE: usize = 8;

enum Control {
    Routes(Option<Arc<Routes>>),
    Stop,
}

/// The acceptor's handle on the health-check thread.
pub struct HealthChecks {
    tx: Sender<Control>,
    waker: Arc<Waker>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HealthChecks {
    /// Starts the thread, checking `routes` at once.
    pub fn start(routes: Option<Arc<Routes>>) -> io::Result<HealthChecks> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (tx, rx) = bounded(CONTROL_QUEUE);
        let thread = std::thread::Builder::new()
            .name("sshfront-health".into())
            .spawn(move || Checker::new(poll, rx).run(routes))?;
        Ok(HealthChecks { tx, waker, thread: Some(thread) })
    }

    /// New routes (SIGHUP): their upstreams are checked from now on.
    pub fn set_routes(&self, routes: Option<Arc<Routes>>) {
        match self.tx.try_send(Control::Routes(routes)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                log::warn!("health checks: route changes queued up; this one waits for the next")
            }
            Err(TrySendError::Disconnected(_)) => log::error!("health-check thread is gone"),
        }
        let _ = self.waker.wake();
    }
}

impl Drop for HealthChecks {
    fn drop(&mut self) {
        let _ = self.tx.try_send(Control::Stop);
        let _ = self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One check in flight.
struct Check {
    route: usize,
    upstream: usize,
    stream: TcpStream,
    deadline: Instant,
    got: Vec<u8>,
}

/// What a check saw.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Up,
    Down(String),
}

struct Checker {
    poll: Poll,
    rx: Receiver<Control>,
    routes: Option<Arc<Routes>>,
    health: Vec<Health>,
    /// Due checks waiting for a slot: (route, upstream).
    waiting: VecDeque<(usize, usize)>,
    checks: Slab<Check>,
}

impl Checker {
    fn new(poll: Poll, rx: Receiver<Control>) -> Self {
        Checker {
            poll,
            rx,
            routes: None,
            health: Vec::new(),
            waiting: VecDeque::new(),
            checks: Slab::new(),
        }
    }

    fn run(mut self, routes: Option<Arc<Routes>>) {
        self.swap(routes, Instant::now());
        let mut events = Events::with_capacity(MAX_IN_FLIGHT);
        loop {
            let now = Instant::now();
            let mut latest = None;
            loop {
                match self.rx.try_recv() {
                    Ok(Control::Routes(r)) => latest = Some(r),
                    Ok(Control::Stop) => return,
                    Err(crossbeam_channel::TryRecvError::Empty) => break,
                    Err(crossbeam_channel::TryRecvError::Disconnected) => return,
                }
            }
            if let Some(r) = latest {
                self.swap(r, now);
            }
            self.start_due(now);
            self.expire(now);
            let timeout = self.next_wake(now);
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    log::error!("health checks: poll failed: {e}");
                    return;
                }
            }
            let now = Instant::now();
            for ev in events.iter() {
                if ev.token() != WAKER {
                    self.progress(ev.token().0, now);
                }
            }
        }
    }

    /// New routes: fresh state, with verdicts carried over for upstreams still listed.
    fn swap(&mut self, routes: Option<Arc<Routes>>, now: Instant) {
        for mut c in self.checks.drain() {
            let _ = self.poll.registry().deregister(&mut c.stream);
        }
        self.waiting.clear();
        let mut known: HashMap<(String, u16), bool> = HashMap::new();
        for r in self.routes.iter().flat_map(|r| r.routes.iter()) {
            for u in &r.upstreams {
                known.insert((u.host.clone(), u.port), u.is_healthy());
            }
        }
        self.health = routes
            .iter()
            .flat_map(|r| r.routes.iter())
            .map(|r| {
                let mut h = Health::new(r.health, r.upstreams.len(), now);
                for (i, u) in r.upstreams.iter().enumerate() {
                    if let Some(&up) = known.get(&(u.host.clone(), u.port)) {
                        h.seed(i, up);
                        u.set_healthy(up);
                    }
                }
                h
            })
            .collect();
        self.routes = routes;
        self.publish();
    }

    fn route(&self, i: usize) -> Option<&Arc<Route>> {
        self.routes.as_ref().and_then(|r| r.routes.get(i))
    }

    fn start_due(&mut self, now: Instant) {
        for (ri, h) in self.health.iter_mut().enumerate() {
            for ui in h.due(now) {
                self.waiting.push_back((ri, ui));
            }
        }
        while self.checks.len() < MAX_IN_FLIGHT {
            let Some((ri, ui)) = self.waiting.pop_front() else { break };
            let Some(route) = self.route(ri).cloned() else { continue };
            let Some(up) = route.upstreams.get(ui) else { continue };
            let timeout = route.connect_timeout.min(MAX_CHECK_TIME);
            match self.connect(up) {
                Ok(stream) => {
                    let entry = self.checks.vacant_entry();
                    let key = entry.key();
                    let mut check = Check {
                        route: ri,
                        upstream: ui,
                        stream,
                        deadline: now + timeout,
                        got: Vec::new(),
                    };
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    match self.poll.registry().register(&mut check.stream, Token(key), interest) {
                        Ok(()) => {
                            entry.insert(check);
                        }
                        Err(e) => self.report(ri, ui, Outcome::Down(e.to_string()), now),
                    }
                }
                Err(e) => self.report(ri, ui, Outcome::Down(e), now),
            }
        }
    }

    /// Connects to the upstream; a host name's addresses are looked up here and handed to the
    /// workers through the upstream's cache (so their sessions need no lookup of their own).
    fn connect(&self, up: &Upstream) -> Result<TcpStream, String> {
        let addr = match up.host.parse::<IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, up.port),
            Err(_) => {
                let addrs: Vec<SocketAddr> = (up.host.as_str(), up.port)
                    .to_socket_addrs()
                    .map_err(|e| format!("name lookup: {e}"))?
                    .take(crate::proxy::route::MAX_RESOLVED)
                    .collect();
                up.store_addrs(&addrs, Instant::now());
                // IPv4 first: what a loopback or dual-stack service most often listens on.
                addrs
                    .iter()
                    .find(|a| a.is_ipv4())
                    .or(addrs.first())
                    .copied()
                    .ok_or_else(|| "name lookup: no address".to_string())?
            }
        };
        TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))
    }

    fn expire(&mut self, now: Instant) {
        let late: Vec<usize> =
            self.checks.iter().filter(|(_, c)| c.deadline <= now).map(|(k, _)| k).collect();
        for k in late {
            self.finish(k, Outcome::Down("timed out".into()), now);
        }
    }

    fn next_wake(&self, now: Instant) -> Duration {
        let checks = self.checks.iter().map(|(_, c)| c.deadline);
        let due = self.health.iter().filter_map(Health::next_deadline);
        let next = checks.chain(due).min();
        let wait = next.map_or(Duration::from_secs(3600), |t| t.saturating_duration_since(now));
        // Waiting checks start as slots free up, which is always after an event.
        wait.max(Duration::from_millis(1))
    }

    /// Reads what the upstream sent: a version line settles it, EOF or junk fails it.
    fn progress(&mut self, key: usize, now: Instant) {
        let Some(c) = self.checks.get_mut(key) else { return };
        let mut buf = [0u8; 256];
        let outcome = loop {
            let room = MAX_PREFIX.saturating_sub(c.got.len()).min(buf.len());
            if room == 0 {
                break Some(Outcome::Down("no SSH version line".into()));
            }
            match c.stream.read(&mut buf[..room]) {
                Ok(0) => break Some(Outcome::Down("closed before the SSH version line".into())),
                Ok(n) => {
                    c.got.extend_from_slice(&buf[..n]);
                    if let Some(o) = version_outcome(&c.got) {
                        break Some(o);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Some(Outcome::Down(e.to_string())),
            }
        };
        if let Some(o) = outcome {
            self.finish(key, o, now);
        }
    }

    fn finish(&mut self, key: usize, outcome: Outcome, now: Instant) {
        if !self.checks.contains(key) {
            return;
        }
        let mut c = self.checks.remove(key);
        let _ = self.poll.registry().deregister(&mut c.stream);
        self.report(c.route, c.upstream, outcome, now);
    }

    fn report(&mut self, ri: usize, ui: usize, outcome: Outcome, now: Instant) {
        let ok = outcome == Outcome::Up;
        crate::metrics::proxy::count_health_check(ok);
        let Some(h) = self.health.get_mut(ri) else { return };
        let changed = h.report(ui, ok, now);
        let Some(route) = self.route(ri) else { return };
        let Some(up) = route.upstreams.get(ui) else { return };
        if let Outcome::Down(why) = &outcome {
            log::debug!("health check of {up} (route {}): {why}", route.name);
        }
        match (changed, &outcome) {
            (Some(false), Outcome::Down(why)) => {
                up.set_healthy(false);
                log::warn!(event = "upstream_down", route = route.name.as_str();
                    "upstream {up} of route {} is down: {why}", route.name);
            }
            (Some(true), _) => {
                up.set_healthy(true);
                log::info!(event = "upstream_up", route = route.name.as_str();
                    "upstream {up} of route {} is up again", route.name);
            }
            _ => return,
        }
        self.publish();
    }

    fn publish(&self) {
        let list: Vec<(&str, u64, u64)> = self
            .routes
            .iter()
            .flat_map(|r| r.routes.iter())
            .map(|r| {
                let up = r.upstreams.iter().filter(|u| u.is_healthy()).count() as u64;
                (r.name.as_str(), up, r.upstreams.len() as u64)
            })
            .collect();
        crate::metrics::proxy::publish_health(&list);
    }
}

/// Up once a whole line starts with `SSH-2.0-` (or `SSH-1.99-`, which speaks 2.0); down if a
/// line starts with `SSH-` otherwise; None while no whole line decides it.
fn version_outcome(got: &[u8]) -> Option<Outcome> {
    let mut rest = got;
    while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
        let line = &rest[..nl];
        if line.starts_with(b"SSH-2.0-") || line.starts_with(b"SSH-1.99-") {
            return Some(Outcome::Up);
        }
        if line.starts_with(b"SSH-") {
            let v = String::from_utf8_lossy(&line[..line.len().min(40)]).trim_end().to_string();
            return Some(Outcome::Down(format!("not SSH 2.0: {v:?}")));
        }
        rest = &rest[nl + 1..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::health::HealthConfig;
    use crate::proxy::{Balance, UpstreamAuth};
    use std::io::Write;
    use std::net::TcpListener;

    #[test]
    fn version_lines() {
        assert_eq!(version_outcome(b"SSH-2.0-OpenSSH_9.6\r\n"), Some(Outcome::Up));
        assert_eq!(version_outcome(b"hello\r\nSSH-1.99-x\r\n"), Some(Outcome::Up));
        assert_eq!(version_outcome(b"SSH-2.0-OpenSSH"), None, "line not complete yet");
        assert!(matches!(version_outcome(b"SSH-1.5-old\n"), Some(Outcome::Down(_))));
        assert_eq!(version_outcome(b"HTTP/1.1 400 Bad Request\r\n"), None);
    }

    /// A loopback server answering each connection with `reply` (then holding it open), for
    /// at most `max` connections.
    fn server(reply: &'static [u8], max: usize) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for s in l.incoming().take(max) {
                let Ok(mut s) = s else { break };
                let _ = s.write_all(reply);
                held.push(s);
            }
        });
        addr
    }

    fn route(ups: &[SocketAddr]) -> Routes {
        let ups = ups.iter().map(|a| Upstream::new(a.ip().to_string(), a.port())).collect();
        let mut r = Route::new(
            "health-test".into(),
            "t:1".into(),
            "*".into(),
            None,
            vec![],
            ups,
            Balance::RoundRobin,
            UpstreamAuth::Agent,
        );
        r.health = HealthConfig { interval: Duration::from_millis(50), fall: 2, rise: 1 };
        r.connect_timeout = Duration::from_millis(500);
        Routes { split: None, routes: vec![Arc::new(r)] }
    }

    fn wait_until(what: &str, f: impl Fn() -> bool) {
        for _ in 0..400 {
            if f() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("not reached within 10 s: {what}");
    }

    #[test]
    fn unhealthy_upstreams_are_marked_and_skipped() {
        let good = server(b"SSH-2.0-test\r\n", 1000);
        let http = server(b"HTTP/1.1 400 Bad Request\r\n\r\n", 1000);
        let silent = server(b"", 1000);
        let refused = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap() // closed when `l` drops: connections are refused
        };
        let routes = Arc::new(route(&[good, http, silent, refused]));
        let r = routes.routes[0].clone();
        let checks = HealthChecks::start(Some(routes.clone())).unwrap();
        wait_until("three upstreams down", || {
            r.upstreams.iter().filter(|u| !u.is_healthy()).count() == 3
        });
        assert!(r.upstreams[0].is_healthy());
        for _ in 0..8 {
            assert_eq!(r.pick_healthy("u").unwrap().index, 0);
        }
        let mut o = String::new();
        crate::metrics::proxy::render(&mut o);
        assert!(o.contains("sshfront_proxy_upstreams_healthy{route=\"health-test\"} 1"), "{o}");

        // A reload: the still-listed good upstream keeps its verdict, the dead ones are not
        // listed any more; a new good one starts healthy and stays so.
        let good2 = server(b"SSH-2.0-two\r\n", 1000);
        let next = Arc::new(route(&[good, good2]));
        checks.set_routes(Some(next.clone()));
        let n = next.routes[0].clone();
        wait_until("new routes checked", || {
            let mut o = String::new();
            crate::metrics::proxy::render(&mut o);
            o.contains("sshfront_proxy_upstreams{route=\"health-test\"} 2")
        });
        std::thread::sleep(Duration::from_millis(300));
        assert!(n.upstreams.iter().all(|u| u.is_healthy()));
        drop(checks);
    }
}
