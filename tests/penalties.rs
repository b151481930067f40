//! Per-source penalties against the binary: a source spraying wrong passwords from 127.0.0.2
//! is refused at accept (before any SSH byte) once its penalty passes `min`, while 127.0.0.1
//! still logs in.
// Tests run real processes and measure bounded waits: clocks and std sockets are fine here.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use common::gateway::{Fixture, PASSWORD, USER};
use common::sshclient::{client_config, Outcome, TestClient};
use sshfront::wire::msg_no;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn put_str(v: &mut Vec<u8>, s: &[u8]) {
    v.extend_from_slice(&(s.len() as u32).to_be_bytes());
    v.extend_from_slice(s);
}

fn password_request(user: &str, password: &str) -> Vec<u8> {
    let mut v = vec![msg_no::USERAUTH_REQUEST];
    put_str(&mut v, user.as_bytes());
    put_str(&mut v, b"ssh-connection");
    put_str(&mut v, b"password");
    v.push(0);
    put_str(&mut v, password.as_bytes());
    v
}

/// A TCP connection to `to` from `from` (any port).
fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let local: SocketAddr = format!("{from}:0").parse().unwrap();
    sock.bind(&local.into()).expect("bind a loopback source address");
    sock.connect_timeout(&to.into(), Duration::from_secs(5)).expect("connect");
    sock.into()
}

/// Steps until a service message arrives (returned) or the connection closes (None).
fn next_reply(c: &mut TestClient, limit: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(m) = c.conn.next_message() {
            if m.first() == Some(&msg_no::USERAUTH_BANNER) {
                continue;
            }
            return Some(m);
        }
        if c.closed.is_some() {
            return None;
        }
        c.step(&mut || {}).ok()?;
    }
    None
}

/// True if the server closed the connection without sending a single byte (EOF or reset; a
/// served connection would have sent its version line).
fn refused_before_any_byte(mut s: TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut b = [0u8; 64];
    matches!(s.read(&mut b), Ok(0) | Err(_))
}

