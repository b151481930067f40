//! sshfront behaving like sshd where gateway users rely on it, checked with the stock OpenSSH
//! client on 127.0.0.1: MaxSessions counting sessions only, SSH_CONNECTION, subsystems
//! (sftp/scp), SetEnv, Unix-socket forwarding, accepted publickey algorithms and security keys.
// Tests run real processes and measure bounded waits: clocks and std sockets are fine here.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use common::gateway::{connect_retry, free_port, random_bytes, run, EchoServer, Fixture, USER};
use common::Server;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Child, Output, Stdio};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(90);

fn dest() -> String {
    format!("{USER}@127.0.0.1")
}

fn explain(what: &str, out: &Output, server: &Server) -> String {
    format!(
        "{what}: status {:?}\n--- stdout ---\n{}\n--- ssh stderr ---\n{}\n--- server ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        tail(&server.stderr())
    )
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Kills the child (by its PID) when dropped, so a failed assertion leaves no ssh behind.
struct Killer(Child);

impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads the ssh client's stderr on a thread; sends the port of "Allocated port N".
fn allocated_port(ssh: &mut Child) -> std::sync::mpsc::Receiver<u16> {
    let stderr = ssh.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(p) = line.strip_prefix("Allocated port ") {
                if let Some(n) = p.split_whitespace().next().and_then(|n| n.parse::<u16>().ok()) {
                    let _ = tx.send(n);
                }
            }
        }
    });
    rx
}

/// Opens `n` connections through a forward and proves each is open end to end (one byte out
/// and back) before any closes: all `n` channels exist at once. Then each carries its own
/// pseudo-random data both ways, on its own thread; returns (sent, received) per connection.
fn many_at_once(port: u16, n: usize, len: usize, seed: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut socks = Vec::new();
    for _ in 0..n {
        let mut s = connect_retry(port, Duration::from_secs(20));
        s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        s.write_all(b"!").expect("first byte");
        let mut one = [0u8; 1];
        s.read_exact(&mut one).expect("first byte back: channel open");
        assert_eq!(&one, b"!");
        socks.push(s);
    }
    let threads: Vec<_> = socks
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            std::thread::spawn(move || {
                let data = random_bytes(len, seed + i as u64);
                let mut w = s.try_clone().expect("clone");
                let d = data.clone();
                let writer = std::thread::spawn(move || {
                    let _ = w.write_all(&d);
                    let _ = w.shutdown(Shutdown::Write);
                });
                let mut back = Vec::new();
                let _ = s.read_to_end(&mut back);
                let _ = writer.join();
                (data, back)
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().expect("relay thread")).collect()
}

#[test]
fn twenty_forwarded_connections_each_way_with_default_max_sessions() {
    let f = Fixture::new();
    let echo = EchoServer::start();
    let server = f.server(&["--permit-open", "127.0.0.1:*", "--permit-listen", "localhost:*"]);
    let local = free_port();
    let mut cmd = f.ssh(&server);
    cmd.args(["-N", "-o", "ExitOnForwardFailure=yes", "-o", "LogLevel=INFO", "-L"])
        .arg(format!("127.0.0.1:{local}:127.0.0.1:{}", echo.port))
        .arg("-R")
        .arg(format!("0:127.0.0.1:{}", echo.port))
        .arg(dest())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut ssh = cmd.spawn().expect("ssh -L -R");
    let rx = allocated_port(&mut ssh);
    let _ssh = Killer(ssh);
    let remote = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("no allocated port\n{}", server.stderr()));
    let l = std::thread::spawn(move || many_at_once(local, 20, 100_000, 100));
    let r = many_at_once(remote, 20, 100_000, 200);
    let l = l.join().expect("-L side");
    for (what, results) in [("-L", l), ("-R", r)] {
        assert_eq!(results.len(), 20);
        for (i, (sent, back)) in results.iter().enumerate() {
            // The echo also returned the first byte, read before.
            assert!(
                back == sent,
                "{what} #{i}: bytes differ ({} of {})\n{}",
                back.len(),
                sent.len(),
                tail(&server.stderr())
            );
        }
    }
    assert!(!server.stderr().contains("too many"), "{}", server.stderr());
}

