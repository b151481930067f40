//! The server's CPU cost per handshake, in process: our client core against our server core,
//! jobs run inline, timing only the server's calls (version, KEXINIT, KEX job, NEWKEYS,
//! SERVICE_REQUEST). Compare with the crypto floor in `benches/kex.rs`.
#![allow(clippy::disallowed_methods)] // a benchmark measures time

use criterion::{criterion_group, criterion_main, Criterion};
use sshfront::algo::host_key::{HostKeyAlg, HostKeyPair, KeyKind};
use sshfront::algo::{cipher, kex, SystemRng};
use sshfront::transport::{config as c, Event, Read, Transport, TransportConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn config(kex_name: &str) -> TransportConfig {
    let key = HostKeyPair::generate(KeyKind::Ed25519).expect("keygen").0;
    let mut c = TransportConfig::all_algorithms("sshfront_bench");
    c.kex = vec![kex::by_name(kex_name).expect("kex")];
    c.host_key_algs = vec![HostKeyAlg::Ed25519];
    c.ciphers = vec![cipher::by_name("aes128-gcm@openssh.com").expect("cipher")];
    c.compression = vec![c::COMPRESSION_NONE];
    c.host_keys = vec![Arc::new(key)];
    c
}

/// Pumps until both sides are established and the service is accepted; returns the time spent
/// inside server calls.
fn handshake(cfg: &Arc<TransportConfig>) -> Duration {
    let mut server_time = Duration::ZERO;
    let t = Instant::now();
    let now = Instant::now();
    let mut server =
        Transport::new_server(cfg.clone(), Box::new(SystemRng), &["ssh-userauth"], now);
    server_time += t.elapsed();
    let mut client = Transport::new_client(cfg.clone(), Box::new(SystemRng), None, now);
    let (mut c2s, mut s2c) = (Vec::new(), Vec::new());
    let mut requested = false;
    for _ in 0..100 {
        client.poll_transmit(&mut c2s);
        let t = Instant::now();
        pump(&mut server, &mut c2s, now);
        server.poll_transmit(&mut s2c);
        server_time += t.elapsed();
        pump(&mut client, &mut s2c, now);
        if client.is_established() && !requested {
            client.request_service("ssh-userauth").expect("service");
            requested = true;
        }
        if requested && c2s.is_empty() && s2c.is_empty() && server.is_established() {
            break;
        }
    }
    assert!(server.is_established() && client.is_established());
    server_time
}

fn pump(t: &mut Transport, buf: &mut Vec<u8>, now: Instant) {
    for _ in 0..1000 {
        let progressed = match t.read(buf, now) {
            Read::Consumed(n) | Read::Service { consumed: n, .. } => {
                buf.drain(..n);
                true
            }
            Read::Wait | Read::Closed => false,
        };
        let mut ran = false;
        while let Some(e) = t.poll_event() {
            if let Event::Job(j) = e {
                t.handle_job_done(j.run(), now);
                ran = true;
            }
        }
        if !progressed && !ran {
            return;
        }
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("server_cpu_per_handshake");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    for k in [
        "curve25519-sha256",
        "ecdh-sha2-nistp256",
        "mlkem768x25519-sha256",
        "sntrup761x25519-sha512",
        "diffie-hellman-group14-sha256",
    ] {
        let cfg = Arc::new(config(k));
        g.bench_function(k, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| handshake(&cfg)).sum());
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
