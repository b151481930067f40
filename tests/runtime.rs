//! The real binary under load and abuse on 127.0.0.1, driven by sshfront's own client core:
//! many concurrent handshakes, the crypto queue bound, malformed input beside a healthy
//! connection, SIGTERM drain and SIGHUP host-key reload.
// Tests run real processes and measure bounded waits: clocks and std sockets are fine here.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use common::sshclient::{client_config, concurrent_handshakes, Outcome, TestClient};
use common::Server;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

fn count(outcomes: &[Outcome], f: impl Fn(&Outcome) -> bool) -> usize {
    outcomes.iter().filter(|o| f(o)).count()
}

#[test]
fn five_hundred_concurrent_handshakes_all_complete() {
    let server = Server::start(&["--max-connections", "2000"]);
    let outcomes = concurrent_handshakes(server.addr, 500, true, Duration::from_secs(60));
    let ok = count(&outcomes, |o| *o == Outcome::ServiceAccepted);
    let bad: Vec<_> = outcomes.iter().filter(|o| **o != Outcome::ServiceAccepted).take(5).collect();
    assert_eq!(ok, 500, "failures (first 5): {bad:?}\n{}", server.stderr());
}

#[test]
fn a_full_crypto_queue_refuses_the_excess_cleanly() {
    let server = Server::start(&[
        "--workers",
        "1",
        "--crypto-threads",
        "1",
        "--crypto-queue",
        "1",
        "--max-connections",
        "2000",
    ]);
    // All 300 KEX inits arrive together: one job runs, one waits in the pool, 64 wait in the
    // worker; the rest must be refused with DISCONNECT 12, not left hanging.
    let outcomes = concurrent_handshakes(server.addr, 300, true, Duration::from_secs(60));
    let ok = count(&outcomes, |o| *o == Outcome::ServiceAccepted);
    let refused = count(&outcomes, |o| *o == Outcome::Disconnected(12));
    let other: Vec<_> = outcomes
        .iter()
        .filter(|o| !matches!(o, Outcome::ServiceAccepted | Outcome::Disconnected(12)))
        .take(5)
        .collect();
    assert!(other.is_empty(), "unexpected outcomes: {other:?}");
    assert!(refused > 0, "expected refusals with a queue of 1 (ok = {ok})");
    assert!(ok > 0, "some handshakes must still complete");
    assert_eq!(ok + refused, 300);
}

