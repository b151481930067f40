//! `chacha20-poly1305@openssh.com` (openssh PROTOCOL.chacha20poly1305). ring's Poly1305 for
//! this construction is portable C and was half the server's CPU in bulk transfers, so packets
//! with a body of [`WIDE_FROM`] bytes or more take a vectorised path, its parts picked by the
//! CPU features found when the key is made ([`Simd`]):
//! - Poly1305: AVX-512 IFMA ([`poly1305_ifma`], sixteen blocks per step) where the CPU has
//!   it, else RustCrypto's `poly1305` (AVX2 back end chosen at run time, or portable).
//! - The body's ChaCha20: sixteen blocks per step in AVX-512F ([`avx512`]) while 1024 bytes
//!   remain, then eight blocks in AVX2 / AVX-512VL ([`avx2`], also the whole body without
//!   AVX-512F) while 512 remain; block 0 and the last bytes through RustCrypto's `chacha20`.
//!
//! Smaller packets, and every length field, stay with ring's `chacha20_poly1305_openssh`,
//! which costs less to set up per packet.
//!
//! The 64-byte key is K_2 ‖ K_1. Both run the original ChaCha20 (64-bit nonce, 64-bit block
//! counter) with the nonce = sequence number as a big-endian u64. K_1 at counter 0 encrypts the
//! 4-byte packet_length. K_2's block 0 gives the one-time Poly1305 key (its first 32 bytes) and
//! blocks 1.. encrypt the rest of the packet. The tag is Poly1305 over the encrypted length ‖
//! encrypted payload, checked (in constant time) before anything is decrypted.

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod poly1305_ifma;

use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use chacha20::{ChaCha20Legacy, LegacyNonce};
use poly1305::universal_hash::{KeyInit, UniversalHash};
use poly1305::Poly1305;
use ring::aead::chacha20_poly1305_openssh as reference;
use subtle::ConstantTimeEq;

/// Key length: K_2 ‖ K_1.
pub const KEY_LEN: usize = 64;
/// Tag length (Poly1305).
pub const TAG_LEN: usize = 16;
/// The packet_length field, encrypted with K_1.
const LEN_LEN: usize = 4;

/// The tag did not match, or the packet was shorter than its length field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadTag;

/// The AVX-512 code paths this CPU can run, found once per key rather than per packet.
#[derive(Clone, Copy, Debug)]
struct Simd {
    #[cfg(target_arch = "x86_64")]
    chacha16: Option<avx512::Avx512>,
    #[cfg(target_arch = "x86_64")]
    ifma: Option<poly1305_ifma::Ifma>,
}

impl Simd {
    fn detect() -> Self {
        Simd {
            #[cfg(target_arch = "x86_64")]
            chacha16: avx512::Avx512::detect(),
            #[cfg(target_arch = "x86_64")]
            ifma: poly1305_ifma::Ifma::detect(),
        }
    }

    /// Poly1305 of `data` (not padded) under the one-time key.
    fn tag(&self, key: &[u8; 32], data: &[u8]) -> [u8; TAG_LEN] {
        #[cfg(target_arch = "x86_64")]
        if let Some(ifma) = self.ifma {
            return ifma.tag(key, data);
        }
        tag_of(Poly1305::new(poly1305::Key::from_slice(key)), data).into()
    }
}

/// K_2, which keys Poly1305 and encrypts the body; a fresh cipher starts from it for every
/// packet. (K_1 and the length field stay with ring.)
struct Keys {
    k_2: chacha20::Key,
    /// K_2 as the little-endian state words the AVX2 / AVX-512 paths load.
    k_2_words: [u32; 8],
    simd: Simd,
}

