//! sshfront as a gateway, driven by the stock OpenSSH client on 127.0.0.1: password and
//! publickey logins, `ssh -W` / `-L` / `-J` / `-R` byte for byte (across rekeys and with
//! compression), commands and their exit status, and the refusals.
// Tests run real processes and measure bounded waits: clocks and std sockets are fine here.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use common::gateway::{
    connect_retry, free_port, random_bytes, round_trip, run, EchoServer, Fixture, PASSWORD, USER,
};
use common::Server;
use std::io::{BufRead, BufReader};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);

fn dest() -> String {
    format!("{USER}@127.0.0.1")
}

fn explain(what: &str, out: &Output, server: &Server) -> String {
    format!(
        "{what}: status {:?}\n--- ssh stderr ---\n{}\n--- server ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr),
        tail(&server.stderr())
    )
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// `ssh -W 127.0.0.1:port` carrying `data` through; returns what came back.
fn through_w(f: &Fixture, server: &Server, port: u16, data: &[u8], opts: &[&str]) -> Vec<u8> {
    let input = f.path("w-input");
    std::fs::write(&input, data).unwrap();
    let mut cmd = f.ssh(server);
    cmd.args(opts).arg("-W").arg(format!("127.0.0.1:{port}")).arg(dest());
    let out = run(cmd, Some(&input), LIMIT);
    assert!(out.status.success(), "{}", explain("ssh -W", &out, server));
    out.stdout
}

#[test]
fn password_login_runs_a_command_and_returns_its_status() {
    let f = Fixture::new();
    let server = f.server(&["--allow-exec"]);
    let mut cmd = f.ssh_password(&server);
    cmd.arg(dest()).arg("echo out; echo err >&2; exit 7");
    let out = run(cmd, None, LIMIT);
    assert_eq!(out.status.code(), Some(7), "{}", explain("exit 7", &out, &server));
    assert_eq!(out.stdout, b"out\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("err"));
    assert!(server.stderr().contains("method=password"), "{}", server.stderr());
}

#[test]
fn publickey_login_with_ed25519_ecdsa_and_rsa_keys() {
    let f = Fixture::new();
    let banner = f.path("banner");
    std::fs::write(&banner, "Authorised use only.\n").unwrap();
    let server = f.server(&["--allow-exec", "--banner", banner.to_str().unwrap()]);
    for key in ["id_ed25519", "id_ecdsa", "id_rsa"] {
        let mut cmd = f.ssh(&server);
        cmd.args(["-o", "LogLevel=INFO", "-i"])
            .arg(f.path(key))
            .arg(dest())
            .arg("echo \"key ok $SSH_USER\"");
        let out = run(cmd, None, LIMIT);
        assert!(out.status.success(), "{}", explain(key, &out, &server));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "key ok alice\n", "{key}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("Authorised use only."), "banner missing: {err}");
    }
    assert!(server.stderr().matches("method=publickey").count() >= 3);
}

#[test]
fn wrong_password_and_unknown_user_fail_the_same_way() {
    let f = Fixture::new();
    let server = f.server(&["--allow-exec"]);
    f.answer_password("not the password");
    let mut cmd = f.ssh_password(&server);
    cmd.arg(dest()).arg("true");
    let wrong = run(cmd, None, LIMIT);
    f.answer_password(PASSWORD);
    let mut cmd = f.ssh_password(&server);
    cmd.arg("nobody@127.0.0.1").arg("true");
    let unknown = run(cmd, None, LIMIT);
    for (what, out) in [("wrong password", &wrong), ("unknown user", &unknown)] {
        assert_eq!(out.status.code(), Some(255), "{}", explain(what, out, &server));
    }
    let msg = |o: &Output| {
        String::from_utf8_lossy(&o.stderr)
            .lines()
            .find(|l| l.contains("Permission denied"))
            .map(|l| l.replace("nobody@", "alice@"))
    };
    assert!(msg(&wrong).is_some(), "{}", explain("wrong", &wrong, &server));
    assert_eq!(msg(&wrong), msg(&unknown), "same refusal for both");
    assert!(!server.stderr().contains("authenticated user"));
}

#[test]
fn ssh_w_carries_one_mebibyte_byte_for_byte() {
    let f = Fixture::new();
    let echo = EchoServer::start();
    let server = f.server(&["--permit-open", &format!("127.0.0.1:{}", echo.port)]);
    let data = random_bytes(1 << 20, 1);
    let back = through_w(&f, &server, echo.port, &data, &[]);
    assert_eq!(back.len(), data.len());
    assert!(back == data, "bytes differ");
}

/// Bulk data with each AEAD forced on the client (`-c`), across rekeys: packets of every size
/// up to 32 KiB and past it, so the chacha20-poly1305 body path (eight blocks at a time) and
/// its tail both meet OpenSSH's implementation in both directions.
#[test]
fn ssh_w_with_each_aead_cipher_forced() {
    let f = Fixture::new();
    let echo = EchoServer::start();
    let server = f.server(&["--permit-open", &format!("127.0.0.1:{}", echo.port)]);
    let data = random_bytes(3 << 20, 4);
    for cipher in ["chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com"] {
        let opts = ["-c", cipher, "-o", "RekeyLimit=1M", "-v"];
        let input = f.path("w-input");
        std::fs::write(&input, &data).unwrap();
        let mut cmd = f.ssh(&server);
        cmd.args(opts).arg("-W").arg(format!("127.0.0.1:{}", echo.port)).arg(dest());
        let out = run(cmd, Some(&input), LIMIT);
        assert!(out.status.success(), "{}", explain(cipher, &out, &server));
        let log = String::from_utf8_lossy(&out.stderr);
        for dir in ["server->client", "client->server"] {
            assert!(
                log.contains(&format!("kex: {dir} cipher: {cipher} ")),
                "{cipher}: not negotiated {dir}\n{}",
                tail(&log)
            );
        }
        assert!(
            out.stdout == data,
            "{cipher}: bytes differ ({} of {})",
            out.stdout.len(),
            data.len()
        );
    }
}

#[test]
fn ssh_w_across_several_rekeys_and_with_compression() {
    let f = Fixture::new();
    let echo = EchoServer::start();
    let server = f.server(&["--permit-open", "127.0.0.1:*"]);
    let data = random_bytes(4 << 20, 2);
    let back = through_w(&f, &server, echo.port, &data, &["-o", "RekeyLimit=1M"]);
    assert!(back == data, "bytes differ across rekeys ({} of {})", back.len(), data.len());
    let rekeys = server.stderr().matches("(rekey)").count();
    assert!(rekeys >= 3, "expected several rekeys, saw {rekeys}");
    // Compressible and random data, compression alone and with rekeys.
    let mut text = b"sshfront compresses this line well. ".repeat(30_000);
    text.extend_from_slice(&random_bytes(1 << 20, 3));
    for opts in [&["-C"][..], &["-C", "-o", "RekeyLimit=1M"][..]] {
        let back = through_w(&f, &server, echo.port, &text, opts);
        assert!(back == text, "{opts:?}: bytes differ ({} of {})", back.len(), text.len());
    }
    assert!(server.stderr().contains("compression=zlib@openssh.com"));
}

#[test]
fn ssh_l_forwards_a_local_port() {
    let f = Fixture::new();
    let echo = EchoServer::start();
    let server = f.server(&["--permit-open", &format!("127.0.0.1:{}", echo.port)]);
    let local = free_port();
    let mut cmd = f.ssh(&server);
    cmd.args(["-N", "-o", "ExitOnForwardFailure=yes", "-L"])
        .arg(format!("127.0.0.1:{local}:127.0.0.1:{}", echo.port))
        .arg(dest())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut ssh = cmd.spawn().expect("ssh -L");
    let data = random_bytes(300_000, 4);
    let back = round_trip(connect_retry(local, Duration::from_secs(20)), &data);
    let back2 = round_trip(connect_retry(local, Duration::from_secs(5)), b"second");
    let _ = ssh.kill();
    let _ = ssh.wait();
    assert!(back == data, "bytes differ ({} of {})\n{}", back.len(), data.len(), server.stderr());
    assert_eq!(back2, b"second");
}

#[test]
fn ssh_j_through_one_sshfront_into_another() {
    let f = Fixture::new();
    let inner = f.server(&["--allow-exec"]);
    let gateway = f.server(&["--permit-open", &format!("127.0.0.1:{}", inner.addr.port())]);
    let mut cmd = f.ssh(&inner);
    cmd.arg("-J")
        .arg(format!("{USER}@127.0.0.1:{}", gateway.addr.port()))
        .arg(dest())
        .arg("echo through the jump host");
    let out = run(cmd, None, LIMIT);
    assert!(out.status.success(), "{}", explain("ssh -J", &out, &inner));
    assert_eq!(out.stdout, b"through the jump host\n");
    assert!(gateway.stderr().contains("authenticated user=\"alice\""));
}

#[test]
fn ssh_r_round_trip_through_a_server_side_listener() {
    let f = Fixture::new();
    let echo = EchoServer::start();
    let server = f.server(&["--permit-listen", "localhost:*"]);
    let mut cmd = f.ssh(&server);
    cmd.args(["-N", "-o", "ExitOnForwardFailure=yes", "-o", "LogLevel=INFO", "-R"])
        .arg(format!("0:127.0.0.1:{}", echo.port))
        .arg(dest())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut ssh = cmd.spawn().expect("ssh -R");
    // "Allocated port N for remote forward to …" on stderr, read on a thread (bounded).
    let stderr = ssh.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(p) = line.strip_prefix("Allocated port ") {
                let _ = tx.send(p.split_whitespace().next().and_then(|n| n.parse::<u16>().ok()));
            }
        }
    });
    let port = rx.recv_timeout(Duration::from_secs(30)).ok().flatten();
    let result = port.map(|p| {
        let data = random_bytes(200_000, 5);
        (round_trip(connect_retry(p, Duration::from_secs(5)), &data), data)
    });
    let _ = ssh.kill();
    let _ = ssh.wait();
    let (back, data) = result.unwrap_or_else(|| panic!("no allocated port\n{}", server.stderr()));
    assert!(back == data, "bytes differ ({} of {})", back.len(), data.len());
}

