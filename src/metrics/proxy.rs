//! Session proxy and recording metrics kept across workers: per-route active sessions (a guard
//! the upstream link holds), the health checker's gauges, and the recorder's counts. Sessions
//! started, failures by kind and the upstream setup time are per-worker counters
//! (`metrics::routes`), merged like every other worker metric.
//!
//! Route names come from the operator's routes file, so they may be labels, but the set is
//! bounded: the first [`MAX_ROUTE_LABELS`] names seen get their own series, later ones share
//! `route="other"`. Failure kinds are a fixed set ([`Failure`]). Counters are kept by name
//! across SIGHUP, so a reload never resets them.
//!
//! For the upstream link: `let active = metrics::proxy::route(&label).session_started();`
//! once per session (a short lock); the gauge counts it until `active` drops.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Routes with a series of their own; the rest are counted under `other` (the same bound as
/// the per-worker route metrics).
pub const MAX_ROUTE_LABELS: usize = super::routes::MAX_ROUTE_LABELS;
/// The label of routes past [`MAX_ROUTE_LABELS`].
pub const OTHER_ROUTE: &str = "other";

/// One route's series (or the shared `other` series).
#[derive(Debug, Default)]
pub struct RouteStats {
    label: String,
    started: AtomicU64,
    ended: AtomicU64,
    /// Set by the health checker: upstreams up, and all upstreams, of the routes in use.
    healthy: AtomicU64,
    upstreams: AtomicU64,
}

/// Keeps a session counted as active until dropped.
#[derive(Debug)]
pub struct ActiveSession(Arc<RouteStats>);

impl Drop for ActiveSession {
    fn drop(&mut self) {
        self.0.ended.fetch_add(1, Ordering::Relaxed);
    }
}

impl RouteStats {
    /// The `route` label value.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// A proxied session started (the route matched, an upstream was picked); it is active
    /// until the returned guard drops.
    pub fn session_started(self: &Arc<Self>) -> ActiveSession {
        self.started.fetch_add(1, Ordering::Relaxed);
        ActiveSession(self.clone())
    }

    pub fn sessions_started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    pub fn sessions_active(&self) -> u64 {
        self.started.load(Ordering::Relaxed).saturating_sub(self.ended.load(Ordering::Relaxed))
    }
}

/// Route series by name, bounded. One per process ([`route`] and friends use it); tests make
/// their own.
#[derive(Default)]
pub struct Registry {
    routes: Mutex<Vec<(String, Arc<RouteStats>)>>,
    other: OnceLock<Arc<RouteStats>>,
}

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(Registry::default)
}

/// The series of route `name` (created on first use; past the bound, the shared `other`).
/// Takes a short lock: call it once per session, not per packet.
pub fn route(name: &str) -> Arc<RouteStats> {
    registry().route(name)
}

/// The health checker's view after a round: (route name, healthy upstreams, upstreams) for
/// every route in use. Routes no longer in use drop to 0.
pub fn publish_health(routes: &[(&str, u64, u64)]) {
    registry().publish_health(routes)
}

impl Registry {
    fn other(&self) -> Arc<RouteStats> {
        self.other
            .get_or_init(|| {
                Arc::new(RouteStats { label: OTHER_ROUTE.into(), ..Default::default() })
            })
            .clone()
    }

    pub fn route(&self, name: &str) -> Arc<RouteStats> {
        let Ok(mut v) = self.routes.lock() else {
            return self.other();
        };
        if let Some((_, s)) = v.iter().find(|(n, _)| n == name) {
            return s.clone();
        }
        if v.len() >= MAX_ROUTE_LABELS || name == OTHER_ROUTE {
            return self.other();
        }
        // Route names are checked at load (64 of [A-Za-z0-9-_.]); escape anyway.
        let label: String = name
            .chars()
            .take(64)
            .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' })
            .collect();
        let s = Arc::new(RouteStats { label, ..Default::default() });
        v.push((name.to_string(), s.clone()));
        s
    }

    pub fn publish_health(&self, routes: &[(&str, u64, u64)]) {
        let mut sums: Vec<(Arc<RouteStats>, u64, u64)> = Vec::new();
        for &(name, healthy, total) in routes {
            let s = self.route(name);
            match sums.iter_mut().find(|(t, _, _)| Arc::ptr_eq(t, &s)) {
                Some(e) => {
                    e.1 += healthy;
                    e.2 += total;
                }
                None => sums.push((s, healthy, total)),
            }
        }
        for s in self.all() {
            let (h, t) =
                sums.iter().find(|(t, _, _)| Arc::ptr_eq(t, &s)).map_or((0, 0), |e| (e.1, e.2));
            s.healthy.store(h, Ordering::Relaxed);
            s.upstreams.store(t, Ordering::Relaxed);
        }
    }

    /// Every series, `other` last (once it exists).
    fn all(&self) -> Vec<Arc<RouteStats>> {
        let mut v: Vec<Arc<RouteStats>> = match self.routes.lock() {
            Ok(v) => v.iter().map(|(_, s)| s.clone()).collect(),
            Err(_) => Vec::new(),
        };
        v.extend(self.other.get().cloned());
        v
    }
}

static ROUTES_RELOAD_FAILURES: AtomicU64 = AtomicU64::new(0);
static HEALTH_CHECKS: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

