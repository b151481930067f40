//! Host-name lookups for backends, off the worker: `getaddrinfo` blocks for as long as DNS
//! takes, so each worker has one resolver thread with a bounded request queue. A full queue
//! fails the channel open at once instead of queueing without limit; answers come back on a
//! channel sized so the resolver never blocks on it, and wake the worker.

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use mio::Waker;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

/// Lookups queued per worker; past it, new ones fail with "name lookup busy".
pub const RESOLVE_QUEUE: usize = 64;
/// Addresses kept per name (tried in order).
pub const MAX_ADDRS: usize = 8;

/// Who asked: the endpoint slab key and generation, or (`upstream`) the connection's slab key
/// and generation for its session-proxy upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    pub endpoint: usize,
    pub generation: u32,
    pub upstream: bool,
}

pub struct Answer {
    pub ticket: Ticket,
    pub result: Result<Vec<SocketAddr>, String>,
}

struct Request {
    ticket: Ticket,
    host: String,
    port: u16,
}

/// The worker's side; the thread starts on first use.
pub struct Resolver {
    waker: Arc<Waker>,
    tx: Option<Sender<Request>>,
    rx: Option<Receiver<Answer>>,
}

impl Resolver {
    pub fn new(waker: Arc<Waker>) -> Self {
        Resolver { waker, tx: None, rx: None }
    }

    /// Queues a lookup; `Err` with a reason when the queue is full or the thread is gone.
    pub fn lookup(&mut self, ticket: Ticket, host: &str, port: u16) -> Result<(), String> {
        if self.tx.is_none() {
            self.start()?;
        }
        let Some(tx) = self.tx.as_ref() else {
            return Err("name lookup unavailable".into());
        };
        match tx.try_send(Request { ticket, host: host.to_string(), port }) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err("name lookup busy".into()),
            Err(TrySendError::Disconnected(_)) => Err("name lookup unavailable".into()),
        }
    }

    /// Finished lookups (drain fully each turn).
    pub fn try_recv(&self) -> Option<Answer> {
        self.rx.as_ref()?.try_recv().ok()
    }

    fn start(&mut self) -> Result<(), String> {
        let (tx, requests) = bounded::<Request>(RESOLVE_QUEUE);
        // A full answer channel only makes the resolver thread wait for the worker to drain it.
        let (answers, rx) = bounded::<Answer>(RESOLVE_QUEUE);
        let waker = self.waker.clone();
        std::thread::Builder::new()
            .name("sshfront-resolver".into())
            .spawn(move || {
                for r in requests {
                    let result =
                        (r.host.as_str(), r.port)
                            .to_socket_addrs()
                            .map(|a| a.take(MAX_ADDRS).collect::<Vec<_>>())
                            .map_err(|e| e.to_string())
                            .and_then(|v| {
                                if v.is_empty() {
                                    Err("no address".to_string())
                                } else {
                                    Ok(v)
                                }
                            });
                    if answers.send(Answer { ticket: r.ticket, result }).is_err() {
                        return; // the worker is gone
                    }
                    let _ = waker.wake();
                }
            })
            .map_err(|e| format!("resolver thread: {e}"))?;
        self.tx = Some(tx);
        self.rx = Some(rx);
        Ok(())
    }
}