impl Keys {
    fn new(key: &[u8]) -> Option<Self> {
        let key: &[u8; KEY_LEN] = key.try_into().ok()?;
        let k_2 = key.get(..KEY_LEN / 2)?;
        let mut k_2_words = [0u32; 8];
        for (w, b) in k_2_words.iter_mut().zip(k_2.chunks_exact(4)) {
            *w = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        Some(Keys { k_2: *chacha20::Key::from_slice(k_2), k_2_words, simd: Simd::detect() })
    }

    /// The one-time Poly1305 key (K_2's block 0), and the body cipher (K_2 from block 1),
    /// apart so the caller decides the order: seal encrypts then MACs, open MACs then decrypts.
    fn body_cipher_and_mac(&self, seq: u32) -> (BodyCipher<'_>, Mac<'_>) {
        let mut cipher = ChaCha20Legacy::new(&self.k_2, &nonce(seq));
        let mut block0 = [0u8; 64];
        cipher.apply_keystream(&mut block0);
        let mut key = [0u8; 32];
        key.copy_from_slice(&block0[..32]);
        (BodyCipher { keys: self, seq, cipher }, Mac { simd: &self.simd, key })
    }
}

/// One packet's Poly1305 key and the implementation to run it with.
struct Mac<'a> {
    simd: &'a Simd,
    key: [u8; 32],
}

impl Mac<'_> {
    fn tag(&self, data: &[u8]) -> [u8; TAG_LEN] {
        self.simd.tag(&self.key, data)
    }
}

/// K_2's keystream from block 1 for one packet.
struct BodyCipher<'a> {
    keys: &'a Keys,
    seq: u32,
    /// Positioned at block 1; finishes what the AVX-512 and AVX2 paths leave (all of it
    /// without them).
    cipher: ChaCha20Legacy,
}

impl BodyCipher<'_> {
    /// Encrypts or decrypts `body` in place. Err only if the 32-bit block counter of the
    /// fallback would run out (256 GiB, far past any packet).
    fn apply(mut self, body: &mut [u8]) -> Result<(), BadTag> {
        let done = self.wide(body);
        let rest = body.get_mut(done..).ok_or(BadTag)?;
        if done > 0 {
            self.cipher.try_seek(64 + done as u64).map_err(|_| BadTag)?;
        }
        self.cipher.try_apply_keystream(rest).map_err(|_| BadTag)
    }

    /// Whole 1024-byte groups through the sixteen-block AVX-512F path, then whole 512-byte
    /// groups through the eight-block AVX2 one, as far as the CPU has them; bytes done.
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    fn wide(&self, body: &mut [u8]) -> usize {
        let nonce = [0, u32::from_le_bytes(self.seq.to_be_bytes())];
        let words = &self.keys.k_2_words;
        #[cfg(target_arch = "x86_64")]
        let done = match self.keys.simd.chacha16 {
            Some(simd) => simd.xor_keystream(words, nonce, 1, body),
            None => 0,
        };
        #[cfg(not(target_arch = "x86_64"))]
        let done = 0;
        let Some(rest) = body.get_mut(done..) else { return done };
        done + avx2::xor_keystream(words, nonce, 1 + (done / 64) as u64, rest)
    }

    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
    fn wide(&self, _body: &mut [u8]) -> usize {
        0
    }
}

fn nonce(seq: u32) -> LegacyNonce {
    LegacyNonce::from(u64::from(seq).to_be_bytes())
}

/// Poly1305 of `data` (not padded) through the `poly1305` crate. Whole blocks go through
/// `update`, which feeds the AVX2 back end four blocks at a time; `compute_unpadded` only
/// takes the last partial block.
fn tag_of(mut mac: Poly1305, data: &[u8]) -> poly1305::Tag {
    let whole = data.len() - data.len() % poly1305::BLOCK_SIZE;
    let (blocks, tail) = data.split_at(whole);
    mac.update_padded(blocks);
    mac.compute_unpadded(tail)
}

/// Bodies shorter than this go through ring's whole construction: the vectorised path costs
/// about a microsecond per packet to set up (four-block ChaCha20 calls for block 0, the vector
/// Poly1305's key powers and finalisation), which only paid off past ~5 KiB with AVX2
/// (benches/packet.rs; not re-measured since the AVX-512 paths).
const WIDE_FROM: usize = 6 * 1024;

