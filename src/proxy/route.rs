//! Routes as data: which downstream user (and source address) goes to which upstreams, how they
//! are balanced, and how the gateway logs in there. Built and validated by `config::routes`;
//! immutable behind an `Arc` (a reload builds a new one, established sessions keep theirs).
//! The balancer counters are the only mutable part (atomics: shared by all workers).

use super::known_hosts::PinnedKeys;
use crate::auth::policy::wildcard_match;
use crate::proxy_protocol::Cidr;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the looked-up addresses of a host-name upstream are used before a new lookup.
pub const RESOLVED_TTL: Duration = Duration::from_secs(60);
/// Addresses kept per upstream name (tried in order).
pub const MAX_RESOLVED: usize = 8;

/// All routes of one routes file, first match wins. Each route is an `Arc` so a pick outlives
/// a reload.
#[derive(Debug, Default)]
pub struct Routes {
    /// `target+user` split character (`user_split` in the file); None: user names are taken
    /// whole.
    pub split: Option<char>,
    pub routes: Vec<Arc<Route>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    RoundRobin,
    LeastConn,
    /// Stable per user name: the same user lands on the same upstream while the set of healthy
    /// upstreams is unchanged.
    HashUser,
}

impl Balance {
    pub fn from_name(s: &str) -> Option<Balance> {
        match s {
            "round-robin" => Some(Balance::RoundRobin),
            "least-conn" => Some(Balance::LeastConn),
            "hash-user" => Some(Balance::HashUser),
            _ => None,
        }
    }
}

/// How the gateway authenticates to the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamAuth {
    /// The gateway's own identity file for this route.
    Key(PathBuf),
    /// The password the user just gave, used once, never stored.
    Password,
    /// The user's forwarded agent (`ssh -A`).
    Agent,
}

#[derive(Debug)]
pub struct Upstream {
    pub host: String,
    pub port: u16,
    /// Sessions open to it (least-conn), kept by [`Pick`].
    active: AtomicU32,
    /// Published by the health checker; true until a check says otherwise.
    healthy: AtomicBool,
    /// A host name's addresses as last looked up (by the health checker or a worker's
    /// resolver thread) and until when they are used. Workers only `try_lock` it: a lookup
    /// never makes a worker wait.
    resolved: Mutex<Option<(Arc<[SocketAddr]>, Instant)>>,
}

impl Upstream {
    pub fn new(host: String, port: u16) -> Self {
        Upstream {
            host,
            port,
            active: AtomicU32::new(0),
            healthy: AtomicBool::new(true),
            resolved: Mutex::new(None),
        }
    }

    /// The cached addresses, if still fresh at `now` (None too when the cache is busy: the
    /// caller looks the name up instead of waiting).
    pub fn cached_addrs(&self, now: Instant) -> Option<Arc<[SocketAddr]>> {
        let g = self.resolved.try_lock().ok()?;
        g.as_ref().filter(|(_, until)| now < *until).map(|(a, _)| a.clone())
    }

    /// Stores looked-up addresses (at most [`MAX_RESOLVED`]) for [`RESOLVED_TTL`] from `now`;
    /// skipped when the cache is busy or there are none.
    pub fn store_addrs(&self, addrs: &[SocketAddr], now: Instant) {
        let addrs = addrs.get(..addrs.len().min(MAX_RESOLVED)).unwrap_or_default();
        if addrs.is_empty() {
            return;
        }
        if let Ok(mut g) = self.resolved.try_lock() {
            *g = Some((addrs.into(), now + RESOLVED_TTL));
        }
    }

    pub fn active(&self) -> u32 {
        self.active.load(Ordering::Relaxed)
    }

    /// The health checker's last verdict (true before the first check).
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub fn set_healthy(&self, up: bool) {
        self.healthy.store(up, Ordering::Relaxed);
    }
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A route's loaded identity key (never printed).
#[derive(Clone)]
pub struct Identity(pub Arc<crate::algo::host_key::HostKeyPair>);

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Identity(..)")
    }
}

#[derive(Debug)]
pub struct Route {
    /// For logs and metrics labels: the `name` key, or `route<N>` (a fixed set per file).
    pub name: String,
    /// Where it was defined (`file:line`), for log lines.
    pub origin: String,
    /// Glob on the user part of the name.
    pub user: String,
    /// Glob on the target part of `target+user`; Some: the route only matches that form.
    pub target: Option<String>,
    /// Empty: any source.
    pub sources: Vec<Cidr>,
    pub upstreams: Vec<Upstream>,
    pub balance: Balance,
    /// None: the same name as downstream (the user part of `target+user`).
    pub upstream_user: Option<String>,
    /// Pinned upstream host keys; None: not pinned (accepted with a warning by the runtime).
    pub known_hosts: Option<Arc<PinnedKeys>>,
    pub auth: UpstreamAuth,
    /// The identity file of `auth = "key"`, loaded with the routes (workers never read files).
    pub identity: Option<Identity>,
    pub connect_timeout: Duration,
    /// Upstream KEX + authentication must finish in this.
    pub login_timeout: Duration,
    /// Records this route's PTY sessions (asciicast v2, one file per session).
    pub record_dir: Option<PathBuf>,
    /// Size bound of one recording; None: the global `--record-max-size`.
    pub record_max_bytes: Option<u64>,
    pub health: super::health::HealthConfig,
    next: AtomicUsize,
}

