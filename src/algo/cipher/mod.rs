//! Packet ciphers (RFC 4253 §6.3, RFC 4344, RFC 5647, openssh PROTOCOL.chacha20poly1305), one
//! family per file.
//!
//! A cipher is described by a static [`CipherAlg`]; the packet layer builds per-direction keyed
//! state from it with [`CipherAlg::opening`] / [`CipherAlg::sealing`]. The keyed state is an
//! enum rather than a `dyn` object so the per-packet dispatch is a predictable `match`.

pub mod aes_ctr;
pub mod aes_gcm;
pub mod chacha20_poly1305;

use aes_ctr::AesCtr;
use aes_gcm::AesGcm;

/// Static description of a cipher, as listed in KEXINIT.
#[derive(Debug)]
pub struct CipherAlg {
    /// Name as on the wire, e.g. `aes128-gcm@openssh.com`.
    pub name: &'static str,
    pub key_len: usize,
    pub iv_len: usize,
    /// Cipher block size; padding aligns to max(8, block_size).
    pub block_size: usize,
    /// AEAD tag length; `Some` means the negotiated MAC is ignored (RFC 5647 / openssh PROTOCOL).
    pub aead_tag_len: Option<usize>,
    /// Which implementation keys this cipher.
    pub kind: CipherKind,
}

/// The implementation behind a [`CipherAlg`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CipherKind {
    /// No encryption: only the state before the first NEWKEYS.
    None,
    ChaCha20Poly1305,
    AesGcm,
    AesCtr,
}

impl CipherAlg {
    pub fn is_aead(&self) -> bool {
        self.aead_tag_len.is_some()
    }

    /// True for the plaintext initial state.
    pub fn is_none(&self) -> bool {
        self.kind == CipherKind::None
    }

    /// Keyed state for the inbound direction. `key` / `iv` must be at least `key_len` /
    /// `iv_len` bytes (RFC 4253 §7.2 derivation may give more; the prefix is used).
    pub fn opening(&'static self, key: &[u8], iv: &[u8]) -> Result<OpeningCipher, KeyLenError> {
        let (key, iv) = self.split_key_iv(key, iv)?;
        Ok(match self.keyed_kind() {
            CipherKind::None => OpeningCipher::None,
            CipherKind::ChaCha20Poly1305 => {
                OpeningCipher::ChaCha(chacha20_poly1305::opening_key(key).ok_or(KeyLenError)?)
            }
            CipherKind::AesGcm => {
                OpeningCipher::Gcm(Box::new(AesGcm::new(key, iv).ok_or(KeyLenError)?))
            }
            CipherKind::AesCtr => {
                OpeningCipher::Ctr(Box::new(AesCtr::new(key, iv).ok_or(KeyLenError)?))
            }
        })
    }

    /// Keyed state for the outbound direction; same key rules as [`CipherAlg::opening`].
    pub fn sealing(&'static self, key: &[u8], iv: &[u8]) -> Result<SealingCipher, KeyLenError> {
        let (key, iv) = self.split_key_iv(key, iv)?;
        Ok(match self.keyed_kind() {
            CipherKind::None => SealingCipher::None,
            CipherKind::ChaCha20Poly1305 => {
                SealingCipher::ChaCha(chacha20_poly1305::sealing_key(key).ok_or(KeyLenError)?)
            }
            CipherKind::AesGcm => {
                SealingCipher::Gcm(Box::new(AesGcm::new(key, iv).ok_or(KeyLenError)?))
            }
            CipherKind::AesCtr => {
                SealingCipher::Ctr(Box::new(AesCtr::new(key, iv).ok_or(KeyLenError)?))
            }
        })
    }

    /// The implementation that keys this cipher.
    #[cfg(not(feature = "fuzzing"))]
    fn keyed_kind(&self) -> CipherKind {
        self.kind
    }

    /// Fuzzing stand-in: the identity cipher. The packet layer still frames by this cipher's
    /// block size, length handling and tag length (from [`CipherAlg`]), and the MAC stand-in
    /// accepts every tag, so a fuzz input can be written in the clear after NEWKEYS.
    #[cfg(feature = "fuzzing")]
    fn keyed_kind(&self) -> CipherKind {
        CipherKind::None
    }

    fn split_key_iv<'a>(
        &self,
        key: &'a [u8],
        iv: &'a [u8],
    ) -> Result<(&'a [u8], &'a [u8]), KeyLenError> {
        Ok((key.get(..self.key_len).ok_or(KeyLenError)?, iv.get(..self.iv_len).ok_or(KeyLenError)?))
    }
}

