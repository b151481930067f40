//! The session proxy's channel map: each downstream channel (the user's, on the
//! `ServerConnection`) is carried by one upstream channel (ours, on the `ClientConnection`),
//! and this module holds the coupling rules between the two. Sans-IO: both cores are reached
//! through the small [`Down`] and [`Up`] traits, so the rules are tested without sockets.
//!
//! Flow control is end to end and needs no buffer of its own:
//! - downstream → upstream: the user's bytes wait in the server core's `inbound` (bounded by
//!   the window we granted) and are marked consumed only when the upstream channel took them,
//!   so the user's window grows back exactly as fast as the upstream drains;
//! - upstream → downstream: the upstream's bytes wait in the client core's `stdout`/`stderr`
//!   (bounded by the window we granted upstream) and are consumed only as the downstream
//!   channel takes them, so a slow user reader slows the upstream.
//!
//! What the proxy holds is therefore bounded by the two windows per channel.
//!
//! Agent forwarding: a session the user forwarded the agent on (`ssh -A`) asks the upstream
//! for it too, and each `auth-agent@openssh.com` channel the upstream then opens is paired with
//! a new agent channel to the user, like a forwarded-tcpip channel (never before we asked).
//!
//! Ordering: the upstream's EOF is passed on once everything it sent before has been; its
//! exit-status / exit-signal is kept and sent with the downstream CLOSE once the upstream
//! channel has closed (after its data), as a local session sends it when its child ends. The
//! user's EOF goes upstream once the bytes before it have.

use crate::client::{ClientChannel, ClientConnection, UseError};
use crate::connection::msgs::{
    WinSize, OPEN_ADMINISTRATIVELY_PROHIBITED, OPEN_CONNECT_FAILED, OPEN_RESOURCE_SHORTAGE,
};
use crate::connection::{ChannelId, ExitStatus, ListenerId, Pty};
use std::time::Instant;

/// Exit status reported for a session the proxy had to end itself (as ssh does for its own
/// errors).
pub const PROXY_EXIT_CODE: u32 = 255;

/// Channel bytes one `pump` moves each way, over all pairs: what the pooled output buffer the
/// worker lends each core holds with room for the packet framing, so a pump never makes a
/// staged batch outgrow (and copy) its buffer. The worker pumps again while bytes move.
pub const PUMP_BUDGET: usize = 256 * 1024;

/// The downstream side: the server core's channel mutators the bridge uses.
pub trait Down {
    /// User bytes waiting for the upstream.
    fn inbound(&self, ch: ChannelId) -> &[u8];
    /// `n` bytes of `inbound` went upstream: the user's window grows back by that much.
    fn consumed(&mut self, ch: ChannelId, n: usize) -> usize;
    fn send_data(&mut self, ch: ChannelId, data: &[u8], now: Instant) -> usize;
    fn send_stderr(&mut self, ch: ChannelId, data: &[u8], now: Instant) -> usize;
    fn eof(&mut self, ch: ChannelId);
    /// EOF (if not sent) then CLOSE.
    fn closed(&mut self, ch: ChannelId);
    /// exit-status / exit-signal, EOF, CLOSE (sessions).
    fn exited(&mut self, ch: ChannelId, status: ExitStatus);
    /// eow@openssh.com: the upstream reads no more of this session's data.
    fn send_eow(&mut self, ch: ChannelId);
    /// direct-tcpip: the upstream opened it.
    fn opened(&mut self, ch: ChannelId);
    /// direct-tcpip: the upstream refused it.
    fn open_failed(&mut self, ch: ChannelId, code: u32, text: &str);
    /// tcpip-forward: the upstream listens on this port (or refused).
    fn listen_result(&mut self, listener: ListenerId, result: Result<u16, ()>);
    /// forwarded-tcpip: a connection came in on the upstream's listener; open the channel to
    /// the user.
    fn forwarded(
        &mut self,
        listener: ListenerId,
        originator: &str,
        originator_port: u16,
    ) -> Option<ChannelId>;
    /// The user forwarded an agent (`ssh -A`) on a session that is still open.
    fn agent_requested(&self) -> bool;
    /// Opens an `auth-agent@openssh.com` channel to the user's agent; `None` when it was not
    /// forwarded (or is not allowed) or the channel table is full.
    fn open_agent(&mut self) -> Option<ChannelId>;
}

