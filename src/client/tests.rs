//! The client core against the server core in memory: user authentication (publickey through
//! the signer abstraction, password), exec with exit-status, direct-tcpip both ways with window
//! exhaustion, EOF/CLOSE order. Jobs run inline; the "backends" are the test itself.

use super::*;
use crate::algo::host_key::{HostKeyPair, KeyKind};
use crate::algo::TestRng;
use crate::auth::policy::{parse_auth_methods, PasswordSource};
use crate::auth::AuthPolicy;
use crate::config::users::{hash_password, parse_password_file};
use crate::connection::{ChannelId, ConnectionPolicy, ExitStatus};
use crate::server::{self, ServerConfig, ServerConnection};
use std::sync::OnceLock;

const USER: &str = "alice";
const PASSWORD: &str = "correct horse";

fn t0() -> Instant {
    static T: OnceLock<Instant> = OnceLock::new();
    #[allow(clippy::disallowed_methods)]
    *T.get_or_init(Instant::now)
}

fn user_key() -> Arc<HostKeyPair> {
    static K: OnceLock<Arc<HostKeyPair>> = OnceLock::new();
    K.get_or_init(|| Arc::new(HostKeyPair::generate(KeyKind::Ed25519).unwrap().0)).clone()
}

/// An authorized_keys file holding `user_key()` (the server reads it on its job).
fn authorized_keys_template() -> String {
    static P: OnceLock<String> = OnceLock::new();
    P.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("sshfront-client-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = ssh_key::PublicKey::from_bytes(user_key().public_blob()).unwrap();
        std::fs::write(dir.join(USER), format!("{}\n", key.to_openssh().unwrap())).unwrap();
        format!("{}/%u", dir.display())
    })
    .clone()
}

fn server_config(window: u32) -> Arc<ServerConfig> {
    let db =
        parse_password_file(&format!("{USER}:{}\n", hash_password(PASSWORD).unwrap())).unwrap();
    Arc::new(ServerConfig {
        transport: Arc::new(crate::transport::tests::full_config()),
        login_grace_time: server::DEFAULT_LOGIN_GRACE_TIME,
        auth: AuthPolicy {
            sequences: parse_auth_methods("publickey password").unwrap(),
            authorized_keys: Some(authorized_keys_template()),
            passwords: PasswordSource::Db(Arc::new(db)),
            ..AuthPolicy::default()
        },
        connection: ConnectionPolicy {
            window,
            max_packet: 16 * 1024,
            permit_open: vec!["127.0.0.1:7".into()],
            permit_listen: vec!["127.0.0.1:*".into()],
            ..ConnectionPolicy::default()
        }
        .into(),
        gateway: Default::default(),
    })
}

/// What the test plays on the server side.
#[derive(Default)]
struct ServerSide {
    /// Bytes the direct-tcpip "backend" received, and whether it drains `inbound` at once.
    backend_got: Vec<u8>,
    backend_drains: bool,
    opened: Vec<ChannelId>,
    execs: Vec<(ChannelId, Option<String>)>,
    listens: Vec<(crate::connection::ListenerId, u16)>,
    forwarded_opened: Vec<ChannelId>,
    forwarded_failed: Vec<ChannelId>,
    eofs: Vec<ChannelId>,
    closed: Vec<ChannelId>,
}

struct Pair {
    client: ClientConnection,
    server: ServerConnection,
    c2s: Vec<u8>,
    s2c: Vec<u8>,
    srv: ServerSide,
    /// Client events in arrival order (jobs and signatures handled inline).
    events: Vec<Event>,
}

impl Pair {
    fn new(server_window: u32) -> Pair {
        let now = t0();
        let cfg = Arc::new(crate::transport::tests::full_config());
        let client = ClientConnection::new(cfg, Box::new(TestRng(7)), None, now);
        let server = ServerConnection::with_rng(
            server_config(server_window),
            "127.0.0.1:40000".parse().unwrap(),
            Box::new(TestRng(8)),
            now,
        );
        Pair {
            client,
            server,
            c2s: Vec::new(),
            s2c: Vec::new(),
            srv: ServerSide::default(),
            events: Vec::new(),
        }
    }

    fn drive(&mut self) {
        let now = t0();
        for _ in 0..100_000 {
            let mut progress = false;
            let before = (self.c2s.len(), self.s2c.len());
            self.client.poll_transmit(&mut self.c2s);
            self.server.poll_transmit(&mut self.s2c);
            progress |= before != (self.c2s.len(), self.s2c.len());
            if !self.c2s.is_empty() {
                let n = self.server.handle_input(&mut self.c2s, now);
                self.c2s.drain(..n);
                progress |= n > 0;
            }
            if !self.s2c.is_empty() {
                let n = self.client.handle_input(&mut self.s2c, now);
                self.s2c.drain(..n);
                progress |= n > 0;
            }
            while let Some(e) = self.server.poll_event() {
                progress = true;
                self.on_server_event(e, now);
            }
            while let Some(e) = self.client.poll_event() {
                progress = true;
                match e {
                    Event::Job(j) => self.client.handle_job_done(j.run(), now),
                    Event::Sign(req) => self.client.sign_done(req.run_local().unwrap()),
                    e => self.events.push(e),
                }
            }
            if !progress {
                return;
            }
        }
        panic!("drive did not settle");
    }

