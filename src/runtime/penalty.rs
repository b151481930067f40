//! Per-source penalties (OpenSSH's PerSourcePenalties): sources that misbehave are refused at
//! accept, before any SSH byte, for a while.
//!
//! Workers report each connection's end that deserves a penalty (failed authentication,
//! disconnect without authenticating, login grace exceeded, …); the acceptor adds the penalty's
//! duration to the source's entry, capped at `max`. An entry whose outstanding penalty exceeds
//! `min` is *active*: connections from its block are closed at accept until it expires. Sources
//! are grouped by prefix (default /32 and /64), always the real client address (after PROXY).
//!
//! Bounded: at most `max-sources4` / `max-sources6` entries per family; past that the entries
//! nearest to expiry are forgotten (`overflow:permissive`) or every new connection of that
//! family is refused until entries expire (`overflow:deny-all`). Owned by the acceptor thread
//! alone; time comes in as `now`, so it is tested with a fake clock.

use crate::config::penalties::{Overflow, PenaltySettings};
use crate::server::PenaltyKind;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Sources with an active penalty, for `/metrics` (a count, never per-address labels).
pub static PENALISED_SOURCES: AtomicUsize = AtomicUsize::new(0);
/// Connections refused at accept because of a penalty.
pub static PENALTY_REFUSED: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Clone, Copy)]
struct Entry {
    expiry: Instant,
    active: bool,
    reason: PenaltyKind,
}

#[derive(Debug, Default)]
struct Family {
    by_block: HashMap<IpAddr, Entry>,
    by_expiry: BTreeSet<(Instant, IpAddr)>,
    active: usize,
}

impl Family {
    fn expire(&mut self, now: Instant) {
        while let Some(&(t, block)) = self.by_expiry.first() {
            if t >= now {
                break;
            }
            self.by_expiry.pop_first();
            self.remove_block(block);
        }
    }

    fn remove_block(&mut self, block: IpAddr) {
        if let Some(e) = self.by_block.remove(&block) {
            self.by_expiry.remove(&(e.expiry, block));
            if e.active {
                self.active -= 1;
            }
        }
    }
}

/// What [`PenaltyTable::penalise`] did, for the (rate-limited) log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Penalised {
    /// The block's penalty became active now: refused from here on.
    Activated { block: IpAddr, remaining: Duration },
    /// Recorded, not (newly) active.
    Recorded,
    /// Not recorded: exempt, zero duration, or table full with `overflow:deny-all`.
    Ignored,
}

/// The table the acceptor consults at accept and updates from worker reports.
#[derive(Debug)]
pub struct PenaltyTable {
    cfg: PenaltySettings,
    v4: Family,
    v6: Family,
}

impl PenaltyTable {
    pub fn new(cfg: PenaltySettings) -> Self {
        PenaltyTable { cfg, v4: Family::default(), v6: Family::default() }
    }