/// The upstream side: what the bridge asks of the client core.
pub trait Up {
    fn open_session(&mut self) -> Result<ClientChannel, UseError>;
    fn open_direct_tcpip(
        &mut self,
        target: (&str, u16),
        originator: (&str, u16),
    ) -> Result<ClientChannel, UseError>;
    fn open_direct_streamlocal(&mut self, path: &str) -> Result<ClientChannel, UseError>;
    fn request_pty(&mut self, ch: ClientChannel, pty: &Pty);
    fn request_env(&mut self, ch: ClientChannel, name: &str, value: &[u8]);
    fn request_start(&mut self, ch: ClientChannel, start: &Start);
    fn window_change(&mut self, ch: ClientChannel, size: WinSize);
    fn signal(&mut self, ch: ClientChannel, name: &str);
    fn send_break(&mut self, ch: ClientChannel, ms: u32);
    fn send_eow(&mut self, ch: ClientChannel);
    fn stdout(&self, ch: ClientChannel) -> &[u8];
    fn stderr(&self, ch: ClientChannel) -> &[u8];
    fn consume(&mut self, ch: ClientChannel, n: usize) -> usize;
    fn consume_stderr(&mut self, ch: ClientChannel, n: usize) -> usize;
    fn send_data(&mut self, ch: ClientChannel, data: &[u8]) -> usize;
    fn send_eof(&mut self, ch: ClientChannel);
    fn close_channel(&mut self, ch: ClientChannel);
    fn tcpip_forward(&mut self, addr: &str, port: u16) -> bool;
    fn cancel_tcpip_forward(&mut self, addr: &str, port: u16);
    fn accept_channel(&mut self, ch: ClientChannel);
    fn reject_channel(&mut self, ch: ClientChannel, code: u32, text: &str);
    /// auth-agent-req@openssh.com on a session (no reply wanted).
    fn request_agent(&mut self, ch: ClientChannel);
}

/// How a session starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    Shell,
    Exec(String),
    Subsystem(String),
}

impl Start {
    fn name(&self) -> &'static str {
        match self {
            Start::Shell => "shell",
            Start::Exec(_) => "exec",
            Start::Subsystem(_) => "subsystem",
        }
    }
}

/// What a downstream channel asked for, replayed upstream once its channel is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Open {
    Session {
        start: Start,
        pty: Option<Pty>,
        env: Vec<(String, String)>,
        /// The user forwarded an agent on this session: the upstream session asks too.
        agent: bool,
    },
    DirectTcpip {
        host: String,
        port: u16,
        originator: String,
        originator_port: u16,
    },
    /// direct-streamlocal@openssh.com: the upstream's Unix socket.
    DirectStreamlocal {
        path: String,
    },
    /// forwarded-tcpip or auth-agent: the upstream opened it to us; the user's side is being
    /// opened.
    Forwarded,
}

/// A remote forward (tcpip-forward) carried upstream.
#[derive(Debug)]
struct Listen {
    id: ListenerId,
    addr: String,
    port: u16,
    /// Sent upstream (its reply is awaited or came).
    sent: bool,
    /// The port the upstream listens on.
    bound: Option<u16>,
}

#[derive(Debug)]
struct Pair {
    down: ChannelId,
    up: Option<ClientChannel>,
    /// What to replay once the upstream channel is open; `None` after it was.
    open: Option<Open>,
    session: bool,
    /// The upstream confirmed the channel.
    up_open: bool,
    /// The user sent EOF; it goes upstream once `inbound` is empty.
    down_eof: bool,
    up_eof_sent: bool,
    /// The upstream sent EOF; it goes to the user once its bytes have.
    up_eof: bool,
    down_eof_sent: bool,
    exit: Option<ExitStatus>,
    /// The user sent eow@openssh.com before the upstream session started: sent after it.
    eow_pending: bool,
}

impl Pair {
    fn new(down: ChannelId, open: Open) -> Pair {
        Pair {
            down,
            up: None,
            session: matches!(open, Open::Session { .. }),
            open: Some(open),
            up_open: false,
            down_eof: false,
            up_eof_sent: false,
            up_eof: false,
            down_eof_sent: false,
            exit: None,
            eow_pending: false,
        }
    }
}

