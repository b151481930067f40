//! A connection's endpoints: backend sockets, remote-forward listeners and session children,
//! wired to the channels of the core that asked for them (the worker's half of the connection
//! protocol).
//!
//! Endpoints live in one worker-level slab; their tokens carry the socket kind, the slab key
//! and a generation, so a late event for a closed endpoint is dropped. An event only records
//! readiness and marks the owning connection; the work happens in [`Endpoints::pump`], which
//! runs in the connection's turn and moves bytes in both directions as far as the windows
//! allow:
//! - client → endpoint: CHANNEL_DATA is offered to the endpoint straight from the decrypted
//!   packet ([`EndpointSink`]); what it does not take waits in `core.inbound(ch)`, in chunks
//!   the sink lends from the worker's pool, and is written from there once the endpoint is
//!   writable again, then `backend_consumed` gives the window back (emptied chunks return to
//!   the pool at the end of the turn).
//! - endpoint → client: at most `send_capacity(ch)` bytes are read into the worker's relay
//!   buffer and handed to `send_data`; with no capacity the endpoint is simply not read (the
//!   kernel's socket buffer fills and TCP pushes back on the backend).
//!
//! Memory per channel is therefore bounded by the channel window on the way in and by the
//! relay buffer plus the connection's output high-water mark on the way out.

pub mod backend;
pub mod child;
pub mod forward_listen;
mod relay;

use crate::connection::msgs::OPEN_CONNECT_FAILED;
use crate::connection::{ChannelId, DataSink, ExitStatus};
use crate::runtime::buffers::BufferPool;
use crate::runtime::conn::{generation_matches, token_of, Conn, Link, SocketKind};
use crate::runtime::core::Core;
use crate::runtime::recording;
use crate::runtime::resolve::{Resolver, Ticket};
use crate::runtime::timers::TimerHeap;
use crate::server::Event;
use backend::{ip_literal, Backend, Phase, Stream};
use child::{ChildProc, Dying, ExecSpec, REAP_MAX};
use forward_listen::{ForwardListener, ACCEPTS_PER_TURN};
use mio::{Interest, Registry};
use relay::{
    accept_forwarded, close_pipes, connect_next, connect_unix, pump_backend, pump_child, Fate,
    Relay,
};
use slab::Slab;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Bytes relayed from endpoints to one connection per turn before others get theirs.
pub const RELAY_BUDGET_PER_TURN: usize = 256 * 1024;
/// The worker's relay buffer: one CHANNEL_DATA's worth at most per read.
pub const RELAY_BUF: usize = 64 * 1024;
/// Pump/flush rounds per connection turn (events from one round can enable the next).
pub const PUMP_ROUNDS: usize = 8;
/// Poll at least this often while children are dying (no SIGCHLD wiring needed).
pub const DYING_POLL: Duration = Duration::from_millis(50);
/// Children being killed at once per worker; past it they are SIGKILLed straight away.
const MAX_DYING: usize = 4096;

pub enum EndpointKind {
    Backend(Backend),
    Listener(ForwardListener),
    Child(Box<ChildProc>),
}

pub struct Endpoint {
    /// The connection's slab key and generation.
    pub owner: (usize, u32),
    pub generation: u32,
    pub kind: EndpointKind,
}

/// Everything the worker keeps for endpoints.
pub struct Endpoints {
    /// The worker's id, for log lines.
    worker: usize,
    /// The worker's registry: endpoint sockets and pipes are registered with its poll.
    registry: Registry,
    pub slab: Slab<Endpoint>,
    next_generation: u32,
    /// Connect deadlines and reap retries: (deadline, endpoint key, endpoint generation).
    pub timers: TimerHeap,
    pub resolver: Resolver,
    pub dying: Vec<Dying>,
    /// Backend and child reads land here (per worker, not per channel).
    pub relay_buf: Vec<u8>,
}

impl Endpoints {
    pub fn new(worker: usize, registry: Registry, resolver: Resolver) -> Self {
        Endpoints {
            worker,
            registry,
            slab: Slab::new(),
            next_generation: 1,
            timers: TimerHeap::new(),
            resolver,
            dying: Vec::new(),
            relay_buf: vec![0; RELAY_BUF],
        }
    }

