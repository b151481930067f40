//! `--max-startups start:rate:full` and `--per-source-max-startups N`: early drop of
//! unauthenticated connections at accept, as OpenSSH's MaxStartups and PerSourceMaxStartups.
//!
//! A *startup* is a connection that has not authenticated yet. Below `start` every connection
//! is admitted; from `start` on a new one is dropped with probability `rate`% rising linearly
//! to 100% at `full` (random early drop, so a flood cannot fill the server while legitimate
//! clients still get a fair chance). Shedding also watches the key-exchange queue: past its
//! high-water mark (three quarters of `--crypto-queue`) new connections are dropped at accept,
//! before they cost a key exchange, instead of being refused with DISCONNECT 12 after.
//!
//! The acceptor takes a [`StartupGuard`] per admitted connection; the worker drops it when the
//! connection authenticates or ends, whichever comes first.

use super::crypto_pool::JobBudget;
use super::source_limit::{SourceGuard, SourceLimits};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub use crate::config::startups::MaxStartups;

/// The acceptor's admission state for unauthenticated connections.
pub struct Startups {
    max: MaxStartups,
    count: Arc<AtomicUsize>,
    per_source: Option<Arc<SourceLimits>>,
    kex: JobBudget,
    high_water: usize,
}

/// One admitted connection's startup slot (global and per source); released on drop.
#[derive(Debug)]
pub struct StartupGuard {
    count: Arc<AtomicUsize>,
    _source: Option<SourceGuard>,
}

impl Drop for StartupGuard {
    fn drop(&mut self) {
        let _ = self.count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}

impl Startups {
    pub fn new(max: MaxStartups, per_source: usize, kex: JobBudget) -> Self {
        let high_water = (kex.bound() * 3 / 4).max(1);
        Startups {
            max,
            count: Arc::new(AtomicUsize::new(0)),
            per_source: (per_source > 0).then(|| SourceLimits::new(per_source)),
            kex,
            high_water,
        }
    }

    /// Unauthenticated connections now.
    pub fn current(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// A slot for a new connection from `ip`, or why it is dropped; `r` uniform in 0..100.
    pub fn admit(&self, ip: IpAddr, r: u32) -> Result<StartupGuard, &'static str> {
        if self.kex.in_flight() >= self.high_water {
            return Err("key exchange queue past its high-water mark");
        }
        if self.max.should_drop(self.current(), r) {
            return Err("--max-startups");
        }
        let source = match &self.per_source {
            None => None,
            Some(l) => Some(l.acquire(ip).ok_or("--per-source-max-startups")?),
        };
        self.count.fetch_add(1, Ordering::AcqRel);
        Ok(StartupGuard { count: self.count.clone(), _source: source })
    }
}

/// A small xorshift generator for the drop decision (not security relevant: it only spreads
/// drops), seeded from the OS.
pub struct DropRng(u64);

impl DropRng {
    pub fn new() -> Self {
        use rand_core::RngCore;
        DropRng(rand_core::OsRng.next_u64() | 1)
    }

    /// Uniform enough in 0..100.
    pub fn percent(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x % 100) as u32
    }
}

impl Default for DropRng {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_random_early_drop() {
        let m = MaxStartups::parse("10:30:100").unwrap();
        assert_eq!(m, MaxStartups { start: 10, rate: 30, full: 100 });
        assert_eq!(
            MaxStartups::parse("50").unwrap(),
            MaxStartups { start: 50, rate: 100, full: 50 }
        );
        for bad in ["", "10:30", "a:b:c", "10:30:5", "10:101:100", "0"] {
            assert!(MaxStartups::parse(bad).is_err(), "{bad}");
        }
        // Below start: never; at full: always.
        assert!((0..100).all(|r| !m.should_drop(9, r)));
        assert!((0..100).all(|r| m.should_drop(100, r)));
        // At start: rate% of r values drop; halfway: 30 + 70/2 = 65%.
        assert_eq!((0..100).filter(|&r| m.should_drop(10, r)).count(), 30);
        assert_eq!((0..100).filter(|&r| m.should_drop(55, r)).count(), 65);
    }

    #[test]
    fn slots_are_counted_until_dropped_and_per_source_is_bounded() {
        let kex = JobBudget::new(8);
        let s = Startups::new(MaxStartups { start: 3, rate: 100, full: 3 }, 2, kex.clone());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let g1 = s.admit(a, 0).unwrap();
        let _g2 = s.admit(a, 0).unwrap();
        assert_eq!(s.admit(a, 99).unwrap_err(), "--per-source-max-startups");
        let _g3 = s.admit(b, 0).unwrap();
        assert_eq!(s.current(), 3);
        assert_eq!(s.admit(b, 99).unwrap_err(), "--max-startups");
        drop(g1); // authenticated or closed
        assert_eq!(s.current(), 2);
        let _g4 = s.admit(a, 0).unwrap();
        // A deep key-exchange queue sheds new connections before they cost one.
        drop(_g4);
        for _ in 0..6 {
            assert!(kex.try_acquire());
        }
        assert_eq!(s.admit(b, 0).unwrap_err(), "key exchange queue past its high-water mark");
    }
}
