//! Logging for the `log` facade that never blocks a worker and cannot be flooded by a peer.
//!
//! A record is formatted on the calling thread (one line, `2026-11-24T07:35:01.123Z INFO
//! message`, built by [`format_record`] so another format can replace it in one place) and
//! pushed into a bounded queue; a logger thread drains the queue and writes to stderr in
//! batches. A full queue drops the line and counts it ([`dropped`]); the logger thread reports
//! drops in a line of its own once a second.
//!
//! Peer-triggered lines (DEBUG, UNIMPLEMENTED, authentication failures, …) pass two limits: per
//! connection a [`NoteLimiter`] lets the first few through and then about one per
//! [`NOTE_REFILL`], and across the process [`peer_line_allowed`] lets at most
//! [`GLOBAL_PEER_LINES_PER_SEC`] through per second. What they hold back is counted
//! ([`suppressed`]) and summarised.

use crate::cli::{LogFormat, LogLevel};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use std::fmt::Write as _;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Lines waiting for the logger thread; past this, lines are dropped and counted.
pub const QUEUE_LINES: usize = 8192;
/// Peer-triggered lines a connection may log at once before the limit applies.
pub const NOTE_BURST: u32 = 5;
/// After the burst, one more peer-triggered line per connection per this interval.
pub const NOTE_REFILL: Duration = Duration::from_secs(10);
/// Peer-triggered lines per second across all connections.
pub const GLOBAL_PEER_LINES_PER_SEC: u32 = 100;
/// Characters of a peer-chosen string kept in a log line.
pub const PEER_STRING_MAX: usize = 80;

enum Msg {
    Line(String),
    Flush(Sender<()>),
}

struct QueueLogger {
    tx: OnceLock<Sender<Msg>>,
}

static LOGGER: QueueLogger = QueueLogger { tx: OnceLock::new() };
/// `--log-format json`; set once at startup, before any thread logs.
static JSON: AtomicBool = AtomicBool::new(false);
static DROPPED: AtomicU64 = AtomicU64::new(0);
static SUPPRESSED: AtomicU64 = AtomicU64::new(0);
static GLOBAL_WINDOW: AtomicU64 = AtomicU64::new(0);
static GLOBAL_COUNT: AtomicU32 = AtomicU32::new(0);
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Installs the logger with `--log-level` and `--log-format` and starts its thread.
pub fn init_with_format(level: LogLevel, format: LogFormat) {
    JSON.store(format == LogFormat::Json, Ordering::Relaxed);
    init(level);
}

/// Installs the logger with the level from `--log-level` and starts its thread. Calling it
/// twice is harmless.
pub fn init(level: LogLevel) {
    let filter = match level {
        LogLevel::Error => log::LevelFilter::Error,
        LogLevel::Warn => log::LevelFilter::Warn,
        LogLevel::Info => log::LevelFilter::Info,
        LogLevel::Debug => log::LevelFilter::Debug,
        LogLevel::Trace => log::LevelFilter::Trace,
    };
    if LOGGER.tx.get().is_none() {
        let (tx, rx) = bounded(QUEUE_LINES);
        let started = std::thread::Builder::new()
            .name("sshfront-log".into())
            .spawn(move || drain(rx, &mut std::io::stderr()));
        if started.is_ok() {
            let _ = LOGGER.tx.set(tx);
        }
    }
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(filter);
}

/// Lines dropped because the queue was full, since start.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Peer-triggered lines held back by the per-connection or global limits, since start.
pub fn suppressed() -> u64 {
    SUPPRESSED.load(Ordering::Relaxed)
}

/// Counts `n` peer-triggered lines held back (by a [`NoteLimiter`]).
pub fn count_suppressed(n: u64) {
    SUPPRESSED.fetch_add(n, Ordering::Relaxed);
}

