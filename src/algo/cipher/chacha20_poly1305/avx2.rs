//! ChaCha20 keystream XOR, eight blocks at a time in AVX2 registers (one register per state
//! word, one lane per block), the layout of OpenSSL's and ring's `ChaCha20_8x`. The `chacha20`
//! crate's AVX2 back end keeps a block per register pair and runs four blocks at a time, about
//! half as fast on this construction's 32 KiB packets. Where the CPU has AVX-512VL the same
//! code is compiled for it too. Only whole 512-byte groups are done here; the caller finishes
//! the tail.

#[cfg(target_arch = "x86")]
use core::arch::x86::*;
#[cfg(target_arch = "x86_64")]
use core::arch::x86_64::*;

/// Bytes per call of the inner loop: eight 64-byte blocks.
pub(super) const GROUP: usize = 512;

/// "expand 32-byte k".
const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

/// Four independent quarter rounds on state words given as literals, interleaved so their
/// dependency chains overlap. A macro so the words stay in registers: as a function LLVM did
/// not inline it and every round went through memory.
macro_rules! quarter_rounds {
    ($x:ident, $rot16:ident, $rot8:ident, $([$a:literal, $b:literal, $c:literal, $d:literal]),+) => {
        // a += b; d ^= a; d <<<= 16
        $(
            $x[$a] = _mm256_add_epi32($x[$a], $x[$b]);
            $x[$d] = _mm256_shuffle_epi8(_mm256_xor_si256($x[$d], $x[$a]), $rot16);
        )+
        // c += d; b ^= c; b <<<= 12
        $(
            $x[$c] = _mm256_add_epi32($x[$c], $x[$d]);
            let t = _mm256_xor_si256($x[$b], $x[$c]);
            $x[$b] = _mm256_or_si256(_mm256_slli_epi32(t, 12), _mm256_srli_epi32(t, 20));
        )+
        // a += b; d ^= a; d <<<= 8
        $(
            $x[$a] = _mm256_add_epi32($x[$a], $x[$b]);
            $x[$d] = _mm256_shuffle_epi8(_mm256_xor_si256($x[$d], $x[$a]), $rot8);
        )+
        // c += d; b ^= c; b <<<= 7
        $(
            $x[$c] = _mm256_add_epi32($x[$c], $x[$d]);
            let t = _mm256_xor_si256($x[$b], $x[$c]);
            $x[$b] = _mm256_or_si256(_mm256_slli_epi32(t, 7), _mm256_srli_epi32(t, 25));
        )+
    };
}

/// XORs the keystream of blocks `first_block..` (original ChaCha20: 64-bit block counter in
/// words 12–13, 64-bit nonce in words 14–15) into `data`, 512 bytes at a time, and returns how
/// many bytes it did: `data.len()` rounded down to 512, 0 without AVX2, or fewer if the low
/// counter word would wrap (the caller finishes with the chacha20 crate in every case).
pub(super) fn xor_keystream(
    key: &[u32; 8],
    nonce: [u32; 2],
    first_block: u64,
    data: &mut [u8],
) -> usize {
    if data.len() < GROUP {
        return 0;
    }
    if std::is_x86_feature_detected!("avx512vl")
        && std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx2")
    {
        // SAFETY: every feature `with_avx512vl` enables was detected just above.
        unsafe { with_avx512vl(key, nonce, first_block, data) }
    } else if std::is_x86_feature_detected!("avx2") {
        // SAFETY: as above.
        unsafe { with_avx2(key, nonce, first_block, data) }
    } else {
        0
    }
}

