//! A worker's timer heap: (deadline, slab key, generation), earliest first.
//!
//! Entries are never removed early: when a connection's deadline moves or the connection goes
//! away, its old entry stays and is skipped when popped (the caller's `is_current` says whether
//! it still matches). To keep the heap near one entry per connection, the worker only pushes a
//! deadline that is earlier than the one it already has armed; a later one is re-armed when the
//! earlier entry fires.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimerEntry {
    pub deadline: Instant,
    pub key: usize,
    pub generation: u32,
}

#[derive(Default)]
pub struct TimerHeap {
    heap: BinaryHeap<Reverse<TimerEntry>>,
}

impl TimerHeap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, deadline: Instant, key: usize, generation: u32) {
        self.heap.push(Reverse(TimerEntry { deadline, key, generation }));
    }

    /// The earliest deadline (possibly of a stale entry: waking early is harmless).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(e)| e.deadline)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Pops every entry due at `now`; returns those `is_current` accepts, in deadline order.
    pub fn expired(
        &mut self,
        now: Instant,
        mut is_current: impl FnMut(&TimerEntry) -> bool,
    ) -> Vec<TimerEntry> {
        let mut out = Vec::new();
        while let Some(Reverse(e)) = self.heap.peek() {
            if e.deadline > now {
                break;
            }
            let e = *e;
            self.heap.pop();
            if is_current(&e) {
                out.push(e);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_due_entries_in_order_and_skips_stale() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut h = TimerHeap::new();
        h.push(t0 + 3 * s, 1, 7);
        h.push(t0 + s, 2, 1); // key 2, generation 1: connection since replaced
        h.push(t0 + 2 * s, 3, 4);
        h.push(t0 + 10 * s, 4, 1);
        assert_eq!(h.next_deadline(), Some(t0 + s));
        // Live connections: key 1 gen 7, key 3 gen 4 (deadline moved to 5 s), key 4 gen 1.
        let live = |e: &TimerEntry| match (e.key, e.generation) {
            (1, 7) => e.deadline == t0 + 3 * s,
            (3, 4) => e.deadline == t0 + 5 * s,
            (4, 1) => true,
            _ => false,
        };
        let fired = h.expired(t0 + 3 * s, live);
        assert_eq!(fired.iter().map(|e| e.key).collect::<Vec<_>>(), [1]);
        assert_eq!(h.len(), 1, "stale entries were popped and dropped");
        assert!(h.expired(t0 + 9 * s, live).is_empty());
        assert_eq!(h.expired(t0 + 10 * s, live).len(), 1);
        assert!(h.is_empty());
    }
}
