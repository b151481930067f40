//! Whole sessions for fuzzing: a [`ServerSim`] drives a [`ServerConnection`] the way the
//! runtime does (input, jobs run inline, events answered by a scripted backend, transmit, a fake
//! clock), and a [`PairSim`] connects our client core to it in memory, for structured inputs and
//! for recording seed transcripts.
//!
//! Built with `--features fuzzing`, key exchange, signatures and the MAC/cipher are stand-ins
//! (see `algo::kex::stand_in`), so the recorded client bytes after NEWKEYS are plain packets with
//! zero MACs and a fuzzer mutates them freely. Without the feature the same code runs with real
//! crypto (the in-suite smoke test), where mutated input stops at the first MAC.

use crate::algo::host_key::{HostKeyPair, KeyKind};
use crate::algo::{cipher, kex, mac, TestRng};
use crate::auth::{AuthPolicy, Method, PasswordSource};
use crate::client::ClientConnection;
use crate::config::users::PasswordDb;
use crate::connection::{ChannelId, ConnectionPolicy, ExitStatus};
use crate::server::{Event, ServerConfig, ServerConnection};
use crate::transport::TransportConfig;
use crate::wire::{msg_no, Writer};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// User and password the fuzz configuration accepts.
pub const USER: &str = "fuzz";
pub const PASSWORD: &str = "fuzz";

/// How deep inputs got, summed over a fuzzing run (printed by the targets now and then): proof
/// that inputs reach the states behind key exchange.
#[derive(Debug, Default)]
pub struct Reach {
    pub runs: AtomicU64,
    pub kex_done: AtomicU64,
    pub rekeys: AtomicU64,
    pub authenticated: AtomicU64,
    pub channel_data: AtomicU64,
    pub exec: AtomicU64,
    pub backend_opened: AtomicU64,
    pub listen: AtomicU64,
    pub compressed: AtomicU64,
    /// Service-layer messages the client core read in `client_session`.
    pub client_messages: AtomicU64,
}

pub static REACH: Reach = Reach {
    runs: AtomicU64::new(0),
    kex_done: AtomicU64::new(0),
    rekeys: AtomicU64::new(0),
    authenticated: AtomicU64::new(0),
    channel_data: AtomicU64::new(0),
    exec: AtomicU64::new(0),
    backend_opened: AtomicU64::new(0),
    listen: AtomicU64::new(0),
    compressed: AtomicU64::new(0),
    client_messages: AtomicU64::new(0),
};

impl Reach {
    /// One line for the fuzzer's log.
    pub fn line(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "reach: runs {} kex_done {} rekeys {} authenticated {} channel_data {} exec {} \
             backend_opened {} listen {} compressed {} client_messages {}",
            g(&self.runs),
            g(&self.kex_done),
            g(&self.rekeys),
            g(&self.authenticated),
            g(&self.channel_data),
            g(&self.exec),
            g(&self.backend_opened),
            g(&self.listen),
            g(&self.compressed),
            g(&self.client_messages),
        )
    }
}

