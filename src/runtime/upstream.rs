//! The session proxy's runtime half: the upstream TCP connection and its `ClientConnection`,
//! held in the same worker slot as the downstream `ServerConnection` (`Conn::upstream`), with
//! the sans-IO [`Bridge`] between their channels.
//!
//! Life of one proxied login: the core picks the route at USERAUTH_SUCCESS → the worker picks
//! an upstream, starts a non-blocking connect (bounded by the route's `connect_timeout`) →
//! key exchange on the crypto pool (jobs tagged with the connection's key and generation, like
//! its own) → host key checked against the route's pin → login (`key`: signed on the pool;
//! `password`: the one the user just gave, sent once and wiped; `agent`: the user's forwarded
//! agent, over an agent channel to the user, see `proxy::agent_login`) → channels carried. The
//! whole setup is bounded by `login_timeout`. Any failure ends the user's sessions with the reason
//! on their stderr and the connection with a DISCONNECT carrying the same words.
//!
//! A route with `record_dir` records each proxied PTY session: what the bridge hands the
//! user's channel is copied to the recorder thread (`runtime::recording`), never waited on.

use super::{Conn, Core, State, READ_BUDGET_PER_TURN, WRITE_HIGH_WATER};
use crate::algo::SystemRng;
use crate::client::{self, ClientConnection, LocalKey, Method};
use crate::connection::{ChannelId, ExitStatus, ListenerId};
use crate::metrics::routes::{route_label, Failure};
use crate::proxy::agent_login::{AgentLogin, AgentLoginError};
use crate::proxy::bridge::{Bridge, Down, Open, Start};
use crate::proxy::known_hosts::Verdict;
use crate::proxy::recording::Header;
use crate::proxy::{Pick, UpstreamAuth};
use crate::runtime::buffers::Buf;
use crate::runtime::conn::{token_of, SocketKind};
use crate::runtime::endpoints::backend::ip_literal;
use crate::runtime::recording;
use crate::runtime::resolve::Ticket;
use crate::runtime::upstream_link::{Phase, Recordings, UpstreamLink};
use crate::server::{Event, ServerJob, ServerJobDone};
use crate::transport::{DisconnectReason, TransportConfig};
use mio::net::TcpStream;
use mio::Interest;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// The downstream core as the bridge sees it, with the recordings of its sessions.
struct DownCore<'a, C: Core> {
    core: &'a mut C,
    recs: &'a mut Recordings,
}

impl<C: Core> Down for DownCore<'_, C> {
    fn inbound(&self, ch: ChannelId) -> &[u8] {
        self.core.inbound(ch)
    }
    fn consumed(&mut self, ch: ChannelId, n: usize) -> usize {
        self.core.backend_consumed(ch, n)
    }
    fn send_data(&mut self, ch: ChannelId, data: &[u8], now: Instant) -> usize {
        let n = data.len().min(self.core.send_capacity(ch));
        if n == 0 {
            return 0;
        }
        let n = self.core.send_data(ch, data.get(..n).unwrap_or_default(), now);
        self.recs.output(ch, data.get(..n).unwrap_or_default());
        n
    }
    fn send_stderr(&mut self, ch: ChannelId, data: &[u8], now: Instant) -> usize {
        let n = data.len().min(self.core.send_capacity(ch));
        if n == 0 {
            return 0;
        }
        let n = self.core.send_stderr(ch, data.get(..n).unwrap_or_default(), now);
        self.recs.output(ch, data.get(..n).unwrap_or_default());
        n
    }
    fn eof(&mut self, ch: ChannelId) {
        self.core.backend_eof(ch)
    }
    fn send_eow(&mut self, ch: ChannelId) {
        self.core.send_eow(ch)
    }
    fn closed(&mut self, ch: ChannelId) {
        self.recs.end(ch);
        self.core.backend_closed(ch)
    }
    fn exited(&mut self, ch: ChannelId, status: ExitStatus) {
        self.recs.end(ch);
        self.core.child_exited(ch, status)
    }
    fn opened(&mut self, ch: ChannelId) {
        self.core.backend_connected(ch)
    }
    fn open_failed(&mut self, ch: ChannelId, code: u32, text: &str) {
        self.core.backend_failed(ch, code, text)
    }
    fn listen_result(&mut self, listener: ListenerId, result: Result<u16, ()>) {
        self.core.listen_result(listener, result)
    }
    fn forwarded(
        &mut self,
        listener: ListenerId,
        originator: &str,
        originator_port: u16,
    ) -> Option<ChannelId> {
        self.core.forwarded_connection(listener, originator, originator_port).ok()
    }
    fn agent_requested(&self) -> bool {
        self.core.agent_requested().is_some()
    }
    fn open_agent(&mut self) -> Option<ChannelId> {
        self.core.open_agent_channel()
    }
}