/// Which implementation a packet of `len` bytes (length field included) goes through.
fn wide(len: usize) -> bool {
    len >= LEN_LEN + WIDE_FROM
}

/// Inbound key.
pub struct OpeningKey {
    /// Length field always; whole packets below [`WIDE_FROM`].
    ring: reference::OpeningKey,
    body: Keys,
}

impl OpeningKey {
    /// The packet_length, decrypted but not yet authenticated: `open_in_place` checks it.
    pub fn decrypt_packet_length(&self, seq: u32, encrypted: [u8; LEN_LEN]) -> [u8; LEN_LEN] {
        self.ring.decrypt_packet_length(seq, encrypted)
    }

    /// Checks the tag over `packet` (encrypted length ‖ ciphertext) and, only if it matches,
    /// decrypts the ciphertext in place and returns it (the bytes after the length field).
    pub fn open_in_place<'a>(
        &self,
        seq: u32,
        packet: &'a mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<&'a [u8], BadTag> {
        if wide(packet.len()) {
            self.open_wide(seq, packet, tag)
        } else {
            self.ring.open_in_place(seq, packet, tag).map_err(|_| BadTag)
        }
    }

    /// [`OpeningKey::open_in_place`] through the vectorised path, whatever the size.
    fn open_wide<'a>(
        &self,
        seq: u32,
        packet: &'a mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<&'a [u8], BadTag> {
        if packet.len() < LEN_LEN {
            return Err(BadTag);
        }
        let (cipher, mac) = self.body.body_cipher_and_mac(seq);
        let expected = mac.tag(packet);
        if !bool::from(expected.ct_eq(tag)) {
            return Err(BadTag);
        }
        let body = packet.get_mut(LEN_LEN..).ok_or(BadTag)?;
        cipher.apply(body)?;
        Ok(body)
    }
}

/// Outbound key.
pub struct SealingKey {
    /// Whole packets below [`WIDE_FROM`].
    ring: reference::SealingKey,
    /// The length field of the others: "decrypting" is XOR with K_1's keystream, which is
    /// also how it is encrypted.
    length: reference::OpeningKey,
    body: Keys,
}

impl SealingKey {
    /// Encrypts `packet` (plaintext length ‖ body) in place and writes the tag. A `packet`
    /// shorter than the length field is taken as all length field (callers never pass one).
    pub fn seal_in_place(&self, seq: u32, packet: &mut [u8], tag: &mut [u8; TAG_LEN]) {
        if wide(packet.len()) {
            self.seal_wide(seq, packet, tag);
        } else if packet.len() >= LEN_LEN {
            self.ring.seal_in_place(seq, packet, tag);
        } else {
            // ring would panic on a packet without a whole length field.
            self.seal_wide(seq, packet, tag);
        }
    }

    /// [`SealingKey::seal_in_place`] through the vectorised path, whatever the size.
    fn seal_wide(&self, seq: u32, packet: &mut [u8], tag: &mut [u8; TAG_LEN]) {
        let (len, body) = packet.split_at_mut(packet.len().min(LEN_LEN));
        let mut whole = [0u8; LEN_LEN];
        whole[..len.len()].copy_from_slice(len);
        let whole = self.length.decrypt_packet_length(seq, whole);
        len.copy_from_slice(&whole[..len.len()]);
        let (cipher, mac) = self.body.body_cipher_and_mac(seq);
        // Cannot fail: the block counter covers 256 GiB and packets are under 1 MiB. Should it
        // ever, nothing may leave in clear: the packet is zeroed and its tag will not verify.
        if cipher.apply(body).is_err() {
            packet.fill(0);
            *tag = [0; TAG_LEN];
            return;
        }
        *tag = mac.tag(packet);
    }
}

pub(crate) fn opening_key(key: &[u8]) -> Option<OpeningKey> {
    let k: &[u8; KEY_LEN] = key.try_into().ok()?;
    Some(OpeningKey { ring: reference::OpeningKey::new(k), body: Keys::new(key)? })
}

