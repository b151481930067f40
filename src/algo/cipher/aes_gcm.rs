//! `aes128-gcm@openssh.com` / `aes256-gcm@openssh.com` (RFC 5647, openssh PROTOCOL §1.6).
//!
//! The 12-byte nonce is a 4-byte fixed field followed by an 8-byte big-endian invocation
//! counter, both taken from the derived IV; the counter is incremented after every packet.
//! packet_length goes in clear and is the additional authenticated data.

use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, AES_128_GCM, AES_256_GCM};
use ring::error::Unspecified;

/// GCM tag length.
pub const TAG_LEN: usize = 16;

/// One direction's AES-GCM key and invocation counter.
pub struct AesGcm {
    key: LessSafeKey,
    fixed: [u8; 4],
    invocation_counter: u64,
}

impl AesGcm {
    /// `key` of 16 or 32 bytes, `iv` of 12.
    pub fn new(key: &[u8], iv: &[u8]) -> Option<Self> {
        let alg = match key.len() {
            16 => &AES_128_GCM,
            32 => &AES_256_GCM,
            _ => return None,
        };
        let fixed: [u8; 4] = iv.get(..4)?.try_into().ok()?;
        let counter: [u8; 8] = iv.get(4..12)?.try_into().ok()?;
        Some(Self {
            key: LessSafeKey::new(UnboundKey::new(alg, key).ok()?),
            fixed,
            invocation_counter: u64::from_be_bytes(counter),
        })
    }

    fn next_nonce(&mut self) -> Nonce {
        let mut n = [0u8; 12];
        let (f, c) = n.split_at_mut(4);
        f.copy_from_slice(&self.fixed);
        c.copy_from_slice(&self.invocation_counter.to_be_bytes());
        // RFC 5647 §7.1: the invocation counter is treated as a 64-bit integer and incremented.
        self.invocation_counter = self.invocation_counter.wrapping_add(1);
        Nonce::assume_unique_for_key(n)
    }

    /// Encrypts `plaintext` in place with `packet_length` as AAD and returns the tag.
    pub fn seal(&mut self, packet_length: &[u8], plaintext: &mut [u8]) -> [u8; TAG_LEN] {
        let nonce = self.next_nonce();
        match self.key.seal_in_place_separate_tag(nonce, Aad::from(packet_length), plaintext) {
            Ok(tag) => {
                let mut out = [0u8; TAG_LEN];
                out.copy_from_slice(tag.as_ref());
                out
            }
            // ring only fails for inputs beyond GCM's 64 GiB limit, far past MAX_PACKET_LEN;
            // an all-zero tag then makes the peer reject the packet rather than us panic.
            Err(_) => [0u8; TAG_LEN],
        }
    }

    /// Checks the tag and decrypts `ciphertext` in place. Err: tag mismatch.
    pub fn open(
        &mut self,
        packet_length: &[u8],
        ciphertext: &mut [u8],
        tag: &[u8],
    ) -> Result<(), Unspecified> {
        let nonce = self.next_nonce();
        let tag = Tag::try_from(tag)?;
        self.key
            .open_in_place_separate_tag(nonce, Aad::from(packet_length), tag, ciphertext, 0..)
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_advances_per_packet() {
        let mut iv = [0u8; 12];
        iv[11] = 0xff;
        iv[10] = 0xff;
        let mut s = AesGcm::new(&[1u8; 16], &iv).unwrap();
        let mut o = AesGcm::new(&[1u8; 16], &iv).unwrap();
        for _ in 0..3 {
            let mut data = *b"0123456789abcdef";
            let tag = s.seal(&[0, 0, 0, 16], &mut data);
            o.open(&[0, 0, 0, 16], &mut data, &tag).unwrap();
            assert_eq!(&data, b"0123456789abcdef");
        }
        assert_eq!(s.invocation_counter, 0xffff + 3);
        let mut data = [0u8; 16];
        let tag = s.seal(&[0, 0, 0, 16], &mut data);
        // wrong AAD
        assert!(o.open(&[0, 0, 0, 17], &mut data, &tag).is_err());
        assert!(AesGcm::new(&[0u8; 24], &iv).is_none());
    }
}
