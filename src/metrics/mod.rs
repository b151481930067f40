//! Per-worker counters and latency histograms, merged by the acceptor for the log line, SIGUSR1
//! and the shutdown summary.
//!
//! Each worker owns one [`Metrics`] and records without locks; on request it sends a clone
//! (cumulative since start) to the acceptor, which merges them with `Histogram::add`. All
//! latencies are in microseconds.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod prometheus;
pub mod proxy;
pub mod routes;

use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// Largest latency a histogram tracks (one hour, in µs); larger values saturate.
pub const HIST_MAX_US: u64 = 3_600_000_000;
/// Significant decimal digits kept by each histogram (2 = 1% precision, small memory).
pub const HIST_SIGFIG: u8 = 2;

/// A fresh latency histogram in microseconds.
pub fn new_histogram() -> Histogram<u64> {
    // Constant, valid bounds (1 <= 2*1 <= max, sigfig <= 5): construction cannot fail.
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, HIST_MAX_US, HIST_SIGFIG).expect("valid histogram bounds")
}

/// Records a count (packets per batch), at least 1.
pub fn record_count(h: &mut Histogram<u64>, n: usize) {
    h.saturating_record(u64::try_from(n).unwrap_or(u64::MAX).max(1));
}

/// Records `d` in microseconds, saturating at the histogram's bounds.
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
    h.saturating_record(us);
}

/// One worker's (or, merged, the whole server's) measurements.
#[derive(Clone)]
pub struct Metrics {
    /// Accept → first byte of our version line written to the socket.
    pub accept_to_banner: Histogram<u64>,
    /// First client byte → first key exchange done (KexDone).
    pub handshake: Histogram<u64>,
    /// Crypto job: submitted → started on a pool thread, per CryptoJob::label().
    pub crypto_wait: BTreeMap<&'static str, Histogram<u64>>,
    /// Crypto job: compute time on the pool thread, per label.
    pub crypto_compute: BTreeMap<&'static str, Histogram<u64>>,
    /// Time to seal one outbound batch (every packet a connection staged in one worker turn,
    /// compressed, padded, encrypted and MACed in one pass).
    pub batch: Histogram<u64>,
    /// Packets per sealed batch (a count, not microseconds).
    pub batch_packets: Histogram<u64>,
    /// Packets sealed (the exact sum behind `batch_packets`).
    pub sealed_packets: u64,
    /// Sealed batches that were encoded, sealed and written in a pooled buffer lent to the
    /// core (one checkout per batch); the copy-count test expects every batch of a bulk
    /// transfer here.
    pub out_buffers: u64,
    /// Outbound payload bytes copied in user space beyond encoding, encryption and
    /// compression: backend reads that went through the relay buffer (held back during a key
    /// exchange), batches appended or reallocated rather than handed over.
    pub payload_copied: u64,
    /// Inbound channel bytes a backend did not take straight from the decrypted packet,
    /// copied (once) into the channel's queue.
    pub payload_queued: u64,
    /// Pooled buffers lent to channels to hold the inbound bytes a backend did not take.
    pub inbound_buffers: u64,
    /// Inbound chunks a core allocated itself because none could be lent (budget spent).
    pub inbound_own_buffers: u64,
    /// Write blocked (WouldBlock) → write buffer empty again.
    pub write_stall: Histogram<u64>,
    pub accepted: u64,
    pub closed: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Connections refused because the crypto queue was full.
    pub crypto_refused: u64,
    /// Connections closed for lack of buffer memory or other local resource limits.
    pub resource_closed: u64,
    /// Disconnects by reason code: 1–15 (RFC 4253 §11.1), anything else (peer-chosen) under
    /// [`OTHER_CODE`], so the map has at most 16 entries.
    pub disconnects: BTreeMap<u32, u64>,
    /// Accept → authentication succeeded (the whole login, as a client sees it).
    pub auth: Histogram<u64>,
    /// First key exchanges completed, by method.
    pub handshakes_ok: BTreeMap<&'static str, u64>,
    /// Connections closed before their first key exchange completed (the runtime learns the
    /// method only on success, so failures are not split by method).
    pub handshakes_failed: u64,
    /// Successful authentications by method (failures have no event from the core yet).
    pub auth_ok: BTreeMap<&'static str, u64>,
    /// Closed connections that had completed their first key exchange / authenticated: with
    /// the totals above they give the gauges by state, without any shared counter.
    pub closed_after_kex: u64,
    pub closed_authenticated: u64,
    /// The session proxy, per route.
    pub routes: routes::RouteMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            accept_to_banner: new_histogram(),
            handshake: new_histogram(),
            crypto_wait: BTreeMap::new(),
            crypto_compute: BTreeMap::new(),
            batch: new_histogram(),
            batch_packets: new_histogram(),
            sealed_packets: 0,
            out_buffers: 0,
            payload_copied: 0,
            payload_queued: 0,
            inbound_buffers: 0,
            inbound_own_buffers: 0,
            write_stall: new_histogram(),
            accepted: 0,
            closed: 0,
            bytes_in: 0,
            bytes_out: 0,
            crypto_refused: 0,
            resource_closed: 0,
            disconnects: BTreeMap::new(),
            auth: new_histogram(),
            handshakes_ok: BTreeMap::new(),
            handshakes_failed: 0,
            auth_ok: BTreeMap::new(),
            closed_after_kex: 0,
            closed_authenticated: 0,
            routes: routes::RouteMetrics::default(),
        }
    }
}