pub(crate) fn sealing_key(key: &[u8]) -> Option<SealingKey> {
    let k: &[u8; KEY_LEN] = key.try_into().ok()?;
    Some(SealingKey {
        ring: reference::SealingKey::new(k),
        length: reference::OpeningKey::new(k),
        body: Keys::new(key)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algo::{Rng, TestRng};

    /// Keys take the AVX-512 paths wherever the CPU has them, so the packet tests below run
    /// them on such a machine rather than only the fallbacks.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn keys_pick_the_avx512_paths_the_cpu_has() {
        let keys = Keys::new(&[1u8; KEY_LEN]).unwrap();
        let ifma = std::is_x86_feature_detected!("avx512ifma");
        let f = std::is_x86_feature_detected!("avx512f");
        assert_eq!(keys.simd.ifma.is_some(), ifma && f);
        assert_eq!(keys.simd.chacha16.is_some(), f);
    }

    /// With the AVX-512 paths switched off (as on CPUs without them), the vectorised path
    /// still equals ring: the poly1305 crate and the eight-block ChaCha20 take over.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn fallbacks_without_avx512_match_ring() {
        let mut rng = TestRng(0xfa11);
        for body_len in [0, 511, 512, 1023, 1024, 1500, 4096, 32768, 32768 + 7] {
            let mut key = [0u8; KEY_LEN];
            rng.fill(&mut key);
            let mut plain = vec![0u8; LEN_LEN + body_len];
            rng.fill(&mut plain);
            let (mut s, mut o) = (sealing_key(&key).unwrap(), opening_key(&key).unwrap());
            for simd in [&mut s.body.simd, &mut o.body.simd] {
                *simd = Simd { chacha16: None, ifma: None };
            }
            let mut a = plain.clone();
            let mut tag_a = [0u8; TAG_LEN];
            s.seal_wide(5, &mut a, &mut tag_a);
            let mut b = plain.clone();
            let mut tag_b = [0u8; TAG_LEN];
            reference::SealingKey::new(&key).seal_in_place(5, &mut b, &mut tag_b);
            assert!(a == b && tag_a == tag_b, "body {body_len}");
            assert_eq!(o.open_wide(5, &mut a, &tag_b).unwrap(), &plain[4..]);
        }
    }

    #[test]
    fn seal_open_and_length_decrypt() {
        let key = [7u8; 64];
        let s = sealing_key(&key).unwrap();
        let o = opening_key(&key).unwrap();
        let mut pkt = [0, 0, 0, 12, 4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
        let plain = pkt;
        let mut tag = [0u8; TAG_LEN];
        s.seal_in_place(3, &mut pkt, &mut tag);
        assert_ne!(pkt, plain);
        let len = o.decrypt_packet_length(3, [pkt[0], pkt[1], pkt[2], pkt[3]]);
        assert_eq!(len, [0, 0, 0, 12]);
        assert_eq!(o.open_in_place(3, &mut pkt, &tag).unwrap(), &plain[4..]);
        assert!(opening_key(&key[..63]).is_none());
        assert!(o.open_in_place(3, &mut [0u8; 3], &tag).is_err());
        assert!(o.open_wide(3, &mut [0u8; 3], &tag).is_err());
        // Shorter than a length field: no panic (ring's would), and nothing left in clear.
        let mut short = [1u8, 2, 3];
        s.seal_in_place(3, &mut short, &mut tag);
        assert_ne!(short, [1, 2, 3]);
    }

    /// Same ciphertext, tag and length as ring's `chacha20_poly1305_openssh` (the previous
    /// implementation, itself checked against OpenSSH by the packet vectors and cross-tests)
    /// on random keys, sequence numbers and bodies; each side opens the other's packets and
    /// both refuse a flipped bit.
    #[test]
    fn matches_ring_on_random_packets() {
        let mut rng = TestRng(0x11);
        let lens = [0, 1, 3, 4, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 255, 256, 1000];
        let big =
            [4096, WIDE_FROM - 1, WIDE_FROM, WIDE_FROM + 1, 32768, 32768 + 5, 35000, 256 * 1024];
        // Where the 1024-byte AVX-512 groups hand over to the 512-byte AVX2 group and then to
        // the scalar tail (the body starts at block 1).
        let handover = [7168, 7168 + 511, 7168 + 512, 7168 + 513, 8192 - 1, 8192, 8192 + 1];
        let big = big.into_iter().chain(handover);
        let lens = lens.iter().copied().chain(big);
        let seqs = [0, 1, 2, 0x7fff_ffff, 0x8000_0000, u32::MAX - 1, u32::MAX];
        for (i, body_len) in lens.enumerate() {
            for (j, &fixed_seq) in seqs.iter().enumerate() {
                if body_len > 4096 && j > 2 {
                    continue;
                }
                let mut key = [0u8; KEY_LEN];
                rng.fill(&mut key);
                let mut r = [0u8; 4];
                rng.fill(&mut r);
                let seq = if (i + j) % 2 == 0 { fixed_seq } else { u32::from_le_bytes(r) };
                let mut plain = vec![0u8; LEN_LEN + body_len];
                rng.fill(&mut plain);

                let (ours_s, ours_o) = (sealing_key(&key).unwrap(), opening_key(&key).unwrap());
                let theirs_s = reference::SealingKey::new(&key);
                let theirs_o = reference::OpeningKey::new(&key);

                // Ours through the vectorised path whatever the size, and through the
                // dispatching API (ring below WIDE_FROM): both must equal ring.
                let mut a = plain.clone();
                let mut tag_a = [0u8; TAG_LEN];
                ours_s.seal_wide(seq, &mut a, &mut tag_a);
                let mut b = plain.clone();
                let mut tag_b = [0u8; TAG_LEN];
                theirs_s.seal_in_place(seq, &mut b, &mut tag_b);
                assert!(a == b, "ciphertext differs, body {body_len} seq {seq}");
                assert_eq!(tag_a, tag_b, "tag differs, body {body_len} seq {seq}");
                let mut d = plain.clone();
                let mut tag_d = [0u8; TAG_LEN];
                ours_s.seal_in_place(seq, &mut d, &mut tag_d);
                assert!(d == b && tag_d == tag_b, "dispatch differs, body {body_len}");

                let enc_len = [a[0], a[1], a[2], a[3]];
                assert_eq!(ours_o.decrypt_packet_length(seq, enc_len), plain[..4]);

                let mut x = a.clone();
                assert_eq!(ours_o.open_wide(seq, &mut x, &tag_b).unwrap(), &plain[4..]);
                let mut x = a.clone();
                assert_eq!(ours_o.open_in_place(seq, &mut x, &tag_b).unwrap(), &plain[4..]);
                let mut y = b.clone();
                assert_eq!(theirs_o.open_in_place(seq, &mut y, &tag_a).unwrap(), &plain[4..]);

                // A flipped bit anywhere (length, body or tag), or the wrong seq, is refused.
                let mut flip = [0u8; 8];
                rng.fill(&mut flip);
                let at = usize::from_le_bytes(flip) % (a.len() + TAG_LEN);
                let mut bad = a.clone();
                let mut bad_tag = tag_a;
                match bad.get_mut(at) {
                    Some(byte) => *byte ^= 1 << (at % 8),
                    None => bad_tag[at - a.len()] ^= 1 << (at % 8),
                }
                let (mut bad2, mut bad3) = (bad.clone(), bad.clone());
                assert_eq!(ours_o.open_wide(seq, &mut bad, &bad_tag), Err(BadTag));
                assert_eq!(ours_o.open_in_place(seq, &mut bad3, &bad_tag), Err(BadTag));
                assert!(theirs_o.open_in_place(seq, &mut bad2, &bad_tag).is_err());
                let mut wrong_seq = a.clone();
                let other = seq.wrapping_add(1);
                assert_eq!(ours_o.open_wide(other, &mut wrong_seq, &tag_a), Err(BadTag));
            }
        }
    }

    /// The eight-block path (each variant the CPU can run) against the `chacha20` crate at
    /// several starting blocks, including one where the low counter word would wrap (it must
    /// stop short and say so).
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    #[test]
    fn eight_block_paths_match_the_chacha20_crate() {
        type Path = fn(&[u32; 8], [u32; 2], u64, &mut [u8]) -> usize;
        let mut paths: Vec<(&str, Path)> = vec![("dispatch", avx2::xor_keystream)];
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 detected; the closure is only called below, on this CPU.
            paths.push(("avx2", |k, n, f, d| unsafe { avx2::with_avx2(k, n, f, d) }));
        }
        if std::is_x86_feature_detected!("avx512vl") && std::is_x86_feature_detected!("avx512f") {
            // SAFETY: as above, for AVX-512F/VL.
            paths.push(("avx512vl", |k, n, f, d| unsafe { avx2::with_avx512vl(k, n, f, d) }));
        }
        let avx2 = std::is_x86_feature_detected!("avx2");
        let mut rng = TestRng(9);
        for (name, path) in paths {
            for (first, len, expect_done) in [
                (1u32, 512, 512),
                (1, 1023, 512),
                (1, 511, 0),
                (77, 4096 + 100, 4096),
                (u32::MAX - 20, 2048, 1024),
                (u32::MAX - 7, 512, 0),
            ] {
                let mut key = [0u8; 32];
                rng.fill(&mut key);
                let mut words = [0u32; 8];
                for (w, b) in words.iter_mut().zip(key.chunks_exact(4)) {
                    *w = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                }
                let mut data = vec![0u8; len];
                rng.fill(&mut data);
                let mut want = data.clone();
                let seq = 0xa1b2_c3d4u32;
                let n = [0, u32::from_le_bytes(seq.to_be_bytes())];
                let done = path(&words, n, first.into(), &mut data);
                assert_eq!(done, if avx2 { expect_done } else { 0 }, "{name} from {first}");
                let mut c = ChaCha20Legacy::new(chacha20::Key::from_slice(&key), &nonce(seq));
                c.seek(u64::from(first) * 64);
                c.apply_keystream(&mut want[..done]);
                assert!(data == want, "{name} from block {first}, len {len}");
            }
        }
    }

    /// The one-time Poly1305 key and the body cipher come from K_2 block 0 and blocks 1..,
    /// the length from K_1 (the second half of the key): PROTOCOL.chacha20poly1305's layout,
    /// checked against plain ChaCha20 (RFC 8439 form, 32-bit counter, nonce = 0⁸ ‖ seq) from
    /// ring so a swapped half or off-by-one block would show even if both sides agreed.
    #[test]
    fn key_halves_and_blocks_follow_the_protocol() {
        use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
        let mut key = [0u8; KEY_LEN];
        TestRng(5).fill(&mut key);
        let seq = 0x0102_0304u32;
        let mut pkt = [0u8; LEN_LEN + 64];
        let mut tag = [0u8; TAG_LEN];
        sealing_key(&key).unwrap().seal_wide(seq, &mut pkt, &mut tag);
        // Length: K_1 (second half) from block 0; body: K_2 (first half) from block 1.
        let k2 = chacha20::Key::from_slice(&key[..32]);
        let k1 = chacha20::Key::from_slice(&key[32..]);
        let mut ks1 = [0u8; 4];
        ChaCha20Legacy::new(k1, &nonce(seq)).apply_keystream(&mut ks1);
        assert_eq!(pkt[..4], ks1);
        let mut ks2 = [0u8; 128];
        ChaCha20Legacy::new(k2, &nonce(seq)).apply_keystream(&mut ks2);
        assert_eq!(pkt[4..], ks2[64..]);
        // Independently: ring's RFC 8439 AEAD with K_2 and nonce 0⁸ ‖ seq also starts at block 1.
        let mut n = [0u8; 12];
        n[8..].copy_from_slice(&seq.to_be_bytes());
        let ietf = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &key[..32]).unwrap());
        let mut zeros = [0u8; 64];
        let _ = ietf
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(n), Aad::empty(), &mut zeros)
            .unwrap();
        assert_eq!(zeros, pkt[4..]);
    }
}