/// A one-connection TCP relay in front of `server` that sends a PROXY v1 header naming the
/// client it accepted (as HAProxy's `send-proxy` does). Returns its port and the client
/// address it saw.
fn proxy_v1_once(
    server: std::net::SocketAddr,
) -> (u16, std::sync::mpsc::Receiver<std::net::SocketAddr>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
    let port = l.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((c, client)) = l.accept() else { return };
        let _ = tx.send(client);
        let Ok(mut s) = TcpStream::connect(server) else { return };
        let header =
            format!("PROXY TCP4 {} {} {} {}\r\n", client.ip(), server.ip(), client.port(), port);
        if s.write_all(header.as_bytes()).is_err() {
            return;
        }
        let _ = c.set_read_timeout(Some(Duration::from_secs(60)));
        let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
        let pipe = |mut a: TcpStream, mut b: TcpStream| {
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut a, &mut b);
                let _ = b.shutdown(Shutdown::Write);
            })
        };
        let (c2, s2) = (c.try_clone().expect("clone"), s.try_clone().expect("clone"));
        let t1 = pipe(c, s2);
        let t2 = pipe(s, c2);
        let _ = t1.join();
        let _ = t2.join();
    });
    (port, rx)
}

#[test]
fn ssh_connection_names_both_ends_and_the_real_client_behind_proxy() {
    let f = Fixture::new();
    let server = f.server(&["--allow-exec"]);
    let mut cmd = f.ssh(&server);
    cmd.args(["-b", "127.0.0.2"]).arg(dest()).arg("echo \"$SSH_CONNECTION|$SSH_CLIENT\"");
    let out = run(cmd, None, LIMIT);
    assert!(out.status.success(), "{}", explain("SSH_CONNECTION", &out, &server));
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (conn, client) = line.split_once('|').expect("two values");
    let f4: Vec<&str> = conn.split(' ').collect();
    assert_eq!(f4.len(), 4, "{line}");
    assert_eq!(f4[0], "127.0.0.2");
    assert!(f4[1].parse::<u16>().is_ok_and(|p| p > 0), "{line}");
    assert_eq!(f4[2], "127.0.0.1");
    assert_eq!(f4[3], server.addr.port().to_string());
    assert_eq!(client, format!("{} {} {}", f4[0], f4[1], f4[3]), "SSH_CLIENT agrees");

    // Behind a PROXY-protocol relay: the client named in the header, and our own socket's
    // address (the one the relay connected to).
    let proxied = f.server(&["--allow-exec", "--proxy-protocol", "--proxy-from", "127.0.0.1"]);
    let (relay_port, seen) = proxy_v1_once(proxied.addr);
    let mut cmd = std::process::Command::new("ssh");
    cmd.arg("-F")
        .arg(f.path("ssh_config"))
        .args(["-o", "BatchMode=yes", "-o", "PreferredAuthentications=publickey"])
        .args(["-o", "UserKnownHostsFile=/dev/null", "-b", "127.0.0.3", "-p"])
        .arg(relay_port.to_string())
        .arg(dest())
        .arg("echo \"$SSH_CONNECTION\"");
    let out = run(cmd, None, LIMIT);
    assert!(out.status.success(), "{}", explain("behind PROXY", &out, &proxied));
    let client = seen.recv_timeout(Duration::from_secs(5)).expect("relay saw the client");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("127.0.0.3 {} 127.0.0.1 {}", client.port(), proxied.addr.port())
    );
}

/// Twisted Conch's `conch`, from the test venv (scripts/test.sh installs twisted there).
fn conch_bin() -> std::path::PathBuf {
    let venv_bin = match std::env::var_os("SSHFRONT_TEST_PYTHON") {
        Some(py) => std::path::PathBuf::from(py).parent().map(|p| p.to_path_buf()),
        None => None,
    }
    .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-test/bin"));
    let conch = venv_bin.join("conch");
    assert!(
        conch.exists(),
        "{} missing: run scripts/test.sh (installs twisted in the test venv)",
        conch.display()
    );
    conch
}