    /// `Err(reason)` if a connection from `ip` must be refused now.
    pub fn check(&mut self, ip: IpAddr, now: Instant) -> Result<(), &'static str> {
        let ip = ip.to_canonical();
        if self.exempt(ip) {
            return Ok(());
        }
        let (block, max, overflow) = self.block_of(ip);
        let fam = self.family(ip);
        fam.expire(now);
        let result = if fam.by_block.len() >= max && overflow == Overflow::DenyAll {
            Err("too many penalised addresses")
        } else {
            match fam.by_block.get(&block) {
                Some(e) if e.active && e.expiry >= now => Err(e.reason.reason()),
                _ => Ok(()),
            }
        };
        self.publish();
        if result.is_err() {
            PENALTY_REFUSED.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Adds the penalty for `kind` to `ip`'s block.
    pub fn penalise(&mut self, ip: IpAddr, kind: PenaltyKind, now: Instant) -> Penalised {
        let ip = ip.to_canonical();
        let secs = self.duration(kind);
        if self.exempt(ip) || secs.is_zero() {
            return Penalised::Ignored;
        }
        let (min, cap) = (self.cfg.min, self.cfg.max);
        let (block, max_sources, overflow) = self.block_of(ip);
        let fam = self.family(ip);
        fam.expire(now);
        let outcome = match fam.by_block.get(&block).copied() {
            Some(mut e) => {
                fam.by_expiry.remove(&(e.expiry, block));
                e.expiry = (e.expiry + secs).min(now + cap);
                let remaining = e.expiry.saturating_duration_since(now);
                let activated = !e.active && remaining > min;
                if activated {
                    e.active = true;
                    fam.active += 1;
                }
                e.reason = kind;
                fam.by_block.insert(block, e);
                fam.by_expiry.insert((e.expiry, block));
                if activated {
                    Penalised::Activated { block, remaining }
                } else {
                    Penalised::Recorded
                }
            }
            None => {
                if fam.by_block.len() >= max_sources {
                    if overflow == Overflow::DenyAll {
                        return Penalised::Ignored;
                    }
                    // Permissive: forget the entries nearest to expiry to make room.
                    while fam.by_block.len() >= max_sources {
                        let Some((_, oldest)) = fam.by_expiry.pop_first() else { break };
                        fam.remove_block(oldest);
                    }
                }
                let secs = secs.min(cap);
                let e = Entry { expiry: now + secs, active: secs > min, reason: kind };
                if e.active {
                    fam.active += 1;
                }
                fam.by_block.insert(block, e);
                fam.by_expiry.insert((e.expiry, block));
                if e.active {
                    Penalised::Activated { block, remaining: secs }
                } else {
                    Penalised::Recorded
                }
            }
        };
        self.publish();
        outcome
    }

    /// Blocks with an active penalty.
    pub fn active(&self) -> usize {
        self.v4.active + self.v6.active
    }

    /// Entries, active or not.
    pub fn len(&self) -> usize {
        self.v4.by_block.len() + self.v6.by_block.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn publish(&self) {
        PENALISED_SOURCES.store(self.active(), Ordering::Relaxed);
    }

    fn duration(&self, kind: PenaltyKind) -> Duration {
        match kind {
            PenaltyKind::AuthFail => self.cfg.authfail,
            PenaltyKind::NoAuth => self.cfg.noauth,
            PenaltyKind::GraceExceeded => self.cfg.grace_exceeded,
            PenaltyKind::InvalidUser => self.cfg.invalid_user,
            PenaltyKind::RefuseConnection => self.cfg.refuse_connection,
        }
    }

    fn exempt(&self, ip: IpAddr) -> bool {
        self.cfg.exempt.iter().any(|c| c.contains(ip))
    }

    fn family(&mut self, ip: IpAddr) -> &mut Family {
        if ip.is_ipv4() {
            &mut self.v4
        } else {
            &mut self.v6
        }
    }

    /// The block `ip` is counted in, and its family's bound and overflow policy.
    fn block_of(&self, ip: IpAddr) -> (IpAddr, usize, Overflow) {
        match ip {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.cfg.v4_bits)).unwrap_or(0);
                let block = IpAddr::V4((u32::from(a) & mask).into());
                (block, self.cfg.max_sources4, self.cfg.overflow4)
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.cfg.v6_bits)).unwrap_or(0);
                let block = IpAddr::V6((u128::from(a) & mask).into());
                (block, self.cfg.max_sources6, self.cfg.overflow6)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy_protocol::Cidr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn table(f: impl FnOnce(&mut PenaltySettings)) -> PenaltyTable {
        let mut s = PenaltySettings::default();
        f(&mut s);
        PenaltyTable::new(s)
    }

    #[test]
    fn penalties_accumulate_activate_past_min_and_expire() {
        let t0 = Instant::now();
        let mut t = table(|_| {});
        let a = ip("192.0.2.7");
        // authfail 5 s each; min 15 s: the fourth failure (20 s outstanding) activates.
        for i in 0..3 {
            assert_eq!(t.penalise(a, PenaltyKind::AuthFail, t0), Penalised::Recorded, "{i}");
            assert_eq!(t.check(a, t0), Ok(()));
        }
        assert!(matches!(
            t.penalise(a, PenaltyKind::AuthFail, t0),
            Penalised::Activated { remaining, .. } if remaining == Duration::from_secs(20)
        ));
        assert_eq!(t.check(a, t0), Err("penalty: failed authentication"));
        assert_eq!(t.check(ip("192.0.2.8"), t0), Ok(()), "another /32 is not affected");
        assert_eq!(t.active(), 1);
        // Expired after its time.
        assert_eq!(t.check(a, t0 + Duration::from_secs(21)), Ok(()));
        assert!(t.is_empty());
    }

