//! PTY sessions through the stock OpenSSH client: `ssh -tt` under tmux for an interactive shell
//! (prompt, a command, `stty size` before and after a tmux resize), and `ssh -tt` with a command
//! for byte-exact terminal output, the controlling terminal and the exit status.
// Tests run real processes and measure bounded waits: clocks are fine here.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use common::gateway::{run, Fixture, USER};
use common::tmux::Tmux;
use common::Server;
use std::process::Command;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);

fn ssh_line(f: &Fixture, server: &Server) -> String {
    let cmd = f.ssh(server);
    let mut line: Vec<String> = vec![cmd.get_program().to_string_lossy().into_owned()];
    line.extend(cmd.get_args().map(|a| format!("'{}'", a.to_string_lossy())));
    line.push("-tt".into());
    line.push(format!("{USER}@127.0.0.1"));
    line.join(" ")
}

#[test]
fn interactive_shell_under_tmux_prompt_command_and_resize() {
    let f = Fixture::new();
    let server = f.server(&["--allow-exec"]);
    let t = Tmux::new("pty");
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
        &ssh_line(&f, &server),
    ]);
    t.cmd(&["set-option", "-g", "status", "off"]);
    // /bin/sh on a terminal prints a prompt ("$ " for a non-root user, "# " for root; tmux
    // drops the trailing space).
    t.wait_for("prompt", |l| matches!(l.trim_end(), "$" | "#"), &server);
    t.cmd(&["send-keys", "-t", "s", "echo hel''lo-$((6*7))", "Enter"]);
    t.wait_for("command output", |l| l == "hello-42", &server);
    let size =
        |t: &Tmux| t.cmd(&["display-message", "-p", "-t", "s", "#{pane_height} #{pane_width}"]);
    let want = size(&t).trim().to_string();
    t.cmd(&["send-keys", "-t", "s", "stty size; echo size-done", "Enter"]);
    let s = t.wait_for("stty size", |l| l == "size-done", &server);
    assert!(s.lines().any(|l| l == want), "stty size should say {want:?}:\n{s}");
    t.cmd(&["resize-window", "-t", "s", "-x", "100", "-y", "30"]);
    let want2 = size(&t).trim().to_string();
    assert_ne!(want, want2, "tmux resized the window");
    t.cmd(&["send-keys", "-t", "s", "clear; stty size; echo resized-done", "Enter"]);
    let s = t.wait_for("stty size after resize", |l| l == "resized-done", &server);
    assert!(s.lines().any(|l| l == want2), "stty size should say {want2:?}:\n{s}");
    t.cmd(&["send-keys", "-t", "s", "exit", "Enter"]);
}

#[test]
fn exec_on_a_pty_is_byte_exact_with_a_controlling_terminal_and_status() {
    let f = Fixture::new();
    let server = f.server(&["--allow-exec"]);
    let mut cmd = f.ssh(&server);
    cmd.arg("-tt").arg(format!("{USER}@127.0.0.1")).arg(
        "stty -echo; printf 'x\\001y\\377z\\n'; test -t 0 && (: </dev/tty) && echo ctty-ok; echo TERM=$TERM; exit 3",
    );
    cmd.env("TERM", "vt100");
    let out = run(cmd, None, LIMIT);
    assert_eq!(
        out.status.code(),
        Some(3),
        "stderr: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.stderr()
    );
    // The terminal turns \n into \r\n (onlcr), every other byte passes as is.
    assert_eq!(
        out.stdout,
        b"x\x01y\xffz\r\nctty-ok\r\nTERM=vt100\r\n".to_vec(),
        "{:?}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn without_pty_request_no_terminal() {
    let f = Fixture::new();
    let server = f.server(&["--allow-exec"]);
    let mut cmd = f.ssh(&server);
    cmd.arg("-T").arg(format!("{USER}@127.0.0.1")).arg("test -t 0 || echo no-tty");
    let out = run(cmd, None, LIMIT);
    assert_eq!(out.stdout, b"no-tty\n");
}

/// `--record-dir`: a PTY session becomes an asciicast v2 file whose output events hold what
/// the session printed (UTF-8 intact), and `asciinema cat` replays it.
#[test]
fn recorded_pty_session_is_asciicast_and_replays() {
    let f = Fixture::new();
    let rec = f.path("recordings");
    let server = f.server(&["--allow-exec", "--record-dir", rec.to_str().unwrap()]);
    let mut cmd = f.ssh(&server);
    // Multi-byte characters printed one byte at a time: split across reads on purpose.
    cmd.arg("-tt").arg(format!("{USER}@127.0.0.1")).arg(
        "stty -echo; printf 'recorded: h\\303'; sleep 0.2; printf '\\251llo w\\303\\266rld \\342\\202\\254\\n'; \
         printf '\"quoted\" back\\\\slash\\n'; exit 0",
    );
    cmd.env("TERM", "xterm");
    let out = run(cmd, None, LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", server.stderr());
    let want = "recorded: héllo wörld €\r\n\"quoted\" back\\slash\r\n";
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);

    // The recorder thread writes in the background: wait (bounded) for the whole file.
    let python = r#"import json,sys
lines=open(sys.argv[1],encoding='utf-8').read().splitlines()
h=json.loads(lines[0])
assert h['version']==2 and h['width']>0 and h['height']>0 and h['timestamp']>0, h
assert h['sshfront']['user']=='alice', h
out=''
for l in lines[1:]:
    t,k,d=json.loads(l)
    assert isinstance(t,float) and k in ('o','r','m'), l
    if k=='o': out+=d
sys.stdout.write(out)
"#;
    let deadline = Instant::now() + LIMIT;
    let mut seen = String::new();
    let (file, replayed) = loop {
        let files: Vec<_> = std::fs::read_dir(&rec)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        if let [file] = &files[..] {
            let o =
                Command::new("python3").args(["-c", python]).arg(file).output().expect("python3");
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            if o.status.success() && text.contains("back\\slash") {
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
            rec.display(),
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(replayed, want, "the output events, concatenated");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-test/bin/asciinema");
    assert!(venv.exists(), "{} missing: scripts/test.sh installs asciinema", venv.display());
    let mut cat = Command::new(&venv);
    cat.arg("cat").arg(&file);
    let out = run(cat, None, LIMIT);
    assert!(
        out.status.success(),
        "asciinema cat (scripts/test.sh installs it into .venv-test): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
}
