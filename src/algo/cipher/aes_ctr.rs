//! `aes128-ctr`, `aes192-ctr`, `aes256-ctr` (RFC 4344 §4): AES in counter mode with a 128-bit
//! big-endian counter starting at the derived IV. The keystream runs on across packets, so one
//! state lives for the whole key epoch.

use aes::{Aes128, Aes192, Aes256};
use ctr::cipher::{KeyIvInit, StreamCipher};
use ctr::Ctr128BE;

/// AES block size: what the packet layer decrypts first to learn packet_length.
pub const BLOCK_LEN: usize = 16;

/// One direction's AES-CTR state (key schedule plus keystream position).
pub enum AesCtr {
    Aes128(Ctr128BE<Aes128>),
    Aes192(Ctr128BE<Aes192>),
    Aes256(Ctr128BE<Aes256>),
}

impl AesCtr {
    /// `key` of 16, 24 or 32 bytes; `iv` of 16.
    pub fn new(key: &[u8], iv: &[u8]) -> Option<Self> {
        Some(match key.len() {
            16 => Self::Aes128(Ctr128BE::new_from_slices(key, iv).ok()?),
            24 => Self::Aes192(Ctr128BE::new_from_slices(key, iv).ok()?),
            32 => Self::Aes256(Ctr128BE::new_from_slices(key, iv).ok()?),
            _ => return None,
        })
    }

    /// XORs the next `data.len()` keystream bytes into `data` (encrypt and decrypt alike).
    #[inline]
    pub fn apply(&mut self, data: &mut [u8]) {
        // The 128-bit counter cannot run out within any connection's lifetime (2^132 bytes),
        // so the non-panicking variant's error case is unreachable in practice; if it ever
        // happened the data would be left as is and the peer's MAC check would fail.
        let _ = match self {
            Self::Aes128(c) => c.try_apply_keystream(data),
            Self::Aes192(c) => c.try_apply_keystream(data),
            Self::Aes256(c) => c.try_apply_keystream(data),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystream_continues_across_calls() {
        let key = [3u8; 32];
        let iv = [9u8; 16];
        let mut whole = [0u8; 50];
        AesCtr::new(&key, &iv).unwrap().apply(&mut whole);
        let mut parts = [0u8; 50];
        let mut c = AesCtr::new(&key, &iv).unwrap();
        let (a, b) = parts.split_at_mut(16);
        c.apply(a);
        let (b1, b2) = b.split_at_mut(7);
        c.apply(b1);
        c.apply(b2);
        assert_eq!(whole, parts);
        assert!(AesCtr::new(&key[..20], &iv).is_none());
        assert!(AesCtr::new(&key[..24], &iv).is_some());
    }
}