    fn on_server_event(&mut self, e: server::Event, now: Instant) {
        use server::Event as S;
        match e {
            S::Job(j) => self.server.handle_job_done(crate::runtime::auth_jobs::run(j), now),
            S::OpenBackend { channel, .. } => {
                self.srv.opened.push(channel);
                self.server.backend_connected(channel);
            }
            S::Exec { channel, command, .. } => self.srv.execs.push((channel, command)),
            S::Listen { listener, port, .. } => self.srv.listens.push((listener, port)),
            S::ChannelOpened { channel } => self.srv.forwarded_opened.push(channel),
            S::ChannelOpenFailed { channel, .. } => self.srv.forwarded_failed.push(channel),
            S::ChannelReadable { channel } if self.srv.backend_drains => {
                self.drain_backend(channel);
            }
            S::ChannelEof { channel } => self.srv.eofs.push(channel),
            S::ChannelClosed { channel } => self.srv.closed.push(channel),
            _ => {}
        }
    }

    fn drain_backend(&mut self, ch: ChannelId) {
        loop {
            let data = self.server.inbound(ch).to_vec();
            if data.is_empty() {
                break;
            }
            self.srv.backend_got.extend_from_slice(&data);
            self.server.backend_consumed(ch, data.len());
        }
    }

    fn authenticate(&mut self, method: Method) -> Option<String> {
        self.client.authenticate(USER, method).unwrap();
        self.drive();
        self.events.iter().rev().find_map(|e| match e {
            Event::Authenticated => Some("ok".to_string()),
            Event::AuthFailed { methods, .. } => Some(format!("failed:{methods}")),
            _ => None,
        })
    }

    fn has(&self, f: impl Fn(&Event) -> bool) -> bool {
        self.events.iter().any(f)
    }

    fn position(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.events.iter().position(f).expect("event not seen")
    }
}

#[test]
fn publickey_auth_with_a_local_key() {
    let mut p = Pair::new(64 * 1024);
    let key: Arc<dyn UserSigner> = Arc::new(LocalKey::new(user_key()));
    assert_eq!(p.authenticate(Method::PublicKey(key)).as_deref(), Some("ok"));
    assert!(p.client.is_authenticated() && p.server.is_authenticated());
}

#[test]
fn publickey_with_an_external_signer_waits_for_sign_done() {
    let mut p = Pair::new(64 * 1024);
    p.drive();
    let agent: Arc<dyn UserSigner> = Arc::new(AgentKey {
        public_blob: user_key().public_blob().to_vec(),
        alg: crate::algo::host_key::HostKeyAlg::Ed25519,
    });
    p.client.authenticate(USER, Method::PublicKey(agent)).unwrap();
    // Drive by hand: the Sign event must come out and nothing is sent until it is answered.
    let now = t0();
    let mut req = None;
    for _ in 0..1000 {
        p.client.poll_transmit(&mut p.c2s);
        p.server.poll_transmit(&mut p.s2c);
        let n = p.server.handle_input(&mut p.c2s, now);
        p.c2s.drain(..n);
        let n = p.client.handle_input(&mut p.s2c, now);
        p.s2c.drain(..n);
        while let Some(e) = p.server.poll_event() {
            p.on_server_event(e, now);
        }
        while let Some(e) = p.client.poll_event() {
            match e {
                Event::Job(j) => p.client.handle_job_done(j.run(), now),
                Event::Sign(r) => req = Some(r),
                _ => {}
            }
        }
        if req.is_some() {
            break;
        }
    }
    let req = req.expect("Sign event");
    assert!(req.run_local().is_none(), "an agent key does not sign here");
    // The "agent": the same key, signing the exact data asked for.
    let sig = user_key()
        .sign(crate::algo::host_key::HostKeyAlg::Ed25519, &req.data, &mut crate::algo::SystemRng)
        .unwrap();
    p.client.sign_done(Ok(sig));
    p.drive();
    assert!(p.has(|e| matches!(e, Event::Authenticated)));
}

#[test]
fn password_auth_wrong_then_right() {
    let mut p = Pair::new(64 * 1024);
    assert_eq!(
        p.authenticate(Method::Password(b"wrong".to_vec())).as_deref(),
        Some("failed:publickey,password")
    );
    assert!(!p.client.is_authenticated());
    assert_eq!(
        p.authenticate(Method::Password(PASSWORD.as_bytes().to_vec())).as_deref(),
        Some("ok")
    );
    assert!(p.server.is_authenticated());
}

