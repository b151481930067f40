//! The acceptor: its own `mio::Poll` with every listener, the signal pipes and a waker for
//! worker reports. It accepts until WouldBlock and hands each socket to the least-loaded worker;
//! at `--max-connections` it deregisters the listeners (the kernel backlog absorbs the burst)
//! until connections close. It also runs signals, config reload and statistics rounds.

use super::signals::{Sig, Signals};
use super::worker::{Control, Report};
use crate::cli::Args;
use crate::config::Config;
use crate::metrics::Metrics;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Token of the acceptor's waker (worker reports).
pub const WAKER_TOKEN: Token = Token(usize::MAX - 1);
/// First signal-pipe token; listeners use 0..n.
pub const SIGNAL_TOKEN_BASE: usize = 1 << 20;
/// How often to look again while paused (at the connection bound, or out of file descriptors).
const PAUSE_RECHECK: Duration = Duration::from_millis(50);

/// The acceptor's side of one worker.
pub struct WorkerHandle {
    pub tx: Sender<Control>,
    pub waker: Arc<Waker>,
    /// Connections handed to this worker and not yet closed (incremented here, decremented by
    /// the worker).
    pub load: Arc<AtomicUsize>,
    pub thread: Option<JoinHandle<()>>,
}

/// Workers in the order to try: least loaded first; ties in rotating order from `start`, so a
/// burst spreads over equally idle workers.
pub fn worker_order(loads: &[usize], start: usize) -> Vec<usize> {
    let n = loads.len();
    let mut order: Vec<usize> = (0..n).map(|i| (start + i) % n).collect();
    // Stable: among equal loads the rotation order stays.
    order.sort_by_key(|&i| loads.get(i).copied().unwrap_or(usize::MAX));
    order
}

/// The least-loaded worker (see [`worker_order`]).
pub fn pick_worker(loads: &[usize], start: usize) -> Option<usize> {
    worker_order(loads, start).first().copied()
}

pub struct Acceptor {
    pub poll: Poll,
    pub listeners: Vec<TcpListener>,
    pub workers: Vec<WorkerHandle>,
    pub reports: Receiver<Report>,
    pub signals: Signals,
    pub args: Args,
    pub max_connections: usize,
    pub stats_interval: Option<Duration>,
    pub drain_timeout: Duration,
    /// PROXY header gate, readiness and metrics publication, drain delay (issue 6).
    pub fleet: super::fleet::Fleet,
    /// `--max-per-source`, when set.
    pub source_limits: Option<std::sync::Arc<super::source_limit::SourceLimits>>,
    /// systemd's `$NOTIFY_SOCKET`, when run as a Type=notify service.
    pub notify: Option<super::systemd::Notifier>,
    /// `--per-source-penalties`, when on.
    pub penalties: Option<super::penalty::PenaltyTable>,
    /// `--max-startups`, `--per-source-max-startups` and KEX-queue-aware shedding.
    pub startups: super::startups::Startups,
    pub drop_rng: super::startups::DropRng,
    /// The session proxy's routes in use (new connections get them with the config), and the
    /// health-check thread that watches their upstreams.
    pub routes: Option<std::sync::Arc<crate::proxy::Routes>>,
    pub health_checks: Option<super::health_check::HealthChecks>,
    /// Returns freed heap to the OS at `--heap-trim-interval`; stops when dropped.
    pub heap_trim: Option<super::heap_trim::HeapTrim>,
}

/// How often systemd's STATUS= line is refreshed (only when the counts changed).
const NOTIFY_STATUS_INTERVAL: Duration = Duration::from_secs(5);

struct State {
    listening: bool,
    resume_at: Option<Instant>,
    rr: usize,
    draining: bool,
    latest: Vec<Option<Metrics>>,
    exited: Vec<bool>,
    awaiting_line: usize,
    awaiting_full: usize,
    next_stats: Option<Instant>,
    /// Next STATUS= refresh for systemd and the count last reported.
    next_notify: Option<Instant>,
    notified_open: usize,
}

impl State {
    /// Listening, not draining, no snapshots yet, for `n` workers.
    fn new(n: usize, next_stats: Option<Instant>) -> Self {
        State {
            listening: true,
            resume_at: None,
            rr: 0,
            draining: false,
            latest: (0..n).map(|_| None).collect(),
            exited: vec![false; n],
            awaiting_line: 0,
            awaiting_full: 0,
            next_stats,
            next_notify: None,
            notified_open: 0,
        }
    }
}

