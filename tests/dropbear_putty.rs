//! sshfront against two more real clients, Dropbear's `dbclient` and PuTTY's `plink`: every
//! cipher and MAC each one offers that sshfront also implements, through direct-tcpip to a
//! loopback echo server, byte for byte; password and publickey logins. The clients come from
//! Debian's `dropbear-bin` and `putty-tools` (scripts/test.sh installs them); a missing client
//! fails the test.
//!
//! dbclient guesses its first key exchange (curve25519-sha256) while sshfront prefers
//! mlkem768x25519-sha256: with `kexguess2@matt.ucc.asn.au` the guess is used, with
//! `--no-kexguess2` it must be ignored (RFC 4253 §7); both are run here.
// Tests run real processes and measure bounded waits: clocks and std sockets are fine here.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use common::gateway::{random_bytes, run, EchoServer, Fixture, PASSWORD, USER};
use common::Server;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(90);
/// Bytes carried through each connection.
const DATA_LEN: usize = 256 * 1024;

/// Ciphers and MACs sshfront implements (src/algo); a client's offer is intersected with these.
const OUR_CIPHERS: &[&str] = &[
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
];
const OUR_MACS: &[&str] = &[
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha1-etm@openssh.com",
    "hmac-sha2-256",
    "hmac-sha2-512",
    "hmac-sha1",
];

fn is_aead(cipher: &str) -> bool {
    cipher.starts_with("chacha20") || cipher.contains("-gcm")
}

/// Runs a client tool, failing (not skipping) when it is not installed.
fn tool(name: &str) -> Command {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(found, "{name} is not installed (scripts/test.sh installs dropbear-bin, putty-tools)");
    Command::new(name)
}

/// An ed25519 host key made with ssh-keygen (so no server start pays for key generation), and
/// its SHA256 fingerprint for plink's `-hostkey`.
fn host_key(f: &Fixture) -> (PathBuf, String) {
    let path = f.path("host_ed25519");
    if !path.exists() {
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&path)
            .stdin(Stdio::null())
            .status()
            .expect("ssh-keygen");
        assert!(st.success());
    }
    let out = Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(path.with_extension("pub"))
        .output()
        .expect("ssh-keygen -l");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let fp = text.split_whitespace().nth(1).expect("fingerprint").to_string();
    (path, fp)
}

/// A server with the fixture's auth flags, our host key, the echo port open, plus `extra`.
fn server(f: &Fixture, key: &Path, echo: &EchoServer, extra: &[&str]) -> Server {
    let permit = format!("127.0.0.1:{}", echo.port);
    let mut flags = vec!["--host-key", key.to_str().unwrap(), "--permit-open", &permit];
    flags.extend_from_slice(extra);
    f.server(&flags)
}

/// Adds `pubkey_line` to alice's authorized_keys.
fn authorize(f: &Fixture, pubkey_line: &str) {
    let path = f.path(&format!("{USER}.keys"));
    let mut keys = std::fs::read_to_string(&path).expect("keys");
    keys.push_str(pubkey_line.trim());
    keys.push('\n');
    std::fs::write(path, keys).expect("write keys");
}

fn explain(what: &str, out: &Output, server: &Server) -> String {
    let log = server.stderr();
    let lines: Vec<&str> = log.lines().collect();
    format!(
        "{what}: status {:?}\n--- client stderr ---\n{}\n--- server ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr),
        lines[lines.len().saturating_sub(20)..].join("\n")
    )
}

/// Runs `cmd` with `data` on stdin and checks the echo came back byte for byte and that the
/// server logged the expected cipher and MAC (the newest `kex done` line).
fn check_echo(f: &Fixture, cmd: Command, server: &Server, data: &[u8], cipher: &str, mac: &str) {
    let what = format!("{cipher} / {mac}");
    let input = f.path("input");
    std::fs::write(&input, data).expect("input");
    let out = run(cmd, Some(&input), LIMIT);
    assert!(out.status.success(), "{}", explain(&what, &out, server));
    assert!(
        out.stdout == data,
        "{what}: echo differs ({} of {} bytes back)",
        out.stdout.len(),
        data.len()
    );
    let log = server.stderr();
    let kex = log.lines().rev().find(|l| l.contains("kex done")).expect("kex done logged");
    assert!(kex.contains(&format!("cipher={cipher}/{cipher}")), "{what}: {kex}");
    let mac = if is_aead(cipher) { "<implicit>" } else { mac };
    assert!(kex.contains(&format!("mac={mac}/{mac}")), "{what}: {kex}");
}