    fn insert(&mut self, owner: (usize, u32), kind: EndpointKind) -> (usize, u32) {
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1).max(1);
        (self.slab.insert(Endpoint { owner, generation, kind }), generation)
    }

    /// A [`DataSink`] writing client data straight from the decrypted packet to the endpoints
    /// of one connection (`links`), lending pooled chunks from `pool` for what they do not
    /// take (counted in `lent`).
    pub fn sink<'a>(
        &'a mut self,
        links: &'a [(Link, usize)],
        pool: &'a mut BufferPool,
        lent: &'a mut u64,
    ) -> EndpointSink<'a> {
        EndpointSink { links, slab: &mut self.slab, pool, lent }
    }

    /// The earliest endpoint deadline, and the dying-children poll.
    pub fn next_timeout(&self, now: Instant) -> Option<Duration> {
        let t = self.timers.next_deadline().map(|d| d.saturating_duration_since(now));
        if self.dying.is_empty() {
            return t;
        }
        Some(t.map_or(DYING_POLL, |t| t.min(DYING_POLL)))
    }
}

/// Zero-copy path for inbound CHANNEL_DATA: the core offers the bytes while they are still in
/// the connection's input buffer; what an open, writable endpoint takes now is never copied.
/// Errors are left for the next pump to find (it writes again and sees them). What they do
/// not take waits in the channel, in chunks lent from the worker's pool.
pub struct EndpointSink<'a> {
    links: &'a [(Link, usize)],
    slab: &'a mut Slab<Endpoint>,
    pool: &'a mut BufferPool,
    /// Chunks lent (the `sshfront_inbound_buffers_total` counter).
    lent: &'a mut u64,
}

impl DataSink for EndpointSink<'_> {
    fn write(&mut self, channel: ChannelId, data: &[u8]) -> usize {
        let Some(&(_, ekey)) = self.links.iter().find(|(l, _)| *l == Link::Channel(channel)) else {
            return 0;
        };
        match self.slab.get_mut(ekey).map(|e| &mut e.kind) {
            Some(EndpointKind::Backend(b))
                if b.phase == Phase::Open && b.writable && !b.write_shut =>
            {
                b.write_some(data).unwrap_or(0)
            }
            Some(EndpointKind::Child(c)) if c.stdin.is_some() && c.stdin_writable => {
                c.write_stdin(data).unwrap_or(0)
            }
            _ => 0,
        }
    }

    fn inbound_buffer(&mut self, min: usize) -> Option<Vec<u8>> {
        let v = self.pool.checkout_vec(min)?;
        // The chunk is the core's to count now (its `held_bytes`, recharged after the turn).
        self.pool.disown(v.capacity());
        *self.lent += 1;
        Some(v)
    }
}

impl Endpoints {
    /// Readiness for an endpoint token; returns the owning connection to service.
    pub fn endpoint_ready(
        &mut self,
        kind: SocketKind,
        key: usize,
        gen_bits: usize,
        ev: &mio::event::Event,
    ) -> Option<(usize, u32)> {
        let ep = self.slab.get_mut(key)?;
        if !generation_matches(gen_bits, ep.generation) {
            return None;
        }
        let r = ev.is_readable() || ev.is_read_closed() || ev.is_error();
        let w = ev.is_writable() || ev.is_write_closed() || ev.is_error();
        match (&mut ep.kind, kind) {
            (EndpointKind::Backend(b), SocketKind::Backend) => {
                b.readable |= r;
                b.writable |= w;
            }
            (EndpointKind::Listener(l), SocketKind::Listener) => l.readable |= r,
            (EndpointKind::Child(c), SocketKind::ChildStdin) => c.stdin_writable |= w || r,
            (EndpointKind::Child(c), SocketKind::ChildStdout) => c.stdout_readable |= r || w,
            (EndpointKind::Child(c), SocketKind::ChildStderr) => c.stderr_readable |= r || w,
            _ => return None,
        }
        Some(ep.owner)
    }

