//! Outgoing messages held back while a key exchange runs (RFC 4253 §7.1), bounded in bytes.
//!
//! Twisted Conch queued these without limit; here the queue reports when it is over its soft
//! bound so producers stop (backpressure) and refuses past a hard bound of twice that.

use std::collections::VecDeque;

/// A FIFO of payloads stored back to back in one buffer (no allocation per message).
#[derive(Debug, Default)]
pub struct Outbox {
    buf: Vec<u8>,
    /// Lengths of the payloads in `buf`, in order.
    lens: VecDeque<u32>,
    /// Offset of the first unsent payload in `buf`.
    head: usize,
    soft_limit: usize,
}

/// The queue is past its hard bound; the message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxFull;

impl Outbox {
    pub fn new(soft_limit: usize) -> Self {
        Outbox { buf: Vec::new(), lens: VecDeque::new(), head: 0, soft_limit }
    }

    /// Memory the queue holds (its buffer's capacity), for the global memory budget.
    pub fn held_bytes(&self) -> usize {
        self.buf.capacity()
    }

    /// Queued bytes.
    pub fn bytes(&self) -> usize {
        self.buf.len() - self.head
    }

    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// True when producers should stop until the queue drains.
    pub fn is_over_soft_limit(&self) -> bool {
        self.bytes() >= self.soft_limit
    }

    pub fn push(&mut self, payload: &[u8]) -> Result<(), OutboxFull> {
        if self.bytes().saturating_add(payload.len()) > self.soft_limit.saturating_mul(2) {
            return Err(OutboxFull);
        }
        let len = u32::try_from(payload.len()).map_err(|_| OutboxFull)?;
        self.buf.extend_from_slice(payload);
        self.lens.push_back(len);
        Ok(())
    }

    /// Removes the oldest payload and passes it to `f`.
    pub fn pop_with<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let len = self.lens.pop_front()? as usize;
        let end = self.head + len;
        let r = f(self.buf.get(self.head..end).unwrap_or(&[]));
        self.head = end;
        if self.lens.is_empty() {
            self.buf.clear();
            self.head = 0;
            // Do not keep a large buffer around after a burst.
            if self.buf.capacity() > 64 * 1024 {
                self.buf = Vec::new();
            }
        }
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_order_and_bounds() {
        let mut o = Outbox::new(10);
        o.push(b"abc").unwrap();
        o.push(b"defgh").unwrap();
        assert!(!o.is_over_soft_limit());
        o.push(b"ij").unwrap();
        assert!(o.is_over_soft_limit());
        o.push(b"klmnopqr").unwrap();
        assert_eq!(o.push(b"xyz"), Err(OutboxFull), "hard bound is twice the soft one");
        let mut got = Vec::new();
        while let Some(v) = o.pop_with(|p| p.to_vec()) {
            got.push(v);
        }
        assert_eq!(got, [b"abc".to_vec(), b"defgh".to_vec(), b"ij".to_vec(), b"klmnopqr".to_vec()]);
        assert!(o.is_empty());
        assert_eq!(o.bytes(), 0);
    }
}