/// The names after "Available …:" in `dbclient -c help` / `-m help`.
fn dbclient_offers(flag: &str) -> Vec<String> {
    let out = tool("dbclient").args([flag, "help"]).output().expect("dbclient help");
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    let line =
        text.lines().find(|l| l.contains("Available")).expect("dbclient lists its algorithms");
    let list = line.split(':').nth(2).unwrap_or("").trim();
    list.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

/// dbclient in netcat mode (`-B`) to the echo server, host key check off (`-y -y`).
fn dbclient(f: &Fixture, server: &Server, echo: &EchoServer, args: &[&str]) -> Command {
    let mut c = tool("dbclient");
    c.env("HOME", f.dir.path())
        .args(["-y", "-y", "-p", &server.addr.port().to_string(), "-l", USER])
        .args(args)
        .arg("-B")
        .arg(format!("127.0.0.1:{}", echo.port))
        .arg("127.0.0.1");
    c
}

#[test]
fn dbclient_every_cipher_and_mac_byte_exact() {
    let f = Fixture::new();
    let (key, _) = host_key(&f);
    let echo = EchoServer::start();
    // Publickey for the first case: a key made by dropbearkey, its public line authorized.
    let dkey = f.path("id_dropbear");
    let out =
        tool("dropbearkey").args(["-t", "ed25519", "-f"]).arg(&dkey).output().expect("dropbearkey");
    assert!(out.status.success(), "dropbearkey: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    authorize(&f, text.lines().find(|l| l.starts_with("ssh-ed25519 ")).expect("public key line"));
    let server = server(&f, &key, &echo, &[]);

    let ciphers: Vec<String> =
        dbclient_offers("-c").into_iter().filter(|c| OUR_CIPHERS.contains(&c.as_str())).collect();
    let macs: Vec<String> =
        dbclient_offers("-m").into_iter().filter(|m| OUR_MACS.contains(&m.as_str())).collect();
    assert!(!ciphers.is_empty() && !macs.is_empty(), "dbclient offers {ciphers:?} {macs:?}");
    let mut case = 0u64;
    for c in &ciphers {
        for m in &macs {
            case += 1;
            let data = random_bytes(DATA_LEN, 0xdb00 + case);
            let dk = dkey.to_str().unwrap().to_string();
            let mut args = vec!["-c", c.as_str(), "-m", m.as_str()];
            if case == 1 {
                args.extend(["-i", &dk]);
            }
            let mut cmd = dbclient(&f, &server, &echo, &args);
            if case != 1 {
                cmd.env("DROPBEAR_PASSWORD", PASSWORD);
            }
            check_echo(&f, cmd, &server, &data, c, m);
        }
    }
    let log = server.stderr();
    assert!(log.contains("method=publickey"), "the dropbearkey login ran:\n{log}");
    assert!(log.contains("kex=curve25519-sha256"), "dbclient's guessed kex:\n{log}");
}

/// Without kexguess2 dbclient's guess (curve25519-sha256, not our first) must be ignored and
/// its second KEX_ECDH_INIT answered; before the RFC rule was fixed this died with "unexpected
/// key exchange message 30, expected NEWKEYS" (after kexguess2 was added, this is the path the
/// flag turns back on).
#[test]
fn dbclient_wrong_guess_without_kexguess2() {
    let f = Fixture::new();
    let (key, _) = host_key(&f);
    let echo = EchoServer::start();
    let server = server(&f, &key, &echo, &["--no-kexguess2"]);
    let data = random_bytes(DATA_LEN, 0xdb99);
    let mut cmd = dbclient(&f, &server, &echo, &["-c", "aes128-ctr", "-m", "hmac-sha2-256"]);
    cmd.env("DROPBEAR_PASSWORD", PASSWORD);
    check_echo(&f, cmd, &server, &data, "aes128-ctr", "hmac-sha2-256");
}

/// What plink 0.78 puts in its KEXINIT (read from `plink -sshrawlog`), intersected with ours.
/// PuTTY has no MAC setting and its cipher setting names families (`aes` covers every AES key
/// size), so the exact algorithm is forced from the server side (`--ciphers`, `--macs`) and the
/// family is moved first in a saved session, the only place plink takes a cipher preference.
const PLINK_CIPHERS: &[(&str, &str)] = &[
    ("aes256-ctr", "aes"),
    ("aes192-ctr", "aes"),
    ("aes128-ctr", "aes"),
    ("chacha20-poly1305@openssh.com", "chacha20"),
    ("aes128-gcm@openssh.com", "aesgcm"),
    ("aes256-gcm@openssh.com", "aesgcm"),
];
const PLINK_MACS: &[&str] =
    &["hmac-sha2-256", "hmac-sha1", "hmac-sha2-256-etm@openssh.com", "hmac-sha1-etm@openssh.com"];

/// Writes the saved session `name` under `$HOME/.putty/sessions` with `family` first.
fn plink_session(f: &Fixture, name: &str, family: &str) {
    let dir = f.dir.path().join(".putty").join("sessions");
    std::fs::create_dir_all(&dir).expect("sessions dir");
    let mut order = vec![family];
    for c in ["aes", "chacha20", "aesgcm", "3des", "WARN", "des", "blowfish", "arcfour"] {
        if c != family {
            order.push(c);
        }
    }
    std::fs::write(dir.join(name), format!("Cipher={}\n", order.join(","))).expect("session");
}

#[test]
fn plink_every_cipher_and_mac_byte_exact() {
    let f = Fixture::new();
    let (key, fingerprint) = host_key(&f);
    let echo = EchoServer::start();
    std::fs::write(f.path("pwfile"), PASSWORD).expect("pwfile");
    // Publickey for the first case: a key made by puttygen (.ppk), its OpenSSH line authorized.
    let ppk = f.path("user.ppk");
    let out = tool("puttygen")
        .args(["-t", "ed25519", "--new-passphrase", "/dev/null", "-o"])
        .arg(&ppk)
        .output()
        .expect("puttygen");
    assert!(out.status.success(), "puttygen: {}", String::from_utf8_lossy(&out.stderr));
    let out =
        tool("puttygen").arg(&ppk).args(["-O", "public-openssh"]).output().expect("puttygen -O");
    authorize(&f, &String::from_utf8_lossy(&out.stdout));

    let mut case = 0u64;
    for (cipher, family) in PLINK_CIPHERS {
        let macs: &[&str] = if is_aead(cipher) { &PLINK_MACS[..1] } else { PLINK_MACS };
        for mac in macs {
            case += 1;
            let server = server(&f, &key, &echo, &["--ciphers", cipher, "--macs", mac]);
            let session = format!("case{case}");
            plink_session(&f, &session, family);
            let mut cmd = tool("plink");
            cmd.env("HOME", f.dir.path())
                .args(["-load", &session, "-batch", "-ssh", "-noagent"])
                .args(["-P", &server.addr.port().to_string(), "-l", USER])
                .args(["-hostkey", &fingerprint])
                .args(["-nc", &format!("127.0.0.1:{}", echo.port)]);
            if case == 1 {
                cmd.arg("-i").arg(&ppk);
            } else {
                cmd.arg("-pwfile").arg(f.path("pwfile"));
            }
            cmd.arg("127.0.0.1");
            let data = random_bytes(DATA_LEN, 0x9700 + case);
            check_echo(&f, cmd, &server, &data, cipher, mac);
            if case == 1 {
                assert!(server.stderr().contains("method=publickey"), "{}", server.stderr());
            }
        }
    }
}

/// plink refuses a server whose host key is not the pinned one (the pin is really checked).
#[test]
fn plink_refuses_a_wrong_pinned_host_key() {
    let f = Fixture::new();
    let (key, _) = host_key(&f);
    let echo = EchoServer::start();
    std::fs::write(f.path("pwfile"), PASSWORD).expect("pwfile");
    let server = server(&f, &key, &echo, &[]);
    let wrong = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let mut cmd = tool("plink");
    cmd.env("HOME", f.dir.path())
        .args(["-batch", "-ssh", "-noagent", "-P", &server.addr.port().to_string(), "-l", USER])
        .args(["-hostkey", wrong, "-pwfile"])
        .arg(f.path("pwfile"))
        .args(["-nc", &format!("127.0.0.1:{}", echo.port), "127.0.0.1"]);
    let out = run(cmd, None, LIMIT);
    assert!(!out.status.success(), "{}", explain("wrong pin", &out, &server));
    assert!(!server.stderr().contains("authenticated"), "{}", server.stderr());
}