/// An agent login failure in words, and how it is counted.
fn agent_failure(target: &str, user: &str, e: AgentLoginError) -> (Failure, String) {
    match e {
        AgentLoginError::NoAgent => {
            (Failure::Auth, format!("upstream {target}: no forwarded agent (ssh -A)"))
        }
        AgentLoginError::NoKeys => {
            (Failure::Auth, format!("upstream {target}: the forwarded agent holds no usable key"))
        }
        AgentLoginError::Refused { tried } => (
            Failure::Auth,
            format!("upstream {target} refused every agent key ({tried} tried as {user:?})"),
        ),
        AgentLoginError::Agent(m) => {
            (Failure::Auth, format!("upstream {target}: forwarded agent: {m}"))
        }
        AgentLoginError::Core(m) => (Failure::Protocol, format!("upstream {target} login: {m}")),
    }
}

impl State {
    /// At login: a routed user gets an upstream link (dead at once when nothing can be
    /// tried, so its channels fail with the reason instead of running locally).
    pub(super) fn start_upstream<C: Core>(&mut self, conn: &mut Conn<C>, key: usize, now: Instant) {
        let password = conn.core.take_password();
        let Some(route) = conn.core.take_route() else { return };
        let r = &route.route;
        let index = conn
            .gateway
            .routes
            .as_ref()
            .and_then(|t| t.routes.iter().position(|x| Arc::ptr_eq(x, r)));
        let label = route_label(index.unwrap_or(usize::MAX), &r.name);
        self.metrics.routes.session(&label);
        let password = if r.auth == UpstreamAuth::Password { password } else { None };
        let agent = (r.auth == UpstreamAuth::Agent).then(|| AgentLogin::new(&route.upstream_user));
        let transport = self.upstream_transport(conn.core.transport_config());
        let core = ClientConnection::new(transport, Box::new(SystemRng), None, now);
        // Upstreams the health checker marked down are skipped (all up until checked).
        let pick = r.pick_healthy(&route.user);
        let target =
            pick.as_ref().map_or_else(|| format!("route {}", r.name), |p| p.upstream().to_string());
        let mut link = Box::new(UpstreamLink {
            socket: None,
            core,
            bridge: Bridge::new(),
            recs: Recordings::default(),
            pick,
            _active: crate::metrics::proxy::route(&label).session_started(),
            label,
            target,
            addrs: Vec::new(),
            phase: Phase::Connecting,
            password,
            agent,
            readable: false,
            writable: false,
            rbuf: None,
            wq: Default::default(),
            out_hint: 0,
            lent: false,
            started: now,
            connect_deadline: now + r.connect_timeout,
            login_deadline: now + r.login_timeout,
            route,
        });
        log::info!(
            event = "proxy_start", worker = self.id, conn = key, peer:% = conn.peer,
            user = conn.user.as_deref(), route = link.route.route.name.as_str(),
            upstream = link.target.as_str();
            "[w{}#{key}] {}: user {:?} routed by {} to {}",
            self.id, conn.peer, crate::runtime::log::peer_str(conn.user.as_deref().unwrap_or("")),
            link.route.route.name, link.target
        );
        let connected = match link.pick.as_ref().map(Pick::upstream) {
            None => Err((
                Failure::NoUpstream,
                format!("no upstream of route {} is up", link.route.route.name),
            )),
            Some(u) => match ip_literal(&u.host, u.port) {
                Some(addr) => {
                    link.addrs = vec![addr];
                    self.connect_next(key, conn.generation, &mut link)
                }
                None => match u.cached_addrs(now) {
                    Some(addrs) => {
                        link.addrs = try_order(&addrs);
                        self.connect_next(key, conn.generation, &mut link)
                    }
                    // A host name not looked up lately: the worker's resolver thread does it;
                    // `upstream_resolved` connects (bounded by connect_timeout meanwhile).
                    None => {
                        link.phase = Phase::Resolving;
                        let t =
                            Ticket { endpoint: key, generation: conn.generation, upstream: true };
                        self.endpoints.resolver.lookup(t, &u.host, u.port).map_err(|e| {
                            (
                                Failure::Unreachable,
                                format!("upstream {}: cannot resolve ({e})", link.target),
                            )
                        })
                    }
                },
            },
        };
        if let Err((kind, text)) = connected {
            self.upstream_failed(conn, key, &mut link, kind, &text, now);
        }
        conn.upstream = Some(link);
        conn.pump_again = true;
    }

