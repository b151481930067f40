//! PTY sessions through the stock OpenSSH client: `ssh -tt` under tmux for an interactive shell
//! (prompt, a command, `stty size` before and after a tmux resize), and `ssh -tt` with a command
//! for byte-exact terminal output, the controlling terminal and the exit status.
// Tests run real processes and measure bounded waits: clocks are fine here.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use common::gateway::{run, Fixture, USER};
use common::Server;
use std::process::Command;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);

/// A tmux server of our own (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new() -> Tmux {
        Tmux { socket: format!("sshfront-pty-{}", std::process::id()) }
    }

    fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux must be installed (scripts/test.sh installs it)");
        assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", "s"])
    }

    /// Waits until the pane shows a line for which `f` is true; returns the screen.
    fn wait_for(&self, what: &str, f: impl Fn(&str) -> bool, server: &Server) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            let s = self.screen();
            if s.lines().any(&f) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} on the terminal:\n{s}\n--- server ---\n{}",
                server.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").arg("-L").arg(&self.socket).arg("kill-server").output();
    }
}

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
    let t = Tmux::new();
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
