use super::*;
use crate::proxy::fake_down::FakeDown;

/// One fixed instant: the bridge only passes it on.
fn now() -> Instant {
    static T: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    #[allow(clippy::disallowed_methods)]
    *T.get_or_init(Instant::now)
}

/// The upstream: records requests, takes data up to its window, hands out stdout.
#[derive(Default)]
struct FakeUp {
    next: u32,
    window: usize,
    sent: Vec<u8>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    log: Vec<String>,
}

impl Up for FakeUp {
    fn open_session(&mut self) -> Result<ClientChannel, UseError> {
        self.next += 1;
        self.log.push("open session".into());
        Ok(ClientChannel(self.next))
    }
    fn open_direct_tcpip(
        &mut self,
        target: (&str, u16),
        _originator: (&str, u16),
    ) -> Result<ClientChannel, UseError> {
        self.next += 1;
        self.log.push(format!("open direct {}:{}", target.0, target.1));
        Ok(ClientChannel(self.next))
    }
    fn open_direct_streamlocal(&mut self, path: &str) -> Result<ClientChannel, UseError> {
        self.next += 1;
        self.log.push(format!("open streamlocal {path}"));
        Ok(ClientChannel(self.next))
    }
    fn request_pty(&mut self, _ch: ClientChannel, pty: &Pty) {
        let s = pty.size;
        self.log.push(format!("pty {} {}x{} modes {:?}", pty.term, s.cols, s.rows, pty.modes));
    }
    fn request_env(&mut self, _ch: ClientChannel, name: &str, _value: &[u8]) {
        self.log.push(format!("env {name}"));
    }
    fn request_start(&mut self, _ch: ClientChannel, start: &Start) {
        self.log.push(format!("start {start:?}"));
    }
    fn window_change(&mut self, _ch: ClientChannel, size: WinSize) {
        self.log.push(format!("resize {}x{}", size.cols, size.rows));
    }
    fn signal(&mut self, _ch: ClientChannel, name: &str) {
        self.log.push(format!("signal {name}"));
    }
    fn send_break(&mut self, _ch: ClientChannel, ms: u32) {
        self.log.push(format!("break {ms}"));
    }
    fn send_eow(&mut self, _ch: ClientChannel) {
        self.log.push("eow".into());
    }
    fn stdout(&self, _ch: ClientChannel) -> &[u8] {
        &self.stdout
    }
    fn stderr(&self, _ch: ClientChannel) -> &[u8] {
        &self.stderr
    }
    fn consume(&mut self, _ch: ClientChannel, n: usize) -> usize {
        self.stdout.drain(..n);
        n
    }
    fn consume_stderr(&mut self, _ch: ClientChannel, n: usize) -> usize {
        self.stderr.drain(..n);
        n
    }
    fn send_data(&mut self, _ch: ClientChannel, data: &[u8]) -> usize {
        let n = data.len().min(self.window);
        self.window -= n;
        self.sent.extend_from_slice(&data[..n]);
        n
    }
    fn send_eof(&mut self, _ch: ClientChannel) {
        self.log.push("eof".into());
    }
    fn close_channel(&mut self, _ch: ClientChannel) {
        self.log.push("close".into());
    }
    fn tcpip_forward(&mut self, addr: &str, port: u16) -> bool {
        self.log.push(format!("forward {addr}:{port}"));
        true
    }
    fn cancel_tcpip_forward(&mut self, addr: &str, port: u16) {
        self.log.push(format!("cancel {addr}:{port}"));
    }
    fn accept_channel(&mut self, ch: ClientChannel) {
        self.log.push(format!("accept {}", ch.0));
    }
    fn reject_channel(&mut self, ch: ClientChannel, code: u32, _text: &str) {
        self.log.push(format!("reject {} {code}", ch.0));
    }
    fn request_agent(&mut self, _ch: ClientChannel) {
        self.log.push("agent".into());
    }
}

fn size(cols: u32, rows: u32) -> WinSize {
    WinSize { cols, rows, width_px: 0, height_px: 0 }
}

fn shell_with_pty() -> Open {
    Open::Session {
        start: Start::Shell,
        pty: Some(Pty { term: "xterm".into(), size: size(80, 24), modes: vec![53, 0, 0, 0, 0, 0] }),
        env: vec![("LANG".into(), "C".into())],
        agent: false,
    }
}

const D: ChannelId = ChannelId(7);
const U: ClientChannel = ClientChannel(1);

