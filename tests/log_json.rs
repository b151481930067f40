//! `--log-format json`: every stderr line is one JSON object with the stable fields, for a real
//! OpenSSH login and a paramiko login attempt with a hostile user name (quote, newline, escape
//! byte). The lines are parsed by Python's json module, an independent reader.
// Tests run real processes and measure bounded waits: clocks and std sockets are fine here.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use common::gateway::{run, Fixture, USER};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

fn python() -> PathBuf {
    let p = match std::env::var_os("SSHFRONT_TEST_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-test/bin/python"),
    };
    assert!(p.exists(), "{} missing: run scripts/test.sh", p.display());
    p
}

const EVIL_LOGIN: &str = r#"
import sys, paramiko
t = paramiko.Transport(("127.0.0.1", int(sys.argv[1])))
t.start_client(timeout=30)
try:
    t.auth_password('ev"il\nuser\x1b', "wrong")
except paramiko.AuthenticationException:
    pass
t.close()
"#;

const CHECK: &str = r#"
import json, sys
fields = ["ts", "level", "worker", "conn", "peer", "user", "event", "code", "reason",
          "bytes_in", "bytes_out", "duration_ms", "kex", "cipher", "msg"]
events = {}
for n, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    rec = json.loads(line)
    missing = [f for f in fields if f not in rec]
    assert not missing, "line %d lacks %s: %s" % (n, missing, line)
    events.setdefault(rec["event"], []).append(rec)
kex = events["kex_done"][0]
assert kex["kex"] and kex["cipher"] and kex["peer"].startswith("127.0.0.1:"), kex
auth = [r for r in events["authenticated"] if r["user"] == "alice"]
assert auth, events.get("authenticated")
closed = [r for r in events["closed"] if r["user"] == "alice"]
assert closed and closed[0]["bytes_in"] > 0 and closed[0]["duration_ms"] is not None, closed
assert isinstance(closed[0]["code"], int) and closed[0]["reason"], closed
assert closed[0]["kex"] == kex["kex"] and closed[0]["cipher"], closed
notes = [r for r in events.get("note", []) if "authentication failed" in r["reason"]]
assert any('ev\\"il\\nuser\\u{1b}' in r["reason"] for r in notes), notes
for e in ["listening", "started", "accepted", "exec_started"]:
    assert e in events, (e, sorted(events))
print("ok", " ".join(sorted(events)))
"#;

#[test]
fn json_lines_parse_with_the_documented_fields() {
    let py = python();
    let f = Fixture::new();
    let server = f.server(&["--log-format", "json", "--allow-exec"]);
    let mut cmd = f.ssh(&server);
    cmd.arg(format!("{USER}@127.0.0.1")).arg("echo hi");
    let out = run(cmd, None, LIMIT);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut cmd = Command::new(&py);
    cmd.args(["-c", EVIL_LOGIN]).arg(server.addr.port().to_string());
    let out = run(cmd, None, LIMIT);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The paramiko connection's close is logged once the server sees it; wait for it.
    let deadline = std::time::Instant::now() + LIMIT;
    while server.stderr().matches("\"event\":\"closed\"").count() < 2 {
        assert!(std::time::Instant::now() < deadline, "{}", server.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    let (dir, log) = server.stop();
    let path = dir.path().join("stderr.log");
    let mut cmd = Command::new(&py);
    cmd.args(["-c", CHECK]).arg(&path);
    let out = run(cmd, None, LIMIT);
    assert!(
        out.status.success(),
        "{}\n{}\n{log}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
}