/// SIGHUP found a routes file (or `[routes]` table) that does not load; the old routes stayed.
pub fn count_routes_reload_failure() {
    ROUTES_RELOAD_FAILURES.fetch_add(1, Ordering::Relaxed);
}

pub fn routes_reload_failures() -> u64 {
    ROUTES_RELOAD_FAILURES.load(Ordering::Relaxed)
}

/// One health check finished (TCP connect + SSH version line), `ok` or not.
pub fn count_health_check(ok: bool) {
    HEALTH_CHECKS[usize::from(ok)].fetch_add(1, Ordering::Relaxed);
}

/// Session recording counters (`runtime::recording`).
pub mod recording {
    use std::sync::atomic::{AtomicU64, Ordering};

    pub static STARTED: AtomicU64 = AtomicU64::new(0);
    /// Events (output, resize, starts) dropped because the recorder's queue was full.
    pub static DROPPED: AtomicU64 = AtomicU64::new(0);
    /// Recordings stopped at `--record-max-size`.
    pub static TRUNCATED: AtomicU64 = AtomicU64::new(0);
    /// Files that could not be created or written.
    pub static ERRORS: AtomicU64 = AtomicU64::new(0);

    pub fn count(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Appends the proxy and recording families to a Prometheus exposition.
pub fn render(o: &mut String) {
    render_with(registry(), o)
}

fn render_with(reg: &Registry, o: &mut String) {
    let routes = reg.all();
    let head = |o: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    head(
        o,
        "sshfront_routes_reload_failures_total",
        "counter",
        "SIGHUP reloads whose routes did not load; the routes in use stayed.",
    );
    let _ = writeln!(o, "sshfront_routes_reload_failures_total {}", routes_reload_failures());
    head(
        o,
        "sshfront_upstream_health_checks_total",
        "counter",
        "Upstream health checks by result.",
    );
    for (r, c) in [("failed", &HEALTH_CHECKS[0]), ("ok", &HEALTH_CHECKS[1])] {
        let n = c.load(Ordering::Relaxed);
        let _ = writeln!(o, "sshfront_upstream_health_checks_total{{result=\"{r}\"}} {n}");
    }
    {
        use recording::*;
        for (name, help, c) in [
            ("sshfront_recordings_total", "Session recordings started.", &STARTED),
            (
                "sshfront_recording_dropped_total",
                "Recording events dropped because the recorder's queue was full.",
                &DROPPED,
            ),
            (
                "sshfront_recordings_truncated_total",
                "Recordings stopped at --record-max-size.",
                &TRUNCATED,
            ),
            (
                "sshfront_recording_errors_total",
                "Recording files that could not be created or written.",
                &ERRORS,
            ),
        ] {
            head(o, name, "counter", help);
            let _ = writeln!(o, "{name} {}", c.load(Ordering::Relaxed));
        }
    }
    if routes.is_empty() {
        return;
    }
    head(o, "sshfront_proxy_sessions_active", "gauge", "Proxied sessions open, by route.");
    for s in &routes {
        let _ = writeln!(
            o,
            "sshfront_proxy_sessions_active{{route=\"{}\"}} {}",
            s.label,
            s.sessions_active()
        );
    }
    head(
        o,
        "sshfront_proxy_upstreams_healthy",
        "gauge",
        "Upstreams passing health checks, by route (routes in use).",
    );
    for s in &routes {
        let h = s.healthy.load(Ordering::Relaxed);
        let _ = writeln!(o, "sshfront_proxy_upstreams_healthy{{route=\"{}\"}} {h}", s.label);
    }
    head(o, "sshfront_proxy_upstreams", "gauge", "Upstreams, by route (routes in use).");
    for s in &routes {
        let t = s.upstreams.load(Ordering::Relaxed);
        let _ = writeln!(o, "sshfront_proxy_upstreams{{route=\"{}\"}} {t}", s.label);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_route_series_are_bounded_and_survive_lookups() {
        let reg = Registry::default();
        let route = |n: &str| reg.route(n);
        let a = route("metrics-test-a");
        let active = a.session_started();
        a.session_started(); // dropped at once: started, then ended
        assert_eq!(route("metrics-test-a").sessions_active(), 1);
        drop(active);
        assert_eq!(a.sessions_active(), 0);
        assert_eq!(a.sessions_started(), 2);
        // Far more names than labels: the registry stops growing, the rest share "other".
        for i in 0..(MAX_ROUTE_LABELS * 2) {
            route(&format!("metrics-test-many-{i}")).session_started();
        }
        assert!(reg.routes.lock().unwrap().len() <= MAX_ROUTE_LABELS);
        assert_eq!(route("metrics-test-never-seen").label(), OTHER_ROUTE);
        reg.publish_health(&[("metrics-test-a", 1, 2)]);
        let mut o = String::new();
        render_with(&reg, &mut o);
        assert!(o.contains("sshfront_proxy_upstreams_healthy{route=\"metrics-test-a\"} 1"), "{o}");
        assert!(o.contains("sshfront_proxy_sessions_active{route=\"other\"}"), "{o}");
        assert!(o.contains("sshfront_proxy_sessions_active{route=\"metrics-test-a\"} 0"), "{o}");
        let series = o.lines().filter(|l| l.starts_with("sshfront_proxy_sessions_active{")).count();
        assert!(series <= MAX_ROUTE_LABELS + 1, "{series} series");
    }
}