#[test]
fn waits_for_the_upstream_then_replays_requests_in_order() {
    let (mut b, mut up, mut d) = (Bridge::new(), FakeUp::default(), FakeDown::default());
    b.open(D, shell_with_pty(), &mut up, &mut d, now());
    assert!(up.log.is_empty(), "nothing upstream before it is logged in");
    b.resize(D, size(100, 40), &mut up);
    b.ready(&mut up, &mut d, now());
    assert_eq!(up.log, ["open session"]);
    b.up_opened(U, &mut up, &mut d);
    assert_eq!(
        up.log,
        ["open session", "pty xterm 100x40 modes [53, 0, 0, 0, 0, 0]", "env LANG", "start Shell"],
        "terminal modes carried as the user sent them (ECHO off)"
    );
    b.resize(D, size(120, 50), &mut up);
    assert_eq!(up.log.last().unwrap(), "resize 120x50", "after start: passed on at once");
    b.signal(D, "INT", &mut up);
    b.send_break(D, 300, &mut up);
    assert_eq!(up.log[up.log.len() - 2..], ["signal INT", "break 300"]);
}

#[test]
fn windows_couple_end_to_end() {
    let (mut b, mut up, mut d) = (Bridge::new(), FakeUp::default(), FakeDown::default());
    b.ready(&mut up, &mut d, now());
    b.open(
        D,
        Open::Session { start: Start::Exec("cat".into()), pty: None, env: vec![], agent: false },
        &mut up,
        &mut d,
        now(),
    );
    b.up_opened(U, &mut up, &mut d);
    // User → upstream: only what the upstream window takes leaves `inbound`.
    d.inbound = vec![1; 100];
    up.window = 30;
    assert!(b.pump(&mut up, &mut d, now()));
    assert_eq!((up.sent.len(), d.inbound.len()), (30, 70), "the rest stays in the user's window");
    assert!(!b.pump(&mut up, &mut d, now()), "no window: nothing moves");
    up.window = 1000;
    b.pump(&mut up, &mut d, now());
    assert_eq!((up.sent.len(), d.inbound.len()), (100, 0));
    // Upstream → user: consumed upstream only as the user's window allows.
    up.stdout = vec![2; 50];
    d.window = 20;
    b.pump(&mut up, &mut d, now());
    assert_eq!((d.out.len(), up.stdout.len()), (20, 30));
    d.window = 100;
    b.pump(&mut up, &mut d, now());
    assert_eq!((d.out.len(), up.stdout.len()), (50, 0));
}

#[test]
fn eof_follows_the_data_and_exit_status_comes_with_close() {
    let (mut b, mut up, mut d) = (Bridge::new(), FakeUp::default(), FakeDown::default());
    b.ready(&mut up, &mut d, now());
    b.open(
        D,
        Open::Session { start: Start::Exec("x".into()), pty: None, env: vec![], agent: false },
        &mut up,
        &mut d,
        now(),
    );
    b.up_opened(U, &mut up, &mut d);
    up.stdout = vec![3; 10];
    b.up_eof(U);
    b.up_exit(U, ExitStatus::Code(3));
    d.window = 4;
    b.pump(&mut up, &mut d, now());
    assert!(d.log.is_empty(), "EOF waits for the bytes before it");
    d.window = 100;
    b.pump(&mut up, &mut d, now());
    assert_eq!(d.log, ["eof"]);
    b.up_closed(U, &mut d);
    assert_eq!(d.log, ["eof", "exit Code(3)"]);
    assert!(b.is_empty());
    // The user's EOF goes upstream after its bytes.
    let (mut b, mut up, mut d) = (Bridge::new(), FakeUp::default(), FakeDown::default());
    b.ready(&mut up, &mut d, now());
    b.open(
        D,
        Open::Session { start: Start::Shell, pty: None, env: vec![], agent: false },
        &mut up,
        &mut d,
        now(),
    );
    b.up_opened(U, &mut up, &mut d);
    d.inbound = vec![1; 10];
    b.down_eof(D);
    b.pump(&mut up, &mut d, now());
    assert!(!up.log.contains(&"eof".to_string()), "bytes first");
    up.window = 10;
    b.pump(&mut up, &mut d, now());
    assert_eq!(up.log.last().unwrap(), "eof");
}

#[test]
fn failures_reach_the_user_as_words() {
    let (mut b, mut up, mut d) = (Bridge::new(), FakeUp::default(), FakeDown::default());
    b.open(D, shell_with_pty(), &mut up, &mut d, now());
    b.open(
        ChannelId(8),
        Open::DirectTcpip {
            host: "db".into(),
            port: 5432,
            originator: "o".into(),
            originator_port: 1,
        },
        &mut up,
        &mut d,
        now(),
    );
    b.fail("upstream db1:22 unreachable", &mut d, now());
    assert_eq!(String::from_utf8_lossy(&d.err), "sshfront: upstream db1:22 unreachable\r\n");
    assert_eq!(
        d.log,
        [
            format!("exit Code({PROXY_EXIT_CODE})"),
            format!("open-failed {OPEN_CONNECT_FAILED} upstream db1:22 unreachable")
        ]
    );
    assert!(b.is_empty());
    // Later channels fail at once.
    b.open(ChannelId(9), shell_with_pty(), &mut up, &mut d, now());
    assert_eq!(d.log.len(), 3);
    assert!(up.log.is_empty());
}

