//! A private tmux server (its own `-L` socket) driving an interactive `ssh -tt`, for the PTY
//! tests; killed when dropped. A missing tmux fails the test (scripts/test.sh installs it).

use super::Server;
use std::process::Command;
use std::time::{Duration, Instant};

/// How long a screen may take to show what a test waits for.
const LIMIT: Duration = Duration::from_secs(60);

pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// `tag` keeps the sockets of different test files apart.
    pub fn new(tag: &str) -> Tmux {
        Tmux { socket: format!("sshfront-{tag}-{}", std::process::id()) }
    }

    pub fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux must be installed (scripts/test.sh installs it)");
        assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn screen(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", "s"])
    }

    /// Waits until the pane shows a line for which `f` is true; returns the screen.
    pub fn wait_for(&self, what: &str, f: impl Fn(&str) -> bool, server: &Server) -> String {
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