    /// Channel events of one connection: start, feed and end its endpoints.
    pub fn channel_event<C: Core>(
        &mut self,
        conn: &mut Conn<C>,
        key: usize,
        ev: Event,
        now: Instant,
    ) {
        match ev {
            Event::OpenBackend { channel, host, port, .. } => {
                self.open_backend(conn, key, channel, &host, port, now)
            }
            Event::OpenUnixBackend { channel, path } => {
                self.open_unix_backend(conn, key, channel, &path, now)
            }
            Event::Listen { listener, addr, port } => self.listen(conn, key, listener, &addr, port),
            Event::ListenUnix { listener, path } => self.listen_unix(conn, key, listener, &path),
            Event::Unlisten { listener } => {
                if let Some(ekey) = conn.unlink(Link::Listener(listener)) {
                    self.remove_endpoint(ekey, now);
                }
            }
            Event::Exec { channel, command, subsystem, env, forced_command, pty } => {
                let req = ExecRequest { command, subsystem, env, forced_command, pty };
                self.exec(conn, key, channel, req, now)
            }
            Event::WindowChange { channel, size } => {
                let ep = conn.endpoint(Link::Channel(channel)).and_then(|k| self.slab.get_mut(k));
                if let Some(EndpointKind::Child(c)) = ep.map(|e| &mut e.kind) {
                    c.resize(size);
                    if let Some(r) = c.recording.as_mut() {
                        r.resize(size.cols, size.rows);
                    }
                }
            }
            Event::ChannelReadable { .. } | Event::ChannelWritable { .. } => conn.pump_again = true,
            Event::ChannelEof { channel } => {
                let ep = conn.endpoint(Link::Channel(channel)).and_then(|k| self.slab.get_mut(k));
                match ep.map(|e| &mut e.kind) {
                    Some(EndpointKind::Backend(b)) => b.client_eof = true,
                    Some(EndpointKind::Child(c)) => c.client_eof = true,
                    _ => {}
                }
                conn.pump_again = true;
            }
            Event::ChannelClosed { channel } | Event::ChannelOpenFailed { channel, .. } => {
                if let Some(ekey) = conn.unlink(Link::Channel(channel)) {
                    self.remove_endpoint(ekey, now);
                }
            }
            Event::ChannelOpened { channel } => {
                let ep = conn.endpoint(Link::Channel(channel)).and_then(|k| self.slab.get_mut(k));
                match ep.map(|e| &mut e.kind) {
                    Some(EndpointKind::Backend(b)) if b.phase == Phase::AwaitingOpen => {
                        b.phase = Phase::Open;
                        b.readable = true;
                        b.writable = true;
                    }
                    // Its socket is gone already: end the channel.
                    _ => conn.core.backend_closed(channel),
                }
                conn.pump_again = true;
            }
            other => {
                log::debug!("[w{}#{key}] unexpected event {}", self.worker, other.name())
            }
        }
    }

    /// direct-tcpip: connect at once to an IP literal, else ask the resolver; either way the
    /// whole attempt is bounded by `--connect-timeout`.
    fn open_backend<C: Core>(
        &mut self,
        conn: &mut Conn<C>,
        key: usize,
        channel: ChannelId,
        host: &str,
        port: u16,
        now: Instant,
    ) {
        let deadline = now + conn.gateway.connect_timeout;
        let mut b = Backend::new(channel, Phase::Resolving, None);
        b.deadline = Some(deadline);
        let (ekey, generation) = self.insert((key, conn.generation), EndpointKind::Backend(b));
        conn.links.push((Link::Channel(channel), ekey));
        self.timers.push(deadline, ekey, generation);
        let started = match ip_literal(host, port) {
            Some(addr) => self.connect_addrs(ekey, vec![addr]),
            None => {
                let t = Ticket { endpoint: ekey, generation, upstream: false };
                self.resolver.lookup(t, host, port)
            }
        };
        if let Err(text) = started {
            self.fail_backend(conn, ekey, &format!("{host}:{port}: {text}"), now);
        }
    }

    /// direct-streamlocal: a non-blocking connect to the Unix socket, bounded by
    /// `--connect-timeout` like a TCP backend.
    fn open_unix_backend<C: Core>(
        &mut self,
        conn: &mut Conn<C>,
        key: usize,
        channel: ChannelId,
        path: &str,
        now: Instant,
    ) {
        let deadline = now + conn.gateway.connect_timeout;
        let mut b = Backend::new(channel, Phase::Connecting, None);
        b.deadline = Some(deadline);
        let (ekey, generation) = self.insert((key, conn.generation), EndpointKind::Backend(b));
        conn.links.push((Link::Channel(channel), ekey));
        self.timers.push(deadline, ekey, generation);
        let registry = &self.registry;
        let started = match self.slab.get_mut(ekey).map(|e| &mut e.kind) {
            Some(EndpointKind::Backend(b)) => {
                connect_unix(registry, ekey, generation, b, std::path::Path::new(path))
            }
            _ => Err("gone".into()),
        };
        if let Err(text) = started {
            self.fail_backend(conn, ekey, &text, now);
        }
    }

