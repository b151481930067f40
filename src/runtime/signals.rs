//! Signals through signal-hook's self-pipe: the handler only writes a byte to a socket pair
//! registered in the acceptor's `Poll`; everything else happens in the event loop (nothing
//! async-signal-unsafe ever runs in a handler — the regreSSHion lesson). One pair per signal,
//! so which one arrived is known without a second channel.

use mio::net::UnixStream;
use mio::{Interest, Registry, Token};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::SigId;
use std::io::{self, Read};

/// The signals we act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sig {
    /// SIGTERM / SIGINT: drain and exit; a second one exits at once.
    Term,
    Int,
    /// Reload configuration and host keys for new connections.
    Hup,
    /// Print full statistics.
    Usr1,
}

const ALL: [(Sig, i32); 4] =
    [(Sig::Term, SIGTERM), (Sig::Int, SIGINT), (Sig::Hup, SIGHUP), (Sig::Usr1, SIGUSR1)];

pub struct Signals {
    base: usize,
    pipes: Vec<(Sig, UnixStream, SigId)>,
}

impl Signals {
    /// Installs the handlers; the read ends get tokens `base .. base + 4`.
    pub fn register(registry: &Registry, base: usize) -> io::Result<Self> {
        let mut pipes = Vec::with_capacity(ALL.len());
        for (i, (sig, num)) in ALL.into_iter().enumerate() {
            let (mut read, write) = UnixStream::pair()?;
            registry.register(&mut read, Token(base + i), Interest::READABLE)?;
            let id = signal_hook::low_level::pipe::register(num, write)?;
            pipes.push((sig, read, id));
        }
        Ok(Signals { base, pipes })
    }

    pub fn owns(&self, token: Token) -> bool {
        (self.base..self.base + self.pipes.len()).contains(&token.0)
    }

    /// Signals that arrived since the last call (each at most once per call; repeats of the
    /// same signal between two calls coalesce, as with the kernel's own pending set).
    pub fn drain(&mut self) -> Vec<Sig> {
        let mut out = Vec::new();
        let mut buf = [0u8; 64];
        for (sig, read, _) in &mut self.pipes {
            let mut got = false;
            loop {
                match read.read(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => got = true,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break, // WouldBlock: drained
                }
            }
            if got {
                out.push(*sig);
            }
        }
        out
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for (_, _, id) in &self.pipes {
            signal_hook::low_level::unregister(*id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};
    use std::time::Duration;

    #[test]
    fn signals_arrive_through_the_poll() {
        let mut poll = Poll::new().unwrap();
        let mut signals = Signals::register(poll.registry(), 100).unwrap();
        // SAFETY: raise(3) on our own process; the handler only writes to the pipe.
        unsafe {
            libc::raise(SIGUSR1);
            libc::raise(SIGHUP);
        }
        let mut events = Events::with_capacity(8);
        let mut got = Vec::new();
        for _ in 0..50 {
            poll.poll(&mut events, Some(Duration::from_millis(100))).unwrap();
            assert!(events.iter().all(|e| signals.owns(e.token())));
            got.extend(signals.drain());
            if got.len() >= 2 {
                break;
            }
        }
        got.sort_by_key(|s| *s as u8);
        assert_eq!(got, [Sig::Hup, Sig::Usr1]);
        assert!(!signals.owns(mio::Token(99)) && !signals.owns(mio::Token(104)));
    }
}