#[test]
fn destinations_outside_permit_open_are_refused() {
    let f = Fixture::new();
    let echo = EchoServer::start();
    let other = EchoServer::start();
    let server = f.server(&["--permit-open", &format!("127.0.0.1:{}", echo.port)]);
    let mut cmd = f.ssh(&server);
    cmd.args(["-o", "LogLevel=INFO", "-W"]).arg(format!("127.0.0.1:{}", other.port)).arg(dest());
    let out = run(cmd, None, LIMIT);
    assert_eq!(out.status.code(), Some(255), "{}", explain("refused -W", &out, &server));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("administratively prohibited"), "{err}");
    // A permitted port with nothing listening: connect failed (code 2), not a hang.
    let closed = free_port();
    let server = f.server(&["--permit-open", &format!("127.0.0.1:{closed}")]);
    let mut cmd = f.ssh(&server);
    cmd.args(["-o", "LogLevel=INFO", "-W"]).arg(format!("127.0.0.1:{closed}")).arg(dest());
    let started = Instant::now();
    let out = run(cmd, None, LIMIT);
    assert_eq!(out.status.code(), Some(255));
    assert!(started.elapsed() < Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("open failed") || err.contains("connect failed"), "{err}");
}

#[test]
fn names_are_resolved_off_the_worker() {
    let f = Fixture::new();
    let echo = EchoServer::start();
    let server = f.server(&["--permit-open", &format!("localhost:{}", echo.port)]);
    let data = random_bytes(10_000, 6);
    let input = f.path("in");
    std::fs::write(&input, &data).unwrap();
    let mut cmd = f.ssh(&server);
    cmd.arg("-W").arg(format!("localhost:{}", echo.port)).arg(dest());
    let out = run(cmd, Some(&input), LIMIT);
    assert!(out.status.success(), "{}", explain("-W localhost", &out, &server));
    assert!(out.stdout == data);
}