/// One proxied connection's channel map.
#[derive(Debug, Default)]
pub struct Bridge {
    pairs: Vec<Pair>,
    /// Remote forwards (bounded by the server core's listener limit).
    listens: Vec<Listen>,
    /// tcpip-forward requests sent upstream, oldest first (replies come in order).
    forward_replies: std::collections::VecDeque<ListenerId>,
    /// The upstream is logged in: channels open there at once.
    ready: bool,
    /// The upstream failed with this text: new channels fail at once.
    failed: Option<String>,
    /// auth-agent-req went upstream: the upstream may open agent channels to the user's agent
    /// (never before, so an upstream cannot reach an agent the user did not forward to it).
    agent_asked: bool,
}

impl Bridge {
    pub fn new() -> Self {
        Self::default()
    }

    /// Channels mapped (open or opening on either side).
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Whether a channel was ever opened upstream (decides DISCONNECT vs session stderr for a
    /// failure is the caller's; this tells whether any session is mapped at all).
    pub fn has_sessions(&self) -> bool {
        self.pairs.iter().any(|p| p.session)
    }

    fn find_down(&mut self, ch: ChannelId) -> Option<usize> {
        self.pairs.iter().position(|p| p.down == ch)
    }

    fn find_up(&mut self, ch: ClientChannel) -> Option<usize> {
        self.pairs.iter().position(|p| p.up == Some(ch))
    }

    /// A downstream channel wants carrying: a session that just started (exec, shell,
    /// subsystem; the pty and env requests before it are in `open`) or a direct-tcpip.
    pub fn open(
        &mut self,
        down: ChannelId,
        open: Open,
        up: &mut dyn Up,
        d: &mut dyn Down,
        now: Instant,
    ) {
        if let Some(text) = self.failed.clone() {
            fail_pair(&Pair::new(down, open), &text, d, now);
            return;
        }
        self.pairs.push(Pair::new(down, open));
        if self.ready {
            let i = self.pairs.len() - 1;
            self.start(i, up, d, now);
        }
    }

    /// The upstream is logged in: open every channel that waited.
    pub fn ready(&mut self, up: &mut dyn Up, d: &mut dyn Down, now: Instant) {
        self.ready = true;
        for l in &mut self.listens {
            send_listen(l, up, &mut self.forward_replies, d);
        }
        let mut i = 0;
        while i < self.pairs.len() {
            let before = self.pairs.len();
            self.start(i, up, d, now);
            if self.pairs.len() == before {
                i += 1;
            }
        }
    }

    /// Opens pair `i` upstream (once); on a local refusal the pair fails and is removed.
    fn start(&mut self, i: usize, up: &mut dyn Up, d: &mut dyn Down, now: Instant) {
        let Some(p) = self.pairs.get_mut(i) else { return };
        if p.up.is_some() {
            return;
        }
        let r = match &p.open {
            Some(Open::Session { .. }) => up.open_session(),
            Some(Open::DirectTcpip { host, port, originator, originator_port }) => {
                up.open_direct_tcpip((host, *port), (originator, *originator_port))
            }
            Some(Open::DirectStreamlocal { path }) => up.open_direct_streamlocal(path),
            Some(Open::Forwarded) | None => return,
        };
        match r {
            Ok(ch) => p.up = Some(ch),
            Err(e) => {
                let p = self.pairs.remove(i);
                fail_pair(&p, &format!("upstream channel: {e}"), d, now);
            }
        }
    }

    /// The upstream confirmed a channel: replay the session's requests, or tell the user the
    /// direct-tcpip is open.
    pub fn up_opened(&mut self, ch: ClientChannel, up: &mut dyn Up, d: &mut dyn Down) {
        let Some(i) = self.find_up(ch) else {
            // Its downstream channel went while the open was in flight.
            up.close_channel(ch);
            return;
        };
        let Some(p) = self.pairs.get_mut(i) else { return };
        p.up_open = true;
        match p.open.take() {
            Some(Open::Session { start, pty, env, agent }) => {
                // OpenSSH's order: the agent first, so the shell sees SSH_AUTH_SOCK.
                if agent {
                    up.request_agent(ch);
                    self.agent_asked = true;
                }
                if let Some(pty) = pty {
                    up.request_pty(ch, &pty);
                }
                for (k, v) in &env {
                    up.request_env(ch, k, v.as_bytes());
                }
                up.request_start(ch, &start);
                if std::mem::take(&mut p.eow_pending) {
                    up.send_eow(ch);
                }
                // The start request is kept for its refusal text.
                p.open = Some(Open::Session { start, pty: None, env: Vec::new(), agent: false });
            }
            Some(Open::DirectTcpip { .. } | Open::DirectStreamlocal { .. }) => d.opened(p.down),
            Some(Open::Forwarded) | None => {}
        }
    }

    /// The upstream refused a channel.
    pub fn up_open_failed(
        &mut self,
        ch: ClientChannel,
        code: u32,
        text: &str,
        d: &mut dyn Down,
        now: Instant,
    ) {
        let Some(i) = self.find_up(ch) else { return };
        let p = self.pairs.remove(i);
        if p.session {
            let msg = format!("sshfront: upstream refused the session: {text}\r\n");
            d.send_stderr(p.down, msg.as_bytes(), now);
            d.exited(p.down, ExitStatus::Code(PROXY_EXIT_CODE));
        } else {
            d.open_failed(p.down, code, text);
        }
    }

    /// The reply to a request: a refused exec / shell / subsystem ends the session with a
    /// message (the user was told "success" when it started downstream).
    pub fn up_request_done(
        &mut self,
        ch: ClientChannel,
        request: &str,
        ok: bool,
        up: &mut dyn Up,
        d: &mut dyn Down,
        now: Instant,
    ) {
        if ok || !matches!(request, "exec" | "shell" | "subsystem") {
            return;
        }
        let Some(i) = self.find_up(ch) else { return };
        let Some(p) = self.pairs.get_mut(i) else { return };
        let what = match &p.open {
            Some(Open::Session { start: Start::Subsystem(s), .. }) => format!("subsystem {s}"),
            Some(Open::Session { start, .. }) => start.name().to_string(),
            _ => request.to_string(),
        };
        let msg = format!("sshfront: the upstream refused the {what} request\r\n");
        d.send_stderr(p.down, msg.as_bytes(), now);
        p.exit = Some(ExitStatus::Code(PROXY_EXIT_CODE));
        up.close_channel(ch);
    }

    pub fn up_exit(&mut self, ch: ClientChannel, status: ExitStatus) {
        if let Some(i) = self.find_up(ch) {
            if let Some(p) = self.pairs.get_mut(i) {
                p.exit = Some(status);
            }
        }
    }

    /// The upstream sent EOF: passed on once its bytes are (`pump`).
    pub fn up_eof(&mut self, ch: ClientChannel) {
        if let Some(i) = self.find_up(ch) {
            if let Some(p) = self.pairs.get_mut(i) {
                p.up_eof = true;
            }
        }
    }

    /// The upstream channel is gone (its CLOSE came and its bytes were taken): end the user's
    /// channel with the exit status it reported.
    pub fn up_closed(&mut self, ch: ClientChannel, d: &mut dyn Down) {
        let Some(i) = self.find_up(ch) else { return };
        let p = self.pairs.remove(i);
        match (p.session, p.exit) {
            (true, Some(status)) => d.exited(p.down, status),
            _ => d.closed(p.down),
        }
    }

    /// The user sent EOF: goes upstream once `inbound` is drained (`pump`).
    pub fn down_eof(&mut self, ch: ChannelId) {
        if let Some(i) = self.find_down(ch) {
            if let Some(p) = self.pairs.get_mut(i) {
                p.down_eof = true;
            }
        }
    }

    /// The user's channel is gone: close the upstream one (what it still sends is dropped).
    pub fn down_closed(&mut self, ch: ChannelId, up: &mut dyn Up) {
        let Some(i) = self.find_down(ch) else { return };
        let p = self.pairs.remove(i);
        if let (Some(u), true) = (p.up, p.up_open) {
            up.close_channel(u);
        }
        // Not confirmed yet: `up_opened` finds no pair and closes it then.
    }

    /// window-change: passed on at once when the upstream session is open, else folded into
    /// the pty-req still to be sent.
    pub fn resize(&mut self, ch: ChannelId, size: WinSize, up: &mut dyn Up) {
        let Some(i) = self.find_down(ch) else { return };
        let Some(p) = self.pairs.get_mut(i) else { return };
        match (&mut p.open, p.up) {
            (Some(Open::Session { pty: Some(pty), .. }), _) => pty.size = size,
            (_, Some(u)) if p.up_open => up.window_change(u, size),
            _ => {}
        }
    }

    /// signal / break from the user: passed on when the upstream session is open (before
    /// that there is nothing running to signal).
    pub fn signal(&mut self, ch: ChannelId, name: &str, up: &mut dyn Up) {
        if let Some(u) = self.open_up(ch) {
            up.signal(u, name);
        }
    }

    pub fn send_break(&mut self, ch: ChannelId, ms: u32, up: &mut dyn Up) {
        if let Some(u) = self.open_up(ch) {
            up.send_break(u, ms);
        }
    }

    /// eow@openssh.com from the user (it reads no more output): passed on at once, or after
    /// the upstream session started.
    pub fn down_eow(&mut self, ch: ChannelId, up: &mut dyn Up) {
        if let Some(u) = self.open_up(ch) {
            up.send_eow(u);
        } else if let Some(p) = self.find_down(ch).and_then(|i| self.pairs.get_mut(i)) {
            p.eow_pending = p.session;
        }
    }

    /// eow@openssh.com from the upstream (it reads no more input): passed to the user at once;
    /// what the user still sends is the upstream's to drop.
    pub fn up_eow(&mut self, ch: ClientChannel, d: &mut dyn Down) {
        if let Some(p) = self.find_up(ch).and_then(|i| self.pairs.get(i)) {
            if p.session {
                d.send_eow(p.down);
            }
        }
    }

    fn open_up(&mut self, ch: ChannelId) -> Option<ClientChannel> {
        let i = self.find_down(ch)?;
        self.pairs.get(i).filter(|p| p.up_open).and_then(|p| p.up)
    }

    /// Moves bytes both ways as far as the windows allow, and EOFs after them. Returns whether
    /// anything moved.
    pub fn pump(&mut self, up: &mut dyn Up, d: &mut dyn Down, now: Instant) -> bool {
        let mut progress = false;
        let (mut to_up, mut to_down) = (PUMP_BUDGET, PUMP_BUDGET);
        for p in &mut self.pairs {
            let Some(u) = p.up.filter(|_| p.up_open) else { continue };
            // User → upstream.
            if !p.up_eof_sent {
                // The waiting bytes come a contiguous run at a time (pooled chunks).
                loop {
                    let data = d.inbound(p.down);
                    let data = data.get(..data.len().min(to_up)).unwrap_or_default();
                    let len = data.len();
                    let n = if len == 0 { 0 } else { up.send_data(u, data).min(len) };
                    if n == 0 {
                        break;
                    }
                    d.consumed(p.down, n);
                    to_up -= n;
                    progress = true;
                    if n < len {
                        break;
                    }
                }
                if p.down_eof && d.inbound(p.down).is_empty() {
                    up.send_eof(u);
                    p.up_eof_sent = true;
                    progress = true;
                }
            }
            // Upstream → user.
            let out = up.stdout(u);
            let out = out.get(..out.len().min(to_down)).unwrap_or_default();
            if !out.is_empty() {
                let n = d.send_data(p.down, out, now).min(out.len());
                if n > 0 {
                    up.consume(u, n);
                    to_down -= n;
                    progress = true;
                }
            }
            let err = up.stderr(u);
            let err = err.get(..err.len().min(to_down)).unwrap_or_default();
            if !err.is_empty() {
                let n = d.send_stderr(p.down, err, now).min(err.len());
                if n > 0 {
                    up.consume_stderr(u, n);
                    to_down -= n;
                    progress = true;
                }
            }
            if p.up_eof && !p.down_eof_sent && up.stdout(u).is_empty() && up.stderr(u).is_empty() {
                d.eof(p.down);
                p.down_eof_sent = true;
                progress = true;
            }
        }
        progress
    }

    /// The upstream connection failed or ended: every carried channel ends with `text` (on a
    /// session's stderr, or as the direct-tcpip's open failure), and so do channels opened
    /// from now on.
    pub fn fail(&mut self, text: &str, d: &mut dyn Down, now: Instant) {
        self.failed = Some(text.to_string());
        for l in std::mem::take(&mut self.listens) {
            if l.bound.is_none() {
                d.listen_result(l.id, Err(()));
            }
        }
        self.forward_replies.clear();
        for p in std::mem::take(&mut self.pairs) {
            fail_pair(&p, text, d, now);
        }
    }
}

impl Bridge {
    /// tcpip-forward from the user: asked of the upstream (once it is logged in).
    pub fn listen(
        &mut self,
        id: ListenerId,
        addr: &str,
        port: u16,
        up: &mut dyn Up,
        d: &mut dyn Down,
    ) {
        if self.failed.is_some() {
            d.listen_result(id, Err(()));
            return;
        }
        let mut l = Listen { id, addr: addr.to_string(), port, sent: false, bound: None };
        if self.ready {
            send_listen(&mut l, up, &mut self.forward_replies, d);
        }
        self.listens.push(l);
    }

