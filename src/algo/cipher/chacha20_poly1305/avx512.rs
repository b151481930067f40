//! ChaCha20 keystream XOR, sixteen blocks at a time in AVX-512F registers: one zmm register per
//! state word, one lane per block, 1024 bytes per iteration, with one-instruction rotates
//! (`vprold`). Twice the blocks per instruction of the eight-block [`super::avx2`] path, which
//! still serves a 512..1023-byte remainder and CPUs without AVX-512F. Only whole 1024-byte
//! groups are done here; the caller finishes the rest.

// The AVX-512 intrinsics are stable from Rust 1.89, the package's rust-version.

use core::arch::x86_64::*;

/// Bytes per iteration: sixteen 64-byte blocks.
pub(super) const GROUP: usize = 1024;

/// "expand 32-byte k".
const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

/// Proof that the CPU has AVX-512F: only [`Avx512::detect`] makes one, so holding one makes
/// calling the `avx512f` code sound.
#[derive(Clone, Copy, Debug)]
pub(super) struct Avx512(());

impl Avx512 {
    /// `Some` if this CPU runs AVX-512F code.
    pub(super) fn detect() -> Option<Self> {
        std::is_x86_feature_detected!("avx512f").then_some(Avx512(()))
    }

    /// XORs the keystream of blocks `first_block..` (original ChaCha20: 64-bit block counter
    /// in words 12–13, 64-bit nonce in words 14–15) into `data`, 1024 bytes at a time, and
    /// returns how many bytes it did: `data.len()` rounded down to 1024, or fewer if the low
    /// counter word would wrap (the caller finishes in every case).
    pub(super) fn xor_keystream(
        self,
        key: &[u32; 8],
        nonce: [u32; 2],
        first_block: u64,
        data: &mut [u8],
    ) -> usize {
        if data.len() < GROUP {
            return 0;
        }
        // SAFETY: an `Avx512` exists only if AVX-512F was detected.
        unsafe { with_avx512f(key, nonce, first_block, data) }
    }
}

/// Four independent quarter rounds on state words given as literals, interleaved so their
/// dependency chains overlap; a macro so the words stay in registers.
macro_rules! quarter_rounds {
    ($x:ident, $([$a:literal, $b:literal, $c:literal, $d:literal]),+) => {
        $(
            $x[$a] = _mm512_add_epi32($x[$a], $x[$b]);
            $x[$d] = _mm512_rol_epi32::<16>(_mm512_xor_si512($x[$d], $x[$a]));
        )+
        $(
            $x[$c] = _mm512_add_epi32($x[$c], $x[$d]);
            $x[$b] = _mm512_rol_epi32::<12>(_mm512_xor_si512($x[$b], $x[$c]));
        )+
        $(
            $x[$a] = _mm512_add_epi32($x[$a], $x[$b]);
            $x[$d] = _mm512_rol_epi32::<8>(_mm512_xor_si512($x[$d], $x[$a]));
        )+
        $(
            $x[$c] = _mm512_add_epi32($x[$c], $x[$d]);
            $x[$b] = _mm512_rol_epi32::<7>(_mm512_xor_si512($x[$b], $x[$c]));
        )+
    };
}

