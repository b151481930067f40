//! Poly1305 with AVX-512 IFMA (52-bit multiply-add), for CPUs that have it; the `poly1305`
//! crate (AVX2 at best) is about half as fast on this construction's 32 KiB packets.
//!
//! Numbers mod 2^130 − 5 are three limbs of 44, 44 and 42 bits (radix 2^44), so every limb
//! fits IFMA's 52-bit inputs with room for the message and carries. Sixteen lanes in two
//! registers per limb run sixteen interleaved Horner chains (two independent sets of eight, so
//! one set's multiply-adds run while the other waits on its carries): lane k takes blocks k,
//! k + 16, ... and multiplies by r^16 each step; the last sixteen blocks are multiplied by
//! r^16 .. r^1 instead, and the lanes summed. Whatever is left (under sixteen blocks, the
//! partial last block), the final reduction and + s run in scalar code with 64×64→128-bit
//! multiplies in the same radix (as poly1305-donna-64),
//! which also does short messages whole.

// The AVX-512 intrinsics are stable from Rust 1.89, the package's rust-version.

use core::arch::x86_64::*;

/// Bytes per iteration of the vector loop: sixteen 16-byte blocks, as two sets of eight lanes.
const CHUNK: usize = 256;
/// The blocks one set of eight lanes takes per iteration.
const HALF: usize = 128;
const MASK44: u64 = (1 << 44) - 1;
const MASK42: u64 = (1 << 42) - 1;

/// Proof that the CPU has AVX-512F and AVX-512 IFMA: only [`Ifma::detect`] makes one, so
/// holding one makes calling the IFMA code sound.
#[derive(Clone, Copy, Debug)]
pub(super) struct Ifma(());

impl Ifma {
    /// `Some` if this CPU runs AVX-512F and AVX-512 IFMA code.
    pub(super) fn detect() -> Option<Self> {
        let ok =
            std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512ifma");
        ok.then_some(Ifma(()))
    }

    /// The Poly1305 tag of `data` (the last block padded as RFC 8439 says) under the one-time
    /// key `key` = r ‖ s.
    pub(super) fn tag(self, key: &[u8; 32], data: &[u8]) -> [u8; 16] {
        let r = Limbs::clamped_r(key);
        let whole = data.len() - data.len() % CHUNK;
        let (vector, rest) = data.split_at(whole);
        let mut h = Limbs([0; 3]);
        if !vector.is_empty() {
            let mut powers = [r; 16];
            for i in 1..16 {
                powers[i] = powers[i - 1].mul(&r);
            }
            // SAFETY: an `Ifma` exists only if AVX-512F and AVX-512 IFMA were detected.
            h = unsafe { chunks(&powers, vector) };
            h.carry();
        }
        let mut blocks = rest.chunks_exact(16);
        for b in &mut blocks {
            let mut m = [0u8; 16];
            m.copy_from_slice(b);
            h.add_block(m, 1);
            h = h.mul(&r);
        }
        let tail = blocks.remainder();
        if !tail.is_empty() {
            let mut m = [0u8; 16];
            m[..tail.len()].copy_from_slice(tail);
            m[tail.len()] = 1;
            h.add_block(m, 0);
            h = h.mul(&r);
        }
        let mut s = [0u8; 16];
        s.copy_from_slice(&key[16..]);
        h.finish(s)
    }
}

/// A number mod 2^130 − 5 as limbs of 44, 44 and 42 bits, each allowed a few bits more
/// between carries.
#[derive(Clone, Copy, Debug)]
struct Limbs([u64; 3]);

fn le64(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_le_bytes(w)
}

impl Limbs {
    /// r from the key's first half, with RFC 8439's clamp applied.
    fn clamped_r(key: &[u8; 32]) -> Self {
        let (t0, t1) = (le64(&key[0..8]), le64(&key[8..16]));
        Limbs([
            t0 & 0xffc_0fff_ffff,
            ((t0 >> 44) | (t1 << 20)) & 0xfff_ffc0_ffff,
            (t1 >> 24) & 0x00f_ffff_fc0f,
        ])
    }

