//! The worker's event loop on real loopback sockets, driving a fake line-echo core: reads split
//! across packets, output, timers, peer EOF, buffer growth and its bound, and drain.

use super::*;
use crate::cli::Args;
use crate::config::server_config_without_host_keys;
use crate::server::ServerJobDone;
use clap::Parser;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener as StdListener, TcpStream as StdStream};

/// Echoes each complete line upper-cased. `quit` closes (DISCONNECT 11), `auth` marks the
/// connection authenticated, `timer` asks for a timeout in 30 ms that answers `tick`.
#[derive(Default)]
struct Echo {
    out: Vec<u8>,
    events: VecDeque<Event>,
    closed: bool,
    auth: bool,
    deadline: Option<Instant>,
}

impl Core for Echo {
    fn handle_input(&mut self, input: &mut [u8], now: Instant) -> usize {
        let mut used = 0;
        while let Some(nl) = input.get(used..).and_then(|r| r.iter().position(|&b| b == b'\n')) {
            if self.closed {
                break;
            }
            let line = input[used..used + nl].to_vec();
            used += nl + 1;
            match &line[..] {
                b"quit" => self.close(DisconnectReason::ByApplication, "bye", now),
                b"auth" => self.auth = true,
                b"timer" => self.deadline = Some(now + Duration::from_millis(30)),
                _ => {}
            }
            self.out.extend(line.to_ascii_uppercase());
            self.out.push(b'\n');
        }
        used
    }
    fn handle_job_done(&mut self, _done: ServerJobDone, _now: Instant) {}
    fn handle_timeout(&mut self, _now: Instant) {
        self.deadline = None;
        self.out.extend_from_slice(b"tick\n");
    }
    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        let n = usize::from(!self.out.is_empty());
        out.append(&mut self.out);
        n
    }
    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }
    fn close(&mut self, reason: DisconnectReason, description: &str, _now: Instant) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.out.extend(format!("disconnect {}\n", reason.code()).bytes());
        self.events.push_back(Event::Closed {
            code: reason.code(),
            reason: description.to_string(),
            by_peer: false,
        });
    }
    fn wants_input(&self) -> bool {
        !self.closed
    }
    fn is_closed(&self) -> bool {
        self.closed
    }
    fn is_authenticated(&self) -> bool {
        self.auth
    }
}