impl Route {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: String,
        origin: String,
        user: String,
        target: Option<String>,
        sources: Vec<Cidr>,
        upstreams: Vec<Upstream>,
        balance: Balance,
        auth: UpstreamAuth,
    ) -> Route {
        Route {
            name,
            origin,
            user,
            target,
            sources,
            upstreams,
            balance,
            upstream_user: None,
            known_hosts: None,
            auth,
            identity: None,
            connect_timeout: Duration::from_secs(10),
            login_timeout: Duration::from_secs(30),
            record_dir: None,
            record_max_bytes: None,
            health: Default::default(),
            next: AtomicUsize::new(0),
        }
    }

    fn matches(&self, target: Option<&str>, user: &str, source: IpAddr) -> bool {
        let target_ok = match (&self.target, target) {
            (None, None) => true,
            (Some(p), Some(t)) => wildcard_match(p, t),
            _ => false,
        };
        target_ok
            && wildcard_match(&self.user, user)
            && (self.sources.is_empty() || self.sources.iter().any(|c| c.contains(source)))
    }

    /// Picks an upstream among those the health checker has not marked down; None when all
    /// are down.
    pub fn pick_healthy(self: &Arc<Self>, user: &str) -> Option<Pick> {
        let ups = &self.upstreams;
        self.pick(user, &|i| ups.get(i).is_some_and(Upstream::is_healthy))
    }

    /// Picks an upstream among those `healthy` says are up; None when all are down.
    pub fn pick(self: &Arc<Self>, user: &str, healthy: &dyn Fn(usize) -> bool) -> Option<Pick> {
        let n = self.upstreams.len();
        let up: Vec<usize> = (0..n).filter(|&i| healthy(i)).collect();
        if up.is_empty() {
            return None;
        }
        let i = match self.balance {
            Balance::RoundRobin => {
                let k = self.next.fetch_add(1, Ordering::Relaxed);
                up[k % up.len()]
            }
            Balance::LeastConn => {
                // Ties go round-robin so equal upstreams share the load.
                let k = self.next.fetch_add(1, Ordering::Relaxed);
                let min = up.iter().map(|&i| self.upstreams[i].active()).min().unwrap_or(0);
                let tied: Vec<usize> =
                    up.iter().copied().filter(|&i| self.upstreams[i].active() == min).collect();
                tied[k % tied.len()]
            }
            Balance::HashUser => up[(fnv1a(user.as_bytes()) % up.len() as u64) as usize],
        };
        self.upstreams[i].active.fetch_add(1, Ordering::Relaxed);
        Some(Pick { route: self.clone(), index: i })
    }
}

/// A chosen upstream; counts as one active session until dropped.
#[derive(Debug)]
pub struct Pick {
    pub route: Arc<Route>,
    pub index: usize,
}

impl Pick {
    pub fn upstream(&self) -> &Upstream {
        &self.route.upstreams[self.index]
    }
}