/// `conch` logging in with an RSA key (it signs with SHA-1 `ssh-rsa`) and running a command
/// that exits 42; bounded, killed by PID. Returns its exit code.
fn conch_rsa_login(f: &Fixture, server: &Server) -> Option<i32> {
    let host_pub = std::process::Command::new("ssh-keygen")
        .arg("-y")
        .arg("-f")
        .arg(server.key_dir().join("ssh_host_ed25519_key"))
        .output()
        .expect("ssh-keygen -y");
    let host_pub = String::from_utf8_lossy(&host_pub.stdout).trim().to_string();
    let kh = f.path("conch_known_hosts");
    std::fs::write(&kh, format!("127.0.0.1 {host_pub}\n")).expect("known hosts");
    let mut cmd = std::process::Command::new(conch_bin());
    cmd.args(["-l", USER, "-p"])
        .arg(server.addr.port().to_string())
        .arg("-i")
        .arg(f.path("id_rsa"))
        .arg(format!("--known-hosts={}", kh.display()))
        .args(["--host-key-algorithms=ssh-ed25519", "--user-authentications=publickey", "-T"])
        .arg("127.0.0.1")
        .arg("echo conch-ran >&2; exit 42");
    // conch keeps waiting after its only method failed: the bound ends it.
    let out = run(cmd, None, Duration::from_secs(20));
    out.status.code()
}

#[test]
fn sha1_rsa_signatures_only_with_pubkey_accepted_algorithms_plus_ssh_rsa() {
    let f = Fixture::new();
    let server = f.server(&["--allow-exec"]);
    assert_ne!(conch_rsa_login(&f, &server), Some(42), "ssh-rsa (SHA-1) accepted by default");
    let log = server.stderr();
    assert!(log.contains("authentication failed"), "{log}");
    assert!(!log.contains("authenticated user"), "{log}");

    let server = f.server(&["--allow-exec", "--pubkey-accepted-algorithms", "+ssh-rsa"]);
    assert_eq!(conch_rsa_login(&f, &server), Some(42), "{}", server.stderr());
    assert!(server.stderr().contains("authenticated user=\"alice\" method=publickey"));
}

#[test]
fn server_sig_algs_follow_pubkey_accepted_algorithms() {
    let f = Fixture::new();
    for (flags, expect) in [
        (&[][..], "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com"),
        (&["--pubkey-accepted-algorithms", "ssh-ed25519,ssh-rsa"][..], "ssh-ed25519,ssh-rsa"),
    ] {
        let mut all = vec!["--allow-exec"];
        all.extend_from_slice(flags);
        let server = f.server(&all);
        let mut cmd = f.ssh(&server);
        cmd.arg("-vv").arg(dest()).arg("true");
        let out = run(cmd, None, LIMIT);
        assert!(out.status.success(), "{}", explain("ssh -vv", &out, &server));
        let err = String::from_utf8_lossy(&out.stderr);
        let line = format!("server-sig-algs=<{expect}>");
        assert!(err.contains(&line), "{flags:?}: no {line:?} in\n{err}");
    }
}

const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";

fn sftp_server() -> &'static str {
    assert!(
        std::path::Path::new(SFTP_SERVER).exists(),
        "{SFTP_SERVER} missing: run scripts/test.sh (installs openssh-sftp-server)"
    );
    SFTP_SERVER
}