    /// cancel-tcpip-forward from the user.
    pub fn unlisten(&mut self, id: ListenerId, up: &mut dyn Up) {
        let Some(i) = self.listens.iter().position(|l| l.id == id) else { return };
        let l = self.listens.remove(i);
        if let Some(port) = l.bound {
            up.cancel_tcpip_forward(&l.addr, if l.port == 0 { port } else { l.port });
        }
    }

    /// A global request's reply from the upstream.
    pub fn up_global_reply(
        &mut self,
        request: &str,
        ok: bool,
        port: Option<u32>,
        d: &mut dyn Down,
    ) {
        if request != "tcpip-forward" {
            return;
        }
        let Some(id) = self.forward_replies.pop_front() else { return };
        let Some(l) = self.listens.iter_mut().find(|l| l.id == id) else { return };
        let bound = port.and_then(|p| u16::try_from(p).ok()).filter(|&p| p != 0).unwrap_or(l.port);
        if ok && bound != 0 {
            l.bound = Some(bound);
            d.listen_result(id, Ok(bound));
        } else {
            d.listen_result(id, Err(()));
            self.listens.retain(|l| l.id != id);
        }
    }

    /// The upstream opened a forwarded-tcpip channel: opened to the user on the listener
    /// that asked for that port; accepted upstream once the user confirms.
    pub fn up_incoming(
        &mut self,
        ch: ClientChannel,
        connected_port: u16,
        originator: (&str, u16),
        up: &mut dyn Up,
        d: &mut dyn Down,
    ) {
        let listener = self.listens.iter().find(|l| l.bound == Some(connected_port)).map(|l| l.id);
        let down = listener.and_then(|id| d.forwarded(id, originator.0, originator.1));
        match down {
            Some(down) => {
                let mut p = Pair::new(down, Open::Forwarded);
                p.up = Some(ch);
                self.pairs.push(p);
            }
            None => up.reject_channel(ch, OPEN_CONNECT_FAILED, "no such forward"),
        }
    }

