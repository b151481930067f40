//! sshfront's client core against a real OpenSSH `sshd` (started by the test on 127.0.0.1 with
//! its own config): publickey auth through the signer, exec with output, stderr and exit
//! status, and direct-tcpip to an echo server byte for byte through a small window.
// Tests run real processes and measure bounded waits: clocks and std sockets are fine here.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use common::gateway::{connect_retry, free_port, random_bytes, EchoServer};
use common::TempDir;
use sshfront::algo::host_key::HostKeyPair;
use sshfront::algo::SystemRng;
use sshfront::client::{ClientChannel, ClientConnection, Event, LocalKey, Method};
use sshfront::transport::TransportConfig;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);

struct Sshd {
    child: Child,
    port: u16,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &std::path::Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen (openssh-client, installed by scripts/test.sh)");
    assert!(st.success());
}

fn start_sshd(dir: &TempDir) -> Sshd {
    let d = dir.path();
    keygen(&d.join("host"));
    keygen(&d.join("user"));
    std::fs::copy(d.join("user.pub"), d.join("authorized_keys")).unwrap();
    let port = free_port();
    let cfg = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host\nPidFile {d}/sshd.pid\n\
         AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nPermitRootLogin prohibit-password\n\
         PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
         UsePAM no\nUseDNS no\nAllowTcpForwarding yes\nX11Forwarding no\nPrintMotd no\nLogLevel ERROR\n",
        d = d.display()
    );
    std::fs::write(d.join("sshd_config"), cfg).unwrap();
    let _ = std::fs::create_dir_all("/run/sshd");
    let child = Command::new("/usr/sbin/sshd")
        .arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(d.join("sshd_config"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("/usr/sbin/sshd (openssh-server, installed by scripts/test.sh)");
    let sshd = Sshd { child, port };
    drop(connect_retry(port, LIMIT));
    sshd
}

/// A blocking driver around the sans-IO client core.
struct Driver {
    conn: ClientConnection,
    sock: TcpStream,
    inbuf: Vec<u8>,
    events: Vec<Event>,
}

impl Driver {
    fn step(&mut self) {
        let now = Instant::now();
        while let Some(e) = self.conn.poll_event() {
            match e {
                Event::Job(j) => self.conn.handle_job_done(j.run(), now),
                Event::Sign(r) => self.conn.sign_done(r.run_local().expect("local key")),
                e => self.events.push(e),
            }
        }
        let mut out = Vec::new();
        self.conn.poll_transmit(&mut out);
        if !out.is_empty() {
            self.sock.write_all(&out).unwrap();
        }
        let mut buf = [0u8; 64 * 1024];
        match self.sock.read(&mut buf) {
            Ok(0) => self.conn.peer_closed(),
            Ok(n) => self.inbuf.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("read: {e}"),
        }
        let used = self.conn.handle_input(&mut self.inbuf, Instant::now());
        self.inbuf.drain(..used);
    }

    fn until(&mut self, what: &str, f: impl Fn(&Event) -> bool) {
        let deadline = Instant::now() + LIMIT;
        while !self.events.iter().any(&f) {
            assert!(
                !self.conn.is_closed(),
                "connection closed waiting for {what}: {:?}",
                self.names()
            );
            assert!(Instant::now() < deadline, "no {what}: {:?}", self.names());
            self.step();
        }
    }

    fn names(&self) -> Vec<String> {
        self.events
            .iter()
            .map(|e| match e {
                Event::AuthFailed { methods, .. } => format!("AuthFailed({methods})"),
                Event::ChannelOpenFailed { text, .. } => format!("OpenFailed({text})"),
                Event::Closed { reason, .. } => format!("Closed({reason})"),
                Event::Log(l) => format!("Log({l})"),
                _ => "event".into(),
            })
            .collect()
    }
}

#[test]
fn client_core_against_openssh_sshd() {
    let dir = TempDir::new("client-sshd");
    let sshd = start_sshd(&dir);
    let sock = TcpStream::connect(("127.0.0.1", sshd.port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    sock.set_nodelay(true).unwrap();
    let cfg = Arc::new(TransportConfig::all_algorithms("sshfront_test"));
    let mut conn = ClientConnection::new(cfg, Box::new(SystemRng), None, Instant::now());
    conn.set_channel_window(64 * 1024, 16 * 1024);
    let mut d = Driver { conn, sock, inbuf: Vec::new(), events: Vec::new() };

    let key_text = std::fs::read_to_string(dir.path().join("user")).unwrap();
    let key = Arc::new(HostKeyPair::from_openssh(&key_text).unwrap());
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
    d.conn.authenticate(user.trim(), Method::PublicKey(Arc::new(LocalKey::new(key)))).unwrap();
    d.until("Authenticated", |e| matches!(e, Event::Authenticated));

    // exec: stdout, stderr, exit status, then EOF and CLOSE.
    let ch = d.conn.open_session().unwrap();
    d.until("session open", |e| matches!(e, Event::ChannelOpened { .. }));
    d.conn.request_exec(ch, b"printf 'x\\001y\\377'; echo err >&2; exit 3").unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + LIMIT;
    while !d.events.iter().any(|e| matches!(e, Event::ChannelClosed { channel } if *channel == ch))
    {
        assert!(Instant::now() < deadline && !d.conn.is_closed());
        d.step();
        drain(&mut d.conn, ch, &mut out, &mut err);
    }
    assert_eq!(out, b"x\x01y\xff");
    assert_eq!(err, b"err\n");
    assert!(d
        .events
        .iter()
        .any(|e| matches!(e, Event::RequestDone { request: "exec", ok: true, .. })));
    let status = d.events.iter().position(|e| matches!(e, Event::ExitStatus { code: 3, .. }));
    let closed = d.events.iter().position(|e| matches!(e, Event::ChannelClosed { .. }));
    assert!(status.is_some() && status < closed, "exit-status before the channel closed");

    // direct-tcpip through sshd to an echo server, 1 MiB byte for byte through a 64 KiB window.
    let echo = EchoServer::start();
    let ch = d.conn.open_direct_tcpip(("127.0.0.1", echo.port), ("127.0.0.1", 1)).unwrap();
    d.until(
        "direct-tcpip open",
        |e| matches!(e, Event::ChannelOpened { channel } if *channel == ch),
    );
    let data = random_bytes(1 << 20, 7);
    let (mut sent, mut back, mut err) = (0usize, Vec::new(), Vec::new());
    let deadline = Instant::now() + LIMIT;
    while back.len() < data.len() {
        assert!(
            Instant::now() < deadline && !d.conn.is_closed(),
            "echoed {} of {}",
            back.len(),
            data.len()
        );
        sent += d.conn.send_data(ch, &data[sent..]);
        d.step();
        assert!(d.conn.stdout(ch).len() <= 64 * 1024, "never more than our window");
        drain(&mut d.conn, ch, &mut back, &mut err);
    }
    assert!(back == data, "byte for byte");
    d.conn.send_eof(ch).unwrap();
    d.until(
        "direct-tcpip closed",
        |e| matches!(e, Event::ChannelClosed { channel } if *channel == ch),
    );
}

fn drain(conn: &mut ClientConnection, ch: ClientChannel, out: &mut Vec<u8>, err: &mut Vec<u8>) {
    let o = conn.stdout(ch).to_vec();
    out.extend_from_slice(&o);
    conn.consume(ch, o.len());
    let e = conn.stderr(ch).to_vec();
    err.extend_from_slice(&e);
    conn.consume_stderr(ch, e.len());
}