#[test]
fn without_exec_flags_a_command_fails_with_a_clear_message() {
    let f = Fixture::new();
    let server = f.server(&[]);
    let mut cmd = f.ssh(&server);
    cmd.arg(dest()).arg("echo should not run");
    let out = run(cmd, None, LIMIT);
    assert_eq!(out.status.code(), Some(1), "{}", explain("no exec", &out, &server));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("runs no commands"));
}

#[test]
fn session_command_sees_the_original_command_and_stdin() {
    let f = Fixture::new();
    let server = f.server(&[
        "--session-command",
        "printf '%s|%s|' \"$SSH_ORIGINAL_COMMAND\" \"$SSH_USER\"; echo \"${SSH_CLIENT%% *}\"; cat",
    ]);
    let input = f.path("stdin");
    std::fs::write(&input, b"from stdin\n").unwrap();
    let mut cmd = f.ssh(&server);
    cmd.arg(dest()).arg("anything at all");
    let out = run(cmd, Some(&input), LIMIT);
    assert!(out.status.success(), "{}", explain("session command", &out, &server));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "anything at all|alice|127.0.0.1\nfrom stdin\n"
    );
}

#[test]
fn a_killed_command_reports_its_signal() {
    let f = Fixture::new();
    let server = f.server(&["--allow-exec"]);
    let mut cmd = f.ssh(&server);
    cmd.arg("-v").arg(dest()).arg("kill -TERM $$");
    let out = run(cmd, None, LIMIT);
    // OpenSSH exits 255 for a remote signal (exit-signal rather than exit-status).
    assert_eq!(out.status.code(), Some(255), "{}", explain("signal", &out, &server));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rtype exit-signal"), "{}", explain("signal", &out, &server));
}