#[test]
fn sftp_and_scp_put_and_get_twenty_megabytes_through_the_subsystem() {
    let f = Fixture::new();
    let sub = format!("sftp={}", sftp_server());
    let server = f.server(&["--subsystem", &sub]);
    let data = random_bytes(20 << 20, 7);
    let local = f.path("local.bin");
    std::fs::write(&local, &data).unwrap();
    let remote = f.path("remote-sftp.bin");
    let back = f.path("back-sftp.bin");
    let batch = f.path("batch");
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
    let mut cmd = std::process::Command::new("sftp");
    cmd.arg("-F")
        .arg(f.path("ssh_config"))
        .args(["-o", "BatchMode=yes", "-P"])
        .arg(server.addr.port().to_string())
        .arg("-b")
        .arg(&batch)
        .arg(dest());
    let out = run(cmd, None, LIMIT);
    assert!(out.status.success(), "{}", explain("sftp", &out, &server));
    assert!(std::fs::read(&remote).unwrap() == data, "sftp put: bytes differ");
    assert!(std::fs::read(&back).unwrap() == data, "sftp get: bytes differ");

    // scp speaks SFTP since OpenSSH 9.0.
    let remote = f.path("remote-scp.bin");
    let back = f.path("back-scp.bin");
    for (from, to) in [
        (local.display().to_string(), format!("{}:{}", dest(), remote.display())),
        (format!("{}:{}", dest(), remote.display()), back.display().to_string()),
    ] {
        let mut cmd = std::process::Command::new("scp");
        cmd.arg("-F")
            .arg(f.path("ssh_config"))
            .args(["-o", "BatchMode=yes", "-P"])
            .arg(server.addr.port().to_string())
            .arg(&from)
            .arg(&to);
        let out = run(cmd, None, LIMIT);
        assert!(out.status.success(), "{}", explain("scp", &out, &server));
    }
    assert!(std::fs::read(&remote).unwrap() == data, "scp put: bytes differ");
    assert!(std::fs::read(&back).unwrap() == data, "scp get: bytes differ");
}

#[test]
fn an_unconfigured_subsystem_is_refused_with_channel_failure() {
    let f = Fixture::new();
    let sub = format!("sftp={}", sftp_server());
    // Even with --session-command (sshd's ForceCommand), the subsystem must be configured.
    let server = f.server(&["--subsystem", &sub, "--session-command", "echo ran"]);
    let mut cmd = f.ssh(&server);
    cmd.args(["-o", "LogLevel=INFO", "-s"]).arg(dest()).arg("nosuch");
    let out = run(cmd, None, LIMIT);
    assert_ne!(out.status.code(), Some(0), "{}", explain("unknown subsystem", &out, &server));
    assert!(out.stdout.is_empty(), "{}", explain("unknown subsystem", &out, &server));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("subsystem request failed"), "{}", explain("refusal", &out, &server));
    assert!(!server.stderr().contains("started pid"), "{}", server.stderr());
}

#[test]
fn set_env_wins_over_the_clients_env_request() {
    let f = Fixture::new();
    let server = f.server(&[
        "--allow-exec",
        "--set-env",
        "LANG=server.UTF-8",
        "--set-env",
        "DEPLOY_ENV=prod=1",
    ]);
    let mut cmd = f.ssh(&server);
    cmd.args(["-o", "SetEnv=LANG=client.UTF-8 LC_PAPER=client"])
        .arg(dest())
        .arg("echo \"$LANG|$LC_PAPER|$DEPLOY_ENV\" >&2");
    let out = run(cmd, None, LIMIT);
    assert!(out.status.success(), "{}", explain("set-env", &out, &server));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("server.UTF-8|client|prod=1"), "{}", explain("set-env", &out, &server));
}

