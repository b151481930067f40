//! Packet ciphers (one family per file). STUB: to be implemented.
//!
//! A cipher is described by a static [`CipherAlg`]; the packet layer builds per-direction keyed
//! state from it with [`CipherAlg::opening`] / [`CipherAlg::sealing`].

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
}

impl CipherAlg {
    pub fn is_aead(&self) -> bool {
        self.aead_tag_len.is_some()
    }
}

pub const NONE: CipherAlg =
    CipherAlg { name: "none", key_len: 0, iv_len: 0, block_size: 8, aead_tag_len: None };

/// All ciphers we implement, in default preference order (OpenSSH's).
pub static ALL: &[&CipherAlg] = &[];

pub fn by_name(name: &str) -> Option<&'static CipherAlg> {
    ALL.iter().copied().find(|c| c.name == name)
}
