//! The outbound batch and the copy count per packet (README, "Copies per packet"), checked on
//! the running server with the stock OpenSSH client: bytes pushed through `ssh -W` to an echo
//! backend travel backend → client read straight into CHANNEL_DATA packets, so once the
//! connection has closed the server reports no outbound payload byte copied in user space;
//! client → backend they are written from the decrypted packet, and only what the backend
//! does not take at once is queued (one copy). Every sealed batch but the first (version line
//! and KEXINIT, staged as the connection is made) was encoded, sealed and written in the one
//! pooled buffer checked out for it. A slow backend gets every byte in order, and what it
//! does not take at once waits in chunks lent from the worker's buffer pool.
// Tests run real processes and measure bounded waits: clocks and std sockets are fine here.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use common::gateway::{random_bytes, run, EchoServer, Fixture, USER};
use common::Server;
use std::io::Read;
use std::net::TcpListener;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);

fn counter(body: &str, name: &str) -> u64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{body}"))
}

/// Scrapes /metrics until a connection has closed (the per-connection counters are added
/// then), bounded.
fn metrics_after_close(metrics: std::net::SocketAddr) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = common::scrape_metrics(metrics);
        if counter(&body, "sshfront_closed_total") >= 1 {
            return body;
        }
        assert!(Instant::now() < deadline, "the connection never closed:\n{body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A server with /metrics that permits direct-tcpip to `port` only.
fn server_to(f: &Fixture, port: u16) -> Server {
    f.server(&["--metrics-listen", "127.0.0.1:0", "--permit-open", &format!("127.0.0.1:{port}")])
}

/// `ssh -W 127.0.0.1:PORT` without compression, `data` on its stdin (bounded by `LIMIT`).
fn ssh_w(f: &Fixture, server: &Server, port: u16, data: &[u8]) -> std::process::Output {
    let input = f.path("input");
    std::fs::write(&input, data).unwrap();
    let mut cmd = f.ssh(server);
    cmd.args(["-o", "Compression=no"])
        .arg("-W")
        .arg(format!("127.0.0.1:{port}"))
        .arg(format!("{USER}@127.0.0.1"));
    run(cmd, Some(&input), LIMIT)
}

/// A loopback backend with a small receive buffer that waits, then reads in small steps:
/// the server's writes to it come up short, so client data queues in the channel. Returns
/// the port and a thread yielding every byte it read until EOF.
fn slow_sink() -> (u16, std::thread::JoinHandle<Vec<u8>>) {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(4096).unwrap();
    s.bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
    s.listen(1).unwrap();
    let l: TcpListener = s.into();
    let port = l.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let (mut got, mut buf) = (Vec::new(), [0u8; 4096]);
        loop {
            match c.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
            std::thread::sleep(Duration::from_micros(300));
        }
        got
    });
    (port, t)
}

#[test]
fn a_slow_backend_gets_every_byte_in_order_from_pooled_inbound_chunks() {
    let f = Fixture::new();
    let (port, sink) = slow_sink();
    let server = server_to(&f, port);
    let metrics = server.metrics_addr();
    let data = random_bytes(4 << 20, 12);
    let out = ssh_w(&f, &server, port, &data);
    let got = sink.join().unwrap();
    assert!(
        got.len() == data.len() && got == data,
        "the backend got {} of {} bytes (in order: {}); ssh status {:?}\n{}\n{}",
        got.len(),
        data.len(),
        data.starts_with(&got),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr),
        server.stderr()
    );
    let body = metrics_after_close(metrics);
    let queued = counter(&body, "sshfront_payload_bytes_queued_total");
    let lent = counter(&body, "sshfront_inbound_buffers_total");
    let own = counter(&body, "sshfront_inbound_own_buffers_total");
    eprintln!("queued {queued}, pooled inbound chunks {lent}, own {own}");
    assert!(queued > 0, "the slow backend took everything at once; nothing was queued");
    assert!(lent > 0, "{queued} bytes queued outside pooled chunks");
    assert_eq!(own, 0, "inbound chunks allocated outside the pool");
    // A chunk holds at least the everyday pooled size or one packet's remainder, whichever
    // is larger: never one per byte.
    assert!(lent <= queued / 1024 + 1, "{lent} chunks for {queued} queued bytes");
}

#[test]
fn bulk_through_direct_tcpip_copies_no_payload_byte_and_uses_one_buffer_per_batch() {
    let f = Fixture::new();
    let echo = EchoServer::start();
    let server = server_to(&f, echo.port);
    let metrics = server.metrics_addr();
    let data = random_bytes(4 << 20, 11);
    let out = ssh_w(&f, &server, echo.port, &data);
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
    let body = metrics_after_close(metrics);
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