/// The sixteen-block routine; [`Avx512::xor_keystream`] documents the contract.
#[target_feature(enable = "avx512f")]
fn with_avx512f(key: &[u32; 8], nonce: [u32; 2], first_block: u64, data: &mut [u8]) -> usize {
    let (mut ctr_lo, ctr_hi) = (first_block as u32, (first_block >> 32) as u32);
    let mut done = 0;
    // Lane j of the counter register is block ctr_lo + j.
    let lanes = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    let fixed: [__m512i; 16] = [
        _mm512_set1_epi32(SIGMA[0] as i32),
        _mm512_set1_epi32(SIGMA[1] as i32),
        _mm512_set1_epi32(SIGMA[2] as i32),
        _mm512_set1_epi32(SIGMA[3] as i32),
        _mm512_set1_epi32(key[0] as i32),
        _mm512_set1_epi32(key[1] as i32),
        _mm512_set1_epi32(key[2] as i32),
        _mm512_set1_epi32(key[3] as i32),
        _mm512_set1_epi32(key[4] as i32),
        _mm512_set1_epi32(key[5] as i32),
        _mm512_set1_epi32(key[6] as i32),
        _mm512_set1_epi32(key[7] as i32),
        _mm512_setzero_si512(), // word 12: set per group below
        _mm512_set1_epi32(ctr_hi as i32),
        _mm512_set1_epi32(nonce[0] as i32),
        _mm512_set1_epi32(nonce[1] as i32),
    ];
    for group in data.chunks_exact_mut(GROUP) {
        if ctr_lo.checked_add(16).is_none() {
            break;
        }
        let mut init = fixed;
        init[12] = _mm512_add_epi32(_mm512_set1_epi32(ctr_lo as i32), lanes);
        let mut x = init;
        for _ in 0..10 {
            quarter_rounds!(x, [0, 4, 8, 12], [1, 5, 9, 13], [2, 6, 10, 14], [3, 7, 11, 15]);
            quarter_rounds!(x, [0, 5, 10, 15], [1, 6, 11, 12], [2, 7, 8, 13], [3, 4, 9, 14]);
        }
        for (w, i) in x.iter_mut().zip(init) {
            *w = _mm512_add_epi32(*w, i);
        }
        // Per group of four words (0–3, 4–7, ...): a 4×4 transpose inside each 128-bit lane,
        // after which register k of group g holds, in 128-bit lane l, words 4g..4g+3 of block
        // 4l + k.
        let [a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3, d0, d1, d2, d3] = x;
        let g = [
            transpose4_in_lanes([a0, a1, a2, a3]),
            transpose4_in_lanes([b0, b1, b2, b3]),
            transpose4_in_lanes([c0, c1, c2, c3]),
            transpose4_in_lanes([d0, d1, d2, d3]),
        ];
        let [g0, g1, g2, g3] = g;
        for (k, lanes) in [
            [g0[0], g1[0], g2[0], g3[0]],
            [g0[1], g1[1], g2[1], g3[1]],
            [g0[2], g1[2], g2[2], g3[2]],
            [g0[3], g1[3], g2[3], g3[3]],
        ]
        .into_iter()
        .enumerate()
        {
            // Then a 4×4 transpose of 128-bit lanes across the groups: out[l] is block 4l + k.
            let out = transpose4_lanes(lanes);
            for (l, ks) in out.into_iter().enumerate() {
                let at = (4 * l + k) * 64;
                let block = &mut group[at..at + 64];
                let p = block.as_mut_ptr().cast::<__m512i>();
                // SAFETY: `block` is 64 writable bytes: one unaligned 64-byte load and store.
                unsafe { _mm512_storeu_si512(p, _mm512_xor_si512(_mm512_loadu_si512(p), ks)) };
            }
        }
        ctr_lo += 16;
        done += GROUP;
    }
    done
}

/// Inside each 128-bit lane, a 4×4 transpose of 32-bit words: in, register i holds word i of
/// the lane's four blocks; out, register k holds words 0–3 of the lane's block k.
#[inline]
#[target_feature(enable = "avx512f")]
fn transpose4_in_lanes(a: [__m512i; 4]) -> [__m512i; 4] {
    let t0 = _mm512_unpacklo_epi32(a[0], a[1]);
    let t1 = _mm512_unpackhi_epi32(a[0], a[1]);
    let t2 = _mm512_unpacklo_epi32(a[2], a[3]);
    let t3 = _mm512_unpackhi_epi32(a[2], a[3]);
    [
        _mm512_unpacklo_epi64(t0, t2),
        _mm512_unpackhi_epi64(t0, t2),
        _mm512_unpacklo_epi64(t1, t3),
        _mm512_unpackhi_epi64(t1, t3),
    ]
}