fn bump(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

/// Start of the fake clock (any fixed instant; only differences matter to the core).
pub fn epoch() -> Instant {
    static T: OnceLock<Instant> = OnceLock::new();
    #[allow(clippy::disallowed_methods)]
    *T.get_or_init(Instant::now)
}

fn host_key() -> Arc<HostKeyPair> {
    static K: OnceLock<Arc<HostKeyPair>> = OnceLock::new();
    K.get_or_init(|| {
        let pair = HostKeyPair::generate_with(KeyKind::Ed25519, &mut TestRng(0x4b)).map(|(k, _)| k);
        #[allow(clippy::expect_used)]
        Arc::new(pair.expect("Ed25519 key from a seed"))
    })
    .clone()
}

/// The server's configuration: every algorithm, one password user, every channel kind allowed,
/// a volume rekey limit low enough for inputs to reach it, keepalives on.
pub fn server_config() -> Arc<ServerConfig> {
    static C: OnceLock<Arc<ServerConfig>> = OnceLock::new();
    C.get_or_init(|| {
        let mut transport = TransportConfig::all_algorithms("sshfront_fuzz");
        transport.host_keys = vec![host_key()];
        transport.rekey_bytes = Some(64 * 1024);
        transport.rekey_interval = Some(Duration::from_secs(3600));
        let mut db = PasswordDb::default();
        db.set(USER, format!("$fuzz-plain${PASSWORD}"));
        let auth = AuthPolicy {
            sequences: vec![vec![Method::Password], vec![Method::KeyboardInteractive]],
            banner: Some("fuzz banner".into()),
            passwords: PasswordSource::Db(Arc::new(db)),
            ..AuthPolicy::default()
        };
        let connection = ConnectionPolicy {
            permit_open: vec!["*:*".into()],
            permit_listen: vec!["*:*".into()],
            env_allow: vec!["*".into()],
            window: 64 * 1024,
            max_packet: 32 * 1024,
            keepalive_interval: Some(Duration::from_secs(30)),
            ..ConnectionPolicy::default()
        };
        Arc::new(ServerConfig {
            transport: Arc::new(transport),
            login_grace_time: crate::server::DEFAULT_LOGIN_GRACE_TIME,
            auth,
            connection: Arc::new(connection),
            gateway: Arc::default(),
        })
    })
    .clone()
}

/// A client configuration offering exactly these algorithms (one per family).
pub fn client_config(
    kex: &str,
    cipher: &str,
    mac: &str,
    compression: &'static str,
) -> TransportConfig {
    let mut c = TransportConfig::all_algorithms("sshfront_fuzz_client");
    if let Some(k) = kex::by_name(kex) {
        c.kex = vec![k];
    }
    if let Some(x) = cipher::by_name(cipher) {
        c.ciphers = vec![x];
    }
    if let Some(m) = mac::by_name(mac) {
        c.macs = vec![m];
    }
    c.compression = vec![compression];
    c
}

fn peer() -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], 40000))
}

/// Turns of the event loop one input may take (bounds every run).
const MAX_TURNS: usize = 2000;
/// Fake time per turn.
const TICK: Duration = Duration::from_millis(5);

/// A server connection with a scripted runtime around it.
pub struct ServerSim {
    pub conn: ServerConnection,
    pub now: Instant,
    /// What the server sent (kept for a paired client; cleared otherwise).
    pub out: Vec<u8>,
    keep_out: bool,
    /// Session channels with a "child" (exec/shell/subsystem).
    children: HashSet<u32>,
    /// Channels with a "backend socket" (direct-tcpip, forwarded-tcpip).
    backends: HashSet<u32>,
    pub closed: bool,
}

impl ServerSim {
    pub fn new(keep_out: bool) -> Self {
        let now = epoch();
        let conn = ServerConnection::with_rng(server_config(), peer(), Box::new(TestRng(7)), now);
        ServerSim {
            conn,
            now,
            out: Vec::new(),
            keep_out,
            children: HashSet::new(),
            backends: HashSet::new(),
            closed: false,
        }
    }

    /// One turn: consume input, answer events, transmit. True if anything happened.
    pub fn turn(&mut self, input: &mut Vec<u8>) -> bool {
        let n = self.conn.handle_input(input, self.now).min(input.len());
        self.after_input(input, n)
    }

    /// As [`ServerSim::turn`], but presents at most one packet (or the version line), so the
    /// scripted runtime answers each message before the next is read, as it did when the
    /// transcript was recorded (a client waits for CHANNEL_OPEN_CONFIRMATION before sending
    /// data, for instance). Packet bounds are read from the clear length the stand-in cipher
    /// leaves; the tag length is found by trying each one there is.
    pub fn paced_turn(&mut self, input: &mut Vec<u8>) -> bool {
        let n = if self.conn.transport().peer_version().is_none() {
            let line = input.iter().position(|&b| b == b'\n').map_or(input.len(), |i| i + 1);
            self.conn.handle_input(input.get_mut(..line).unwrap_or_default(), self.now)
        } else {
            let len =
                input.get(..4).map_or(0, |l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize);
            let mut n = 0;
            for tag in [0usize, 16, 20, 32, 64] {
                let end = len.saturating_add(4 + tag).min(input.len());
                n = self.conn.handle_input(input.get_mut(..end).unwrap_or_default(), self.now);
                if n > 0 || end == input.len() || self.closed {
                    break;
                }
            }
            if n == 0 && !self.conn.is_closed() {
                n = self.conn.handle_input(input, self.now);
            }
            n
        };
        let n = n.min(input.len());
        self.after_input(input, n)
    }

