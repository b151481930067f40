//! Seal + open throughput of the packet layer (32 KiB payloads, the size a channel usually
//! fills), next to ring's raw AEAD rates over the same size so the framing overhead shows, and
//! chacha20-poly1305@openssh.com on its own: ring's implementation against ours, in wall and
//! in thread CPU time.
//!
//! `cargo bench --bench packet` (`-- chacha` for the ChaCha20-Poly1305 figures only)

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, CHACHA20_POLY1305};
use sshfront::algo::cipher::{self, CipherAlg};
use sshfront::algo::mac::{self, MacAlg};
use sshfront::algo::TestRng;
use sshfront::packet::{DirectionKeys, PacketOpener, PacketSealer};
use std::time::Duration;

const PAYLOAD: usize = 32 * 1024;

fn keys(c: &'static CipherAlg, m: Option<&'static MacAlg>) -> DirectionKeys {
    DirectionKeys {
        cipher: c,
        mac: m,
        key: vec![0x42; c.key_len],
        iv: vec![0x24; c.iv_len],
        mac_key: vec![0x17; m.map_or(0, |m| m.key_len)],
    }
}

fn seal_open(c: &mut Criterion) {
    let mut g = c.benchmark_group("packet seal+open 32KiB");
    g.throughput(Throughput::Bytes(PAYLOAD as u64));
    let mut combos: Vec<(&'static CipherAlg, Option<&'static MacAlg>)> = Vec::new();
    for ci in cipher::ALL {
        if ci.is_aead() {
            combos.push((ci, None));
        } else if ci.name == "aes128-ctr" {
            combos.extend(mac::ALL.iter().map(|m| (*ci, Some(*m))));
        } else {
            combos.push((ci, Some(&mac::HMAC_SHA2_256_ETM)));
        }
    }
    for (ci, m) in combos {
        let name = format!("{}+{}", ci.name, m.map_or("aead", |m| m.name));
        let mut sealer = PacketSealer::new();
        let mut opener = PacketOpener::new();
        sealer.set_keys(keys(ci, m));
        opener.set_keys(keys(ci, m));
        let payload = vec![0x61u8; PAYLOAD];
        let mut buf = Vec::with_capacity(PAYLOAD + 256);
        let mut rng = TestRng(1);
        g.bench_function(&name, |b| {
            b.iter(|| {
                buf.clear();
                sealer.seal(&mut buf, &payload, &mut rng).unwrap();
                let opened = opener.open(&mut buf).unwrap().unwrap();
                black_box(opened.consumed);
            })
        });
    }
    g.finish();
}

fn raw_ring(c: &mut Criterion) {
    let mut g = c.benchmark_group("raw primitives 32KiB");
    g.throughput(Throughput::Bytes(PAYLOAD as u64));
    for (name, alg, klen) in
        [("AES-128-GCM", &AES_128_GCM, 16), ("CHACHA20-POLY1305", &CHACHA20_POLY1305, 32)]
    {
        let key = LessSafeKey::new(UnboundKey::new(alg, &vec![7u8; klen]).unwrap());
        let mut data = vec![0u8; PAYLOAD];
        let mut n = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                n += 1;
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&n.to_be_bytes());
                let tag = key
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from([0u8; 4]),
                        &mut data,
                    )
                    .unwrap();
                let _ = black_box(tag);
            })
        });
    }
    // The non-AEAD building blocks, to see which half of CTR + HMAC costs what.
    let mut ctr = cipher::AES128_CTR.sealing(&[1u8; 16], &[2u8; 16]).unwrap();
    let mut data = vec![0u8; PAYLOAD];
    g.bench_function("aes128-ctr keystream (RustCrypto aes+ctr)", |b| {
        b.iter(|| {
            if let cipher::SealingCipher::Ctr(c) = &mut ctr {
                c.apply(&mut data);
            }
            black_box(&data);
        })
    });
    for (name, alg) in [
        ("HMAC-SHA256", ring::hmac::HMAC_SHA256),
        ("HMAC-SHA512", ring::hmac::HMAC_SHA512),
        ("HMAC-SHA1", ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
    ] {
        let key = ring::hmac::Key::new(alg, &[3u8; 32]);
        let data = vec![0u8; PAYLOAD];
        g.bench_function(name, |b| b.iter(|| black_box(ring::hmac::sign(&key, &data))));
    }
    g.finish();
}

/// chacha20-poly1305@openssh.com without our framing: seal then open one packet (a 32 KiB
/// body, 8 KiB just past where ours switches to its vectorised path, and 64 bytes where
/// per-packet set-up dominates), ring's implementation (used until issue 11) next to ours.
fn chacha_openssh(c: &mut Criterion) {
    chacha_openssh_in(c, "chacha20-poly1305@openssh seal+open");
}

/// The same, timed in thread CPU time: on a shared machine wall time also counts the time
/// other processes held the core, CPU time only the work done.
fn chacha_openssh_cpu(c: &mut Criterion<ThreadCpu>) {
    chacha_openssh_in(c, "chacha20-poly1305@openssh seal+open, thread CPU time");
}

fn chacha_openssh_in<M: Measurement>(c: &mut Criterion<M>, group: &str) {
    use ring::aead::chacha20_poly1305_openssh as ring_ssh;
    let mut g = c.benchmark_group(group);
    let key = [9u8; 64];
    let (ring_s, ring_o) = (ring_ssh::SealingKey::new(&key), ring_ssh::OpeningKey::new(&key));
    let (cipher::SealingCipher::ChaCha(s), cipher::OpeningCipher::ChaCha(o)) = (
        cipher::CHACHA20_POLY1305.sealing(&key, &[]).unwrap(),
        cipher::CHACHA20_POLY1305.opening(&key, &[]).unwrap(),
    ) else {
        unreachable!("chacha20-poly1305 keys a ChaCha state")
    };
    let mut seq = 0u32;
    for (size, label) in [(PAYLOAD, "32KiB"), (8192, "8KiB"), (64, "64B")] {
        g.throughput(Throughput::Bytes(size as u64));
        let mut data = vec![0x61u8; size + 4];
        g.bench_function(format!("ring (old)/{label}"), |b| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                let mut tag = [0u8; 16];
                ring_s.seal_in_place(seq, &mut data, &mut tag);
                black_box(ring_o.open_in_place(seq, &mut data, &tag).unwrap());
            })
        });
        g.bench_function(format!("sshfront (new)/{label}"), |b| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                let mut tag = [0u8; 16];
                s.seal_in_place(seq, &mut data, &mut tag);
                black_box(o.open_in_place(seq, &mut data, &tag).unwrap());
            })
        });
    }
    g.finish();
}

/// CLOCK_THREAD_CPUTIME_ID as a criterion measurement (criterion runs the routine on the
/// calling thread); values are durations, shown with the wall-time formatter.
struct ThreadCpu(WallTime);

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec to write; the clock id is a constant Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

impl Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = Duration;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> Duration {
        Duration::from_nanos(thread_cpu_ns().saturating_sub(start))
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        self.0.formatter()
    }
}

criterion_group! {
    name = cpu_benches;
    config = Criterion::default()
        .with_measurement(ThreadCpu(WallTime))
        .sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    targets = chacha_openssh_cpu
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    targets = seal_open, raw_ring, chacha_openssh
}
criterion_main!(benches, cpu_benches);