    /// h += block + hibit·2^128 (hibit 1 for whole blocks, 0 for the padded last one).
    fn add_block(&mut self, m: [u8; 16], hibit: u64) {
        let (t0, t1) = (le64(&m[0..8]), le64(&m[8..16]));
        self.0[0] += t0 & MASK44;
        self.0[1] += ((t0 >> 44) | (t1 << 20)) & MASK44;
        self.0[2] += (t1 >> 24) | (hibit << 40);
    }

    /// self · r mod 2^130 − 5, partly reduced (limbs < 2^44, 2^44 + 2^20, 2^42). 2^132 ≡ 20.
    fn mul(&self, r: &Limbs) -> Limbs {
        let [h0, h1, h2] = self.0.map(u128::from);
        let [r0, r1, r2] = r.0.map(u128::from);
        let (s1, s2) = (r1 * 20, r2 * 20);
        let d0 = h0 * r0 + h1 * s2 + h2 * s1;
        let mut d1 = h0 * r1 + h1 * r0 + h2 * s2;
        let mut d2 = h0 * r2 + h1 * r1 + h2 * r0;
        d1 += d0 >> 44;
        d2 += d1 >> 44;
        let mut out = [d0 as u64 & MASK44, d1 as u64 & MASK44, d2 as u64 & MASK42];
        // d2 < 2^100, so the part at 2^130 fits a u64 with room for · 5.
        out[0] += (d2 >> 42) as u64 * 5;
        out[1] += out[0] >> 44;
        out[0] &= MASK44;
        Limbs(out)
    }

    /// One carry pass from limb 0 through limb 2 and back into limb 0: limbs < 2^44, 2^44 + 2^20,
    /// 2^42 from limbs up to 2^63.
    fn carry(&mut self) {
        let h = &mut self.0;
        h[1] += h[0] >> 44;
        h[0] &= MASK44;
        h[2] += h[1] >> 44;
        h[1] &= MASK44;
        h[0] += (h[2] >> 42) * 5;
        h[2] &= MASK42;
        h[1] += h[0] >> 44;
        h[0] &= MASK44;
    }

    /// (h mod 2^130 − 5) + s mod 2^128, little-endian; constant time.
    fn finish(mut self, s: [u8; 16]) -> [u8; 16] {
        self.carry();
        self.carry();
        let [h0, h1, h2] = self.0;
        // Now h < 2^130: h − p = h + 5 − 2^130 is the answer if it does not go negative.
        let g0 = h0 + 5;
        let g1 = h1 + (g0 >> 44);
        let g2 = (h2 + (g1 >> 44)).wrapping_sub(1 << 42);
        let (g0, g1) = (g0 & MASK44, g1 & MASK44);
        let keep_g = (g2 >> 63).wrapping_sub(1); // all ones if g2 ≥ 0
        let h0 = (h0 & !keep_g) | (g0 & keep_g);
        let h1 = (h1 & !keep_g) | (g1 & keep_g);
        let h2 = (h2 & !keep_g) | (g2 & keep_g & MASK42);
        // Added, not ORed: h1 may be exactly 2^44 after the carries.
        let h =
            u128::from(h0).wrapping_add(u128::from(h1) << 44).wrapping_add(u128::from(h2) << 88);
        h.wrapping_add(u128::from_le_bytes(s)).to_le_bytes()
    }
}

