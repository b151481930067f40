//! Bounded observability against the binary: peer-chosen values never become metric series,
//! and a peer cannot flood the log.
// Tests run real processes and measure bounded waits: clocks and std sockets are fine here.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use common::Server;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A plaintext binary packet (before any NEWKEYS): length, padding length, payload, padding.
fn plain_packet(payload: &[u8]) -> Vec<u8> {
    let mut pad = 8 - (5 + payload.len()) % 8;
    if pad < 4 {
        pad += 8;
    }
    let len = (1 + payload.len() + pad) as u32;
    let mut v = Vec::with_capacity(4 + len as usize);
    v.extend_from_slice(&len.to_be_bytes());
    v.push(pad as u8);
    v.extend_from_slice(payload);
    v.extend(std::iter::repeat_n(0u8, pad));
    v
}

fn string(v: &mut Vec<u8>, s: &[u8]) {
    v.extend_from_slice(&(s.len() as u32).to_be_bytes());
    v.extend_from_slice(s);
}

/// SSH_MSG_DEBUG (4) with always_display set.
fn debug_msg(text: &str) -> Vec<u8> {
    let mut p = vec![4u8, 1];
    string(&mut p, text.as_bytes());
    string(&mut p, b"");
    plain_packet(&p)
}

/// SSH_MSG_DISCONNECT (1) with `code`.
fn disconnect_msg(code: u32) -> Vec<u8> {
    let mut p = vec![1u8];
    p.extend_from_slice(&code.to_be_bytes());
    string(&mut p, b"bye");
    string(&mut p, b"");
    plain_packet(&p)
}

fn series(body: &str, family: &str) -> Vec<String> {
    body.lines().filter(|l| l.starts_with(family)).map(str::to_string).collect()
}

/// Reads what the server sends until `limit` passes or it closes (so our writes are consumed).
fn drain(s: &mut TcpStream, limit: Duration) {
    let deadline = Instant::now() + limit;
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return,
        }
    }
}

#[test]
fn disconnect_codes_chosen_by_peers_do_not_grow_the_metrics() {
    let server = Server::start(&["--metrics-listen", "127.0.0.1:0"]);
    let metrics = server.metrics_addr();
    const N: u32 = 300;
    for i in 0..N {
        let mut s = TcpStream::connect(server.addr).expect("connect");
        let mut out = b"SSH-2.0-codes\r\n".to_vec();
        out.extend(disconnect_msg(1000 + i));
        s.write_all(&out).unwrap();
        drain(&mut s, Duration::from_secs(5));
    }
    // The metrics snapshot is at most about a second old: wait until every close is counted.
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let body = common::scrape_metrics(metrics);
        let other = series(&body, "sshfront_disconnects_total{code=\"other\"");
        if other.iter().any(|l| l.ends_with(&format!(" {N}"))) || Instant::now() > deadline {
            break body;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let lines = series(&body, "sshfront_disconnects_total{");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(
        lines[0],
        format!("sshfront_disconnects_total{{code=\"other\",reason=\"OTHER\"}} {N}")
    );
    let total = body.lines().filter(|l| !l.starts_with('#')).count();
    assert!(total < 400, "{total} series");
}

#[test]
fn twenty_thousand_debug_messages_before_kex_log_a_handful_of_lines() {
    let server = Server::start(&["--metrics-listen", "127.0.0.1:0"]);
    let metrics = server.metrics_addr();
    let mut s = TcpStream::connect(server.addr).expect("connect");
    let local = s.local_addr().unwrap();
    let mut reader = s.try_clone().unwrap();
    let reading = std::thread::spawn(move || drain(&mut reader, Duration::from_secs(60)));
    s.write_all(b"SSH-2.0-chatty\r\n").unwrap();
    let one = debug_msg("look at me \x1b[31m");
    let mut batch = Vec::with_capacity(one.len() * 1000);
    for _ in 0..1000 {
        batch.extend_from_slice(&one);
    }
    for _ in 0..20 {
        s.write_all(&batch).expect("server kept reading");
    }
    s.write_all(&disconnect_msg(11)).unwrap();
    let _ = s.shutdown(std::net::Shutdown::Write);
    reading.join().unwrap();

    let peer = local.to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    let log = loop {
        let log = server.stderr();
        if log.lines().any(|l| l.contains(&peer) && l.contains(" closed: "))
            || Instant::now() > deadline
        {
            break log;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let ours: Vec<&str> = log.lines().filter(|l| l.contains(&peer)).collect();
    let debug_lines = ours.iter().filter(|l| l.contains("peer DEBUG")).count();
    assert!((1..=10).contains(&debug_lines), "{debug_lines} DEBUG lines:\n{}", ours.join("\n"));
    assert!(ours.len() <= 15, "{} lines:\n{}", ours.len(), ours.join("\n"));
    // The escape sequence arrives as `?`, never raw.
    assert!(!log.contains('\x1b'));
    let close = ours.iter().find(|l| l.contains(" closed: ")).expect("close line");
    assert!(close.contains("suppressed_lines="), "{close}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = common::scrape_metrics(metrics);
        let v = series(&body, "sshfront_log_suppressed_total ");
        let n: u64 = v.first().and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0);
        if n >= 19_000 {
            break;
        }
        assert!(Instant::now() < deadline, "suppressed count {n}:\n{body}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