    fn after_input(&mut self, input: &mut Vec<u8>, n: usize) -> bool {
        input.drain(..n);
        let mut progressed = n > 0;
        progressed |= self.react();
        let before = self.out.len();
        self.conn.poll_transmit(&mut self.out);
        progressed |= self.out.len() != before;
        if !self.keep_out {
            self.out.clear();
        }
        progressed
    }

    /// Time passes; timers that are due fire.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        if self.conn.poll_timeout().is_some_and(|t| t <= self.now) {
            self.conn.handle_timeout(self.now);
        }
    }

    /// Answers every pending event as a runtime with a friendly backend would: jobs run inline,
    /// backends connect (odd ports refuse), children print and echo, listeners get a connection.
    fn react(&mut self) -> bool {
        let mut any = false;
        while let Some(e) = self.conn.poll_event() {
            any = true;
            self.on_event(e);
        }
        any
    }

    fn on_event(&mut self, e: Event) {
        let now = self.now;
        match e {
            Event::Job(j) => self.conn.handle_job_done(crate::runtime::auth_jobs::run(j), now),
            Event::KexDone(_) => {
                bump(&REACH.kex_done);
                if self.conn.transport().kex_count() > 1 {
                    bump(&REACH.rekeys);
                }
                if self.conn.transport().negotiated().is_some_and(|k| k.compression_in != "none") {
                    bump(&REACH.compressed);
                }
            }
            Event::Authenticated { .. } => bump(&REACH.authenticated),
            Event::OpenUnixBackend { channel, .. } => {
                bump(&REACH.backend_opened);
                self.backends.insert(channel.0);
                self.conn.backend_connected(channel);
            }
            Event::ListenUnix { listener, .. } => {
                bump(&REACH.listen);
                self.conn.listen_result(listener, Ok(0));
            }
            Event::OpenBackend { channel, port, .. } => {
                bump(&REACH.backend_opened);
                if port % 2 == 0 {
                    self.backends.insert(channel.0);
                    self.conn.backend_connected(channel);
                } else {
                    self.conn.backend_failed(channel, 2, "connection refused");
                }
            }
            Event::Listen { listener, port, .. } => {
                bump(&REACH.listen);
                let port = if port == 0 { 40123 } else { port };
                self.conn.listen_result(listener, Ok(port));
                if let Ok(ch) = self.conn.forwarded_connection(listener, "198.51.100.7", 5555) {
                    self.backends.insert(ch.0);
                }
            }
            Event::Exec { channel, .. } => {
                bump(&REACH.exec);
                self.children.insert(channel.0);
                self.conn.send_data(channel, b"hello from the child\n", now);
                self.conn.send_stderr(channel, b"a warning\n", now);
            }
            Event::ChannelReadable { channel } => {
                bump(&REACH.channel_data);
                // An echo backend: what the client sent comes back.
                let data = self.conn.inbound(channel).to_vec();
                self.conn.backend_consumed(channel, data.len());
                let room = self.conn.send_capacity(channel).min(data.len());
                self.conn.send_data(channel, data.get(..room).unwrap_or(&[]), now);
            }
            Event::ChannelOpened { channel } => {
                self.conn.send_data(channel, b"forwarded hello", now);
            }
            Event::ChannelEof { channel } => self.finish(channel),
            Event::ChannelClosed { channel } => {
                self.children.remove(&channel.0);
                self.backends.remove(&channel.0);
            }
            Event::Closed { .. } => self.closed = true,
            Event::ServiceAccepted(_)
            | Event::Log(_)
            | Event::Unlisten { .. }
            | Event::WindowChange { .. }
            | Event::Signal { .. }
            | Event::Break { .. }
            | Event::Eow { .. }
            | Event::ChannelWritable { .. }
            | Event::ChannelOpenFailed { .. }
            | Event::AgentForwarding { .. } => {}
        }
    }

    /// The client sent EOF: a child exits, a backend answers EOF and closes.
    fn finish(&mut self, channel: ChannelId) {
        if self.children.remove(&channel.0) {
            self.conn.child_exited(channel, ExitStatus::Code(0));
        } else if self.backends.remove(&channel.0) {
            self.conn.backend_eof(channel);
            self.conn.backend_closed(channel);
        }
    }

    /// Runs paced turns until nothing moves (bounded).
    pub fn settle(&mut self, input: &mut Vec<u8>) {
        for _ in 0..MAX_TURNS {
            let progressed = self.paced_turn(input);
            self.advance(TICK);
            if self.closed || !progressed {
                break;
            }
        }
    }

    /// The end of a run: keepalives, the rekey timer, the login grace time all fire.
    pub fn wind_down(&mut self) {
        let mut none = Vec::new();
        for _ in 0..4 {
            self.advance(Duration::from_secs(1800));
            self.turn(&mut none);
        }
    }
}