    /// Starts a non-blocking connect to the next address in `link.addrs`; one that fails at
    /// once is skipped. Err: none was left (the last error in words).
    fn connect_next(
        &mut self,
        key: usize,
        generation: u32,
        link: &mut UpstreamLink,
    ) -> Result<(), (Failure, String)> {
        let mut last = None;
        while let Some(addr) = link.addrs.pop() {
            let mut s = match TcpStream::connect(addr) {
                Ok(s) => s,
                Err(e) => {
                    last = Some((
                        Failure::Unreachable,
                        format!("upstream {} unreachable ({e})", link.target),
                    ));
                    continue;
                }
            };
            let t = token_of(SocketKind::Upstream, key, generation);
            if let Err(e) =
                self.poll.registry().register(&mut s, t, Interest::READABLE | Interest::WRITABLE)
            {
                last = Some((Failure::Protocol, format!("upstream {}: {e}", link.target)));
                continue;
            }
            let _ = s.set_nodelay(true);
            link.socket = Some(s);
            link.phase = Phase::Connecting;
            link.readable = false;
            link.writable = false;
            return Ok(());
        }
        Err(last.unwrap_or_else(|| {
            (Failure::Unreachable, format!("upstream {} unreachable (no address)", link.target))
        }))
    }

    /// The worker's resolver thread answered for this connection's upstream: cache the
    /// addresses and connect, or end the sessions with "cannot resolve".
    pub(super) fn upstream_resolved<C: Core>(
        &mut self,
        conn: &mut Conn<C>,
        key: usize,
        result: Result<Vec<SocketAddr>, String>,
        now: Instant,
    ) {
        let Some(mut link) = conn.upstream.take() else { return };
        if link.phase == Phase::Resolving {
            let started = match result {
                Ok(addrs) => {
                    if let Some(p) = link.pick.as_ref() {
                        p.upstream().store_addrs(&addrs, now);
                    }
                    link.addrs = try_order(&addrs);
                    self.connect_next(key, conn.generation, &mut link)
                }
                Err(e) => Err((
                    Failure::Unreachable,
                    format!("upstream {}: cannot resolve ({e})", link.target),
                )),
            };
            if let Err((kind, text)) = started {
                self.upstream_failed(conn, key, &mut link, kind, &text, now);
            }
        }
        conn.upstream = Some(link);
        conn.pump_again = true;
    }

    /// A downstream channel event of a proxied connection: carried by the bridge (or, for
    /// the agent channel of an `auth = "agent"` login, by the login).
    pub(super) fn upstream_event<C: Core>(
        &mut self,
        conn: &mut Conn<C>,
        key: usize,
        ev: Event,
        now: Instant,
    ) {
        let Some(mut link) = conn.upstream.take() else { return };
        if let Err(e) = carry_event(
            &mut link,
            &mut conn.core,
            ev,
            now,
            (conn.user.as_deref(), conn.gateway.record_max_bytes),
        ) {
            let (kind, text) = agent_failure(&link.target, &link.route.upstream_user, e);
            self.upstream_failed(conn, key, &mut link, kind, &text, now);
        }
        conn.upstream = Some(link);
        conn.pump_again = true;
    }

    /// A finished upstream job (KEX or signature).
    pub(super) fn upstream_job_done<C: Core>(
        &mut self,
        conn: &mut Conn<C>,
        done: ServerJobDone,
        now: Instant,
    ) {
        let Some(link) = conn.upstream.as_mut() else { return };
        match done {
            ServerJobDone::UpstreamKex(d) => link.core.handle_job_done(d, now),
            ServerJobDone::UpstreamSign(s) => link.core.sign_done(s),
            _ => {}
        }
    }

    /// One round of the upstream side: connect progress, write, read, events, the bridge.
    /// Returns (progress, more: the read budget ran out).
    pub(super) fn pump_upstream<C: Core>(
        &mut self,
        conn: &mut Conn<C>,
        key: usize,
        now: Instant,
    ) -> (bool, bool) {
        let Some(mut link) = conn.upstream.take() else { return (false, false) };
        let r = self.pump_link(conn, key, &mut link, now);
        conn.upstream = Some(link);
        r
    }