#[test]
fn malformed_input_gets_its_disconnect_and_spares_a_healthy_connection() {
    let server = Server::start(&[]);
    let cfg = Arc::new(client_config());
    let mut healthy = TestClient::connect(server.addr, cfg.clone()).unwrap();
    // The healthy one finishes its key exchange first and waits.
    let done = healthy
        .run_until(Duration::from_secs(20), &mut || {}, &|c| c.conn.transport().is_established());
    assert_eq!(done, Outcome::ServiceAccepted);

    // Garbage after a valid version line; an oversize packet length.
    for bytes in [
        b"SSH-2.0-x\r\n\x00\x00\x00\x00garbage".to_vec(),
        b"SSH-2.0-x\r\n\xff\xff\xff\xf0\x04".to_vec(),
    ] {
        let mut bad = TestClient::connect(server.addr, cfg.clone()).unwrap();
        bad.sock.write_all(&bytes).unwrap();
        // Our own core is not used for sending here; read the server's reply with a raw core
        // that expects the DISCONNECT in plaintext (before NEWKEYS).
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            let mut buf = [0u8; 4096];
            match std::io::Read::read(&mut bad.sock, &mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
        // Plaintext DISCONNECT with reason 2 somewhere after the server's KEXINIT.
        let needle = [1u8, 0, 0, 0, 2];
        assert!(got.windows(5).any(|w| w == needle), "no DISCONNECT(2) in {} bytes", got.len());
    }

    // A bad MAC after the key exchange: DISCONNECT 5, decrypted by our client core.
    let mut bad = TestClient::connect(server.addr, cfg.clone()).unwrap();
    let r = bad
        .run_until(Duration::from_secs(20), &mut || {}, &|c| c.conn.transport().is_established());
    assert_eq!(r, Outcome::ServiceAccepted);
    bad.conn.send(&[2, 0, 0, 0, 1, b'x']).unwrap();
    let mut out = Vec::new();
    bad.conn.poll_transmit(&mut out);
    let last = out.len() - 1;
    out[last] ^= 0x55;
    bad.sock.write_all(&out).unwrap();
    let r = bad.run_until(Duration::from_secs(10), &mut || {}, &|_| false);
    assert_eq!(r, Outcome::Disconnected(5));

    // The healthy connection is untouched: it gets its service.
    let r = healthy.handshake(Duration::from_secs(10));
    assert_eq!(r, Outcome::ServiceAccepted, "{}", server.stderr());
}

#[test]
fn sigterm_drains_unauthenticated_connections_and_exits_0() {
    let mut server = Server::start(&["--drain-timeout", "5"]);
    let cfg = Arc::new(client_config());
    let mut c = TestClient::connect(server.addr, cfg).unwrap();
    assert_eq!(c.handshake(Duration::from_secs(20)), Outcome::ServiceAccepted);
    server.signal(libc::SIGTERM);
    let r = c.run_until(Duration::from_secs(10), &mut || {}, &|_| false);
    assert_eq!(r, Outcome::Disconnected(11), "unauthenticated: DISCONNECT BY_APPLICATION");
    assert_eq!(server.wait_exit(Duration::from_secs(15)), Some(0), "{}", server.stderr());
}

#[test]
fn sighup_reloads_a_changed_host_key_for_new_connections_only() {
    use sshfront::algo::host_key::{HostKeyPair, KeyKind};
    let dir = common::TempDir::new("reload");
    let key_path = dir.path().join("hostkey");
    let write_key = |text: &str| {
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = key_path.with_extension("tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
        std::fs::rename(&tmp, &key_path).unwrap();
    };
    let (k1, t1) = HostKeyPair::generate(KeyKind::Ed25519).unwrap();
    let (k2, t2) = HostKeyPair::generate(KeyKind::Ed25519).unwrap();
    write_key(&t1);
    let server = Server::start(&["--host-key", key_path.to_str().unwrap()]);
    let cfg = Arc::new(client_config());
    let mut old = TestClient::connect(server.addr, cfg.clone()).unwrap();
    let r = old
        .run_until(Duration::from_secs(20), &mut || {}, &|c| c.conn.transport().is_established());
    assert_eq!(r, Outcome::ServiceAccepted);
    assert_eq!(old.conn.transport().server_host_key(), Some(k1.public_blob()));

    write_key(&t2);
    server.signal(libc::SIGHUP);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut seen_new = false;
    while std::time::Instant::now() < deadline && !seen_new {
        let mut c = TestClient::connect(server.addr, cfg.clone()).unwrap();
        assert_eq!(c.handshake(Duration::from_secs(20)), Outcome::ServiceAccepted);
        seen_new = c.conn.transport().server_host_key() == Some(k2.public_blob());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(seen_new, "new connections present the reloaded key\n{}", server.stderr());
    // The connection that started before the reload is still up and working.
    assert_eq!(old.handshake(Duration::from_secs(10)), Outcome::ServiceAccepted);
}

#[test]
fn max_per_source_closes_the_excess_before_any_byte_and_frees_slots() {
    use std::io::Read;
    let server = Server::start(&["--max-per-source", "2"]);
    let cfg = Arc::new(client_config());
    let mut a = TestClient::connect(server.addr, cfg.clone()).unwrap();
    let mut b = TestClient::connect(server.addr, cfg.clone()).unwrap();
    assert_eq!(a.handshake(Duration::from_secs(20)), Outcome::ServiceAccepted);
    assert_eq!(b.handshake(Duration::from_secs(20)), Outcome::ServiceAccepted);
    // A third from 127.0.0.1 is closed without a banner.
    let mut c = std::net::TcpStream::connect(server.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(c.read(&mut buf).unwrap_or(0), 0, "closed before any SSH byte");
    // Closing one frees its slot.
    drop(a);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut d = TestClient::connect(server.addr, cfg.clone()).unwrap();
        if d.handshake(Duration::from_secs(5)) == Outcome::ServiceAccepted {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "slot never came back\n{}", server.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(b.handshake(Duration::from_secs(1)), Outcome::ServiceAccepted);
    assert!(server.stderr().contains("--max-per-source 2 reached"));
}
