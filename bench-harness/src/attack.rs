//! The attack benchmark: one thread attacks from `--bind` while the main thread starts
//! legitimate logins from 127.0.0.1 at a fixed rate and writes, once a second, that second's
//! latency percentiles and the attacker's running outcome counts as a JSON line.

use crate::cli::{self, AttackArgs, AttackMode};
use crate::driver::{classify, connect_from, Engine, Finished};
use crate::proto::{AuthMethod, FailKind, Goal, Phase, Plan};
use crate::report::{self, Json};
use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Legitimate logins in flight at most (a stalled server must not make us open thousands).
const LEGIT_MAX_IN_FLIGHT: usize = 256;
/// Attacker connections (re)opened per loop turn at most, so a server that refuses at accept
/// does not turn the loop into a connect spin.
const REOPEN_PER_TURN: usize = 64;

/// What happened to the attacker's connections so far (cumulative).
#[derive(Default)]
pub struct AttackStats {
    started: AtomicU64,
    /// connect() itself failed (listen queue full, port exhaustion).
    connect_errors: AtomicU64,
    /// Closed by the server before it sent one byte: refused at accept.
    refused_at_accept: AtomicU64,
    /// Closed by the server (DISCONNECT or TCP close) after the version exchange began.
    disconnected: AtomicU64,
    auth_failures: AtomicU64,
    /// Reached the attack's goal (kex-flood: KEX done; spray: a password accepted).
    completed: AtomicU64,
    timeouts: AtomicU64,
    other: AtomicU64,
    /// Connections open right now.
    open: AtomicU64,
}

/// The attacker's connect budget: `rate` a second since `t0` (0: unlimited).
struct ConnectBudget {
    t0: Instant,
    rate: u32,
    used: u64,
}

impl ConnectBudget {
    fn new(rate: u32) -> ConnectBudget {
        ConnectBudget { t0: Instant::now(), rate, used: 0 }
    }

    /// Takes one connect from the budget if there is one left now.
    fn take(&mut self, now: Instant) -> bool {
        if self.rate > 0 {
            let allowed = now.duration_since(self.t0).as_secs_f64() * f64::from(self.rate);
            if self.used as f64 >= allowed.max(1.0) {
                return false;
            }
        }
        self.used += 1;
        true
    }
}

impl AttackStats {
    fn add(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn fields(&self) -> Vec<(String, Json)> {
        let g = |c: &AtomicU64| Json::from(c.load(Ordering::Relaxed));
        vec![
            ("started".into(), g(&self.started)),
            ("open".into(), g(&self.open)),
            ("connect_errors".into(), g(&self.connect_errors)),
            ("refused_at_accept".into(), g(&self.refused_at_accept)),
            ("disconnected".into(), g(&self.disconnected)),
            ("auth_failures".into(), g(&self.auth_failures)),
            ("completed".into(), g(&self.completed)),
            ("timeouts".into(), g(&self.timeouts)),
            ("other".into(), g(&self.other)),
        ]
    }

    /// Counts how an engine connection (spray, kex-flood) ended.
    fn finished(&self, f: &Finished) {
        match (&f.sess.phase, &f.sess.fail) {
            (Phase::Done, _) => Self::add(&self.completed),
            (_, Some(FailKind::AuthRejected)) => Self::add(&self.auth_failures),
            (_, Some(FailKind::Timeout)) => Self::add(&self.timeouts),
            (_, Some(FailKind::Disconnect(_) | FailKind::ConnectionLost | FailKind::Io(_)))
                if !f.got_bytes =>
            {
                Self::add(&self.refused_at_accept)
            }
            (_, Some(FailKind::Disconnect(_) | FailKind::ConnectionLost | FailKind::Io(_))) => {
                Self::add(&self.disconnected)
            }
            _ => Self::add(&self.other),
        }
    }

    fn connect_failed(&self, k: &FailKind) {
        match k {
            FailKind::Timeout => Self::add(&self.timeouts),
            _ => Self::add(&self.connect_errors),
        }
    }
}

/// The server tree's latest memory sample. Walking /proc for sshd's hundreds of children can
/// take long under load, so a sampler thread does it and the measuring loop only reads these.
struct ServerSample {
    rss: AtomicU64,
    pss: AtomicU64,
    processes: AtomicU64,
}

impl ServerSample {
    fn new() -> ServerSample {
        ServerSample {
            rss: AtomicU64::new(u64::MAX),
            pss: AtomicU64::new(u64::MAX),
            processes: AtomicU64::new(u64::MAX),
        }
    }

