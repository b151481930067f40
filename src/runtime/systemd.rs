//! systemd integration, spoken directly (no libsystemd): the notify protocol (`sd_notify(3)`: one
//! datagram of `KEY=value` lines to `$NOTIFY_SOCKET`) and socket activation (`sd_listen_fds(3)`:
//! listening sockets inherited from fd 3 on, announced by `LISTEN_PID`, `LISTEN_FDS` and
//! `LISTEN_FDNAMES`).
//!
//! With socket activation systemd owns the listening socket, so a restart or an upgrade never
//! closes it: connections that arrive while no sshfront runs wait in the kernel backlog.
//! The variables are read once and removed from the environment, so nothing we start later
//! (session commands) sees them.

use mio::net::TcpListener;
use std::io;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixDatagram;

/// First inherited descriptor (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: RawFd = 3;
/// More inherited sockets than this is a broken environment, not a configuration.
pub const MAX_LISTEN_FDS: usize = 64;

/// What systemd gave this process.
#[derive(Debug, Default)]
pub struct SystemdEnv {
    /// Where to send notifications, if anywhere.
    pub notify: Option<Notifier>,
    /// Inherited listening sockets with their names (`LISTEN_FDNAMES`, else "unknown").
    pub listeners: Vec<(TcpListener, String)>,
}

impl SystemdEnv {
    /// Reads and removes `NOTIFY_SOCKET`, `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES`.
    /// Call it before any thread starts (it edits the environment). Inherited descriptors are
    /// checked to be listening stream sockets, and made non-blocking and close-on-exec.
    pub fn take() -> io::Result<SystemdEnv> {
        let var = |k: &str| std::env::var(k).ok();
        let (notify, pid, fds, names) =
            (var("NOTIFY_SOCKET"), var("LISTEN_PID"), var("LISTEN_FDS"), var("LISTEN_FDNAMES"));
        for k in ["NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
            std::env::remove_var(k);
        }
        let notify = match notify {
            Some(path) if !path.is_empty() => Some(Notifier::new(&path)?),
            _ => None,
        };
        let count = parse_listen_fds(pid.as_deref(), fds.as_deref(), std::process::id())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let names: Vec<&str> = names.as_deref().map(|n| n.split(':').collect()).unwrap_or_default();
        let mut listeners = Vec::with_capacity(count);
        for i in 0..count {
            let fd = LISTEN_FDS_START + i as RawFd;
            check_listening_stream(fd)?;
            // SAFETY: systemd passed us `fd` (LISTEN_PID is our pid), nothing else owns it, and
            // it was just checked to be a listening stream socket.
            let l = unsafe { std::net::TcpListener::from_raw_fd(fd) };
            l.set_nonblocking(true)?;
            set_cloexec(fd)?;
            let name = names.get(i).copied().unwrap_or("unknown").to_string();
            listeners.push((TcpListener::from_std(l), name));
        }
        Ok(SystemdEnv { notify, listeners })
    }
}

/// How many sockets were passed: 0 unless `LISTEN_PID` names this process (the variables may
/// have been meant for a parent), else `LISTEN_FDS`, bounded.
pub fn parse_listen_fds(pid: Option<&str>, fds: Option<&str>, me: u32) -> Result<usize, String> {
    let (Some(pid), Some(fds)) = (pid, fds) else {
        return Ok(0);
    };
    if pid.trim().parse::<u32>().ok() != Some(me) {
        return Ok(0);
    }
    let n: usize = fds.trim().parse().map_err(|_| format!("LISTEN_FDS={fds:?} is not a number"))?;
    if n > MAX_LISTEN_FDS {
        return Err(format!("LISTEN_FDS={n}: more than {MAX_LISTEN_FDS} sockets"));
    }
    Ok(n)
}

fn check_listening_stream(fd: RawFd) -> io::Result<()> {
    let opt = |name: libc::c_int| -> io::Result<libc::c_int> {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `v`, which is that large.
        let r = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                name,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if r != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("LISTEN_FDS: fd {fd} is not a socket: {}", io::Error::last_os_error()),
            ));
        }
        Ok(v)
    };
    if opt(libc::SO_TYPE)? != libc::SOCK_STREAM || opt(libc::SO_ACCEPTCONN)? != 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("LISTEN_FDS: fd {fd} is not a listening stream socket (use ListenStream=)"),
        ));
    }
    Ok(())
}

fn set_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own, with integer arguments only.
    let r = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags < 0 {
            flags
        } else {
            libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC)
        }
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends `sd_notify` messages. A failed send is logged once and otherwise ignored: systemd's
/// own timeouts cover a lost notification, and serving must not depend on it.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: std::os::unix::net::SocketAddr,
    warned: std::cell::Cell<bool>,
}

impl Notifier {
    /// `path` is a file system path or, with a leading `@`, an abstract socket name.
    pub fn new(path: &str) -> io::Result<Notifier> {
        let addr = match path.strip_prefix('@') {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?
            }
            None => std::os::unix::net::SocketAddr::from_pathname(path)?,
        };
        let socket = UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        Ok(Notifier { socket, addr, warned: std::cell::Cell::new(false) })
    }

    /// Sends one message (newline-separated assignments).
    pub fn send(&self, msg: &str) {
        if let Err(e) = self.socket.send_to_addr(msg.as_bytes(), &self.addr) {
            if !self.warned.replace(true) {
                log::warn!("NOTIFY_SOCKET: {e}; systemd may not see our state");
            }
        }
    }

    /// `READY=1` with a status line.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    /// `RELOADING=1` with the monotonic time systemd's Type=notify-reload expects.
    pub fn reloading(&self) {
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading", monotonic_usec()));
    }

    pub fn stopping(&self, status: &str) {
        self.send(&format!("STOPPING=1\nSTATUS={}", one_line(status)));
    }

    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={}", one_line(status)));
    }
}

/// A STATUS value must stay on one line.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// CLOCK_MONOTONIC in microseconds, as `MONOTONIC_USEC=` wants.
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime fills the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).saturating_mul(1_000_000).saturating_add(ts.tv_nsec as u64 / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_fds_only_for_our_pid_and_bounded() {
        assert_eq!(parse_listen_fds(None, Some("2"), 7), Ok(0));
        assert_eq!(parse_listen_fds(Some("8"), Some("2"), 7), Ok(0), "meant for another process");
        assert_eq!(parse_listen_fds(Some("7"), Some("2"), 7), Ok(2));
        assert!(parse_listen_fds(Some("7"), Some("x"), 7).is_err());
        assert!(parse_listen_fds(Some("7"), Some("100000"), 7).is_err());
    }

    #[test]
    fn notifications_arrive_as_datagrams() {
        let dir = std::env::temp_dir().join(format!("sshfront-notify-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("notify");
        let _ = std::fs::remove_file(&path);
        let rx = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::new(path.to_str().unwrap()).unwrap();
        n.ready("2 connections\nopen");
        n.reloading();
        let mut buf = [0u8; 256];
        let k = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..k], b"READY=1\nSTATUS=2 connections open");
        let k = rx.recv(&mut buf).unwrap();
        let m = std::str::from_utf8(&buf[..k]).unwrap();
        assert!(m.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{m}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