    /// streamlocal-forward: a Unix listener at `path`, mode 0600, removed when it goes.
    fn listen_unix<C: Core>(
        &mut self,
        conn: &mut Conn<C>,
        key: usize,
        listener: crate::connection::ListenerId,
        path: &str,
    ) {
        let l = match ForwardListener::bind_path(listener, path) {
            Ok(l) => l,
            Err(e) => {
                log::info!(
                    "[w{}#{key}] {}: streamlocal-forward {path} failed: {e}",
                    self.worker,
                    conn.peer
                );
                conn.core.listen_result(listener, Err(()));
                return;
            }
        };
        self.add_listener(conn, key, l, path);
    }

    /// Starts a non-blocking connect to the first address that accepts one; the others are
    /// kept for when it fails.
    fn connect_addrs(&mut self, ekey: usize, mut addrs: Vec<SocketAddr>) -> Result<(), String> {
        let Some(ep) = self.slab.get_mut(ekey) else {
            return Err("gone".into());
        };
        let generation = ep.generation;
        let EndpointKind::Backend(b) = &mut ep.kind else {
            return Err("not a backend".into());
        };
        addrs.reverse(); // pop() from the front of the original order
        b.more_addrs = addrs;
        connect_next(&self.registry, ekey, generation, b)
    }

    /// CHANNEL_OPEN_FAILURE (connect failed) and the endpoint is gone.
    fn fail_backend<C: Core>(&mut self, conn: &mut Conn<C>, ekey: usize, text: &str, now: Instant) {
        if let Some(EndpointKind::Backend(b)) = self.slab.get(ekey).map(|e| &e.kind) {
            let ch = b.channel;
            log::info!(event = "backend_connect_failed", worker = self.worker, peer:% = conn.peer,
                user = conn.user.as_deref(), reason = text;
                "[w{}] {}: backend connect failed: {text}", self.worker, conn.peer);
            conn.core.backend_failed(ch, OPEN_CONNECT_FAILED, text);
            conn.unlink(Link::Channel(ch));
        }
        self.remove_endpoint(ekey, now);
    }

    fn listen<C: Core>(
        &mut self,
        conn: &mut Conn<C>,
        key: usize,
        listener: crate::connection::ListenerId,
        addr: &str,
        port: u16,
    ) {
        let bound = ForwardListener::bind(listener, addr, port).and_then(|l| Ok((l.port()?, l)));
        let (port, l) = match bound {
            Ok(x) => x,
            Err(e) => {
                log::info!(
                    event = "forward_listen_failed", worker = self.worker, conn = key,
                    peer:% = conn.peer, reason:% = e;
                    "[w{}#{key}] {}: tcpip-forward {addr}:{port} failed: {e}",
                    self.worker,
                    conn.peer
                );
                conn.core.listen_result(listener, Err(()));
                return;
            }
        };
        self.add_listener(conn, key, l, &format!("{addr}:{port}"));
    }

    /// Registers a bound forward listener and reports success to the core.
    fn add_listener<C: Core>(
        &mut self,
        conn: &mut Conn<C>,
        key: usize,
        l: ForwardListener,
        what: &str,
    ) {
        let listener = l.id;
        let port = l.port().unwrap_or(0);
        let (ekey, generation) = self.insert((key, conn.generation), EndpointKind::Listener(l));
        let registered = match self.slab.get_mut(ekey).map(|e| &mut e.kind) {
            Some(EndpointKind::Listener(l)) => self
                .registry
                .register(
                    &mut l.listener,
                    token_of(SocketKind::Listener, ekey, generation),
                    Interest::READABLE,
                )
                .is_ok(),
            _ => false,
        };
        if !registered {
            self.slab.try_remove(ekey);
            conn.core.listen_result(listener, Err(()));
            return;
        }
        log::info!(event = "forward_listen", worker = self.worker, conn = key, peer:% = conn.peer;
            "[w{}#{key}] {}: listening on {what} (-R)", self.worker, conn.peer);
        conn.links.push((Link::Listener(listener), ekey));
        conn.core.listen_result(listener, Ok(port));
        conn.pump_again = true;
    }