/// A Unix-socket echo server on its own thread (bounded: 600 s, non-blocking accept).
fn unix_echo(path: &std::path::Path) -> std::thread::JoinHandle<()> {
    let l = std::os::unix::net::UnixListener::bind(path).expect("bind unix echo");
    l.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(600);
        while std::time::Instant::now() < deadline {
            match l.accept() {
                Ok((mut c, _)) => {
                    std::thread::spawn(move || {
                        let _ = c.set_nonblocking(false);
                        let _ = c.set_read_timeout(Some(Duration::from_secs(60)));
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n) = c.read(&mut buf) {
                            if n == 0 || c.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = c.shutdown(Shutdown::Write);
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    })
}

/// Sends `data` over a Unix socket, half-closes, reads everything back.
fn unix_round_trip(path: &std::path::Path, data: &[u8]) -> Vec<u8> {
    let mut s = std::os::unix::net::UnixStream::connect(path).expect("connect unix");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut w = s.try_clone().expect("clone");
    let d = data.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&d);
        let _ = w.shutdown(Shutdown::Write);
    });
    let mut back = Vec::new();
    let _ = s.read_to_end(&mut back);
    let _ = writer.join();
    back
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

#[test]
fn unix_socket_forwarding_both_ways_behind_the_path_allow_lists() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    let echo_sock = f.path("backend.sock");
    let _echo = unix_echo(&echo_sock);
    let tcp_echo = EchoServer::start();
    let listen_sock = f.path("listen.sock");
    let open_glob = format!("{}/*.sock", f.dir.path().display());
    let server = f.server(&[
        "--permit-open-path",
        &open_glob,
        "--permit-listen-path",
        listen_sock.to_str().unwrap(),
    ]);

    // ssh -L PORT:/path.sock (direct-streamlocal@openssh.com).
    let (local, refused) = (free_port(), free_port());
    let mut cmd = f.ssh(&server);
    cmd.args(["-N", "-o", "ExitOnForwardFailure=yes", "-L"])
        .arg(format!("127.0.0.1:{local}:{}", echo_sock.display()))
        .arg("-L")
        .arg(format!("127.0.0.1:{refused}:/tmp/sshfront-not-allowed.sock"))
        .arg("-R")
        .arg(format!("{}:127.0.0.1:{}", listen_sock.display(), tcp_echo.port))
        .arg(dest())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let ssh = Killer(cmd.spawn().expect("ssh -L -R"));
    let data = random_bytes(1 << 20, 11);
    let s = connect_retry(local, Duration::from_secs(20));
    let back = common::gateway::round_trip(s, &data);
    assert!(
        back == data,
        "-L to a Unix socket: bytes differ ({} of {})\n{}",
        back.len(),
        data.len(),
        server.stderr()
    );
    // A path outside --permit-open-path: the channel is refused, the local connection closes.
    let s = connect_retry(refused, Duration::from_secs(5));
    assert!(common::gateway::round_trip(s, b"nothing").is_empty());
    assert!(server.stderr().contains("listening on"), "{}", server.stderr());

    // ssh -R /path.sock:HOST:PORT (streamlocal-forward@openssh.com): the server listens.
    assert!(
        wait_until(Duration::from_secs(20), || listen_sock.exists()),
        "no listening socket\n{}",
        server.stderr()
    );
    let mode = std::fs::metadata(&listen_sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "listening socket mode");
    let data = random_bytes(1 << 20, 12);
    let back = unix_round_trip(&listen_sock, &data);
    assert!(back == data, "-R from a Unix socket: bytes differ ({} of {})", back.len(), data.len());
    drop(ssh);
    assert!(
        wait_until(Duration::from_secs(20), || !listen_sock.exists()),
        "socket not removed when the connection closed\n{}",
        server.stderr()
    );

    // Outside the allow-lists: refused.
    let other = std::path::Path::new("/tmp")
        .join(format!("sshfront-not-allowed-{}.sock", std::process::id()));
    let mut cmd = f.ssh(&server);
    cmd.args(["-o", "LogLevel=INFO", "-o", "ExitOnForwardFailure=yes", "-N", "-R"])
        .arg(format!("{}:127.0.0.1:{}", other.display(), tcp_echo.port))
        .arg(dest());
    let out = run(cmd, None, LIMIT);
    assert_ne!(out.status.code(), Some(0), "{}", explain("-R outside the list", &out, &server));
    assert!(!other.exists());
}

/// OpenSSH's dummy security-key provider (Debian's openssh-tests; scripts/test.sh installs it).
const SK_DUMMY: &str = "/usr/lib/openssh/regress/misc/sk-dummy/sk-dummy.so";

fn sk_dummy() -> &'static str {
    assert!(
        std::path::Path::new(SK_DUMMY).exists(),
        "{SK_DUMMY} missing: run scripts/test.sh (installs openssh-tests)"
    );
    SK_DUMMY
}

