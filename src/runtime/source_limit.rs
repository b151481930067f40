//! `--max-per-source`: a cap on open connections per client address (IPv4 /32, IPv6 /64, as an
//! IPv6 client usually holds a whole /64). The address is the real client's: with
//! `--proxy-protocol` the one from the PROXY header.
//!
//! The acceptor takes a [`SourceGuard`] before handing a connection to a worker; the guard
//! travels with the connection and gives its slot back when dropped, on every path that ends a
//! connection (closed, refused by a draining worker, never added). The map holds one entry per
//! source with an open connection, so it is bounded by `--max-connections`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// Counts of open connections per source block.
#[derive(Debug)]
pub struct SourceLimits {
    max: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection's slot; released on drop.
#[derive(Debug)]
pub struct SourceGuard {
    limits: Arc<SourceLimits>,
    block: IpAddr,
}

impl SourceLimits {
    /// `max` connections per source block (at least 1).
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(SourceLimits { max: max.max(1), counts: Mutex::new(HashMap::new()) })
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// A slot for a connection from `ip`, or `None` when its block is at the limit.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<SourceGuard> {
        let block = block_of(ip);
        let mut counts = self.lock();
        let n = counts.entry(block).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(SourceGuard { limits: self.clone(), block })
    }

    /// Open connections from `ip`'s block.
    pub fn count(&self, ip: IpAddr) -> usize {
        self.lock().get(&block_of(ip)).copied().unwrap_or(0)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        // A panic while holding this lock cannot leave the map inconsistent (single updates).
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for SourceGuard {
    fn drop(&mut self) {
        let mut counts = self.limits.lock();
        if let Some(n) = counts.get_mut(&self.block) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.block);
            }
        }
    }
}

/// The block a source address is counted in: the address itself for IPv4 (and IPv4-mapped
/// IPv6), its /64 for IPv6.
fn block_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_per_source_and_release_on_drop() {
        let l = SourceLimits::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let g1 = l.acquire(a).unwrap();
        let g2 = l.acquire(a).unwrap();
        assert!(l.acquire(a).is_none(), "third from the same source refused");
        let gb = l.acquire(b).unwrap();
        drop(g1);
        let g3 = l.acquire(a).expect("a slot came back");
        assert_eq!(l.count(a), 2);
        drop((g2, g3, gb));
        assert_eq!(l.count(a), 0);
        assert!(l.lock().is_empty(), "no entries left behind");
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let l = SourceLimits::new(1);
        let _g = l.acquire("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(l.acquire("2001:db8:1:2:ffff::9".parse().unwrap()).is_none(), "same /64");
        assert!(l.acquire("2001:db8:1:3::1".parse().unwrap()).is_some(), "other /64");
        let _v4 = l.acquire("192.0.2.7".parse().unwrap()).unwrap();
        assert!(l.acquire("::ffff:192.0.2.7".parse().unwrap()).is_none(), "mapped = same v4");
    }
}