/// The key under which disconnect codes outside RFC 4253's 1–15 are counted.
pub const OTHER_CODE: u32 = 0;

impl Metrics {
    /// Counts one disconnect; codes a peer invents share one bucket.
    pub fn record_disconnect(&mut self, code: u32) {
        let code = if (1..=15).contains(&code) { code } else { OTHER_CODE };
        *self.disconnects.entry(code).or_insert(0) += 1;
    }

    /// Records one finished crypto job.
    pub fn record_job(&mut self, label: &'static str, wait: Duration, compute: Duration) {
        record(self.crypto_wait.entry(label).or_insert_with(new_histogram), wait);
        record(self.crypto_compute.entry(label).or_insert_with(new_histogram), compute);
    }

    /// A connection's first key exchange completed with `kex`.
    pub fn record_kex_done(&mut self, kex: &'static str) {
        *self.handshakes_ok.entry(kex).or_insert(0) += 1;
    }

    /// A connection authenticated with `method`, `since_accept` after it was accepted.
    pub fn record_auth(&mut self, method: &'static str, since_accept: Duration) {
        *self.auth_ok.entry(method).or_insert(0) += 1;
        record(&mut self.auth, since_accept);
    }

    /// A connection went away; what it had reached decides which state gauge it leaves.
    pub fn record_close(&mut self, kex_done: bool, authenticated: bool) {
        if kex_done {
            self.closed_after_kex += 1;
        } else {
            self.handshakes_failed += 1;
        }
        if authenticated {
            self.closed_authenticated += 1;
        }
    }

    /// Open connections: (all, before the first key exchange completed, key exchange done but
    /// not authenticated, authenticated). Saturating: snapshots of different workers are taken
    /// at slightly different moments.
    pub fn open_by_state(&self) -> (u64, u64, u64, u64) {
        let open = self.accepted.saturating_sub(self.closed);
        let kexed: u64 = self.handshakes_ok.values().sum();
        let authed: u64 = self.auth_ok.values().sum();
        let after_kex = kexed.saturating_sub(self.closed_after_kex).min(open);
        let authenticated = authed.saturating_sub(self.closed_authenticated).min(after_kex);
        (open, open - after_kex, after_kex - authenticated, authenticated)
    }

