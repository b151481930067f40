//! The SSH transport layer (RFC 4253 and extensions) as a sans-IO state machine, both roles.
//!
//! Input: bytes read from the socket ([`Transport::read`]), finished crypto jobs
//! ([`Transport::handle_job_done`]) and the time. Output: sealed bytes
//! ([`Transport::poll_transmit`]), events ([`Transport::poll_event`]) and the next deadline
//! ([`Transport::poll_timeout`]). No socket, thread or clock inside; the expensive KEX math leaves
//! as a [`CryptoJob`]. Messages for the service layers (≥ 50) come out of `read` as
//! [`Read::Service`] so the caller dispatches them without a copy.
//!
//! Modelled on Twisted Conch's `SSHTransportBase`, with its holes closed: strict KEX, a state
//! table for every inbound number, a bounded held-back queue, and a DISCONNECT with the right
//! code for every bad input (staged before `read` returns, so the runtime cannot forget it).

pub mod config;
pub mod disconnect;
pub mod error;
pub mod job;
mod kex;
pub mod msgs;
pub mod outbox;
pub mod state;
pub mod version;

pub use config::TransportConfig;
pub use disconnect::DisconnectReason;
pub use error::Error;
pub use job::{CryptoJob, JobDone};

use crate::algo::host_key::HostKeyAlg;
use crate::algo::Rng;
use crate::packet::{PacketOpener, PacketSealer, PayloadAt, HEADER_LEN};
use crate::wire::msg_no;
use error::DecodeContext;
use kex::KexRun;
use outbox::Outbox;
use state::{Phase, Verdict};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which end of the connection we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

/// What the transport tells its owner.
pub enum Event {
    /// Run this on the crypto pool and feed the result to `handle_job_done`.
    Job(CryptoJob),
    /// A key exchange finished (the first or a rekey).
    KexDone(KexSummary),
    /// Server: we accepted this service. Client: the server accepted it.
    ServiceAccepted(&'static str),
    /// The connection is over; flush what `poll_transmit` still gives, then close.
    Closed { code: u32, reason: String, by_peer: bool },
    /// Worth a log line (a DEBUG message with always_display, an UNIMPLEMENTED from the peer).
    Log(String),
}

/// Negotiated algorithms and timing of one key exchange.
#[derive(Debug, Clone)]
pub struct KexSummary {
    pub first: bool,
    pub kex: &'static str,
    pub host_key: &'static str,
    pub cipher_in: &'static str,
    pub cipher_out: &'static str,
    pub mac_in: &'static str,
    pub mac_out: &'static str,
    pub compression_in: &'static str,
    pub compression_out: &'static str,
    pub strict: bool,
    /// From our KEXINIT to NEWKEYS both ways.
    pub duration: Duration,
}

/// What one call to [`Transport::read`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// Consumed this many bytes, handled inside the transport; call again.
    Consumed(usize),
    /// A service-layer message: `consumed` bytes used; the payload is at `payload` (relative to
    /// the slice passed in) and `seq` is its sequence number (for UNIMPLEMENTED).
    Service { consumed: usize, payload: PayloadAt, seq: u32 },
    /// Nothing more can be done now: incomplete packet, or waiting for a crypto job.
    Wait,
    /// The connection is over (a DISCONNECT was staged or received).
    Closed,
}