    /// Samples `pid`'s tree every 500 ms until `stop`.
    fn run(&self, pid: u32, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            let (rss, pss) = crate::procstat::tree_memory(pid).unwrap_or((u64::MAX, u64::MAX));
            self.rss.store(rss, Ordering::Relaxed);
            self.pss.store(pss, Ordering::Relaxed);
            self.processes.store(crate::procstat::tree(pid).len() as u64, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// Runs the attack and the measurement; writes JSON lines to `--out` or stdout.
pub fn run(a: &AttackArgs) -> Result<(), String> {
    cli::validate(&a.common)?;
    cli::check_secs("--duration", a.duration)?;
    if !a.bind.is_loopback() {
        return Err(format!("--bind {}: only loopback sources", a.bind));
    }
    let legit_ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    if a.bind == legit_ip {
        return Err("--bind must differ from the legitimate client's 127.0.0.1".into());
    }
    let mut out: Box<dyn Write> = match &a.out {
        Some(p) => Box::new(io::BufWriter::new(
            std::fs::File::create(p).map_err(|e| format!("--out {}: {e}", p.display()))?,
        )),
        None => Box::new(io::BufWriter::new(io::stdout())),
    };
    let cfg = Arc::new(crate::transport_config(&a.common)?);
    let legit_plan = Arc::new(Plan {
        user: a.common.user.clone(),
        auth: crate::auth_method(&a.common)?,
        goal: Goal::Handshake { channel: false },
    });
    let stats = Arc::new(AttackStats::default());
    let stop = Arc::new(AtomicBool::new(false));
    // The server's memory before the attack: the baseline of what held connections cost.
    let mem0 = a.common.server_pid.and_then(crate::procstat::tree_memory);
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(a.duration);
    let attacker = {
        let (a, cfg, stats, stop) = (a.clone(), cfg.clone(), stats.clone(), stop.clone());
        std::thread::spawn(move || match a.mode {
            AttackMode::Spray | AttackMode::KexFlood => engine_attack(&a, cfg, &stats, &stop, end),
            AttackMode::PreauthIdle | AttackMode::Slowloris => raw_attack(&a, &stats, &stop, end),
        })
    };
    let server = Arc::new(ServerSample::new());
    let sampler = a.common.server_pid.map(|pid| {
        let (server, stop) = (server.clone(), stop.clone());
        std::thread::spawn(move || server.run(pid, &stop))
    });
    let res = measure(a, cfg, legit_plan, legit_ip, &stats, &server, t0, end, &mut out);
    stop.store(true, Ordering::Relaxed);
    if let Some(h) = sampler {
        let _ = h.join();
    }
    let att = attacker.join().map_err(|_| "attack thread panicked".to_string())?;
    let Legit { total, failures, started: legit_started } = res?;
    att?;

    let mut r = report::Report::default();
    r.put("type", "summary");
    r.put("mode", a.mode.name());
    r.put("label", a.common.label.as_str());
    r.put("addr", a.common.addr.to_string());
    r.put("bind", a.bind.to_string());
    r.put("concurrency", u64::from(a.concurrency));
    r.put("rate", u64::from(a.rate));
    r.put("connect_rate", u64::from(a.connect_rate));
    r.put("duration_s", a.duration);
    r.put("legit_started", legit_started);
    r.put("legit_ok", total.len());
    r.put("legit_failed", failures.values().sum::<u64>());
    r.put_failures(&failures);
    r.put_latency(report::latency(&total));
    r.put("attack", Json::Obj(stats.fields()));
    r.put("server_rss_before", mem0.map(|m| m.0));
    r.put("server_pss_before", mem0.map(|m| m.1));
    writeln!(out, "{}", r.json()).map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())
}

/// What the legitimate client saw over the whole run.
struct Legit {
    /// Latency of every successful login (µs).
    total: Histogram<u64>,
    failures: BTreeMap<String, u64>,
    started: u64,
}

/// The legitimate client: `rate` logins a second from 127.0.0.1, a line per second.
#[allow(clippy::too_many_arguments)]
fn measure(
    a: &AttackArgs,
    cfg: Arc<sshfront::transport::TransportConfig>,
    plan: Arc<Plan>,
    ip: IpAddr,
    stats: &AttackStats,
    server: &ServerSample,
    t0: Instant,
    end: Instant,
    out: &mut dyn Write,
) -> Result<Legit, String> {
    let timeout = Duration::from_secs_f64(a.common.timeout);
    let mut eng = Engine::new(cfg, plan, a.common.addr, timeout).map_err(|e| e.to_string())?;
    eng.set_bind(ip);
    let interval = Duration::from_secs_f64(1.0 / f64::from(a.rate));
    let mut next_start = t0;
    let mut second = 1u64;
    let mut started = 0u64;
    let mut sec_hist = report::new_histogram();
    let mut total = report::new_histogram();
    let (mut sec_failed, mut sec_skipped) = (0u64, 0u64);
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    let hard_end = end + timeout + Duration::from_secs(1);
    loop {
        let now = Instant::now();
        while next_start <= now && now < end {
            next_start += interval;
            if eng.len() >= LEGIT_MAX_IN_FLIGHT {
                sec_skipped += 1;
                continue;
            }
            started += 1;
            if let Err(k) = eng.open(now) {
                sec_failed += 1;
                *failures.entry(k.label()).or_default() += 1;
            }
        }
        for f in eng.turn(Duration::from_millis(2)) {
            match (&f.sess.phase, f.sess.done_at) {
                (Phase::Done, Some(at)) => {
                    let us =
                        (at.duration_since(f.started).as_micros().max(1) as u64).min(600_000_000);
                    let _ = sec_hist.record(us);
                    let _ = total.record(us);
                }
                _ => {
                    sec_failed += 1;
                    let k = f.sess.fail.clone().unwrap_or(FailKind::Protocol("unfinished".into()));
                    *failures.entry(k.label()).or_default() += 1;
                }
            }
        }
        let now = Instant::now();
        let boundary = t0 + Duration::from_secs(second);
        let finished = now >= end && eng.len() == 0 || now >= hard_end;
        if now >= boundary || finished {
            let l = report::latency(&sec_hist);
            let mut fields: Vec<(String, Json)> = vec![
                ("type".into(), "second".into()),
                ("t".into(), second.into()),
                ("legit_ok".into(), sec_hist.len().into()),
                ("legit_failed".into(), sec_failed.into()),
                ("legit_skipped".into(), sec_skipped.into()),
                ("p50_ms".into(), l.map(|l| l.p50).into()),
                ("p99_ms".into(), l.map(|l| l.p99).into()),
                ("max_ms".into(), l.map(|l| l.max).into()),
            ];
            // With --server-pid: the server tree's memory and process count (sshd forks per
            // connection), so held pre-auth connections show their cost over time.
            if a.common.server_pid.is_some() {
                let g = |c: &AtomicU64| match c.load(Ordering::Relaxed) {
                    u64::MAX => Json::Null,
                    v => v.into(),
                };
                fields.push(("server_rss".into(), g(&server.rss)));
                fields.push(("server_pss".into(), g(&server.pss)));
                fields.push(("server_processes".into(), g(&server.processes)));
            }
            fields.push(("attack".into(), Json::Obj(stats.fields())));
            let mut line = String::new();
            Json::Obj(fields).render(&mut line);
            writeln!(out, "{line}").and_then(|_| out.flush()).map_err(|e| e.to_string())?;
            sec_hist.reset();
            sec_failed = 0;
            sec_skipped = 0;
            second += 1;
        }
        if finished {
            for _ in eng.close_all() {
                *failures.entry(FailKind::Timeout.label()).or_default() += 1;
            }
            return Ok(Legit { total, failures, started });
        }
    }
}

/// spray and kex-flood: full client connections on the engine, `concurrency` in flight.
fn engine_attack(
    a: &AttackArgs,
    cfg: Arc<sshfront::transport::TransportConfig>,
    stats: &AttackStats,
    stop: &AtomicBool,
    end: Instant,
) -> Result<(), String> {
    let plan = Arc::new(Plan {
        user: a.common.user.clone(),
        auth: match a.mode {
            AttackMode::Spray => AuthMethod::Password(a.attack_password.clone()),
            _ => AuthMethod::None,
        },
        goal: Goal::Handshake { channel: false },
    });
    let timeout = Duration::from_secs_f64(a.common.timeout);
    let mut eng = Engine::new(cfg, plan, a.common.addr, timeout).map_err(|e| e.to_string())?;
    eng.set_bind(a.bind);
    let conc = a.concurrency as usize;
    let mut budget = ConnectBudget::new(a.connect_rate);
    while !stop.load(Ordering::Relaxed) && Instant::now() < end {
        let mut opened = 0;
        let mut failed = false;
        while eng.len() < conc && opened < REOPEN_PER_TURN && budget.take(Instant::now()) {
            opened += 1;
            AttackStats::add(&stats.started);
            if let Err(k) = eng.open(Instant::now()) {
                stats.connect_failed(&k);
                failed = true;
                break;
            }
        }
        stats.open.store(eng.len() as u64, Ordering::Relaxed);
        if failed {
            std::thread::sleep(Duration::from_millis(1));
        }
        for f in eng.turn(Duration::from_millis(5)) {
            stats.finished(&f);
        }
    }
    eng.close_all();
    stats.open.store(0, Ordering::Relaxed);
    Ok(())
}

/// A pre-auth connection driven by hand: it sends `script` (all at once, or a byte per tick).
struct RawConn {
    sock: TcpStream,
    sent: usize,
    next_send: Instant,
    got_bytes: bool,
}

/// The bytes a pre-auth attacker sends: a version line, then (slowloris) the start of a
/// binary packet that never completes.
fn script(mode: AttackMode) -> Vec<u8> {
    let mut s = b"SSH-2.0-bench_attack\r\n".to_vec();
    if mode == AttackMode::Slowloris {
        // packet_length 32000 (within every server's limit), padding_length 4, KEXINIT, then
        // zeros, one byte at a time; the packet never completes.
        s.extend_from_slice(&32000u32.to_be_bytes());
        s.extend_from_slice(&[4, 20]);
        s.resize(s.len() + 1018, 0);
    }
    s
}

/// preauth-idle and slowloris: `concurrency` connections kept open (reopened when the server
/// drops them) until the end.
fn raw_attack(
    a: &AttackArgs,
    stats: &AttackStats,
    stop: &AtomicBool,
    end: Instant,
) -> Result<(), String> {
    let script = script(a.mode);
    let dribble = Duration::from_millis(a.dribble_ms);
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut events = Events::with_capacity(1024);
    let mut conns: Slab<RawConn> = Slab::new();
    let conc = a.concurrency as usize;
    let mut buf = vec![0u8; 16 * 1024];
    let mut opened_total = 0u64;
    let mut budget = ConnectBudget::new(a.connect_rate);
    while !stop.load(Ordering::Relaxed) && Instant::now() < end {
        let now = Instant::now();
        let mut opened = 0;
        while conns.len() < conc && opened < REOPEN_PER_TURN && budget.take(now) {
            opened += 1;
            AttackStats::add(&stats.started);
            let mut sock = match connect_from(Some(a.bind), a.common.addr) {
                Ok(s) => s,
                Err(e) => {
                    stats.connect_failed(&classify(&e));
                    break;
                }
            };
            let entry = conns.vacant_entry();
            if poll.registry().register(&mut sock, Token(entry.key()), Interest::READABLE).is_err()
            {
                AttackStats::add(&stats.other);
                continue;
            }
            // Stagger the dribble so the connections do not write in lockstep.
            let stagger = dribble.mul_f64((opened_total % 97) as f64 / 97.0);
            opened_total += 1;
            entry.insert(RawConn { sock, sent: 0, next_send: now + stagger, got_bytes: false });
        }
        stats.open.store(conns.len() as u64, Ordering::Relaxed);
        if let Err(e) = poll.poll(&mut events, Some(Duration::from_millis(10))) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(format!("poll: {e}"));
            }
        }
        let mut dead: Vec<(usize, Option<FailKind>)> = Vec::new();
        for ev in events.iter() {
            let key = ev.token().0;
            let Some(c) = conns.get_mut(key) else { continue };
            loop {
                match c.sock.read(&mut buf) {
                    Ok(0) => {
                        dead.push((key, None));
                        break;
                    }
                    Ok(_) => c.got_bytes = true,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        dead.push((key, Some(classify(&e))));
                        break;
                    }
                }
            }
        }
        let now = Instant::now();
        for (key, c) in conns.iter_mut() {
            if c.sent >= script.len() || now < c.next_send {
                continue;
            }
            let upto = match a.mode {
                AttackMode::Slowloris => c.sent + 1,
                _ => script.len(),
            };
            match c.sock.write(&script[c.sent..upto]) {
                Ok(n) => c.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
                Err(e) => dead.push((key, Some(classify(&e)))),
            }
            c.next_send = now + dribble;
        }
        dead.sort_unstable_by_key(|d| d.0);
        dead.dedup_by_key(|d| d.0);
        for (key, why) in dead {
            let Some(mut c) = conns.try_remove(key) else { continue };
            let _ = poll.registry().deregister(&mut c.sock);
            match why {
                Some(FailKind::Refused) => AttackStats::add(&stats.connect_errors),
                _ if !c.got_bytes => AttackStats::add(&stats.refused_at_accept),
                _ => AttackStats::add(&stats.disconnected),
            }
        }
    }
    stats.open.store(0, Ordering::Relaxed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_start_with_a_version_line() {
        let idle = script(AttackMode::PreauthIdle);
        assert_eq!(idle, b"SSH-2.0-bench_attack\r\n");
        let slow = script(AttackMode::Slowloris);
        assert!(slow.starts_with(&idle));
        // The packet it announces is longer than what it ever sends.
        assert_eq!(slow.len(), idle.len() + 4 + 2 + 1018);
    }

    #[test]
    fn connect_budget_holds_the_rate() {
        let mut b = ConnectBudget::new(100);
        let t0 = b.t0;
        assert!(b.take(t0), "one connect is always allowed at the start");
        assert!(!b.take(t0));
        let later = t0 + Duration::from_millis(100);
        let n = (0..1000).filter(|_| b.take(later)).count();
        assert_eq!(n, 9, "10 in the first 100 ms, one already used");
        let mut free = ConnectBudget::new(0);
        assert!((0..1000).all(|_| free.take(t0)));
    }

    #[test]
    fn stats_render_every_counter() {
        let s = AttackStats::default();
        AttackStats::add(&s.refused_at_accept);
        let mut out = String::new();
        Json::Obj(s.fields()).render(&mut out);
        assert!(out.contains("\"refused_at_accept\":1"), "{out}");
        assert!(out.contains("\"auth_failures\":0"), "{out}");
    }
}
