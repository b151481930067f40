//! Prometheus text exposition (format 0.0.4) of merged [`Metrics`], for `--metrics-listen`.
//!
//! Pure formatting: the caller passes the merged worker snapshots plus the few values that live
//! outside the workers (readiness, the crypto pool's depth, PROXY header results). Latency
//! histograms become Prometheus histograms over fixed buckets in seconds; counts per bucket come
//! from the hdrhistogram data, so a bucket edge is exact to the histogram's 1% precision, and
//! `_sum` is the sum of each recorded bucket's median value (also within 1%).

use super::Metrics;
use hdrhistogram::Histogram;
use std::fmt::Write as _;

/// Bucket upper bounds in seconds: 100 µs to two minutes, roughly 1-2.5-5 per decade, enough
/// to see a crypto queue building up and a slow login alike.
pub const BUCKETS_SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0, 120.0,
];

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What is not in the workers' snapshots.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    /// Accepting connections (false while draining or paused at the connection bound).
    pub ready: bool,
    /// Crypto jobs queued, running or undelivered, and the `--crypto-queue` bound.
    pub crypto_in_flight: usize,
    pub crypto_bound: usize,
    /// Per job class (a fixed set of names): jobs in flight and the class's bound.
    pub crypto_classes: Vec<(&'static str, u64, u64)>,
    /// PROXY header outcomes by result (`ok`, `untrusted`, `invalid`, `timeout`, …); empty
    /// when `--proxy-protocol` is off.
    pub proxy: Vec<(&'static str, u64)>,
    /// Seconds since the process started.
    pub uptime_seconds: f64,
    /// SIGHUP reloads refused because the configuration did not validate.
    pub config_reload_failures: u64,
    /// Log lines dropped at the logger's queue bound, and peer-triggered lines held back by
    /// the rate limits.
    pub log_dropped: u64,
    pub log_suppressed: u64,
    /// Sources (blocks) with an active penalty, and connections refused for one.
    pub penalised_sources: u64,
    pub penalty_refused: u64,
    /// Memory accounted against `--max-buffer-memory` now, its peak, and the limit.
    pub buffer_memory: (u64, u64, u64),
}

/// The whole exposition.
pub fn render(m: &Metrics, extra: &Extra) -> String {
    let mut o = String::with_capacity(16 * 1024);
    let (open, handshaking, authenticating, authenticated) = m.open_by_state();

    family(&mut o, "sshfront_up", "gauge", "1 while the process runs.");
    sample(&mut o, "sshfront_up", &[], 1);
    family(&mut o, "sshfront_ready", "gauge", "1 while accepting connections, 0 while draining.");
    sample(&mut o, "sshfront_ready", &[], u64::from(extra.ready));
    family(&mut o, "sshfront_uptime_seconds", "gauge", "Seconds since the process started.");
    let _ = writeln!(o, "sshfront_uptime_seconds {}", extra.uptime_seconds);
    family(
        &mut o,
        "sshfront_config_reload_failures_total",
        "counter",
        "SIGHUP reloads that failed validation; the running configuration stayed.",
    );
    sample(&mut o, "sshfront_config_reload_failures_total", &[], extra.config_reload_failures);

    family(
        &mut o,
        "sshfront_connections",
        "gauge",
        "Open connections by state: open (all), handshaking (before the first key exchange \
         completed), authenticating (key exchange done, not authenticated), authenticated.",
    );
    for (state, n) in [
        ("open", open),
        ("handshaking", handshaking),
        ("authenticating", authenticating),
        ("authenticated", authenticated),
    ] {
        sample(&mut o, "sshfront_connections", &[("state", state)], n);
    }
    counter(&mut o, "sshfront_accepted_total", "Connections accepted.", m.accepted);
    counter(&mut o, "sshfront_closed_total", "Connections closed.", m.closed);

    family(
        &mut o,
        "sshfront_handshakes_total",
        "counter",
        "First key exchanges by method and result; failed ones (closed before completing) are \
         not split by method.",
    );
    for (kex, n) in &m.handshakes_ok {
        sample(&mut o, "sshfront_handshakes_total", &[("kex", kex), ("result", "ok")], *n);
    }
    sample(
        &mut o,
        "sshfront_handshakes_total",
        &[("kex", "unknown"), ("result", "failed")],
        m.handshakes_failed,
    );

    family(&mut o, "sshfront_auth_total", "counter", "Authentications by method and result.");
    for (method, n) in &m.auth_ok {
        sample(&mut o, "sshfront_auth_total", &[("method", method), ("result", "success")], *n);
    }

    family(&mut o, "sshfront_bytes_total", "counter", "Bytes on client sockets, each way.");
    sample(&mut o, "sshfront_bytes_total", &[("direction", "in")], m.bytes_in);
    sample(&mut o, "sshfront_bytes_total", &[("direction", "out")], m.bytes_out);

    family(&mut o, "sshfront_disconnects_total", "counter", "Disconnects by reason code.");
    // Codes come from a fixed set: 1–15 and "other" (Metrics::record_disconnect buckets them).
    let mut disconnects: Vec<(&str, &str, u64)> = Vec::new();
    for (code, n) in &m.disconnects {
        let (label, reason) = (super::code_label(*code), reason_name(*code));
        match disconnects.iter_mut().find(|(l, _, _)| *l == label) {
            Some(d) => d.2 += n,
            None => disconnects.push((label, reason, *n)),
        }
    }
    for (code, reason, n) in disconnects {
        sample(&mut o, "sshfront_disconnects_total", &[("code", code), ("reason", reason)], n);
    }

    family(
        &mut o,
        "sshfront_crypto_queue_depth",
        "gauge",
        "Crypto jobs queued, running or not yet collected by their worker.",
    );
    sample(&mut o, "sshfront_crypto_queue_depth", &[], extra.crypto_in_flight as u64);
    family(&mut o, "sshfront_crypto_queue_limit", "gauge", "The --crypto-queue bound.");
    sample(&mut o, "sshfront_crypto_queue_limit", &[], extra.crypto_bound as u64);
    if !extra.crypto_classes.is_empty() {
        family(
            &mut o,
            "sshfront_crypto_class_depth",
            "gauge",
            "Jobs in flight per queue: kex (and host-key signing), verify (user signatures), \
             password (hashing), read (authorized_keys).",
        );
        for (class, depth, _) in &extra.crypto_classes {
            sample(&mut o, "sshfront_crypto_class_depth", &[("class", class)], *depth);
        }
        family(&mut o, "sshfront_crypto_class_limit", "gauge", "Each queue's bound.");
        for (class, _, limit) in &extra.crypto_classes {
            sample(&mut o, "sshfront_crypto_class_limit", &[("class", class)], *limit);
        }
    }
    counter(
        &mut o,
        "sshfront_crypto_refused_total",
        "Connections refused (DISCONNECT 12) because the crypto queue was full.",
        m.crypto_refused,
    );
    counter(
        &mut o,
        "sshfront_sealed_batches_total",
        "Outbound batches sealed (all packets a connection staged in one worker turn).",
        m.batch_packets.len(),
    );
    counter(
        &mut o,
        "sshfront_sealed_batch_packets_total",
        "Packets in those batches (divide by sshfront_sealed_batches_total for the mean size).",
        m.sealed_packets,
    );
    counter(
        &mut o,
        "sshfront_output_buffers_total",
        "Batches encoded, sealed and written in one pooled buffer checked out for them.",
        m.out_buffers,
    );
    counter(
        &mut o,
        "sshfront_payload_bytes_copied_total",
        "Outbound payload bytes copied in user space beyond encode, cipher and zlib (closed \
         connections).",
        m.payload_copied,
    );
    counter(
        &mut o,
        "sshfront_payload_bytes_queued_total",
        "Inbound channel bytes a backend did not take from the packet, copied once into the \
         channel's queue (closed connections).",
        m.payload_queued,
    );
    counter(
        &mut o,
        "sshfront_inbound_buffers_total",
        "Pooled buffers lent to channels to hold inbound bytes a backend did not take.",
        m.inbound_buffers,
    );
    counter(
        &mut o,
        "sshfront_inbound_own_buffers_total",
        "Inbound chunks a connection allocated outside the pool (none could be lent; closed \
         connections).",
        m.inbound_own_buffers,
    );
    counter(
        &mut o,
        "sshfront_resource_closed_total",
        "Connections closed for lack of buffer memory or other local limits.",
        m.resource_closed,
    );
    family(
        &mut o,
        "sshfront_buffer_memory_bytes",
        "gauge",
        "Memory held for peers (buffers, channel data, held-back and outgoing packets), \
         counted against --max-buffer-memory.",
    );
    sample(&mut o, "sshfront_buffer_memory_bytes", &[], extra.buffer_memory.0);
    family(
        &mut o,
        "sshfront_buffer_memory_peak_bytes",
        "gauge",
        "The most memory accounted against --max-buffer-memory at once since start.",
    );
    sample(&mut o, "sshfront_buffer_memory_peak_bytes", &[], extra.buffer_memory.1);
    family(&mut o, "sshfront_buffer_memory_limit", "gauge", "The --max-buffer-memory bound.");
    sample(&mut o, "sshfront_buffer_memory_limit", &[], extra.buffer_memory.2);

    counter(
        &mut o,
        "sshfront_log_dropped_total",
        "Log lines dropped because the logger's queue was full.",
        extra.log_dropped,
    );
    counter(
        &mut o,
        "sshfront_log_suppressed_total",
        "Peer-triggered log lines held back by the per-connection and global rate limits.",
        extra.log_suppressed,
    );

    family(
        &mut o,
        "sshfront_penalised_sources",
        "gauge",
        "Source blocks refused at accept for an active per-source penalty.",
    );
    sample(&mut o, "sshfront_penalised_sources", &[], extra.penalised_sources);
    counter(
        &mut o,
        "sshfront_penalty_refused_total",
        "Connections refused at accept because their source was penalised.",
        extra.penalty_refused,
    );

    if !extra.proxy.is_empty() {
        family(&mut o, "sshfront_proxy_headers_total", "counter", "PROXY headers by result.");
        for (result, n) in &extra.proxy {
            sample(&mut o, "sshfront_proxy_headers_total", &[("result", result)], *n);
        }
    }

    for (name, help, h) in [
        (
            "sshfront_accept_to_banner_seconds",
            "Accept to the first byte of our version line written.",
            &m.accept_to_banner,
        ),
        (
            "sshfront_handshake_seconds",
            "First client byte to the first key exchange completed.",
            &m.handshake,
        ),
        ("sshfront_auth_seconds", "Accept to authentication succeeded.", &m.auth),
        (
            "sshfront_batch_seconds",
            "Time to seal one outbound batch (a connection's packets of one worker turn).",
            &m.batch,
        ),
        (
            "sshfront_write_stall_seconds",
            "Socket write blocked until the write buffer emptied.",
            &m.write_stall,
        ),
    ] {
        family(&mut o, name, "histogram", help);
        histogram(&mut o, name, &[], h);
    }
    render_routes(&mut o, &m.routes);
    for (name, help, map) in [
        (
            "sshfront_crypto_wait_seconds",
            "Crypto job submitted to started on a pool thread, by job.",
            &m.crypto_wait,
        ),
        (
            "sshfront_crypto_compute_seconds",
            "Crypto job compute time on a pool thread, by job.",
            &m.crypto_compute,
        ),
    ] {
        family(&mut o, name, "histogram", help);
        for (job, h) in map {
            histogram(&mut o, name, &[("job", job)], h);
        }
    }
    super::proxy::render(&mut o);
    o
}

/// RFC 4253 §11.1 names for the `reason` label.
pub fn reason_name(code: u32) -> &'static str {
    match code {
        1 => "HOST_NOT_ALLOWED_TO_CONNECT",
        2 => "PROTOCOL_ERROR",
        3 => "KEY_EXCHANGE_FAILED",
        4 => "RESERVED",
        5 => "MAC_ERROR",
        6 => "COMPRESSION_ERROR",
        7 => "SERVICE_NOT_AVAILABLE",
        8 => "PROTOCOL_VERSION_NOT_SUPPORTED",
        9 => "HOST_KEY_NOT_VERIFIABLE",
        10 => "CONNECTION_LOST",
        11 => "BY_APPLICATION",
        12 => "TOO_MANY_CONNECTIONS",
        13 => "AUTH_CANCELLED_BY_USER",
        14 => "NO_MORE_AUTH_METHODS_AVAILABLE",
        15 => "ILLEGAL_USER_NAME",
        _ => "OTHER",
    }
}

