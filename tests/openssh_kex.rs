//! The stock OpenSSH client against the real binary on 127.0.0.1: every key exchange, host-key
//! algorithm, cipher, MAC and compression method it shares with us, forced one at a time, must
//! reach SSH2_MSG_SERVICE_ACCEPT, and the host key it records must be the server's key file.
// Tests run real processes and measure bounded waits: clocks and std sockets are fine here.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use common::{Server, TempDir};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Host keys made by ssh-keygen (an independent implementation), one per algorithm family.
struct Keys {
    dir: TempDir,
}

impl Keys {
    fn new() -> Keys {
        let dir = TempDir::new("hostkeys");
        for (name, args) in [
            ("ed25519", vec!["-t", "ed25519"]),
            ("ecdsa256", vec!["-t", "ecdsa", "-b", "256"]),
            ("ecdsa384", vec!["-t", "ecdsa", "-b", "384"]),
            ("ecdsa521", vec!["-t", "ecdsa", "-b", "521"]),
            ("rsa", vec!["-t", "rsa", "-b", "2048"]),
        ] {
            let path = dir.path().join(name);
            let st = Command::new("ssh-keygen")
                .args(&args)
                .args(["-q", "-N", "", "-C", "", "-f"])
                .arg(&path)
                .status()
                .expect("ssh-keygen (installed by scripts/test.sh)");
            assert!(st.success(), "ssh-keygen {name}");
        }
        Keys { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn flags(&self) -> Vec<String> {
        ["ed25519", "ecdsa256", "ecdsa384", "ecdsa521", "rsa"]
            .iter()
            .flat_map(|n| ["--host-key".to_string(), self.path(n).display().to_string()])
            .collect()
    }

    /// The base64 key blob of `name.pub`.
    fn public_blob(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.path(&format!("{name}.pub"))).expect("pub");
        text.split_whitespace().nth(1).expect("blob").to_string()
    }
}

/// Runs `ssh -vvv` with `opts`; returns (its debug log, the known_hosts it wrote).
fn probe(server: &Server, tag: &str, opts: &[&str]) -> (String, String) {
    let kh = server.data_dir.path().join(format!("known_hosts_{tag}"));
    let _ = std::fs::remove_file(&kh);
    let mut child = Command::new("ssh")
        .args([
            "-vvv",
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=accept-new",
        ])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", kh.display()))
        .args(["-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10"])
        .args(["-o", "PreferredAuthentications=none,password", "-o", "NumberOfPasswordPrompts=0"])
        .args(opts)
        .arg("-p")
        .arg(server.addr.port().to_string())
        .arg("probe@127.0.0.1")
        .arg("true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ssh (installed by scripts/test.sh)");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("ssh output");
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    let known = std::fs::read_to_string(&kh).unwrap_or_default();
    (log, known)
}

fn assert_service_accept(log: &str, what: &str, server: &Server) {
    assert!(
        log.contains("SSH2_MSG_SERVICE_ACCEPT received"),
        "{what}: no SERVICE_ACCEPT\n--- ssh ---\n{}\n--- server ---\n{}",
        tail(log),
        tail(&server.stderr())
    );
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// What the installed client supports (`ssh -Q kex|cipher|mac|key`).
fn client_supports(query: &str) -> Vec<String> {
    let out = Command::new("ssh").args(["-Q", query]).output().expect("ssh -Q");
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

fn negotiated_line<'a>(log: &'a str, key: &str) -> Option<&'a str> {
    log.lines().find(|l| l.contains(key))
}

fn start(keys: &Keys, extra: &[&str]) -> Server {
    let mut flags = keys.flags();
    flags.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    Server::start(&refs)
}

fn ours(list: &[&'static str]) -> Vec<&'static str> {
    list.to_vec()
}

#[test]
fn every_kex_method_the_client_shares() {
    let keys = Keys::new();
    let all_kex: Vec<&str> = sshfront::algo::kex::ALL.iter().map(|k| k.name).collect();
    // Enable the off-by-default methods too: each must work when an operator turns it on.
    let kex_flag = format!("--kex={}", all_kex.join(","));
    let server = start(&keys, &[&kex_flag]);
    let client = client_supports("kex");
    let shared: Vec<&str> =
        all_kex.iter().copied().filter(|k| client.iter().any(|c| c == k)).collect();
    for must in [
        "curve25519-sha256",
        "ecdh-sha2-nistp256",
        "diffie-hellman-group14-sha256",
        "diffie-hellman-group-exchange-sha256",
        "sntrup761x25519-sha512@openssh.com",
    ] {
        assert!(shared.contains(&must), "client lacks {must}: {client:?}");
    }
    for k in shared {
        let (log, _) = probe(&server, k, &["-o", &format!("KexAlgorithms={k}")]);
        assert_service_accept(&log, k, &server);
        let line = negotiated_line(&log, "kex: algorithm:").unwrap_or_default();
        assert!(line.ends_with(k), "{k}: negotiated {line}");
    }
}

#[test]
fn every_host_key_algorithm_and_the_recorded_key_matches() {
    let keys = Keys::new();
    let server = start(&keys, &["--host-key-algorithms=+ssh-rsa"]);
    let client = client_supports("key");
    for (alg, file) in [
        ("ssh-ed25519", "ed25519"),
        ("ecdsa-sha2-nistp256", "ecdsa256"),
        ("ecdsa-sha2-nistp384", "ecdsa384"),
        ("ecdsa-sha2-nistp521", "ecdsa521"),
        ("rsa-sha2-512", "rsa"),
        ("rsa-sha2-256", "rsa"),
        ("ssh-rsa", "rsa"),
    ] {
        assert!(
            client.iter().any(|c| c == alg) || alg.starts_with("rsa-sha2"),
            "client lacks {alg}"
        );
        let (log, known) = probe(&server, alg, &["-o", &format!("HostKeyAlgorithms={alg}")]);
        assert_service_accept(&log, alg, &server);
        let line = negotiated_line(&log, "kex: host key algorithm:").unwrap_or_default();
        assert!(line.ends_with(alg), "{alg}: negotiated {line}");
        let blob = keys.public_blob(file);
        assert!(
            known.contains(&blob),
            "{alg}: known_hosts {known:?} lacks the server's key {blob}"
        );
    }
}

#[test]
fn every_cipher_and_mac() {
    let keys = Keys::new();
    let server = start(&keys, &[]);
    let ciphers = ours(&[
        "chacha20-poly1305@openssh.com",
        "aes128-ctr",
        "aes192-ctr",
        "aes256-ctr",
        "aes128-gcm@openssh.com",
        "aes256-gcm@openssh.com",
    ]);
    for c in ciphers {
        let (log, _) = probe(&server, c, &["-o", &format!("Ciphers={c}")]);
        assert_service_accept(&log, c, &server);
        let line = negotiated_line(&log, "kex: server->client cipher:").unwrap_or_default();
        assert!(line.contains(&format!("cipher: {c} ")), "{c}: {line}");
    }
    let macs = ours(&[
        "hmac-sha2-256-etm@openssh.com",
        "hmac-sha2-512-etm@openssh.com",
        "hmac-sha1-etm@openssh.com",
        "hmac-sha2-256",
        "hmac-sha2-512",
        "hmac-sha1",
    ]);
    for m in macs {
        let (log, _) = probe(&server, m, &["-o", "Ciphers=aes128-ctr", "-o", &format!("MACs={m}")]);
        assert_service_accept(&log, m, &server);
        let line = negotiated_line(&log, "kex: client->server cipher:").unwrap_or_default();
        assert!(line.contains(&format!("MAC: {m} ")), "{m}: {line}");
    }
}

#[test]
fn compression_zlib_and_delayed() {
    let keys = Keys::new();
    for (flag, expect) in
        [("--compression=zlib", "zlib"), ("--compression=zlib@openssh.com", "zlib@openssh.com")]
    {
        let server = start(&keys, &[flag]);
        let (log, _) = probe(&server, expect, &["-o", "Compression=yes"]);
        assert_service_accept(&log, expect, &server);
        let line = negotiated_line(&log, "kex: server->client cipher:").unwrap_or_default();
        assert!(line.ends_with(&format!("compression: {expect}")), "{flag}: {line}");
    }
}

#[test]
fn server_logs_the_kex_and_the_disconnect() {
    let keys = Keys::new();
    let server = start(&keys, &[]);
    let (log, _) = probe(&server, "log", &[]);
    assert_service_accept(&log, "default", &server);
    // What the client says it negotiated ("debug1: kex: algorithm: NAME").
    let kex = negotiated_line(&log, "kex: algorithm: ")
        .and_then(|l| l.split("kex: algorithm: ").nth(1))
        .map(str::trim)
        .expect("ssh -vvv names the kex")
        .to_string();
    // The client gave up after "Permission denied" and closed; wait (bounded) for the line.
    let deadline = Instant::now() + Duration::from_secs(30);
    let err = loop {
        let err = server.stderr();
        if err.contains(" closed: ") || Instant::now() > deadline {
            break err;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let lines: Vec<&str> = err.lines().collect();
    let kex_at = lines
        .iter()
        .position(|l| l.contains(&format!("kex done: kex={kex} ")))
        .unwrap_or_else(|| panic!("no kex line for {kex}:\n{err}"));
    let peer = lines[kex_at]
        .split_whitespace()
        .find(|w| w.starts_with("127.0.0.1:"))
        .expect("the kex line names the peer");
    let closed = lines[kex_at..]
        .iter()
        .find(|l| l.contains(&format!("{peer} closed: ")))
        .unwrap_or_else(|| panic!("no disconnect line for {peer}:\n{err}"));
    assert!(
        closed.contains("code=10") && closed.contains("by_peer") && closed.contains("bytes_in="),
        "the client closed the connection: {closed}"
    );
}
