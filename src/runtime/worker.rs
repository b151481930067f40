//! A worker thread: its own `mio::Poll`, a `Slab<Conn>`, a buffer pool, a timer heap, and the
//! loop that moves bytes between sockets and `ServerConnection`s.
//!
//! One turn: poll → mark readiness (kept in user space; sockets are registered once,
//! READABLE|WRITABLE, edge-triggered) → drain control, job-result and resolver channels → fire
//! timers → service every touched connection: flush pending output, feed buffered input, read
//! until WouldBlock / buffer full / per-turn budget, relay between its channels and their
//! endpoints (backend sockets, -R listeners, child pipes: `endpoints`), `poll_transmit` into
//! one write, handle events, re-arm the timer. An endpoint's readiness only marks its
//! connection for service. A connection that used its budget goes on the ready-again list,
//! since edge triggering will not report it again. Nothing here blocks; every queue is bounded.

use super::buffers::{Buf, BufferPool, RoomPlan, CLASSES, MIN_READ_ROOM};
use super::conn::{
    decode, decode_token, generation_matches, token_for, Conn, SocketKind, WAKER_TOKEN,
    WRITE_HIGH_WATER,
};
use super::core::Core;
use super::crypto_pool::{CryptoPool, JobResult, JobTicket};
use super::endpoints::{self, Endpoints};
use super::out_queue::MAX_IOV;
use super::timers::TimerHeap;
use crate::metrics::{record, Metrics};
use crate::server::{Event, ServerConfig, ServerConnection, ServerJob, ServerJobDone};
use crate::transport::{DisconnectReason, TransportConfig};
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Waker};
use slab::Slab;
use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Bytes one connection may read per turn before others get theirs.
pub const READ_BUDGET_PER_TURN: usize = 256 * 1024;
/// Jobs a worker holds back while the crypto pool is at its bound; past it: DISCONNECT 12.
pub const JOB_WAIT_QUEUE: usize = 64;
/// Messages queued to a worker (new sockets, config, drain, stats requests).
pub const CONTROL_QUEUE: usize = 1024;
/// How long a closing connection may take to flush its last bytes.
pub const CLOSE_LINGER: Duration = Duration::from_secs(5);
/// Poll timeout while jobs wait for pool room or connections for buffer memory: those free up
/// on other threads, which do not wake us.
const RETRY_INTERVAL: Duration = Duration::from_millis(5);