/// Key or IV shorter than the cipher needs (a bug in key derivation, never the peer's doing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyLenError;

impl std::fmt::Display for KeyLenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("key or IV too short for the cipher")
    }
}

/// Inbound keyed cipher state.
pub enum OpeningCipher {
    None,
    ChaCha(chacha20_poly1305::OpeningKey),
    /// Boxed (as is `Ctr`): the expanded AES key is large, and an idle connection's memory is
    /// its state. Allocated once per NEWKEYS, not per packet.
    Gcm(Box<AesGcm>),
    Ctr(Box<AesCtr>),
}

/// Outbound keyed cipher state.
pub enum SealingCipher {
    None,
    ChaCha(chacha20_poly1305::SealingKey),
    /// Boxed (as is `Ctr`): the expanded AES key is large, and an idle connection's memory is
    /// its state. Allocated once per NEWKEYS, not per packet.
    Gcm(Box<AesGcm>),
    Ctr(Box<AesCtr>),
}

pub const NONE: CipherAlg = CipherAlg {
    name: "none",
    key_len: 0,
    iv_len: 0,
    block_size: 8,
    aead_tag_len: None,
    kind: CipherKind::None,
};

pub static CHACHA20_POLY1305: CipherAlg = CipherAlg {
    name: "chacha20-poly1305@openssh.com",
    key_len: 64,
    iv_len: 0,
    block_size: 8,
    aead_tag_len: Some(16),
    kind: CipherKind::ChaCha20Poly1305,
};

pub static AES128_CTR: CipherAlg = CipherAlg {
    name: "aes128-ctr",
    key_len: 16,
    iv_len: 16,
    block_size: 16,
    aead_tag_len: None,
    kind: CipherKind::AesCtr,
};

pub static AES192_CTR: CipherAlg = CipherAlg {
    name: "aes192-ctr",
    key_len: 24,
    iv_len: 16,
    block_size: 16,
    aead_tag_len: None,
    kind: CipherKind::AesCtr,
};

pub static AES256_CTR: CipherAlg = CipherAlg {
    name: "aes256-ctr",
    key_len: 32,
    iv_len: 16,
    block_size: 16,
    aead_tag_len: None,
    kind: CipherKind::AesCtr,
};

pub static AES128_GCM: CipherAlg = CipherAlg {
    name: "aes128-gcm@openssh.com",
    key_len: 16,
    iv_len: 12,
    block_size: 16,
    aead_tag_len: Some(16),
    kind: CipherKind::AesGcm,
};

pub static AES256_GCM: CipherAlg = CipherAlg {
    name: "aes256-gcm@openssh.com",
    key_len: 32,
    iv_len: 12,
    block_size: 16,
    aead_tag_len: Some(16),
    kind: CipherKind::AesGcm,
};

/// The plaintext initial state, as a `'static` the packet layer can point at.
pub static NONE_ALG: CipherAlg = NONE;

/// All ciphers we implement, in default preference order (OpenSSH's).
pub static ALL: &[&CipherAlg] =
    &[&CHACHA20_POLY1305, &AES128_CTR, &AES192_CTR, &AES256_CTR, &AES128_GCM, &AES256_GCM];

pub fn by_name(name: &str) -> Option<&'static CipherAlg> {
    ALL.iter().copied().find(|c| c.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_in_openssh_order_and_found_by_name() {
        let names: Vec<_> = ALL.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "chacha20-poly1305@openssh.com",
                "aes128-ctr",
                "aes192-ctr",
                "aes256-ctr",
                "aes128-gcm@openssh.com",
                "aes256-gcm@openssh.com"
            ]
        );
        for c in ALL {
            assert!(std::ptr::eq(by_name(c.name).unwrap(), *c));
        }
        assert!(by_name("none").is_none());
    }

    #[test]
    fn short_key_is_an_error() {
        for c in ALL {
            let short = vec![0u8; c.key_len - 1];
            let iv = vec![0u8; c.iv_len];
            assert!(c.opening(&short, &iv).is_err(), "{}", c.name);
            assert!(c.sealing(&short, &iv).is_err(), "{}", c.name);
            let key = vec![0u8; c.key_len];
            assert!(c.opening(&key, &iv).is_ok(), "{}", c.name);
            assert!(c.sealing(&key, &iv).is_ok(), "{}", c.name);
        }
    }
}