/// The whole-session target: `data` is everything a client sends, version line included.
pub fn server_session(data: &[u8]) {
    bump(&REACH.runs);
    let mut sim = ServerSim::new(false);
    let mut input = data.to_vec();
    sim.settle(&mut input);
    sim.wind_down();
}

/// One step of a scripted session (structured fuzzing and seed recording).
#[derive(Debug, Clone)]
pub enum Action {
    /// The client core sends this service-layer payload (sealed, compressed, rekeyed as its
    /// transport decides).
    ClientSends(Vec<u8>),
    /// The server's transport sends this payload to the client core (client-side fuzzing).
    ServerSends(Vec<u8>),
    /// SERVICE_REQUEST ssh-userauth, then USERAUTH_REQUEST with the fuzz password.
    Login,
    /// The client starts a key re-exchange.
    ClientRekey,
    /// The server starts one.
    ServerRekey,
    /// Time passes (seconds).
    Wait(u16),
    /// Raw bytes appended to the client→server stream, outside the client's packet layer.
    RawToServer(Vec<u8>),
    /// Raw bytes appended to the server→client stream.
    RawToClient(Vec<u8>),
}

/// Our client core connected to a [`ServerSim`] in memory. Records both byte streams.
pub struct PairSim {
    pub server: ServerSim,
    pub client: ClientConnection,
    c2s: Vec<u8>,
    s2c: Vec<u8>,
    /// Everything the client sent, in order (a seed for `server_session`).
    pub c2s_log: Vec<u8>,
    /// Everything the server sent (a seed for `client_session`).
    pub s2c_log: Vec<u8>,
    record: bool,
    /// Service messages the client received.
    pub at_client: Vec<Vec<u8>>,
}

impl PairSim {
    pub fn new(client_cfg: TransportConfig, record: bool) -> Self {
        let now = epoch();
        let client =
            ClientConnection::new_raw(Arc::new(client_cfg), Box::new(TestRng(9)), None, now);
        PairSim {
            server: ServerSim::new(true),
            client,
            c2s: Vec::new(),
            s2c: Vec::new(),
            c2s_log: Vec::new(),
            s2c_log: Vec::new(),
            record,
            at_client: Vec::new(),
        }
    }

    /// Moves bytes both ways, runs jobs, until nothing changes (bounded).
    pub fn drive(&mut self) {
        for _ in 0..MAX_TURNS {
            let mut progressed = false;
            let before = self.c2s.len();
            self.client.poll_transmit(&mut self.c2s);
            if self.record {
                self.c2s_log.extend_from_slice(self.c2s.get(before..).unwrap_or(&[]));
            }
            progressed |= self.c2s.len() != before;
            progressed |= self.server.turn(&mut self.c2s);
            if !self.server.out.is_empty() {
                if self.record {
                    self.s2c_log.extend_from_slice(&self.server.out);
                }
                self.s2c.append(&mut self.server.out);
                progressed = true;
            }
            let n = self.client.handle_input(&mut self.s2c, self.server.now).min(self.s2c.len());
            self.s2c.drain(..n);
            progressed |= n > 0;
            while let Some(m) = self.client.next_message() {
                if self.at_client.len() < 64 {
                    self.at_client.push(m);
                }
                progressed = true;
            }
            while let Some(e) = self.client.poll_event() {
                progressed = true;
                if let crate::client::Event::Job(j) = e {
                    self.client.handle_job_done(j.run(), self.server.now);
                }
            }
            self.server.advance(TICK);
            if self.client.poll_timeout().is_some_and(|t| t <= self.server.now) {
                self.client.handle_timeout(self.server.now);
            }
            if !progressed || self.client.is_closed() || self.server.closed {
                return;
            }
        }
    }