#[test]
fn channels_need_authentication() {
    let mut p = Pair::new(64 * 1024);
    p.drive();
    assert_eq!(p.client.open_session(), Err(UseError::NotAuthenticated));
}

fn authenticated(window: u32) -> Pair {
    let mut p = Pair::new(window);
    let m = Method::Password(PASSWORD.as_bytes().to_vec());
    assert_eq!(p.authenticate(m).as_deref(), Some("ok"));
    p.events.clear();
    p
}

#[test]
fn exec_with_output_exit_status_eof_close_in_order() {
    let mut p = authenticated(64 * 1024);
    let ch = p.client.open_session().unwrap();
    p.drive();
    assert!(p.has(|e| matches!(e, Event::ChannelOpened { channel } if *channel == ch)));
    p.client.request_env(ch, "LANG", b"C").unwrap();
    p.client.request_exec(ch, b"echo hi").unwrap();
    p.drive();
    assert!(p.has(|e| matches!(e, Event::RequestDone { request: "exec", ok: true, .. })));
    let (sch, cmd) = p.srv.execs.pop().expect("Exec at the server");
    assert_eq!(cmd.as_deref(), Some("echo hi"));
    let now = t0();
    assert_eq!(p.server.send_data(sch, b"hi\n", now), 3);
    assert_eq!(p.server.send_stderr(sch, b"warn\n", now), 5);
    p.server.child_exited(sch, ExitStatus::Code(3));
    p.drive();
    // Unread output holds our CLOSE back; the channel is not gone yet.
    assert_eq!(p.client.stdout(ch), b"hi\n");
    assert_eq!(p.client.stderr(ch), b"warn\n");
    assert!(!p.has(|e| matches!(e, Event::ChannelClosed { .. })));
    let st = p.position(|e| matches!(e, Event::ExitStatus { code: 3, .. }));
    let eof = p.position(|e| matches!(e, Event::ChannelEof { .. }));
    assert!(st < eof, "exit-status before EOF");
    p.client.consume(ch, 3);
    p.client.consume_stderr(ch, 5);
    p.drive();
    let closed = p.position(|e| matches!(e, Event::ChannelClosed { channel } if *channel == ch));
    assert!(eof < closed);
    assert_eq!(p.srv.closed, vec![sch], "the server saw our CLOSE");
    assert_eq!(p.client.channel_count(), 0);
}

#[test]
fn unrequested_replies_and_server_opens_are_handled() {
    let mut p = authenticated(64 * 1024);
    let ch = p.client.open_session().unwrap();
    p.drive();
    p.client
        .request_pty(ch, "xterm", WinSize { cols: 80, rows: 24, ..WinSize::default() }, &[])
        .unwrap();
    p.client.window_change(ch, WinSize { cols: 100, rows: 30, ..WinSize::default() }).unwrap();
    p.client.signal(ch, "INT").unwrap();
    p.drive();
    // The reply to pty-req is matched to it (the server refuses PTYs today or grants one).
    assert!(p.has(|e| matches!(e, Event::RequestDone { request: "pty-req", .. })));
    assert!(!p.client.is_closed());
}

const PATTERN_LEN: usize = 300 * 1024 + 17;