/// The global limit on peer-triggered lines: true while fewer than
/// [`GLOBAL_PEER_LINES_PER_SEC`] went out in the current second. A refusal is counted.
pub fn peer_line_allowed(now: Instant) -> bool {
    let epoch = *EPOCH.get_or_init(|| now);
    let second = now.saturating_duration_since(epoch).as_secs();
    if GLOBAL_WINDOW.swap(second, Ordering::Relaxed) != second {
        GLOBAL_COUNT.store(0, Ordering::Relaxed);
    }
    if GLOBAL_COUNT.fetch_add(1, Ordering::Relaxed) < GLOBAL_PEER_LINES_PER_SEC {
        return true;
    }
    SUPPRESSED.fetch_add(1, Ordering::Relaxed);
    false
}

/// A peer-chosen string for a log line: printable ASCII (others as `?`), at most
/// [`PEER_STRING_MAX`] characters, `…` when cut.
pub fn peer_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(PEER_STRING_MAX + 3));
    for (i, c) in s.chars().enumerate() {
        if i == PEER_STRING_MAX {
            out.push('…');
            break;
        }
        out.push(if (' '..='~').contains(&c) { c } else { '?' });
    }
    out
}

/// Per-connection limit on peer-triggered lines: the first [`NOTE_BURST`], then one per
/// [`NOTE_REFILL`]; held-back lines are counted and reported with the next line let through
/// (and in the connection's close line).
#[derive(Debug, Default)]
pub struct NoteLimiter {
    tokens: u32,
    started: bool,
    last_refill: Option<Instant>,
    /// Lines held back since the last one let through.
    pending: u64,
    /// Lines held back over the connection's life.
    pub total_suppressed: u64,
}

impl NoteLimiter {
    /// `Some(n)` if a line may be logged now, `n` being how many were held back before it;
    /// `None` if this one is held back.
    pub fn admit(&mut self, now: Instant) -> Option<u64> {
        if !self.started {
            self.started = true;
            self.tokens = NOTE_BURST;
            self.last_refill = Some(now);
        }
        let last = self.last_refill.unwrap_or(now);
        let elapsed = now.saturating_duration_since(last);
        if elapsed >= NOTE_REFILL {
            let add = (elapsed.as_secs() / NOTE_REFILL.as_secs().max(1)).min(u64::from(NOTE_BURST));
            self.tokens = (self.tokens + add as u32).min(NOTE_BURST);
            self.last_refill = Some(now);
        }
        if self.tokens == 0 || !peer_line_allowed(now) {
            self.pending += 1;
            self.total_suppressed += 1;
            if self.tokens == 0 {
                SUPPRESSED.fetch_add(1, Ordering::Relaxed);
            }
            return None;
        }
        self.tokens -= 1;
        Some(std::mem::take(&mut self.pending))
    }
}

/// The one place a record becomes a line.
pub fn format_record(t: SystemTime, level: log::Level, args: &std::fmt::Arguments<'_>) -> String {
    let mut line = String::with_capacity(128);
    let _ = writeln!(line, "{} {:<5} {}", timestamp(t), level, args);
    line
}

/// A record as one line in the configured format: JSON through [`super::log_format`], text
/// through [`format_record`].
fn render(t: SystemTime, record: &log::Record<'_>) -> String {
    if JSON.load(Ordering::Relaxed) {
        super::log_format::format(LogFormat::Json, &timestamp(t), record)
    } else {
        format_record(t, record.level(), record.args())
    }
}

impl log::Log for QueueLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = render(SystemTime::now(), record);
        match self.tx.get() {
            Some(tx) => match tx.try_send(Msg::Line(line)) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    DROPPED.fetch_add(1, Ordering::Relaxed);
                }
                Err(TrySendError::Disconnected(Msg::Line(line))) => write_direct(&line),
                Err(TrySendError::Disconnected(_)) => {}
            },
            None => write_direct(&line),
        }
    }

    /// Waits (at most two seconds) until every line queued before the call is written.
    fn flush(&self) {
        let Some(tx) = self.tx.get() else { return };
        let (ack_tx, ack_rx) = bounded(1);
        if tx.send_timeout(Msg::Flush(ack_tx), Duration::from_secs(2)).is_ok() {
            let _ = ack_rx.recv_timeout(Duration::from_secs(2));
        }
    }
}