    fn pump_link<C: Core>(
        &mut self,
        conn: &mut Conn<C>,
        key: usize,
        link: &mut UpstreamLink,
        now: Instant,
    ) -> (bool, bool) {
        if link.phase == Phase::Dead || conn.closing || conn.core.is_closed() {
            return (false, false);
        }
        if link.phase == Phase::Resolving {
            if now >= link.connect_deadline.min(link.login_deadline) {
                let text = format!("upstream {}: cannot resolve (timed out)", link.target);
                self.upstream_failed(conn, key, link, Failure::Timeout, &text, now);
                return (true, false);
            }
            return (false, false);
        }
        if link.phase == Phase::Connecting {
            if link.readable || link.writable {
                match check_connected(link.socket.as_ref()) {
                    Ok(true) => {
                        link.phase = Phase::Login;
                        link.readable = true;
                        link.writable = true;
                    }
                    Ok(false) => {}
                    Err(e) => {
                        // The next address of a host name, if any, else the user is told.
                        self.drop_upstream_socket(conn, link);
                        let next = if link.addrs.is_empty() {
                            let text = format!("upstream {} unreachable ({e})", link.target);
                            Err((Failure::Unreachable, text))
                        } else {
                            self.connect_next(key, conn.generation, link)
                        };
                        if let Err((kind, text)) = next {
                            self.upstream_failed(conn, key, link, kind, &text, now);
                        }
                        return (true, false);
                    }
                }
            }
            if link.phase == Phase::Connecting {
                if now >= link.connect_deadline.min(link.login_deadline) {
                    let text = format!("upstream {} unreachable (connect timed out)", link.target);
                    self.upstream_failed(conn, key, link, Failure::Timeout, &text, now);
                    return (true, false);
                }
                return (false, false);
            }
        }
        if link.phase == Phase::Login && now >= link.login_deadline {
            // Still waiting for the user's agent: that is the reason, not the upstream.
            let (kind, text) = if link.agent.as_ref().is_some_and(AgentLogin::waiting_for_agent) {
                agent_failure(&link.target, &link.route.upstream_user, AgentLoginError::NoAgent)
            } else {
                (Failure::Timeout, format!("upstream {} login timed out", link.target))
            };
            self.upstream_failed(conn, key, link, kind, &text, now);
            return (true, false);
        }
        if link.core.poll_timeout().is_some_and(|d| d <= now) {
            link.core.handle_timeout(now);
        }
        // Queued output first (it frees room and keeps the byte order); replies to the input
        // below are staged in a pooled buffer.
        let mut progress = self.write_upstream(link);
        let mut more = false;
        self.lend_upstream_output(conn, link);
        // Input.
        let mut budget = READ_BUDGET_PER_TURN;
        let mut read_closed = false;
        loop {
            if let Some(b) = link.rbuf.as_mut().filter(|b| !b.is_empty()) {
                let n = link.core.handle_input(b.filled_mut(), now);
                b.consume(n);
                progress |= n > 0;
            }
            if !link.readable || read_closed || link.pending_out() >= WRITE_HIGH_WATER {
                break;
            }
            if budget == 0 {
                more = true;
                break;
            }
            let room = match link.rbuf.take() {
                None => self.pool.checkout(1),
                Some(mut b) => {
                    b.compact();
                    if b.spare() == 0 {
                        match self.pool.checkout(2) {
                            Some(mut bigger) if bigger.capacity() > b.capacity() => {
                                bigger.push(b.filled());
                                self.pool.release(b);
                                Some(bigger)
                            }
                            Some(other) => {
                                self.pool.release(other);
                                Some(b)
                            }
                            None => Some(b),
                        }
                    } else {
                        Some(b)
                    }
                }
            };
            let Some(mut b) = room else { break };
            if b.spare() == 0 {
                link.rbuf = Some(b);
                let text = format!("upstream {} sent a packet larger than allowed", link.target);
                self.upstream_failed(conn, key, link, Failure::Protocol, &text, now);
                return (true, false);
            }
            let want = b.spare_mut().len().min(budget);
            let res = match link.socket.as_mut() {
                Some(s) => s.read(b.spare_mut().get_mut(..want).unwrap_or_default()),
                None => Ok(0),
            };
            match res {
                Ok(0) => {
                    read_closed = true;
                    link.core.peer_closed();
                }
                Ok(n) => {
                    b.end += n;
                    budget = budget.saturating_sub(n);
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => link.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    read_closed = true;
                    link.core.peer_closed();
                }
            }
            link.rbuf = Some(b);
        }
        if link.rbuf.as_ref().is_some_and(Buf::is_empty) {
            if let Some(b) = link.rbuf.take() {
                self.pool.release(b);
            }
        }
        // The agent's answers (an `auth = "agent"` login), events, the bridge, output.
        if link.phase == Phase::Login {
            if let Some(login) = link.agent.as_mut() {
                let mut down = DownCore { core: &mut conn.core, recs: &mut link.recs };
                match login.pump(&mut down, &mut link.core, now) {
                    Ok(p) => progress |= p,
                    Err(e) => {
                        let (kind, text) =
                            agent_failure(&link.target, &link.route.upstream_user, e);
                        self.upstream_failed(conn, key, link, kind, &text, now);
                        return (true, false);
                    }
                }
            }
        }
        if let Some((kind, text)) = self.upstream_events(conn, key, link, now) {
            self.upstream_failed(conn, key, link, kind, &text, now);
            return (true, false);
        }
        if link.phase == Phase::Ready && link.pending_out() < WRITE_HIGH_WATER {
            let mut down = DownCore { core: &mut conn.core, recs: &mut link.recs };
            progress |= link.bridge.pump(&mut link.core, &mut down, now);
            link.core.check_rekey(now);
        }
        progress |= self.transmit_upstream(conn, link);
        if link.socket.is_none() {
            let text = format!("upstream {} closed the connection", link.target);
            self.upstream_failed(conn, key, link, Failure::Closed, &text, now);
        } else if !progress && !more && link.wq.is_empty() {
            // An idle link keeps no output buffer (it goes back to the pool) and drops the
            // capacity its queues grew to.
            self.reclaim_upstream_output(conn, link);
            link.core.release_idle_memory();
        }
        (progress, more)
    }

