//! Remote-forward listeners (tcpip-forward, RFC 4254 §7.1; `ssh -R`): a non-blocking mio
//! listener in the worker's poll per allowed request. Each accepted socket opens a
//! forwarded-tcpip channel and becomes a [`super::backend::Backend`] waiting for the client's
//! confirmation. Bind addresses are IP literals, `localhost` (loopback) or `""`/`*` (all);
//! other names are refused rather than looked up on the worker.

use crate::connection::ListenerId;
use mio::net::{TcpListener, TcpStream};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Connections accepted per listener per turn (the rest wait for the next turn).
pub const ACCEPTS_PER_TURN: usize = 16;

pub struct ForwardListener {
    pub id: ListenerId,
    pub listener: TcpListener,
    pub readable: bool,
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
        Ok(ForwardListener { id, listener: TcpListener::bind(at)?, readable: true })
    }

    pub fn port(&self) -> io::Result<u16> {
        Ok(self.listener.local_addr()?.port())
    }

    /// One accept: `Ok(None)` when there is no more for now.
    pub fn accept(&mut self) -> io::Result<Option<(TcpStream, SocketAddr)>> {
        loop {
            match self.listener.accept() {
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
}