    pub fn apply(&mut self, a: &Action) {
        let now = self.server.now;
        match a {
            Action::ClientSends(p) => {
                let _ = self.client.send(p);
            }
            Action::ServerSends(p) => {
                let _ = self.server.conn.transport_mut().send(p);
            }
            Action::Login => {
                let _ = self.client.transport_mut().request_service("ssh-userauth");
                self.drive();
                let _ = self.client.send(&password_request(USER, PASSWORD));
            }
            Action::ClientRekey => {
                let _ = self.client.transport_mut().start_rekey(now);
            }
            Action::ServerRekey => {
                let _ = self.server.conn.transport_mut().start_rekey(now);
            }
            Action::Wait(secs) => {
                self.server.advance(Duration::from_secs(u64::from(*secs)));
                if self.client.poll_timeout().is_some_and(|t| t <= self.server.now) {
                    self.client.handle_timeout(self.server.now);
                }
            }
            Action::RawToServer(b) => {
                self.c2s.extend_from_slice(b);
                if self.record {
                    self.c2s_log.extend_from_slice(b);
                }
            }
            Action::RawToClient(b) => self.s2c.extend_from_slice(b),
        }
        self.drive();
    }

    /// Runs a whole script after the key exchange; returns the pair for inspection.
    pub fn run(client_cfg: TransportConfig, script: &[Action], record: bool) -> Self {
        let mut p = PairSim::new(client_cfg, record);
        p.drive();
        for a in script {
            if p.client.is_closed() || p.server.closed {
                break;
            }
            p.apply(a);
        }
        p.server.wind_down();
        p
    }
}

/// The structured targets' entry: a script against a fresh pair.
pub fn pair_script(client_cfg: TransportConfig, script: &[Action]) {
    bump(&REACH.runs);
    let _ = PairSim::run(client_cfg, script, false);
}

/// The client core alone fed a server's byte stream (a recorded transcript, mutated): the
/// first byte picks the client configuration (an index into [`seed_configs`]); the client
/// reads, runs its jobs and asks for ssh-userauth, as in the recording.
pub fn client_session(data: &[u8]) {
    bump(&REACH.runs);
    let Some((&pick, data)) = data.split_first() else { return };
    let configs = seed_configs();
    let Some((_, cfg)) = configs.into_iter().nth(usize::from(pick) % 5) else { return };
    let now = epoch();
    let mut c = ClientConnection::new_raw(Arc::new(cfg), Box::new(TestRng(9)), None, now);
    let mut input = data.to_vec();
    let mut out = Vec::new();
    // Held until the first key exchange is done, as when it was recorded.
    let _ = c.transport_mut().request_service("ssh-userauth");
    for _ in 0..MAX_TURNS {
        // Sealing draws padding from the RNG: at the top of the turn, as `PairSim::drive` does,
        // so the RNG is drawn in the recorded order.
        c.poll_transmit(&mut out);
        out.clear();
        let n = c.handle_input(&mut input, now).min(input.len());
        input.drain(..n);
        let mut progressed = n > 0;
        while c.next_message().is_some() {
            bump(&REACH.client_messages);
            progressed = true;
        }
        while let Some(e) = c.poll_event() {
            progressed = true;
            if let crate::client::Event::Job(j) = e {
                c.handle_job_done(j.run(), now);
            }
        }
        if !progressed || c.is_closed() {
            break;
        }
    }
}

/// USERAUTH_REQUEST for ssh-connection with a password.
pub fn password_request(user: &str, password: &str) -> Vec<u8> {
    msg(|w| {
        w.u8(msg_no::USERAUTH_REQUEST).string(user.as_bytes()).string(b"ssh-connection");
        w.string(b"password").bool(false).string(password.as_bytes());
    })
}

/// A payload built with a [`Writer`].
pub fn msg(f: impl FnOnce(&mut Writer)) -> Vec<u8> {
    let mut v = Vec::new();
    f(&mut Writer::new(&mut v));
    v
}