    /// All workers' latest snapshots merged.
    pub fn merged(latest: &[Option<Metrics>]) -> Metrics {
        let mut m = Metrics::default();
        for w in latest.iter().flatten() {
            m.merge(w);
        }
        m
    }

    /// Adds `other` into `self` (counters summed, histograms merged).
    pub fn merge(&mut self, other: &Metrics) {
        add(&mut self.auth, &other.auth);
        for (map, theirs) in
            [(&mut self.handshakes_ok, &other.handshakes_ok), (&mut self.auth_ok, &other.auth_ok)]
        {
            for (name, n) in theirs {
                *map.entry(name).or_insert(0) += n;
            }
        }
        self.handshakes_failed += other.handshakes_failed;
        self.closed_after_kex += other.closed_after_kex;
        self.closed_authenticated += other.closed_authenticated;
        self.routes.merge(&other.routes);
        add(&mut self.accept_to_banner, &other.accept_to_banner);
        add(&mut self.handshake, &other.handshake);
        add(&mut self.batch, &other.batch);
        add(&mut self.batch_packets, &other.batch_packets);
        self.sealed_packets += other.sealed_packets;
        self.out_buffers += other.out_buffers;
        self.payload_copied += other.payload_copied;
        self.payload_queued += other.payload_queued;
        self.inbound_buffers += other.inbound_buffers;
        self.inbound_own_buffers += other.inbound_own_buffers;
        add(&mut self.write_stall, &other.write_stall);
        for (map, theirs) in [
            (&mut self.crypto_wait, &other.crypto_wait),
            (&mut self.crypto_compute, &other.crypto_compute),
        ] {
            for (label, h) in theirs {
                add(map.entry(label).or_insert_with(new_histogram), h);
            }
        }
        self.accepted += other.accepted;
        self.closed += other.closed;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.crypto_refused += other.crypto_refused;
        self.resource_closed += other.resource_closed;
        for (code, n) in &other.disconnects {
            *self.disconnects.entry(*code).or_insert(0) += n;
        }
    }

    /// The periodic one-line summary.
    pub fn summary_line(&self) -> String {
        let mut s = format!(
            "stats: accepted={} closed={} open={} bytes_in={} bytes_out={} refused_crypto={}",
            self.accepted,
            self.closed,
            self.accepted.saturating_sub(self.closed),
            self.bytes_in,
            self.bytes_out,
            self.crypto_refused,
        );
        for (name, h) in self.histograms() {
            if !h.is_empty() {
                let _ = write!(s, " | {name} {}", hist_summary(h));
            }
        }
        s
    }

    /// The full multi-line summary (SIGUSR1, shutdown).
    pub fn full_summary(&self) -> String {
        let mut s = format!(
            "statistics:\n  connections: accepted={} closed={} open={}\n  bytes: in={} out={}\n  \
             refused: crypto_queue={} resources={}\n",
            self.accepted,
            self.closed,
            self.accepted.saturating_sub(self.closed),
            self.bytes_in,
            self.bytes_out,
            self.crypto_refused,
            self.resource_closed,
        );
        let codes: Vec<String> =
            self.disconnects.iter().map(|(code, n)| format!("{}={n}", code_label(*code))).collect();
        let _ = writeln!(
            s,
            "  disconnects by code: {}",
            if codes.is_empty() { "-".into() } else { codes.join(" ") }
        );
        let bp = &self.batch_packets;
        let _ = writeln!(
            s,
            "  {:<36} n={} p50={} p99={} max={}",
            "batch_packets",
            bp.len(),
            bp.value_at_quantile(0.50),
            bp.value_at_quantile(0.99),
            bp.max()
        );
        for (name, h) in self.histograms() {
            let _ = writeln!(s, "  {name:<36} {}", hist_summary(h));
        }
        s
    }