    /// The upstream opened an `auth-agent@openssh.com` channel: carried to a new agent
    /// channel to the user (one to one, like forwarded-tcpip), if a session of ours asked the
    /// upstream for agent forwarding and the user's agent is still reachable.
    pub fn up_agent(&mut self, ch: ClientChannel, up: &mut dyn Up, d: &mut dyn Down) {
        let down = if self.agent_asked && self.failed.is_none() { d.open_agent() } else { None };
        match down {
            Some(down) => {
                let mut p = Pair::new(down, Open::Forwarded);
                p.up = Some(ch);
                self.pairs.push(p);
            }
            None => up.reject_channel(ch, OPEN_ADMINISTRATIVELY_PROHIBITED, "no agent forwarding"),
        }
    }

    /// The user confirmed a forwarded-tcpip channel: accept the upstream's.
    pub fn down_opened(&mut self, ch: ChannelId, up: &mut dyn Up) {
        let Some(i) = self.find_down(ch) else { return };
        let Some(p) = self.pairs.get_mut(i) else { return };
        if let (Some(u), false) = (p.up, p.up_open) {
            up.accept_channel(u);
            p.up_open = true;
            p.open = None;
        }
    }

    /// The user refused a forwarded-tcpip channel: refuse the upstream's.
    pub fn down_open_failed(&mut self, ch: ChannelId, code: u32, text: &str, up: &mut dyn Up) {
        let Some(i) = self.find_down(ch) else { return };
        let p = self.pairs.remove(i);
        if let (Some(u), false) = (p.up, p.up_open) {
            up.reject_channel(u, code, text);
        }
    }
}

/// Sends one tcpip-forward upstream; a local refusal answers the user at once.
fn send_listen(
    l: &mut Listen,
    up: &mut dyn Up,
    replies: &mut std::collections::VecDeque<ListenerId>,
    d: &mut dyn Down,
) {
    if l.sent {
        return;
    }
    l.sent = true;
    if up.tcpip_forward(&l.addr, l.port) {
        replies.push_back(l.id);
    } else {
        d.listen_result(l.id, Err(()));
    }
}

/// Ends one pair on the user's side with `text`.
fn fail_pair(p: &Pair, text: &str, d: &mut dyn Down, now: Instant) {
    if p.session {
        let msg = format!("sshfront: {text}\r\n");
        d.send_stderr(p.down, msg.as_bytes(), now);
        d.exited(p.down, ExitStatus::Code(PROXY_EXIT_CODE));
    } else if p.up_open || matches!(p.open, Some(Open::Forwarded)) {
        d.closed(p.down);
    } else {
        let code =
            if text.contains("too many") { OPEN_RESOURCE_SHORTAGE } else { OPEN_CONNECT_FAILED };
        d.open_failed(p.down, code, text);
    }
}

impl Up for ClientConnection {
    fn open_session(&mut self) -> Result<ClientChannel, UseError> {
        ClientConnection::open_session(self)
    }
    fn open_direct_tcpip(
        &mut self,
        target: (&str, u16),
        originator: (&str, u16),
    ) -> Result<ClientChannel, UseError> {
        ClientConnection::open_direct_tcpip(self, target, originator)
    }
    fn open_direct_streamlocal(&mut self, path: &str) -> Result<ClientChannel, UseError> {
        ClientConnection::open_direct_streamlocal(self, path)
    }
    fn request_pty(&mut self, ch: ClientChannel, pty: &Pty) {
        let _ = ClientConnection::request_pty(self, ch, &pty.term, pty.size, &pty.modes);
    }
    fn request_env(&mut self, ch: ClientChannel, name: &str, value: &[u8]) {
        let _ = ClientConnection::request_env(self, ch, name, value);
    }
    fn request_start(&mut self, ch: ClientChannel, start: &Start) {
        let _ = match start {
            Start::Shell => self.request_shell(ch),
            Start::Exec(c) => self.request_exec(ch, c.as_bytes()),
            Start::Subsystem(s) => self.request_subsystem(ch, s),
        };
    }
    fn window_change(&mut self, ch: ClientChannel, size: WinSize) {
        let _ = ClientConnection::window_change(self, ch, size);
    }
    fn signal(&mut self, ch: ClientChannel, name: &str) {
        let _ = ClientConnection::signal(self, ch, name);
    }
    fn send_break(&mut self, ch: ClientChannel, ms: u32) {
        let _ = ClientConnection::send_break(self, ch, ms);
    }
    fn send_eow(&mut self, ch: ClientChannel) {
        let _ = ClientConnection::send_eow(self, ch);
    }
    fn stdout(&self, ch: ClientChannel) -> &[u8] {
        ClientConnection::stdout(self, ch)
    }
    fn stderr(&self, ch: ClientChannel) -> &[u8] {
        ClientConnection::stderr(self, ch)
    }
    fn consume(&mut self, ch: ClientChannel, n: usize) -> usize {
        ClientConnection::consume(self, ch, n)
    }
    fn consume_stderr(&mut self, ch: ClientChannel, n: usize) -> usize {
        ClientConnection::consume_stderr(self, ch, n)
    }
    fn send_data(&mut self, ch: ClientChannel, data: &[u8]) -> usize {
        ClientConnection::send_data(self, ch, data)
    }
    fn send_eof(&mut self, ch: ClientChannel) {
        let _ = ClientConnection::send_eof(self, ch);
    }
    fn close_channel(&mut self, ch: ClientChannel) {
        let _ = ClientConnection::close_channel(self, ch);
    }
    fn tcpip_forward(&mut self, addr: &str, port: u16) -> bool {
        ClientConnection::tcpip_forward(self, addr, port).is_ok()
    }
    fn cancel_tcpip_forward(&mut self, addr: &str, port: u16) {
        let _ = ClientConnection::cancel_tcpip_forward(self, addr, port);
    }
    fn accept_channel(&mut self, ch: ClientChannel) {
        let _ = ClientConnection::accept_channel(self, ch);
    }
    fn reject_channel(&mut self, ch: ClientChannel, code: u32, text: &str) {
        let _ = ClientConnection::reject_channel(self, ch, code, text);
    }
    fn request_agent(&mut self, ch: ClientChannel) {
        let _ = ClientConnection::request_agent_forwarding(self, ch);
    }
}

#[cfg(test)]
#[path = "bridge_tests.rs"]
mod tests;
