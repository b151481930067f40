//! Abuse against the real binary, driven by sshfront's own client core (which lets us send what
//! a polite client never would): a stream of wrong passwords ends at --max-auth-tries with
//! DISCONNECT 14, wrong password and unknown user get the same answer, a client-sent
//! USERAUTH_SUCCESS or an early CHANNEL_OPEN authenticates nothing; after login, data for an
//! unknown channel and data past the maximum packet end the connection (DISCONNECT 2); a
//! flooding backend is held back by the client's window; SIGHUP re-reads the password file.
// Tests run real processes and measure bounded waits: clocks and std sockets are fine here.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use common::gateway::{Fixture, PASSWORD, USER};
use common::sshclient::{client_config, Outcome, TestClient};
use common::Server;
use sshfront::wire::msg_no;
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

fn connected(server: &Server) -> TestClient {
    let mut c = TestClient::connect(server.addr, Arc::new(client_config())).expect("connect");
    assert_eq!(c.handshake(Duration::from_secs(30)), Outcome::ServiceAccepted);
    c
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

#[test]
fn a_thousand_wrong_passwords_end_at_max_auth_tries() {
    let f = Fixture::new();
    let server = f.server(&["--max-auth-tries", "6"]);
    let mut c = connected(&server);
    let mut failures = 0;
    let mut sent = 0;
    for i in 0..1000 {
        if c.closed.is_some() {
            break;
        }
        if c.conn.send(&password_request(USER, &format!("wrong {i}"))).is_err() {
            break;
        }
        sent += 1;
        match next_reply(&mut c, Duration::from_secs(30)) {
            Some(m) if m.first() == Some(&msg_no::USERAUTH_FAILURE) => failures += 1,
            Some(m) => panic!("unexpected reply {:?}", m.first()),
            None => break,
        }
    }
    assert_eq!(c.closed.map(|(code, _)| code), Some(14), "after {sent} attempts");
    assert!(failures < 6 && sent <= 6, "the limit is 6 per connection: {failures} failures");
    assert!(!server.stderr().contains("authenticated user"));
    // The next connection starts from zero, and the right password still works.
    let mut c = connected(&server);
    c.conn.send(&password_request(USER, PASSWORD)).unwrap();
    let m = next_reply(&mut c, Duration::from_secs(30)).expect("reply");
    assert_eq!(m.first(), Some(&msg_no::USERAUTH_SUCCESS));
}

#[test]
fn wrong_password_and_unknown_user_get_identical_failures() {
    let f = Fixture::new();
    let server = f.server(&[]);
    let mut answers = Vec::new();
    for user in [USER, "nobody"] {
        let mut c = connected(&server);
        c.conn.send(&password_request(user, "not it")).unwrap();
        let started = Instant::now();
        answers
            .push((next_reply(&mut c, Duration::from_secs(30)).expect("reply"), started.elapsed()));
    }
    assert_eq!(answers[0].0, answers[1].0, "byte-identical USERAUTH_FAILURE");
    assert_eq!(answers[0].0.first(), Some(&msg_no::USERAUTH_FAILURE));
}

#[test]
fn client_sent_success_and_early_channel_open_authenticate_nothing() {
    let f = Fixture::new();
    let server = f.server(&["--allow-exec"]);
    for first in [vec![msg_no::USERAUTH_SUCCESS], {
        let mut v = vec![msg_no::CHANNEL_OPEN];
        put_str(&mut v, b"session");
        v.extend_from_slice(&[0, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0x80, 0]);
        v
    }] {
        let mut c = connected(&server);
        c.conn.send(&first).unwrap();
        let reply = next_reply(&mut c, Duration::from_secs(30));
        assert!(reply.is_none(), "expected a disconnect, got {:?}", reply.map(|m| m[0]));
        assert_eq!(c.closed.map(|(code, _)| code), Some(2), "protocol error");
    }
    assert!(!server.stderr().contains("authenticated user"));
}

fn session_open() -> Vec<u8> {
    let mut v = vec![msg_no::CHANNEL_OPEN];
    put_str(&mut v, b"session");
    v.extend_from_slice(&0u32.to_be_bytes()); // sender channel
    v.extend_from_slice(&(2u32 << 20).to_be_bytes()); // window
    v.extend_from_slice(&(32u32 << 10).to_be_bytes()); // maximum packet
    v
}

fn channel_data(ch: u32, data: &[u8]) -> Vec<u8> {
    let mut v = vec![msg_no::CHANNEL_DATA];
    v.extend_from_slice(&ch.to_be_bytes());
    put_str(&mut v, data);
    v
}

/// Logged in with the password and one session channel open; returns our channel number.
fn logged_in_with_session(server: &Server) -> (TestClient, u32) {
    let mut c = connected(server);
    c.conn.send(&password_request(USER, PASSWORD)).unwrap();
    let m = next_reply(&mut c, Duration::from_secs(30)).expect("auth reply");
    assert_eq!(m.first(), Some(&msg_no::USERAUTH_SUCCESS));
    // Our client core needs telling, as the server's auth layer tells its transport.
    c.conn.transport_mut().set_authenticated();
    c.conn.send(&session_open()).unwrap();
    let m = next_reply(&mut c, Duration::from_secs(30)).expect("open reply");
    assert_eq!(m.first(), Some(&msg_no::CHANNEL_OPEN_CONFIRMATION));
    let ours = u32::from_be_bytes([m[5], m[6], m[7], m[8]]);
    (c, ours)
}

#[test]
fn unknown_channel_oversized_data_and_window_overrun_disconnect() {
    let f = Fixture::new();
    let server = f.server(&[]);
    let (mut c, ours) = logged_in_with_session(&server);
    c.conn.send(&channel_data(ours ^ 0x55, b"who is this for")).unwrap();
    assert!(next_reply(&mut c, Duration::from_secs(30)).is_none());
    assert_eq!(c.closed.map(|(code, _)| code), Some(2), "unknown channel");

    let (mut c, ours) = logged_in_with_session(&server);
    c.conn.send(&channel_data(ours, &vec![7u8; 40 * 1024])).unwrap();
    assert!(next_reply(&mut c, Duration::from_secs(30)).is_none());
    assert_eq!(c.closed.map(|(code, _)| code), Some(2), "past the maximum packet");

    // Window overrun: the session runs nothing, so nothing consumes the data and no
    // WINDOW_ADJUST comes; 2 MiB fill the window exactly, one byte more is too much.
    let (mut c, ours) = logged_in_with_session(&server);
    let chunk = vec![1u8; 32 * 1024];
    for _ in 0..64 {
        c.conn.send(&channel_data(ours, &chunk)).unwrap();
        c.step(&mut || {}).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline && c.closed.is_none() {
        c.step(&mut || {}).unwrap();
    }
    assert!(c.closed.is_none(), "the whole window is allowed");
    c.conn.send(&channel_data(ours, b"!")).unwrap();
    assert!(next_reply(&mut c, Duration::from_secs(30)).is_none());
    assert_eq!(c.closed.map(|(code, _)| code), Some(2), "past the window");
}

fn direct_tcpip_open(port: u16, window: u32) -> Vec<u8> {
    let mut v = vec![msg_no::CHANNEL_OPEN];
    put_str(&mut v, b"direct-tcpip");
    v.extend_from_slice(&1u32.to_be_bytes()); // sender channel
    v.extend_from_slice(&window.to_be_bytes());
    v.extend_from_slice(&(32u32 << 10).to_be_bytes());
    put_str(&mut v, b"127.0.0.1");
    v.extend_from_slice(&u32::from(port).to_be_bytes());
    put_str(&mut v, b"127.0.0.1");
    v.extend_from_slice(&4242u32.to_be_bytes());
    v
}

/// A backend that writes as fast as it can: the server must stop reading it once the client's
/// window is used up, so the backend is held back by TCP instead of filling server memory.
#[test]
fn a_flooding_backend_is_held_back_by_the_client_window() {
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let flood = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = flood.local_addr().unwrap().port();
    let written = Arc::new(AtomicUsize::new(0));
    let w = written.clone();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = flood.accept() else { return };
        s.set_write_timeout(Some(Duration::from_millis(500))).unwrap();
        let chunk = vec![0x5a; 64 * 1024];
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && w.load(Ordering::Relaxed) < 256 << 20 {
            match s.write(&chunk) {
                Ok(n) => {
                    w.fetch_add(n, Ordering::Relaxed);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    let f = Fixture::new();
    let server = f.server(&["--permit-open", &format!("127.0.0.1:{port}")]);
    let mut c = connected(&server);
    c.conn.send(&password_request(USER, PASSWORD)).unwrap();
    let m = next_reply(&mut c, Duration::from_secs(30)).expect("auth reply");
    assert_eq!(m.first(), Some(&msg_no::USERAUTH_SUCCESS));
    c.conn.transport_mut().set_authenticated();
    let window = 256 * 1024;
    c.conn.send(&direct_tcpip_open(port, window)).unwrap();
    // Read everything the server sends for 3 s, never giving window back.
    let mut received = 0usize;
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && c.closed.is_none() {
        c.step(&mut || {}).unwrap();
        while let Some(m) = c.conn.next_message() {
            if m.first() == Some(&msg_no::CHANNEL_DATA) {
                received += m.len() - 9;
            }
        }
    }
    let backend_wrote = written.load(Ordering::Relaxed);
    assert_eq!(received, window as usize, "exactly the window, not a byte more");
    // What the backend got rid of: our window plus kernel socket buffers, far from 256 MiB.
    assert!(backend_wrote < 64 << 20, "the backend was not held back: {backend_wrote} bytes");
    let rss_kib = std::fs::read_to_string(format!("/proc/{}/status", server.child.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse::<usize>().ok()))
        })
        .unwrap_or(0);
    assert!(rss_kib < 200 * 1024, "server RSS {rss_kib} KiB");
}

#[test]
fn sighup_rereads_the_password_file() {
    let f = Fixture::new();
    let server = f.server(&[]);
    let try_login = |pw: &str| {
        let mut c = connected(&server);
        c.conn.send(&password_request(USER, pw)).unwrap();
        next_reply(&mut c, Duration::from_secs(30)).and_then(|m| m.first().copied())
    };
    assert_eq!(try_login(PASSWORD), Some(msg_no::USERAUTH_SUCCESS));
    f.set_password(USER, "a new password");
    server.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.stderr().contains("SIGHUP: configuration reloaded") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(try_login("a new password"), Some(msg_no::USERAUTH_SUCCESS));
    assert_eq!(try_login(PASSWORD), Some(msg_no::USERAUTH_FAILURE));
}

/// RFC 4253 §11.4 after authentication: unknown numbers (150 used to end the connection) get
/// UNIMPLEMENTED naming each one's sequence number, in order, and the connection still works.
/// Then a client that sends only unknown numbers and reads nothing: the server stops reading
/// once its replies back up (its output is bounded; the client's writes block), and every reply
/// arrives, in order, once the client reads again.
#[test]
fn unknown_numbers_after_auth_get_ordered_unimplemented_and_a_bound() {
    use std::io::{ErrorKind, Write};
    let f = Fixture::new();
    let server = f.server(&[]);
    let (mut c, _ours) = logged_in_with_session(&server);

    // Part 1: a handful, interleaved with a global request that wants a reply.
    let mut expected = Vec::new();
    for n in [150u8, 128, 255, 101, 0] {
        expected.push(c.conn.transport().next_seq_out());
        c.conn.send(&[n, 1, 2, 3]).unwrap();
    }
    c.conn.send(&keepalive_request()).unwrap();
    expected.push(c.conn.transport().next_seq_out());
    c.conn.send(&[200]).unwrap();
    let m = next_reply(&mut c, Duration::from_secs(30)).expect("the connection still answers");
    assert_eq!(m.first(), Some(&msg_no::REQUEST_FAILURE));
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.unimplemented.len() < expected.len() && Instant::now() < deadline && c.closed.is_none()
    {
        c.step(&mut || {}).unwrap();
    }
    assert_eq!(c.unimplemented, expected, "{}", server.stderr());
    assert!(c.closed.is_none());

    // Part 2: unknown numbers only, never reading, until our writes block for good (bounded).
    const CAP: usize = 512 << 20;
    let sock = socket2::SockRef::from(&c.sock);
    sock.set_recv_buffer_size(64 << 10).unwrap();
    c.sock.set_nonblocking(true).unwrap();
    let first = c.conn.transport().next_seq_out();
    let (mut sent_packets, mut written) = (0u32, 0usize);
    let mut pending: Vec<u8> = Vec::new();
    let mut stalls = 0;
    while written < CAP && stalls < 300 {
        if pending.is_empty() {
            for _ in 0..1000 {
                c.conn.send(&[150]).unwrap();
            }
            sent_packets += 1000;
            c.conn.poll_transmit(&mut pending);
        }
        match c.sock.write(&pending) {
            Ok(n) => {
                pending.drain(..n);
                written += n;
                stalls = 0;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                stalls += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("write: {e}"),
        }
    }
    assert!(written < CAP, "the server kept reading {CAP} bytes of unknown messages unanswered");
    eprintln!("server stopped reading after {} KiB ({sent_packets} packets queued)", written >> 10);
    // Read again: every reply comes, in order, and the connection still answers.
    c.sock.set_nonblocking(false).unwrap();
    let before = c.unimplemented.len();
    let deadline = Instant::now() + Duration::from_secs(300);
    while !pending.is_empty() && Instant::now() < deadline {
        c.step(&mut || {}).unwrap();
        c.sock.set_nonblocking(true).unwrap();
        match c.sock.write(&pending) {
            Ok(n) => drop(pending.drain(..n)),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("write: {e}"),
        }
        c.sock.set_nonblocking(false).unwrap();
    }
    while c.unimplemented.len() - before < sent_packets as usize
        && Instant::now() < deadline
        && c.closed.is_none()
    {
        c.step(&mut || {}).unwrap();
    }
    let got = &c.unimplemented[before..];
    assert_eq!(got.len(), sent_packets as usize, "closed: {:?}", c.closed);
    assert!(
        got.iter().enumerate().all(|(i, s)| *s == first.wrapping_add(i as u32)),
        "replies out of order"
    );
    c.conn.send(&keepalive_request()).unwrap();
    let m = next_reply(&mut c, Duration::from_secs(30)).expect("the connection still answers");
    assert_eq!(m.first(), Some(&msg_no::REQUEST_FAILURE));
}

fn keepalive_request() -> Vec<u8> {
    let mut v = vec![msg_no::GLOBAL_REQUEST];
    put_str(&mut v, b"keepalive@openssh.com");
    v.push(1);
    v
}