impl Drop for Pick {
    fn drop(&mut self) {
        if let Some(u) = self.route.upstreams.get(self.index) {
            u.active.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// A route that matched, with the user names on both sides.
#[derive(Debug)]
pub struct RouteMatch {
    pub route: Arc<Route>,
    /// The downstream name without the `target+` part.
    pub user: String,
    /// The name to log in as upstream.
    pub upstream_user: String,
}

impl Routes {
    /// The first route matching the downstream `name` (maybe `target+user`) from `source` (the
    /// real address, after PROXY). None: today's behaviour (jump host / session command).
    pub fn select(&self, name: &str, source: IpAddr) -> Option<RouteMatch> {
        let (target, user) = match self.split.and_then(|c| name.split_once(c)) {
            Some((t, u)) if !t.is_empty() && !u.is_empty() => (Some(t), u),
            _ => (None, name),
        };
        let route = self.routes.iter().find(|r| r.matches(target, user, source))?;
        let upstream_user = route.upstream_user.clone().unwrap_or_else(|| user.to_string());
        Some(RouteMatch { route: route.clone(), user: user.to_string(), upstream_user })
    }
}

/// FNV-1a: stable across runs and builds (std's hasher is seeded per process).
fn fnv1a(b: &[u8]) -> u64 {
    b.iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, &x| (h ^ u64::from(x)).wrapping_mul(0x100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str, user: &str, target: Option<&str>, ups: &[&str], b: Balance) -> Route {
        let ups = ups.iter().map(|h| Upstream::new(h.to_string(), 22)).collect();
        let t = target.map(str::to_string);
        Route::new(name.into(), "t:1".into(), user.into(), t, vec![], ups, b, UpstreamAuth::Agent)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn first_match_on_user_glob_target_and_source() {
        let mut ops = route("ops", "ops-*", None, &["a"], Balance::RoundRobin);
        ops.sources = vec![Cidr::parse("10.0.0.0/8").unwrap()];
        let db = route("db", "*", Some("db"), &["db1"], Balance::RoundRobin);
        let mut alice = route("alice", "alice", None, &["b"], Balance::RoundRobin);
        alice.upstream_user = Some("root".into());
        let routes = vec![ops, db, alice].into_iter().map(Arc::new).collect();
        let t = Routes { split: Some('+'), routes };
        let m = t.select("ops-1", ip("10.1.2.3")).unwrap();
        assert_eq!(m.route.name, "ops");
        assert_eq!(m.upstream_user, "ops-1");
        assert!(t.select("ops-1", ip("192.168.0.1")).is_none(), "source outside the CIDR");
        let m = t.select("db+carol", ip("1.2.3.4")).unwrap();
        assert_eq!((m.route.name.as_str(), m.user.as_str()), ("db", "carol"));
        assert!(t.select("web+carol", ip("1.2.3.4")).is_none());
        let m = t.select("alice", ip("::1")).unwrap();
        assert_eq!(m.upstream_user, "root");
        assert!(t.select("bob", ip("::1")).is_none(), "no route: today's behaviour");
        // Without a split character the whole name is the user.
        let t = Routes {
            split: None,
            routes: vec![Arc::new(route("x", "db+carol", None, &["a"], Balance::RoundRobin))],
        };
        assert!(t.select("db+carol", ip("::1")).is_some());
    }

    #[test]
    fn resolved_addresses_expire() {
        let u = Upstream::new("db1".into(), 22);
        #[allow(clippy::disallowed_methods)]
        let t = Instant::now();
        assert!(u.cached_addrs(t).is_none());
        let a: SocketAddr = "127.0.0.1:22".parse().unwrap();
        u.store_addrs(&[a; 20], t);
        assert_eq!(u.cached_addrs(t).unwrap().len(), MAX_RESOLVED, "bounded");
        assert!(u.cached_addrs(t + RESOLVED_TTL).is_none(), "stale after the TTL");
        u.store_addrs(&[], t);
        assert!(u.cached_addrs(t).is_some(), "an empty answer keeps what was there");
    }

    #[test]
    fn round_robin_skips_unhealthy() {
        let r = Arc::new(route("r", "*", None, &["a", "b", "c"], Balance::RoundRobin));
        let all = |_| true;
        let got: Vec<usize> = (0..6).map(|_| r.pick("u", &all).unwrap().index).collect();
        assert_eq!(got, vec![0, 1, 2, 0, 1, 2]);
        let not_b = |i| i != 1;
        let got: Vec<usize> = (0..4).map(|_| r.pick("u", &not_b).unwrap().index).collect();
        assert!(got.iter().all(|&i| i != 1));
        assert!(r.pick("u", &|_| false).is_none());
        // The health checker's verdicts, published into the upstreams.
        r.upstreams[0].set_healthy(false);
        r.upstreams[2].set_healthy(false);
        assert!((0..4).all(|_| r.pick_healthy("u").unwrap().index == 1));
        r.upstreams[1].set_healthy(false);
        assert!(r.pick_healthy("u").is_none());
    }

    #[test]
    fn least_conn_counts_live_picks() {
        let r = Arc::new(route("r", "*", None, &["a", "b"], Balance::LeastConn));
        let all = |_| true;
        let p1 = r.pick("u", &all).unwrap();
        let p2 = r.pick("u", &all).unwrap();
        assert_ne!(p1.index, p2.index);
        let p3 = r.pick("u", &all).unwrap();
        drop(p1);
        let freed = 1 - p3.index;
        // The upstream that lost a session now has fewer: it is chosen.
        let p4 = r.pick("u", &all).unwrap();
        assert_eq!(p4.upstream().active(), 2);
        assert!(p4.index == freed || r.upstreams[freed].active() == 2);
        drop((p2, p3, p4));
        assert!(r.upstreams.iter().all(|u| u.active() == 0));
    }

    #[test]
    fn hash_user_is_stable_per_user() {
        let r = Arc::new(route("r", "*", None, &["a", "b", "c", "d"], Balance::HashUser));
        let all = |_| true;
        for user in ["alice", "bob", "carol"] {
            let first = r.pick(user, &all).unwrap().index;
            for _ in 0..5 {
                assert_eq!(r.pick(user, &all).unwrap().index, first);
            }
        }
        let spread: std::collections::HashSet<usize> =
            (0..64).map(|i| r.pick(&format!("user{i}"), &all).unwrap().index).collect();
        assert!(spread.len() > 1, "users spread over upstreams");
    }
}
