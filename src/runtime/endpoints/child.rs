//! Session commands (RFC 4254 §6.5): `--session-command`, a key's `command=`, or with
//! `--allow-exec` the client's own command, run through `/bin/sh -c` as the server's user.
//!
//! stdin/stdout/stderr are pipes set non-blocking and registered in the worker's poll
//! (`mio::unix::pipe`), so a child never blocks a worker. With a PTY (the client sent pty-req)
//! the child gets the slave side as stdin/stdout/stderr, its own session (`setsid`) and the
//! slave as controlling terminal (`TIOCSCTTY`); the worker reads and writes the master side,
//! non-blocking, the same way (stderr then arrives on the terminal, as with sshd). The child gets its own process group,
//! so ending it (SIGTERM, then SIGKILL after [`KILL_GRACE`]) also ends what it started. It is
//! reaped with `waitpid(WNOHANG)` (`Child::try_wait`) once its output has ended, and again on a
//! short timer until it has exited: no thread waits on it.

use crate::connection::msgs::WinSize;
use crate::connection::{ChannelId, ExitStatus, Pty};
use mio::unix::pipe::{Receiver, Sender};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// After SIGTERM, how long a child may take before SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);
/// First re-check for the exit of a child whose output has ended; doubles up to the maximum.
pub const REAP_FIRST: Duration = Duration::from_millis(5);
pub const REAP_MAX: Duration = Duration::from_millis(200);

/// What to run and with which environment.
pub struct ExecSpec<'a> {
    /// Run `/bin/sh -c command`; `None` runs `/bin/sh` reading commands from stdin.
    pub command: Option<&'a str>,
    /// The client's request, when a configured command runs instead of it.
    pub original_command: Option<&'a str>,
    pub user: &'a str,
    /// The client: the real one from the PROXY header when there is one.
    pub peer: SocketAddr,
    /// Our end of the accepted socket (behind a proxy: the address the proxy connected to,
    /// as sshd behind a plain TCP proxy reports its own socket's address).
    pub local: SocketAddr,
    /// Allow-listed `env` requests.
    pub env: &'a [(String, String)],
    /// `--set-env NAME=VALUE` (sshd's SetEnv): set after the client's, so they win.
    pub set_env: &'a [(String, String)],
    /// Run on a terminal (TERM and size from pty-req).
    pub pty: Option<&'a Pty>,
}

/// A running (or exited, not yet reported) session command.
pub struct ChildProc {
    pub channel: ChannelId,
    pub child: Child,
    pub stdin: Option<Sender>,
    pub stdout: Option<Receiver>,
    pub stderr: Option<Receiver>,
    pub stdin_writable: bool,
    pub stdout_readable: bool,
    pub stderr_readable: bool,
    /// The client sent EOF: close stdin once `inbound` is written.
    pub client_eof: bool,
    /// Next `try_wait` after the output ended, and the back-off step.
    pub reap_at: Option<Instant>,
    pub reap_step: Duration,
    /// exit-status / exit-signal went to the client.
    pub reported: bool,
    /// stdin and stdout are two handles on one PTY master.
    pub pty: bool,
    /// `--record-dir`: the terminal output as asciicast (PTY sessions only).
    pub recording: Option<crate::runtime::recording::Recording>,
}

