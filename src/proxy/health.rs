//! Upstream health as a sans-IO state: the runtime asks which upstreams are due a check
//! (TCP connect plus the SSH version line), runs them, and reports each result with the time.
//! An upstream goes down after `fall` consecutive failures and up again after `rise`
//! consecutive successes; down upstreams are skipped by the balancer.

use std::time::{Duration, Instant};

/// When and how strictly to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthConfig {
    pub interval: Duration,
    /// Consecutive failures that mark an upstream down.
    pub fall: u32,
    /// Consecutive successes that bring it back.
    pub rise: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig { interval: Duration::from_secs(10), fall: 3, rise: 2 }
    }
}

#[derive(Debug, Clone)]
struct One {
    healthy: bool,
    fails: u32,
    oks: u32,
    next: Instant,
    in_flight: bool,
}

/// The health of one route's upstreams.
#[derive(Debug, Clone)]
pub struct Health {
    cfg: HealthConfig,
    ups: Vec<One>,
}

impl Health {
    /// All upstreams start healthy, first check due at `now`.
    pub fn new(cfg: HealthConfig, upstreams: usize, now: Instant) -> Self {
        let one = One { healthy: true, fails: 0, oks: 0, next: now, in_flight: false };
        Health { cfg, ups: vec![one; upstreams] }
    }

    /// Carries a verdict over from an earlier instance (a reload keeps what is known about an
    /// upstream that is still listed): a down upstream stays down until `rise` successes.
    pub fn seed(&mut self, i: usize, healthy: bool) {
        if let Some(u) = self.ups.get_mut(i) {
            u.healthy = healthy;
        }
    }

    pub fn is_healthy(&self, i: usize) -> bool {
        self.ups.get(i).is_some_and(|u| u.healthy)
    }

    /// Upstreams whose check is due; each is marked in flight until `report`.
    pub fn due(&mut self, now: Instant) -> Vec<usize> {
        let mut v = Vec::new();
        for (i, u) in self.ups.iter_mut().enumerate() {
            if !u.in_flight && u.next <= now {
                u.in_flight = true;
                v.push(i);
            }
        }
        v
    }

    /// The next time a check falls due (None while every check is in flight).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.ups.iter().filter(|u| !u.in_flight).map(|u| u.next).min()
    }

    /// A check's result. Returns `Some(new state)` when the upstream changed state.
    pub fn report(&mut self, i: usize, ok: bool, now: Instant) -> Option<bool> {
        let cfg = self.cfg;
        let u = self.ups.get_mut(i)?;
        u.in_flight = false;
        u.next = now + cfg.interval;
        let was = u.healthy;
        if ok {
            u.fails = 0;
            u.oks = u.oks.saturating_add(1);
            if !u.healthy && u.oks >= cfg.rise.max(1) {
                u.healthy = true;
            }
        } else {
            u.oks = 0;
            u.fails = u.fails.saturating_add(1);
            if u.healthy && u.fails >= cfg.fall.max(1) {
                u.healthy = false;
            }
        }
        (u.healthy != was).then_some(u.healthy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn falls_after_consecutive_failures_and_rises_again() {
        #[allow(clippy::disallowed_methods)]
        let t = Instant::now();
        let cfg = HealthConfig { interval: Duration::from_secs(5), fall: 2, rise: 2 };
        let mut h = Health::new(cfg, 2, t);
        assert_eq!(h.due(t), vec![0, 1]);
        assert!(h.due(t).is_empty(), "in flight");
        assert_eq!(h.next_deadline(), None);
        assert_eq!(h.report(0, false, t), None, "one failure is not enough");
        assert_eq!(h.report(1, true, t), None);
        assert_eq!(h.next_deadline(), Some(t + Duration::from_secs(5)));
        let t1 = t + Duration::from_secs(5);
        assert_eq!(h.due(t1), vec![0, 1]);
        h.report(1, true, t1);
        // A success between failures resets the count.
        assert_eq!(h.report(0, true, t1), None);
        let t2 = t1 + Duration::from_secs(5);
        h.due(t2);
        assert_eq!(h.report(0, false, t2), None);
        let t3 = t2 + Duration::from_secs(5);
        h.due(t3);
        assert_eq!(h.report(0, false, t3), Some(false));
        assert!(!h.is_healthy(0) && h.is_healthy(1));
        let t4 = t3 + Duration::from_secs(5);
        h.due(t4);
        assert_eq!(h.report(0, true, t4), None);
        let t5 = t4 + Duration::from_secs(5);
        h.due(t5);
        assert_eq!(h.report(0, true, t5), Some(true));
        assert!(h.is_healthy(0));
    }
}
