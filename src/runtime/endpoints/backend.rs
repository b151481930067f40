//! A TCP socket relaying one channel: a direct-tcpip backend we connect to (RFC 4254 §7.2), or
//! a connection accepted on a remote-forward listener (forwarded-tcpip, §7.1).
//!
//! Connecting never blocks the worker: IP literals connect at once, names are looked up on the
//! resolver thread (`resolve.rs`) first; `mio::net::TcpStream::connect` is non-blocking and the
//! first writable event (or error) says how it went. Readiness is remembered here, in user space,
//! because the sockets are edge-triggered.

use crate::connection::ChannelId;
use mio::event::Source;
use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::Instant;

/// A relayed socket: TCP (direct-tcpip, forwarded-tcpip) or Unix (direct-streamlocal,
/// forwarded-streamlocal). Both are non-blocking mio sockets registered in the worker's poll.
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Stream::Tcp(s) => s.take_error(),
            Stream::Unix(s) => s.take_error(),
        }
    }

    /// Connected yet? (`NotConnected` while a non-blocking connect is in progress.)
    fn peer_known(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.peer_addr().map(|_| ()),
            Stream::Unix(s) => s.peer_addr().map(|_| ()),
        }
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Unix(s) => s.shutdown(how),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Source for Stream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(r, t, i),
            Stream::Unix(s) => s.register(r, t, i),
        }
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(r, t, i),
            Stream::Unix(s) => s.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(r),
            Stream::Unix(s) => s.deregister(r),
        }
    }
}

/// Where the socket is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the resolver's answer.
    Resolving,
    /// Non-blocking connect in progress.
    Connecting,
    /// Accepted on a listener; waiting for the client to confirm the forwarded-tcpip channel.
    AwaitingOpen,
    /// Relaying.
    Open,
}

pub struct Backend {
    pub channel: ChannelId,
    pub phase: Phase,
    pub stream: Option<Stream>,
    /// Addresses still to try if the current connect fails (a name with several addresses).
    pub more_addrs: Vec<SocketAddr>,
    /// Resolve + connect must finish by then (`--connect-timeout`).
    pub deadline: Option<Instant>,
    pub readable: bool,
    pub writable: bool,
    /// The backend sent EOF; CHANNEL_EOF went to the client.
    pub read_eof: bool,
    /// The client sent EOF: shut our write side once `inbound` is drained.
    pub client_eof: bool,
    pub write_shut: bool,
    /// CHANNEL_CLOSE went (`backend_closed`); waiting for the client's CLOSE.
    pub close_sent: bool,
}

impl Backend {
    pub fn new(channel: ChannelId, phase: Phase, stream: Option<Stream>) -> Self {
        Backend {
            channel,
            phase,
            stream,
            more_addrs: Vec::new(),
            deadline: None,
            readable: true,
            writable: true,
            read_eof: false,
            client_eof: false,
            write_shut: false,
            close_sent: false,
        }
    }

    /// After a writable (or error) event while connecting: `Ok(true)` connected, `Ok(false)`
    /// still in progress (spurious wake-up), `Err` failed (mio's documented recipe).
    pub fn check_connected(&mut self) -> io::Result<bool> {
        let Some(s) = self.stream.as_ref() else {
            return Err(io::Error::other("no socket"));
        };
        if let Some(e) = s.take_error()? {
            return Err(e);
        }
        match s.peer_known() {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Writes from `data` until it is all taken or the socket would block. Returns the bytes
    /// written; `Err` when the socket failed.
    pub fn write_some(&mut self, data: &[u8]) -> io::Result<usize> {
        let Some(s) = self.stream.as_mut() else {
            return Err(io::Error::other("no socket"));
        };
        let mut done = 0;
        while self.writable {
            let Some(rest) = data.get(done..).filter(|r| !r.is_empty()) else { break };
            match s.write(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// One read into `buf`: `Ok(Some(0))` EOF, `Ok(None)` would block.
    pub fn read_once(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let Some(s) = self.stream.as_mut() else {
            return Err(io::Error::other("no socket"));
        };
        loop {
            match s.read(buf) {
                Ok(n) => return Ok(Some(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    return Ok(None);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Half-close towards the backend (the client sent EOF and everything was written).
    pub fn shutdown_write(&mut self) {
        if let Some(s) = self.stream.as_ref() {
            let _ = s.shutdown(Shutdown::Write);
        }
        self.write_shut = true;
    }
}

/// Parses `host` as an IP literal (brackets allowed for IPv6), so no lookup is needed.
pub fn ip_literal(host: &str, port: u16) -> Option<SocketAddr> {
    let h = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    h.parse::<std::net::IpAddr>().ok().map(|ip| SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_need_no_lookup() {
        assert_eq!(ip_literal("127.0.0.1", 5), Some("127.0.0.1:5".parse().unwrap()));
        assert_eq!(ip_literal("[::1]", 5), Some("[::1]:5".parse().unwrap()));
        assert_eq!(ip_literal("::1", 5), Some("[::1]:5".parse().unwrap()));
        assert_eq!(ip_literal("localhost", 5), None);
    }
}