/// The eight-block routine compiled for a set of target features, so one source serves both
/// plain AVX2 and AVX-512VL (32 vector registers, so no spills, and one-instruction rotates).
macro_rules! keystream_fn {
    ($name:ident, $features:literal) => {
        #[target_feature(enable = $features)]
        pub(super) fn $name(
            key: &[u32; 8],
            nonce: [u32; 2],
            first_block: u64,
            data: &mut [u8],
        ) -> usize {
            let (mut ctr_lo, ctr_hi) = (first_block as u32, (first_block >> 32) as u32);
            let mut done = 0;
            // Byte shuffles rotating each 32-bit word left by 16 and by 8.
            let rot16 = _mm256_set_epi8(
                13, 12, 15, 14, 9, 8, 11, 10, 5, 4, 7, 6, 1, 0, 3, 2, 13, 12, 15, 14, 9, 8, 11, 10,
                5, 4, 7, 6, 1, 0, 3, 2,
            );
            let rot8 = _mm256_set_epi8(
                14, 13, 12, 15, 10, 9, 8, 11, 6, 5, 4, 7, 2, 1, 0, 3, 14, 13, 12, 15, 10, 9, 8, 11,
                6, 5, 4, 7, 2, 1, 0, 3,
            );
            // Lane j of the counter register is block first_block + j.
            let lanes = _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0);
            let fixed: [__m256i; 16] = [
                _mm256_set1_epi32(SIGMA[0] as i32),
                _mm256_set1_epi32(SIGMA[1] as i32),
                _mm256_set1_epi32(SIGMA[2] as i32),
                _mm256_set1_epi32(SIGMA[3] as i32),
                _mm256_set1_epi32(key[0] as i32),
                _mm256_set1_epi32(key[1] as i32),
                _mm256_set1_epi32(key[2] as i32),
                _mm256_set1_epi32(key[3] as i32),
                _mm256_set1_epi32(key[4] as i32),
                _mm256_set1_epi32(key[5] as i32),
                _mm256_set1_epi32(key[6] as i32),
                _mm256_set1_epi32(key[7] as i32),
                _mm256_setzero_si256(), // word 12: set per group below
                _mm256_set1_epi32(ctr_hi as i32),
                _mm256_set1_epi32(nonce[0] as i32),
                _mm256_set1_epi32(nonce[1] as i32),
            ];
            for group in data.chunks_exact_mut(GROUP) {
                if ctr_lo.checked_add(8).is_none() {
                    break;
                }
                let mut init = fixed;
                init[12] = _mm256_add_epi32(_mm256_set1_epi32(ctr_lo as i32), lanes);
                let mut x = init;
                for _ in 0..10 {
                    quarter_rounds!(
                        x,
                        rot16,
                        rot8,
                        [0, 4, 8, 12],
                        [1, 5, 9, 13],
                        [2, 6, 10, 14],
                        [3, 7, 11, 15]
                    );
                    quarter_rounds!(
                        x,
                        rot16,
                        rot8,
                        [0, 5, 10, 15],
                        [1, 6, 11, 12],
                        [2, 7, 8, 13],
                        [3, 4, 9, 14]
                    );
                }
                for (w, i) in x.iter_mut().zip(init) {
                    *w = _mm256_add_epi32(*w, i);
                }
                let [a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7] = x;
                // Row j of each transpose is block j's words 0–7 (then 8–15).
                let lo = transpose8([a0, a1, a2, a3, a4, a5, a6, a7]);
                let hi = transpose8([b0, b1, b2, b3, b4, b5, b6, b7]);
                for (block, (l, h)) in group.chunks_exact_mut(64).zip(lo.into_iter().zip(hi)) {
                    let p = block.as_mut_ptr().cast::<__m256i>();
                    // SAFETY: `block` is 64 writable bytes: two unaligned 32-byte loads and stores.
                    unsafe {
                        _mm256_storeu_si256(p, _mm256_xor_si256(_mm256_loadu_si256(p), l));
                        let q = p.add(1);
                        _mm256_storeu_si256(q, _mm256_xor_si256(_mm256_loadu_si256(q), h));
                    }
                }
                ctr_lo += 8;
                done += GROUP;
            }
            done
        }
    };
}

keystream_fn!(with_avx2, "avx2");
keystream_fn!(with_avx512vl, "avx2,avx512f,avx512vl");

/// 8×8 transpose of 32-bit words: in, register i holds word i of blocks 0–7; out, register j
/// holds words 0–7 of block j.
#[inline]
#[target_feature(enable = "avx2")]
fn transpose8(a: [__m256i; 8]) -> [__m256i; 8] {
    // Pairs of words: [i0 i+1_0 i1 i+1_1 | i4 i+1_4 i5 i+1_5] and the .._2/3 | .._6/7 halves.
    let t0 = _mm256_unpacklo_epi32(a[0], a[1]);
    let t1 = _mm256_unpackhi_epi32(a[0], a[1]);
    let t2 = _mm256_unpacklo_epi32(a[2], a[3]);
    let t3 = _mm256_unpackhi_epi32(a[2], a[3]);
    let t4 = _mm256_unpacklo_epi32(a[4], a[5]);
    let t5 = _mm256_unpackhi_epi32(a[4], a[5]);
    let t6 = _mm256_unpacklo_epi32(a[6], a[7]);
    let t7 = _mm256_unpackhi_epi32(a[6], a[7]);
    // Words 0–3 of blocks (k, k+4) for k = 0..4, and words 4–7 of the same.
    let u0 = _mm256_unpacklo_epi64(t0, t2);
    let u1 = _mm256_unpackhi_epi64(t0, t2);
    let u2 = _mm256_unpacklo_epi64(t1, t3);
    let u3 = _mm256_unpackhi_epi64(t1, t3);
    let u4 = _mm256_unpacklo_epi64(t4, t6);
    let u5 = _mm256_unpackhi_epi64(t4, t6);
    let u6 = _mm256_unpacklo_epi64(t5, t7);
    let u7 = _mm256_unpackhi_epi64(t5, t7);
    [
        _mm256_permute2x128_si256(u0, u4, 0x20),
        _mm256_permute2x128_si256(u1, u5, 0x20),
        _mm256_permute2x128_si256(u2, u6, 0x20),
        _mm256_permute2x128_si256(u3, u7, 0x20),
        _mm256_permute2x128_si256(u0, u4, 0x31),
        _mm256_permute2x128_si256(u1, u5, 0x31),
        _mm256_permute2x128_si256(u2, u6, 0x31),
        _mm256_permute2x128_si256(u3, u7, 0x31),
    ]
}