    /// The upstream client's settings for a connection running with `server`'s: derived once
    /// per worker and server config, not per session (an idle proxied session then holds no
    /// copy of the algorithm lists).
    fn upstream_transport(
        &mut self,
        server: Option<&Arc<TransportConfig>>,
    ) -> Arc<TransportConfig> {
        let Some(server) = server else {
            return Arc::new(TransportConfig::all_algorithms(concat!(
                "sshfront_",
                env!("CARGO_PKG_VERSION")
            )));
        };
        if let Some((from, derived)) = &self.upstream_transport {
            if from.upgrade().is_some_and(|f| Arc::ptr_eq(&f, server)) {
                return derived.clone();
            }
        }
        let derived = Arc::new(crate::proxy::upstream_algs::upstream_transport(server));
        self.upstream_transport = Some((Arc::downgrade(server), derived.clone()));
        derived
    }

    /// Drains the client core's events. `Some` ends the upstream with that failure.
    fn upstream_events<C: Core>(
        &mut self,
        conn: &mut Conn<C>,
        key: usize,
        link: &mut UpstreamLink,
        now: Instant,
    ) -> Option<(Failure, String)> {
        while let Some(ev) = link.core.poll_event() {
            let mut down = DownCore { core: &mut conn.core, recs: &mut link.recs };
            match ev {
                client::Event::Job(j) => self.submit(conn, key, ServerJob::UpstreamKex(j), now),
                client::Event::Sign(req) => match link.agent.as_mut() {
                    Some(login) => {
                        if let Err(e) = login.sign(&*req.signer, &req.data, &mut down, now) {
                            return Some(agent_failure(&link.target, &link.route.upstream_user, e));
                        }
                    }
                    None => self.submit(conn, key, ServerJob::UpstreamSign(req), now),
                },
                client::Event::KexDone(s) => {
                    if !s.first {
                        continue;
                    }
                    let key_blob = link.core.transport().server_host_key().unwrap_or_default();
                    let (host, port) = link.pick.as_ref().map_or((String::new(), 0), |p| {
                        (p.upstream().host.clone(), p.upstream().port)
                    });
                    match link
                        .route
                        .route
                        .known_hosts
                        .as_ref()
                        .map(|k| k.check(&host, port, key_blob))
                    {
                        Some(Verdict::Match) => {}
                        None => self.note(
                            conn,
                            key,
                            now,
                            &format!(
                            "upstream {} host key accepted unpinned (route {} has no known_hosts)",
                            link.target, link.route.route.name
                        ),
                        ),
                        Some(v) => {
                            return Some((
                                Failure::HostKey,
                                format!(
                                    "upstream {} host key mismatch ({}); refusing",
                                    link.target,
                                    match v {
                                        Verdict::Revoked => "key revoked",
                                        Verdict::Unknown => "no key pinned for it",
                                        _ => "not the pinned key",
                                    }
                                ),
                            ))
                        }
                    }
                    let user = link.route.upstream_user.clone();
                    let method = match &link.route.route.auth {
                        UpstreamAuth::Password => match link.password.take() {
                            Some(p) => Method::Password(p.expose().to_vec()),
                            None => {
                                return Some((
                                    Failure::Auth,
                                    format!(
                                        "upstream {} needs the login password, and this login used none",
                                        link.target
                                    ),
                                ))
                            }
                        },
                        UpstreamAuth::Key(path) => match &link.route.route.identity {
                            Some(k) => Method::PublicKey(Arc::new(LocalKey::new(k.0.clone()))),
                            None => {
                                let p = path.display();
                                return Some((Failure::Auth, format!("upstream identity {p} not loaded")));
                            }
                        },
                        UpstreamAuth::Agent => {
                            // Keys are offered as the user's agent lists them.
                            let mut down = DownCore { core: &mut conn.core, recs: &mut link.recs };
                            let r = link.agent.as_mut().map_or(Ok(()), |l| l.start(&mut down));
                            if let Err(e) = r {
                                return Some(agent_failure(&link.target, &user, e));
                            }
                            continue;
                        }
                    };
                    if let Err(e) = link.core.authenticate(&user, method) {
                        return Some((
                            Failure::Protocol,
                            format!("upstream {} login: {e}", link.target),
                        ));
                    }
                }
                client::Event::Authenticated => {
                    link.phase = Phase::Ready;
                    link.password = None;
                    // The login's agent channel is closed; forwarding proper is the bridge's.
                    if let Some(login) = link.agent.as_mut() {
                        login.finish(&mut down);
                    }
                    let took = now.saturating_duration_since(link.started);
                    self.metrics.routes.setup(&link.label, took);
                    log::info!(
                        event = "proxy_ready", worker = self.id, conn = key, peer:% = conn.peer,
                        upstream = link.target.as_str(), duration_ms = took.as_millis() as u64;
                        "[w{}#{key}] {}: upstream {} logged in as {:?} in {took:?}",
                        self.id, conn.peer, link.target, link.route.upstream_user
                    );
                    link.bridge.ready(&mut link.core, &mut down, now);
                }
                client::Event::AuthFailed { .. } if link.agent.is_some() => {
                    if let Some(Err(e)) = link.agent.as_mut().map(|l| l.auth_failed(&mut link.core))
                    {
                        return Some(agent_failure(&link.target, &link.route.upstream_user, e));
                    }
                }
                client::Event::AuthFailed { .. } => {
                    return Some((
                        Failure::Auth,
                        format!(
                            "upstream {} refused the login as {:?}",
                            link.target, link.route.upstream_user
                        ),
                    ))
                }
                client::Event::Closed { reason, by_peer, .. } => {
                    let (kind, text) = match (link.phase, by_peer) {
                        (Phase::Ready, _) => (
                            Failure::Closed,
                            format!("upstream {} closed the connection", link.target),
                        ),
                        (_, true) => (
                            Failure::Closed,
                            format!("upstream {} closed the connection: {reason}", link.target),
                        ),
                        (_, false) if reason.contains("host key") => (
                            Failure::HostKey,
                            format!("upstream {} host key mismatch; refusing", link.target),
                        ),
                        _ => (
                            Failure::Protocol,
                            format!("upstream {} failed: {reason}", link.target),
                        ),
                    };
                    return Some((kind, text));
                }
                client::Event::Log(t) => {
                    self.note(conn, key, now, &format!("upstream {}: {t}", link.target))
                }
                client::Event::ChannelOpened { channel } => {
                    link.bridge.up_opened(channel, &mut link.core, &mut down)
                }
                client::Event::ChannelOpenFailed { channel, code, text } => {
                    link.bridge.up_open_failed(channel, code, &text, &mut down, now)
                }
                client::Event::RequestDone { channel, request, ok } => link.bridge.up_request_done(
                    channel,
                    request,
                    ok,
                    &mut link.core,
                    &mut down,
                    now,
                ),
                client::Event::ExitStatus { channel, code } => {
                    link.bridge.up_exit(channel, ExitStatus::Code(code))
                }
                client::Event::ExitSignal { channel, signal, core_dumped, message } => {
                    let status = ExitStatus::Signal { name: signal, core_dumped, message };
                    link.bridge.up_exit(channel, status)
                }
                client::Event::Eow { channel } => link.bridge.up_eow(channel, &mut down),
                client::Event::ChannelEof { channel } => link.bridge.up_eof(channel),
                client::Event::ChannelClosed { channel } => {
                    link.bridge.up_closed(channel, &mut down)
                }
                client::Event::IncomingChannel {
                    channel,
                    kind: client::IncomingKind::ForwardedTcpip,
                    connected,
                    originator,
                } => {
                    let port = connected.as_ref().map_or(0, |c| c.1);
                    let (oh, op) = originator.unwrap_or_default();
                    link.bridge.up_incoming(channel, port, (&oh, op), &mut link.core, &mut down);
                }
                client::Event::IncomingChannel {
                    channel,
                    kind: client::IncomingKind::AuthAgent,
                    ..
                } => link.bridge.up_agent(channel, &mut link.core, &mut down),
                client::Event::GlobalReply { request, ok, port } => {
                    link.bridge.up_global_reply(request, ok, port, &mut down)
                }
                client::Event::ChannelReadable { .. }
                | client::Event::ChannelWritable { .. }
                | client::Event::ServiceAccepted(_)
                | client::Event::Banner(_) => {}
            }
        }
        None
    }

