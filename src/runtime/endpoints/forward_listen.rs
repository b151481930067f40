//! Remote-forward listeners (tcpip-forward, RFC 4254 §7.1; `ssh -R`): a non-blocking mio
//! listener in the worker's poll per allowed request. Each accepted socket opens a
//! forwarded-tcpip channel and becomes a [`super::backend::Backend`] waiting for the client's
//! confirmation. Bind addresses are IP literals, `localhost` (loopback) or `""`/`*` (all);
//! other names are refused rather than looked up on the worker.

use super::backend::Stream;
use crate::connection::ListenerId;
use mio::event::Source;
use mio::net::{TcpListener, UnixListener};
use mio::{Interest, Registry, Token};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Connections accepted per listener per turn (the rest wait for the next turn).
pub const ACCEPTS_PER_TURN: usize = 16;

pub struct ForwardListener {
    pub id: ListenerId,
    pub listener: Listening,
    pub readable: bool,
}

/// A TCP listener (tcpip-forward) or a Unix one (streamlocal-forward@openssh.com, `ssh -R
/// /path:…`), whose socket file is removed when it is dropped.
pub enum Listening {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Drop for Listening {
    fn drop(&mut self) {
        if let Listening::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Source for Listening {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Listening::Tcp(l) => l.register(r, t, i),
            Listening::Unix(l, _) => l.register(r, t, i),
        }
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Listening::Tcp(l) => l.reregister(r, t, i),
            Listening::Unix(l, _) => l.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Listening::Tcp(l) => l.deregister(r),
            Listening::Unix(l, _) => l.deregister(r),
        }
    }
}

/// Distinguishes temporary socket names within this process.
static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Binds a Unix listener at `path` with mode 0600 and no window in which it is reachable with
/// wider permissions: it is bound under a temporary name in the same directory, chmod 0600,
/// then hard-linked to `path` (which fails if `path` exists, as sshd's default
/// StreamLocalBindUnlink=no) and the temporary name removed. The process umask is never
/// touched (other threads spawn children).
pub fn bind_unix(path: &Path) -> io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let name = path.file_name().ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(
        ".sshfront-{}-{}",
        std::process::id(),
        TEMP_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = path.with_file_name(tmp_name);
    let listener = UnixListener::bind(&tmp)?;
    let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    placed?;
    Ok(listener)
}

/// Where to bind for a tcpip-forward request's address.
pub fn bind_addr(addr: &str, port: u16) -> Option<SocketAddr> {
    let ip = match addr {
        "" | "*" | "0.0.0.0" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        a => {
            let a = a.strip_prefix('[').and_then(|a| a.strip_suffix(']')).unwrap_or(a);
            a.parse().ok()?
        }
    };
    Some(SocketAddr::new(ip, port))
}

impl ForwardListener {
    pub fn bind(id: ListenerId, addr: &str, port: u16) -> io::Result<ForwardListener> {
        let at = bind_addr(addr, port).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("cannot bind {addr:?}"))
        })?;
        let listener = Listening::Tcp(TcpListener::bind(at)?);
        Ok(ForwardListener { id, listener, readable: true })
    }

    /// A streamlocal-forward listener at `path` (see [`bind_unix`]).
    pub fn bind_path(id: ListenerId, path: &str) -> io::Result<ForwardListener> {
        let path = PathBuf::from(path);
        let l = bind_unix(&path)?;
        Ok(ForwardListener { id, listener: Listening::Unix(l, path), readable: true })
    }

    /// The bound port; 0 for a Unix listener.
    pub fn port(&self) -> io::Result<u16> {
        match &self.listener {
            Listening::Tcp(l) => Ok(l.local_addr()?.port()),
            Listening::Unix(..) => Ok(0),
        }
    }

    /// One accept: `Ok(None)` when there is no more for now. Unix peers have no address.
    pub fn accept(&mut self) -> io::Result<Option<(Stream, Option<SocketAddr>)>> {
        loop {
            let r = match &self.listener {
                Listening::Tcp(l) => l.accept().map(|(s, a)| (Stream::Tcp(s), Some(a))),
                Listening::Unix(l, _) => l.accept().map(|(s, _)| (Stream::Unix(s), None)),
            };
            match r {
                Ok(x) => return Ok(Some(x)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    return Ok(None);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_addresses() {
        assert_eq!(bind_addr("localhost", 0), Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!(bind_addr("", 80), Some("0.0.0.0:80".parse().unwrap()));
        assert_eq!(bind_addr("::1", 80), Some("[::1]:80".parse().unwrap()));
        assert_eq!(bind_addr("example.com", 80), None, "no lookups on the worker");
    }

    #[test]
    fn unix_listener_is_0600_refuses_an_existing_path_and_is_removed_on_drop() {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        let dir = std::env::temp_dir().join(format!("sshfront-ul-{}", std::process::id()));
        let _ = std::fs::create_dir(&dir);
        let path = dir.join("fwd.sock");
        let _ = std::fs::remove_file(&path);
        let l = ForwardListener::bind_path(ListenerId(1), path.to_str().unwrap()).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert!(ForwardListener::bind_path(ListenerId(2), path.to_str().unwrap()).is_err());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temporary name left");
        drop(l);
        assert!(!path.exists(), "removed with the listener");
        let _ = std::fs::remove_dir(&dir);
    }
}
