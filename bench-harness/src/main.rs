//! bench-harness: drives an SSH server (sshfront, sshd, russh) with sshfront's client role on
//! mio and reports rates, latency percentiles, failures and CPU / memory per operation.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod attack;
mod cli;
mod driver;
mod floor;
mod procstat;
mod proto;
mod report;

use clap::Parser;
use cli::{AuthKind, BulkArgs, Cli, Cmd, Common, HandshakeArgs, IdleArgs, TargetKind};
use driver::{Engine, Finished};
use hdrhistogram::Histogram;
use proto::{AuthMethod, FailKind, Goal, Phase, Plan, Target};
use report::{Cpu, Report};
use sshfront::algo::host_key::{HostKeyAlg, HostKeyPair};
use sshfront::algo::kex::gex::GexGroups;
use sshfront::algo::{cipher, kex, mac};
use sshfront::transport::{config as c, TransportConfig};
use std::collections::BTreeMap;
use std::io::Read as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let cli = Cli::parse();
    procstat::raise_nofile();
    let res = match &cli.cmd {
        Cmd::Handshake(a) => run_handshake(a).map(|r| (r, a.common.json)),
        Cmd::Bulk(a) => run_bulk(a).map(|r| (r, a.common.json)),
        Cmd::Idle(a) => run_idle(a).map(|r| (r, a.common.json)),
        Cmd::Crypto(a) => floor::run(a).map(|r| (r, a.json)),
        Cmd::Attack(a) => match attack::run(a) {
            Ok(()) => return,
            Err(e) => Err(e),
        },
    };
    match res {
        Ok((r, true)) => println!("{}", r.json()),
        Ok((r, false)) => print!("{}", r.text()),
        Err(e) => {
            eprintln!("bench-harness: {e}");
            std::process::exit(2);
        }
    }
}

fn split_list<T>(list: &str, what: &str, f: impl Fn(&str) -> Option<T>) -> Result<Vec<T>, String> {
    let v: Vec<T> = list
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|n| f(n).ok_or_else(|| format!("unknown {what}: {n}")))
        .collect::<Result<_, _>>()?;
    if v.is_empty() {
        return Err(format!("empty {what} list"));
    }
    Ok(v)
}

pub(crate) fn transport_config(a: &Common) -> Result<TransportConfig, String> {
    Ok(TransportConfig {
        software_version: "sshfront_bench".into(),
        comment: None,
        kex: split_list(&a.kex, "kex", kex::by_name)?,
        host_key_algs: split_list(
            &a.host_key_algorithms,
            "host key algorithm",
            HostKeyAlg::from_name,
        )?,
        ciphers: split_list(&a.ciphers, "cipher", cipher::by_name)?,
        macs: split_list(&a.macs, "mac", mac::by_name)?,
        compression: vec![c::COMPRESSION_NONE],
        host_keys: Vec::new(),
        gex_groups: Arc::new(GexGroups::builtin()),
        rekey_bytes: None,
        rekey_interval: None,
        kex_timeout: c::DEFAULT_KEX_TIMEOUT,
        max_held_bytes: c::DEFAULT_MAX_HELD_BYTES,
        accept_1_99: false,
        kexguess2: true,
        server_sig_algs: sshfront::transport::config::default_server_sig_algs(),
    })
}

pub(crate) fn auth_method(a: &Common) -> Result<AuthMethod, String> {
    Ok(match a.auth {
        AuthKind::None => AuthMethod::None,
        AuthKind::Password => AuthMethod::Password(a.password.clone().unwrap_or_default()),
        AuthKind::Publickey => {
            let path = a.key.as_ref().ok_or("--key missing")?;
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--key {}: {e}", path.display()))?;
            let key = HostKeyPair::from_openssh(&text)
                .map_err(|e| format!("--key {}: {e}", path.display()))?;
            if !key.algorithms().contains(&HostKeyAlg::Ed25519) {
                return Err("--key must be an ed25519 key".into());
            }
            AuthMethod::PublicKey(Arc::new(key))
        }
    })
}

fn secs(v: f64) -> Duration {
    Duration::from_secs_f64(v)
}

