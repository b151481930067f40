//! Read/write buffers from a pool with size classes and one global memory budget.
//!
//! Why: 10 000 idle connections must not each hold 288 KiB. A connection holds a buffer only
//! while it has bytes in it; a read buffer starts small and grows to the largest class only
//! when a partial packet needs the room or fills more than a quarter of it (bulk data; RFC 4253
//! §6.1: 35 000 bytes must be accepted; we accept 256 KiB payloads plus header and MAC). The budget is shared by all workers (an atomic);
//! each worker keeps its own free lists, so checkout and release take no lock.
//!
//! Accounting: `used` counts every byte allocated through the pool, checked out or sitting in a
//! free list, plus what each connection's protocol core holds for its peer (channel inbound
//! data, sealed output, the held-back queue, decompression output), charged by the worker after
//! each turn from `Core::held_bytes` (the core stays sans-IO). A checkout that would pass the
//! budget first drops this worker's idle free-list buffers, then fails: the caller stops
//! reading that connection until memory frees. Past [`HIGH_WATER_PERCENT`] of the budget the
//! connections holding more than their share stop reading (backpressure), so the rest of the
//! budget stays for the others and for output already sealed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// Past this share of the budget, connections holding more than their share stop reading their
/// socket and their backends.
pub const HIGH_WATER_PERCENT: usize = 50;

/// The process's budget (shared counter, limit) for the metrics endpoint; set once at start.
pub static GLOBAL: OnceLock<(Arc<AtomicUsize>, usize)> = OnceLock::new();
/// The most memory ever accounted at once (for the metrics endpoint and tests).
pub static PEAK: AtomicUsize = AtomicUsize::new(0);

/// (accounted bytes now, their peak, the limit); zeros before the runtime starts.
pub fn global_usage() -> (usize, usize, usize) {
    match GLOBAL.get() {
        Some((used, limit)) => (used.load(Ordering::Relaxed), PEAK.load(Ordering::Relaxed), *limit),
        None => (0, 0, 0),
    }
}

/// Buffer sizes: the everyday read size, a middle step, and one whole maximum packet
/// (256 KiB payload + 5 header + 255 padding + 64 MAC, rounded up).
pub const CLASSES: [usize; 3] = [16 * 1024, 64 * 1024, 288 * 1024];
/// Idle buffers a worker keeps per class for reuse; beyond this they are freed.
pub const MAX_FREE_PER_CLASS: usize = 64;

/// Free room below which a read buffer is compacted or grown before the next read, so that a
/// read is never a sliver.
pub const MIN_READ_ROOM: usize = 4096;

/// What a read buffer needs before the next read (see [`Buf::room_plan`]).
#[derive(Debug, PartialEq, Eq)]
pub enum RoomPlan {
    /// Enough free room after the live bytes.
    Read,
    /// Move the live bytes to the front first.
    Compact,
    /// Move them into a buffer of this class.
    Grow(usize),
    /// One partial packet fills the largest class.
    TooLarge,
}

/// A pooled buffer: `data` is fully initialised (so `read` can fill it), `start..end` holds
/// the live bytes.
pub struct Buf {
    data: Box<[u8]>,
    pub start: usize,
    pub end: usize,
}

impl Buf {
    pub fn capacity(&self) -> usize {
        self.data.len()
    }
    pub fn len(&self) -> usize {
        self.end - self.start
    }
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
    /// The live bytes.
    pub fn filled_mut(&mut self) -> &mut [u8] {
        self.data.get_mut(self.start..self.end).unwrap_or_default()
    }
    pub fn filled(&self) -> &[u8] {
        self.data.get(self.start..self.end).unwrap_or_default()
    }
    /// Free room after the live bytes.
    pub fn spare_mut(&mut self) -> &mut [u8] {
        self.data.get_mut(self.end..).unwrap_or_default()
    }
    pub fn spare(&self) -> usize {
        self.data.len() - self.end
    }
    /// A full buffer whose live bytes (a partial packet) are more than a quarter of it grows
    /// rather than moving them to the front: bulk data comes in packets of tens of KiB, and in a
    /// buffer two packets long that move copied half of every byte read once more. In the
    /// largest class one partial packet moves per several packets read.
    pub fn room_plan(&self) -> RoomPlan {
        if self.spare() >= MIN_READ_ROOM {
            return RoomPlan::Read;
        }
        let next = CLASSES.iter().position(|&c| c > self.capacity());
        let room_after_compact = self.capacity() - self.len();
        match next {
            None if room_after_compact > 0 => RoomPlan::Compact,
            None => RoomPlan::TooLarge,
            Some(_) if self.len() <= self.capacity() / 4 && room_after_compact >= MIN_READ_ROOM => {
                RoomPlan::Compact
            }
            Some(class) => RoomPlan::Grow(class),
        }
    }
    /// Moves the live bytes to the front (once per turn at most, as they are few).
    pub fn compact(&mut self) {
        if self.start == 0 {
            return;
        }
        self.data.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
    }
    /// Marks `n` bytes at the front as consumed.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }
    /// Appends as much of `bytes` as fits; returns how many.
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.spare());
        if let (Some(dst), Some(src)) = (self.data.get_mut(self.end..self.end + n), bytes.get(..n))
        {
            dst.copy_from_slice(src);
            self.end += n;
            n
        } else {
            0
        }
    }
}