/// One connection's transport state.
pub struct Transport {
    role: Role,
    config: Arc<TransportConfig>,
    rng: Box<dyn Rng>,
    /// Padding comes from its own ChaCha20 keyed once from `rng` (as OpenSSH pads from its
    /// arc4random): sealing a batch makes no system call, and the draws of `rng` (cookies,
    /// job seeds) do not depend on when batches are sealed, so seeded runs replay exactly.
    pad_rng: Box<crate::algo::rng::JobRng>,
    /// Our identification line without CR LF (for H).
    our_version: Vec<u8>,
    peer_version: Option<Vec<u8>>,
    opener: PacketOpener,
    sealer: PacketSealer,
    /// Outgoing packets: `tx[..tx_sealed]` sealed, the rest staged (framed, not yet
    /// encrypted) for the next seal pass. Usually the runtime's pooled buffer, lent with
    /// [`Transport::lend_output`].
    tx: Vec<u8>,
    tx_sealed: usize,
    /// Packets sealed since the last `poll_transmit` (one batch, as `poll_transmit` reports).
    batch_packets: usize,
    /// Messages held back while our key exchange runs.
    held: Outbox,
    kex: Option<Box<KexRun>>,
    session_id: Option<Vec<u8>>,
    strict: bool,
    /// Server: the client sent `ext-info-c`.
    peer_ext_info: bool,
    first_kex_done: bool,
    /// Packets the peer sent before its first KEXINIT (strict KEX wants none).
    packets_before_kexinit: u32,
    service: Option<&'static str>,
    /// Server: services a client may request. Client: the one we requested.
    services: &'static [&'static str],
    authenticated: bool,
    closed: bool,
    events: VecDeque<Event>,
    last_kex: Option<KexSummary>,
    last_kex_done_at: Option<Instant>,
    compression_in: &'static str,
    compression_out: &'static str,
    /// Client role: the host key blob we must see, if pinned.
    expected_host_key: Option<Arc<[u8]>>,
    kex_count: u64,
    /// EXT_INFO messages received, and the server-sig-algs value (client role).
    ext_info_count: u32,
    server_sig_algs: Option<String>,
    /// Client role: the host key blob the server presented in the last exchange.
    server_host_key: Option<Vec<u8>>,
    /// Sealed bytes `poll_transmit` copied rather than handed over (see `bytes_copied`).
    copied_out: u64,
    /// A message being filled in place: (packet start, data start) in `tx`.
    fill_at: Option<(u32, u32)>,
    /// Bytes per direction before a volume rekey: `--rekey-limit` or the negotiated cipher's
    /// default, fixed at each NEWKEYS so the per-packet check is one comparison.
    rekey_bytes: u64,
}