/// Server tree CPU seconds now (None without --server-pid or if it is gone).
fn server_cpu(pid: Option<u32>) -> Option<f64> {
    pid.and_then(procstat::tree_cpu_seconds)
}

/// Waits (≤ 3 s) until the server tree is back to `n0` processes, so per-connection processes
/// that are exiting get reaped and their CPU counted.
fn settle(pid: Option<u32>, n0: usize) {
    let Some(pid) = pid else { return };
    let until = Instant::now() + Duration::from_secs(3);
    while procstat::tree(pid).len() > n0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(50));
}

fn put_common(r: &mut Report, mode: &str, a: &Common) {
    r.put("mode", mode);
    r.put("label", a.label.as_str());
    r.put("addr", a.addr.to_string());
    r.put(
        "auth",
        match a.auth {
            AuthKind::None => "none (KEX + SERVICE_ACCEPT only)",
            AuthKind::Password => "password",
            AuthKind::Publickey => "publickey ssh-ed25519",
        },
    );
    r.put("kex", a.kex.as_str());
    r.put("host_key_algorithms", a.host_key_algorithms.as_str());
    r.put("ciphers", a.ciphers.as_str());
    r.put("threads", u64::from(a.threads));
}

/// One handshake thread's tallies.
struct Tally {
    ok: u64,
    hist: Histogram<u64>,
    failures: BTreeMap<String, u64>,
    last: Option<Instant>,
}

impl Tally {
    fn new() -> Tally {
        Tally { ok: 0, hist: report::new_histogram(), failures: BTreeMap::new(), last: None }
    }

    fn fail(&mut self, k: &FailKind) {
        *self.failures.entry(k.label()).or_default() += 1;
    }

    fn record(&mut self, f: &Finished) {
        match (&f.sess.phase, f.sess.done_at) {
            (Phase::Done, Some(at)) => {
                self.ok += 1;
                let us = at.duration_since(f.started).as_micros().max(1) as u64;
                let _ = self.hist.record(us.min(600_000_000));
                self.last = Some(self.last.map_or(at, |l| l.max(at)));
            }
            _ => {
                self.fail(f.sess.fail.as_ref().unwrap_or(&FailKind::Protocol("unfinished".into())))
            }
        }
    }

    fn merge(&mut self, o: Tally) {
        self.ok += o.ok;
        let _ = self.hist.add(&o.hist);
        for (k, v) in o.failures {
            *self.failures.entry(k).or_default() += v;
        }
        self.last = match (self.last, o.last) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

fn handshake_thread(
    cfg: Arc<TransportConfig>,
    plan: Arc<Plan>,
    a: HandshakeArgs,
    conc: usize,
    count: u64,
    t0: Instant,
) -> Result<Tally, String> {
    let timeout = secs(a.common.timeout);
    let mut eng = Engine::new(cfg, plan, a.common.addr, timeout).map_err(|e| e.to_string())?;
    let mut t = Tally::new();
    let end = t0 + secs(a.duration);
    let hard_end = end + timeout + Duration::from_secs(1);
    let mut started = 0u64;
    loop {
        let now = Instant::now();
        let mut refused = false;
        while eng.len() < conc && now < end && started < count {
            started += 1;
            if let Err(k) = eng.open(now) {
                t.fail(&k);
                refused = true;
            }
        }
        if eng.len() == 0 && (now >= end || started >= count) {
            break;
        }
        if now >= hard_end {
            for f in eng.close_all() {
                let _ = f;
                t.fail(&FailKind::Timeout);
            }
            break;
        }
        if refused {
            std::thread::sleep(Duration::from_millis(1));
        }
        for f in eng.turn(Duration::from_millis(5)) {
            t.record(&f);
        }
    }
    Ok(t)
}

fn run_handshake(a: &HandshakeArgs) -> Result<Report, String> {
    cli::validate(&a.common)?;
    cli::check_secs("--duration", a.duration)?;
    let cfg = Arc::new(transport_config(&a.common)?);
    let plan = Arc::new(Plan {
        user: a.common.user.clone(),
        auth: auth_method(&a.common)?,
        goal: match &a.exec {
            Some(cmd) => Goal::Exec(cmd.clone()),
            None => Goal::Handshake { channel: a.channel },
        },
    });
    let pid = a.common.server_pid;
    let n0 = pid.map_or(0, |p| procstat::tree(p).len());
    let s0 = server_cpu(pid);
    let h0 = procstat::self_cpu_seconds();
    let t0 = Instant::now();
    let threads = a.common.threads as usize;
    let conc = a.concurrency as usize;
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let share = conc / threads + usize::from(i < conc % threads);
            let count = a.count / threads as u64 + u64::from((i as u64) < a.count % threads as u64);
            let (cfg, plan, a) = (cfg.clone(), plan.clone(), a.clone());
            std::thread::spawn(move || handshake_thread(cfg, plan, a, share, count, t0))
        })
        .collect();
    let mut tally = Tally::new();
    for h in handles {
        tally.merge(h.join().map_err(|_| "handshake thread panicked".to_string())??);
    }
    let elapsed = tally.last.map_or(t0.elapsed(), |l| l.duration_since(t0)).as_secs_f64();
    let h1 = procstat::self_cpu_seconds();
    settle(pid, n0);
    let s1 = server_cpu(pid);