/// One worker's view of the pool.
pub struct BufferPool {
    free: [Vec<Box<[u8]>>; CLASSES.len()],
    /// Output buffers: a core encodes its messages straight into one, seals them there, and
    /// the same buffer is written and comes back here (see `checkout_vec`).
    free_vecs: [Vec<Vec<u8>>; CLASSES.len()],
    used: Arc<AtomicUsize>,
    budget: usize,
    /// Buffers handed out by `checkout_vec` so far (output batches and inbound chunks).
    vec_checkouts: u64,
}

impl BufferPool {
    /// `used` is shared by all workers' pools.
    pub fn new(used: Arc<AtomicUsize>, budget: usize) -> Self {
        BufferPool {
            free: Default::default(),
            free_vecs: Default::default(),
            used,
            budget,
            vec_checkouts: 0,
        }
    }

    /// An empty output buffer with room for at least `min` bytes (the largest class when
    /// `min` is larger: it grows as a `Vec` past that), counted against the budget. `None`
    /// when the budget is spent.
    pub fn checkout_vec(&mut self, min: usize) -> Option<Vec<u8>> {
        let class = Self::class_for(min).unwrap_or(CLASSES.len() - 1);
        let size = *CLASSES.get(class)?;
        self.vec_checkouts += 1;
        if let Some(v) = self.free_vecs.get_mut(class).and_then(Vec::pop) {
            return Some(v);
        }
        if !self.reserve(size) {
            self.trim_free();
            if !self.reserve(size) {
                self.vec_checkouts -= 1;
                return None;
            }
        }
        Some(Vec::with_capacity(size))
    }

    /// Gives an output buffer back; it is counted at its capacity (see `adopt`). Kept for
    /// reuse if it still has its class size and the list has room, freed otherwise.
    pub fn release_vec(&mut self, mut v: Vec<u8>) {
        let size = v.capacity();
        v.clear();
        match CLASSES.iter().position(|&c| c == size).and_then(|i| self.free_vecs.get_mut(i)) {
            Some(list) if list.len() < MAX_FREE_PER_CLASS => list.push(v),
            _ => {
                self.used.fetch_sub(size, Ordering::Relaxed);
            }
        }
    }

    /// Lends a core an empty output buffer of at least `min` bytes through `lend`, which gives
    /// it back when the core already holds one. True when the core took it: it is the core's to
    /// count from now on (its `held_bytes`; the caller recharges the connection).
    pub fn lend_vec(&mut self, min: usize, lend: impl FnOnce(Vec<u8>) -> Option<Vec<u8>>) -> bool {
        let Some(v) = self.checkout_vec(min) else {
            return false;
        };
        let cap = v.capacity();
        match lend(v) {
            None => {
                self.disown(cap);
                true
            }
            Some(v) => {
                self.release_vec(v);
                false
            }
        }
    }

    /// A buffer a core held (and counted) comes back: counted here, then kept or freed as
    /// `release_vec` says. The caller recharges the core first, so the peak never counts it
    /// twice.
    pub fn take_back_vec(&mut self, v: Vec<u8>) {
        self.adopt(v.capacity());
        self.release_vec(v);
    }

    /// A buffer of `bytes` capacity moves from a core (counted in its `held_bytes`) to the
    /// worker (counted here).
    pub fn adopt(&self, bytes: usize) {
        self.charge(0, bytes);
    }

    /// A buffer of `bytes` capacity moves from the worker to a core.
    pub fn disown(&self, bytes: usize) {
        self.charge(bytes, 0);
    }

    /// Output buffers handed out so far.
    pub fn vec_checkouts(&self) -> u64 {
        self.vec_checkouts
    }

    /// The smallest class holding `min` bytes, if any.
    pub fn class_for(min: usize) -> Option<usize> {
        CLASSES.iter().position(|&c| c >= min)
    }

    /// A buffer of class `class`, or `None` when the budget is spent.
    pub fn checkout(&mut self, class: usize) -> Option<Buf> {
        let size = *CLASSES.get(class)?;
        if let Some(data) = self.free.get_mut(class).and_then(Vec::pop) {
            return Some(Buf { data, start: 0, end: 0 });
        }
        if !self.reserve(size) {
            self.trim_free();
            if !self.reserve(size) {
                return None;
            }
        }
        Some(Buf { data: vec![0u8; size].into_boxed_slice(), start: 0, end: 0 })
    }