/// A job waiting for pool room: connection key, generation, the job, its label, and the bytes
/// charged to the memory budget for it.
type WaitingJob = (usize, u32, ServerJob, &'static str, usize);

/// Messages from the acceptor.
pub enum Control {
    NewConn {
        stream: TcpStream,
        peer: SocketAddr,
        accepted_at: Instant,
        /// The `--max-per-source` slot, kept in the connection and released when it drops.
        source: Option<super::source_limit::SourceGuard>,
        /// The `--max-startups` slot, released when the connection authenticates or drops.
        startup: Option<super::startups::StartupGuard>,
    },
    /// Used by connections accepted from now on (SIGHUP).
    NewConfig(Arc<ServerConfig>),
    /// Stop taking connections; close unauthenticated ones now, the rest by `deadline`.
    Drain { deadline: Instant },
    /// Send a metrics snapshot.
    Stats { full: bool },
}

/// Messages to the acceptor.
pub enum Report {
    Stats {
        worker: usize,
        metrics: Box<Metrics>,
        full: bool,
    },
    Exited {
        worker: usize,
        metrics: Box<Metrics>,
    },
    /// A connection from `ip` ended in a way that earns its source a penalty.
    Penalty {
        ip: std::net::IpAddr,
        kind: crate::server::PenaltyKind,
    },
}

/// What the worker shares with the rest of the process.
pub struct WorkerParts {
    pub id: usize,
    pub poll: Poll,
    pub waker: Arc<Waker>,
    pub control: Receiver<Control>,
    pub results_tx: Sender<JobResult>,
    pub results: Receiver<JobResult>,
    pub reports: Sender<Report>,
    pub acceptor_waker: Arc<Waker>,
    pub config: Arc<ServerConfig>,
    pub load: Arc<AtomicUsize>,
    pub buffer_used: Arc<AtomicUsize>,
    pub buffer_budget: usize,
    pub crypto: Arc<CryptoPool>,
}

/// Everything but the slab, so a `&mut Conn` and the worker's other state can be borrowed
/// together.
struct State {
    id: usize,
    poll: Poll,
    waker: Arc<Waker>,
    results_tx: Sender<JobResult>,
    crypto: Arc<CryptoPool>,
    pool: BufferPool,
    timers: TimerHeap,
    metrics: Metrics,
    /// Jobs waiting for room in the crypto pool, one queue per job class so a full password
    /// class never holds up key exchanges: (key, generation, job, label, bytes charged to the
    /// memory budget).
    wait_queue: [VecDeque<WaitingJob>; 4],
    /// Connections to service again next turn (budget used), deduplicated by `Conn::queued`.
    ready: Vec<(usize, u32)>,
    /// Connections waiting for buffer memory, deduplicated by `Conn::starved`.
    starved: Vec<(usize, u32)>,
    /// Backend sockets, forward listeners and session children of all connections.
    endpoints: Endpoints,
    /// Where penalty events go (the acceptor); off while draining, when we end connections.
    reports: Sender<Report>,
    acceptor_waker: Arc<Waker>,
    report_penalties: bool,
    /// One small job per loop turn may run inline on an idle pool: a burst of key exchanges
    /// still goes through the bounded queues (and their refusals), one lone login does not.
    inline_left: bool,
    /// The upstream client's transport settings, derived once from the server's (see
    /// `proxy::upstream_algs`) and shared by this worker's upstream links until the server's
    /// change (SIGHUP): (the server's they came from, the derived ones).
    upstream_transport: Option<(Weak<TransportConfig>, Arc<TransportConfig>)>,
}

/// Runs a worker driving `ServerConnection`s until it has drained.
pub fn run(parts: WorkerParts) {
    run_with(parts, ServerConnection::new)
}

/// Runs a worker whose connections' cores are made by `new_core` (a fake in tests).
///
/// One turn: wait for readiness, then the phases in the order below. Writing out happens in
/// each connection's service (pending output first, then what the turn sealed).
pub fn run_with<C: Core, F: Fn(Arc<ServerConfig>, SocketAddr, Instant) -> C>(
    parts: WorkerParts,
    new_core: F,
) {
    let (id, reports, acceptor_waker) =
        (parts.id, parts.reports.clone(), parts.acceptor_waker.clone());
    let mut worker = match Worker::new(parts, new_core) {
        Ok(w) => w,
        Err(e) => {
            log::error!("worker {id}: cannot start: {e}");
            let _ = reports.try_send(Report::Exited { worker: id, metrics: Box::default() });
            let _ = acceptor_waker.wake();
            return;
        }
    };
    let mut events = Events::with_capacity(1024);
    loop {
        let timeout = worker.st.poll_timeout(worker.draining);
        if let Err(e) = worker.st.poll.poll(&mut events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            log::error!("worker {}: poll failed: {e}; closing its connections", worker.st.id);
            break;
        }
        let now = Instant::now();
        worker.st.inline_left = true;
        worker.mark_ready(&events);
        worker.drain_control(now);
        worker.drain_crypto_results(now);
        worker.drive_endpoints(now);
        worker.fire_timers(now);
        worker.service_ready(now);
        if worker.drained(now) {
            break;
        }
    }
    worker.shut_down();
}

/// A worker thread: its connections, the channels the rest of the process reaches it by, and
/// `State`, the rest (kept apart so a `&mut Conn` and the worker's state borrow together).
/// Its methods are the phases of one turn.
struct Worker<C, F> {
    st: State,
    conns: Slab<Conn<C>>,
    control: Receiver<Control>,
    results: Receiver<JobResult>,
    /// Given to connections accepted from now on.
    config: Arc<ServerConfig>,
    /// Connections on this worker, as the acceptor sees them (it picks the least loaded).
    load: Arc<AtomicUsize>,
    new_core: F,
    next_generation: u32,
    /// Set by a drain: the worker exits when its connections are gone or at this instant.
    draining: Option<Instant>,
    /// Connections to service this turn; an entry whose generation is stale is skipped.
    touched: Vec<(usize, u32)>,
}

impl<C: Core, F: Fn(Arc<ServerConfig>, SocketAddr, Instant) -> C> Worker<C, F> {
    fn new(parts: WorkerParts, new_core: F) -> io::Result<Self> {
        let WorkerParts {
            id,
            poll,
            waker,
            control,
            results_tx,
            results,
            reports,
            acceptor_waker,
            config,
            load,
            buffer_used,
            buffer_budget,
            crypto,
        } = parts;
        let registry = poll.registry().try_clone()?;
        let st = State {
            id,
            poll,
            waker: waker.clone(),
            results_tx,
            crypto,
            pool: BufferPool::new(buffer_used, buffer_budget),
            timers: TimerHeap::new(),
            metrics: Metrics::default(),
            wait_queue: Default::default(),
            ready: Vec::new(),
            starved: Vec::new(),
            endpoints: Endpoints::new(id, registry, super::resolve::Resolver::new(waker.clone())),
            reports,
            acceptor_waker,
            report_penalties: true,
            inline_left: true,
            upstream_transport: None,
        };
        Ok(Worker {
            st,
            conns: Slab::new(),
            control,
            results,
            config,
            load,
            new_core,
            next_generation: 1,
            draining: None,
            touched: Vec::new(),
        })
    }

    /// Readiness from `poll`, kept in user space: a client socket marks its connection, an
    /// endpoint or upstream socket marks itself; either way its connection is touched.
    fn mark_ready(&mut self, events: &Events) {
        let conns = &mut self.conns;
        let st = &mut self.st;
        let touched = &mut self.touched;
        for ev in events.iter() {
            if ev.token() == WAKER_TOKEN {
                continue;
            }
            let Some((kind, key, gen_bits)) = decode(ev.token()) else {
                continue;
            };
            if kind == SocketKind::Upstream {
                let c = conns.get_mut(key).filter(|c| generation_matches(gen_bits, c.generation));
                if let Some((c, u)) = c.and_then(|c| Some((c.generation, c.upstream.as_mut()?))) {
                    let r = ev.is_readable() || ev.is_read_closed() || ev.is_error();
                    u.mark_ready(r, ev.is_writable() || ev.is_write_closed() || ev.is_error());
                    touched.push((key, c));
                }
                continue;
            }
            if kind != SocketKind::Client {
                // A backend, listener or child pipe: note readiness, service its connection.
                if let Some(owner) = st.endpoints.endpoint_ready(kind, key, gen_bits, ev) {
                    touched.push(owner);
                }
                continue;
            }
            let Some(conn) = conns.get_mut(key) else {
                continue;
            };
            if !generation_matches(gen_bits, conn.generation) {
                continue;
            }
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                conn.readable = true;
            }
            if ev.is_writable() || ev.is_write_closed() || ev.is_error() {
                conn.writable = true;
            }
            touched.push((key, conn.generation));
        }
    }

    /// Control messages: drained fully, bounded by the channel's capacity.
    fn drain_control(&mut self, now: Instant) {
        let st = &mut self.st;
        let conns = &mut self.conns;
        let touched = &mut self.touched;
        let id = st.id;
        loop {
            match self.control.try_recv() {
                Ok(Control::NewConn { stream, peer, accepted_at, source, startup }) => {
                    if self.draining.is_some() {
                        self.load.fetch_sub(1, Ordering::AcqRel);
                        continue;
                    }
                    let generation = self.next_generation;
                    self.next_generation = self.next_generation.wrapping_add(1).max(1);
                    if let Some(key) = st.add_conn(
                        conns,
                        stream,
                        peer,
                        accepted_at,
                        generation,
                        (self.new_core)(self.config.clone(), peer, now),
                    ) {
                        if let Some(c) = conns.get_mut(key) {
                            c.gateway = self.config.gateway.clone();
                            c.source = source;
                            c.startup = startup;
                        }
                        touched.push((key, generation));
                    } else {
                        self.load.fetch_sub(1, Ordering::AcqRel);
                    }
                }
                Ok(Control::NewConfig(c)) => self.config = c,
                Ok(Control::Drain { deadline }) => {
                    if self.draining.is_none() {
                        log::info!("worker {id}: draining {} connection(s)", conns.len());
                    }
                    self.draining = Some(deadline);
                    st.report_penalties = false;
                    for (key, conn) in conns.iter_mut() {
                        if !conn.core.is_closed() && !conn.core.is_authenticated() {
                            conn.core.close(
                                DisconnectReason::ByApplication,
                                "server shutting down",
                                now,
                            );
                            touched.push((key, conn.generation));
                        }
                    }
                }
                Ok(Control::Stats { full }) => {
                    let metrics = Box::new(st.metrics.clone());
                    let _ = st.reports.try_send(Report::Stats { worker: id, metrics, full });
                    let _ = st.acceptor_waker.wake();
                }
                Err(TryRecvError::Empty) => break,
                // The acceptor is gone: finish as if draining with no grace.
                Err(TryRecvError::Disconnected) => {
                    self.draining = Some(self.draining.map_or(now, |d| d.min(now)));
                    break;
                }
            }
        }
    }

    /// Finished crypto jobs (wake-ups coalesce, so take all).
    fn drain_crypto_results(&mut self, now: Instant) {
        let st = &mut self.st;
        while let Ok(r) = self.results.try_recv() {
            st.crypto.release(r.class);
            st.pool.charge(r.ticket.bytes, 0);
            st.metrics.record_job(r.label, r.queue_wait, r.compute);
            let Some(conn) = self.conns.get_mut(r.ticket.key) else {
                continue;
            };
            if conn.generation != r.ticket.generation {
                continue; // the connection this was for is gone
            }
            st.lend_output(conn);
            match r.done {
                Some(done @ (ServerJobDone::UpstreamKex(_) | ServerJobDone::UpstreamSign(_))) => {
                    st.upstream_job_done(conn, done, now)
                }
                Some(done) => conn.core.handle_job_done(done, now),
                None => conn.core.close(
                    DisconnectReason::KeyExchangeFailed,
                    "internal error in key exchange",
                    now,
                ),
            }
            self.touched.push((r.ticket.key, conn.generation));
        }
    }

    /// Jobs waiting for pool room, name lookups answered, endpoint deadlines, dying children.
    fn drive_endpoints(&mut self, now: Instant) {
        self.st.submit_waiting(&self.conns, now);
        while let Some(a) =
            self.st.endpoints.resolver_answers(&mut self.conns, now, &mut self.touched)
        {
            let (key, generation) = (a.ticket.endpoint, a.ticket.generation);
            if let Some(conn) = self.conns.get_mut(key).filter(|c| c.generation == generation) {
                self.st.upstream_resolved(conn, key, a.result, now);
                self.touched.push((key, generation));
            }
        }
        self.st.endpoints.endpoint_timers(&mut self.conns, now, &mut self.touched);
        self.st.endpoints.reap_dying(now);
    }

    /// Timers: stale entries (connection gone, deadline moved) are skipped.
    fn fire_timers(&mut self, now: Instant) {
        let conns = &mut self.conns;
        let st = &mut self.st;
        let due = st.timers.expired(now, |e| {
            conns
                .get(e.key)
                .is_some_and(|c| c.generation == e.generation && c.timer_armed == Some(e.deadline))
        });
        for e in due {
            if let Some(conn) = conns.get_mut(e.key) {
                conn.timer_armed = None;
                if conn.core.poll_timeout().is_some_and(|d| d <= now) {
                    st.lend_output(conn);
                    conn.core.handle_timeout(now);
                }
                self.touched.push((e.key, e.generation));
            }
        }
    }

    /// Services every touched connection, those left over from last turn, and starved ones if
    /// memory freed; removes those that are over.
    fn service_ready(&mut self, now: Instant) {
        let conns = &mut self.conns;
        let st = &mut self.st;
        let touched = &mut self.touched;
        // Idle buffers kept for reuse are given back while memory is short, so other workers'
        // connections can have them.
        if st.pool.over_high_water() {
            st.pool.trim_free();
        }
        // Connections that used their budget last turn, and starved ones if memory freed.
        touched.append(&mut st.ready);
        if !st.starved.is_empty() && st.pool.has_room(0) {
            for (key, generation) in st.starved.drain(..) {
                if let Some(c) = conns.get_mut(key) {
                    c.starved = false;
                }
                touched.push((key, generation));
            }
        }

        for (key, generation) in touched.drain(..) {
            let Some(conn) = conns.get_mut(key) else {
                continue;
            };
            if conn.generation != generation {
                continue;
            }
            let share = st.fair_share(conns.len());
            let Some(conn) = conns.get_mut(key) else {
                continue;
            };
            conn.hold_back = st.pool.over_high_water() && conn.holding() > share;
            if st.service(conn, key, now) {
                st.remove(conns, key, &self.load);
            }
        }
    }

    /// Draining and nothing left to wait for: no connection, or the deadline has passed.
    fn drained(&self, now: Instant) -> bool {
        self.draining.is_some_and(|deadline| self.conns.is_empty() || now >= deadline)
    }

    /// A last DISCONNECT attempt for whatever is left, then close everything and report.
    fn shut_down(mut self) {
        let st = &mut self.st;
        let now = Instant::now();
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            if let Some(conn) = self.conns.get_mut(key) {
                if !conn.core.is_closed() {
                    conn.core.close(DisconnectReason::ByApplication, "server shutting down", now);
                }
                conn.writable = true;
                let _ = st.service(conn, key, now);
            }
            st.remove(&mut self.conns, key, &self.load);
        }
        st.endpoints.reap_all_on_exit();
        let metrics = Box::new(std::mem::take(&mut st.metrics));
        let _ = st.reports.try_send(Report::Exited { worker: st.id, metrics });
        let _ = st.acceptor_waker.wake();
    }
}

