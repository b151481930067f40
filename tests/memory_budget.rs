//! `--max-buffer-memory` under pressure, driven by the stock OpenSSH client on loopback: a
//! window flood into a backend that never reads (a stalled backend), a client that stops
//! reading while a backend streams to it, and a healthy connection beside them. The accounted
//! memory (buffers, channel data, held-back and outgoing packets) must never pass the limit,
//! as the server's own peak gauge in /metrics reports it, and the healthy connection must
//! still carry its bytes.
// Tests run real processes and measure bounded waits: clocks and std sockets are fine here.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use common::gateway::{
    connect_retry, free_port, random_bytes, round_trip, run, EchoServer, Fixture, USER,
};
use common::Server;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const LIMIT_BYTES: u64 = 6 << 20;
const LIMIT: Duration = Duration::from_secs(60);

fn dest() -> String {
    format!("{USER}@127.0.0.1")
}

fn gauge(body: &str, name: &str) -> u64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{body}"))
}

/// A backend that accepts and holds its connections without reading (a stalled backend), or
/// writes to each until it fails (a stream nobody reads). Stops after `limit`.
fn backend(stream: bool, stop: Arc<AtomicBool>) -> (u16, JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().unwrap().port();
    l.set_nonblocking(true).unwrap();
    let t = std::thread::spawn(move || {
        let deadline = Instant::now() + LIMIT;
        let mut held = Vec::new();
        let mut writers = Vec::new();
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            match l.accept() {
                Ok((mut c, _)) if stream => {
                    let stop = stop.clone();
                    writers.push(std::thread::spawn(move || {
                        let _ = c.set_nonblocking(false);
                        let _ = c.set_write_timeout(Some(Duration::from_millis(500)));
                        let chunk = random_bytes(64 * 1024, 9);
                        let mut sent = 0usize;
                        // Bounded: 64 MiB or the stop flag; a timed-out write just retries.
                        while !stop.load(Ordering::Relaxed) && sent < 64 << 20 {
                            match c.write(&chunk) {
                                Ok(0) => break,
                                Ok(n) => sent += n,
                                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                                Err(_) => break,
                            }
                        }
                    }));
                }
                Ok((c, _)) => held.push(c),
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        for w in writers {
            let _ = w.join();
        }
    });
    (port, t)
}

fn ssh_forward(f: &Fixture, server: &Server, local: u16, port: u16) -> Child {
    let mut cmd = f.ssh(server);
    cmd.args(["-N", "-o", "ExitOnForwardFailure=yes", "-L"])
        .arg(format!("127.0.0.1:{local}:127.0.0.1:{port}"))
        .arg(dest())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd.spawn().expect("ssh -L")
}

#[test]
fn floods_stalled_backends_and_non_readers_stay_within_the_budget() {
    let f = Fixture::new();
    let stop = Arc::new(AtomicBool::new(false));
    let (sink, sink_thread) = backend(false, stop.clone());
    let (fire, fire_thread) = backend(true, stop.clone());
    let echo = EchoServer::start();
    let server = f.server(&[
        "--max-buffer-memory",
        "6M",
        "--metrics-listen",
        "127.0.0.1:0",
        "--permit-open",
        &format!("127.0.0.1:{sink}"),
        "--permit-open",
        &format!("127.0.0.1:{fire}"),
        "--permit-open",
        &format!("127.0.0.1:{}", echo.port),
    ]);
    let metrics = server.metrics_addr();

    // Window flood into a backend that never reads: 8 channels, 16 MiB offered each.
    let flood_port = free_port();
    let mut flood_ssh = ssh_forward(&f, &server, flood_port, sink);
    let mut flooders = Vec::new();
    for i in 0..8u64 {
        let mut s = connect_retry(flood_port, Duration::from_secs(20));
        let stop = stop.clone();
        flooders.push(std::thread::spawn(move || {
            s.set_write_timeout(Some(Duration::from_millis(500))).unwrap();
            let chunk = random_bytes(64 * 1024, i + 1);
            let mut sent = 0usize;
            while !stop.load(Ordering::Relaxed) && sent < 16 << 20 {
                match s.write(&chunk) {
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => break,
                }
            }
            s
        }));
    }

    // A client that stops reading while its backends stream to it: 4 channels, then SIGSTOP.
    let quiet_port = free_port();
    let mut quiet_ssh = ssh_forward(&f, &server, quiet_port, fire);
    let quiet: Vec<TcpStream> =
        (0..4).map(|_| connect_retry(quiet_port, Duration::from_secs(20))).collect();
    std::thread::sleep(Duration::from_millis(500));
    let stopped = std::process::Command::new("kill")
        .args(["-STOP", &quiet_ssh.id().to_string()])
        .status()
        .expect("kill -STOP");
    assert!(stopped.success());

    // Wait (bounded) until the pressure has driven the accounted memory well up.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = common::scrape_metrics(metrics);
        if gauge(&body, "sshfront_buffer_memory_peak_bytes") >= LIMIT_BYTES / 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the floods never drove the accounted memory up:\n{body}\n{}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // A healthy connection beside them still logs in and carries its bytes.
    let data = random_bytes(300_000, 77);
    let input = f.path("w-input");
    std::fs::write(&input, &data).unwrap();
    let mut cmd = f.ssh(&server);
    cmd.arg("-W").arg(format!("127.0.0.1:{}", echo.port)).arg(dest());
    let out = run(cmd, Some(&input), LIMIT);
    assert!(
        out.status.success() && out.stdout == data,
        "healthy ssh -W failed beside the floods: status {:?}, {} of {} bytes\n{}\n{}",
        out.status.code(),
        out.stdout.len(),
        data.len(),
        String::from_utf8_lossy(&out.stderr),
        server.stderr()
    );
    // And the flooding connection's own -L still opens new channels once it is asked to.
    let healthy_port = free_port();
    let mut healthy_ssh = ssh_forward(&f, &server, healthy_port, echo.port);
    let back = round_trip(connect_retry(healthy_port, Duration::from_secs(20)), b"still here");
    assert_eq!(back, b"still here", "{}", server.stderr());

    let body = common::scrape_metrics(metrics);
    let peak = gauge(&body, "sshfront_buffer_memory_peak_bytes");
    let limit = gauge(&body, "sshfront_buffer_memory_limit");
    let now = gauge(&body, "sshfront_buffer_memory_bytes");
    eprintln!("accounted memory: now {now}, peak {peak}, limit {limit}");
    assert_eq!(limit, LIMIT_BYTES);
    assert!(peak <= limit, "accounted memory peaked at {peak} > {limit}\n{body}");
    assert!(now <= limit, "accounted memory {now} > {limit}");

    stop.store(true, Ordering::Relaxed);
    for child in [&mut flood_ssh, &mut quiet_ssh, &mut healthy_ssh] {
        let _ = child.kill();
        let _ = child.wait();
    }
    drop(quiet);
    for t in flooders {
        let _ = t.join();
    }
    let _ = sink_thread.join();
    let _ = fire_thread.join();
    let log = server.stderr();
    assert!(!log.contains("panicked"), "{log}");
}