    /// A buffer holding at least `min_len` bytes (sealed output), within the budget. Beyond
    /// the largest class it is sized exactly and freed on release. `None` when the budget is
    /// spent: the caller cannot keep those bytes and closes the connection.
    pub fn checkout_at_least(&mut self, min_len: usize) -> Option<Buf> {
        if let Some(class) = Self::class_for(min_len) {
            return self.checkout(class);
        }
        if !self.reserve(min_len) {
            self.trim_free();
            if !self.reserve(min_len) {
                return None;
            }
        }
        Some(Buf { data: vec![0u8; min_len].into_boxed_slice(), start: 0, end: 0 })
    }

    /// Moves a connection's core charge from `old` to `new` bytes. The bytes are already
    /// held, so this may pass the budget; the high-water backpressure keeps that from
    /// happening in practice, and any excess makes every checkout fail until it frees.
    pub fn charge(&self, old: usize, new: usize) {
        if new > old {
            let now = self.used.fetch_add(new - old, Ordering::AcqRel) + (new - old);
            PEAK.fetch_max(now, Ordering::Relaxed);
        } else if old > new {
            self.used.fetch_sub(old - new, Ordering::AcqRel);
        }
    }

    /// True when more than the whole budget is accounted.
    pub fn over_budget(&self) -> bool {
        self.used() > self.budget
    }

    /// True past [`HIGH_WATER_PERCENT`] of the budget.
    pub fn over_high_water(&self) -> bool {
        self.used() >= self.high_water()
    }

    /// [`HIGH_WATER_PERCENT`] of the budget in bytes.
    pub fn high_water(&self) -> usize {
        self.budget / 100 * HIGH_WATER_PERCENT
    }

    /// Gives a buffer back: kept for reuse if its class list has room, otherwise freed.
    pub fn release(&mut self, buf: Buf) {
        let size = buf.data.len();
        match CLASSES.iter().position(|&c| c == size).and_then(|i| self.free.get_mut(i)) {
            Some(list) if list.len() < MAX_FREE_PER_CLASS => list.push(buf.data),
            _ => {
                self.used.fetch_sub(size, Ordering::Relaxed);
            }
        }
    }

    /// Bytes allocated through all pools sharing this budget.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Whether a checkout of `class` would succeed now (for retrying starved connections).
    pub fn has_room(&self, class: usize) -> bool {
        let size = CLASSES.get(class).copied().unwrap_or(usize::MAX);
        self.free.get(class).is_some_and(|l| !l.is_empty())
            || self.used().saturating_add(size) <= self.budget
            || self.free.iter().any(|l| !l.is_empty())
    }

    fn reserve(&self, size: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(size).filter(|&n| n <= self.budget)
            })
            .map(|u| PEAK.fetch_max(u + size, Ordering::Relaxed))
            .is_ok()
    }

    /// Frees every idle buffer of this worker (making room for a class that has none idle, or
    /// for other workers when memory is short).
    pub fn trim_free(&mut self) {
        for list in &mut self.free {
            for data in list.drain(..) {
                self.used.fetch_sub(data.len(), Ordering::Relaxed);
            }
        }
        for list in &mut self.free_vecs {
            for v in list.drain(..) {
                self.used.fetch_sub(v.capacity(), Ordering::Relaxed);
            }
        }
    }
}

