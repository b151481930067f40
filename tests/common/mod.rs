//! Helpers for integration tests: temporary directories and the real `sshfront` binary on an
//! ephemeral loopback port, killed by its own PID when the handle drops.
#![allow(dead_code, clippy::disallowed_methods, clippy::disallowed_types)]

pub mod gateway;
pub mod sshclient;
pub mod tmux;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sshfront")
}

/// A directory under the system temp dir, removed with everything in it on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "sshfront-test-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Runs the binary to completion with `args` (for flag validation tests).
pub fn run(args: &[&str]) -> Output {
    Command::new(bin()).args(args).stdin(Stdio::null()).output().expect("run sshfront")
}

/// The default host key set, made once per test binary by `ssh-keygen` and kept in memory.
/// Servers started by [`Server::start`] get a copy in their data dir: generating a 3072-bit RSA
/// key per server took over a minute on a loaded 2-core machine, and only the first-start test
/// needs to watch the server generate its own.
fn host_key_set() -> &'static [(String, Vec<u8>)] {
    static KEYS: std::sync::OnceLock<Vec<(String, Vec<u8>)>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = TempDir::new("keyset");
        let mut set = Vec::new();
        for (name, kind, bits) in [
            ("ssh_host_ed25519_key", "ed25519", "256"),
            ("ssh_host_ecdsa_key", "ecdsa", "256"),
            ("ssh_host_rsa_key", "rsa", "3072"),
        ] {
            let path = dir.path().join(name);
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", kind, "-b", bits, "-N", "", "-C", "", "-f"])
                .arg(&path)
                .stdin(Stdio::null())
                .output()
                .expect(
                    "ssh-keygen (openssh-client, installed by scripts/test.sh) must be on PATH",
                );
            assert!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
            for file in [name.to_string(), format!("{name}.pub")] {
                let bytes = std::fs::read(dir.path().join(&file)).expect("read generated key");
                set.push((file, bytes));
            }
        }
        set
    })
}

/// Writes the shared host key set into `keys` (0700, private files 0600), as the server would;
/// files already there stay.
pub fn seed_host_keys(keys: &Path) {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(keys).expect("key dir");
    for (name, bytes) in host_key_set() {
        if keys.join(name).exists() {
            continue;
        }
        let mode = if name.ends_with(".pub") { 0o644 } else { 0o600 };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(keys.join(name))
            .expect("write host key");
        f.write_all(bytes).expect("write host key");
    }
}

/// A running server. Dropping it kills exactly the process we spawned.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub data_dir: TempDir,
    pub stderr_path: PathBuf,
}

impl Server {
    /// Starts the server on 127.0.0.1:0 with a fresh data dir plus `extra` flags, and waits
    /// (bounded) until it has written its port file.
    pub fn start(extra: &[&str]) -> Server {
        let data_dir = TempDir::new("server");
        seed_host_keys(&data_dir.path().join("keys"));
        Self::start_in(data_dir, extra)
    }

    /// Like [`start`](Self::start), but the server generates its own host keys (the first-start
    /// path), which can take seconds for RSA on a loaded machine.
    pub fn start_generating_keys(extra: &[&str]) -> Server {
        Self::start_in(TempDir::new("server"), extra)
    }

    /// Like [`start`](Self::start) with a given data dir (e.g. to test key reuse).
    pub fn start_in(data_dir: TempDir, extra: &[&str]) -> Server {
        let port_file = data_dir.path().join("port");
        let _ = std::fs::remove_file(&port_file);
        let stderr_path = data_dir.path().join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr log");
        let keys = data_dir.path().join("keys");
        let mut child = Command::new(bin())
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&keys)
            .arg("--port-file")
            .arg(&port_file)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn sshfront");
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = loop {
            if let Some(a) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
            {
                break a;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                panic!("sshfront exited early with {status}:\n{log}");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("sshfront did not write its port file within 60 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Server { child, addr, data_dir, stderr_path }
    }

    /// The key directory (`--data-dir`).
    pub fn key_dir(&self) -> PathBuf {
        self.data_dir.path().join("keys")
    }

    /// Sends `signal` to our child (by its PID only).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on the PID of a child we spawned and have not reaped.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, signal);
        }
    }

    /// Waits (bounded) for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The server's log so far. Lines reach the file through the server's logger thread a
    /// moment after the event, so this waits (bounded, 3 s) until the file has stopped growing
    /// for 100 ms before reading it.
    pub fn stderr(&self) -> String {
        let len = || std::fs::metadata(&self.stderr_path).map(|m| m.len()).unwrap_or(0);
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut last = len();
        let mut stable = 0;
        while stable < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            let now = len();
            stable = if now == last { stable + 1 } else { 0 };
            last = now;
        }
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The `--metrics-listen` address the server logged (bounded wait).
    pub fn metrics_addr(&self) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.stderr();
            if let Some(at) = log.find("/readyz on http://") {
                let rest = &log[at + "/readyz on http://".len()..];
                if let Some(a) = rest.split_whitespace().next().and_then(|s| s.parse().ok()) {
                    return a;
                }
            }
            assert!(Instant::now() < deadline, "no metrics address in the log:\n{log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server and returns its stderr (data dir is kept until drop).
    pub fn stop(mut self) -> (TempDir, String) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let log = self.stderr();
        let data_dir = std::mem::replace(&mut self.data_dir, TempDir::new("moved"));
        (data_dir, log)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The body of `GET /metrics` from a `--metrics-listen` endpoint.
pub fn scrape_metrics(addr: SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut s =
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()
}
