//! Crypto policies against ssh-audit and real clients: `--crypto-policy modern` gets zero
//! failures and zero warnings, `compat` the known findings (NIST curves, SHA-1 MACs, 2048-bit
//! groups, no PQ protection), and OpenSSH, paramiko, PuTTY and Dropbear log in under `modern`.
//!
//! ssh-audit (PyPI) lives in the test venv: `SSHFRONT_TEST_SSH_AUDIT`, else next to
//! `SSHFRONT_TEST_PYTHON`, else `.venv-test/bin/ssh-audit` (scripts/test.sh installs it).
//! Missing tools fail the test.
// Tests run real processes and measure bounded waits: clocks and std sockets are fine here.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use common::gateway::{run, EchoServer, Fixture, PASSWORD, USER};
use common::Server;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

fn venv_tool(env: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    if let Some(py) = std::env::var_os("SSHFRONT_TEST_PYTHON") {
        if let Some(dir) = PathBuf::from(py).parent() {
            return dir.join(name);
        }
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-test/bin").join(name)
}

/// ssh-audit's report (no colours, no connection-rate test) and its findings.
struct Audit {
    text: String,
    fails: Vec<String>,
    warns: Vec<String>,
}

fn audit(server: &Server) -> Audit {
    let tool = venv_tool("SSHFRONT_TEST_SSH_AUDIT", "ssh-audit");
    assert!(tool.exists(), "{} missing: run scripts/test.sh", tool.display());
    let mut cmd = Command::new(&tool);
    cmd.args(["-n", "--skip-rate-test", "-p"]).arg(server.addr.port().to_string()).arg("127.0.0.1");
    let out = run(cmd, None, LIMIT);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("# key exchange algorithms"), "no report:\n{text}\n{out:?}");
    let pick = |tag: &str| -> Vec<String> {
        text.lines().filter(|l| l.contains(tag)).map(|l| l.trim().to_string()).collect()
    };
    let (fails, warns) = (pick("[fail]"), pick("[warn]"));
    Audit { text, fails, warns }
}

#[test]
fn modern_policy_has_no_ssh_audit_findings() {
    let server = Server::start(&["--crypto-policy", "modern"]);
    let a = audit(&server);
    assert!(a.fails.is_empty() && a.warns.is_empty(), "findings under modern:\n{}", a.text);
    // PQ hybrid first, strict KEX advertised.
    let first_kex = a.text.lines().find(|l| l.starts_with("(kex)")).unwrap_or("");
    assert!(first_kex.contains("mlkem768x25519-sha256"), "{}", a.text);
    assert!(a.text.contains("kex-strict-s-v00@openssh.com"), "{}", a.text);
    assert!(!a.text.contains("nistp"), "{}", a.text);
}

#[test]
fn compat_policy_reports_the_known_findings() {
    let server = Server::start(&["--crypto-policy", "compat"]);
    let a = audit(&server);
    let has = |v: &[String], what: &str| v.iter().any(|l| l.contains(what));
    for what in ["ecdh-sha2-nistp256", "ecdsa-sha2-nistp256", "hmac-sha1"] {
        assert!(has(&a.fails, what), "expected a failure for {what}:\n{}", a.text);
    }
    for what in ["curve25519-sha256", "hmac-sha2-256 ", "diffie-hellman-group14-sha256"] {
        assert!(has(&a.warns, what), "expected a warning for {what}:\n{}", a.text);
    }
}

#[test]
fn explicit_lists_apply_on_top_of_modern() {
    let server = Server::start(&["--crypto-policy", "modern", "--kex", "+curve25519-sha256"]);
    let a = audit(&server);
    assert!(a.fails.is_empty(), "{}", a.text);
    assert_eq!(a.warns.len(), 1, "only the non-PQ curve25519:\n{}", a.text);
    assert!(a.warns[0].contains("curve25519-sha256"), "{}", a.text);
}

#[test]
fn openssh_logs_in_under_modern() {
    let f = Fixture::new();
    let server = f.server(&["--crypto-policy", "modern", "--allow-exec"]);
    // Publickey with each key type the modern host-key list can verify a user by.
    for key in ["id_ed25519", "id_rsa"] {
        let mut cmd = f.ssh(&server);
        cmd.args(["-o", &format!("IdentityFile={}", f.path(key).display())])
            .arg(format!("{USER}@127.0.0.1"))
            .arg("echo modern-ok");
        let out = run(cmd, None, LIMIT);
        assert!(
            out.status.success() && out.stdout == b"modern-ok\n",
            "{key}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            server.stderr()
        );
    }
    assert!(server.stderr().contains("kex=sntrup761x25519-sha512"), "{}", server.stderr());
}