    /// exec / shell / subsystem: the key's `command=`, else `--session-command`, else with
    /// `--allow-exec` the request itself; with none of them, a message on stderr and status 1.
    /// A subsystem (already checked against `--subsystem` by the core) runs its configured
    /// command, unless `command=` or `--session-command` replaces it, as sshd's ForceCommand
    /// does (with the subsystem's command in SSH_ORIGINAL_COMMAND).
    fn exec<C: Core>(
        &mut self,
        conn: &mut Conn<C>,
        key: usize,
        channel: ChannelId,
        req: ExecRequest,
        now: Instant,
    ) {
        let configured =
            req.forced_command.clone().or_else(|| conn.gateway.session_command.clone());
        let (command, original) = match configured {
            Some(c) => (Some(c), req.command.clone()),
            None if req.subsystem.is_some() => (req.command.clone(), None),
            None if !conn.gateway.allow_exec => {
                return refuse_exec(
                    conn,
                    channel,
                    "sshfront: this server runs no commands (no --session-command or --allow-exec)\n",
                    now,
                );
            }
            None => (req.command.clone(), None),
        };
        let local =
            conn.socket.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let user = conn.user.clone().unwrap_or_default();
        let spec = ExecSpec {
            command: command.as_deref(),
            original_command: original.as_deref(),
            user: &user,
            peer: conn.peer,
            local,
            env: &req.env,
            set_env: &conn.gateway.set_env,
            pty: req.pty.as_ref(),
        };
        let mut proc = match child::spawn(channel, &spec) {
            Ok(p) => p,
            Err(e) => {
                let msg = format!("sshfront: cannot start the command: {e}\n");
                return refuse_exec(conn, channel, &msg, now);
            }
        };
        if let (Some(dir), Some(pty)) = (&conn.gateway.record_dir, &req.pty) {
            let header = crate::proxy::recording::Header {
                width: pty.size.cols,
                height: pty.size.rows,
                user: user.clone(),
                term: Some(pty.term.clone()),
                command: command.clone(),
                ..Default::default()
            };
            proc.recording = recording::start(dir, conn.gateway.record_max_bytes, header);
        }
        log::info!(
            event = "exec_started", worker = self.worker, conn = key, peer:% = conn.peer,
            user = user.as_str(), pid = proc.child.id();
            "[w{}#{key}] {}: started pid {} for user={user:?}",
            self.worker,
            conn.peer,
            proc.child.id()
        );
        let (ekey, generation) =
            self.insert((key, conn.generation), EndpointKind::Child(Box::new(proc)));
        conn.links.push((Link::Channel(channel), ekey));
        let registry = &self.registry;
        if let Some(EndpointKind::Child(c)) = self.slab.get_mut(ekey).map(|e| &mut e.kind) {
            // A pipe that cannot be registered is dropped: as if the child had closed it.
            if let Some(p) = c.stdin.as_mut() {
                let t = token_of(SocketKind::ChildStdin, ekey, generation);
                if registry.register(p, t, Interest::WRITABLE).is_err() {
                    c.stdin = None;
                }
            }
            if let Some(p) = c.stdout.as_mut() {
                let t = token_of(SocketKind::ChildStdout, ekey, generation);
                if registry.register(p, t, Interest::READABLE).is_err() {
                    c.stdout = None;
                }
            }
            if let Some(p) = c.stderr.as_mut() {
                let t = token_of(SocketKind::ChildStderr, ekey, generation);
                if registry.register(p, t, Interest::READABLE).is_err() {
                    c.stderr = None;
                }
            }
        }
        conn.pump_again = true;
    }

