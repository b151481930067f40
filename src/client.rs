//! `ClientConnection`: sshfront's client role, for the bench harness and in-process tests. The
//! same transport core as the server, driven the same sans-IO way.

use crate::algo::Rng;
use crate::packet::PayloadAt;
use crate::transport::{self, Event, JobDone, Read, Transport, TransportConfig};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

/// A service-layer message the client received (user authentication or connection protocol).
pub type Message = Vec<u8>;

/// One client connection's protocol state.
pub struct ClientConnection {
    transport: Transport,
    /// Service-layer messages received, for the caller to act on. Bounded by the caller
    /// draining it every turn; `handle_input` stops adding past `MAX_INBOX`.
    inbox: VecDeque<Message>,
}

/// Messages buffered for the caller before `handle_input` stops reading.
const MAX_INBOX: usize = 256;

impl ClientConnection {
    pub fn new(
        config: Arc<TransportConfig>,
        rng: Box<dyn Rng>,
        expected_host_key: Option<Arc<[u8]>>,
        now: Instant,
    ) -> Self {
        ClientConnection {
            transport: Transport::new_client(config, rng, expected_host_key, now),
            inbox: VecDeque::new(),
        }
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    pub fn transport_mut(&mut self) -> &mut Transport {
        &mut self.transport
    }

    /// Same contract as `ServerConnection::handle_input`.
    pub fn handle_input(&mut self, input: &mut [u8], now: Instant) -> usize {
        let mut off = 0usize;
        while self.inbox.len() < MAX_INBOX {
            let Some(rest) = input.get_mut(off..) else { return input.len() };
            match self.transport.read(rest, now) {
                Read::Consumed(n) => off += n,
                Read::Service { consumed, payload, .. } => {
                    let base = off;
                    off += consumed;
                    let msg = match payload {
                        PayloadAt::Input(r) => {
                            input.get(base + r.start..base + r.end).unwrap_or(&[]).to_vec()
                        }
                        PayloadAt::Inflated => {
                            let v = self.transport.take_inflated();
                            let m = v.clone();
                            self.transport.restore_inflated(v);
                            m
                        }
                    };
                    // USERAUTH_SUCCESS changes which messages may follow in this very read
                    // (a server sends GLOBAL_REQUEST right after it), so the phase moves now,
                    // not when the caller gets to the message. The state table delivers 52
                    // only while authenticating.
                    if msg.first() == Some(&crate::wire::msg_no::USERAUTH_SUCCESS)
                        && !self.transport.is_authenticated()
                    {
                        self.transport.set_authenticated();
                    }
                    self.inbox.push_back(msg);
                }
                Read::Wait => return off,
                Read::Closed => return input.len(),
            }
        }
        off
    }

    /// The next service-layer message received.
    pub fn next_message(&mut self) -> Option<Message> {
        self.inbox.pop_front()
    }

    pub fn handle_job_done(&mut self, done: JobDone, now: Instant) {
        self.transport.handle_job_done(done, now);
    }

    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        self.transport.poll_transmit(out);
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.transport.poll_event()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.transport.poll_timeout()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.transport.handle_timeout(now);
    }

    pub fn send(&mut self, payload: &[u8]) -> Result<(), transport::Error> {
        self.transport.send(payload)
    }

    pub fn is_closed(&self) -> bool {
        self.transport.is_closed()
    }
}