    #[test]
    fn penalty_is_capped_at_max_and_a_long_one_activates_at_once() {
        let t0 = Instant::now();
        let mut t = table(|s| s.grace_exceeded = Duration::from_secs(20));
        let a = ip("198.51.100.1");
        assert!(matches!(
            t.penalise(a, PenaltyKind::GraceExceeded, t0),
            Penalised::Activated { .. }
        ));
        for _ in 0..1000 {
            t.penalise(a, PenaltyKind::GraceExceeded, t0);
        }
        assert!(t.check(a, t0 + Duration::from_secs(599)).is_err());
        assert_eq!(t.check(a, t0 + Duration::from_secs(601)), Ok(()), "capped at max: 10 min");
    }

    #[test]
    fn ipv6_sources_are_grouped_by_64() {
        let t0 = Instant::now();
        let mut t = table(|s| s.noauth = Duration::from_secs(30));
        t.penalise(ip("2001:db8:1:2::1"), PenaltyKind::NoAuth, t0);
        assert!(t.check(ip("2001:db8:1:2:ffff::9"), t0).is_err());
        assert!(t.check(ip("2001:db8:1:3::1"), t0).is_ok());
        // IPv4-mapped IPv6 is the IPv4 source.
        t.penalise(ip("203.0.113.5"), PenaltyKind::NoAuth, t0);
        assert!(t.check(ip("::ffff:203.0.113.5"), t0).is_err());
    }

    #[test]
    fn exempt_sources_are_never_penalised() {
        let t0 = Instant::now();
        let mut t = table(|s| {
            s.authfail = Duration::from_secs(60);
            s.exempt = vec![Cidr::parse("10.0.0.0/8").unwrap()];
        });
        assert_eq!(t.penalise(ip("10.1.2.3"), PenaltyKind::AuthFail, t0), Penalised::Ignored);
        assert!(t.check(ip("10.1.2.3"), t0).is_ok());
        assert!(t.is_empty());
    }

    #[test]
    fn table_is_bounded_permissive_forgets_the_nearest_expiry() {
        let t0 = Instant::now();
        let mut t = table(|s| {
            s.max_sources4 = 3;
            s.authfail = Duration::from_secs(60);
        });
        for i in 0..100u32 {
            let a = IpAddr::V4((0x0a00_0000 + i).into());
            t.penalise(a, PenaltyKind::AuthFail, t0 + Duration::from_millis(u64::from(i)));
        }
        assert_eq!(t.len(), 3);
        // The three most recent survive.
        assert!(t.check(ip("10.0.0.99"), t0).is_err());
        assert!(t.check(ip("10.0.0.0"), t0).is_ok());
    }

    #[test]
    fn table_is_bounded_deny_all_refuses_everyone_of_that_family_when_full() {
        let t0 = Instant::now();
        let mut t = table(|s| {
            s.max_sources4 = 2;
            s.overflow4 = Overflow::DenyAll;
            s.overflow6 = Overflow::Permissive;
        });
        t.penalise(ip("192.0.2.1"), PenaltyKind::NoAuth, t0);
        t.penalise(ip("192.0.2.2"), PenaltyKind::NoAuth, t0);
        assert_eq!(t.penalise(ip("192.0.2.3"), PenaltyKind::NoAuth, t0), Penalised::Ignored);
        assert_eq!(t.check(ip("198.51.100.1"), t0), Err("too many penalised addresses"));
        assert!(t.check(ip("2001:db8::1"), t0).is_ok(), "IPv6 has its own table");
        // Once the entries expire, everyone is welcome again.
        assert!(t.check(ip("198.51.100.1"), t0 + Duration::from_secs(2)).is_ok());
    }
}
