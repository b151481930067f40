//! A blocking test client on sshfront's own client core: one TCP connection, jobs run inline.
//! Good for a few hundred concurrent connections on threads; the bench harness is the mio one.

use sshfront::algo::SystemRng;
use sshfront::client::ClientConnection;
use sshfront::client::Event;
use sshfront::transport::TransportConfig;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// Every algorithm we implement, default order (all kex methods, off-by-default ones too).
pub fn client_config() -> TransportConfig {
    TransportConfig::all_algorithms("sshfront_testclient")
}

/// How a client connection ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// KEX done and `ssh-userauth` accepted.
    ServiceAccepted,
    /// The server sent DISCONNECT with this code.
    Disconnected(u32),
    /// Something else: IO error, timeout, our own failure.
    Failed(String),
}

/// A connected client with its socket.
pub struct TestClient {
    pub conn: ClientConnection,
    pub sock: TcpStream,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    pub closed: Option<(u32, bool)>,
    pub service_accepted: bool,
    /// Sequence numbers named by the server's UNIMPLEMENTED replies, in arrival order.
    pub unimplemented: Vec<u32>,
}

impl TestClient {
    pub fn connect(addr: SocketAddr, cfg: Arc<TransportConfig>) -> std::io::Result<TestClient> {
        Self::connect_expecting(addr, cfg, None)
    }

    /// Like [`connect`](Self::connect), failing the key exchange unless the server's host key
    /// blob is `host_key` (when given).
    pub fn connect_expecting(
        addr: SocketAddr,
        cfg: Arc<TransportConfig>,
        host_key: Option<Arc<[u8]>>,
    ) -> std::io::Result<TestClient> {
        let sock = TcpStream::connect(addr)?;
        Self::from_stream(sock, cfg, host_key)
    }

    /// A client on an already connected socket (e.g. one bound to 127.0.0.2 first).
    pub fn from_stream(
        sock: TcpStream,
        cfg: Arc<TransportConfig>,
        host_key: Option<Arc<[u8]>>,
    ) -> std::io::Result<TestClient> {
        sock.set_nodelay(true)?;
        sock.set_read_timeout(Some(Duration::from_millis(50)))?;
        let conn = ClientConnection::new_raw(cfg, Box::new(SystemRng), host_key, Instant::now());
        Ok(TestClient {
            conn,
            sock,
            inbuf: Vec::new(),
            outbuf: Vec::new(),
            closed: None,
            service_accepted: false,
            unimplemented: Vec::new(),
        })
    }

    /// Writes what the core has, runs jobs, reads once (50 ms timeout) and feeds the core.
    /// `before_init`: called once, after the first crypto job ran and before its result is
    /// fed back (so many clients can send their KEX init at the same moment).
    pub fn step(&mut self, hook: &mut dyn FnMut()) -> std::io::Result<()> {
        let now = Instant::now();
        while let Some(e) = self.conn.poll_event() {
            match e {
                Event::Job(j) => {
                    let done = j.run();
                    hook();
                    self.conn.handle_job_done(done, now);
                }
                Event::ServiceAccepted(_) => self.service_accepted = true,
                Event::Closed { code, by_peer, .. } => self.closed = Some((code, by_peer)),
                Event::Log(l) => {
                    if let Some(seq) = l.strip_prefix("peer: UNIMPLEMENTED for packet ") {
                        self.unimplemented.extend(seq.parse::<u32>().ok());
                    }
                }
                _ => {}
            }
        }
        self.outbuf.clear();
        self.conn.poll_transmit(&mut self.outbuf);
        if !self.outbuf.is_empty() {
            self.sock.write_all(&self.outbuf)?;
        }
        if self.closed.is_some() {
            return Ok(());
        }
        let mut buf = [0u8; 16 * 1024];
        match self.sock.read(&mut buf) {
            Ok(0) => {
                self.conn.transport_mut().peer_closed();
            }
            Ok(n) => self.inbuf.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
        let used = self.conn.handle_input(&mut self.inbuf, now);
        self.inbuf.drain(..used);
        Ok(())
    }

    /// Steps until `done(self)` or the connection closes or `limit` passes.
    pub fn run_until(
        &mut self,
        limit: Duration,
        hook: &mut dyn FnMut(),
        done: &dyn Fn(&TestClient) -> bool,
    ) -> Outcome {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Err(e) = self.step(hook) {
                return Outcome::Failed(format!("io: {e}"));
            }
            if done(self) {
                return Outcome::ServiceAccepted;
            }
            if let Some((code, _)) = self.closed {
                return Outcome::Disconnected(code);
            }
        }
        Outcome::Failed("timeout".into())
    }

    /// Handshake and `ssh-userauth` service request.
    pub fn handshake(&mut self, limit: Duration) -> Outcome {
        if let Err(e) = self.conn.transport_mut().request_service("ssh-userauth") {
            return Outcome::Failed(format!("request: {e}"));
        }
        self.run_until(limit, &mut || {}, &|c| c.service_accepted)
    }
}

/// `n` clients on threads: all connect, then all start at a barrier; with `sync_init`, all
/// also send their first KEX init message at the same moment. Returns each outcome.
pub fn concurrent_handshakes(
    addr: SocketAddr,
    n: usize,
    sync_init: bool,
    limit: Duration,
) -> Vec<Outcome> {
    let cfg = Arc::new(client_config());
    let start = Arc::new(Barrier::new(n));
    let init = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (cfg, start, init) = (cfg.clone(), start.clone(), init.clone());
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let client = TestClient::connect(addr, cfg);
                    start.wait();
                    let mut client = match client {
                        Ok(c) => c,
                        Err(e) => {
                            if sync_init {
                                init.wait();
                            }
                            return Outcome::Failed(format!("connect: {e}"));
                        }
                    };
                    if let Err(e) = client.conn.transport_mut().request_service("ssh-userauth") {
                        return Outcome::Failed(format!("request: {e}"));
                    }
                    let mut waited = !sync_init;
                    let mut hook = || {
                        if !waited {
                            waited = true;
                            init.wait();
                        }
                    };
                    let out = client.run_until(limit, &mut hook, &|c| c.service_accepted);
                    if !waited {
                        init.wait();
                    }
                    out
                })
                .expect("spawn client thread")
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap_or(Outcome::Failed("panic".into()))).collect()
}