#[test]
fn refused_exec_and_refused_open_end_the_session_with_a_message() {
    let (mut b, mut up, mut d) = (Bridge::new(), FakeUp::default(), FakeDown::default());
    b.ready(&mut up, &mut d, now());
    let sftp = Open::Session {
        start: Start::Subsystem("sftp".into()),
        pty: None,
        env: vec![],
        agent: false,
    };
    b.open(D, sftp, &mut up, &mut d, now());
    b.up_opened(U, &mut up, &mut d);
    b.up_request_done(U, "subsystem", false, &mut up, &mut d, now());
    assert!(String::from_utf8_lossy(&d.err).contains("refused the subsystem sftp request"));
    assert_eq!(up.log.last().unwrap(), "close");
    b.up_closed(U, &mut d);
    assert_eq!(d.log, [format!("exit Code({PROXY_EXIT_CODE})")]);

    let (mut b, mut up, mut d) = (Bridge::new(), FakeUp::default(), FakeDown::default());
    b.ready(&mut up, &mut d, now());
    let direct =
        Open::DirectTcpip { host: "x".into(), port: 1, originator: "o".into(), originator_port: 2 };
    b.open(D, direct, &mut up, &mut d, now());
    b.up_open_failed(U, 2, "connect failed", &mut d, now());
    assert_eq!(d.log, ["open-failed 2 connect failed"]);
}

#[test]
fn user_close_closes_upstream_even_while_the_open_is_in_flight() {
    let (mut b, mut up, mut d) = (Bridge::new(), FakeUp::default(), FakeDown::default());
    b.ready(&mut up, &mut d, now());
    b.open(D, shell_with_pty(), &mut up, &mut d, now());
    b.down_closed(D, &mut up);
    assert!(b.is_empty());
    assert!(!up.log.contains(&"close".to_string()), "not open upstream yet");
    b.up_opened(U, &mut up, &mut d);
    assert_eq!(up.log.last().unwrap(), "close", "closed when the confirmation comes");
    assert!(d.log.is_empty());
}

#[test]
fn remote_forward_round_trip_of_requests_and_channels() {
    let (mut b, mut up, mut d) = (Bridge::new(), FakeUp::default(), FakeDown::default());
    b.listen(ListenerId(1), "127.0.0.1", 0, &mut up, &mut d);
    assert!(up.log.is_empty(), "waits for the upstream login");
    b.ready(&mut up, &mut d, now());
    assert_eq!(up.log, ["forward 127.0.0.1:0"]);
    b.up_global_reply("tcpip-forward", true, Some(4242), &mut d);
    assert_eq!(d.log, ["listen 1 Ok(4242)"]);
    // A connection on the upstream's port: opened to the user, accepted upstream once the
    // user confirms; unknown ports are refused.
    b.up_incoming(ClientChannel(5), 9, ("1.2.3.4", 1), &mut up, &mut d);
    assert_eq!(up.log.last().unwrap(), &format!("reject 5 {OPEN_CONNECT_FAILED}"));
    b.up_incoming(ClientChannel(6), 4242, ("1.2.3.4", 1), &mut up, &mut d);
    assert_eq!(d.log.last().unwrap(), "forwarded on 1");
    b.down_opened(ChannelId(100), &mut up);
    assert_eq!(up.log.last().unwrap(), "accept 6");
    up.stdout = b"hi".to_vec();
    d.window = 10;
    b.pump(&mut up, &mut d, now());
    assert_eq!(d.out, b"hi");
    b.unlisten(ListenerId(1), &mut up);
    assert_eq!(up.log.last().unwrap(), "cancel 127.0.0.1:4242");
    // A refused forward answers the user.
    b.listen(ListenerId(2), "0.0.0.0", 22, &mut up, &mut d);
    b.up_global_reply("tcpip-forward", false, None, &mut d);
    assert_eq!(d.log.last().unwrap(), "listen 2 Err(())");
}