    fn histograms(&self) -> Vec<(String, &Histogram<u64>)> {
        let mut v = vec![
            ("accept_to_banner".to_string(), &self.accept_to_banner),
            ("handshake".to_string(), &self.handshake),
            ("batch".to_string(), &self.batch),
            ("write_stall".to_string(), &self.write_stall),
        ];
        for (label, h) in &self.crypto_wait {
            v.push((format!("crypto_wait[{label}]"), h));
        }
        for (label, h) in &self.crypto_compute {
            v.push((format!("crypto_compute[{label}]"), h));
        }
        v
    }
}

/// A disconnect code as a label value: `1`…`15`, or `other`.
pub fn code_label(code: u32) -> &'static str {
    const NAMES: [&str; 16] =
        ["other", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15"];
    usize::try_from(code).ok().and_then(|i| NAMES.get(i)).copied().unwrap_or("other")
}

fn add(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    // Same bounds everywhere (new_histogram), so add cannot fail; saturate just in case.
    if into.add(from).is_err() {
        for v in from.iter_recorded() {
            into.saturating_record_n(v.value_iterated_to(), v.count_at_value());
        }
    }
}

/// `n=COUNT p50=.. p90=.. p99=.. max=..` with human units.
pub fn hist_summary(h: &Histogram<u64>) -> String {
    format!(
        "n={} p50={} p90={} p99={} max={}",
        h.len(),
        fmt_us(h.value_at_quantile(0.50)),
        fmt_us(h.value_at_quantile(0.90)),
        fmt_us(h.value_at_quantile(0.99)),
        fmt_us(h.max()),
    )
}

/// Microseconds as `850us`, `12.3ms` or `4.20s`.
pub fn fmt_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us}us")
    } else if us < 1_000_000 {
        format!("{:.1}ms", us as f64 / 1e3)
    } else {
        format!("{:.2}s", us as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_sums_counters_and_histograms() {
        let mut a = Metrics::default();
        let mut b = Metrics::default();
        for ms in 1..=100u64 {
            record(&mut a.handshake, Duration::from_millis(ms));
        }
        record(&mut b.handshake, Duration::from_secs(2));
        a.accepted = 3;
        b.accepted = 4;
        b.closed = 2;
        *a.disconnects.entry(11).or_default() += 1;
        *b.disconnects.entry(11).or_default() += 2;
        b.record_job("curve25519-sha256", Duration::from_micros(10), Duration::from_micros(300));
        a.merge(&b);
        assert_eq!(a.accepted, 7);
        assert_eq!(a.disconnects[&11], 3);
        assert_eq!(a.handshake.len(), 101);
        assert_eq!(a.crypto_compute["curve25519-sha256"].len(), 1);

        let line = a.summary_line();
        assert!(!line.contains('\n'));
        assert!(line.starts_with("stats: accepted=7 closed=2 open=5 "), "{line}");
        // p50 of 1..=100 ms plus one 2 s sample is ~50 ms (1% precision), max is 2 s.
        assert!(line.contains("| handshake n=101 p50=5"), "{line}");
        assert!(line.contains("max=2.0"), "{line}");
        assert!(line.contains("crypto_compute[curve25519-sha256] n=1 p50=30"), "{line}");
        // Empty histograms are left out of the one-liner.
        assert!(!line.contains("write_stall"), "{line}");

        let full = a.full_summary();
        assert!(full.contains("disconnects by code: 11=3"), "{full}");
        assert!(full.contains("write_stall"), "{full}");
    }

    #[test]
    fn units() {
        assert_eq!(fmt_us(999), "999us");
        assert_eq!(fmt_us(12_345), "12.3ms");
        assert_eq!(fmt_us(4_200_000), "4.20s");
    }

    #[test]
    fn record_saturates() {
        let mut h = new_histogram();
        record(&mut h, Duration::from_secs(1_000_000));
        record(&mut h, Duration::ZERO);
        assert_eq!(h.len(), 2);
    }
}
