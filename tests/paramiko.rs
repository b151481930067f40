//! A second, independent client: paramiko (Python) logs in with a password and carries random
//! bytes through a direct-tcpip channel, for every key exchange, cipher and MAC it shares with
//! sshfront, and with compression. The interpreter comes from `SSHFRONT_TEST_PYTHON` (set by
//! scripts/test.sh to its venv), else `.venv-test/bin/python`; without paramiko the test fails
//! (scripts/test.sh installs it).
// Tests run real processes and measure bounded waits: clocks and std sockets are fine here.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use common::gateway::{run, EchoServer, Fixture, PASSWORD, USER};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The interpreter with paramiko; a missing one fails the test, it never passes by skipping.
fn python() -> PathBuf {
    let p = match std::env::var_os("SSHFRONT_TEST_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-test/bin/python"),
    };
    let out = Command::new(&p).args(["-c", "import paramiko"]).output();
    match out {
        Ok(o) if o.status.success() => p,
        Ok(o) => panic!(
            "{} cannot import paramiko (run scripts/test.sh, or set SSHFRONT_TEST_PYTHON): {}",
            p.display(),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!(
            "no python at {} ({e}); run scripts/test.sh, or set SSHFRONT_TEST_PYTHON",
            p.display()
        ),
    }
}

fn names(list: impl Iterator<Item = &'static str>) -> String {
    list.collect::<Vec<_>>().join(",")
}

#[test]
fn paramiko_login_and_direct_tcpip_for_every_shared_algorithm() {
    let py = python();
    let f = Fixture::new();
    let echo = EchoServer::start();
    let kex = names(sshfront::algo::kex::ALL.iter().map(|k| k.name));
    let ciphers = names(sshfront::algo::cipher::ALL.iter().map(|c| c.name));
    let macs = names(sshfront::algo::mac::ALL.iter().map(|m| m.name));
    // Every method we have, the off-by-default ones too: an operator may turn them on.
    let server = f.server(&[
        "--kex",
        &kex,
        "--host-key-algorithms=+ssh-rsa",
        "--permit-open",
        &format!("127.0.0.1:{}", echo.port),
    ]);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/paramiko_gateway.py");
    let mut cmd = Command::new(py);
    cmd.arg(script)
        .arg(server.addr.port().to_string())
        .arg(USER)
        .arg(PASSWORD)
        .arg(echo.port.to_string())
        .arg(&kex)
        .arg(&ciphers)
        .arg(&macs);
    let out = run(cmd, None, Duration::from_secs(300));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}\n--- python stderr ---\n{}\n--- server ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.stderr()
    );
    for must in ["ok kex curve25519-sha256", "ok cipher aes128-ctr", "ok mac hmac-sha2-256"] {
        assert!(report.contains(must), "{must} missing:\n{report}");
    }
    assert!(report.contains("ok compression"), "{report}");
    eprintln!("{report}");
}