/// A session that visits every layer: auth (a wrong password first, keyboard-interactive is
/// offered), a session channel with env, pty, exec and data, direct-tcpip with data and EOF,
/// tcpip-forward with its forwarded channel, global requests, a rekey, window adjusts, close.
pub fn tour() -> Vec<Action> {
    use Action::{ClientRekey, ClientSends as S, Login, Wait};
    let open = |kind: &[u8], id: u32, extra: &dyn Fn(&mut Writer)| {
        msg(|w| {
            w.u8(msg_no::CHANNEL_OPEN).string(kind).u32(id).u32(1 << 20).u32(32 * 1024);
            extra(w);
        })
    };
    let req = |ch: u32, name: &[u8], want: bool, extra: &dyn Fn(&mut Writer)| {
        msg(|w| {
            w.u8(msg_no::CHANNEL_REQUEST).u32(ch).string(name).bool(want);
            extra(w);
        })
    };
    let data = |ch: u32, d: &[u8]| {
        msg(|w| {
            w.u8(msg_no::CHANNEL_DATA).u32(ch).string(d);
        })
    };
    let only = |m: u8, ch: u32| {
        msg(|w| {
            w.u8(m).u32(ch);
        })
    };
    vec![
        S(msg(|w| {
            w.u8(msg_no::IGNORE).string(b"padding");
        })),
        S(msg(|w| {
            w.u8(msg_no::DEBUG).bool(false).string(b"hello").string(b"");
        })),
        Login,
        S(open(b"session", 0, &|_| {})),
        S(req(0, b"env", false, &|w| {
            w.string(b"LANG").string(b"C");
        })),
        S(req(0, b"pty-req", true, &|w| {
            w.string(b"xterm").u32(80).u32(24).u32(0).u32(0).string(b"");
        })),
        S(req(0, b"exec", true, &|w| {
            w.string(b"echo hi");
        })),
        S(data(0, b"some input for the child")),
        S(msg(|w| {
            w.u8(msg_no::CHANNEL_EXTENDED_DATA).u32(0).u32(1).string(b"err");
        })),
        S(msg(|w| {
            w.u8(msg_no::CHANNEL_WINDOW_ADJUST).u32(0).u32(4096);
        })),
        S(open(b"direct-tcpip", 1, &|w| {
            w.string(b"db.internal").u32(5432).string(b"127.0.0.1").u32(50000);
        })),
        S(data(1, b"GET / HTTP/1.0\r\n\r\n")),
        S(msg(|w| {
            w.u8(msg_no::GLOBAL_REQUEST).string(b"tcpip-forward").bool(true);
            w.string(b"localhost").u32(0);
        })),
        S(msg(|w| {
            w.u8(msg_no::GLOBAL_REQUEST).string(b"keepalive@openssh.com").bool(true);
        })),
        ClientRekey,
        S(data(1, b"after the rekey")),
        S(only(msg_no::CHANNEL_EOF, 1)),
        S(only(msg_no::CHANNEL_EOF, 0)),
        S(only(msg_no::CHANNEL_CLOSE, 0)),
        S(msg(|w| {
            w.u8(msg_no::GLOBAL_REQUEST).string(b"cancel-tcpip-forward").bool(true);
            w.string(b"localhost").u32(40123);
        })),
        Wait(40),
        S(msg(|w| {
            w.u8(msg_no::DISCONNECT).u32(11).string(b"bye").string(b"");
        })),
    ]
}

/// Client configurations the seed transcripts cover: each cipher family and MAC framing, and
/// delayed compression.
pub fn seed_configs() -> Vec<(&'static str, TransportConfig)> {
    vec![
        ("ctr-hmac", client_config("curve25519-sha256", "aes128-ctr", "hmac-sha2-256", "none")),
        (
            "ctr-etm-zlib",
            client_config(
                "curve25519-sha256",
                "aes256-ctr",
                "hmac-sha2-512-etm@openssh.com",
                "zlib@openssh.com",
            ),
        ),
        (
            "chacha",
            client_config("mlkem768x25519-sha256", "chacha20-poly1305@openssh.com", "", "none"),
        ),
        ("gcm-zlib", client_config("ecdh-sha2-nistp256", "aes128-gcm@openssh.com", "", "zlib")),
        (
            "gex",
            client_config(
                "diffie-hellman-group-exchange-sha256",
                "aes128-ctr",
                "hmac-sha1",
                "none",
            ),
        ),
    ]
}