#[test]
fn paramiko_logs_in_under_modern() {
    let py = venv_tool("SSHFRONT_TEST_PYTHON", "python");
    assert!(py.exists(), "{} missing: run scripts/test.sh", py.display());
    let f = Fixture::new();
    let echo = EchoServer::start();
    let server = f.server(&[
        "--crypto-policy",
        "modern",
        "--permit-open",
        &format!("127.0.0.1:{}", echo.port),
    ]);
    let join = |v: &[&str]| v.join(",");
    use sshfront::config::policy::{MODERN_CIPHERS, MODERN_KEX, MODERN_MACS};
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/paramiko_gateway.py");
    let mut cmd = Command::new(py);
    cmd.arg(script)
        .arg(server.addr.port().to_string())
        .arg(USER)
        .arg(PASSWORD)
        .arg(echo.port.to_string())
        .arg(join(MODERN_KEX))
        .arg(join(MODERN_CIPHERS))
        .arg(join(MODERN_MACS));
    let out = run(cmd, None, Duration::from_secs(300));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.stderr()
    );
    assert!(report.contains("ok kex mlkem768x25519-sha256"), "{report}");
}

/// Host-key fingerprints (SHA256:…) of the server's ed25519 and RSA keys, for plink -hostkey.
fn fingerprints(server: &Server) -> Vec<String> {
    ["ssh_host_ed25519_key.pub", "ssh_host_rsa_key.pub"]
        .iter()
        .map(|k| {
            let out = Command::new("ssh-keygen")
                .arg("-lf")
                .arg(server.key_dir().join(k))
                .output()
                .expect("ssh-keygen");
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.split_whitespace().nth(1).expect("fingerprint").to_string()
        })
        .collect()
}

#[test]
fn putty_logs_in_under_modern() {
    let f = Fixture::new();
    let server = f.server(&["--crypto-policy", "modern", "--allow-exec"]);
    let mut cmd = Command::new("plink");
    cmd.env("HOME", f.dir.path())
        .args(["-batch", "-ssh", "-P"])
        .arg(server.addr.port().to_string())
        .args(["-l", USER, "-pw", PASSWORD]);
    for fp in fingerprints(&server) {
        cmd.arg("-hostkey").arg(fp);
    }
    cmd.args(["127.0.0.1", "echo putty-ok"]);
    let out = run(cmd, None, LIMIT);
    assert!(
        out.status.success() && out.stdout == b"putty-ok\n",
        "plink (putty-tools, installed by scripts/test.sh): {:?}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        server.stderr()
    );
}

/// Dropbear before 2025.87 has no post-quantum key exchange: under plain `modern` it is refused
/// at KEXINIT, and adding curve25519-sha256 (one warning in ssh-audit) lets it in. It is put
/// first (`^`), so Dropbear's guessed KEX packet (it always sends one, for curve25519) is right
/// under every reading of the guess rule, kexguess2 or not.
#[test]
fn dropbear_under_modern_needs_curve25519_added() {
    let f = Fixture::new();
    let dbclient = |server: &Server| {
        let mut cmd = Command::new("dbclient");
        cmd.env("HOME", f.dir.path())
            .env("DROPBEAR_PASSWORD", PASSWORD)
            .args(["-y", "-y", "-p"])
            .arg(server.addr.port().to_string())
            .arg(format!("{USER}@127.0.0.1"))
            .arg("echo dropbear-ok");
        run(cmd, None, LIMIT)
    };
    let version = Command::new("dbclient").arg("-V").output();
    let version = version.map(|o| String::from_utf8_lossy(&o.stderr).into_owned());
    let version = version.expect("dbclient (dropbear-bin, installed by scripts/test.sh)");
    let has_pq = version.split_whitespace().any(|w| w.starts_with("v20") && w >= "v2025.87");

    let server = f.server(&["--crypto-policy", "modern", "--allow-exec"]);
    let out = dbclient(&server);
    if has_pq {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    } else {
        assert!(!out.status.success(), "{version}: expected no shared kex");
        assert!(
            server.stderr().contains("no matching key exchange algorithm"),
            "{}",
            server.stderr()
        );
    }
    drop(server);
    let server =
        f.server(&["--crypto-policy", "modern", "--kex", "^curve25519-sha256", "--allow-exec"]);
    let out = dbclient(&server);
    assert!(
        out.status.success() && out.stdout == b"dropbear-ok\n",
        "{:?}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        server.stderr()
    );
}