#[test]
fn sigterm_drains_open_sessions_then_ends_their_commands() {
    let f = Fixture::new();
    let server = f.server(&["--allow-exec", "--drain-timeout", "3"]);
    let mut cmd = f.ssh(&server);
    cmd.arg(dest())
        .arg("echo started; sleep 60; echo never")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut ssh = cmd.spawn().expect("ssh");
    let stdout = ssh.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(30));
    let pid = logged_pid(&server);
    let mut server = server;
    server.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(1000));
    let still_running = ssh.try_wait().ok().flatten().is_none();
    let code = server.wait_exit(Duration::from_secs(20));
    let ssh_done = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        ssh.try_wait().ok().flatten().is_some()
    });
    if !ssh_done {
        let _ = ssh.kill();
        let _ = ssh.wait();
    }
    assert_eq!(first.ok().as_deref(), Some("started"));
    assert!(still_running, "the authenticated session keeps running while draining");
    assert_eq!(code, Some(0), "{}", server.stderr());
    assert!(ssh_done, "the client is disconnected at the drain timeout");
    let pid = pid.unwrap_or_else(|| panic!("no pid logged\n{}", server.stderr()));
    // Orphaned zombies are reaped by init, asynchronously: allow it a moment.
    let gone = (0..100).any(|_| {
        // SAFETY: signal 0 only checks whether the process group still exists.
        let alive = unsafe { libc::kill(-pid, 0) } == 0;
        if alive {
            std::thread::sleep(Duration::from_millis(50));
        }
        !alive
    });
    assert!(gone, "the command's process group {pid} outlived the server");
}

#[test]
fn a_lost_connection_ends_its_command() {
    let f = Fixture::new();
    let server = f.server(&["--allow-exec"]);
    let mut cmd = f.ssh(&server);
    cmd.arg(dest())
        .arg("echo started; sleep 60")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut ssh = cmd.spawn().expect("ssh");
    let stdout = ssh.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(30));
    let _ = ssh.kill();
    let _ = ssh.wait();
    assert_eq!(first.ok().as_deref(), Some("started"));
    let pid: i32 =
        logged_pid(&server).unwrap_or_else(|| panic!("no pid logged\n{}", server.stderr()));
    let gone = (0..200).any(|_| {
        // SAFETY: signal 0 only checks whether the process group still exists.
        let alive = unsafe { libc::kill(-pid, 0) } == 0;
        if alive {
            std::thread::sleep(Duration::from_millis(50));
        }
        !alive
    });
    assert!(gone, "the command outlived its connection\n{}", server.stderr());
}

