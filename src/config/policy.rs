//! Crypto policies (`--crypto-policy`): named default lists for key exchange, ciphers, MACs,
//! host-key algorithms and compression. The explicit list flags (`--kex`, `--ciphers`, …) apply
//! on top with OpenSSH's `+ - ^` syntax, so a policy is only the starting point.
//!
//! - `compat`: everything we implement except the SHA-1 key exchanges and `ssh-rsa` (OpenSSH's
//!   own default offer): every client from the last decade connects.
//! - `modern`: only what ssh-audit 3.x rates without a failure or warning: post-quantum hybrid
//!   key exchange (ssh-audit warns on every key exchange without PQ protection, curve25519
//!   included), no NIST curves, no SHA-1, EtM MACs only, ed25519 and rsa-sha2 host keys. If a
//!   group exchange method is added back with `--kex +…`, only groups of at least
//!   [`MODERN_GEX_MIN_BITS`] are served.

use crate::algo::host_key::HostKeyAlg;
use crate::algo::{cipher, kex, mac};
use crate::cli::CryptoPolicy;
use crate::transport::config::{COMPRESSION_NONE, COMPRESSION_ZLIB_OPENSSH};

/// Smallest group-exchange modulus the modern policy serves (ssh-audit warns below 3072 bits).
pub const MODERN_GEX_MIN_BITS: usize = 3072;

/// Key exchange under `modern`: the PQ hybrids only, ML-KEM first (OpenSSH 10's default).
pub const MODERN_KEX: &[&str] =
    &["mlkem768x25519-sha256", "sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com"];
/// Ciphers under `modern`: AEADs first; chacha20-poly1305 is safe from Terrapin because we
/// always offer strict KEX.
pub const MODERN_CIPHERS: &[&str] = &[
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
];
/// MACs under `modern`: encrypt-then-MAC with SHA-2 only.
pub const MODERN_MACS: &[&str] =
    &["hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com"];
/// Host-key algorithms under `modern` (an RSA host key should be at least 3072 bits; the one we
/// generate is).
pub const MODERN_HOST_KEY_ALGS: &[&str] = &["ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256"];

/// The default lists of one policy; every name is in the registry tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyLists {
    pub kex: Vec<&'static str>,
    pub ciphers: Vec<&'static str>,
    pub macs: Vec<&'static str>,
    pub host_key_algs: Vec<&'static str>,
    pub compression: Vec<&'static str>,
    /// Group-exchange moduli smaller than this are not served.
    pub gex_min_bits: usize,
}

impl PolicyLists {
    pub fn for_policy(policy: CryptoPolicy) -> PolicyLists {
        match policy {
            CryptoPolicy::Compat => compat(),
            CryptoPolicy::Modern => PolicyLists {
                kex: MODERN_KEX.to_vec(),
                ciphers: MODERN_CIPHERS.to_vec(),
                macs: MODERN_MACS.to_vec(),
                host_key_algs: MODERN_HOST_KEY_ALGS.to_vec(),
                compression: vec![COMPRESSION_NONE, COMPRESSION_ZLIB_OPENSSH],
                gex_min_bits: MODERN_GEX_MIN_BITS,
            },
        }
    }
}

/// Today's full offer: the registries in their order, minus what OpenSSH leaves off by default.
fn compat() -> PolicyLists {
    PolicyLists {
        kex: kex::ALL.iter().map(|k| k.name).filter(|n| !kex::OFF_BY_DEFAULT.contains(n)).collect(),
        ciphers: cipher::ALL.iter().map(|c| c.name).collect(),
        macs: mac::ALL.iter().map(|m| m.name).collect(),
        host_key_algs: HostKeyAlg::ALL
            .iter()
            .filter(|a| **a != HostKeyAlg::SshRsa)
            .map(|a| a.name())
            .collect(),
        compression: super::DEFAULT_COMPRESSION.to_vec(),
        gex_min_bits: crate::algo::kex::gex::MIN_BITS as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modern_names_exist_in_the_registries() {
        let m = PolicyLists::for_policy(CryptoPolicy::Modern);
        assert!(m.kex.iter().all(|n| kex::by_name(n).is_some()));
        assert!(m.ciphers.iter().all(|n| cipher::by_name(n).is_some()));
        assert!(m.macs.iter().all(|n| mac::by_name(n).is_some_and(|a| a.etm)));
        assert!(m.host_key_algs.iter().all(|n| HostKeyAlg::from_name(n).is_some()));
    }

    #[test]
    fn modern_has_no_nist_no_sha1_and_pq_first() {
        let m = PolicyLists::for_policy(CryptoPolicy::Modern);
        let all: Vec<&str> = [&m.kex, &m.ciphers, &m.macs, &m.host_key_algs]
            .into_iter()
            .flatten()
            .copied()
            .collect();
        assert!(all.iter().all(|n| !n.contains("nistp") && !n.contains("sha1") && *n != "ssh-rsa"));
        assert_eq!(m.kex.first(), Some(&"mlkem768x25519-sha256"));
    }

    #[test]
    fn compat_is_the_old_default() {
        let c = PolicyLists::for_policy(CryptoPolicy::Compat);
        assert!(c.kex.contains(&"ecdh-sha2-nistp256"));
        assert!(!c.kex.contains(&"diffie-hellman-group14-sha1"));
        assert!(!c.host_key_algs.contains(&"ssh-rsa"));
        assert_eq!(c.macs.len(), mac::ALL.len());
    }
}