impl Drop for BufferPool {
    fn drop(&mut self) {
        self.trim_free();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(budget: usize) -> BufferPool {
        BufferPool::new(Arc::new(AtomicUsize::new(0)), budget)
    }

    fn buf(capacity: usize, start: usize, end: usize) -> Buf {
        Buf { data: vec![0; capacity].into_boxed_slice(), start, end }
    }

    #[test]
    fn a_large_partial_packet_grows_the_buffer_instead_of_moving() {
        let [small, middle, largest] = CLASSES;
        assert_eq!(buf(small, 0, small - MIN_READ_ROOM).room_plan(), RoomPlan::Read);
        // A few bytes left over: moved to the front.
        assert_eq!(buf(small, small - 100, small).room_plan(), RoomPlan::Compact);
        // Half a bulk packet left over in a 64 KiB buffer: the next class.
        assert_eq!(buf(middle, middle / 2, middle).room_plan(), RoomPlan::Grow(2));
        assert_eq!(buf(small, 0, small).room_plan(), RoomPlan::Grow(1));
        // The largest class only ever compacts, and one packet filling it is refused.
        assert_eq!(buf(largest, largest / 2, largest).room_plan(), RoomPlan::Compact);
        assert_eq!(buf(largest, 0, largest).room_plan(), RoomPlan::TooLarge);
    }

    #[test]
    fn checkout_fails_at_budget_and_release_frees() {
        let mut p = pool(2 * CLASSES[0]);
        let a = p.checkout(0).unwrap();
        let b = p.checkout(0).unwrap();
        assert!(p.checkout(0).is_none(), "third buffer is over the budget");
        assert!(p.checkout(2).is_none());
        assert_eq!(p.used(), 2 * CLASSES[0]);
        p.release(a);
        // Kept idle for reuse: still counted, and handed out again.
        assert_eq!(p.used(), 2 * CLASSES[0]);
        let c = p.checkout(0).unwrap();
        assert!(p.checkout(0).is_none());
        p.release(b);
        p.release(c);
        // A bigger class than any idle one: idle buffers are dropped to make room.
        let big_budget_pool = &mut pool(CLASSES[2]);
        let s = big_budget_pool.checkout(0).unwrap();
        big_budget_pool.release(s);
        assert!(big_budget_pool.checkout(2).is_some());
    }

    #[test]
    fn budget_is_shared_between_worker_pools() {
        let used = Arc::new(AtomicUsize::new(0));
        let mut w1 = BufferPool::new(used.clone(), CLASSES[1]);
        let mut w2 = BufferPool::new(used.clone(), CLASSES[1]);
        let a = w1.checkout(1).unwrap();
        assert!(w2.checkout(0).is_none());
        assert!(!w2.has_room(0));
        w1.release(a);
        drop(w1); // its idle buffer is freed with it
        assert!(w2.has_room(0));
        assert!(w2.checkout(0).is_some());
    }

    #[test]
    fn output_checkout_stays_within_budget() {
        let mut p = pool(CLASSES[0] + (1 << 20));
        let a = p.checkout(0).unwrap();
        let huge = p.checkout_at_least(1 << 20).unwrap();
        assert_eq!(huge.capacity(), 1 << 20);
        assert!(p.checkout_at_least(1).is_none(), "the budget is spent");
        assert!(p.used() <= CLASSES[0] + (1 << 20));
        let before = p.used();
        p.release(huge);
        assert_eq!(p.used(), before - (1 << 20), "oversize buffers are freed, not kept");
        p.release(a);
    }

    #[test]
    fn core_charges_count_against_the_budget() {
        let mut p = pool(4 * CLASSES[0]);
        assert!(!p.over_high_water());
        p.charge(0, 3 * CLASSES[0]);
        assert!(p.over_high_water());
        let a = p.checkout(0).unwrap();
        assert!(p.checkout(0).is_none(), "core bytes and buffers share the budget");
        p.charge(3 * CLASSES[0], 0);
        assert!(!p.over_high_water());
        assert!(p.checkout(0).is_some());
        p.release(a);
    }

    #[test]
    fn output_buffers_are_pooled_and_counted() {
        let mut p = pool(CLASSES[0] + CLASSES[2]);
        let a = p.checkout_vec(100).unwrap();
        assert_eq!(a.capacity(), CLASSES[0]);
        let b = p.checkout_vec(200_000).unwrap();
        assert_eq!(b.capacity(), CLASSES[2]);
        assert!(p.checkout_vec(1).is_none(), "the budget is spent");
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        p.release_vec(a);
        p.release_vec(b);
        assert_eq!(p.used(), CLASSES[0] + CLASSES[2], "kept for reuse, still counted");
        let again = p.checkout_vec(10).unwrap();
        assert_eq!(again.as_ptr(), pa, "the same buffer again");
        let mut grown = p.checkout_vec(CLASSES[2]).unwrap();
        assert_eq!(grown.as_ptr(), pb);
        // A buffer that grew past its class is counted at its new size and freed on release.
        p.disown(grown.capacity());
        grown.resize(CLASSES[2] + 1, 0);
        p.adopt(grown.capacity());
        let before = p.used();
        let cap = grown.capacity();
        p.release_vec(grown);
        assert_eq!(p.used(), before - cap);
        assert_eq!(p.vec_checkouts(), 4);
    }

    #[test]
    fn buf_operations() {
        let mut p = pool(CLASSES[0]);
        let mut b = p.checkout(0).unwrap();
        assert_eq!(b.push(b"hello world"), 11);
        b.consume(6);
        assert_eq!(b.filled(), b"world");
        b.compact();
        assert_eq!((b.start, b.end), (0, 5));
        b.consume(5);
        assert!(b.is_empty());
        assert_eq!(b.spare(), CLASSES[0]);
        assert_eq!(BufferPool::class_for(20_000), Some(1));
        assert_eq!(BufferPool::class_for(300_000), None);
    }
}