/// The session proxy's per-route families (labels: route names from the operator's file,
/// bounded; failure kinds from a fixed set).
fn render_routes(o: &mut String, r: &super::routes::RouteMetrics) {
    use super::routes::Failure;
    family(o, "sshfront_proxy_sessions_total", "counter", "Proxied sessions started, by route.");
    for (route, s) in &r.by_route {
        sample(o, "sshfront_proxy_sessions_total", &[("route", route)], s.sessions);
    }
    family(
        o,
        "sshfront_proxy_failures_total",
        "counter",
        "Proxied sessions that failed, by route and kind.",
    );
    for (route, s) in &r.by_route {
        for (kind, n) in Failure::ALL.iter().zip(s.failures.iter()) {
            let labels = [("route", route.as_str()), ("kind", kind.name())];
            sample(o, "sshfront_proxy_failures_total", &labels, *n);
        }
    }
    let name = "sshfront_proxy_upstream_setup_seconds";
    family(o, name, "histogram", "Upstream TCP connect, key exchange and login, by route.");
    for (route, s) in &r.by_route {
        histogram(o, name, &[("route", route)], &s.setup);
    }
}

fn family(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

fn counter(o: &mut String, name: &str, help: &str, v: u64) {
    family(o, name, "counter", help);
    sample(o, name, &[], v);
}

fn sample(o: &mut String, name: &str, labels: &[(&str, &str)], v: u64) {
    o.push_str(name);
    write_labels(o, labels, None);
    let _ = writeln!(o, " {v}");
}

/// `{a="x",b="y"}`, plus `le` last if given; nothing for no labels.
fn write_labels(o: &mut String, labels: &[(&str, &str)], le: Option<&str>) {
    if labels.is_empty() && le.is_none() {
        return;
    }
    o.push('{');
    let mut first = true;
    for (k, v) in labels.iter().copied().chain(le.map(|le| ("le", le))) {
        if !first {
            o.push(',');
        }
        first = false;
        o.push_str(k);
        o.push_str("=\"");
        escape_into(o, v);
        o.push('"');
    }
    o.push('}');
}

/// Label value escaping of the text format: backslash, double quote and newline.
fn escape_into(o: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
}

/// Cumulative counts per bucket of [`BUCKETS_SECONDS`] (then the total, for `+Inf`) and the sum
/// in seconds, from a histogram in microseconds.
pub fn buckets(h: &Histogram<u64>) -> (Vec<u64>, u64, f64) {
    let mut counts = vec![0u64; BUCKETS_SECONDS.len()];
    let mut sum_us = 0f64;
    for v in h.iter_recorded() {
        let us = h.median_equivalent(v.value_iterated_to());
        let n = v.count_at_value();
        sum_us += us as f64 * n as f64;
        let secs = us as f64 / 1e6;
        if let Some(i) = BUCKETS_SECONDS.iter().position(|&b| secs <= b) {
            if let Some(c) = counts.get_mut(i) {
                *c += n;
            }
        }
    }
    let mut acc = 0u64;
    for c in &mut counts {
        acc += *c;
        *c = acc;
    }
    (counts, h.len(), sum_us / 1e6)
}

fn histogram(o: &mut String, name: &str, labels: &[(&str, &str)], h: &Histogram<u64>) {
    let (counts, total, sum) = buckets(h);
    let bucket = format!("{name}_bucket");
    for (b, c) in BUCKETS_SECONDS.iter().zip(&counts) {
        o.push_str(&bucket);
        write_labels(o, labels, Some(&b.to_string()));
        let _ = writeln!(o, " {c}");
    }
    o.push_str(&bucket);
    write_labels(o, labels, Some("+Inf"));
    let _ = writeln!(o, " {total}");
    o.push_str(name);
    o.push_str("_sum");
    write_labels(o, labels, None);
    let _ = writeln!(o, " {sum}");
    o.push_str(name);
    o.push_str("_count");
    write_labels(o, labels, None);
    let _ = writeln!(o, " {total}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::record;
    use std::time::Duration;

    fn value_of(text: &str, line_start: &str) -> String {
        text.lines()
            .find(|l| l.starts_with(line_start) && l[line_start.len()..].starts_with(' '))
            .unwrap_or_else(|| panic!("no line {line_start:?} in\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .to_string()
    }

    #[test]
    fn buckets_are_cumulative_and_end_in_the_total() {
        let mut h = crate::metrics::new_histogram();
        record(&mut h, Duration::from_micros(50)); // ≤ 100 µs
        record(&mut h, Duration::from_millis(2)); // ≤ 2.5 ms
        record(&mut h, Duration::from_millis(2));
        record(&mut h, Duration::from_secs(3)); // ≤ 5 s
        record(&mut h, Duration::from_secs(1000)); // past the last bucket: only +Inf
        let (counts, total, sum) = buckets(&h);
        assert_eq!(total, 5);
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
        let at = |b: f64| counts[BUCKETS_SECONDS.iter().position(|&x| x == b).unwrap()];
        assert_eq!(at(0.0001), 1);
        assert_eq!(at(0.001), 1);
        assert_eq!(at(0.0025), 3);
        assert_eq!(at(2.5), 3);
        assert_eq!(at(5.0), 4);
        assert_eq!(at(120.0), 4, "the 1000 s sample is only in +Inf");
        assert!((sum - 1003.00405).abs() / 1003.0 < 0.01, "sum {sum}");
    }

    #[test]
    fn exposition_has_histograms_counters_and_labels() {
        let mut m = Metrics { accepted: 10, closed: 4, ..Metrics::default() };
        m.record_kex_done("curve25519-sha256");
        m.record_kex_done("curve25519-sha256");
        m.record_kex_done("mlkem768x25519-sha256");
        m.record_auth("publickey", Duration::from_millis(30));
        m.record_close(false, false);
        m.record_close(true, false);
        m.bytes_in = 123;
        *m.disconnects.entry(11).or_default() += 2;
        record(&mut m.handshake, Duration::from_millis(7));
        m.record_job("curve25519-sha256", Duration::from_micros(20), Duration::from_micros(400));
        let extra = Extra {
            ready: false,
            crypto_in_flight: 3,
            crypto_bound: 256,
            crypto_classes: vec![("kex", 3, 256), ("password", 1, 2)],
            proxy: vec![("ok", 5), ("untrusted", 1)],
            uptime_seconds: 1.5,
            config_reload_failures: 2,
            ..Extra::default()
        };
        let t = render(&m, &extra);
        assert_eq!(value_of(&t, "sshfront_ready"), "0");
        assert_eq!(value_of(&t, "sshfront_config_reload_failures_total"), "2");
        assert_eq!(value_of(&t, "sshfront_connections{state=\"open\"}"), "6");
        // 3 key exchanges done, 1 of those closed: 2 past KEX, 1 of them authenticated.
        assert_eq!(value_of(&t, "sshfront_connections{state=\"handshaking\"}"), "4");
        assert_eq!(value_of(&t, "sshfront_connections{state=\"authenticating\"}"), "1");
        assert_eq!(value_of(&t, "sshfront_connections{state=\"authenticated\"}"), "1");
        assert_eq!(
            value_of(&t, "sshfront_handshakes_total{kex=\"curve25519-sha256\",result=\"ok\"}"),
            "2"
        );
        assert_eq!(
            value_of(&t, "sshfront_handshakes_total{kex=\"unknown\",result=\"failed\"}"),
            "1"
        );
        assert_eq!(
            value_of(&t, "sshfront_auth_total{method=\"publickey\",result=\"success\"}"),
            "1"
        );
        assert_eq!(value_of(&t, "sshfront_bytes_total{direction=\"in\"}"), "123");
        assert_eq!(
            value_of(&t, "sshfront_disconnects_total{code=\"11\",reason=\"BY_APPLICATION\"}"),
            "2"
        );
        assert_eq!(value_of(&t, "sshfront_crypto_queue_depth"), "3");
        assert_eq!(value_of(&t, "sshfront_crypto_class_depth{class=\"password\"}"), "1");
        assert_eq!(value_of(&t, "sshfront_crypto_class_limit{class=\"password\"}"), "2");
        assert_eq!(value_of(&t, "sshfront_proxy_headers_total{result=\"untrusted\"}"), "1");
        assert_eq!(value_of(&t, "sshfront_handshake_seconds_bucket{le=\"0.005\"}"), "0");
        assert_eq!(value_of(&t, "sshfront_handshake_seconds_bucket{le=\"0.01\"}"), "1");
        assert_eq!(value_of(&t, "sshfront_handshake_seconds_bucket{le=\"+Inf\"}"), "1");
        assert_eq!(value_of(&t, "sshfront_handshake_seconds_count"), "1");
        assert_eq!(value_of(&t, "sshfront_auth_seconds_count"), "1");
        assert_eq!(
            value_of(
                &t,
                "sshfront_crypto_compute_seconds_bucket{job=\"curve25519-sha256\",le=\"0.0005\"}"
            ),
            "1"
        );
        // Every histogram has le="+Inf", _sum and _count; every family a TYPE line.
        for name in ["accept_to_banner", "handshake", "auth", "batch", "write_stall"] {
            let base = format!("sshfront_{name}_seconds");
            assert!(t.contains(&format!("# TYPE {base} histogram\n")), "{base}");
            assert!(t.contains(&format!("{base}_bucket{{le=\"+Inf\"}} ")), "{base}");
            assert!(t.contains(&format!("{base}_sum ")), "{base}");
        }
        // Sample lines: name, optional labels, one space, a number.
        for l in t.lines().filter(|l| !l.starts_with('#')) {
            let (_, v) = l.rsplit_once(' ').unwrap();
            assert!(v.parse::<f64>().is_ok(), "{l}");
        }
    }

    #[test]
    fn series_count_does_not_grow_with_peer_chosen_codes() {
        let series = |m: &Metrics| {
            render(m, &Extra::default()).lines().filter(|l| !l.starts_with('#')).count()
        };
        let mut m = Metrics::default();
        for code in 1..=15 {
            m.record_disconnect(code);
        }
        m.record_disconnect(0);
        let before = series(&m);
        for code in 16..5000 {
            m.record_disconnect(code);
        }
        m.record_disconnect(u32::MAX);
        // A disconnects map built by hand (e.g. merged from an old snapshot) folds the same way.
        m.disconnects.insert(77, 3);
        let t = render(&m, &Extra::default());
        assert_eq!(series(&m), before);
        assert_eq!(
            value_of(&t, "sshfront_disconnects_total{code=\"other\",reason=\"OTHER\"}"),
            (1 + 4984 + 1 + 3).to_string()
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let mut o = String::new();
        write_labels(&mut o, &[("a", "x\"y\\z\nw")], Some("+Inf"));
        assert_eq!(o, "{a=\"x\\\"y\\\\z\\nw\",le=\"+Inf\"}");
    }
}
