//! A channel's inbound bytes the backend has not taken yet: a FIFO of chunks, each a buffer
//! the runtime lends from its pool ([`DataSink::inbound_buffer`](super::DataSink)). New bytes
//! fill the last chunk's room, then a new chunk; what the backend takes leaves from the front
//! by moving an offset, and a chunk taken whole goes to a spent list the runtime gives back
//! to its pool. No byte is moved once queued. Without a lender (tests, the fuzz harness, a
//! spent budget) a chunk is allocated here; the runtime counts those.

use std::collections::VecDeque;

/// Capacity of a chunk allocated here when no pooled one is lent (the everyday pooled size).
const OWN_CHUNK: usize = 16 * 1024;

#[derive(Debug, Default)]
pub(crate) struct Inbound {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes of the front chunk already taken.
    head: usize,
    /// Bytes queued.
    len: usize,
}

impl Inbound {
    pub fn len(&self) -> usize {
        self.len
    }

    /// Memory held (the chunks' capacities).
    pub fn held(&self) -> usize {
        self.chunks.iter().map(Vec::capacity).sum()
    }

    /// The first contiguous run of queued bytes (empty only when nothing is queued).
    pub fn front(&self) -> &[u8] {
        self.chunks.front().and_then(|c| c.get(self.head..)).unwrap_or_default()
    }

    /// Appends `data`, taking new chunks from `lend` (asked for at least the bytes left).
    /// Returns how many chunks had to be allocated here because none was lent.
    pub fn push(&mut self, mut data: &[u8], lend: &mut dyn FnMut(usize) -> Option<Vec<u8>>) -> u32 {
        let mut own = 0;
        while !data.is_empty() {
            if let Some(last) = self.chunks.back_mut() {
                let n = (last.capacity() - last.len()).min(data.len());
                if n > 0 {
                    let (now, rest) = data.split_at(n);
                    last.extend_from_slice(now);
                    self.len += n;
                    data = rest;
                    continue;
                }
            }
            let chunk = match lend(data.len()) {
                Some(mut v) if v.capacity() > 0 => {
                    v.clear();
                    v
                }
                _ => {
                    own += 1;
                    Vec::with_capacity(data.len().max(OWN_CHUNK))
                }
            };
            self.chunks.push_back(chunk);
        }
        own
    }

    /// Takes `n` bytes from the front (at most what is queued); chunks emptied go to `spent`.
    /// Returns how many were taken.
    pub fn consume(&mut self, n: usize, spent: &mut Vec<Vec<u8>>) -> usize {
        let n = n.min(self.len);
        self.len -= n;
        let mut left = n;
        while left > 0 {
            let Some(front) = self.chunks.front() else { break };
            let avail = front.len().saturating_sub(self.head);
            if left < avail {
                self.head += left;
                break;
            }
            left -= avail;
            self.head = 0;
            spent.extend(self.chunks.pop_front());
        }
        n
    }

    /// Gives every chunk to `spent` (the channel is gone).
    pub fn clear(&mut self, spent: &mut Vec<Vec<u8>>) {
        spent.extend(self.chunks.drain(..));
        *self = Inbound::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_leave_in_order_across_lent_chunks_and_chunks_come_back() {
        let mut q = Inbound::default();
        let mut lent = 0;
        let mut lend = |_min: usize| {
            lent += 1;
            Some(Vec::with_capacity(4))
        };
        assert_eq!(q.push(b"abcdef", &mut lend), 0);
        assert_eq!(q.push(b"gh", &mut lend), 0);
        assert_eq!(lent, 2);
        assert_eq!(q.len(), 8);
        assert_eq!(q.held(), 8);
        let mut spent = Vec::new();
        let mut got = Vec::new();
        while q.len() > 0 {
            let take = q.front().len().min(3);
            got.extend_from_slice(&q.front()[..take]);
            assert_eq!(q.consume(take, &mut spent), take);
        }
        assert_eq!(got, b"abcdefgh");
        assert_eq!(spent.len(), 2, "both chunks handed back");
        assert_eq!(q.consume(5, &mut spent), 0);
    }

    #[test]
    fn without_a_lender_chunks_are_counted_as_own() {
        let mut q = Inbound::default();
        assert_eq!(q.push(&[1; 100], &mut |_| None), 1);
        assert_eq!(q.held(), OWN_CHUNK);
        let mut spent = Vec::new();
        q.clear(&mut spent);
        assert_eq!((q.len(), spent.len()), (0, 1));
    }
}