/// The vector part: every 256-byte chunk of `data` (a multiple of 256 long) as sixteen-byte
/// blocks with the 2^128 bit; `powers[i]` is r^(i+1). Two sets of eight lanes take the first
/// and second eight blocks of each chunk, so two independent chains hide the multiply-adds'
/// latency. Returns h (from 0) before any final carry, limbs < 2^50.
#[target_feature(enable = "avx512f,avx512ifma")]
fn chunks(powers: &[Limbs; 16], data: &[u8]) -> Limbs {
    let lanes_of = |f: &dyn Fn(usize) -> u64| {
        let v: [u64; 8] = core::array::from_fn(f);
        // SAFETY: `v` is 64 readable bytes.
        unsafe { _mm512_loadu_si512(v.as_ptr().cast()) }
    };
    // r^16 in every lane for the loop; for the last chunk, block k of it (lane k of the first
    // set, lane k − 8 of the second) is multiplied by r^(16 − k).
    let r16 = Key::new(|i| _mm512_set1_epi64(powers[15].0[i] as i64));
    let last_a = Key::new(|i| lanes_of(&|j| powers[15 - j].0[i]));
    let last_b = Key::new(|i| lanes_of(&|j| powers[7 - j].0[i]));
    let (mut a, mut b) = ([_mm512_setzero_si512(); 3], [_mm512_setzero_si512(); 3]);
    // The last chunk apart, so the loop has one multiplier and keeps its 20·r limbs hoisted.
    let (body, last_chunk) = data.split_at(data.len().saturating_sub(CHUNK));
    for chunk in body.chunks_exact(CHUNK) {
        let (x, y) = chunk.split_at(HALF);
        a = mul(add_blocks(a, x), &r16);
        b = mul(add_blocks(b, y), &r16);
    }
    if last_chunk.len() == CHUNK {
        let (x, y) = last_chunk.split_at(HALF);
        a = mul(add_blocks(a, x), &last_a);
        b = mul(add_blocks(b, y), &last_b);
    }
    Limbs(core::array::from_fn(|i| _mm512_reduce_add_epi64(_mm512_add_epi64(a[i], b[i])) as u64))
}

/// h + the eight blocks of `chunk` (128 bytes; fewer leave h as it is), lane j taking block j
/// with its 2^128 bit.
#[inline]
#[target_feature(enable = "avx512f")]
fn add_blocks(h: [__m512i; 3], chunk: &[u8]) -> [__m512i; 3] {
    let Some(chunk) = chunk.get(..HALF) else { return h };
    let p = chunk.as_ptr().cast::<__m512i>();
    // SAFETY: `chunk` is 128 readable bytes: two unaligned 64-byte loads.
    let (a, b) = unsafe { (_mm512_loadu_si512(p), _mm512_loadu_si512(p.add(1))) };
    // The low (then high) eight bytes of block j in lane j.
    let t0 = _mm512_permutex2var_epi64(a, _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0), b);
    let t1 = _mm512_permutex2var_epi64(a, _mm512_set_epi64(15, 13, 11, 9, 7, 5, 3, 1), b);
    let mask44 = _mm512_set1_epi64(MASK44 as i64);
    let m0 = _mm512_and_si512(t0, mask44);
    let m1 = _mm512_and_si512(
        _mm512_or_si512(_mm512_srli_epi64::<44>(t0), _mm512_slli_epi64::<20>(t1)),
        mask44,
    );
    let m2 = _mm512_or_si512(_mm512_srli_epi64::<24>(t1), _mm512_set1_epi64(1 << 40));
    [_mm512_add_epi64(h[0], m0), _mm512_add_epi64(h[1], m1), _mm512_add_epi64(h[2], m2)]
}

/// A multiplier in every lane: limbs r0, r1, r2 and 20·r1, 20·r2 (2^132 ≡ 20).
struct Key {
    r: [__m512i; 3],
    s1: __m512i,
    s2: __m512i,
}

impl Key {
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn new(limb: impl Fn(usize) -> __m512i) -> Self {
        let r = [limb(0), limb(1), limb(2)];
        Key { r, s1: times20(r[1]), s2: times20(r[2]) }
    }
}

/// 20·x for limbs under 2^48, as 16x + 4x (a 64-bit multiply would need AVX-512DQ).
#[inline]
#[target_feature(enable = "avx512f")]
fn times20(x: __m512i) -> __m512i {
    _mm512_add_epi64(_mm512_slli_epi64::<4>(x), _mm512_slli_epi64::<2>(x))
}