/// A 4×4 transpose of 128-bit lanes: out register l is lane l of in registers 0, 1, 2, 3.
#[inline]
#[target_feature(enable = "avx512f")]
fn transpose4_lanes(u: [__m512i; 4]) -> [__m512i; 4] {
    // [u0.0 u0.1 u1.0 u1.1], [u0.2 u0.3 u1.2 u1.3], and the same of u2, u3.
    let v0 = _mm512_shuffle_i32x4::<0x44>(u[0], u[1]);
    let v1 = _mm512_shuffle_i32x4::<0xee>(u[0], u[1]);
    let v2 = _mm512_shuffle_i32x4::<0x44>(u[2], u[3]);
    let v3 = _mm512_shuffle_i32x4::<0xee>(u[2], u[3]);
    [
        _mm512_shuffle_i32x4::<0x88>(v0, v2),
        _mm512_shuffle_i32x4::<0xdd>(v0, v2),
        _mm512_shuffle_i32x4::<0x88>(v1, v3),
        _mm512_shuffle_i32x4::<0xdd>(v1, v3),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algo::{Rng, TestRng};
    use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
    use chacha20::{ChaCha20, ChaCha20Legacy, LegacyNonce};

    /// The sixteen-block path against the `chacha20` crate (ChaCha20Legacy) for random keys,
    /// nonces, starting counters (some just below the low counter word's wrap, where it must
    /// stop short) and lengths 0..5000. A CPU without AVX-512F cannot run the path, so there
    /// the test checks only that detection agrees with the CPU (IFMA implies AVX-512F); the
    /// fallback paths are checked against ring by `matches_ring_on_random_packets`.
    #[test]
    fn sixteen_block_path_matches_the_chacha20_crate() {
        let Some(simd) = Avx512::detect() else {
            assert!(!std::is_x86_feature_detected!("avx512ifma"), "avx512f not detected");
            return;
        };
        let mut rng = TestRng(0x5116);
        let mut buf = [0u8; 16];
        for len in (0..5000).step_by(7).chain([1023, 1024, 1025, 2048, 4096, 4999]) {
            rng.fill(&mut buf);
            let start = match len % 5 {
                0 => u64::from(u32::MAX - (len as u32 % 40)),
                1 => (u64::from(buf[8]) << 32) | u64::from(u32::MAX - 15 - u32::from(buf[9] % 4)),
                2 => 0,
                _ => u64::from(u32::from_le_bytes([buf[8], buf[9], buf[10], 0])),
            };
            let mut key = [0u8; 32];
            rng.fill(&mut key);
            let mut words = [0u32; 8];
            for (w, b) in words.iter_mut().zip(key.chunks_exact(4)) {
                *w = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            let n0 = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
            let n = [n0, u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]])];
            let mut nonce = [0u8; 8];
            nonce[..4].copy_from_slice(&n[0].to_le_bytes());
            nonce[4..].copy_from_slice(&n[1].to_le_bytes());
            let mut data = vec![0u8; len];
            rng.fill(&mut data);
            let mut want = data.clone();
            let done = simd.xor_keystream(&words, n, start, &mut data);
            let lo = start as u32;
            let groups_before_wrap = ((u64::from(u32::MAX) - u64::from(lo)) / 16) as usize;
            let expect = (len / GROUP).min(groups_before_wrap) * GROUP;
            assert_eq!(done, expect, "len {len} from block {start:#x}");
            // ChaCha20Legacy has no high counter word; the RFC 8439 form with a nonce of
            // (high counter word ‖ our nonce) is the same state.
            if start >> 32 == 0 {
                let k = chacha20::Key::from_slice(&key);
                let mut c = ChaCha20Legacy::new(k, LegacyNonce::from_slice(&nonce));
                c.seek(start * 64);
                c.apply_keystream(&mut want[..done]);
            } else {
                let mut ietf = [0u8; 12];
                ietf[..4].copy_from_slice(&((start >> 32) as u32).to_le_bytes());
                ietf[4..].copy_from_slice(&nonce);
                let k = chacha20::Key::from_slice(&key);
                let mut c = ChaCha20::new(k, chacha20::Nonce::from_slice(&ietf));
                c.seek(u64::from(start as u32) * 64);
                c.apply_keystream(&mut want[..done]);
            }
            assert!(data == want, "len {len} from block {start:#x}");
        }
    }
}