impl Acceptor {
    /// Runs until shutdown completes. Returns after all workers have exited.
    pub fn run(mut self) -> io::Result<()> {
        let n = self.workers.len();
        let mut st = State::new(n, self.stats_interval.map(|i| Instant::now() + i));
        if let Some(notify) = &self.notify {
            notify.ready(&self.status_line(false));
            st.next_notify = Some(Instant::now() + NOTIFY_STATUS_INTERVAL);
        }
        let mut events = Events::with_capacity(256);
        loop {
            let timeout = self.timeout(&st);
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let now = Instant::now();
            let mut accept = false;
            let mut signalled = false;
            for ev in events.iter() {
                if ev.token().0 < self.listeners.len() {
                    accept = true;
                } else if self.signals.owns(ev.token()) {
                    signalled = true;
                } else if self.fleet.owns(ev.token()) {
                    if let Some((s, peer, at)) =
                        self.fleet.readable(self.poll.registry(), ev.token())
                    {
                        self.dispatch(&mut st, s, peer, at);
                    }
                }
            }
            if signalled {
                for sig in self.signals.drain() {
                    self.on_signal(sig, &mut st, now);
                }
            }
            if self.fleet.drain_due(now) {
                self.start_drain(&mut st, now);
            }
            if self.drain_reports(&mut st) {
                self.fleet.publish(&st.latest);
            }
            if self.fleet.tick(self.poll.registry(), now) && !st.draining {
                self.request_stats(false);
            }

            if st.draining {
                if st.exited.iter().all(|&e| e)
                    || self
                        .workers
                        .iter()
                        .all(|w| w.thread.as_ref().is_none_or(|t| t.is_finished()))
                {
                    break;
                }
                continue;
            }
            if !st.listening
                && st.resume_at.is_none_or(|t| now >= t)
                && self.open() < self.max_connections
            {
                self.set_listening(&mut st, true);
                accept = true;
            }
            if accept && st.listening {
                self.accept_all(&mut st, now);
            }
            self.refresh_notify_status(&mut st, now);
            if let (Some(t), Some(i)) = (st.next_stats, self.stats_interval) {
                if now >= t {
                    st.next_stats = Some(now + i);
                    st.awaiting_line = self.request_stats(false);
                }
            }
        }
        for w in &mut self.workers {
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
        self.drain_reports(&mut st);
        log::info!("{}", Metrics::merged(&st.latest).full_summary().trim_end());
        log::info!(event = "shutdown"; "shutdown complete");
        Ok(())
    }

    fn timeout(&self, st: &State) -> Option<Duration> {
        let now = Instant::now();
        let mut t: Option<Duration> = None;
        let mut at_most = |d: Duration| t = Some(t.map_or(d, |x| x.min(d)));
        if st.draining || !st.listening {
            at_most(PAUSE_RECHECK);
        }
        if let Some(n) = st.next_stats {
            at_most(n.saturating_duration_since(now));
        }
        if let Some(n) = st.next_notify {
            at_most(n.saturating_duration_since(now));
        }
        if let Some(n) = self.fleet.next_deadline() {
            at_most(n.saturating_duration_since(now));
        }
        t
    }

    /// systemd's STATUS= text: connection counts.
    fn status_line(&self, draining: bool) -> String {
        let open = self.open();
        let state = if draining { "draining" } else { "accepting" };
        format!("{open} connections open, {} workers, {state}", self.workers.len())
    }

    /// Refreshes STATUS= when due and the count changed.
    fn refresh_notify_status(&self, st: &mut State, now: Instant) {
        let (Some(notify), Some(at)) = (&self.notify, st.next_notify) else {
            return;
        };
        if now < at {
            return;
        }
        st.next_notify = Some(now + NOTIFY_STATUS_INTERVAL);
        let open = self.open();
        if open != st.notified_open {
            st.notified_open = open;
            notify.status(&self.status_line(st.draining));
        }
    }

    fn open(&self) -> usize {
        self.workers.iter().map(|w| w.load.load(Ordering::Acquire)).sum()
    }

    fn accept_all(&mut self, st: &mut State, now: Instant) {
        for i in 0..self.listeners.len() {
            loop {
                if self.open() >= self.max_connections {
                    log::warn!("at --max-connections {}: pausing accept", self.max_connections);
                    self.set_listening(st, false);
                    return;
                }
                let Some(listener) = self.listeners.get(i) else {
                    break;
                };
                match listener.accept() {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        // With --proxy-protocol the client address comes from the header.
                        if let Some((s, peer, at)) =
                            self.fleet.admit(self.poll.registry(), stream, peer, now)
                        {
                            self.dispatch(st, s, peer, at);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                        ) => {}
                    Err(e) => {
                        // EMFILE/ENFILE/ENOBUFS: back off instead of spinning on the error.
                        log::warn!("accept: {e}; pausing accept briefly");
                        self.set_listening(st, false);
                        st.resume_at = Some(now + PAUSE_RECHECK * 2);
                        return;
                    }
                }
            }
        }
    }

    fn dispatch(
        &mut self,
        st: &mut State,
        stream: mio::net::TcpStream,
        peer: std::net::SocketAddr,
        now: Instant,
    ) {
        // A penalised source is refused before any SSH byte: dropping the socket closes it.
        if let Some(table) = &mut self.penalties {
            if let Err(reason) = table.check(peer.ip(), now) {
                if super::log::peer_line_allowed(now) {
                    log::info!("{peer}: refused at accept ({reason})");
                }
                return;
            }
        }
        let startup = match self.startups.admit(peer.ip(), self.drop_rng.percent()) {
            Ok(g) => Some(g),
            Err(why) => {
                if super::log::peer_line_allowed(now) {
                    log::info!(
                        "{peer}: dropped at accept ({why}; {} unauthenticated)",
                        self.startups.current()
                    );
                }
                return;
            }
        };
        let source = match &self.source_limits {
            None => None,
            Some(limits) => match limits.acquire(peer.ip()) {
                Some(g) => Some(g),
                None => {
                    // Dropping the socket closes it before any SSH byte, as sshd's
                    // PerSourceMaxStartups does.
                    if super::log::peer_line_allowed(now) {
                        log::warn!(event = "refused_per_source", peer:% = peer;
                            "{peer}: --max-per-source {} reached, closing", limits.max());
                    }
                    self.penalise(peer.ip(), crate::server::PenaltyKind::RefuseConnection, now);
                    return;
                }
            },
        };
        let loads: Vec<usize> =
            self.workers.iter().map(|w| w.load.load(Ordering::Acquire)).collect();
        st.rr = st.rr.wrapping_add(1);
        let mut msg = Control::NewConn { stream, peer, accepted_at: now, source, startup };
        let order = worker_order(&loads, st.rr % loads.len().max(1));
        for i in order {
            let Some(w) = self.workers.get(i) else {
                continue;
            };
            // Count first, so the worker's decrement can never run before our increment.
            w.load.fetch_add(1, Ordering::AcqRel);
            match w.tx.try_send(msg) {
                Ok(()) => {
                    let _ = w.waker.wake();
                    return;
                }
                Err(TrySendError::Full(m)) | Err(TrySendError::Disconnected(m)) => {
                    w.load.fetch_sub(1, Ordering::AcqRel);
                    msg = m;
                }
            }
        }
        log::warn!(event = "refused_busy", peer:% = peer;
            "all workers busy: dropping connection from {peer}");
    }

    /// Records a penalty for `ip`'s source; logs (rate-limited) when it becomes active.
    fn penalise(&mut self, ip: std::net::IpAddr, kind: crate::server::PenaltyKind, now: Instant) {
        let Some(table) = &mut self.penalties else { return };
        if let super::penalty::Penalised::Activated { block, remaining } =
            table.penalise(ip, kind, now)
        {
            if super::log::peer_line_allowed(now) {
                log::info!(
                    "{block}: refusing connections for {:.0}s ({})",
                    remaining.as_secs_f64(),
                    kind.reason()
                );
            }
        }
    }

    fn set_listening(&mut self, st: &mut State, on: bool) {
        if st.listening == on {
            return;
        }
        for (i, l) in self.listeners.iter_mut().enumerate() {
            let r = if on {
                self.poll.registry().register(l, Token(i), Interest::READABLE)
            } else {
                self.poll.registry().deregister(l)
            };
            if let Err(e) = r {
                log::warn!("listener {i}: {e}");
            }
        }
        st.listening = on;
        self.fleet.listening_changed(on);
        if on {
            st.resume_at = None;
            log::info!("accepting again");
        }
    }

    fn on_signal(&mut self, sig: Sig, st: &mut State, now: Instant) {
        match sig {
            Sig::Term | Sig::Int if st.draining || self.fleet.drain_pending() => {
                log::warn!("second {sig:?} signal: exiting now");
                std::process::exit(1);
            }
            Sig::Term | Sig::Int => {
                if let Some(n) = &self.notify {
                    n.stopping(&self.status_line(true));
                }
                if self.fleet.begin_drain(now) {
                    log::info!("{sig:?}: /readyz now 503; still accepting for --drain-delay");
                } else {
                    log::info!("{sig:?}: draining");
                    self.start_drain(st, now);
                }
            }
            Sig::Hup => self.reload(),
            Sig::Usr1 => st.awaiting_full = self.request_stats(true),
        }
    }

    /// SIGHUP: a new config for new connections, bracketed by RELOADING=1 / READY=1.
    fn reload(&mut self) {
        if let Some(n) = &self.notify {
            n.reloading();
        }
        // With the original command line the config file is read again; tests that build
        // Args in code have none.
        let current = self.routes.clone();
        let result = if self.args.argv.is_empty() {
            Config::reload(&self.args, current)
                .map(|(config, routes_error)| crate::config::file::Reloaded {
                    args: self.args.clone(),
                    config,
                    routes_error,
                })
                .map_err(|e| vec![e.to_string()])
        } else {
            crate::config::file::reload(&self.args.argv, current)
        };
        match result {
            Ok(crate::config::file::Reloaded { args, config: cfg, routes_error }) => {
                self.args = args;
                if let Some(e) = &routes_error {
                    crate::metrics::proxy::count_routes_reload_failure();
                    log::error!(event = "routes_reload_failed", reason = e.as_str();
                        "SIGHUP: routes not reloaded, keeping the routes in use: {e}");
                }
                let routes = cfg.server.gateway.routes.clone();
                let changed = match (&routes, &self.routes) {
                    (Some(a), Some(b)) => !std::sync::Arc::ptr_eq(a, b),
                    (None, None) => false,
                    _ => true,
                };
                if changed {
                    let n = routes.as_ref().map_or(0, |r| r.routes.len());
                    log::info!(event = "routes_reloaded"; "SIGHUP: {n} routes for new sessions");
                    if let Some(h) = &self.health_checks {
                        h.set_routes(routes.clone());
                    }
                    self.routes = routes;
                }
                let n = cfg.server.transport.host_keys.len();
                for w in &self.workers {
                    if w.tx.try_send(Control::NewConfig(cfg.server.clone())).is_err() {
                        log::warn!("a worker's queue is full; it keeps the old configuration");
                    }
                    let _ = w.waker.wake();
                }
                log::info!(event = "config_reloaded";
                    "SIGHUP: configuration reloaded ({n} host keys) for new connections");
            }
            Err(errors) => {
                for e in &errors {
                    log::error!(event = "config_error", reason = e.as_str(); "SIGHUP: {e}");
                }
                self.fleet.count_reload_failure();
                log::error!(
                    event = "config_reload_failed";
                    "SIGHUP: reload failed ({} errors), keeping the old configuration",
                    errors.len()
                );
            }
        }
        if let Some(n) = &self.notify {
            n.ready(&self.status_line(false));
        }
    }

    /// Stops accepting and tells the workers to drain (SIGTERM, after any --drain-delay).
    fn start_drain(&mut self, st: &mut State, now: Instant) {
        log::info!(
            event = "draining";
            "stop accepting, closing unauthenticated connections, draining the rest for up to {:?}",
            self.drain_timeout
        );
        self.fleet.stop(self.poll.registry());
        self.set_listening(st, false);
        self.listeners.clear(); // close the sockets: new clients get refused, not queued
        st.draining = true;
        let deadline = now + self.drain_timeout;
        for w in &self.workers {
            if w.tx.try_send(Control::Drain { deadline }).is_err() {
                log::warn!("a worker's queue is full; it will stop when its channel closes");
            }
            let _ = w.waker.wake();
        }
    }

    /// Asks every worker for a snapshot; returns how many were asked.
    fn request_stats(&self, full: bool) -> usize {
        let mut asked = 0;
        for w in &self.workers {
            if w.tx.try_send(Control::Stats { full }).is_ok() {
                let _ = w.waker.wake();
                asked += 1;
            }
        }
        asked
    }

    /// Takes every queued report; true if there was any.
    fn drain_reports(&mut self, st: &mut State) -> bool {
        let mut any = false;
        while let Ok(r) = self.reports.try_recv() {
            if let Report::Penalty { ip, kind } = r {
                self.penalise(ip, kind, Instant::now());
                continue;
            }
            any = true;
            match r {
                Report::Penalty { .. } => {}
                Report::Stats { worker, metrics, full } => {
                    if let Some(slot) = st.latest.get_mut(worker) {
                        *slot = Some(*metrics);
                    }
                    let waiting = if full { &mut st.awaiting_full } else { &mut st.awaiting_line };
                    if *waiting > 0 {
                        *waiting -= 1;
                        if *waiting == 0 {
                            let m = Metrics::merged(&st.latest);
                            if full {
                                log::info!("{}", m.full_summary().trim_end());
                            } else {
                                log::info!("{}", m.summary_line());
                            }
                        }
                    }
                }
                Report::Exited { worker, metrics } => {
                    if let Some(slot) = st.latest.get_mut(worker) {
                        *slot = Some(*metrics);
                    }
                    if let Some(e) = st.exited.get_mut(worker) {
                        *e = true;
                    }
                }
            }
        }
        any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn state(n: usize) -> State {
        State::new(n, None)
    }

    #[test]
    fn hands_sockets_to_the_least_loaded_worker_and_pauses_at_the_bound() {
        let poll = Poll::new().unwrap();
        let mut listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        poll.registry().register(&mut listener, Token(0), Interest::READABLE).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut rxs = Vec::new();
        let mut workers = Vec::new();
        for preload in [3usize, 1] {
            let wpoll = Poll::new().unwrap();
            let (tx, rx) = crossbeam_channel::bounded(8);
            workers.push(WorkerHandle {
                tx,
                waker: Arc::new(Waker::new(wpoll.registry(), Token(0)).unwrap()),
                load: Arc::new(AtomicUsize::new(preload)),
                thread: None,
            });
            rxs.push((rx, wpoll));
        }
        let (_reports_tx, reports) = crossbeam_channel::bounded(1);
        let signals = Signals::register(poll.registry(), SIGNAL_TOKEN_BASE).unwrap();
        let mut acc = Acceptor {
            poll,
            listeners: vec![listener],
            workers,
            reports,
            signals,
            args: Args::try_parse_from(["sshfront"]).unwrap(),
            max_connections: 7,
            stats_interval: None,
            drain_timeout: Duration::from_secs(1),
            fleet: crate::runtime::fleet::Fleet::disabled(),
            source_limits: None,
            notify: None,
            penalties: None,
            startups: super::super::startups::Startups::new(
                super::super::startups::MaxStartups::parse("10000").unwrap(),
                0,
                super::super::crypto_pool::JobBudget::new(64),
            ),
            drop_rng: super::super::startups::DropRng::new(),
            routes: None,
            health_checks: None,
            heap_trim: None,
        };
        let mut st = state(2);
        // Four clients; room for three more connections (4 open of 7).
        let clients: Vec<_> = (0..4).map(|_| std::net::TcpStream::connect(addr).unwrap()).collect();
        std::thread::sleep(Duration::from_millis(50));
        acc.accept_all(&mut st, Instant::now());
        let loads: Vec<usize> =
            acc.workers.iter().map(|w| w.load.load(Ordering::Acquire)).collect();
        // Worker 1 (load 1) gets the first two, then ties at 3 rotate.
        assert_eq!(loads.iter().sum::<usize>(), 7);
        assert_eq!(rxs[1].0.len(), 2 + usize::from(loads[1] == 4));
        assert_eq!(rxs[0].0.len() + rxs[1].0.len(), 3, "one client waits in the backlog");
        assert!(!st.listening, "at --max-connections the listener is deregistered");
        // A connection closes: accepting resumes and takes the waiting client.
        acc.workers[0].load.fetch_sub(1, Ordering::AcqRel);
        acc.set_listening(&mut st, true);
        acc.accept_all(&mut st, Instant::now());
        assert_eq!(rxs[0].0.len() + rxs[1].0.len(), 4);
        for (rx, _) in &rxs {
            while let Ok(Control::NewConn { peer, .. }) = rx.try_recv() {
                assert!(clients.iter().any(|c| c.local_addr().unwrap() == peer));
            }
        }
    }

    #[test]
    fn least_loaded_worker_wins() {
        assert_eq!(pick_worker(&[5, 2, 9, 3], 0), Some(1));
        assert_eq!(pick_worker(&[5, 2, 9, 3], 3), Some(1));
        assert_eq!(pick_worker(&[], 0), None);
        assert_eq!(worker_order(&[5, 2, 9, 3], 0), [1, 3, 0, 2]);
    }

    #[test]
    fn ties_rotate_from_start() {
        assert_eq!(pick_worker(&[1, 1, 1], 0), Some(0));
        assert_eq!(pick_worker(&[1, 1, 1], 1), Some(1));
        assert_eq!(pick_worker(&[1, 1, 1], 2), Some(2));
        assert_eq!(pick_worker(&[0, 1, 0], 2), Some(2));
        assert_eq!(pick_worker(&[0, 1, 0], 1), Some(2));
    }
}
