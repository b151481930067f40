//! `bench-harness crypto`: what the server must spend on crypto for one curve25519-sha256 +
//! ssh-ed25519 publickey handshake, measured with the raw primitives on this machine, so a
//! handshake's server CPU can be read as a multiple of it (compare.sh prints that ratio).
//!
//! Thread CPU time, not wall time: on a shared machine the floor should not include time the
//! thread spent waiting for a core.

use crate::cli::CryptoArgs;
use crate::report::Report;
use ring::rand::SystemRandom;
use ring::signature::KeyPair;
use ring::{agreement, signature};
use std::hint::black_box;
use std::time::Duration;

pub fn run(a: &CryptoArgs) -> Result<Report, String> {
    let n = a.iterations;
    let rng = SystemRandom::new();
    let e = |what: &str| format!("crypto floor: {what} failed");

    // The client's ephemeral value, made once: the server makes its own and agrees.
    let peer = agreement::EphemeralPrivateKey::generate(&agreement::X25519, &rng)
        .map_err(|_| e("x25519 key generation"))?;
    let peer_pub = peer.compute_public_key().map_err(|_| e("x25519 public key"))?;
    let peer_pub = peer_pub.as_ref().to_vec();
    let x25519 = || {
        let k = agreement::EphemeralPrivateKey::generate(&agreement::X25519, &rng).ok()?;
        let public = k.compute_public_key().ok()?;
        black_box(public.as_ref());
        let p = agreement::UnparsedPublicKey::new(&agreement::X25519, black_box(&peer_pub));
        agreement::agree_ephemeral(k, &p, |s| s.first().copied()).ok()?
    };

    let pkcs8 =
        signature::Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| e("ed25519 key generation"))?;
    let key = signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|_| e("ed25519 key parsing"))?;
    // What is signed and verified in a handshake: a 32-byte exchange hash, and the user's
    // ~150-byte USERAUTH_REQUEST signed data.
    let h = [7u8; 32];
    let sign = || Some(key.sign(black_box(&h)));
    let userauth = [9u8; 150];
    let sig = key.sign(&userauth);
    let public =
        signature::UnparsedPublicKey::new(&signature::ED25519, key.public_key().as_ref().to_vec());
    let verify = || public.verify(black_box(&userauth), sig.as_ref()).ok();

    let x_us = per_op_us(n, x25519).ok_or_else(|| e("x25519"))?;
    let s_us = per_op_us(n, sign).ok_or_else(|| e("ed25519 sign"))?;
    let v_us = per_op_us(n, verify).ok_or_else(|| e("ed25519 verify"))?;
    let floor_ms = (x_us + s_us + v_us) / 1000.0;

    let mut r = Report::default();
    r.put("test", "crypto_floor");
    r.put("iterations", f64::from(n));
    r.put("x25519_us", x_us);
    r.put("ed25519_sign_us", s_us);
    r.put("ed25519_verify_us", v_us);
    r.put("floor_cpu_ms_per_handshake", floor_ms);
    Ok(r)
}

/// Thread CPU µs per call of `f`, after a warm-up; `None` if `f` failed.
fn per_op_us<T>(n: u32, mut f: impl FnMut() -> Option<T>) -> Option<f64> {
    for _ in 0..(n / 10).max(1) {
        black_box(f()?);
    }
    let start = thread_cpu();
    for _ in 0..n {
        black_box(f()?);
    }
    let spent = thread_cpu().saturating_sub(start);
    Some(spent.as_secs_f64() * 1e6 / f64::from(n))
}

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we pass; the clock id is valid on Linux.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(u64::try_from(ts.tv_sec).unwrap_or(0), u32::try_from(ts.tv_nsec).unwrap_or(0))
}