#[test]
fn authorized_keys_options_force_the_command_and_narrow_permit_open() {
    let f = Fixture::new();
    let echo = EchoServer::start();
    let other = EchoServer::start();
    let public = std::fs::read_to_string(f.path("id_ed25519.pub")).unwrap();
    std::fs::write(
        f.path("bob.keys"),
        format!(
            "command=\"echo forced:$SSH_ORIGINAL_COMMAND\",permitopen=\"127.0.0.1:{}\" {public}",
            echo.port
        ),
    )
    .unwrap();
    let server = f.server(&["--allow-exec", "--permit-open", "127.0.0.1:*"]);
    let mut cmd = f.ssh(&server);
    cmd.arg("bob@127.0.0.1").arg("rm -rf /tmp/nothing");
    let out = run(cmd, None, LIMIT);
    assert!(out.status.success(), "{}", explain("forced command", &out, &server));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "forced:rm -rf /tmp/nothing\n");
    let input = f.path("in");
    std::fs::write(&input, b"allowed").unwrap();
    let mut cmd = f.ssh(&server);
    cmd.arg("-W").arg(format!("127.0.0.1:{}", echo.port)).arg("bob@127.0.0.1");
    let out = run(cmd, Some(&input), LIMIT);
    assert_eq!(out.stdout, b"allowed", "{}", explain("key permitopen", &out, &server));
    let mut cmd = f.ssh(&server);
    cmd.arg("-W").arg(format!("127.0.0.1:{}", other.port)).arg("bob@127.0.0.1");
    let out = run(cmd, Some(&input), LIMIT);
    assert_eq!(out.status.code(), Some(255), "the key narrows --permit-open");
    assert!(out.stdout.is_empty());
}

#[test]
fn keyboard_interactive_and_a_two_step_auth_methods_sequence() {
    let f = Fixture::new();
    let server = f.server(&["--allow-exec"]);
    // ssh takes the first value of an option: ours goes before the fixture's.
    let base = f.ssh_password(&server);
    let mut cmd2 = std::process::Command::new("ssh");
    cmd2.arg("-o").arg("PreferredAuthentications=keyboard-interactive");
    cmd2.args(base.get_args());
    cmd2.envs(base.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))));
    cmd2.arg(dest()).arg("echo kbd");
    let out = run(cmd2, None, LIMIT);
    assert_eq!(out.stdout, b"kbd\n", "{}", explain("keyboard-interactive", &out, &server));
    assert!(server.stderr().contains("method=keyboard-interactive"));

    // publickey, then password: both are needed, in that order (partial success between).
    let server = f.server(&["--allow-exec", "--auth-methods", "publickey,password"]);
    let base = f.ssh_password(&server);
    let mut both = std::process::Command::new("ssh");
    both.arg("-o").arg("PreferredAuthentications=publickey,password");
    both.args(base.get_args());
    both.envs(base.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))));
    both.arg(dest()).arg("echo both");
    let out = run(both, None, LIMIT);
    assert_eq!(out.stdout, b"both\n", "{}", explain("publickey,password", &out, &server));
    let mut cmd = f.ssh(&server);
    cmd.arg(dest()).arg("echo key alone");
    let out = run(cmd, None, LIMIT);
    assert_eq!(out.status.code(), Some(255), "a key alone is not enough");
    assert!(out.stdout.is_empty());
}

/// The pid in the server's "started pid N" line; waits (bounded) since log lines go through the
/// logger thread and may land a moment after the command's first output.
fn logged_pid(server: &Server) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pid = server
            .stderr()
            .lines()
            .find_map(|l| l.split("started pid ").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse().ok());
        if pid.is_some() || Instant::now() > deadline {
            return pid;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