    /// The upstream failed: the user's channels end with `text`, the connection with a
    /// DISCONNECT saying it; counted and logged once.
    fn upstream_failed<C: Core>(
        &mut self,
        conn: &mut Conn<C>,
        key: usize,
        link: &mut UpstreamLink,
        kind: Failure,
        text: &str,
        now: Instant,
    ) {
        if link.phase == Phase::Dead {
            return;
        }
        let was_ready = link.phase == Phase::Ready;
        link.phase = Phase::Dead;
        link.password = None;
        if !(was_ready && kind == Failure::Closed) {
            self.metrics.routes.failure(&link.label, kind);
        }
        log::info!(
            event = "proxy_failed", worker = self.id, conn = key, peer:% = conn.peer,
            user = conn.user.as_deref(), route = link.route.route.name.as_str(),
            kind = kind.name(), reason = text;
            "[w{}#{key}] {}: {text}", self.id, conn.peer
        );
        self.drop_upstream_socket(conn, link);
        let mut down = DownCore { core: &mut conn.core, recs: &mut link.recs };
        if let Some(login) = link.agent.as_mut() {
            login.finish(&mut down);
        }
        link.bridge.fail(text, &mut down, now);
        if !conn.core.is_closed() {
            conn.core.close(DisconnectReason::ByApplication, text, now);
        }
        conn.pump_again = true;
    }