fn write_direct(line: &str) {
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// The logger thread: batches queued lines into one write; once a second, a line for drops
/// and suppressed peer lines since the last report.
fn drain(rx: Receiver<Msg>, out: &mut dyn Write) {
    let mut batch = String::with_capacity(64 * 1024);
    let (mut reported_dropped, mut reported_suppressed) = (0u64, 0u64);
    let mut last_report = Instant::now();
    loop {
        let first = rx.recv_timeout(Duration::from_secs(1));
        let mut acks = Vec::new();
        let mut take = |m: Msg, batch: &mut String| match m {
            Msg::Line(l) => batch.push_str(&l),
            Msg::Flush(ack) => acks.push(ack),
        };
        match first {
            Ok(m) => take(m, &mut batch),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        while batch.len() < 60 * 1024 {
            match rx.try_recv() {
                Ok(m) => take(m, &mut batch),
                Err(_) => break,
            }
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            let (d, s) = (dropped(), suppressed());
            if d > reported_dropped || s > reported_suppressed {
                let text = format!(
                    "log: {} line(s) dropped (queue full), {} peer-triggered line(s) suppressed \
                     in the last interval",
                    d - reported_dropped,
                    s - reported_suppressed
                );
                let now = SystemTime::now();
                let line = render(
                    now,
                    &log::Record::builder()
                        .level(log::Level::Warn)
                        .args(format_args!("{text}"))
                        .build(),
                );
                batch.push_str(&line);
                (reported_dropped, reported_suppressed) = (d, s);
            }
        }
        if !batch.is_empty() {
            let _ = out.write_all(batch.as_bytes());
            batch.clear();
            if batch.capacity() > 256 * 1024 {
                batch = String::with_capacity(64 * 1024);
            }
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

/// RFC 3339 UTC with milliseconds, without a date crate.
pub fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86400, secs % 86400);
    let (y, m, dd) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 → (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_505_701_123);
        assert_eq!(timestamp(t), "2026-11-24T07:35:01.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(timestamp(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn note_limiter_lets_a_burst_through_then_one_per_interval() {
        let t0 = Instant::now();
        let mut l = NoteLimiter::default();
        let mut logged = 0;
        for _ in 0..20_000 {
            if l.admit(t0).is_some() {
                logged += 1;
            }
        }
        assert_eq!(logged, NOTE_BURST);
        assert_eq!(l.total_suppressed, 20_000 - u64::from(NOTE_BURST));
        // One interval later: one line, carrying the count of those held back.
        assert_eq!(l.admit(t0 + NOTE_REFILL), Some(20_000 - u64::from(NOTE_BURST)));
        assert_eq!(l.admit(t0 + NOTE_REFILL), None);
    }

    #[test]
    fn peer_strings_are_escaped_and_cut() {
        assert_eq!(peer_str("a\nb\x1b[31m"), "a?b?[31m");
        let long = "x".repeat(1000);
        assert_eq!(peer_str(&long).chars().count(), PEER_STRING_MAX + 1);
        assert!(peer_str(&long).ends_with('…'));
    }

    #[test]
    fn format_record_is_one_line() {
        let l = format_record(UNIX_EPOCH, log::Level::Info, &format_args!("hello {}", 1));
        assert_eq!(l, "1970-01-01T00:00:00.000Z INFO  hello 1\n");
    }

    #[test]
    fn drain_writes_batches_and_acks_flushes() {
        let (tx, rx) = bounded(16);
        tx.send(Msg::Line("a\n".into())).unwrap();
        tx.send(Msg::Line("b\n".into())).unwrap();
        let (ack_tx, ack_rx) = bounded(1);
        tx.send(Msg::Flush(ack_tx)).unwrap();
        drop(tx);
        let mut out = Vec::new();
        drain(rx, &mut out);
        assert_eq!(ack_rx.try_recv(), Ok(()));
        assert!(String::from_utf8(out).unwrap().starts_with("a\nb\n"));
    }
}