/// Seed transcripts: (name, client→server bytes, config index + server→client bytes) of the
/// tour under each seed configuration.
pub fn seed_transcripts() -> Vec<(String, Vec<u8>, Vec<u8>)> {
    seed_configs()
        .into_iter()
        .enumerate()
        .map(|(i, (name, cfg))| {
            let p = PairSim::run(cfg, &tour(), true);
            // client_session reads its configuration from the first byte.
            let mut s2c = vec![i as u8];
            s2c.extend_from_slice(&p.s2c_log);
            (name.to_string(), p.c2s_log, s2c)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tour authenticates, opens every channel kind, moves data both ways and rekeys, with
    /// the real crypto or with the stand-ins alike.
    #[test]
    fn tour_reaches_every_layer() {
        for (name, cfg) in seed_configs() {
            let p = PairSim::run(cfg, &tour(), true);
            let got: Vec<u8> = p.at_client.iter().filter_map(|m| m.first().copied()).collect();
            if cfg!(feature = "fuzzing") {
                assert!(got.contains(&msg_no::USERAUTH_SUCCESS), "{name}: {got:?}");
                assert!(got.contains(&msg_no::CHANNEL_DATA), "{name}: {got:?}");
                assert!(got.contains(&msg_no::CHANNEL_OPEN), "{name}: forwarded: {got:?}");
                assert!(p.server.conn.transport().kex_count() >= 2, "{name}: no rekey");
            } else {
                // Without the stand-ins the fuzz password ($fuzz-plain$) is no valid hash.
                assert!(got.contains(&msg_no::USERAUTH_FAILURE), "{name}: {got:?}");
            }
            // Replaying the client's bytes alone drives the server the same way (every RNG is
            // seeded), which is what makes the transcript a seed.
            let before = REACH.channel_data.load(Ordering::Relaxed);
            let rekeys = REACH.rekeys.load(Ordering::Relaxed);
            let listens = REACH.listen.load(Ordering::Relaxed);
            server_session(&p.c2s_log);
            if cfg!(feature = "fuzzing") {
                assert!(REACH.channel_data.load(Ordering::Relaxed) > before, "{name}: replay");
                assert!(REACH.rekeys.load(Ordering::Relaxed) > rekeys, "{name}: replay rekey");
                assert!(REACH.listen.load(Ordering::Relaxed) > listens, "{name}: replay listen");
            }
        }
        // The server's bytes replayed to a lone client core: it reads what it read paired.
        for (name, _, s2c) in seed_transcripts() {
            let before = REACH.client_messages.load(Ordering::Relaxed);
            client_session(&s2c);
            let read = REACH.client_messages.load(Ordering::Relaxed) - before;
            // Without the stand-ins: the banner and the failure only.
            let least = if cfg!(feature = "fuzzing") { 5 } else { 2 };
            assert!(read >= least, "{name}: the client read {read} service messages");
        }
    }

    /// Every random byte of a session comes from the RNGs the cores were built with: two runs
    /// with the same seeds are identical byte for byte, ephemeral keys (ML-KEM hybrid, P-256,
    /// GEX) and padding included. Without the stand-ins this is the real crypto.
    #[test]
    fn sessions_are_deterministic_under_seeded_rngs() {
        let a = seed_transcripts();
        let b = seed_transcripts();
        for ((name, c1, s1), (_, c2, s2)) in a.iter().zip(&b) {
            assert!(c1 == c2 && s1 == s2, "{name}: a session drew randomness elsewhere");
        }
    }

    /// Writes the seed corpora: `SSHFRONT_WRITE_SEEDS=DIR cargo test --release --features
    /// fuzzing --lib write_seeds -- --ignored` (see FUZZING.md).
    #[test]
    #[ignore]
    fn write_seeds() {
        let Ok(dir) = std::env::var("SSHFRONT_WRITE_SEEDS") else { return };
        let dir = std::path::Path::new(&dir);
        for (name, c2s, s2c) in seed_transcripts() {
            for (target, bytes) in [("server_session", c2s), ("client_session", s2c)] {
                let d = dir.join(target);
                std::fs::create_dir_all(&d).unwrap();
                std::fs::write(d.join(format!("seed-{name}")), bytes).unwrap();
            }
        }
    }
}
