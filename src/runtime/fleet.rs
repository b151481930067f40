//! The acceptor's fleet duties (issue 6), kept apart from its accept loop: the PROXY header
//! gate, readiness and metrics publication for `--metrics-listen`, the drain delay, and binding
//! listeners with SO_REUSEPORT.

use super::crypto_pool::JobBudget;
use super::metrics_http::{self, Health, REFRESH_INTERVAL};
use super::proxy::{Admitted, ProxyGate};
use crate::config::fleet::FleetSettings;
use crate::metrics::Metrics;
use mio::net::{TcpListener, TcpStream};
use mio::{Registry, Token};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Listen backlog with `--reuse-port` (std's own bind uses 128); a burst waits in the kernel.
const BACKLOG: i32 = 1024;

/// Binds a listener, with SO_REUSEPORT when asked (set before bind, which std cannot do).
pub fn bind(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    if !reuse_port {
        return TcpListener::bind(addr);
    }
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}

pub struct Fleet {
    pub proxy: Option<ProxyGate>,
    pub health: Option<Arc<Health>>,
    drain_delay: Duration,
    /// After SIGTERM with a drain delay: when to stop accepting.
    drain_at: Option<Instant>,
    next_refresh: Option<Instant>,
}

impl Fleet {
    /// Nothing enabled (tests of the acceptor).
    pub fn disabled() -> Fleet {
        Fleet {
            proxy: None,
            health: None,
            drain_delay: Duration::ZERO,
            drain_at: None,
            next_refresh: None,
        }
    }

    /// Starts what the settings ask for (the metrics thread binds here, so a bad address fails
    /// startup).
    pub fn start(
        s: &FleetSettings,
        crypto: JobBudget,
        classes: Vec<(&'static str, JobBudget)>,
    ) -> io::Result<Fleet> {
        let proxy = s.proxy_from.clone().map(|allowed| ProxyGate::new(allowed, s.proxy_timeout));
        let health = match s.metrics_listen {
            Some(addr) => {
                let h = Health::with_classes(crypto, classes);
                metrics_http::start(addr, h.clone())?;
                Some(h)
            }
            None => None,
        };
        let next_refresh = health.as_ref().map(|_| Instant::now());
        Ok(Fleet { proxy, health, drain_delay: s.drain_delay, drain_at: None, next_refresh })
    }

    /// A configuration reload failed: counted in the metrics when they are served.
    pub fn count_reload_failure(&self) {
        if let Some(h) = &self.health {
            h.count_reload_failure();
        }
    }

    /// A socket just accepted: straight on (no PROXY protocol), or through the gate.
    pub fn admit(
        &mut self,
        registry: &Registry,
        stream: TcpStream,
        peer: SocketAddr,
        now: Instant,
    ) -> Option<Admitted> {
        match &mut self.proxy {
            None => Some((stream, peer, now)),
            Some(g) => g.admit(registry, stream, peer, now),
        }
    }

    pub fn owns(&self, token: Token) -> bool {
        self.proxy.as_ref().is_some_and(|g| g.owns(token))
    }

    pub fn readable(&mut self, registry: &Registry, token: Token) -> Option<Admitted> {
        self.proxy.as_mut().and_then(|g| g.readable(registry, token))
    }

    /// Per loop turn: closes overdue PROXY waits; says whether to ask workers for snapshots.
    pub fn tick(&mut self, registry: &Registry, now: Instant) -> bool {
        if let Some(g) = &mut self.proxy {
            g.expire(registry, now);
        }
        match self.next_refresh {
            Some(t) if now >= t => {
                self.next_refresh = Some(now + REFRESH_INTERVAL);
                true
            }
            _ => false,
        }
    }

    /// The earliest moment `tick` or the drain delay needs the loop.
    pub fn next_deadline(&self) -> Option<Instant> {
        let gate = self.proxy.as_ref().and_then(ProxyGate::next_deadline);
        [gate, self.next_refresh, self.drain_at].into_iter().flatten().min()
    }

    /// The acceptor started or stopped accepting; ready only if it accepts and no drain is
    /// pending.
    pub fn listening_changed(&self, on: bool) {
        if let Some(h) = &self.health {
            h.set_ready(on && self.drain_at.is_none());
        }
    }

    /// SIGTERM: not ready from now on. Returns true if accepting should go on for the drain
    /// delay (the caller then starts the drain when [`drain_due`](Self::drain_due) says so).
    pub fn begin_drain(&mut self, now: Instant) -> bool {
        if let Some(h) = &self.health {
            h.set_ready(false);
        }
        if self.drain_delay.is_zero() || self.drain_at.is_some() {
            return false;
        }
        self.drain_at = Some(now + self.drain_delay);
        true
    }

    /// Whether a SIGTERM has been seen and the drain delay is still running.
    pub fn drain_pending(&self) -> bool {
        self.drain_at.is_some()
    }

    /// The drain delay is over: stop accepting now.
    pub fn drain_due(&self, now: Instant) -> bool {
        self.drain_at.is_some_and(|t| now >= t)
    }

    /// Draining: close connections still waiting for a PROXY header, stop refreshing.
    pub fn stop(&mut self, registry: &Registry) {
        if let Some(g) = &mut self.proxy {
            g.clear(registry);
        }
        if let Some(h) = &self.health {
            h.set_ready(false);
        }
        self.drain_at = None;
    }

    /// Publishes the merged snapshots for the metrics endpoint.
    pub fn publish(&self, latest: &[Option<Metrics>]) {
        if let Some(h) = &self.health {
            let proxy = self.proxy.as_ref().map(|g| g.counts.labelled()).unwrap_or_default();
            h.publish(crate::metrics::Metrics::merged(latest), proxy);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_health(delay: Duration) -> (Fleet, Arc<Health>) {
        let h = Health::new(JobBudget::new(1));
        let f = Fleet {
            proxy: None,
            health: Some(h.clone()),
            drain_delay: delay,
            drain_at: None,
            next_refresh: None,
        };
        (f, h)
    }

    #[test]
    fn sigterm_turns_readiness_off_and_the_delay_holds_the_drain() {
        let t0 = Instant::now();
        let (mut f, h) = with_health(Duration::from_secs(2));
        f.listening_changed(false); // paused at --max-connections: not ready
        assert!(!h.is_ready());
        f.listening_changed(true);
        assert!(h.is_ready());
        assert!(f.begin_drain(t0), "a delay: keep accepting for now");
        assert!(!h.is_ready() && f.drain_pending());
        f.listening_changed(true); // resuming after a pause must not make it ready again
        assert!(!h.is_ready());
        assert!(!f.drain_due(t0 + Duration::from_secs(1)));
        assert!(f.drain_due(t0 + Duration::from_secs(2)));
        assert_eq!(f.next_deadline(), Some(t0 + Duration::from_secs(2)));
        assert!(!f.begin_drain(t0), "a second call starts nothing new");

        let (mut f, h) = with_health(Duration::ZERO);
        assert!(!f.begin_drain(t0), "no delay: drain at once");
        assert!(!h.is_ready());
    }

    #[test]
    fn reuse_port_binds_twice() {
        let a = bind("127.0.0.1:0".parse().unwrap(), true).unwrap();
        let addr = a.local_addr().unwrap();
        let b = bind(addr, true).unwrap();
        assert_eq!(b.local_addr().unwrap(), addr);
        assert!(bind(addr, false).is_err(), "without SO_REUSEPORT the port is taken");
    }
}