#[test]
fn agent_forwarding_is_asked_upstream_and_its_channels_are_carried() {
    let (mut b, mut up, mut d) = (Bridge::new(), FakeUp::default(), FakeDown::default());
    d.agent = true;
    // Before any session asked upstream, an agent channel from the upstream is refused.
    b.ready(&mut up, &mut d, now());
    b.up_agent(ClientChannel(9), &mut up, &mut d);
    assert_eq!(up.log, [format!("reject 9 {OPEN_ADMINISTRATIVELY_PROHIBITED}")]);
    assert!(d.log.is_empty(), "the user's agent is not reached");
    up.log.clear();
    let open = Open::Session { start: Start::Shell, pty: None, env: vec![], agent: true };
    b.open(D, open, &mut up, &mut d, now());
    b.up_opened(U, &mut up, &mut d);
    assert_eq!(up.log, ["open session", "agent", "start Shell"], "agent first, as OpenSSH");
    // The upstream's agent channel: a new agent channel to the user, accepted upstream once
    // the user confirms, then bytes both ways within the windows.
    b.up_agent(ClientChannel(5), &mut up, &mut d);
    assert_eq!(d.log, ["open agent"]);
    assert_eq!(b.len(), 2);
    b.down_opened(ChannelId(201), &mut up);
    assert_eq!(up.log.last().unwrap(), "accept 5");
    up.stdout = vec![0, 0, 0, 1, 11];
    d.window = 3;
    b.pump(&mut up, &mut d, now());
    assert_eq!((d.out.len(), up.stdout.len()), (3, 2), "bounded by the user's window");
    d.window = 100;
    b.pump(&mut up, &mut d, now());
    assert_eq!(d.out, [0, 0, 0, 1, 11]);
    // The user's agent went: a later upstream agent channel is refused.
    d.agent = false;
    b.up_agent(ClientChannel(6), &mut up, &mut d);
    assert_eq!(up.log.last().unwrap(), &format!("reject 6 {OPEN_ADMINISTRATIVELY_PROHIBITED}"));
    // The user refuses the channel: so does the upstream.
    d.agent = true;
    b.up_agent(ClientChannel(7), &mut up, &mut d);
    b.down_open_failed(ChannelId(203), 1, "no", &mut up);
    assert_eq!(up.log.last().unwrap(), "reject 7 1");
    assert_eq!(b.len(), 2, "the first agent channel and the session stay");
}

#[test]
fn exit_signal_is_carried_whole() {
    let (mut b, mut up, mut d) = (Bridge::new(), FakeUp::default(), FakeDown::default());
    b.ready(&mut up, &mut d, now());
    b.open(D, shell_with_pty(), &mut up, &mut d, now());
    b.up_opened(U, &mut up, &mut d);
    let status =
        ExitStatus::Signal { name: "SEGV".into(), core_dumped: true, message: "boom".into() };
    b.up_exit(U, status.clone());
    b.up_closed(U, &mut d);
    assert_eq!(d.log, [format!("exit {status:?}")]);
}

#[test]
fn eow_passes_both_ways() {
    let (mut b, mut up, mut d) = (Bridge::new(), FakeUp::default(), FakeDown::default());
    b.ready(&mut up, &mut d, now());
    b.open(D, shell_with_pty(), &mut up, &mut d, now());
    // The user's eow before the upstream session is open: sent after its start request.
    b.down_eow(D, &mut up);
    assert_eq!(up.log, ["open session"]);
    b.up_opened(U, &mut up, &mut d);
    assert_eq!(up.log[up.log.len() - 2..], ["start Shell", "eow"]);
    b.down_eow(D, &mut up);
    assert_eq!(up.log.last().unwrap(), "eow", "once open: at once");
    b.up_eow(U, &mut d);
    assert_eq!(d.log, ["eow"]);
    // Not for a direct-tcpip (only sessions carry it).
    let direct =
        Open::DirectTcpip { host: "x".into(), port: 1, originator: "o".into(), originator_port: 2 };
    b.open(ChannelId(8), direct, &mut up, &mut d, now());
    b.up_opened(ClientChannel(2), &mut up, &mut d);
    b.up_eow(ClientChannel(2), &mut d);
    assert_eq!(d.log, ["eow", "opened"]);
}

#[test]
fn unix_socket_forward_is_opened_upstream() {
    let (mut b, mut up, mut d) = (Bridge::new(), FakeUp::default(), FakeDown::default());
    b.ready(&mut up, &mut d, now());
    b.open(D, Open::DirectStreamlocal { path: "/run/app.sock".into() }, &mut up, &mut d, now());
    assert_eq!(up.log, ["open streamlocal /run/app.sock"]);
    b.up_opened(U, &mut up, &mut d);
    assert_eq!(d.log, ["opened"]);
    let (mut b, mut up, mut d) = (Bridge::new(), FakeUp::default(), FakeDown::default());
    b.ready(&mut up, &mut d, now());
    b.open(D, Open::DirectStreamlocal { path: "/nope.sock".into() }, &mut up, &mut d, now());
    b.up_open_failed(U, OPEN_CONNECT_FAILED, "no such socket", &mut d, now());
    assert_eq!(d.log, [format!("open-failed {OPEN_CONNECT_FAILED} no such socket")]);
}
