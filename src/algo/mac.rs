//! MACs: HMAC and encrypt-then-MAC variants. STUB: to be implemented.

/// Static description of a MAC, as listed in KEXINIT.
#[derive(Debug)]
pub struct MacAlg {
    pub name: &'static str,
    pub key_len: usize,
    pub out_len: usize,
    /// `-etm@openssh.com`: MAC over the ciphertext, packet length sent in clear.
    pub etm: bool,
}

/// All MACs we implement, in default preference order (OpenSSH's).
pub static ALL: &[&MacAlg] = &[];

pub fn by_name(name: &str) -> Option<&'static MacAlg> {
    ALL.iter().copied().find(|m| m.name == name)
}