impl Transport {
    /// Server role: stages our identification line and KEXINIT.
    pub fn new_server(
        config: Arc<TransportConfig>,
        rng: Box<dyn Rng>,
        services: &'static [&'static str],
        now: Instant,
    ) -> Self {
        let mut t = Self::new(Role::Server, config, rng, services, None);
        t.start_kex(now);
        t
    }

    /// Client role: stages our identification line and KEXINIT. `expected_host_key`: the server
    /// must present exactly this key blob (None: accept any, for benchmarks and tests).
    pub fn new_client(
        config: Arc<TransportConfig>,
        rng: Box<dyn Rng>,
        expected_host_key: Option<Arc<[u8]>>,
        now: Instant,
    ) -> Self {
        let mut t = Self::new(Role::Client, config, rng, &[], expected_host_key);
        t.start_kex(now);
        t
    }

    fn new(
        role: Role,
        config: Arc<TransportConfig>,
        rng: Box<dyn Rng>,
        services: &'static [&'static str],
        expected_host_key: Option<Arc<[u8]>>,
    ) -> Self {
        let line = version::our_line(&config.software_version, config.comment.as_deref());
        let mut tx = Vec::with_capacity(line.len() + 1024);
        tx.extend_from_slice(&line);
        let our_version = line.strip_suffix(b"\r\n").unwrap_or(&line).to_vec();
        let held = Outbox::new(config.max_held_bytes);
        let mut rng = rng;
        let pad_rng = Box::new(crate::algo::rng::JobRng::seeded_from(&mut *rng));
        Transport {
            role,
            config,
            rng,
            pad_rng,
            our_version,
            peer_version: None,
            opener: PacketOpener::new(),
            sealer: PacketSealer::new(),
            tx_sealed: tx.len(),
            tx,
            batch_packets: 0,
            held,
            kex: None,
            session_id: None,
            strict: false,
            peer_ext_info: false,
            first_kex_done: false,
            packets_before_kexinit: 0,
            service: None,
            services,
            authenticated: false,
            closed: false,
            events: VecDeque::new(),
            last_kex: None,
            last_kex_done_at: None,
            compression_in: config::COMPRESSION_NONE,
            compression_out: config::COMPRESSION_NONE,
            expected_host_key,
            kex_count: 0,
            ext_info_count: 0,
            server_sig_algs: None,
            server_host_key: None,
            copied_out: 0,
            fill_at: None,
            rekey_bytes: config::DEFAULT_REKEY_BYTES_AES,
        }
    }

    // ---- getters -------------------------------------------------------------------------

    pub fn role(&self) -> Role {
        self.role
    }

    /// True from our KEXINIT until NEWKEYS went both ways.
    pub fn is_handshaking(&self) -> bool {
        self.kex.is_some()
    }

    /// True once the first key exchange has completed.
    pub fn is_established(&self) -> bool {
        self.first_kex_done
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// The session identifier: H of the first key exchange (RFC 4253 §7.2).
    pub fn session_id(&self) -> Option<&[u8]> {
        self.session_id.as_deref()
    }

    pub fn peer_version(&self) -> Option<&[u8]> {
        self.peer_version.as_deref()
    }

    /// The algorithms of the last completed key exchange.
    pub fn negotiated(&self) -> Option<&KexSummary> {
        self.last_kex.as_ref()
    }

    /// Whether strict KEX (openssh PROTOCOL §1.10) is in force.
    pub fn is_strict(&self) -> bool {
        self.strict
    }

    /// Per-direction status: (inbound encrypted, outbound encrypted).
    pub fn is_encrypted(&self) -> (bool, bool) {
        (self.opener.is_encrypted(), self.sealer.is_encrypted())
    }

    /// Per-direction status: (inbound integrity-checked, outbound integrity-protected). Every
    /// cipher we negotiate is AEAD or paired with a MAC, so this follows encryption.
    pub fn is_verified(&self) -> (bool, bool) {
        self.is_encrypted()
    }

    /// Completed key exchanges, the first included.
    pub fn kex_count(&self) -> u64 {
        self.kex_count
    }

    /// Bytes and packets (in, out) over the connection's life.
    pub fn totals(&self) -> ((u64, u64), (u64, u64)) {
        (self.opener.totals(), self.sealer.totals())
    }

    /// True while held-back output is over its bound: producers (channel data) should pause.
    pub fn is_backpressured(&self) -> bool {
        self.held.is_over_soft_limit()
    }

    /// True while a crypto job is in flight: the caller should stop reading.
    pub fn is_waiting_for_job(&self) -> bool {
        self.kex.as_ref().is_some_and(|k| k.is_computing())
    }

    /// The sequence number our next packet will carry (what a peer's UNIMPLEMENTED names).
    pub fn next_seq_out(&self) -> u32 {
        self.sealer.seq()
    }

    /// Memory this transport holds for the peer: staged and sealed output, the held-back
    /// queue, compression and decompression output (capacities, as that is what is
    /// allocated).
    pub fn held_bytes(&self) -> usize {
        self.tx.capacity()
            + self.held.held_bytes()
            + self.opener.held_bytes()
            + self.sealer.held_bytes()
    }

    /// Bytes staged or sealed and waiting for `poll_transmit`.
    pub fn pending_transmit(&self) -> usize {
        self.tx.len()
    }

    /// Payload bytes copied between encoding and `poll_transmit`'s output so far: zero unless
    /// the output buffer had to grow (reallocate) while holding bytes, a compressed batch had
    /// to be appended behind sealed bytes, or `poll_transmit` was given a buffer that already
    /// held bytes. Checked by the copy-count tests.
    pub fn bytes_copied(&self) -> u64 {
        self.sealer.bytes_copied().saturating_add(self.copied_out)
    }

    // ---- input ---------------------------------------------------------------------------

    /// Processes the front of `input`: the peer's identification line, or one packet.
    pub fn read(&mut self, input: &mut [u8], now: Instant) -> Read {
        if self.closed {
            return Read::Closed;
        }
        if self.peer_version.is_none() {
            return self.read_version(input);
        }
        if self.is_waiting_for_job() {
            return Read::Wait;
        }
        let opened = match self.opener.open(input) {
            Ok(Some(o)) => o,
            Ok(None) => return Read::Wait,
            Err(e) => {
                self.fail(e.into());
                return Read::Closed;
            }
        };
        let res = match &opened.payload {
            PayloadAt::Input(r) => {
                let p = input.get(r.clone()).unwrap_or(&[]);
                self.on_packet(p, opened.seq, now)
            }
            PayloadAt::Inflated => {
                let v = self.opener.take_inflated();
                let r = self.on_packet(&v, opened.seq, now);
                self.opener.restore_inflated(v);
                r
            }
        };
        match res {
            Ok(Dispatch::Handled) if self.closed => Read::Closed,
            Ok(Dispatch::Handled) => {
                self.maybe_rekey(now);
                Read::Consumed(opened.consumed)
            }
            Ok(Dispatch::Service) => {
                self.maybe_rekey(now);
                Read::Service {
                    consumed: opened.consumed,
                    payload: opened.payload,
                    seq: opened.seq,
                }
            }
            Err(e) => {
                self.fail(e);
                Read::Closed
            }
        }
    }

    /// Takes the inflated payload of the last `Read::Service` (when its payload is
    /// `PayloadAt::Inflated`); give it back with [`Transport::restore_inflated`].
    pub fn take_inflated(&mut self) -> Vec<u8> {
        self.opener.take_inflated()
    }

    pub fn restore_inflated(&mut self, v: Vec<u8>) {
        self.opener.restore_inflated(v)
    }

    fn read_version(&mut self, input: &[u8]) -> Read {
        let allow_pre_banner = self.role == Role::Client;
        match version::scan(input, allow_pre_banner) {
            Ok(version::VersionScan::NeedMore) => Read::Wait,
            Ok(version::VersionScan::Found { start, end, consumed, .. }) => {
                let line = input.get(start..end).unwrap_or(&[]);
                if let Err(e) = version::check_protocol(line, self.config.accept_1_99) {
                    self.fail(e.into());
                    return Read::Closed;
                }
                self.peer_version = Some(line.to_vec());
                Read::Consumed(consumed)
            }
            Err(e) => {
                self.fail(e.into());
                Read::Closed
            }
        }
    }

    /// The phase the state table is consulted in.
    fn phase(&self) -> Phase {
        if !self.first_kex_done {
            return if self.strict { Phase::InitialKexStrict } else { Phase::InitialKex };
        }
        if self.kex.as_ref().is_some_and(|k| k.peer_kexinit_seen()) {
            return Phase::Rekey;
        }
        match (self.service, self.authenticated) {
            (_, true) => Phase::Authenticated,
            (Some(_), false) => Phase::Auth,
            (None, false) => Phase::NoService,
        }
    }

    fn on_packet(&mut self, p: &[u8], seq: u32, now: Instant) -> Result<Dispatch, Error> {
        let Some(&msg) = p.first() else {
            return Err(Error::Decode {
                msg: 0,
                err: crate::wire::DecodeError::Truncated {
                    field: "message number",
                    needed: 1,
                    left: 0,
                },
            });
        };
        if !self.first_kex_done && msg != msg_no::KEXINIT && !self.peer_kexinit_seen() {
            self.packets_before_kexinit = self.packets_before_kexinit.saturating_add(1);
        }
        let phase = self.phase();
        match state::verdict(self.role, phase, msg) {
            Verdict::Transport => self.on_transport_msg(msg, p, now).map(|_| Dispatch::Handled),
            Verdict::Kex => self.on_kex_msg(msg, p, now).map(|_| Dispatch::Handled),
            Verdict::Service => Ok(Dispatch::Service),
            Verdict::Unimplemented => {
                self.send_unimplemented(seq);
                Ok(Dispatch::Handled)
            }
            Verdict::ProtocolError => Err(Error::UnexpectedMessage { msg, phase }),
        }
    }

    fn peer_kexinit_seen(&self) -> bool {
        self.kex.as_ref().is_some_and(|k| k.peer_kexinit_seen())
    }

    fn on_transport_msg(&mut self, msg: u8, p: &[u8], now: Instant) -> Result<(), Error> {
        match msg {
            msg_no::DISCONNECT => {
                let d = msgs::Disconnect::parse(p).msg(msg)?;
                let reason = version::printable(d.description);
                self.closed = true;
                self.held = Outbox::new(self.config.max_held_bytes);
                self.events.push_back(Event::Closed { code: d.code, reason, by_peer: true });
                Ok(())
            }
            msg_no::IGNORE => msgs::parse_ignore(p).msg(msg),
            msg_no::UNIMPLEMENTED => {
                let seq = msgs::parse_unimplemented(p).msg(msg)?;
                self.events.push_back(Event::Log(format!("peer: UNIMPLEMENTED for packet {seq}")));
                Ok(())
            }
            msg_no::DEBUG => {
                let d = msgs::Debug::parse(p).msg(msg)?;
                if d.always_display {
                    let text = version::printable(d.message);
                    self.events.push_back(Event::Log(format!("peer DEBUG: {text}")));
                }
                Ok(())
            }
            msg_no::SERVICE_REQUEST => self.on_service_request(p),
            msg_no::SERVICE_ACCEPT => self.on_service_accept(p),
            msg_no::EXT_INFO => self.on_ext_info(p),
            msg_no::KEXINIT => self.on_kexinit(p, now),
            msg_no::PING => {
                let data = msgs::parse_single_string(p, msg_no::PING, "ping data").msg(msg)?;
                let data = data.to_vec();
                self.send_with(|out| {
                    crate::wire::Writer::new(out).u8(msg_no::PONG).string(&data);
                })
            }
            msg_no::PONG => Ok(()),
            _ => Err(Error::UnexpectedMessage { msg, phase: self.phase() }),
        }
    }

    fn on_ext_info(&mut self, p: &[u8]) -> Result<(), Error> {
        msgs::parse_ext_info(p).msg(msg_no::EXT_INFO)?;
        self.ext_info_count = self.ext_info_count.saturating_add(1);
        if self.role == Role::Client {
            let mut r = crate::wire::Reader::new(p.get(5..).unwrap_or(&[]));
            while let (Ok(name), Ok(value)) = (r.string("name"), r.string("value")) {
                if name == b"server-sig-algs" {
                    self.server_sig_algs = Some(version::printable_max(value, 1024));
                }
            }
        }
        Ok(())
    }

    /// Client role: the server's `server-sig-algs` extension (RFC 8308 §3.1), if it sent one.
    /// The service accepted (server: by us; client: by the server), if any.
    pub fn service(&self) -> Option<&'static str> {
        self.service
    }

    /// Client role: a SERVICE_REQUEST went out.
    pub fn service_requested(&self) -> bool {
        !self.services.is_empty()
    }

    pub fn server_sig_algs(&self) -> Option<&str> {
        self.server_sig_algs.as_deref()
    }

    /// Client role: the server's host key blob (K_S) from the last key exchange.
    pub fn server_host_key(&self) -> Option<&[u8]> {
        self.server_host_key.as_deref()
    }

    /// EXT_INFO messages received so far.
    pub fn ext_info_count(&self) -> u32 {
        self.ext_info_count
    }

    fn on_service_request(&mut self, p: &[u8]) -> Result<(), Error> {
        let name = msgs::parse_service(p, msg_no::SERVICE_REQUEST).msg(msg_no::SERVICE_REQUEST)?;
        let known = self.services.iter().copied().find(|s| s.as_bytes() == name);
        match (known, self.service) {
            (Some(s), None) => {
                self.service = Some(s);
                self.send_with(|out| msgs::encode_service(out, msg_no::SERVICE_ACCEPT, s))?;
                self.events.push_back(Event::ServiceAccepted(s));
                Ok(())
            }
            _ => Err(Error::ServiceNotAvailable(version::printable(name))),
        }
    }

    fn on_service_accept(&mut self, p: &[u8]) -> Result<(), Error> {
        let name = msgs::parse_service(p, msg_no::SERVICE_ACCEPT).msg(msg_no::SERVICE_ACCEPT)?;
        match self.services.first().copied() {
            Some(s) if s.as_bytes() == name && self.service.is_none() => {
                self.service = Some(s);
                self.events.push_back(Event::ServiceAccepted(s));
                Ok(())
            }
            _ => Err(Error::UnexpectedMessage { msg: msg_no::SERVICE_ACCEPT, phase: self.phase() }),
        }
    }

    // ---- mutators ------------------------------------------------------------------------

    /// Client role: asks for a service (sent once the first key exchange is done).
    pub fn request_service(&mut self, name: &'static str) -> Result<(), Error> {
        // Stored as a one-element list so `on_service_accept` can check the echo.
        self.services = match name {
            "ssh-userauth" => &["ssh-userauth"],
            "ssh-connection" => &["ssh-connection"],
            _ => return Err(Error::ServiceNotAvailable(name.into())),
        };
        self.send_with(|out| msgs::encode_service(out, msg_no::SERVICE_REQUEST, name))
    }

    /// User authentication succeeded: the connection protocol may run, delayed compression
    /// starts, and rekeying by volume or time is allowed from now on.
    pub fn set_authenticated(&mut self) {
        if self.authenticated {
            return;
        }
        self.authenticated = true;
        self.opener.auth_succeeded();
        // USERAUTH_SUCCESS and all before it go out uncompressed (delayed compression starts
        // after it), so they are sealed now.
        if let Err(e) = self.seal_staged() {
            self.fail(e);
        }
        self.sealer.auth_succeeded();
    }

    /// Starts a key re-exchange now. Refused (an error to the caller, not a second KEXINIT) while
    /// one is running or before the first has completed.
    pub fn start_rekey(&mut self, now: Instant) -> Result<(), RekeyRefused> {
        if self.kex.is_some() || !self.first_kex_done || self.closed {
            return Err(RekeyRefused);
        }
        self.start_kex(now);
        Ok(())
    }

    /// Ends the connection from our side with DISCONNECT(reason, description).
    pub fn close(&mut self, reason: DisconnectReason, description: &str) {
        self.fail(Error::Local { reason, text: description.to_string() });
    }

    /// Ends the connection because the service layer refused the peer's input.
    pub fn fail(&mut self, err: Error) {
        if self.closed {
            return;
        }
        let (reason, text) = err.disconnect();
        self.closed = true;
        self.held = Outbox::new(self.config.max_held_bytes);
        let start = self.sealer.begin(&mut self.tx);
        msgs::encode_disconnect(&mut self.tx, reason.code(), &text);
        // On error the begun packet is already removed: nothing better to send.
        let _ = self.sealer.stage(&mut self.tx, start);
        self.events.push_back(Event::Closed { code: reason.code(), reason: text, by_peer: false });
    }

    /// The peer closed the TCP connection without a DISCONNECT.
    pub fn peer_closed(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.events.push_back(Event::Closed {
            code: DisconnectReason::ConnectionLost.code(),
            reason: "connection closed by peer".into(),
            by_peer: true,
        });
    }

    // ---- output --------------------------------------------------------------------------

    /// Encodes one message with `f` straight into the output buffer behind room for its header
    /// and stages it there; `poll_transmit` seals the whole batch in place. While our key
    /// exchange runs, messages not allowed then are held back and sent after NEWKEYS.
    pub fn send_with(&mut self, f: impl FnOnce(&mut Vec<u8>)) -> Result<(), Error> {
        if self.closed {
            return Ok(());
        }
        let cap = self.tx.capacity();
        let start = self.sealer.begin(&mut self.tx);
        f(&mut self.tx);
        self.note_growth(cap, start);
        let msg = self.tx.get(start + HEADER_LEN).copied().unwrap_or(0);
        if self.is_holding() && !state::may_send_during_kex(msg) {
            let res = self.held.push(self.tx.get(start + HEADER_LEN..).unwrap_or(&[]));
            self.tx.truncate(start);
            return res.map_err(|_| Error::HeldQueueFull);
        }
        self.sealer.stage(&mut self.tx, start)?;
        Ok(())
    }

    /// Starts a message whose tail the caller fills in place (channel data read straight from
    /// a backend socket into the packet): encodes `prefix` (everything up to the data, ending
    /// with the data's uint32 length, patched later) and returns room for at most `max` bytes.
    /// `None` when that cannot be staged now (closed, or held back during a key exchange): use
    /// `send_with` then. Finish with [`Transport::commit_fill`] before anything else is sent.
    pub fn begin_fill(&mut self, prefix: &[u8], max: usize) -> Option<&mut [u8]> {
        if self.closed || self.is_holding() || prefix.len() < 5 {
            return None;
        }
        let cap = self.tx.capacity();
        let start = self.sealer.begin(&mut self.tx);
        self.tx.extend_from_slice(prefix);
        let data = self.tx.len();
        self.tx.resize(data + max, 0);
        self.note_growth(cap, start);
        let (Ok(s32), Ok(d32)) = (u32::try_from(start), u32::try_from(data)) else {
            self.tx.truncate(start);
            return None;
        };
        self.fill_at = Some((s32, d32));
        self.tx.get_mut(data..)
    }

    /// Ends the message begun by [`Transport::begin_fill`] with its first `n` bytes of room
    /// filled: patches the length, drops the rest of the room, stages it. `n == 0` cancels it.
    pub fn commit_fill(&mut self, n: usize) -> Result<(), Error> {
        let Some((start, data)) = self.fill_at.take() else {
            return Ok(());
        };
        let (start, data) = (start as usize, data as usize);
        let end = data.saturating_add(n).min(self.tx.len());
        let n = end - data;
        if n == 0 {
            self.tx.truncate(start);
            return Ok(());
        }
        self.tx.truncate(end);
        let len = u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes();
        if let Some(l) = self.tx.get_mut(data - 4..data) {
            l.copy_from_slice(&len);
        }
        self.sealer.stage(&mut self.tx, start)?;
        Ok(())
    }

    /// The output buffer grew (reallocated) while `len` bytes were in it: those were copied.
    fn note_growth(&mut self, cap: usize, len: usize) {
        if self.tx.capacity() != cap && len > 0 {
            self.copied_out = self.copied_out.saturating_add(len as u64);
        }
    }

    /// Seals every staged packet in one pass (before the keys or compression change, and at
    /// `poll_transmit`).
    fn seal_staged(&mut self) -> Result<(), Error> {
        let from = self.tx_sealed;
        let res = self.sealer.seal_staged(&mut self.tx, from, &mut *self.pad_rng);
        self.tx_sealed = self.tx.len();
        self.batch_packets += res.as_ref().copied().unwrap_or(0);
        res.map(|_| ()).map_err(Error::from)
    }

    /// Convenience for a payload already encoded.
    pub fn send(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.send_with(|out| out.extend_from_slice(payload))
    }

    /// True between our KEXINIT and our NEWKEYS.
    fn is_holding(&self) -> bool {
        self.kex.as_ref().is_some_and(|k| !k.sent_newkeys)
    }

    fn send_unimplemented(&mut self, seq: u32) {
        // A failure here can only be our own sealing fault; there is nothing better to do.
        let _ = self.send_with(|out| msgs::encode_unimplemented(out, seq));
    }

    /// Seals everything staged in one pass and hands the batch over. Returns how many packets
    /// were sealed since the last call (the batch size).
    ///
    /// When `out` is empty the buffers are swapped: `out` gets the sealed batch where it was
    /// encoded (no copy) and the transport keeps `out`'s old buffer to stage the next
    /// messages in (give it an empty pooled one). Otherwise the batch is appended to `out`
    /// (a copy, counted by [`Transport::bytes_copied`]).
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        if let Err(e) = self.seal_staged() {
            self.fail(e);
            let _ = self.seal_staged();
        }
        if self.tx.is_empty() {
            return std::mem::take(&mut self.batch_packets);
        }
        if out.is_empty() {
            std::mem::swap(out, &mut self.tx);
            self.tx.clear();
        } else {
            out.extend_from_slice(&self.tx);
            self.copied_out = self.copied_out.saturating_add(self.tx.len() as u64);
            self.tx.clear();
        }
        self.tx_sealed = 0;
        std::mem::take(&mut self.batch_packets)
    }

    /// Lends the transport an empty buffer (the runtime's pooled one) to stage messages into,
    /// if it holds none; otherwise gives it back.
    pub fn lend_output(&mut self, mut buf: Vec<u8>) -> Option<Vec<u8>> {
        if self.tx.capacity() != 0 || buf.capacity() == 0 {
            return Some(buf);
        }
        buf.clear();
        self.tx = buf;
        self.tx_sealed = 0;
        None
    }

    /// Capacity of the output buffer (0: none; lend one).
    pub fn output_capacity(&self) -> usize {
        self.tx.capacity()
    }

    /// Takes the output buffer back when nothing is in it (an idle connection holds none).
    pub fn reclaim_output(&mut self) -> Option<Vec<u8>> {
        (self.tx.is_empty() && self.tx.capacity() != 0).then(|| std::mem::take(&mut self.tx))
    }

    /// Drops the output buffer's capacity (an idle connection should hold little memory).
    pub fn release_buffers(&mut self) {
        if self.tx.is_empty() {
            self.tx = Vec::new();
        }
    }

    /// Drops the output buffer and the capacity the event queue grew to (during KEX and login),
    /// when both are empty: for a connection that stays open and idle.
    pub fn release_idle_memory(&mut self) {
        self.release_buffers();
        if self.events.is_empty() {
            self.events = VecDeque::new();
        }
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        let mut e = self.events.pop_front();
        if let Some(Event::Job(job)) = &mut e {
            job.seed_rng(&mut *self.rng);
        }
        e
    }

    /// The next deadline: the running key exchange's timeout, or the time-based rekey.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        if let Some(k) = &self.kex {
            return Some(k.started + self.config.kex_timeout);
        }
        match (self.config.rekey_interval, self.last_kex_done_at, self.authenticated) {
            (Some(i), Some(at), true) => Some(at + i),
            _ => None,
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        if let Some(k) = &self.kex {
            if now >= k.started + self.config.kex_timeout {
                self.fail(Error::KexTimeout);
            }
            return;
        }
        if let (Some(i), Some(at), true) =
            (self.config.rekey_interval, self.last_kex_done_at, self.authenticated)
        {
            if now >= at + i {
                self.start_kex(now);
            }
        }
    }

    /// Rekey by volume (RFC 4344 §3): bytes per cipher default, packets 2^31. Never before
    /// authentication, never while an exchange runs.
    fn maybe_rekey(&mut self, now: Instant) {
        if self.kex.is_some() || !self.authenticated || self.closed {
            return;
        }
        let limit = self.rekey_bytes;
        let (in_bytes, in_packets) = self.opener.since_rekey();
        let (out_bytes, out_packets) = self.sealer.since_rekey();
        let due = in_bytes >= limit
            || out_bytes >= limit
            || in_packets >= config::DEFAULT_REKEY_PACKETS
            || out_packets >= config::DEFAULT_REKEY_PACKETS;
        if due {
            self.start_kex(now);
        }
    }

    /// Called by the owner after it sent service messages, so volume rekeys also trigger on
    /// outbound-only traffic.
    pub fn check_rekey(&mut self, now: Instant) {
        self.maybe_rekey(now);
    }

    /// Extensions we announce in EXT_INFO (RFC 8308 §3.1, openssh PROTOCOL §1.9).
    fn ext_info_payload(out: &mut Vec<u8>, server_sig_algs: &str) {
        msgs::encode_ext_info(
            out,
            &[("server-sig-algs", server_sig_algs.as_bytes()), ("ping@openssh.com", b"0")],
        );
    }

    fn host_key_names(&self) -> Vec<&'static str> {
        match self.role {
            Role::Server => self
                .config
                .host_key_algs
                .iter()
                .copied()
                .filter(|a| self.config.host_keys.iter().any(|k| k.algorithms().contains(a)))
                .map(HostKeyAlg::name)
                .collect(),
            Role::Client => self.config.host_key_algs.iter().map(|a| a.name()).collect(),
        }
    }
}

/// What happened to one inbound packet inside the transport.
enum Dispatch {
    Handled,
    Service,
}

/// `start_rekey` was refused: an exchange is running, or the first has not finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RekeyRefused;

#[cfg(test)]
pub(crate) mod tests;