    let mut r = Report::default();
    put_common(&mut r, "handshake", &a.common);
    r.put("concurrency", u64::from(a.concurrency));
    r.put(
        "channel",
        match &a.exec {
            Some(cmd) => format!("exec {cmd}, until close"),
            None if a.channel => "session open+close".into(),
            None => "none".into(),
        },
    );
    r.put("duration_s", elapsed);
    r.put("ok", tally.ok);
    let failed: u64 = tally.failures.values().sum();
    r.put("failed", failed);
    r.put_failures(&tally.failures);
    r.put("handshakes_per_s", if elapsed > 0.0 { tally.ok as f64 / elapsed } else { 0.0 });
    r.put_latency(report::latency(&tally.hist));
    let cpu = Cpu { server_s: s0.zip(s1).map(|(a, b)| b - a), harness_s: h1 - h0 };
    r.put_cpu(cpu, tally.ok as f64, 1000.0, "cpu_ms_per_handshake");
    // Last: the CDF is long, and the fields above stay readable at the head of a log line.
    r.put("latency_cdf_ms", report::cdf(&tally.hist));
    Ok(r)
}

/// A TCP sink on 127.0.0.1: counts and drops what it receives.
struct Sink {
    addr: SocketAddr,
    bytes: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Sink {
    fn start() -> Result<Sink, String> {
        let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("sink: {e}"))?;
        l.set_nonblocking(true).map_err(|e| e.to_string())?;
        let addr = l.local_addr().map_err(|e| e.to_string())?;
        let bytes = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (b, s) = (bytes.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut workers = Vec::new();
            while !s.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut sock, _)) if workers.len() < 10_000 => {
                        let (b, s) = (b.clone(), s.clone());
                        let _ = sock.set_nonblocking(false);
                        let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
                        workers.push(std::thread::spawn(move || {
                            let mut buf = vec![0u8; 256 * 1024];
                            while !s.load(Ordering::Relaxed) {
                                match sock.read(&mut buf) {
                                    Ok(0) => break,
                                    Ok(n) => {
                                        b.fetch_add(n as u64, Ordering::Relaxed);
                                    }
                                    Err(e)
                                        if matches!(
                                            e.kind(),
                                            std::io::ErrorKind::WouldBlock
                                                | std::io::ErrorKind::TimedOut
                                                | std::io::ErrorKind::Interrupted
                                        ) => {}
                                    Err(_) => break,
                                }
                            }
                        }));
                    }
                    Ok(_) => {}
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            for w in workers {
                let _ = w.join();
            }
        });
        Ok(Sink { addr, bytes, stop, thread })
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

fn run_bulk(a: &BulkArgs) -> Result<Report, String> {
    cli::validate(&a.common)?;
    cli::check_secs("--max-time", a.max_time)?;
    if let Some(s) = a.sink {
        if !s.ip().is_loopback() {
            return Err("--sink: only loopback targets".into());
        }
    }
    let sink = match (a.target, a.sink) {
        (TargetKind::Direct, None) => Some(Sink::start()?),
        _ => None,
    };
    let target = match a.target {
        TargetKind::Exec => Target::Exec(a.command.clone()),
        TargetKind::Direct => {
            let addr = a.sink.or(sink.as_ref().map(|s| s.addr)).ok_or("no sink")?;
            Target::Direct(addr.ip().to_string(), addr.port())
        }
    };
    let res = bulk_inner(a, target, sink.as_ref());
    if let Some(s) = sink {
        s.stop();
    }
    res
}

