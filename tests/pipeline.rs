//! The outbound batch and the copy count per packet (README, "Copies per packet"), checked on
//! the running server with the stock OpenSSH client: bytes pushed through `ssh -W` to an echo
//! backend travel backend → client read straight into CHANNEL_DATA packets, so once the
//! connection has closed the server reports no outbound payload byte copied in user space;
//! client → backend they are written from the decrypted packet, and only what the backend
//! does not take at once is queued (one copy). Every sealed batch but the first (version line
//! and KEXINIT, staged as the connection is made) was encoded, sealed and written in the one
//! pooled buffer checked out for it.
// Tests run real processes and measure bounded waits: clocks and std sockets are fine here.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use common::gateway::{random_bytes, run, EchoServer, Fixture, USER};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);

fn counter(body: &str, name: &str) -> u64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{body}"))
}

#[test]
fn bulk_through_direct_tcpip_copies_no_payload_byte_and_uses_one_buffer_per_batch() {
    let f = Fixture::new();
    let echo = EchoServer::start();
    let server = f.server(&[
        "--metrics-listen",
        "127.0.0.1:0",
        "--permit-open",
        &format!("127.0.0.1:{}", echo.port),
    ]);
    let metrics = server.metrics_addr();

    let data = random_bytes(4 << 20, 11);
    let input = f.path("input");
    std::fs::write(&input, &data).unwrap();
    let mut cmd = f.ssh(&server);
    cmd.args(["-o", "Compression=no"])
        .arg("-W")
        .arg(format!("127.0.0.1:{}", echo.port))
        .arg(format!("{USER}@127.0.0.1"));
    let out = run(cmd, Some(&input), LIMIT);
    assert!(
        out.status.success() && out.stdout == data,
        "ssh -W: status {:?}, {} of {} bytes back\n{}\n{}",
        out.status.code(),
        out.stdout.len(),
        data.len(),
        String::from_utf8_lossy(&out.stderr),
        server.stderr()
    );

    // The copy counter is added as a connection closes: wait (bounded) for that.
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let body = common::scrape_metrics(metrics);
        if counter(&body, "sshfront_closed_total") >= 1 {
            break body;
        }
        assert!(Instant::now() < deadline, "the connection never closed:\n{body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let packets = counter(&body, "sshfront_sealed_batch_packets_total");
    let batches = counter(&body, "sshfront_sealed_batches_total");
    let pooled = counter(&body, "sshfront_output_buffers_total");
    let copied = counter(&body, "sshfront_payload_bytes_copied_total");
    let queued = counter(&body, "sshfront_payload_bytes_queued_total");
    eprintln!(
        "packets {packets}, batches {batches}, pooled buffers {pooled}, copied {copied}, \
         queued {queued}"
    );
    // 4 MiB back in CHANNEL_DATA of at most 32 KiB each, plus the handshake and window
    // adjusts.
    assert!(packets >= 128, "{packets} packets sealed\n{body}");
    assert!(batches >= 1 && batches <= packets, "{batches} batches for {packets} packets");
    // Backend → client: no copy. Client → backend: none either, except what the echo backend
    // did not take at once, queued (one copy) in the channel: never more than was sent.
    assert_eq!(copied, 0, "outbound payload bytes copied in user space\n{}", server.stderr());
    assert!(queued <= data.len() as u64, "{queued} bytes queued for {} sent", data.len());
    // One pooled buffer checkout per batch: at most one per packet. The first batch (version
    // line and KEXINIT) is staged before the worker lends a buffer, so it may be the only one
    // outside the pool.
    assert!(pooled <= batches, "{pooled} pooled buffers for {batches} batches");
    assert!(pooled + 1 >= batches, "{pooled} pooled buffers for {batches} batches");
}
