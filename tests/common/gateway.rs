//! Fixtures for gateway tests with real clients: client keys from ssh-keygen, an authorized_keys
//! file, a password file written by `sshfront passwd`, an askpass script, an ssh config file,
//! a loopback echo server, and `ssh` runs bounded in time and killed by PID.

use super::{bin, Server, TempDir};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const USER: &str = "alice";
pub const PASSWORD: &str = "correct horse battery";

/// Client-side files for one test.
pub struct Fixture {
    pub dir: TempDir,
}

impl Fixture {
    /// Keys (ed25519, ecdsa, rsa), `alice.keys` authorized for all three, the password file,
    /// the askpass script and an ssh config.
    pub fn new() -> Fixture {
        let dir = TempDir::new("gw");
        let mut authorized = String::new();
        for (name, args) in [
            ("id_ed25519", &["-t", "ed25519"][..]),
            ("id_ecdsa", &["-t", "ecdsa", "-b", "256"][..]),
            ("id_rsa", &["-t", "rsa", "-b", "2048"][..]),
        ] {
            let path = dir.path().join(name);
            let st = Command::new("ssh-keygen")
                .args(args)
                .args(["-q", "-N", "", "-C", name, "-f"])
                .arg(&path)
                .stdin(Stdio::null())
                .status()
                .expect("ssh-keygen (installed by scripts/test.sh)");
            assert!(st.success(), "ssh-keygen {name}");
            authorized
                .push_str(&std::fs::read_to_string(path.with_extension("pub")).expect("pub key"));
        }
        std::fs::write(dir.path().join(format!("{USER}.keys")), authorized).expect("keys");
        let f = Fixture { dir };
        f.set_password(USER, PASSWORD);
        let askpass = f.dir.path().join("askpass.sh");
        std::fs::write(&askpass, "#!/bin/sh\ncat \"$(dirname \"$0\")/askpass.txt\"\n")
            .expect("askpass");
        set_mode(&askpass, 0o700);
        f.answer_password(PASSWORD);
        std::fs::write(
            f.path("ssh_config"),
            format!(
                "Host *\n  UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n  \
                 StrictHostKeyChecking accept-new\n  ConnectTimeout 10\n  LogLevel ERROR\n  \
                 IdentitiesOnly yes\n  IdentityFile {}\n",
                f.path("known_hosts").display(),
                f.path("id_ed25519").display()
            ),
        )
        .expect("ssh config");
        f
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `sshfront passwd USER --password-file …` with the password on stdin.
    pub fn set_password(&self, user: &str, password: &str) {
        let mut child = Command::new(bin())
            .args(["passwd", user, "--password-file"])
            .arg(self.path("passwords"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sshfront passwd");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{password}\n").as_bytes())
            .expect("write password");
        let out = wait_bounded(child, Duration::from_secs(30));
        assert!(out.status.success(), "passwd: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// What the askpass script answers from now on.
    pub fn answer_password(&self, password: &str) {
        std::fs::write(self.path("askpass.txt"), format!("{password}\n")).expect("askpass.txt");
    }

    /// Server flags for publickey (`--authorized-keys DIR/%u.keys`) and passwords.
    pub fn auth_flags(&self) -> Vec<String> {
        vec![
            "--authorized-keys".into(),
            format!("{}/%u.keys", self.dir.path().display()),
            "--password-file".into(),
            self.path("passwords").display().to_string(),
        ]
    }

    /// Starts a server with the auth flags plus `extra`.
    pub fn server(&self, extra: &[&str]) -> Server {
        let mut flags = self.auth_flags();
        flags.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = flags.iter().map(String::as_str).collect();
        Server::start(&refs)
    }

    /// An `ssh` command with our config: publickey only (BatchMode), to `alice@127.0.0.1`.
    pub fn ssh(&self, server: &Server) -> Command {
        let mut c = Command::new("ssh");
        c.arg("-F")
            .arg(self.path("ssh_config"))
            .args(["-o", "BatchMode=yes", "-o", "PreferredAuthentications=publickey"])
            .arg("-p")
            .arg(server.addr.port().to_string());
        c
    }

    /// An `ssh` command that logs in with the password through the askpass script.
    pub fn ssh_password(&self, server: &Server) -> Command {
        let mut c = Command::new("ssh");
        c.arg("-F")
            .arg(self.path("ssh_config"))
            .args(["-o", "PreferredAuthentications=password", "-o", "NumberOfPasswordPrompts=1"])
            .arg("-p")
            .arg(server.addr.port().to_string())
            .env("SSH_ASKPASS", self.path("askpass.sh"))
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("DISPLAY", ":0");
        c
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Runs `cmd` with stdin from `input` (or null), stdout and stderr captured, killed by PID
/// after `limit`.
pub fn run(mut cmd: Command, input: Option<&Path>, limit: Duration) -> Output {
    let stdin = match input {
        Some(p) => Stdio::from(std::fs::File::open(p).expect("input file")),
        None => Stdio::null(),
    };
    let child = cmd
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ssh (installed by scripts/test.sh)");
    wait_bounded(child, limit)
}

/// Collects the output of `child`, killing it (by its PID) if it outlives `limit`.
pub fn wait_bounded(mut child: Child, limit: Duration) -> Output {
    let readers: Vec<JoinHandle<Vec<u8>>> = [
        child.stdout.take().map(|r| Box::new(r) as Box<dyn Read + Send>),
        child.stderr.take().map(|r| Box::new(r) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .map(|r| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            v
        })
    })
    .collect();
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut outs = readers.into_iter().map(|h| h.join().unwrap_or_default());
    let stdout = outs.next().unwrap_or_default();
    let stderr = outs.next().unwrap_or_default();
    Output { status, stdout, stderr }
}

/// A loopback echo server on its own threads; stops accepting when dropped.
pub struct EchoServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EchoServer {
    pub fn start() -> EchoServer {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind echo");
        let port = l.local_addr().expect("addr").port();
        l.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(600);
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                match l.accept() {
                    Ok((c, _)) => {
                        std::thread::spawn(move || echo(c));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        EchoServer { port, stop, thread: Some(thread) }
    }
}

fn echo(mut c: TcpStream) {
    let _ = c.set_nonblocking(false);
    let _ = c.set_read_timeout(Some(Duration::from_secs(60)));
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if c.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = c.shutdown(Shutdown::Write);
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Deterministic pseudo-random bytes (xorshift), so a failure can be reproduced.
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(n);
    v
}

/// Connects to 127.0.0.1:`port`, retrying until `limit` (a forward being set up).
pub fn connect_retry(port: u16, limit: Duration) -> TcpStream {
    let deadline = Instant::now() + limit;
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => return s,
            Err(e) if Instant::now() > deadline => panic!("connect to {port}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Sends `data`, half-closes, and reads everything back (bounded by the socket timeout).
pub fn round_trip(mut s: TcpStream, data: &[u8]) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut w = s.try_clone().expect("clone");
    let data = data.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&data);
        let _ = w.shutdown(Shutdown::Write);
    });
    let mut back = Vec::new();
    let _ = s.read_to_end(&mut back);
    let _ = writer.join();
    back
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}
