//! `bench-harness attack` against a real sshfront on loopback, one short run per mode: the
//! output is one JSON object per line, per-second lines then a summary, the legitimate client
//! logged in, and the attacker did something. Behaviour only, never timings.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const HARNESS: &str = env!("CARGO_BIN_EXE_bench-harness");

/// The sshfront binary next to the harness (same target dir and profile), built if missing.
fn sshfront_bin() -> PathBuf {
    let dir = Path::new(HARNESS).parent().expect("target dir");
    let bin = dir.join("sshfront");
    if !bin.exists() {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "-p", "sshfront", "--bin", "sshfront"]);
        if dir.ends_with("release") {
            cmd.arg("--release");
        }
        let st = cmd.status().expect("cargo build sshfront");
        assert!(st.success(), "building sshfront failed");
    }
    assert!(bin.exists(), "no sshfront binary at {}", bin.display());
    bin
}

struct Fixture {
    dir: PathBuf,
    server: Child,
    addr: String,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run_bounded(mut cmd: Command, limit: Duration) -> std::process::Output {
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            // SAFETY: kill(2) on the PID of the child we spawned and have not reaped.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("command did not finish within {limit:?}");
        }
    }
}

fn start() -> Fixture {
    let sshfront = sshfront_bin();
    let dir = std::env::temp_dir().join(format!("bench-attack-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut kg = Command::new("ssh-keygen");
    kg.args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(dir.join("user"));
    let out = run_bounded(kg, Duration::from_secs(30));
    assert!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::copy(dir.join("user.pub"), dir.join("authorized_keys")).expect("authorized_keys");
    let mut pw = Command::new(&sshfront)
        .args(["passwd", "root", "--password-file"])
        .arg(dir.join("passwords"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sshfront passwd");
    pw.stdin.take().expect("stdin").write_all(b"the-right-one\n").expect("password");
    assert!(pw.wait().expect("passwd").success(), "sshfront passwd failed");
    let port_file = dir.join("port");
    let server = Command::new(&sshfront)
        .args(["--listen", "127.0.0.1:0", "--log-level", "warn", "--port-file"])
        .arg(&port_file)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--authorized-keys")
        .arg(dir.join("authorized_keys"))
        .arg("--password-file")
        .arg(dir.join("passwords"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sshfront");
    let mut f = Fixture { dir, server, addr: String::new() };
    let deadline = Instant::now() + Duration::from_secs(60);
    while f.addr.is_empty() {
        if let Some(a) = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|t| t.lines().next().map(|l| l.trim().to_string()))
            .filter(|l| !l.is_empty())
        {
            f.addr = a;
        }
        assert!(f.server.try_wait().expect("try_wait").is_none(), "sshfront exited early");
        assert!(Instant::now() < deadline, "sshfront wrote no port file within 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    f
}

fn attack(f: &Fixture, mode: &str) -> Vec<Value> {
    let mut cmd = Command::new(HARNESS);
    cmd.args(["attack", "--mode", mode, "--duration", "2", "-c", "8", "--rate", "10"])
        .args(["--addr", &f.addr, "--dribble-ms", "50", "--key"])
        .arg(f.dir.join("user"));
    let out = run_bounded(cmd, Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{mode}: exit {:?}: {stderr}", out.status);
    let text = String::from_utf8(out.stdout).expect("utf-8 output");
    text.lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{mode}: bad JSON line {l:?}: {e}"))
        })
        .collect()
}

fn num(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("{k} missing or not a count in {v}"))
}

#[test]
fn every_mode_reports_well_formed_lines_and_legitimate_logins() {
    let f = start();
    for mode in ["spray", "kex-flood", "preauth-idle", "slowloris"] {
        let lines = attack(&f, mode);
        let (summary, seconds) = lines.split_last().expect("some output");
        assert!(!seconds.is_empty(), "{mode}: no per-second lines");
        for (i, s) in seconds.iter().enumerate() {
            assert_eq!(s["type"], "second", "{mode}: {s}");
            assert_eq!(num(s, "t"), i as u64 + 1, "{mode}: seconds in order");
            assert!(s["attack"].is_object(), "{mode}: {s}");
        }
        assert!(seconds.iter().map(|s| num(s, "legit_ok")).sum::<u64>() > 0, "{mode}: {lines:?}");
        assert_eq!(summary["type"], "summary", "{mode}: {summary}");
        assert_eq!(summary["mode"], mode);
        assert_eq!(summary["bind"], "127.0.0.2");
        assert!(num(summary, "legit_ok") > 0, "{mode}: no legitimate login: {summary}");
        assert!(
            num(summary, "legit_ok") + num(summary, "legit_failed")
                <= num(summary, "legit_started"),
            "{mode}: {summary}"
        );
        assert!(summary["latency_ms"]["p50"].is_number(), "{mode}: {summary}");
        let a = &summary["attack"];
        assert!(num(a, "started") > 0, "{mode}: the attacker started nothing: {summary}");
        match mode {
            // Wrong passwords: every finished spray connection is a failure of some kind,
            // and none logs in.
            "spray" => assert_eq!(num(a, "completed"), 0, "{summary}"),
            "kex-flood" => assert!(
                num(a, "completed") + num(a, "refused_at_accept") + num(a, "disconnected") > 0,
                "{summary}"
            ),
            _ => {}
        }
    }
}
