//! Per-route metrics of the session proxy: sessions started, failures by kind and the
//! upstream setup time (TCP connect + key exchange + login). Route names come from the
//! operator's routes file, never from a peer, and only the first [`MAX_ROUTE_LABELS`] routes of
//! the file get their own label (the rest share `other`), so the label set stays small.

use super::{new_histogram, record};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::time::Duration;

/// Routes with a label of their own; later ones are counted under [`OTHER_ROUTE`].
pub const MAX_ROUTE_LABELS: usize = 32;
pub const OTHER_ROUTE: &str = "other";

/// Why an upstream session failed (a fixed label set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Every upstream of the route is marked down.
    NoUpstream,
    /// The TCP connection failed (refused, unreachable, name not usable).
    Unreachable,
    /// Connect or login took longer than the route allows.
    Timeout,
    /// The upstream's host key is not the pinned one.
    HostKey,
    /// The upstream refused our login.
    Auth,
    /// The upstream ended the connection (or it broke) after setup.
    Closed,
    /// Anything else: key exchange failed, internal limits.
    Protocol,
}

impl Failure {
    pub const ALL: [Failure; 7] = [
        Failure::NoUpstream,
        Failure::Unreachable,
        Failure::Timeout,
        Failure::HostKey,
        Failure::Auth,
        Failure::Closed,
        Failure::Protocol,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Failure::NoUpstream => "no_upstream",
            Failure::Unreachable => "unreachable",
            Failure::Timeout => "timeout",
            Failure::HostKey => "host_key",
            Failure::Auth => "auth",
            Failure::Closed => "closed",
            Failure::Protocol => "protocol",
        }
    }
}

#[derive(Clone)]
pub struct RouteStats {
    pub sessions: u64,
    pub failures: [u64; Failure::ALL.len()],
    /// Upstream TCP connect + KEX + login, for sessions that got there.
    pub setup: Histogram<u64>,
}

impl Default for RouteStats {
    fn default() -> Self {
        RouteStats { sessions: 0, failures: [0; Failure::ALL.len()], setup: new_histogram() }
    }
}

/// One worker's (or, merged, the server's) per-route counters, keyed by route label.
#[derive(Clone, Default)]
pub struct RouteMetrics {
    pub by_route: BTreeMap<String, RouteStats>,
}

/// The label of the route at `index` in its file named `name`.
pub fn route_label(index: usize, name: &str) -> String {
    if index < MAX_ROUTE_LABELS {
        name.to_string()
    } else {
        OTHER_ROUTE.to_string()
    }
}

impl RouteMetrics {
    fn entry(&mut self, label: &str) -> &mut RouteStats {
        if !self.by_route.contains_key(label) {
            self.by_route.insert(label.to_string(), RouteStats::default());
        }
        // Inserted just above.
        #[allow(clippy::expect_used)]
        self.by_route.get_mut(label).expect("entry present")
    }

    pub fn session(&mut self, label: &str) {
        self.entry(label).sessions += 1;
    }

    pub fn failure(&mut self, label: &str, kind: Failure) {
        let i = Failure::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        if let Some(n) = self.entry(label).failures.get_mut(i) {
            *n += 1;
        }
    }

    pub fn setup(&mut self, label: &str, d: Duration) {
        record(&mut self.entry(label).setup, d);
    }

    pub fn merge(&mut self, other: &RouteMetrics) {
        for (label, s) in &other.by_route {
            let mine = self.entry(label);
            mine.sessions += s.sessions;
            for (a, b) in mine.failures.iter_mut().zip(s.failures.iter()) {
                *a += b;
            }
            let _ = mine.setup.add(&s.setup);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded_and_merge_adds() {
        assert_eq!(route_label(0, "db"), "db");
        assert_eq!(route_label(MAX_ROUTE_LABELS, "late"), OTHER_ROUTE);
        let mut a = RouteMetrics::default();
        a.session("db");
        a.failure("db", Failure::HostKey);
        a.setup("db", Duration::from_millis(5));
        let mut b = RouteMetrics::default();
        b.session("db");
        b.merge(&a);
        let s = &b.by_route["db"];
        assert_eq!(s.sessions, 2);
        assert_eq!(s.failures[3], 1);
        assert_eq!(s.setup.len(), 1);
    }
}
