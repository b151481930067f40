//! A connection's sealed output that the socket has not taken yet: the batches themselves,
//! in order, as the core sealed them in their pooled buffers. A partial write leaves the rest
//! where it is (an offset moves), so no byte is copied on the way to the socket, and all
//! batches leave in one `writev`.

use std::collections::VecDeque;
use std::io::IoSlice;

/// Most batches passed to one `writev` (well under IOV_MAX).
pub const MAX_IOV: usize = 64;

#[derive(Default)]
pub struct OutQueue {
    batches: VecDeque<Vec<u8>>,
    /// Bytes of the front batch already written.
    head: usize,
    /// Unwritten bytes in all batches.
    len: usize,
}

impl OutQueue {
    /// Unwritten bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Memory the queued batches hold (their capacities; the queue is a few batches long).
    pub fn held(&self) -> usize {
        self.batches.iter().map(Vec::capacity).sum()
    }

    /// Appends a sealed batch (empty ones are handed straight back).
    pub fn push(&mut self, batch: Vec<u8>) -> Option<Vec<u8>> {
        if batch.is_empty() {
            return Some(batch);
        }
        self.len += batch.len();
        self.batches.push_back(batch);
        None
    }

    /// The unwritten bytes as slices for `writev`, at most [`MAX_IOV`] of them.
    pub fn io_slices<'a>(&'a self, iov: &mut [IoSlice<'a>; MAX_IOV]) -> usize {
        let mut n = 0;
        for (i, b) in self.batches.iter().enumerate() {
            let Some(slot) = iov.get_mut(n) else { break };
            let from = if i == 0 { self.head } else { 0 };
            *slot = IoSlice::new(b.get(from..).unwrap_or_default());
            n += 1;
        }
        n
    }

    /// Marks `n` bytes written; batches written whole go to `done` (back to the pool).
    pub fn consume(&mut self, mut n: usize, mut done: impl FnMut(Vec<u8>)) {
        self.len = self.len.saturating_sub(n);
        while n > 0 {
            let Some(front) = self.batches.front() else { break };
            let left = front.len() - self.head;
            if n < left {
                self.head += n;
                return;
            }
            n -= left;
            self.head = 0;
            if let Some(b) = self.batches.pop_front() {
                done(b);
            }
        }
    }

    /// Empties the queue (the connection is gone or its socket failed).
    pub fn clear(&mut self, mut done: impl FnMut(Vec<u8>)) {
        for b in self.batches.drain(..) {
            done(b);
        }
        *self = OutQueue::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_writes_move_an_offset_and_return_whole_batches() {
        let mut q = OutQueue::default();
        assert!(q.push(Vec::new()).is_some());
        q.push(b"abc".to_vec());
        q.push(b"defg".to_vec());
        assert_eq!(q.len(), 7);
        let mut returned = Vec::new();
        q.consume(2, |b| returned.push(b));
        assert!(returned.is_empty());
        let mut iov = [IoSlice::new(&[]); MAX_IOV];
        let n = q.io_slices(&mut iov);
        let got: Vec<u8> = iov[..n].iter().flat_map(|s| s.iter().copied()).collect();
        assert_eq!(got, b"cdefg");
        q.consume(3, |b| returned.push(b));
        assert_eq!(returned, [b"abc".to_vec()]);
        assert_eq!(q.len(), 2);
        q.consume(2, |b| returned.push(b));
        assert!(q.is_empty());
        assert_eq!(q.held(), 0);
        assert_eq!(returned.len(), 2);
    }
}