/// Starts the command with piped, non-blocking stdio.
pub fn spawn(channel: ChannelId, spec: &ExecSpec<'_>) -> io::Result<ChildProc> {
    let mut cmd = Command::new("/bin/sh");
    if let Some(c) = spec.command {
        cmd.arg("-c").arg(c);
    }
    let peer_ip = spec.peer.ip().to_canonical();
    // A fresh environment (as sshd): only what the session is meant to see.
    cmd.env_clear();
    for var in ["PATH", "HOME", "TZ"] {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    if std::env::var_os("PATH").is_none() {
        cmd.env("PATH", "/usr/bin:/bin");
    }
    for (k, v) in spec.env.iter().chain(spec.set_env) {
        cmd.env(k, v);
    }
    cmd.env("SSH_USER", spec.user)
        .env("USER", spec.user)
        .env("LOGNAME", spec.user)
        .env("SSH_CLIENT", format!("{} {} {}", peer_ip, spec.peer.port(), spec.local.port()))
        .env("SSH_CONNECTION", ssh_connection(spec.peer, spec.local));
    if let Some(o) = spec.original_command {
        cmd.env("SSH_ORIGINAL_COMMAND", o);
    }
    if let Some(pty) = spec.pty {
        cmd.env("TERM", &pty.term);
        return spawn_on_pty(channel, cmd, pty);
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let mut child = cmd.spawn()?;
    let pipes = (|| -> io::Result<_> {
        let stdin = child.stdin.take().map(|p| Sender::from(OwnedFd::from(p)));
        let stdout = child.stdout.take().map(|p| Receiver::from(OwnedFd::from(p)));
        let stderr = child.stderr.take().map(|p| Receiver::from(OwnedFd::from(p)));
        if let Some(p) = &stdin {
            p.set_nonblocking(true)?;
        }
        for p in [&stdout, &stderr].into_iter().flatten() {
            p.set_nonblocking(true)?;
        }
        Ok((stdin, stdout, stderr))
    })();
    let (stdin, stdout, stderr) = match pipes {
        Ok(p) => p,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait(); // just killed: returns at once
            return Err(e);
        }
    };
    Ok(ChildProc::new(channel, child, stdin, stdout, stderr, false))
}

/// The kernel's terminal size for `size` (already clamped to 16 bits by the core).
fn winsize(size: WinSize) -> libc::winsize {
    let c = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
    libc::winsize {
        ws_row: c(size.rows),
        ws_col: c(size.cols),
        ws_xpixel: c(size.width_px),
        ws_ypixel: c(size.height_px),
    }
}

/// openpty(3) with both ends close-on-exec (the child's stdio are dup2'd copies, which are not).
fn open_pty(size: WinSize) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut master: libc::c_int = -1;
    let mut slave: libc::c_int = -1;
    let ws = winsize(size);
    // SAFETY: openpty writes two fds into the out-parameters; name and termios may be null.
    let r = unsafe {
        libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), &ws)
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just opened by openpty and are owned by nobody else.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    for fd in [master.as_raw_fd(), slave.as_raw_fd()] {
        // SAFETY: fcntl on fds we own.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok((master, slave))
}

fn spawn_on_pty(channel: ChannelId, mut cmd: Command, pty: &Pty) -> io::Result<ChildProc> {
    let (master, slave) = open_pty(pty.size)?;
    cmd.stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave));
    // SAFETY: only async-signal-safe calls between fork and exec: a new session (which also
    // makes the child a process-group leader, as `process_group(0)` does for pipes), then the
    // terminal on fd 0 as its controlling terminal.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn();
    // The parent's slave copies close with `cmd`: the master then sees EOF (EIO) once the
    // child and everything it started have let go of the terminal.
    drop(cmd);
    let child = child?;
    let writer = master.try_clone();
    let ends = writer.and_then(|w| {
        let stdin = Sender::from(w);
        let stdout = Receiver::from(master);
        stdin.set_nonblocking(true)?;
        stdout.set_nonblocking(true)?;
        Ok((stdin, stdout))
    });
    match ends {
        Ok((stdin, stdout)) => {
            Ok(ChildProc::new(channel, child, Some(stdin), Some(stdout), None, true))
        }
        Err(e) => {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait(); // just killed: returns at once
            Err(e)
        }
    }
}

impl ChildProc {
    fn new(
        channel: ChannelId,
        child: Child,
        stdin: Option<Sender>,
        stdout: Option<Receiver>,
        stderr: Option<Receiver>,
        pty: bool,
    ) -> ChildProc {
        ChildProc {
            channel,
            child,
            stdin,
            stdout,
            stderr,
            stdin_writable: true,
            stdout_readable: true,
            stderr_readable: true,
            client_eof: false,
            reap_at: None,
            reap_step: REAP_FIRST,
            reported: false,
            pty,
            recording: None,
        }
    }

    /// window-change: TIOCSWINSZ on the master (the kernel sends the child SIGWINCH).
    pub fn resize(&self, size: WinSize) {
        if !self.pty {
            return;
        }
        let fd: Option<RawFd> = match (&self.stdout, &self.stdin) {
            (Some(r), _) => Some(r.as_raw_fd()),
            (None, Some(w)) => Some(w.as_raw_fd()),
            _ => None,
        };
        let Some(fd) = fd else { return };
        let ws = winsize(size);
        // SAFETY: TIOCSWINSZ reads one winsize from the pointer; fd is our open PTY master.
        unsafe {
            libc::ioctl(fd, libc::TIOCSWINSZ, &ws);
        }
    }
}

/// sshd's `SSH_CONNECTION`: "client_ip client_port server_ip server_port", IPv4-mapped IPv6
/// addresses written as IPv4 (as sshd does for a dual-stack listener).
pub fn ssh_connection(peer: SocketAddr, local: SocketAddr) -> String {
    format!(
        "{} {} {} {}",
        peer.ip().to_canonical(),
        peer.port(),
        local.ip().to_canonical(),
        local.port()
    )
}

/// Which output pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    Stdout,
    Stderr,
}