    /// Closes the upstream socket; its buffers go back to the pool.
    fn drop_upstream_socket<C: Core>(&mut self, conn: &mut Conn<C>, link: &mut UpstreamLink) {
        if let Some(mut s) = link.socket.take() {
            let _ = self.poll.registry().deregister(&mut s);
        }
        if let Some(b) = link.rbuf.take() {
            self.pool.release(b);
        }
        link.wq.clear(|v| self.pool.release_vec(v));
        self.reclaim_upstream_output(conn, link);
    }

    /// The connection is gone: a last DISCONNECT upstream (best effort), then the socket.
    pub(super) fn teardown_upstream<C: Core>(&mut self, conn: &mut Conn<C>) {
        let Some(mut link) = conn.upstream.take() else { return };
        if link.phase != Phase::Dead && !link.core.is_closed() {
            link.core.close(DisconnectReason::ByApplication, "the user's connection closed");
            self.seal_upstream(conn, &mut link);
            self.write_upstream(&mut link);
        }
        self.drop_upstream_socket(conn, &mut link);
        self.metrics.payload_copied += link.core.transport().bytes_copied();
    }

    /// A rate-limited log line about this connection's upstream (peer-triggered).
    fn note<C: Core>(&mut self, conn: &mut Conn<C>, key: usize, now: Instant, text: &str) {
        if conn.notes.admit(now).is_some() {
            log::info!(event = "proxy_note", worker = self.id, conn = key, peer:% = conn.peer,
                reason = text; "[w{}#{key}] {}: {text}", self.id, conn.peer);
        }
    }
}

/// A host name's addresses in the order `connect_next` pops them (from the end): IPv4 first,
/// each family in the resolver's order (a loopback or dual-stack service most often listens
/// on IPv4; IPv6 is still tried after).
fn try_order(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let mut v: Vec<SocketAddr> = addrs.to_vec();
    v.sort_by_key(|a| !a.is_ipv4());
    v.reverse();
    v
}