/// `ssh-keygen -t TYPE -w sk-dummy.so` with extra `-O` options; returns the private key path
/// and the public line.
fn sk_key(f: &Fixture, name: &str, key_type: &str, opts: &[&str]) -> (std::path::PathBuf, String) {
    let path = f.path(name);
    let mut cmd = std::process::Command::new("ssh-keygen");
    cmd.args(["-q", "-t", key_type, "-w", sk_dummy(), "-N", "", "-C", name]);
    for o in opts {
        cmd.args(["-O", o]);
    }
    cmd.arg("-f").arg(&path);
    let out = run(cmd, None, LIMIT);
    assert!(
        out.status.success(),
        "ssh-keygen {key_type}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = std::fs::read_to_string(path.with_extension("pub")).expect("sk public key");
    (path, public.trim().to_string())
}

/// Logs in with a security key through the dummy provider; true if the command ran.
fn sk_login(f: &Fixture, server: &Server, key: &std::path::Path) -> bool {
    let mut cmd = f.ssh(server);
    cmd.args(["-o", &format!("SecurityKeyProvider={}", sk_dummy()), "-i"])
        .arg(key)
        .arg(dest())
        .arg("echo sk-ok");
    let out = run(cmd, None, LIMIT);
    out.status.success() && out.stdout == b"sk-ok\n"
}

#[test]
fn security_keys_log_in_with_presence_and_key_options_as_sshd() {
    let f = Fixture::new();
    let (ed, ed_pub) = sk_key(&f, "id_ed25519_sk", "ed25519-sk", &[]);
    let (ec, ec_pub) = sk_key(&f, "id_ecdsa_sk", "ecdsa-sk", &[]);
    let (nt, nt_pub) = sk_key(&f, "id_notouch_sk", "ed25519-sk", &["no-touch-required"]);
    let keys = f.path(&format!("{USER}.keys"));
    let server = f.server(&["--allow-exec"]);
    let set = |lines: &[String]| std::fs::write(&keys, lines.join("\n") + "\n").unwrap();

    set(&[ed_pub.clone(), ec_pub.clone(), nt_pub.clone()]);
    assert!(sk_login(&f, &server, &ed), "sk-ssh-ed25519\n{}", tail(&server.stderr()));
    assert!(sk_login(&f, &server, &ec), "sk-ecdsa-sha2-nistp256\n{}", tail(&server.stderr()));
    // A key made with -O no-touch-required signs without user presence: refused unless its
    // authorized_keys line says no-touch-required.
    assert!(!sk_login(&f, &server, &nt), "presence is required by default");
    set(&[format!("no-touch-required {nt_pub}")]);
    assert!(sk_login(&f, &server, &nt), "no-touch-required\n{}", tail(&server.stderr()));
    // verify-required: the dummy provider never reports user verification (no PIN).
    set(&[format!("verify-required {ec_pub}")]);
    assert!(!sk_login(&f, &server, &ec), "verify-required needs a verified user");
    let log = server.stderr();
    assert_eq!(log.matches("authenticated user=\"alice\" method=publickey").count(), 3, "{log}");
}

#[test]
fn new_flags_are_in_help_and_bad_values_name_the_flag() {
    let out = common::run(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--max-sessions",
        "--max-channels",
        "--pubkey-accepted-algorithms",
        "--subsystem",
        "--set-env",
        "--permit-open-path",
        "--permit-listen-path",
    ] {
        assert!(help.contains(flag), "--help does not mention {flag}");
    }
    for (args, flag) in [
        (&["--subsystem", "sftp"][..], "--subsystem"),
        (&["--set-env", "NOVALUE"][..], "--set-env"),
        (&["--pubkey-accepted-algorithms", "+ssh-dss"][..], "--pubkey-accepted-algorithms"),
        (&["--permit-open-path", "relative"][..], "--permit-open-path"),
        (&["--max-channels", "0"][..], "--max-channels"),
    ] {
        let out = common::run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag), "{args:?}: {err}");
    }
}