impl ChildProc {
    /// Writes to stdin until all is taken or it would block. `Err` when the child closed it.
    pub fn write_stdin(&mut self, data: &[u8]) -> io::Result<usize> {
        let Some(p) = self.stdin.as_mut() else {
            return Err(io::ErrorKind::BrokenPipe.into());
        };
        let mut done = 0;
        while self.stdin_writable {
            let Some(rest) = data.get(done..).filter(|r| !r.is_empty()) else { break };
            match p.write(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.stdin_writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    pub fn readable(&self, which: Out) -> bool {
        match which {
            Out::Stdout => self.stdout.is_some() && self.stdout_readable,
            Out::Stderr => self.stderr.is_some() && self.stderr_readable,
        }
    }

    /// One read from stdout or stderr: `Ok(Some(0))` EOF, `Ok(None)` would block.
    pub fn read_once(&mut self, which: Out, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let (pipe, flag) = match which {
            Out::Stdout => (self.stdout.as_mut(), &mut self.stdout_readable),
            Out::Stderr => (self.stderr.as_mut(), &mut self.stderr_readable),
        };
        let Some(p) = pipe else {
            return Ok(Some(0));
        };
        loop {
            match p.read(buf) {
                Ok(n) => return Ok(Some(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    *flag = false;
                    return Ok(None);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Both output pipes ended.
    pub fn output_done(&self) -> bool {
        self.stdout.is_none() && self.stderr.is_none()
    }

    /// `waitpid(WNOHANG)`: the exit status if the child has exited.
    pub fn try_reap(&mut self) -> Option<ExitStatus> {
        match self.child.try_wait() {
            Ok(Some(st)) => Some(exit_status(st)),
            Ok(None) => None,
            // ECHILD: someone else reaped it; report a failure rather than hang the channel.
            Err(_) => Some(ExitStatus::Code(255)),
        }
    }
}

/// exit-status, or exit-signal with the signal's name.
pub fn exit_status(st: std::process::ExitStatus) -> ExitStatus {
    if let Some(code) = st.code() {
        return ExitStatus::Code(code as u32);
    }
    match st.signal() {
        Some(sig) => ExitStatus::Signal {
            name: signal_name(sig).to_string(),
            core_dumped: st.core_dumped(),
            message: String::new(),
        },
        None => ExitStatus::Code(255),
    }
}

/// RFC 4254 §6.10 signal names (without "SIG").
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGABRT => "ABRT",
        libc::SIGALRM => "ALRM",
        libc::SIGFPE => "FPE",
        libc::SIGHUP => "HUP",
        libc::SIGILL => "ILL",
        libc::SIGINT => "INT",
        libc::SIGKILL => "KILL",
        libc::SIGPIPE => "PIPE",
        libc::SIGQUIT => "QUIT",
        libc::SIGSEGV => "SEGV",
        libc::SIGTERM => "TERM",
        libc::SIGUSR1 => "USR1",
        libc::SIGUSR2 => "USR2",
        _ => "KILL",
    }
}

/// A child whose channel or connection is gone: signalled, waiting to be reaped.
pub struct Dying {
    pub child: Child,
    pub kill_at: Instant,
    pub killed: bool,
}

impl Dying {
    /// Sends SIGTERM to the child's process group (it leads it: `process_group(0)`).
    pub fn start(child: Child, now: Instant) -> Dying {
        signal_group(&child, libc::SIGTERM);
        Dying { child, kill_at: now + KILL_GRACE, killed: false }
    }

    /// True once reaped; SIGKILL when the grace has passed.
    pub fn poll(&mut self, now: Instant) -> bool {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return true;
        }
        if !self.killed && now >= self.kill_at {
            signal_group(&self.child, libc::SIGKILL);
            self.killed = true;
        }
        false
    }
}

fn signal_group(child: &Child, sig: i32) {
    let Ok(pid) = libc::pid_t::try_from(child.id()) else { return };
    if pid <= 0 {
        return;
    }
    // SAFETY: kill(2) on the process group our own unreaped child leads (its PID is still
    // ours, so the group cannot have been reused), and on the child itself.
    unsafe {
        libc::kill(-pid, sig);
        libc::kill(pid, sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_connection_format() {
        let v = ssh_connection("192.0.2.7:51234".parse().unwrap(), "10.0.0.1:22".parse().unwrap());
        assert_eq!(v, "192.0.2.7 51234 10.0.0.1 22");
        let v = ssh_connection(
            "[::ffff:192.0.2.7]:4000".parse().unwrap(),
            "[2001:db8::1]:2222".parse().unwrap(),
        );
        assert_eq!(v, "192.0.2.7 4000 2001:db8::1 2222");
    }
}