    /// Moves bytes between the connection's channels and its endpoints; bytes copied on the
    /// way (not zero-copy) are added to `copied`. Returns (progress, more to do: the per-turn
    /// budget ran out or a listener has more to accept).
    pub fn pump<C: Core>(
        &mut self,
        conn: &mut Conn<C>,
        key: usize,
        now: Instant,
        copied: &mut u64,
    ) -> (bool, bool) {
        if conn.closing || conn.core.is_closed() {
            return (false, false); // nothing more goes out; teardown follows the flush
        }
        let mut budget = RELAY_BUDGET_PER_TURN;
        let mut progress = false;
        let mut more = false;
        let mut failed: Vec<(usize, Fate)> = Vec::new();
        let mut accepted: Vec<(ChannelId, Stream)> = Vec::new();
        let registry = &self.registry;
        let mut i = 0;
        while let Some(&(_, ekey)) = conn.links.get(i) {
            i += 1;
            let Some(ep) = self.slab.get_mut(ekey) else { continue };
            let generation = ep.generation;
            let mut relay = Relay {
                buf: &mut self.relay_buf,
                budget: &mut budget,
                progress: &mut progress,
                copied: &mut *copied,
                now,
            };
            match &mut ep.kind {
                EndpointKind::Backend(b) => {
                    let fate = pump_backend(conn, b, registry, ekey, generation, &mut relay);
                    if !matches!(fate, Fate::Keep) {
                        failed.push((ekey, fate));
                    }
                }
                EndpointKind::Child(c) => {
                    if let Some(at) = pump_child(conn, c, registry, &mut relay) {
                        self.timers.push(at, ekey, generation);
                    }
                }
                EndpointKind::Listener(l) => {
                    let n = accept_forwarded(conn, l, &mut accepted);
                    progress |= n > 0;
                    more |= l.readable && n == ACCEPTS_PER_TURN;
                }
            }
        }
        more |= budget == 0;
        for (ekey, fate) in failed {
            match fate {
                Fate::Keep => {}
                Fate::ConnectFailed(text) => self.fail_backend(conn, ekey, &text, now),
                Fate::Failed => {
                    if let Some(EndpointKind::Backend(b)) = self.slab.get(ekey).map(|e| &e.kind) {
                        let ch = b.channel;
                        conn.core.backend_closed(ch);
                        conn.unlink(Link::Channel(ch));
                    }
                    self.remove_endpoint(ekey, now);
                }
            }
        }
        for (ch, stream) in accepted {
            self.add_forwarded(conn, key, ch, stream, now);
        }
        (progress, more)
    }