struct Harness {
    tx: Sender<Control>,
    waker: Arc<Waker>,
    load: Arc<AtomicUsize>,
    reports: Receiver<Report>,
    listener: StdListener,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Harness {
    fn start(buffer_budget: usize) -> Harness {
        let args = Args::try_parse_from(["sshfront"]).unwrap();
        let config = Arc::new(server_config_without_host_keys(&args).unwrap());
        let poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), WAKER_TOKEN).unwrap());
        let acceptor_poll = Poll::new().unwrap();
        let acceptor_waker = Arc::new(Waker::new(acceptor_poll.registry(), mio::Token(7)).unwrap());
        let (tx, control) = crossbeam_channel::bounded(CONTROL_QUEUE);
        let (results_tx, results) = crossbeam_channel::bounded(4);
        let (reports_tx, reports) = crossbeam_channel::bounded(8);
        let load = Arc::new(AtomicUsize::new(0));
        let parts = WorkerParts {
            id: 0,
            poll,
            waker: waker.clone(),
            control,
            results_tx,
            results,
            reports: reports_tx,
            acceptor_waker,
            config,
            load: load.clone(),
            buffer_used: Arc::new(AtomicUsize::new(0)),
            buffer_budget,
            crypto: Arc::new(CryptoPool::new(1, 4, 1).unwrap()),
        };
        let thread = std::thread::spawn(move || run_with(parts, |_, _, _| Echo::default()));
        let listener = StdListener::bind("127.0.0.1:0").unwrap();
        Harness { tx, waker, load, reports, listener, thread: Some(thread) }
    }

    /// A client socket whose server side has been handed to the worker.
    fn connect(&self) -> StdStream {
        let client = StdStream::connect(self.listener.local_addr().unwrap()).unwrap();
        client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let (server, peer) = self.listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        self.load.fetch_add(1, Ordering::AcqRel);
        let stream = TcpStream::from_std(server);
        let accepted_at = Instant::now();
        self.send(Control::NewConn { stream, peer, accepted_at, source: None, startup: None });
        client
    }

    fn send(&self, c: Control) {
        self.tx.send(c).unwrap();
        self.waker.wake().unwrap();
    }

    fn wait_load(&self, n: usize) {
        let until = Instant::now() + Duration::from_secs(10);
        while self.load.load(Ordering::Acquire) != n {
            assert!(Instant::now() < until, "load stuck at {}", self.load.load(Ordering::Acquire));
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Drains and returns the exit metrics.
    fn drain(mut self, grace: Duration) -> Metrics {
        self.send(Control::Drain { deadline: Instant::now() + grace });
        self.thread.take().unwrap().join().unwrap();
        loop {
            match self.reports.recv_timeout(Duration::from_secs(5)).unwrap() {
                Report::Exited { metrics, .. } => return *metrics,
                Report::Stats { .. } | Report::Penalty { .. } => {}
            }
        }
    }
}

fn read_line(r: &mut BufReader<StdStream>) -> String {
    let mut s = String::new();
    r.read_line(&mut s).unwrap();
    s
}

#[test]
fn echo_split_reads_timers_eof_and_drain() {
    let h = Harness::start(64 << 20);

    // Input split mid-line: the core consumes only whole lines; the rest waits in the buffer.
    let mut a = h.connect();
    a.write_all(b"hello\nwor").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    a.write_all(b"ld\ntimer\n").unwrap();
    let mut ar = BufReader::new(a.try_clone().unwrap());
    assert_eq!(read_line(&mut ar), "HELLO\n");
    assert_eq!(read_line(&mut ar), "WORLD\n");
    assert_eq!(read_line(&mut ar), "TIMER\n");
    assert_eq!(read_line(&mut ar), "tick\n", "the core's deadline drove the poll timeout");

    // Peer EOF: the worker closes the core (DISCONNECT 10 staged) and the socket.
    let c = h.connect();
    h.wait_load(2);
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut cr = BufReader::new(c);
    assert_eq!(read_line(&mut cr), "disconnect 10\n");
    assert_eq!(read_line(&mut cr), "", "socket closed after the flush");
    h.wait_load(1);

    // `quit`: the core closes, the worker flushes the DISCONNECT, then closes.
    let mut q = h.connect();
    q.write_all(b"quit\nignored\n").unwrap();
    let mut qr = BufReader::new(q);
    assert_eq!(read_line(&mut qr), "disconnect 11\n");
    assert_eq!(read_line(&mut qr), "QUIT\n");
    assert_eq!(read_line(&mut qr), "");
    h.wait_load(1);

    // Drain: `a` is not authenticated and is closed at once; `b` is and runs until the deadline.
    let mut b = h.connect();
    b.write_all(b"auth\n").unwrap();
    let mut br = BufReader::new(b.try_clone().unwrap());
    assert_eq!(read_line(&mut br), "AUTH\n");
    h.wait_load(2);
    let started = Instant::now();
    let load = h.load.clone();
    let drainer = std::thread::spawn(move || h.drain(Duration::from_millis(300)));
    assert_eq!(read_line(&mut ar), "disconnect 11\n");
    assert_eq!(read_line(&mut ar), "");
    b.write_all(b"still here\n").unwrap();
    assert_eq!(read_line(&mut br), "STILL HERE\n", "authenticated connection keeps running");
    assert_eq!(read_line(&mut br), "disconnect 11\n");
    assert!(started.elapsed() >= Duration::from_millis(250), "closed before the drain deadline");
    assert_eq!(read_line(&mut br), "");
    let m = drainer.join().unwrap();
    assert_eq!(load.load(Ordering::Acquire), 0);
    assert_eq!((m.accepted, m.closed), (4, 4));
    assert_eq!(m.disconnects.get(&11), Some(&3));
    assert_eq!(m.disconnects.get(&10), Some(&1));
    assert!(m.bytes_in > 0 && m.bytes_out > 0);
    assert_eq!(m.accept_to_banner.len(), 4);
}

#[test]
fn read_buffer_grows_for_a_long_packet_and_refuses_past_the_largest_class() {
    let h = Harness::start(64 << 20);
    let mut a = h.connect();
    let mut ar = BufReader::new(a.try_clone().unwrap());
    // 100 KiB "packet": needs the read buffer grown past the 16 and 64 KiB classes.
    let long = vec![b'x'; 100 * 1024];
    let writer = {
        let mut a2 = a.try_clone().unwrap();
        let long = long.clone();
        std::thread::spawn(move || {
            a2.write_all(&long).unwrap();
            a2.write_all(b"\n").unwrap();
        })
    };
    let line = read_line(&mut ar);
    writer.join().unwrap();
    assert_eq!(line.len(), long.len() + 1);
    assert!(line.bytes().take(long.len()).all(|b| b == b'X'));

    // Longer than the largest class with no line end: refused with a protocol error.
    let huge = vec![b'y'; CLASSES[CLASSES.len() - 1]];
    let _ = a.write_all(&huge);
    assert_eq!(read_line(&mut ar), "disconnect 2\n");
    assert_eq!(read_line(&mut ar), "");
    h.wait_load(0);
    let m = h.drain(Duration::ZERO);
    assert_eq!(m.disconnects.get(&2), Some(&1));
}

#[test]
fn connection_without_buffer_memory_waits_instead_of_failing() {
    // Budget of one small buffer: a second connection must wait for the first to go idle.
    let h = Harness::start(CLASSES[0]);
    let mut a = h.connect();
    let mut b = h.connect();
    let mut ar = BufReader::new(a.try_clone().unwrap());
    let mut br = BufReader::new(b.try_clone().unwrap());
    a.write_all(b"partial").unwrap(); // holds a's read buffer (no line end yet)
    std::thread::sleep(Duration::from_millis(50));
    b.write_all(b"second\n").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    a.write_all(b" done\n").unwrap(); // a goes idle and returns its buffer
    assert_eq!(read_line(&mut ar), "PARTIAL DONE\n");
    assert_eq!(read_line(&mut br), "SECOND\n");
    drop((a, b));
    let m = h.drain(Duration::ZERO);
    assert_eq!(m.accepted, 2);
}