fn bulk_inner(a: &BulkArgs, target: Target, sink: Option<&Sink>) -> Result<Report, String> {
    let cfg = Arc::new(transport_config(&a.common)?);
    let plan = Arc::new(Plan {
        user: a.common.user.clone(),
        auth: auth_method(&a.common)?,
        goal: Goal::Bulk { bytes: a.bytes, target },
    });
    let k = a.connections as usize;
    let pid = a.common.server_pid;
    let n0 = pid.map_or(0, |p| procstat::tree(p).len());
    // Per-connection data timeout: the whole run's bound.
    let mut eng =
        Engine::new(cfg, plan, a.common.addr, secs(a.max_time)).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let mut failures = BTreeMap::new();
    let mut done: Vec<Finished> = Vec::new();
    for _ in 0..k {
        if let Err(e) = eng.open(Instant::now()) {
            *failures.entry(e.label()).or_default() += 1;
        }
    }
    // CPU is sampled once every channel carries data, so the handshakes are not counted.
    let mut cpu0: Option<(Option<f64>, f64)> = None;
    let hard_end = t0 + secs(a.max_time) + Duration::from_secs(2);
    while eng.len() > 0 && Instant::now() < hard_end {
        if cpu0.is_none() && eng.data_started() + done.len() + failures.len() >= k {
            cpu0 = Some((server_cpu(pid), procstat::self_cpu_seconds()));
        }
        done.extend(eng.turn(Duration::from_millis(5)));
    }
    done.extend(eng.close_all());
    let h1 = procstat::self_cpu_seconds();
    let t_end = Instant::now();
    // Let the sink see the last bytes (bounded).
    let expect = a.bytes * k as u64;
    if let Some(s) = sink {
        let until = Instant::now() + Duration::from_secs(2);
        while s.bytes.load(Ordering::Relaxed) < expect && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    settle(pid, n0);
    let s1 = server_cpu(pid);

    let mut ok = 0u64;
    let mut per_conn = Vec::new();
    let (mut first, mut last): (Option<Instant>, Option<Instant>) = (None, None);
    let mut total = 0u64;
    for f in &done {
        match (&f.sess.phase, f.sess.data_start, f.sess.done_at) {
            (Phase::Done, Some(s), Some(e)) => {
                ok += 1;
                total += f.sess.sent;
                let dt = e.duration_since(s).as_secs_f64();
                per_conn.push(if dt > 0.0 { f.sess.sent as f64 / dt / 1e6 } else { 0.0 });
                first = Some(first.map_or(s, |x| x.min(s)));
                last = Some(last.map_or(e, |x| x.max(e)));
            }
            _ => {
                let k = f.sess.fail.clone().unwrap_or(FailKind::Protocol("unfinished".into()));
                *failures.entry(k.label()).or_default() += 1;
            }
        }
    }
    let span = match (first, last) {
        (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
        _ => t_end.duration_since(t0).as_secs_f64(),
    };
    let mut r = Report::default();
    put_common(&mut r, "bulk", &a.common);
    r.put("macs", a.common.macs.as_str());
    r.put(
        "target",
        match a.target {
            TargetKind::Direct => "direct-tcpip".to_string(),
            TargetKind::Exec => format!("exec {}", a.command),
        },
    );
    r.put("connections", k as u64);
    r.put("bytes_per_connection", a.bytes);
    r.put("ok", ok);
    r.put("failed", failures.values().sum::<u64>());
    r.put_failures(&failures);
    r.put("data_seconds", span);
    r.put("total_mb_per_s", if span > 0.0 { total as f64 / span / 1e6 } else { 0.0 });
    per_conn.sort_by(f64::total_cmp);
    r.put("per_connection_mb_per_s_min", per_conn.first().copied());
    r.put("per_connection_mb_per_s_max", per_conn.last().copied());
    if let Some(s) = sink {
        let got = s.bytes.load(Ordering::Relaxed);
        r.put("sink_bytes", got);
        r.put("sink_complete", report::Json::Bool(got == expect));
    }
    let (s0, h0) = cpu0.unwrap_or((None, h1));
    let cpu = Cpu { server_s: s0.zip(s1).map(|(a, b)| b - a), harness_s: h1 - h0 };
    r.put_cpu(cpu, total as f64 / 1e9, 1.0, "core_s_per_gb");
    Ok(r)
}

fn run_idle(a: &IdleArgs) -> Result<Report, String> {
    cli::validate(&a.common)?;
    cli::check_secs("--max-time", a.max_time)?;
    cli::check_secs("--hold", a.hold)?;
    cli::check_secs("--settle", a.settle)?;
    let cfg = Arc::new(transport_config(&a.common)?);
    let plan = Arc::new(Plan {
        user: a.common.user.clone(),
        auth: auth_method(&a.common)?,
        goal: Goal::Idle,
    });
    let pid = a.common.server_pid;
    let mem0 = pid.and_then(procstat::tree_memory);
    let own0 = procstat::tree_memory(std::process::id());
    let n = a.connections as usize;
    let mut eng =
        Engine::new(cfg, plan, a.common.addr, secs(a.common.timeout)).map_err(|e| e.to_string())?;
    if a.sources > 0 {
        // 127.0.0.2, 127.0.0.3, …: each source has its own ephemeral ports to the server.
        eng.set_binds(
            (0..a.sources).map(|i| IpAddr::V4(Ipv4Addr::from(0x7f00_0002 + i))).collect(),
        );
    }
    let mut t = Tally::new();
    let t0 = Instant::now();
    let end = t0 + secs(a.max_time);
    let mut opened = 0usize;
    let mut failed = 0usize;
    while Instant::now() < end {
        let held = eng.holding();
        while opened < n && eng.len() - held < a.ramp as usize {
            opened += 1;
            if let Err(k) = eng.open(Instant::now()) {
                t.fail(&k);
                failed += 1;
            }
        }
        if held + failed >= n {
            break;
        }
        for f in eng.turn(Duration::from_millis(5)) {
            failed += 1;
            t.record(&f);
        }
    }
    let setup_s = t0.elapsed().as_secs_f64();
    // Let the server settle (per-connection processes finish starting), still serving events.
    let settle_end = Instant::now() + secs(a.settle);
    while Instant::now() < settle_end {
        for f in eng.turn(Duration::from_millis(10)) {
            t.record(&f);
        }
    }
    let held = eng.holding();
    let mem1 = pid.and_then(procstat::tree_memory);
    let own1 = procstat::tree_memory(std::process::id());
    let procs = pid.map(|p| procstat::tree(p).len() as u64);
    let hold_end = Instant::now() + secs(a.hold);
    while Instant::now() < hold_end {
        for f in eng.turn(Duration::from_millis(10)) {
            t.record(&f);
        }
    }
    let still = eng.holding();
    eng.close_all();

    let mut r = Report::default();
    put_common(&mut r, "idle", &a.common);
    r.put("connections", n as u64);
    r.put("sources", u64::from(a.sources.max(1)));
    r.put("held", held as u64);
    r.put("held_at_end", still as u64);
    r.put("failed", t.failures.values().sum::<u64>());
    r.put_failures(&t.failures);
    r.put("setup_seconds", setup_s);
    r.put("server_processes", procs);
    let per = |m0: Option<(u64, u64)>, m1: Option<(u64, u64)>, pss: bool| {
        m0.zip(m1).and_then(|(x, y)| {
            let (x, y) = if pss { (x.1, y.1) } else { (x.0, y.0) };
            (held > 0).then(|| (y as f64 - x as f64) / held as f64)
        })
    };
    r.put("server_rss_before", mem0.map(|m| m.0));
    r.put("server_rss_after", mem1.map(|m| m.0));
    r.put("server_rss_bytes_per_conn", per(mem0, mem1, false));
    r.put("server_pss_bytes_per_conn", per(mem0, mem1, true));
    r.put("harness_rss_bytes_per_conn", per(own0, own1, false));
    Ok(r)
}