    /// An accepted socket waits, registered, for the client to confirm its channel.
    fn add_forwarded<C: Core>(
        &mut self,
        conn: &mut Conn<C>,
        key: usize,
        ch: ChannelId,
        stream: Stream,
        now: Instant,
    ) {
        let mut b = Backend::new(ch, Phase::AwaitingOpen, Some(stream));
        b.readable = false;
        b.writable = false;
        let (ekey, generation) = self.insert((key, conn.generation), EndpointKind::Backend(b));
        conn.links.push((Link::Channel(ch), ekey));
        let registered = match self.slab.get_mut(ekey).map(|e| &mut e.kind) {
            Some(EndpointKind::Backend(Backend { stream: Some(s), .. })) => self
                .registry
                .register(
                    s,
                    token_of(SocketKind::Backend, ekey, generation),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .is_ok(),
            _ => false,
        };
        if !registered {
            // ChannelOpened will find no endpoint and close the channel.
            conn.unlink(Link::Channel(ch));
            self.remove_endpoint(ekey, now);
        }
    }

    /// Drops an endpoint: sockets closed, a child still running is signalled and reaped later.
    pub fn remove_endpoint(&mut self, ekey: usize, now: Instant) {
        let Some(ep) = self.slab.try_remove(ekey) else { return };
        let registry = &self.registry;
        match ep.kind {
            EndpointKind::Backend(mut b) => {
                if let Some(s) = b.stream.as_mut() {
                    let _ = registry.deregister(s);
                }
            }
            EndpointKind::Listener(mut l) => {
                let _ = registry.deregister(&mut l.listener);
            }
            EndpointKind::Child(mut c) => {
                close_pipes(&mut c, registry);
                if c.reported || matches!(c.child.try_wait(), Ok(Some(_)) | Err(_)) {
                    return;
                }
                let dying = Dying::start(c.child, now);
                self.dying.push(dying);
                if self.dying.len() > MAX_DYING {
                    for d in &mut self.dying {
                        d.kill_at = now;
                    }
                }
            }
        }
    }

    /// The connection is gone: all its endpoints go with it.
    pub fn teardown<C: Core>(&mut self, conn: &mut Conn<C>, now: Instant) {
        for (_, ekey) in std::mem::take(&mut conn.links) {
            self.remove_endpoint(ekey, now);
        }
    }

    /// Connect timeouts and child reap retries that are due; owners to service go to `touched`.
    pub fn endpoint_timers<C: Core>(
        &mut self,
        conns: &mut Slab<Conn<C>>,
        now: Instant,
        touched: &mut Vec<(usize, u32)>,
    ) {
        let slab = &self.slab;
        let due = self
            .timers
            .expired(now, |e| slab.get(e.key).is_some_and(|x| x.generation == e.generation));
        for e in due {
            let Some(ep) = self.slab.get_mut(e.key) else { continue };
            let owner = ep.owner;
            let Some(conn) = conns.get_mut(owner.0).filter(|c| c.generation == owner.1) else {
                continue;
            };
            match &mut ep.kind {
                EndpointKind::Backend(b) => {
                    let waiting = matches!(b.phase, Phase::Resolving | Phase::Connecting);
                    if waiting && b.deadline.is_some_and(|d| d <= now) {
                        self.fail_backend(conn, e.key, "connect timed out", now);
                    }
                }
                EndpointKind::Child(c) => {
                    if c.reap_at.is_some_and(|d| d <= now) {
                        c.reap_at = None;
                        c.reap_step = (c.reap_step * 2).min(REAP_MAX);
                    }
                }
                EndpointKind::Listener(_) => {}
            }
            touched.push(owner);
        }
    }

    /// Finished name lookups: connect, or fail the channel open. Stops at an answer for an
    /// upstream link and returns it (the worker's to deliver); `None` once all are handled.
    pub fn resolver_answers<C: Core>(
        &mut self,
        conns: &mut Slab<Conn<C>>,
        now: Instant,
        touched: &mut Vec<(usize, u32)>,
    ) -> Option<super::resolve::Answer> {
        while let Some(a) = self.resolver.try_recv() {
            if a.ticket.upstream {
                // An upstream link's lookup: the worker hands it to the connection.
                return Some(a);
            }
            let Some(ep) = self.slab.get(a.ticket.endpoint) else { continue };
            if ep.generation != a.ticket.generation {
                continue;
            }
            if !matches!(&ep.kind, EndpointKind::Backend(b) if b.phase == Phase::Resolving) {
                continue;
            }
            let owner = ep.owner;
            let Some(conn) = conns.get_mut(owner.0).filter(|c| c.generation == owner.1) else {
                continue;
            };
            let started = a.result.and_then(|addrs| self.connect_addrs(a.ticket.endpoint, addrs));
            if let Err(text) = started {
                self.fail_backend(conn, a.ticket.endpoint, &text, now);
            }
            touched.push(owner);
        }
        None
    }

    /// Reaps children being killed; SIGKILL for those past their grace.
    pub fn reap_dying(&mut self, now: Instant) {
        if !self.dying.is_empty() {
            self.dying.retain_mut(|d| !d.poll(now));
        }
    }

    /// Worker exit: give dying children a moment, then SIGKILL and reap them (bounded).
    pub fn reap_all_on_exit(&mut self) {
        let start = Instant::now();
        while !self.dying.is_empty() && start.elapsed() < Duration::from_secs(1) {
            let now = Instant::now();
            if now.duration_since(start) > Duration::from_millis(300) {
                for d in &mut self.dying {
                    d.kill_at = now;
                }
            }
            self.reap_dying(now);
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The parts of an exec request the runtime decides on.
struct ExecRequest {
    command: Option<String>,
    subsystem: Option<String>,
    env: Vec<(String, String)>,
    forced_command: Option<String>,
    pty: Option<crate::connection::Pty>,
}

/// No command to run: say why on stderr and end the session with status 1.
fn refuse_exec<C: Core>(conn: &mut Conn<C>, channel: ChannelId, msg: &str, now: Instant) {
    conn.core.send_stderr(channel, msg.as_bytes(), now);
    conn.core.child_exited(channel, ExitStatus::Code(1));
}
