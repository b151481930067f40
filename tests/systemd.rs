//! systemd integration without systemd: the test plays the service manager. It binds the
//! listening socket itself and passes it as fd 3 with `LISTEN_PID`/`LISTEN_FDS`/`LISTEN_FDNAMES`
//! (socket activation), and reads the `$NOTIFY_SOCKET` datagrams (READY=1, RELOADING=1 with
//! MONOTONIC_USEC, STOPPING=1, STATUS=). A restart keeps the socket, so a client that connects
//! while no sshfront runs is served by the next one.
// Tests run real processes and measure bounded waits: clocks and std sockets are fine here.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use common::{bin, TempDir};
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);

/// Starts sshfront with `listener` as fd 3. `sh` sets LISTEN_PID to its own pid and then execs
/// sshfront, which keeps that pid (as systemd sets it between fork and exec).
fn spawn_activated(listener: &TcpListener, notify: &Path, dir: &Path) -> Child {
    let fd = listener.as_raw_fd();
    common::seed_host_keys(&dir.join("keys"));
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("LISTEN_PID=$$ exec \"$0\" \"$@\"")
        .arg(bin())
        .arg("--data-dir")
        .arg(dir.join("keys"))
        .args(["--workers", "2"])
        // Ignored with socket activation: nothing listens on it.
        .args(["--listen", "127.0.0.1:1"])
        .env("LISTEN_FDS", "1")
        .env("LISTEN_FDNAMES", "ssh")
        .env("NOTIFY_SOCKET", notify)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr.log")).expect("log"));
    // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if fd == 3 {
                let flags = libc::fcntl(3, libc::F_GETFD);
                if flags < 0 || libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().expect("spawn sshfront")
}

/// Waits (bounded) for a notification containing `what`; returns every message seen until then.
fn wait_for(rx: &UnixDatagram, what: &str, dir: &Path) -> Vec<String> {
    let deadline = Instant::now() + LIMIT;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = rx.recv(&mut buf) {
            let m = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = m.lines().any(|l| l == what);
            seen.push(m);
            if done {
                return seen;
            }
        }
    }
    let log = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
    panic!("no {what} within {LIMIT:?}; got {seen:?}\n{log}");
}

/// The log is written by sshfront's logger thread, so a line may land shortly after the event it
/// reports: waits (bounded) until the log holds every one of `lines`, and returns it.
fn wait_log(dir: &Path, lines: &[&str]) -> String {
    let deadline = Instant::now() + LIMIT;
    loop {
        let log = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
        if lines.iter().all(|l| log.contains(l)) || Instant::now() >= deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn banner(addr: std::net::SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(LIMIT)).unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn kill(child: &Child, sig: i32) {
    // SAFETY: kill(2) on the PID of a child we spawned and have not reaped.
    unsafe {
        libc::kill(child.id() as libc::pid_t, sig);
    }
}

fn wait_exit(child: &mut Child) -> Option<i32> {
    let deadline = Instant::now() + LIMIT;
    while Instant::now() < deadline {
        if let Ok(Some(st)) = child.try_wait() {
            return st.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn socket_activation_and_notify_protocol_across_reload_stop_and_restart() {
    let dir = TempDir::new("systemd");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let notify_path = dir.path().join("notify");
    let rx = UnixDatagram::bind(&notify_path).unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(200))).unwrap();

    let mut child = spawn_activated(&listener, &notify_path, dir.path());
    let seen = wait_for(&rx, "READY=1", dir.path());
    let ready = seen.last().unwrap();
    assert!(ready.contains("STATUS=0 connections open"), "{ready}");
    assert!(banner(addr).starts_with("SSH-2.0-sshfront"), "served on the inherited socket");
    let log = wait_log(
        dir.path(),
        &["socket activation: 1 inherited sockets", "inherited socket \"ssh\""],
    );
    assert!(log.contains("socket activation: 1 inherited sockets"), "{log}");
    assert!(log.contains("inherited socket \"ssh\""), "{log}");
    assert!(TcpStream::connect("127.0.0.1:1").is_err(), "--listen was not bound");

    // SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1 again.
    kill(&child, libc::SIGHUP);
    let seen = wait_for(&rx, "RELOADING=1", dir.path());
    let reloading = seen.last().unwrap();
    let usec = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .and_then(|v| v.parse::<u64>().ok());
    assert!(usec.is_some_and(|u| u > 0), "{reloading}");
    wait_for(&rx, "READY=1", dir.path());

    // STATUS= follows the connection count.
    let held = TcpStream::connect(addr).unwrap();
    let seen = wait_for(&rx, "STATUS=1 connections open, 2 workers, accepting", dir.path());
    assert!(!seen.is_empty());
    drop(held);

    // SIGTERM: STOPPING=1 at drain start, then a clean exit.
    kill(&child, libc::SIGTERM);
    let seen = wait_for(&rx, "STOPPING=1", dir.path());
    assert!(seen.last().unwrap().contains("draining"), "{seen:?}");
    assert_eq!(wait_exit(&mut child), Some(0));

    // No sshfront runs now, yet the socket (ours, as systemd's) still accepts: the client waits
    // in the backlog and the next instance serves it.
    let mut waiting = TcpStream::connect(addr).expect("no refusal between instances");
    let mut child = spawn_activated(&listener, &notify_path, dir.path());
    waiting.set_read_timeout(Some(LIMIT)).unwrap();
    let mut buf = [0u8; 64];
    let n = waiting.read(&mut buf).unwrap_or(0);
    assert!(buf[..n].starts_with(b"SSH-2.0-sshfront"), "{:?}", &buf[..n]);
    wait_for(&rx, "READY=1", dir.path());
    kill(&child, libc::SIGTERM);
    assert_eq!(wait_exit(&mut child), Some(0));
}

#[test]
fn a_passed_fd_that_is_not_a_listening_socket_is_refused() {
    let dir = TempDir::new("systemd-bad");
    // A connected, not listening, socket as fd 3.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let fd = s.as_raw_fd();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("LISTEN_PID=$$ exec \"$0\" \"$@\"")
        .arg(bin())
        .arg("--data-dir")
        .arg(dir.path().join("keys"))
        .env("LISTEN_FDS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: only dup2 between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    let out = common::gateway::wait_bounded(child, LIMIT);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("not a listening stream socket"), "{err}");
}

/// The shipped units pass `systemd-analyze verify` with no warning (the `systemd` package,
/// installed by scripts/test.sh). ExecStart points at the binary under test, since verify checks
/// that the executable exists; man pages are not looked up.
#[test]
fn unit_files_pass_systemd_analyze_verify() {
    let dir = TempDir::new("units");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/systemd");
    for unit in ["sshfront.service", "sshfront.socket"] {
        let text = std::fs::read_to_string(src.join(unit)).expect(unit);
        let text = text.replace("/usr/local/bin/sshfront", bin());
        std::fs::write(dir.path().join(unit), text).unwrap();
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(dir.path().join("sshfront.socket"))
        .arg(dir.path().join("sshfront.service"))
        .output()
        .expect("systemd-analyze (package systemd, installed by scripts/test.sh)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "{:?}\n{err}", out.status);
    let service = std::fs::read_to_string(src.join("sshfront.service")).unwrap();
    for must in [
        "Type=notify",
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "StateDirectory=sshfront",
    ] {
        assert!(service.contains(must), "{must:?} missing");
    }
}