impl State {
    fn poll_timeout(&self, draining: Option<Instant>) -> Option<Duration> {
        if !self.ready.is_empty() {
            return Some(Duration::ZERO);
        }
        let now = Instant::now();
        let mut t: Option<Duration> = None;
        let mut at_most = |d: Duration| t = Some(t.map_or(d, |x| x.min(d)));
        if let Some(d) = self.timers.next_deadline() {
            at_most(d.saturating_duration_since(now));
        }
        if let Some(d) = draining {
            at_most(d.saturating_duration_since(now));
        }
        if let Some(d) = self.endpoints.next_timeout(now) {
            at_most(d);
        }
        if self.wait_queue.iter().any(|q| !q.is_empty()) || !self.starved.is_empty() {
            at_most(RETRY_INTERVAL);
        }
        t
    }

    #[allow(clippy::too_many_arguments)]
    fn add_conn<C: Core>(
        &mut self,
        conns: &mut Slab<Conn<C>>,
        mut stream: TcpStream,
        peer: SocketAddr,
        accepted_at: Instant,
        generation: u32,
        core: C,
    ) -> Option<usize> {
        let entry = conns.vacant_entry();
        let key = entry.key();
        let token = token_for(key, generation);
        if decode_token(token).map(|(k, _)| k) != Some(key) {
            log::warn!(
                "worker {}: too many connections for the token space; dropping {peer}",
                self.id
            );
            return None;
        }
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            token,
            Interest::READABLE | Interest::WRITABLE,
        ) {
            log::warn!("worker {}: cannot register {peer}: {e}", self.id);
            return None;
        }
        entry.insert(Conn::new(stream, peer, core, generation, accepted_at));
        self.metrics.accepted += 1;
        log::info!(event = "accepted", worker = self.id, conn = key, peer:% = peer;
            "[w{}#{key}] accepted {peer}", self.id);
        Some(key)
    }

    /// A connection's share of the high water mark for `conns` connections on this worker
    /// (plus one, as other workers' connections need room too); past the mark, those holding
    /// more stop reading. Never below one small read buffer plus one largest packet, so a
    /// connection can always finish the packet it is reading.
    fn fair_share(&self, conns: usize) -> usize {
        (self.pool.high_water() / (conns + 1)).max(CLASSES[0] + CLASSES[2])
    }

    /// One connection's turn. Returns true when it is over and must be removed.
    fn service<C: Core>(&mut self, conn: &mut Conn<C>, key: usize, now: Instant) -> bool {
        let over = self.service_turn(conn, key, now);
        // Charge what the core now holds for the peer against the shared budget.
        self.recharge(conn);
        if conn.hold_back && !over {
            // Retried when memory frees (the starved list), as edge triggering will not.
            self.starve(conn, key);
        }
        over
    }

    fn service_turn<C: Core>(&mut self, conn: &mut Conn<C>, key: usize, now: Instant) -> bool {
        conn.queued = false;

        // Pending output first: it frees room and keeps the byte order.
        if conn.writable && !conn.wq.is_empty() {
            self.write_out(conn, now);
        }
        self.lend_output(conn);
        let mut again = self.read_input(conn, key, now);
        // Relay between channels and endpoints, flush, handle events; again while a round made
        // progress or an event asked for it (bounded: the relay budget is per round).
        let mut unfinished = false;
        for _ in 0..endpoints::PUMP_ROUNDS {
            conn.pump_again = false;
            if !conn.links.is_empty() {
                self.lend_output(conn);
            }
            let (mut progress, mut more) = if conn.links.is_empty() {
                (false, false)
            } else {
                self.endpoints.pump(conn, key, now, &mut self.metrics.payload_copied)
            };
            if conn.upstream.is_some() {
                let (p, m) = self.pump_upstream(conn, key, now);
                (progress, more) = (progress || p, more || m);
            }
            if self.output_and_events(conn, key, now) {
                // Events of the last round may have staged output or raised more events.
                conn.pump_again = true;
            }
            if more {
                again = true;
                break;
            }
            unfinished = progress || conn.pump_again;
            if !unfinished {
                break;
            }
        }
        // Rounds used up with work left: edge triggering will not report this connection again,
        // so it goes on the ready list (otherwise staged output could wait for a wake-up forever).
        again |= unfinished;
        if again && !conn.queued {
            conn.queued = true;
            self.ready.push((key, conn.generation));
        }
        self.arm_timer(conn, key, now);
        // An idle connection keeps no output buffer.
        if let Some(v) = conn.core.reclaim_output() {
            conn.lent = false;
            self.recharge(conn);
            self.pool.take_back_vec(v);
        }
        // Inbound chunks the backends emptied go back to the pool (the core's charge first).
        while let Some(v) = conn.core.take_spent_inbound() {
            self.recharge(conn);
            self.pool.take_back_vec(v);
        }
        let flushed = conn.pending_out() == 0;
        conn.write_failed
            || (flushed && (conn.closing || conn.core.is_closed() || conn.read_closed))
            || conn.linger_deadline.is_some_and(|d| now >= d)
    }

    /// Feeds buffered input and reads more. Returns true if the per-turn budget ran out while
    /// the socket may still have data.
    fn read_input<C: Core>(&mut self, conn: &mut Conn<C>, key: usize, now: Instant) -> bool {
        let mut budget = READ_BUDGET_PER_TURN;
        let mut out_of_budget = false;
        loop {
            // Feed what we have; the core takes whole packets and says how much it used.
            if !conn.closing && conn.core.wants_input() {
                if let Some(buf) = conn.rbuf.as_mut().filter(|b| !b.is_empty()) {
                    // Also without endpoints (a proxied connection's bridge), for its chunks.
                    let lent = &mut self.metrics.inbound_buffers;
                    let mut sink = self.endpoints.sink(&conn.links, &mut self.pool, lent);
                    let n = conn.core.handle_input_with(buf.filled_mut(), now, &mut sink);
                    buf.consume(n);
                }
            }
            let can_read = conn.readable
                && !conn.read_closed
                && !conn.closing
                && !conn.starved
                && !conn.hold_back
                && conn.pending_out() < WRITE_HIGH_WATER
                && conn.core.wants_input();
            if !can_read {
                break;
            }
            if budget == 0 {
                out_of_budget = true;
                break;
            }
            if !self.ensure_read_room(conn, key, now) {
                break;
            }
            let Some(buf) = conn.rbuf.as_mut() else { break };
            let spare = buf.spare_mut();
            let want = spare.len().min(budget);
            let dst = spare.get_mut(..want).unwrap_or_default();
            match conn.socket.read(dst) {
                Ok(0) => {
                    conn.read_closed = true;
                    if !conn.core.is_closed() {
                        conn.core.peer_closed(now);
                    }
                    break;
                }
                Ok(n) => {
                    buf.end += n;
                    budget = budget.saturating_sub(n);
                    conn.bytes_in += n as u64;
                    self.metrics.bytes_in += n as u64;
                    conn.first_byte_at.get_or_insert(now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    conn.readable = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("[w{}] read from {}: {e}", self.id, conn.peer);
                    conn.read_closed = true;
                    conn.write_failed = true;
                    break;
                }
            }
        }
        // An idle connection holds no read buffer.
        if conn.rbuf.as_ref().is_some_and(Buf::is_empty) {
            if let Some(b) = conn.rbuf.take() {
                self.pool.release(b);
            }
        } else if let Some(b) = conn.rbuf.as_mut().filter(|b| b.len() <= MIN_READ_ROOM) {
            // A few bytes are cheap to move; a large partial packet waits until the room is
            // needed (`ensure_read_room`).
            b.compact();
        }
        out_of_budget
    }

    /// Gives the connection a read buffer with free room: checked out, compacted or grown as
    /// [`Buf::room_plan`] says. False if memory is short (the connection waits on the starved
    /// list) or a packet does not fit even the largest class (the core should have refused its
    /// length first).
    fn ensure_read_room<C: Core>(&mut self, conn: &mut Conn<C>, key: usize, now: Instant) -> bool {
        let mut b = match conn.rbuf.take() {
            Some(b) => b,
            None => match self.pool.checkout(0) {
                Some(b) => b,
                None => {
                    self.starve(conn, key);
                    return false;
                }
            },
        };
        let mut starved = false;
        let ready = match b.room_plan() {
            RoomPlan::Read => true,
            RoomPlan::Compact => {
                b.compact();
                true
            }
            RoomPlan::Grow(class) => match self.pool.checkout(class) {
                Some(mut bigger) => {
                    bigger.push(b.filled());
                    self.pool.release(std::mem::replace(&mut b, bigger));
                    true
                }
                None => {
                    // Short of memory: read into what room there is, or wait for some.
                    b.compact();
                    starved = b.spare() == 0;
                    !starved
                }
            },
            RoomPlan::TooLarge => {
                conn.core.close(
                    DisconnectReason::ProtocolError,
                    "packet larger than the maximum",
                    now,
                );
                false
            }
        };
        conn.rbuf = Some(b);
        if starved {
            self.starve(conn, key);
        }
        ready
    }

    /// Charges what the core holds for the peer now (its last charge replaced).
    fn recharge<C: Core>(&mut self, conn: &mut Conn<C>) {
        let held = conn.core.held_bytes() + conn.upstream.as_ref().map_or(0, |u| u.held_bytes());
        self.pool.charge(conn.charged, held);
        conn.charged = held;
    }

    fn starve<C: Core>(&mut self, conn: &mut Conn<C>, key: usize) {
        if !conn.starved {
            conn.starved = true;
            self.starved.push((key, conn.generation));
        }
    }

    /// Lends the core an empty pooled output buffer, sized by its last batch, when it holds
    /// none: its messages are encoded, staged and sealed in it, and it is what gets written.
    /// With endpoints it holds a whole pump round (backend reads land in CHANNEL_DATA packets
    /// in it), so it never reallocates. Without budget room the core grows its own (counted
    /// through `held_bytes`).
    fn lend_output<C: Core>(&mut self, conn: &mut Conn<C>) {
        if conn.core.output_capacity() != 0 {
            return;
        }
        let mut want = (conn.out_hint as usize).max(1);
        if !conn.links.is_empty() {
            want = want.max(endpoints::RELAY_BUDGET_PER_TURN + 4096);
        }
        if conn.upstream.as_ref().is_some_and(|u| u.is_carrying()) {
            // A bridge pump stages up to its budget here.
            want = want.max(crate::proxy::bridge::PUMP_BUDGET + 4096);
        }
        if self.pool.lend_vec(want, |v| conn.core.lend_output(v)) {
            self.recharge(conn);
            conn.lent = true;
        }
    }

    /// Seals the connection's staged packets (one batch) → queue → one `writev`, then events;
    /// again if events were handled (a Closed event may leave a DISCONNECT to flush).
    /// Returns true when the rounds ran out while events were still being handled: the caller
    /// must come back, as output they staged has not been sealed yet.
    fn output_and_events<C: Core>(&mut self, conn: &mut Conn<C>, key: usize, now: Instant) -> bool {
        for _ in 0..3 {
            // The sealed batch comes back in the buffer it was staged in; the core keeps none.
            let mut batch = Vec::new();
            let started = Instant::now();
            let packets = conn.core.poll_transmit(&mut batch);
            if packets > 0 {
                record(&mut self.metrics.batch, started.elapsed());
                crate::metrics::record_count(&mut self.metrics.batch_packets, packets);
                self.metrics.sealed_packets += packets as u64;
            }
            if !batch.is_empty() {
                if std::mem::take(&mut conn.lent) {
                    self.metrics.out_buffers += 1;
                }
                conn.out_hint = u32::try_from(batch.len()).unwrap_or(u32::MAX);
                // The batch's buffer is the worker's to count now, no longer the core's (the
                // core's charge drops first, so the peak never counts it twice).
                self.recharge(conn);
                self.pool.adopt(batch.capacity());
                if let Some(v) = conn.wq.push(batch) {
                    self.pool.release_vec(v);
                }
            }
            // Replies to the events below (a crypto job run inline, channel events) are staged
            // in a pooled buffer too.
            self.lend_output(conn);
            if !conn.wq.is_empty() {
                self.write_out(conn, now);
                if !conn.wq.is_empty() && self.pool.over_budget() {
                    // Output the socket did not take while the budget is spent: it cannot stay
                    // (a DISCONNECT cannot follow a partial packet), so the connection ends.
                    self.out_of_memory(conn);
                }
            }
            let mut handled = false;
            while let Some(ev) = conn.core.poll_event() {
                handled = true;
                self.handle_event(conn, key, ev, now);
            }
            if !handled {
                return false;
            }
        }
        true
    }

    fn handle_event<C: Core>(&mut self, conn: &mut Conn<C>, key: usize, ev: Event, now: Instant) {
        let id = self.id;
        match ev {
            Event::Job(job) => self.submit(conn, key, job, now),
            Event::KexDone(s) => {
                if s.first {
                    conn.kex_done = true;
                    self.metrics.record_kex_done(s.kex);
                    if let Some(t) = conn.first_byte_at {
                        record(&mut self.metrics.handshake, now.saturating_duration_since(t));
                    }
                }
                conn.algs = Some((s.kex, s.cipher_out));
                log::info!(
                    event = if s.first { "kex_done" } else { "rekey_done" }, worker = id,
                    conn = key, peer:% = conn.peer, user = conn.user.as_deref(), kex = s.kex,
                    cipher = s.cipher_out, duration_ms = s.duration.as_millis() as u64;
                    "[w{id}#{key}] {} kex done{}: kex={} hostkey={} cipher={}/{} mac={}/{} \
                     compression={}/{} in {:?}",
                    conn.peer,
                    if s.first { "" } else { " (rekey)" },
                    s.kex,
                    s.host_key,
                    s.cipher_in,
                    s.cipher_out,
                    s.mac_in,
                    s.mac_out,
                    s.compression_in,
                    s.compression_out,
                    s.duration
                );
            }
            Event::ServiceAccepted(name) => {
                log::debug!("[w{id}#{key}] {} service accepted: {name}", conn.peer)
            }
            Event::Authenticated { user, method } => {
                self.metrics.record_auth(method, now.saturating_duration_since(conn.accepted_at));
                log::info!(
                    event = "authenticated", worker = id, conn = key, peer:% = conn.peer,
                    user = user.as_str(), method:% = method;
                    "[w{id}#{key}] {} authenticated user={:?} method={method}",
                    conn.peer,
                    super::log::peer_str(&user)
                );
                conn.user = Some(user);
                conn.startup = None;
                self.start_upstream(conn, key, now);
            }
            Event::Closed { code, reason, by_peer } => {
                conn.closing = true;
                self.metrics.record_disconnect(code);
                conn.close_reason = Some((code, reason, by_peer));
            }
            // Every core log line is peer-triggered (DEBUG, UNIMPLEMENTED, failed logins, …):
            // rate-limited per connection and globally.
            Event::Log(text) => match conn.notes.admit(now) {
                Some(0) => log::info!(
                    event = "note", worker = id, conn = key, peer:% = conn.peer,
                    user = conn.user.as_deref(), reason = text.as_str();
                    "[w{id}#{key}] {}: {text}", conn.peer),
                Some(held) => log::info!(
                    event = "note", worker = id, conn = key, peer:% = conn.peer,
                    user = conn.user.as_deref(), reason = text.as_str();
                    "[w{id}#{key}] {}: {text} ({held} similar line(s) suppressed before)",
                    conn.peer
                ),
                None => {}
            },
            other if conn.upstream.is_some() => self.upstream_event(conn, key, other, now),
            other => self.endpoints.channel_event(conn, key, other, now),
        }
    }

    /// Sends a job to the pool, or queues it while the pool is at its bound, or refuses the
    /// connection (DISCONNECT 12) when the wait queue is full too.
    fn submit<C: Core>(&mut self, conn: &mut Conn<C>, key: usize, job: ServerJob, now: Instant) {
        let label = job.label();
        let class = job.class().index();
        // Queued or running, the job's bytes count against the memory budget until its
        // result is back (or it is dropped from the wait queue).
        let bytes = job.held_bytes();
        let job = if self.wait_queue[class].is_empty() {
            // An upstream job's result goes to the upstream core, which is out of `conn` while
            // its events (which submit it) are drained: those always take the pool.
            let upstream = matches!(job, ServerJob::UpstreamKex(_) | ServerJob::UpstreamSign(_));
            let inline = if !upstream && std::mem::take(&mut self.inline_left) {
                self.crypto.try_run_inline(job)
            } else {
                Err(job)
            };
            let job = match inline {
                Ok((done, compute)) => {
                    self.metrics.record_job(label, Duration::ZERO, compute);
                    match done {
                        Some(done) => conn.core.handle_job_done(done, now),
                        None => conn.core.close(
                            DisconnectReason::KeyExchangeFailed,
                            "internal error in key exchange",
                            now,
                        ),
                    }
                    return;
                }
                Err(job) => job,
            };
            let ticket = JobTicket {
                worker: self.id,
                key,
                generation: conn.generation,
                submitted: now,
                bytes,
            };
            match self.crypto.try_submit(job, label, ticket, &self.results_tx, &self.waker) {
                Ok(()) => {
                    self.pool.charge(0, bytes);
                    return;
                }
                Err(job) => job,
            }
        } else {
            job // keep FIFO order behind those already waiting
        };
        if self.wait_queue[class].len() < JOB_WAIT_QUEUE {
            self.pool.charge(0, bytes);
            self.wait_queue[class].push_back((key, conn.generation, job, label, bytes));
            return;
        }
        self.metrics.crypto_refused += 1;
        log::warn!(event = "crypto_queue_full", worker = self.id, conn = key, peer:% = conn.peer;
            "[w{}#{key}] {}: crypto queue full, refusing", self.id, conn.peer);
        conn.core.close(DisconnectReason::TooManyConnections, "too many connections", now);
    }

    /// Moves waiting jobs to the pool while it has room; drops those of closed connections.
    fn submit_waiting<C: Core>(&mut self, conns: &Slab<Conn<C>>, now: Instant) {
        for queue in &mut self.wait_queue {
            while let Some((key, generation, job, label, bytes)) = queue.pop_front() {
                if conns.get(key).is_none_or(|c| c.generation != generation) {
                    self.pool.charge(bytes, 0);
                    continue;
                }
                let ticket = JobTicket { worker: self.id, key, generation, submitted: now, bytes };
                if let Err(job) =
                    self.crypto.try_submit(job, label, ticket, &self.results_tx, &self.waker)
                {
                    queue.push_front((key, generation, job, label, bytes));
                    break;
                }
            }
        }
    }

    /// Writes the queued batches with one `writev` per attempt; what the socket does not take
    /// stays where it was sealed.
    fn write_out<C: Core>(&mut self, conn: &mut Conn<C>, now: Instant) {
        if conn.write_failed {
            conn.wq.clear(|v| self.pool.release_vec(v));
            return;
        }
        while conn.writable && !conn.wq.is_empty() {
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let n = conn.wq.io_slices(&mut iov);
            let res = conn.socket.write_vectored(iov.get(..n).unwrap_or_default());
            match res {
                Ok(0) => {
                    conn.write_failed = true;
                    break;
                }
                Ok(n) => {
                    let pool = &mut self.pool;
                    conn.wq.consume(n, |v| pool.release_vec(v));
                    if conn.bytes_out == 0 {
                        record(
                            &mut self.metrics.accept_to_banner,
                            now.saturating_duration_since(conn.accepted_at),
                        );
                    }
                    conn.bytes_out += n as u64;
                    self.metrics.bytes_out += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    conn.writable = false;
                    conn.stall_since.get_or_insert(now);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("[w{}] write to {}: {e}", self.id, conn.peer);
                    conn.write_failed = true;
                    break;
                }
            }
        }
        if conn.write_failed {
            conn.wq.clear(|v| self.pool.release_vec(v));
            return;
        }
        if conn.wq.is_empty() {
            if let Some(t) = conn.stall_since.take() {
                record(&mut self.metrics.write_stall, now.saturating_duration_since(t));
            }
        }
    }

    /// Sealed output that cannot be held: the connection ends without a DISCONNECT.
    fn out_of_memory<C: Core>(&mut self, conn: &mut Conn<C>) {
        self.metrics.resource_closed += 1;
        log::warn!(event = "buffer_memory_full", worker = self.id, peer:% = conn.peer;
            "[w{}] {}: --max-buffer-memory spent, output cannot be held; closing",
            self.id, conn.peer);
        conn.write_failed = true;
        conn.close_reason.get_or_insert_with(|| {
            (DisconnectReason::ConnectionLost.code(), "buffer memory spent".into(), false)
        });
        if !conn.core.is_closed() {
            conn.core.close(DisconnectReason::ByApplication, "buffer memory spent", Instant::now());
        }
    }

    /// Puts the connection's next deadline (core timer, or close linger) in the heap if it is
    /// earlier than the one already armed.
    fn arm_timer<C: Core>(&mut self, conn: &mut Conn<C>, key: usize, now: Instant) {
        if conn.closing && conn.linger_deadline.is_none() {
            conn.linger_deadline = Some(now + CLOSE_LINGER);
        }
        let mut core_deadline = if conn.core.is_closed() { None } else { conn.core.poll_timeout() };
        if let Some(u) = conn.upstream.as_ref().and_then(|u| u.next_deadline()) {
            core_deadline = Some(core_deadline.map_or(u, |d| d.min(u)));
        }
        let want = match (core_deadline, conn.linger_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(d) = want {
            if conn.timer_armed.is_none_or(|armed| d < armed) {
                self.timers.push(d, key, conn.generation);
                conn.timer_armed = Some(d);
            }
        }
    }

    fn remove<C: Core>(&mut self, conns: &mut Slab<Conn<C>>, key: usize, load: &AtomicUsize) {
        let Some(mut conn) = conns.try_remove(key) else {
            return;
        };
        self.endpoints.teardown(&mut conn, Instant::now());
        self.teardown_upstream(&mut conn);
        let _ = self.poll.registry().deregister(&mut conn.socket);
        if let Some(b) = conn.rbuf.take() {
            self.pool.release(b);
        }
        conn.wq.clear(|v| self.pool.release_vec(v));
        self.pool.charge(conn.charged, 0);
        conn.charged = 0;
        let (out, inbound) = conn.core.bytes_copied();
        self.metrics.payload_copied += out;
        self.metrics.payload_queued += inbound;
        self.metrics.inbound_own_buffers += conn.core.own_inbound_chunks();
        load.fetch_sub(1, Ordering::AcqRel);
        self.metrics.closed += 1;
        self.metrics.record_close(conn.kex_done, conn.core.is_authenticated());
        let (code, reason, by_peer) = conn.close_reason.take().unwrap_or((
            DisconnectReason::ConnectionLost.code(),
            "connection lost".into(),
            true,
        ));
        // Our own refusals (crypto queue full) and shutdown do not count against the source.
        let ours = !by_peer && code == DisconnectReason::TooManyConnections.code();
        if self.report_penalties && !ours {
            if let Some(kind) = conn.core.penalty(Instant::now()) {
                let ip = conn.peer.ip();
                if self.reports.try_send(Report::Penalty { ip, kind }).is_ok() {
                    let _ = self.acceptor_waker.wake();
                }
            }
        }
        let suppressed = conn.notes.total_suppressed;
        let lived = Instant::now().saturating_duration_since(conn.accepted_at);
        log::info!(
            event = "closed", worker = self.id, conn = key, peer:% = conn.peer,
            user = conn.user.as_deref(), code = code, reason = reason.as_str(),
            kex = conn.algs.map(|a| a.0), cipher = conn.algs.map(|a| a.1),
            by = if by_peer { "peer" } else { "us" }, bytes_in = conn.bytes_in,
            bytes_out = conn.bytes_out, duration_ms = lived.as_millis() as u64;
            "[w{}#{key}] {} closed: code={code} reason={reason:?} by_{} bytes_in={} bytes_out={} \
             after {:?}{}",
            self.id,
            conn.peer,
            if by_peer { "peer" } else { "us" },
            conn.bytes_in,
            conn.bytes_out,
            lived,
            if suppressed > 0 { format!(" suppressed_lines={suppressed}") } else { String::new() },
        );
    }
}

#[path = "upstream.rs"]
mod upstream;
#[path = "upstream_output.rs"]
mod upstream_output;

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;