/// h · r per lane, partly reduced: limbs < 2^44, 2^44 + 2^8, 2^42 from limbs < 2^52 (h limbs
/// up to 2^46 and r limbs from [`Limbs::mul`] keep every sum below 2^56).
#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn mul(h: [__m512i; 3], k: &Key) -> [__m512i; 3] {
    let [h0, h1, h2] = h;
    let [r0, r1, r2] = k.r;
    let (s1, s2) = (k.s1, k.s2);
    // Low and high 52 bits of each product; a high half weighs 2^52 = 2^44 · 2^8 relative to
    // its low half, so it joins the next limb shifted left by 8.
    // Each sum starts with h2, then h0, then h1: h2 is ready first after the previous step's
    // carries and h1 last, so only the last multiply-add waits for h1.
    macro_rules! sum {
        ($madd:ident, $(($h:ident, $r:ident)),+) => {{
            let mut acc = _mm512_setzero_si512();
            $(acc = $madd(acc, $h, $r);)+
            acc
        }};
    }
    let d0lo = sum!(_mm512_madd52lo_epu64, (h2, s1), (h0, r0), (h1, s2));
    let d0hi = sum!(_mm512_madd52hi_epu64, (h2, s1), (h0, r0), (h1, s2));
    let d1lo = sum!(_mm512_madd52lo_epu64, (h2, s2), (h0, r1), (h1, r0));
    let d1hi = sum!(_mm512_madd52hi_epu64, (h2, s2), (h0, r1), (h1, r0));
    let d2lo = sum!(_mm512_madd52lo_epu64, (h2, r0), (h0, r2), (h1, r1));
    let d2hi = sum!(_mm512_madd52hi_epu64, (h2, r0), (h0, r2), (h1, r1));
    let mask44 = _mm512_set1_epi64(MASK44 as i64);
    let mask42 = _mm512_set1_epi64(MASK42 as i64);
    let d1 = _mm512_add_epi64(
        d1lo,
        _mm512_add_epi64(_mm512_slli_epi64::<8>(d0hi), _mm512_srli_epi64::<44>(d0lo)),
    );
    let d2 = _mm512_add_epi64(
        d2lo,
        _mm512_add_epi64(_mm512_slli_epi64::<8>(d1hi), _mm512_srli_epi64::<44>(d1)),
    );
    // What weighs 2^130 or more: d2 past 42 bits, and d2hi (at 2^88 · 2^52 = 2^130 · 2^10);
    // 2^130 ≡ 5.
    let c = _mm512_add_epi64(_mm512_srli_epi64::<42>(d2), _mm512_slli_epi64::<10>(d2hi));
    let h0 = _mm512_add_epi64(
        _mm512_and_si512(d0lo, mask44),
        _mm512_add_epi64(c, _mm512_slli_epi64::<2>(c)),
    );
    let h1 = _mm512_add_epi64(_mm512_and_si512(d1, mask44), _mm512_srli_epi64::<44>(h0));
    [_mm512_and_si512(h0, mask44), h1, _mm512_and_si512(d2, mask42)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algo::{Rng, TestRng};
    use poly1305::universal_hash::{KeyInit, UniversalHash};

    fn crate_tag(key: &[u8; 32], data: &[u8]) -> [u8; 16] {
        let mut mac = poly1305::Poly1305::new(poly1305::Key::from_slice(key));
        let whole = data.len() - data.len() % 16;
        mac.update_padded(&data[..whole]);
        mac.compute_unpadded(&data[whole..]).into()
    }

    /// Where the CPU has IFMA the path must be found (a detection bug fails here). A CPU
    /// without it cannot run the path: there these tests check nothing more, and the
    /// portable Poly1305 is checked against ring by the parent module's tests.
    fn ifma() -> Option<Ifma> {
        let found = Ifma::detect();
        if std::is_x86_feature_detected!("avx512ifma") {
            assert!(found.is_some(), "avx512ifma present but not detected");
        }
        found
    }

    #[test]
    fn rfc8439_vector() {
        let Some(ifma) = ifma() else { return };
        let key: [u8; 32] = [
            0x85, 0xd6, 0xbe, 0x78, 0x57, 0x55, 0x6d, 0x33, 0x7f, 0x44, 0x52, 0xfe, 0x42, 0xd5,
            0x06, 0xa8, 0x01, 0x03, 0x80, 0x8a, 0xfb, 0x0d, 0xb2, 0xfd, 0x4a, 0xbf, 0xf6, 0xaf,
            0x41, 0x49, 0xf5, 0x1b,
        ];
        let tag = [
            0xa8, 0x06, 0x1d, 0xc1, 0x30, 0x51, 0x36, 0xc6, 0xc2, 0x2b, 0x8b, 0xaf, 0x0c, 0x01,
            0x27, 0xa9,
        ];
        assert_eq!(ifma.tag(&key, b"Cryptographic Forum Research Group"), tag);
    }

    /// Random keys and messages of every length 0..2100, and some of 32 KiB and more,
    /// against the `poly1305` crate.
    #[test]
    fn matches_the_poly1305_crate_on_random_input() {
        let Some(ifma) = ifma() else { return };
        let mut rng = TestRng(0x1305);
        let mut data = vec![0u8; 40 * 1024];
        rng.fill(&mut data);
        let mut key = [0u8; 32];
        for len in 0..2100 {
            for _ in 0..2 {
                rng.fill(&mut key);
                let msg = &data[..len];
                assert_eq!(ifma.tag(&key, msg), crate_tag(&key, msg), "len {len}");
            }
        }
        for len in [32 * 1024, 32 * 1024 + 4, 32 * 1024 + 127, 40 * 1024] {
            for _ in 0..20 {
                rng.fill(&mut key);
                rng.fill(&mut data);
                let msg = &data[..len];
                assert_eq!(ifma.tag(&key, msg), crate_tag(&key, msg), "len {len}");
            }
        }
    }

    /// Values at the limits: all-0xff messages (h near and past 2^130 − 5 all the time) with
    /// every clamp bit of r set and s all ones, r = 0, s = 0, and messages that make h land
    /// exactly on p or just around it before the final reduction.
    #[test]
    fn edge_cases_match_the_poly1305_crate() {
        let Some(ifma) = ifma() else { return };
        let ones = vec![0xffu8; 33 * 1024];
        let zeros = vec![0u8; 4096];
        let mut rng = TestRng(0xed9e);
        let mut random = [0u8; 32];
        rng.fill(&mut random);
        let mut keys: Vec<[u8; 32]> = vec![[0xff; 32], [0; 32], random];
        let mut r_zero = random;
        r_zero[..16].fill(0);
        let mut s_zero = [0xff; 32];
        s_zero[16..].fill(0);
        let mut r_one = [0u8; 32];
        r_one[0] = 1;
        keys.extend([r_zero, s_zero, r_one]);
        for key in &keys {
            for len in (0..=1100).chain([4095, 4096, 4097, 32 * 1024, 33 * 1024]) {
                for msg in [&ones[..len], &zeros[..len.min(zeros.len())]] {
                    assert_eq!(ifma.tag(key, msg), crate_tag(key, msg), "len {}", msg.len());
                }
            }
        }
        // r = 1, s = 0: h is the sum of the padded blocks Σ (m_i + 2^128), so messages can make
        // it k·p + δ exactly for small δ (h equal to, just under and just over a multiple of p
        // before the final reduction). With n blocks, k = n / 4 + 1, Σ m_i = j·2^128 − c for
        // j = 4k − n and c = 5k − δ: j − 1 blocks of all ones, one of 2^128 − c + j − 1, the
        // rest zero.
        for n in 2..40usize {
            let k = n / 4 + 1;
            let j = 4 * k - n;
            for delta in [-3i64, -2, -1, 0, 1, 2, 4] {
                let c = 5 * k as i64 - delta;
                if j > n || c < j as i64 {
                    continue;
                }
                let mut msg = vec![0u8; 16 * n];
                msg[..16 * (j - 1)].fill(0xff);
                let last = (u128::MAX - c as u128 + 1) + (j as u128 - 1);
                msg[16 * (j - 1)..16 * j].copy_from_slice(&last.to_le_bytes());
                // h mod p is δ, or p + δ (low 128 bits 2^128 − 5 + δ) for δ < 0.
                let h = if delta < 0 {
                    (u128::MAX - 4).wrapping_add(delta as u128)
                } else {
                    delta as u128
                };
                let want = h.to_le_bytes();
                assert_eq!(crate_tag(&r_one, &msg), want, "crate, {n} blocks, delta {delta}");
                assert_eq!(ifma.tag(&r_one, &msg), want, "{n} blocks, delta {delta}");
            }
        }
    }
}
