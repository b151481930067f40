//! The session proxy end to end with real programs: OpenSSH `ssh` (and `sftp`, `scp`,
//! paramiko) → sshfront with `--routes` → an OpenSSH `sshd` the test starts on 127.0.0.1 with
//! its own config, host key and authorized_keys (logging in as the current user with the
//! route's identity file). Also: a dead upstream and a host-key mismatch reach the user as
//! words, password pass-through to a second sshfront, a routes change on SIGHUP, and upstream
//! login with the user's forwarded agent (a real `ssh-agent`) plus agent forwarding to the
//! backend.
// Tests run real processes and measure bounded waits: clocks and std sockets are fine here.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use common::gateway::{
    connect_retry, free_port, random_bytes, round_trip, run, EchoServer, Fixture, PASSWORD, USER,
};
use common::tmux::Tmux;
use common::{scrape_metrics, Server, TempDir};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(120);

/// A private sshd, killed (by its PID) on drop.
struct Sshd {
    child: Child,
    port: u16,
    /// `[127.0.0.1]:PORT <host key>`: the known_hosts line pinning it.
    known_hosts: String,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen (openssh-client, installed by scripts/test.sh)");
    assert!(st.success());
}

fn me() -> String {
    let out = Command::new("id").arg("-un").output().expect("id");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An sshd on a free loopback port accepting `dir/gw_id` (the gateway's identity) for the
/// current user, with sftp and TCP forwarding.
fn start_sshd(dir: &Path) -> Sshd {
    keygen(&dir.join("host"));
    if !dir.join("gw_id").exists() {
        keygen(&dir.join("gw_id"));
    }
    std::fs::copy(dir.join("gw_id.pub"), dir.join("authorized_keys")).unwrap();
    let port = free_port();
    let cfg = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host\nPidFile {d}/sshd.pid\n\
         AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nPermitRootLogin prohibit-password\n\
         PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
         UsePAM no\nUseDNS no\nAllowTcpForwarding yes\nX11Forwarding no\nPrintMotd no\n\
         PrintLastLog no\nSubsystem sftp internal-sftp\nLogLevel ERROR\n",
        d = dir.display()
    );
    std::fs::write(dir.join("sshd_config"), cfg).unwrap();
    let _ = std::fs::create_dir_all("/run/sshd");
    let child = Command::new("/usr/sbin/sshd")
        .arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(dir.join("sshd_config"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("/usr/sbin/sshd (openssh-server, installed by scripts/test.sh)");
    let host = std::fs::read_to_string(dir.join("host.pub")).unwrap();
    let key: Vec<&str> = host.split_whitespace().take(2).collect();
    let sshd = Sshd { child, port, known_hosts: format!("[127.0.0.1]:{port} {}\n", key.join(" ")) };
    drop(connect_retry(port, LIMIT));
    sshd
}

/// Writes the routes file: `alice` → 127.0.0.1:`port` as the current user with `auth`.
fn write_routes(
    dir: &Path,
    port: u16,
    known_hosts: Option<&str>,
    auth: &str,
    user: &str,
) -> PathBuf {
    let mut text = format!(
        "[[route]]\nname = \"lab\"\nuser = \"{USER}\"\nupstreams = [\"127.0.0.1:{port}\"]\n\
         upstream_user = \"{user}\"\nauth = \"{auth}\"\nconnect_timeout = 5\nlogin_timeout = 30\n"
    );
    if auth == "key" {
        text.push_str("identity_file = \"gw_id\"\n");
    }
    if let Some(k) = known_hosts {
        std::fs::write(dir.join("upstream_known_hosts"), k).unwrap();
        text.push_str("known_hosts = \"upstream_known_hosts\"\n");
    }
    let path = dir.join("routes.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// sshd upstream, routes file, gateway: the usual setup.
struct Lab {
    f: Fixture,
    dir: TempDir,
    sshd: Sshd,
    server: Server,
}

fn lab(extra: &[&str]) -> Lab {
    lab_with_route(extra, "")
}

/// The usual setup with `route_lines` added to the route.
fn lab_with_route(extra: &[&str], route_lines: &str) -> Lab {
    let f = Fixture::new();
    let dir = TempDir::new("proxy-up");
    let sshd = start_sshd(dir.path());
    let routes = write_routes(dir.path(), sshd.port, Some(&sshd.known_hosts), "key", &me());
    if !route_lines.is_empty() {
        let text = std::fs::read_to_string(&routes).unwrap();
        std::fs::write(&routes, format!("{text}{route_lines}")).unwrap();
    }
    let mut flags = vec!["--routes", routes.to_str().unwrap()];
    flags.extend_from_slice(extra);
    let server = f.server(&flags);
    Lab { f, dir, sshd, server }
}

/// Scrapes the metrics endpoint until a line is `want` (worker snapshots are published
/// shortly after the fact); returns that scrape. Bounded by `LIMIT`.
fn wait_metric(addr: std::net::SocketAddr, want: &str) -> String {
    let deadline = Instant::now() + LIMIT;
    loop {
        let m = scrape_metrics(addr);
        if m.lines().any(|l| l == want) {
            return m;
        }
        assert!(Instant::now() < deadline, "no {want}:\n{m}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn dest() -> String {
    format!("{USER}@127.0.0.1")
}

fn explain(what: &str, out: &Output, server: &Server) -> String {
    format!(
        "{what}: status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- server ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.stderr()
    )
}

#[test]
fn exec_carries_output_exit_code_exit_signal_and_stdin() {
    let l = lab(&["--metrics-listen", "127.0.0.1:0"]);
    let mut cmd = l.f.ssh(&l.server);
    cmd.arg(dest()).arg("echo out-$((6*7)); echo err >&2; whoami; exit 7");
    let out = run(cmd, None, LIMIT);
    assert_eq!(out.status.code(), Some(7), "{}", explain("exit code", &out, &l.server));
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("out-42\n{}\n", me()));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("err"),
        "{}",
        explain("stderr", &out, &l.server)
    );

    let mut cmd = l.f.ssh(&l.server);
    cmd.arg("-v").arg(dest()).arg("kill -TERM $$");
    let out = run(cmd, None, LIMIT);
    assert_eq!(out.status.code(), Some(255), "{}", explain("signal", &out, &l.server));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rtype exit-signal"),
        "{}",
        explain("signal", &out, &l.server)
    );

    // 4 MB through `cat` and back: both directions, the windows, EOF after the data.
    let data = random_bytes(4 << 20, 7);
    let input = l.f.path("cat-in");
    std::fs::write(&input, &data).unwrap();
    let mut cmd = l.f.ssh(&l.server);
    cmd.arg(dest()).arg("cat");
    let out = run(cmd, Some(&input), LIMIT);
    assert!(out.status.success(), "{}", explain("cat", &out, &l.server));
    assert!(
        out.stdout == data,
        "cat returned {} bytes, not the {} sent",
        out.stdout.len(),
        data.len()
    );

    // Worker snapshots reach the endpoint shortly after the sessions end: poll (bounded).
    // A snapshot can be from between a session's start and its upstream login: wait for both.
    wait_metric(l.server.metrics_addr(), "sshfront_proxy_sessions_total{route=\"lab\"} 3");
    let m = wait_metric(
        l.server.metrics_addr(),
        "sshfront_proxy_upstream_setup_seconds_count{route=\"lab\"} 3",
    );
    assert!(
        m.contains("sshfront_proxy_failures_total{route=\"lab\",kind=\"unreachable\"} 0"),
        "{m}"
    );
}

/// `ssh -tt` (plus `extra` options) through the gateway in a private tmux at 80x24, after the
/// shell commands `pre` (run on the pane's terminal first), waiting for the upstream user's
/// login shell: some prompt ending in $ or #.
fn tmux_ssh(l: &Lab, tag: &str, pre: &str, extra: &[&str]) -> Tmux {
    let cmd = l.f.ssh(&l.server);
    let mut line: Vec<String> = vec![format!("{pre}{}", cmd.get_program().to_string_lossy())];
    line.extend(cmd.get_args().map(|a| format!("'{}'", a.to_string_lossy())));
    line.extend(extra.iter().map(|a| format!("'{a}'")));
    line.push("-tt".into());
    line.push(dest());
    let t = Tmux::new(tag);
    t.cmd(&[
        "-f",
        "/dev/null",
        "new-session",
        "-d",
        "-s",
        "s",
        "-x",
        "80",
        "-y",
        "24",
        &line.join(" "),
    ]);
    t.cmd(&["set-option", "-g", "status", "off"]);
    t.wait_for(
        "prompt",
        |l| {
            let l = l.trim_end();
            l.ends_with('$') || l.ends_with('#')
        },
        &l.server,
    );
    t
}

#[test]
fn interactive_pty_shell_through_the_proxy_under_tmux() {
    let l = lab(&[]);
    let t = tmux_ssh(&l, "proxy", "", &[]);
    t.cmd(&["send-keys", "-t", "s", "echo hel''lo-$((6*7))", "Enter"]);
    t.wait_for("command output", |l| l == "hello-42", &l.server);
    let size =
        |t: &Tmux| t.cmd(&["display-message", "-p", "-t", "s", "#{pane_height} #{pane_width}"]);
    let want = size(&t).trim().to_string();
    t.cmd(&["send-keys", "-t", "s", "stty size; echo size-done", "Enter"]);
    let s = t.wait_for("stty size", |l| l == "size-done", &l.server);
    assert!(s.lines().any(|l| l == want), "stty size should say {want:?}:\n{s}");
    t.cmd(&["resize-window", "-t", "s", "-x", "100", "-y", "30"]);
    let want2 = size(&t).trim().to_string();
    assert_ne!(want, want2, "tmux resized the window");
    t.cmd(&["send-keys", "-t", "s", "clear; stty size; echo resized-done", "Enter"]);
    let s = t.wait_for("stty size after resize", |l| l == "resized-done", &l.server);
    assert!(s.lines().any(|l| l == want2), "stty size should say {want2:?}:\n{s}");
    t.cmd(&["send-keys", "-t", "s", "exit", "Enter"]);
}

/// pty-req's terminal modes reach the upstream: the client's terminal has intr set to ^G (not
/// the default ^C), and `stty -a` on the upstream's terminal says so.
#[test]
fn terminal_modes_of_the_client_reach_the_upstream_pty() {
    let l = lab(&[]);
    let t = tmux_ssh(&l, "proxymodes", "stty intr '^G'; ", &[]);
    t.cmd(&["send-keys", "-t", "s", "stty -a | tr ';' '\\n' | grep -w intr", "Enter"]);
    let s = t.wait_for("stty -a", |x| x.trim() == "intr = ^G", &l.server);
    assert!(!s.contains("intr = ^C"), "{s}");
    t.cmd(&["send-keys", "-t", "s", "exit", "Enter"]);
}

/// The asciinema program of the test venv (beside SSHFRONT_TEST_PYTHON when set); a missing
/// one fails the test.
fn asciinema() -> PathBuf {
    let p = match std::env::var_os("SSHFRONT_TEST_PYTHON") {
        Some(py) => PathBuf::from(py).with_file_name("asciinema"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-test/bin/asciinema"),
    };
    assert!(p.exists(), "{} missing: scripts/test.sh installs asciinema", p.display());
    p
}

/// A route's `record_dir`: a proxied PTY session driven through tmux becomes one asciicast v2
/// file naming user, route and upstream, with the upstream's output as "o" events and the
/// resize as an "r" event, and `asciinema cat` replays the command's output.
#[test]
fn a_recorded_proxied_pty_session_replays() {
    let rec = TempDir::new("proxy-rec");
    let line = format!("record_dir = \"{}\"\nrecord_max_size = \"1M\"\n", rec.path().display());
    let l = lab_with_route(&[], &line);
    let t = tmux_ssh(&l, "proxyrec", "", &[]);
    t.cmd(&["send-keys", "-t", "s", "echo rec''orded-$((6*7))", "Enter"]);
    t.wait_for("command output", |l| l == "recorded-42", &l.server);
    t.cmd(&["resize-window", "-t", "s", "-x", "100", "-y", "30"]);
    t.cmd(&["send-keys", "-t", "s", "stty size; echo size-done", "Enter"]);
    t.wait_for("stty size", |l| l == "size-done", &l.server);
    t.cmd(&["send-keys", "-t", "s", "exit", "Enter"]);

    // The recorder thread writes in the background: wait (bounded) for the whole session.
    let python = r#"import json,sys
lines=open(sys.argv[1],encoding='utf-8').read().splitlines()
h=json.loads(lines[0])
assert h['version']==2 and h['width']==80 and h['height']==24, h
s=h['sshfront']
print(s['user'], s['route'], s['upstream'])
out=''
for l in lines[1:]:
    t,k,d=json.loads(l)
    assert isinstance(t,float) and k in ('o','r','m'), l
    if k=='o': out+=d
    if k=='r': print('resize', d)
print('output', json.dumps(out))
"#;
    let deadline = Instant::now() + LIMIT;
    let mut seen = String::new();
    let (file, parsed) = loop {
        let files: Vec<_> = std::fs::read_dir(rec.path())
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        if let [file] = &files[..] {
            let o =
                Command::new("python3").args(["-c", python]).arg(file).output().expect("python3");
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            if o.status.success() && text.contains("size-done") && text.contains("exit") {
                break (file.clone(), text);
            }
            seen = format!(
                "{}\n{}",
                std::fs::read_to_string(file).unwrap_or_default(),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        assert!(
            Instant::now() < deadline,
            "no complete recording in {}: {files:?}\n{seen}\n{}",
            rec.path().display(),
            l.server.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let header = format!("{USER} lab 127.0.0.1:{}", l.sshd.port);
    assert_eq!(parsed.lines().next(), Some(header.as_str()), "{parsed}");
    assert!(parsed.lines().any(|x| x == "resize 100x30"), "{parsed}");
    assert!(parsed.contains("recorded-42"), "{parsed}");

    let mut cat = Command::new(asciinema());
    cat.arg("cat").arg(&file);
    let out = run(cat, None, LIMIT);
    assert!(out.status.success(), "asciinema cat: {}", String::from_utf8_lossy(&out.stderr));
    let replayed = String::from_utf8_lossy(&out.stdout);
    assert!(
        // The shell's own escape sequences may precede it on the line.
        replayed.lines().any(|x| x.trim_end().ends_with("recorded-42")),
        "the command's output in the replay:\n{replayed}"
    );
}

#[test]
fn sftp_and_scp_put_and_get_20_mb_byte_exact() {
    let l = lab(&["--metrics-listen", "127.0.0.1:0"]);
    let data = random_bytes(20 << 20, 11);
    let local = l.f.path("big.bin");
    std::fs::write(&local, &data).unwrap();
    let remote_dir = TempDir::new("proxy-remote");
    let remote = remote_dir.path().join("via-sftp.bin");
    let back = l.f.path("back-sftp.bin");
    let batch = l.f.path("sftp-batch");
    std::fs::write(
        &batch,
        format!(
            "put {} {}\nget {} {}\n",
            local.display(),
            remote.display(),
            remote.display(),
            back.display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new("sftp");
    cmd.arg("-F")
        .arg(l.f.path("ssh_config"))
        .args(["-o", "BatchMode=yes", "-P"])
        .arg(l.server.addr.port().to_string())
        .arg("-b")
        .arg(&batch)
        .arg(dest());
    let out = run(cmd, None, LIMIT);
    assert!(out.status.success(), "{}", explain("sftp", &out, &l.server));
    assert!(std::fs::read(&remote).unwrap() == data, "sftp put: upstream file differs");
    assert!(std::fs::read(&back).unwrap() == data, "sftp get: file differs");

    let remote2 = remote_dir.path().join("via-scp.bin");
    let back2 = l.f.path("back-scp.bin");
    for (from, to) in [
        (local.display().to_string(), format!("{}:{}", dest(), remote2.display())),
        (format!("{}:{}", dest(), remote2.display()), back2.display().to_string()),
    ] {
        let mut cmd = Command::new("scp");
        cmd.arg("-F")
            .arg(l.f.path("ssh_config"))
            .args(["-o", "BatchMode=yes", "-P"])
            .arg(l.server.addr.port().to_string())
            .arg(&from)
            .arg(&to);
        let out = run(cmd, None, LIMIT);
        assert!(out.status.success(), "{}", explain("scp", &out, &l.server));
    }
    assert!(std::fs::read(&remote2).unwrap() == data, "scp put: upstream file differs");
    assert!(std::fs::read(&back2).unwrap() == data, "scp get: file differs");

    // Both legs run the batch pipeline: 80 MB went through, yet no batch outgrew the pooled
    // buffer it was encoded in (a few handshake bytes held back during key exchange aside),
    // and what waited for a side in the channels sat in pooled chunks only.
    let m = wait_metric(l.server.metrics_addr(), "sshfront_closed_total 3");
    let get = |name: &str| -> u64 {
        m.lines()
            .find_map(|x| x.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing:\n{m}"))
    };
    let copied = get("sshfront_payload_bytes_copied_total");
    assert!(copied < 64 * 1024, "{copied} outbound payload bytes copied\n{m}");
    assert_eq!(get("sshfront_inbound_own_buffers_total"), 0, "inbound chunks outside the pool");
    assert!(get("sshfront_output_buffers_total") > 0);
}

/// `-L` of a routed user goes to the upstream, which decides (sshd allows it): the gateway's
/// own `--permit-open`, here one that allows nothing useful, is not applied.
#[test]
fn local_forward_through_the_proxied_session() {
    let l = lab(&["--permit-open", "192.0.2.1:9"]);
    let echo = EchoServer::start();
    let lport = free_port();
    let mut cmd = l.f.ssh(&l.server);
    cmd.arg("-N")
        .arg("-o")
        .arg("ExitOnForwardFailure=yes")
        .arg("-L")
        .arg(format!("127.0.0.1:{lport}:127.0.0.1:{}", echo.port))
        .arg(dest())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut ssh = cmd.spawn().expect("ssh");
    let data = random_bytes(3 << 20, 5);
    let got = round_trip(connect_retry(lport, LIMIT), &data);
    let _ = ssh.kill();
    let _ = ssh.wait();
    assert!(
        got == data,
        "echo through -L returned {} of {} bytes\n{}",
        got.len(),
        data.len(),
        l.server.stderr()
    );
}

/// `ssh -L PORT:/path.sock` of a routed user: direct-streamlocal@openssh.com carried to the
/// upstream sshd, which connects to its Unix socket (an echo server here); the gateway's own
/// `--permit-open-path` (none) does not apply.
#[test]
fn unix_socket_forward_through_the_proxied_session() {
    let l = lab(&[]);
    let sock_dir = TempDir::new("proxy-unix");
    let path = sock_dir.path().join("echo.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let echo = std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let mut r = s.try_clone().unwrap();
            let _ = std::io::copy(&mut r, &mut s);
        }
    });
    let lport = free_port();
    let mut cmd = l.f.ssh(&l.server);
    cmd.arg("-N")
        .arg("-o")
        .arg("ExitOnForwardFailure=yes")
        .arg("-L")
        .arg(format!("127.0.0.1:{lport}:{}", path.display()))
        .arg(dest())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut ssh = cmd.spawn().expect("ssh");
    let data = random_bytes(1 << 20, 3);
    let got = round_trip(connect_retry(lport, LIMIT), &data);
    let _ = ssh.kill();
    let _ = ssh.wait();
    assert!(
        got == data,
        "echo through -L to a Unix socket returned {} of {} bytes\n{}",
        got.len(),
        data.len(),
        l.server.stderr()
    );
    drop(echo);
}

#[test]
fn remote_forward_through_the_proxied_session() {
    let l = lab(&[]);
    let echo = EchoServer::start();
    let rport = free_port();
    let mut cmd = l.f.ssh(&l.server);
    cmd.arg("-N")
        .arg("-o")
        .arg("ExitOnForwardFailure=yes")
        .arg("-R")
        .arg(format!("127.0.0.1:{rport}:127.0.0.1:{}", echo.port))
        .arg(dest())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut ssh = cmd.spawn().expect("ssh");
    // The upstream sshd listens on rport; its connections come back as forwarded-tcpip.
    let data = random_bytes(1 << 20, 9);
    let got = round_trip(connect_retry(rport, LIMIT), &data);
    let _ = ssh.kill();
    let _ = ssh.wait();
    assert!(
        got == data,
        "echo through -R returned {} of {} bytes\n{}",
        got.len(),
        data.len(),
        l.server.stderr()
    );
}

#[test]
fn a_dead_upstream_is_reported_in_words() {
    let f = Fixture::new();
    let dir = TempDir::new("proxy-dead");
    keygen(&dir.path().join("gw_id"));
    let dead = free_port();
    let routes = write_routes(dir.path(), dead, None, "key", &me());
    let server =
        f.server(&["--routes", routes.to_str().unwrap(), "--metrics-listen", "127.0.0.1:0"]);
    let mut cmd = f.ssh(&server);
    cmd.arg(dest()).arg("echo never");
    let out = run(cmd, None, LIMIT);
    assert_ne!(out.status.code(), Some(0), "{}", explain("dead upstream", &out, &server));
    let want = format!("upstream 127.0.0.1:{dead} unreachable");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&want),
        "{}",
        explain("dead upstream", &out, &server)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("never"));
    assert!(server.stderr().contains(&want), "log line:\n{}", server.stderr());
    // Worker snapshots reach the endpoint shortly after: poll (bounded).
    wait_metric(
        server.metrics_addr(),
        "sshfront_proxy_failures_total{route=\"lab\",kind=\"unreachable\"} 1",
    );
}

/// An upstream named by host name (`localhost:PORT`) is looked up off the worker and reached;
/// a name that does not resolve ends the session with "cannot resolve".
#[test]
fn upstream_host_names_resolve_and_unresolvable_ones_say_so() {
    let f = Fixture::new();
    let dir = TempDir::new("proxy-dns");
    let sshd = start_sshd(dir.path());
    let pin = sshd.known_hosts.replace("[127.0.0.1]", "[localhost]");
    let routes = write_routes(dir.path(), sshd.port, Some(&pin), "key", &me());
    let by_ip = format!("127.0.0.1:{}", sshd.port);
    let text = std::fs::read_to_string(&routes).unwrap();
    std::fs::write(&routes, text.replace(&by_ip, &format!("localhost:{}", sshd.port))).unwrap();
    let server = f.server(&["--routes", routes.to_str().unwrap()]);
    // Twice: a lookup, then (maybe) the cached addresses.
    for i in 0..2 {
        let mut cmd = f.ssh(&server);
        cmd.arg(dest()).arg(format!("echo by-name-{i}"));
        let out = run(cmd, None, LIMIT);
        assert!(out.status.success(), "{}", explain("localhost upstream", &out, &server));
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("by-name-{i}\n"));
    }

    let text = std::fs::read_to_string(&routes).unwrap();
    let bad = "no-such-host.invalid:22";
    std::fs::write(&routes, text.replace(&format!("localhost:{}", sshd.port), bad)).unwrap();
    server.signal(libc::SIGHUP);
    let deadline = Instant::now() + LIMIT;
    while !server.stderr().contains("configuration reloaded") {
        assert!(Instant::now() < deadline, "no reload:\n{}", server.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut cmd = f.ssh(&server);
    cmd.arg(dest()).arg("echo never");
    let out = run(cmd, None, LIMIT);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("upstream {bad}: cannot resolve")),
        "{}",
        explain("unresolvable upstream", &out, &server)
    );
}

#[test]
fn a_host_key_mismatch_refuses_the_session() {
    let f = Fixture::new();
    let dir = TempDir::new("proxy-mismatch");
    let sshd = start_sshd(dir.path());
    keygen(&dir.path().join("other"));
    let other = std::fs::read_to_string(dir.path().join("other.pub")).unwrap();
    let other: Vec<&str> = other.split_whitespace().take(2).collect();
    let pin = format!("[127.0.0.1]:{} {}\n", sshd.port, other.join(" "));
    let routes = write_routes(dir.path(), sshd.port, Some(&pin), "key", &me());
    let server = f.server(&["--routes", routes.to_str().unwrap()]);
    let mut cmd = f.ssh(&server);
    cmd.arg(dest()).arg("echo never");
    let out = run(cmd, None, LIMIT);
    assert_ne!(out.status.code(), Some(0), "{}", explain("mismatch", &out, &server));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("host key mismatch"),
        "{}",
        explain("mismatch", &out, &server)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("never"));
}

#[test]
fn password_login_is_passed_upstream_once() {
    // The upstream is a second sshfront that knows alice's password and runs commands.
    let f = Fixture::new();
    let upstream = f.server(&["--allow-exec"]);
    let dir = TempDir::new("proxy-pw");
    let routes = write_routes(dir.path(), upstream.addr.port(), None, "password", USER);
    let server = f.server(&["--routes", routes.to_str().unwrap()]);
    let mut cmd = f.ssh_password(&server);
    cmd.arg(dest()).arg("echo via-$USER");
    let out = run(cmd, None, LIMIT);
    assert!(
        out.status.success(),
        "{}\n--- upstream ---\n{}",
        explain("password", &out, &server),
        upstream.stderr()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("via-{USER}\n"));
    let up_log = upstream.stderr();
    assert!(up_log.contains("method=password"), "upstream login by password:\n{up_log}");
    assert!(!server.stderr().contains(PASSWORD), "the password is never logged");
    // A publickey login has no password to pass on: refused with a reason.
    let mut cmd = f.ssh(&server);
    cmd.arg(dest()).arg("echo never");
    let out = run(cmd, None, LIMIT);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs the login password"),
        "{}",
        explain("publickey to a password route", &out, &server)
    );
}

/// The interpreter with paramiko; a missing one fails the test, it never passes by skipping.
fn python() -> PathBuf {
    let p = match std::env::var_os("SSHFRONT_TEST_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-test/bin/python"),
    };
    let out = Command::new(&p).args(["-c", "import paramiko"]).output();
    match out {
        Ok(o) if o.status.success() => p,
        Ok(o) => {
            panic!("{} cannot import paramiko: {}", p.display(), String::from_utf8_lossy(&o.stderr))
        }
        Err(e) => panic!(
            "no python at {} ({e}); run scripts/test.sh, or set SSHFRONT_TEST_PYTHON",
            p.display()
        ),
    }
}

const PARAMIKO: &str = r#"
import sys, paramiko
port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = paramiko.SSHClient()
c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
c.connect("127.0.0.1", port=port, username=user, password=password, look_for_keys=False,
          allow_agent=False, timeout=30, banner_timeout=30, auth_timeout=30)
_, out, err = c.exec_command("echo para-$((6*7)); echo e >&2; exit 5", timeout=60)
print(out.read().decode().strip(), err.read().decode().strip(), out.channel.recv_exit_status())
s = c.open_sftp()
data = bytes(range(256)) * 4096
with s.open(sys.argv[4], "wb") as f:
    f.write(data)
with s.open(sys.argv[4], "rb") as f:
    back = f.read()
print("sftp", "same" if back == data else "differs", len(back))
c.close()
"#;

#[test]
fn paramiko_as_a_second_downstream_client() {
    let py = python();
    let l = lab(&[]);
    let remote = TempDir::new("proxy-para");
    let mut cmd = Command::new(py);
    cmd.arg("-c")
        .arg(PARAMIKO)
        .arg(l.server.addr.port().to_string())
        .arg(USER)
        .arg(PASSWORD)
        .arg(remote.path().join("p.bin"));
    let out = run(cmd, None, LIMIT);
    assert!(out.status.success(), "{}", explain("paramiko", &out, &l.server));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "para-42 e 5\nsftp same 1048576\n");
    drop(l.sshd);
}

#[test]
fn sighup_routes_change_new_sessions_follow_established_ones_stay() {
    let l = lab(&[]);
    // An established session: `cat` answering line by line.
    let mut cmd = l.f.ssh(&l.server);
    cmd.arg(dest()).arg("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut cat = cmd.spawn().expect("ssh");
    let mut stdin = cat.stdin.take().unwrap();
    let mut lines = BufReader::new(cat.stdout.take().unwrap()).lines();
    stdin.write_all(b"before\n").unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "before");

    // Point the route at a dead port and reload.
    let dead = free_port();
    let routes = l.dir.path().join("routes.toml");
    let text = std::fs::read_to_string(&routes).unwrap();
    std::fs::write(
        &routes,
        text.replace(&format!("127.0.0.1:{}", l.sshd.port), &format!("127.0.0.1:{dead}")),
    )
    .unwrap();
    l.server.signal(libc::SIGHUP);
    let deadline = Instant::now() + LIMIT;
    while !l.server.stderr().contains("configuration reloaded") {
        assert!(Instant::now() < deadline, "no reload:\n{}", l.server.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut cmd = l.f.ssh(&l.server);
    cmd.arg(dest()).arg("echo never");
    let out = run(cmd, None, LIMIT);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&format!("upstream 127.0.0.1:{dead} unreachable")),
        "{}",
        explain("new session after reload", &out, &l.server)
    );
    // The established one still talks to its upstream.
    stdin.write_all(b"after\n").unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "after");
    drop(stdin);
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(st) = cat.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = cat.kill();
            panic!("established session did not end after EOF");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
}

/// A private `ssh-agent -D -a SOCK` holding one ed25519 key, killed (by its PID) on drop.
struct Agent {
    child: Child,
    sock: PathBuf,
    /// The public key line (`ssh-ed25519 AAAA… agent-key-for-backend`).
    public: String,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const AGENT_KEY_COMMENT: &str = "agent-key-for-backend";

fn start_agent(dir: &Path) -> Agent {
    let sock = dir.join("agent.sock");
    let child = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ssh-agent (openssh-client, installed by scripts/test.sh)");
    let key = dir.join("agent_id");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", AGENT_KEY_COMMENT, "-f"])
        .arg(&key)
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen");
    assert!(st.success());
    let agent =
        Agent { child, sock, public: std::fs::read_to_string(key.with_extension("pub")).unwrap() };
    let deadline = Instant::now() + LIMIT;
    while !agent.sock.exists() {
        assert!(Instant::now() < deadline, "ssh-agent did not create {}", agent.sock.display());
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = Command::new("ssh-add")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &agent.sock)
        .stdin(Stdio::null())
        .output()
        .expect("ssh-add");
    assert!(out.status.success(), "ssh-add: {}", String::from_utf8_lossy(&out.stderr));
    agent
}

/// sshd accepting only the agent's key, a route logging in with the user's agent, a gateway,
/// and the agent.
fn agent_lab(extra: &[&str]) -> (Lab, Agent) {
    let f = Fixture::new();
    let dir = TempDir::new("proxy-agent");
    let sshd = start_sshd(dir.path());
    let agent = start_agent(dir.path());
    // The gateway holds no key the backend takes: only the user's agent does.
    std::fs::write(dir.path().join("authorized_keys"), &agent.public).unwrap();
    let routes = write_routes(dir.path(), sshd.port, Some(&sshd.known_hosts), "agent", &me());
    let mut flags = vec!["--routes", routes.to_str().unwrap()];
    flags.extend_from_slice(extra);
    let server = f.server(&flags);
    (Lab { f, dir, sshd, server }, agent)
}

/// `ssh` to the gateway with the agent in reach (`SSH_AUTH_SOCK`), forwarding it with `-A`
/// when `forward`.
fn ssh_with_agent(l: &Lab, agent: &Agent, forward: bool) -> Command {
    let mut cmd = l.f.ssh(&l.server);
    cmd.env("SSH_AUTH_SOCK", &agent.sock).arg(if forward { "-A" } else { "-a" });
    cmd
}

#[test]
fn agent_login_upstream_with_the_users_forwarded_agent() {
    let (l, agent) = agent_lab(&[]);
    let mut cmd = ssh_with_agent(&l, &agent, true);
    cmd.arg(dest()).arg("echo via-agent-$((6*7)); whoami; exit 3");
    let out = run(cmd, None, LIMIT);
    assert_eq!(out.status.code(), Some(3), "{}", explain("agent login", &out, &l.server));
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("via-agent-42\n{}\n", me()));
    // The upstream login happened (the gateway's own identity is not authorized there).
    let log = l.server.stderr();
    assert!(log.contains("logged in as"), "upstream login logged:\n{log}");
}

/// No -A; -A with no key the backend takes; -A with a login key marked no-agent-forwarding.
#[test]
fn agent_login_without_a_forwarded_agent_or_an_accepted_key_says_so() {
    let (l, agent) = agent_lab(&["--metrics-listen", "127.0.0.1:0"]);
    // The agent runs, but is not forwarded.
    let mut cmd = ssh_with_agent(&l, &agent, false);
    cmd.arg(dest()).arg("echo never");
    let out = run(cmd, None, LIMIT);
    assert_ne!(out.status.code(), Some(0), "{}", explain("no -A", &out, &l.server));
    let want = format!("upstream 127.0.0.1:{}: no forwarded agent (ssh -A)", l.sshd.port);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&want),
        "{}",
        explain("no -A", &out, &l.server)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("never"));

    // Forwarded, but the backend takes no key of the agent's.
    let gw = std::fs::read_to_string(l.dir.path().join("gw_id.pub")).unwrap();
    std::fs::write(l.dir.path().join("authorized_keys"), gw).unwrap();
    let mut cmd = ssh_with_agent(&l, &agent, true);
    cmd.arg(dest()).arg("echo never");
    let out = run(cmd, None, LIMIT);
    assert_ne!(out.status.code(), Some(0), "{}", explain("refused key", &out, &l.server));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refused every agent key"),
        "{}",
        explain("refused key", &out, &l.server)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("never"));

    // Forwarded, accepted upstream, but the user's login key says no-agent-forwarding: the
    // gateway does not use the agent.
    std::fs::write(l.dir.path().join("authorized_keys"), &agent.public).unwrap();
    let keys = l.f.path(&format!("{USER}.keys"));
    let restricted: String = std::fs::read_to_string(&keys)
        .unwrap()
        .lines()
        .map(|k| format!("no-agent-forwarding {k}\n"))
        .collect();
    std::fs::write(&keys, restricted).unwrap();
    let mut cmd = ssh_with_agent(&l, &agent, true);
    cmd.arg(dest()).arg("echo never");
    let out = run(cmd, None, LIMIT);
    assert_ne!(out.status.code(), Some(0), "{}", explain("no-agent-forwarding", &out, &l.server));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&want),
        "{}",
        explain("no-agent-forwarding", &out, &l.server)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("never"));

    wait_metric(
        l.server.metrics_addr(),
        "sshfront_proxy_failures_total{route=\"lab\",kind=\"auth\"} 3",
    );
}

#[test]
fn agent_forwarding_end_to_end_ssh_add_on_the_backend_lists_the_users_key() {
    let (l, agent) = agent_lab(&[]);
    let mut cmd = ssh_with_agent(&l, &agent, true);
    cmd.arg(dest()).arg("ssh-add -l; echo rc=$?");
    let out = run(cmd, None, LIMIT);
    assert!(out.status.success(), "{}", explain("ssh-add -l", &out, &l.server));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(AGENT_KEY_COMMENT)
            && stdout.contains("(ED25519)")
            && stdout.contains("rc=0"),
        "{}",
        explain("ssh-add -l on the backend", &out, &l.server)
    );
}