fn pattern(seed: u8) -> Vec<u8> {
    (0..PATTERN_LEN).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[test]
fn direct_tcpip_both_ways_byte_exact_with_window_exhaustion() {
    let server_window = 64 * 1024;
    let mut p = authenticated(server_window);
    let client_window = 48 * 1024;
    p.client.set_channel_window(client_window, 8 * 1024);
    let ch = p.client.open_direct_tcpip(("127.0.0.1", 7), ("127.0.0.1", 5555)).unwrap();
    p.drive();
    assert!(p.has(|e| matches!(e, Event::ChannelOpened { .. })));
    let sch = p.srv.opened[0];

    // Client → server, the backend not reading: exactly the server's window goes.
    let up = pattern(1);
    let mut sent = p.client.send_data(ch, &up);
    p.drive();
    assert_eq!(sent, server_window as usize);
    assert_eq!(p.client.send_capacity(ch), 0);
    assert_eq!(p.server.inbound_len(sch), server_window as usize);
    // The backend drains; window comes back; the rest flows.
    p.srv.backend_drains = true;
    p.drain_backend(sch);
    p.drive();
    while sent < up.len() {
        assert!(p.client.send_capacity(ch) > 0, "window came back");
        sent += p.client.send_data(ch, &up[sent..]);
        p.drive();
    }
    p.client.send_eof(ch).unwrap();
    p.drive();
    assert_eq!(p.srv.backend_got, up, "byte-exact upstream");
    assert_eq!(p.srv.eofs, vec![sch]);

    // Server → client, the client not consuming: exactly our window arrives and no more.
    let down = pattern(2);
    let now = t0();
    let mut off = p.server.send_data(sch, &down, now);
    p.drive();
    assert_eq!(off, client_window as usize);
    assert_eq!(p.client.stdout(ch).len(), client_window as usize);
    assert_eq!(p.server.send_capacity(sch), 0);
    let mut got = Vec::new();
    while off < down.len() || !p.client.stdout(ch).is_empty() {
        let buf = p.client.stdout(ch);
        assert!(buf.len() <= client_window as usize, "never more than the window");
        got.extend_from_slice(buf);
        let n = buf.len();
        p.client.consume(ch, n);
        p.drive();
        off += p.server.send_data(sch, &down[off..], now);
        p.drive();
    }
    assert_eq!(got, down, "byte-exact downstream");

    // Server EOF then CLOSE; the client answers CLOSE and frees the number.
    p.server.backend_closed(sch);
    p.drive();
    let eof = p.position(|e| matches!(e, Event::ChannelEof { .. }));
    let closed = p.position(|e| matches!(e, Event::ChannelClosed { .. }));
    assert!(eof < closed);
    assert_eq!(p.srv.closed, vec![sch]);
    assert!(!p.client.is_closed() && !p.server.is_closed());
}

#[test]
fn our_close_first_then_theirs() {
    let mut p = authenticated(64 * 1024);
    let ch = p.client.open_direct_tcpip(("127.0.0.1", 7), ("127.0.0.1", 1)).unwrap();
    p.drive();
    let sch = p.srv.opened[0];
    p.client.close_channel(ch).unwrap();
    assert_eq!(p.client.send_data(ch, b"x"), 0, "nothing after CLOSE");
    p.drive();
    assert_eq!(p.srv.closed, vec![sch]);
    assert!(p.has(|e| matches!(e, Event::ChannelClosed { channel } if *channel == ch)));
    assert_eq!(p.client.channel_count(), 0);
}

#[test]
fn refused_direct_tcpip_frees_the_number() {
    let mut p = authenticated(64 * 1024);
    let ch = p.client.open_direct_tcpip(("127.0.0.1", 8), ("127.0.0.1", 1)).unwrap();
    p.drive();
    assert!(p.has(|e| matches!(e, Event::ChannelOpenFailed { channel, .. } if *channel == ch)));
    assert_eq!(p.client.channel_count(), 0);
}

#[test]
fn tcpip_forward_then_forwarded_channels_accepted_and_rejected() {
    let mut p = authenticated(64 * 1024);
    p.client.tcpip_forward("127.0.0.1", 0).unwrap();
    p.drive();
    let (listener, port) = p.srv.listens[0];
    assert_eq!(port, 0);
    p.server.listen_result(listener, Ok(4242));
    p.drive();
    assert!(p.has(|e| matches!(
        e,
        Event::GlobalReply { request: "tcpip-forward", ok: true, port: Some(4242) }
    )));

    let sch = p.server.forwarded_connection(listener, "10.0.0.1", 5555).unwrap();
    p.drive();
    let (ch, connected, originator) = p
        .events
        .iter()
        .find_map(|e| match e {
            Event::IncomingChannel {
                channel,
                kind: IncomingKind::ForwardedTcpip,
                connected,
                originator,
            } => Some((*channel, connected.clone(), originator.clone())),
            _ => None,
        })
        .expect("IncomingChannel");
    assert_eq!(connected, Some(("127.0.0.1".to_string(), 4242)));
    assert_eq!(originator, Some(("10.0.0.1".to_string(), 5555)));
    p.client.accept_channel(ch).unwrap();
    p.drive();
    assert_eq!(p.srv.forwarded_opened, vec![sch]);
    assert_eq!(p.server.send_data(sch, b"from the listener", t0()), 17);
    p.drive();
    assert_eq!(p.client.stdout(ch), b"from the listener");
    assert_eq!(p.client.send_data(ch, b"back"), 4);
    p.drive();
    assert_eq!(p.server.inbound(sch), b"back");

    // A second one is refused: the server hears the failure.
    p.events.clear();
    let sch2 = p.server.forwarded_connection(listener, "10.0.0.2", 6666).unwrap();
    p.drive();
    let ch2 = p
        .events
        .iter()
        .find_map(|e| match e {
            Event::IncomingChannel { channel, .. } => Some(*channel),
            _ => None,
        })
        .unwrap();
    p.client.reject_channel(ch2, 2, "no").unwrap();
    p.drive();
    assert_eq!(p.srv.forwarded_failed, vec![sch2]);
    assert!(!p.client.is_closed() && !p.server.is_closed());
}