#[test]
fn a_spraying_source_is_refused_at_accept_while_others_log_in() {
    let f = Fixture::new();
    let server = f.server(&[
        "--max-auth-tries",
        "2",
        "--per-source-penalties",
        "authfail:10s noauth:10s min:15s max:60s",
    ]);
    let cfg = Arc::new(client_config());
    let mut sprayed = 0;
    let mut refused = false;
    for _ in 0..20 {
        let sock = connect_from("127.0.0.2", server.addr);
        let mut c = TestClient::from_stream(sock.try_clone().unwrap(), cfg.clone(), None).unwrap();
        match c.handshake(Duration::from_secs(30)) {
            Outcome::ServiceAccepted => {}
            _ => {
                // Closed before the handshake: check it was at accept, with no SSH byte.
                assert!(
                    refused_before_any_byte(connect_from("127.0.0.2", server.addr)),
                    "closed, but not at accept"
                );
                refused = true;
                break;
            }
        }
        for i in 0..2 {
            if c.closed.is_some()
                || c.conn.send(&password_request(USER, &format!("no {i}"))).is_err()
            {
                break;
            }
            let _ = next_reply(&mut c, Duration::from_secs(30));
        }
        sprayed += 1;
        // The penalty report reaches the acceptor asynchronously: give it a moment.
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(refused, "127.0.0.2 never refused after {sprayed} failed logins");
    assert!(sprayed >= 2, "refused before it earned a penalty ({sprayed})");
    // Another source is not affected.
    let mut c = TestClient::connect(server.addr, cfg).unwrap();
    assert_eq!(c.handshake(Duration::from_secs(30)), Outcome::ServiceAccepted);
    c.conn.send(&password_request(USER, PASSWORD)).unwrap();
    let m = next_reply(&mut c, Duration::from_secs(30)).expect("reply");
    assert_eq!(m.first(), Some(&msg_no::USERAUTH_SUCCESS));
    let log = wait_for_log(&server, "refused at accept (penalty: failed authentication)");
    assert!(log.contains("127.0.0.2: refusing connections for"), "{log}");
    assert!(log.contains("refused at accept (penalty: failed authentication)"), "{log}");
}

/// One failed password login from `from` as `user`, then the connection closes.
fn one_failed_login(server: &common::Server, from: &str, user: &str) {
    let cfg = Arc::new(client_config());
    let sock = connect_from(from, server.addr);
    let mut c = TestClient::from_stream(sock, cfg, None).unwrap();
    assert_eq!(c.handshake(Duration::from_secs(30)), Outcome::ServiceAccepted);
    c.conn.send(&password_request(user, "wrong")).unwrap();
    let m = next_reply(&mut c, Duration::from_secs(30)).expect("reply");
    assert_eq!(m.first(), Some(&msg_no::USERAUTH_FAILURE));
}

/// `invaliduser:` applies when no lookup found the user (no password entry, no key file of
/// their own); a known user's wrong password earns only `authfail:`. The peer sees the same
/// USERAUTH_FAILURE in both cases.
#[test]
fn an_invalid_user_earns_the_invaliduser_penalty() {
    let f = Fixture::new();
    let server = f.server(&[
        "--max-auth-tries",
        "2",
        "--per-source-penalties",
        "authfail:1s invaliduser:30s min:15s max:60s",
    ]);
    // A known user's wrong password: 1 s, below min, so 127.0.0.3 is still served.
    one_failed_login(&server, "127.0.0.3", USER);
    std::thread::sleep(Duration::from_millis(300));
    let mut ok = TestClient::from_stream(
        connect_from("127.0.0.3", server.addr),
        Arc::new(client_config()),
        None,
    )
    .unwrap();
    assert_eq!(ok.handshake(Duration::from_secs(30)), Outcome::ServiceAccepted);

    // An unknown user once: 30 s, past min, so 127.0.0.2 is refused at accept.
    one_failed_login(&server, "127.0.0.2", "no-such-user");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if refused_before_any_byte(connect_from("127.0.0.2", server.addr)) {
            break;
        }
        assert!(Instant::now() < deadline, "127.0.0.2 never refused");
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = wait_for_log(&server, "(penalty: attempted authentication by invalid user)");
    assert!(log.contains("(penalty: attempted authentication by invalid user)"), "{log}");
    assert!(!log.contains("127.0.0.3: refusing"), "{log}");
}

/// The server's log once it contains `needle` (bounded wait: lines go through a logger thread).
fn wait_for_log(server: &common::Server, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = server.stderr();
        if log.contains(needle) || Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads the server's version line (true) or sees the connection closed first (false).
fn gets_version_line(mut s: TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut b = [0u8; 64];
    matches!(s.read(&mut b), Ok(n) if n > 0 && b.starts_with(b"SSH-2.0-"))
}

/// Opens a connection and waits until the server has served it (its version line arrived),
/// so it counts as an unauthenticated connection.
fn idle_startup(from: &str, to: SocketAddr) -> TcpStream {
    let s = connect_from(from, to);
    assert!(gets_version_line(s.try_clone().unwrap()), "a startup below the bound is served");
    s
}

#[test]
fn max_startups_and_per_source_max_startups_drop_at_accept() {
    let server = common::Server::start(&["--max-startups", "3", "--per-source-max-startups", "2"]);
    // Two from 127.0.0.2 fill its per-source allowance; a third is dropped at accept.
    let a1 = idle_startup("127.0.0.2", server.addr);
    let _a2 = idle_startup("127.0.0.2", server.addr);
    assert!(!gets_version_line(connect_from("127.0.0.2", server.addr)));
    // 127.0.0.1 takes the third global slot; the fourth connection is dropped, from anyone.
    let _b1 = idle_startup("127.0.0.1", server.addr);
    assert!(!gets_version_line(connect_from("127.0.0.3", server.addr)));
    // A startup that ends frees its slot.
    drop(a1);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if gets_version_line(connect_from("127.0.0.3", server.addr)) {
            break;
        }
        assert!(Instant::now() < deadline, "slot never freed:\n{}", server.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = wait_for_log(&server, "dropped at accept (--max-startups");
    assert!(log.contains("dropped at accept (--per-source-max-startups"), "{log}");
    assert!(log.contains("dropped at accept (--max-startups"), "{log}");
}