/// After a readiness event while connecting: connected, still in progress, or failed.
fn check_connected(s: Option<&TcpStream>) -> io::Result<bool> {
    let Some(s) = s else { return Err(io::Error::other("no socket")) };
    if let Some(e) = s.take_error()? {
        return Err(e);
    }
    match s.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}

/// One downstream channel event of a proxied connection, given to the agent login (its own
/// channel, agent forwarding, a session start it must see) or the bridge. An error ends the
/// upstream login.
fn carry_event<C: Core>(
    link: &mut UpstreamLink,
    core: &mut C,
    ev: Event,
    now: Instant,
    (user, record_max): (Option<&str>, u64),
) -> Result<(), AgentLoginError> {
    let mut down = DownCore { core, recs: &mut link.recs };
    let up = &mut link.core;
    let login = link.agent.as_mut().filter(|_| link.phase != Phase::Dead);
    match ev {
        Event::Exec { channel, command, subsystem, env, forced_command, pty } => {
            let start = match (forced_command, subsystem, command) {
                (Some(c), _, _) => Start::Exec(c),
                (None, Some(s), _) => Start::Subsystem(s),
                (None, None, Some(c)) => Start::Exec(c),
                (None, None, None) => Start::Shell,
            };
            if let (Some(dir), Some(pty)) = (&link.route.route.record_dir, &pty) {
                let header = Header {
                    width: pty.size.cols,
                    height: pty.size.rows,
                    user: user.unwrap_or_default().to_string(),
                    route: Some(link.route.route.name.clone()),
                    upstream: Some(link.target.clone()),
                    term: Some(pty.term.clone()),
                    command: match &start {
                        Start::Shell => None,
                        Start::Exec(c) => Some(c.clone()),
                        Start::Subsystem(s) => Some(format!("subsystem {s}")),
                    },
                    ..Default::default()
                };
                let max = link.route.route.record_max_bytes.unwrap_or(record_max);
                if let Some(r) = recording::start(dir, max, header) {
                    down.recs.0.push((channel, r));
                }
            }
            let agent = down.core.agent_requested() == Some(channel);
            let open = Open::Session { start, pty, env, agent };
            link.bridge.open(channel, open, up, &mut down, now);
            if let Some(login) = login {
                login.session_started(&down)?;
            }
        }
        Event::AgentForwarding { .. } => {
            if let Some(login) = login {
                login.forwarding(&mut down)?;
            }
        }
        Event::ChannelOpened { channel } => match login {
            Some(login) if login.owns(channel) => login.opened(&mut down, now)?,
            _ => link.bridge.down_opened(channel, up),
        },
        Event::ChannelOpenFailed { channel, code, text } => match login {
            Some(login) if login.owns(channel) => login.channel_gone()?,
            _ => link.bridge.down_open_failed(channel, code, &text, up),
        },
        Event::ChannelEof { channel } | Event::ChannelClosed { channel }
            if login.as_ref().is_some_and(|l| l.owns(channel)) =>
        {
            if let Some(login) = login {
                login.channel_gone()?;
            }
        }
        Event::OpenBackend { channel, host, port, originator, originator_port } => {
            let open = Open::DirectTcpip { host, port, originator, originator_port };
            link.bridge.open(channel, open, up, &mut down, now);
        }
        Event::WindowChange { channel, size } => {
            if let Some(r) = down.recs.get(channel) {
                r.resize(size.cols, size.rows);
            }
            link.bridge.resize(channel, size, up)
        }
        Event::Signal { channel, name } => link.bridge.signal(channel, &name, up),
        Event::Break { channel, ms } => link.bridge.send_break(channel, ms, up),
        Event::Eow { channel } => link.bridge.down_eow(channel, up),
        Event::ChannelEof { channel } => link.bridge.down_eof(channel),
        Event::ChannelClosed { channel } => {
            down.recs.end(channel);
            link.bridge.down_closed(channel, up)
        }
        Event::OpenUnixBackend { channel, path } => {
            link.bridge.open(channel, Open::DirectStreamlocal { path }, up, &mut down, now)
        }
        Event::Listen { listener, addr, port } => {
            link.bridge.listen(listener, &addr, port, up, &mut down)
        }
        Event::Unlisten { listener } => link.bridge.unlisten(listener, up),
        // Unix-socket forwarding is not carried: refused.
        Event::ListenUnix { listener, .. } => down.listen_result(listener, Err(())),
        _ => {}
    }
    Ok(())
}
