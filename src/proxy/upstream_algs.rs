//! The algorithms the gateway offers when it is the client of an upstream SSH server.
//!
//! The upstream leg starts from the server's own lists (so a crypto policy applies to both
//! legs) with two changes: no host keys (a client signs nothing with them), and, on a CPU with
//! AES and carry-less multiply in hardware, AES-GCM first. Both ends of the upstream leg are
//! ours to make cheap: with AES-NI, AES-GCM costs the gateway and OpenSSH's sshd about half of
//! what ChaCha20-Poly1305 does per byte, and the client's order decides (RFC 4253 §7.1).

use crate::transport::TransportConfig;

/// The upstream client's transport settings, derived from the server's.
pub fn upstream_transport(server: &TransportConfig) -> TransportConfig {
    let mut t = server.clone();
    t.host_keys = Vec::new();
    if aes_in_hardware() {
        prefer_aes_gcm(&mut t);
    }
    t
}

/// Moves the AES-GCM ciphers to the front, keeping the rest in order.
pub fn prefer_aes_gcm(t: &mut TransportConfig) {
    t.ciphers.sort_by_key(|c| !c.name.starts_with("aes") || !c.name.contains("-gcm"));
}

/// AES rounds and GHASH in hardware (what makes AES-GCM the cheaper AEAD).
pub fn aes_in_hardware() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
            && std::arch::is_aarch64_feature_detected!("pmull")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aes_gcm_moves_first_and_the_rest_keeps_its_order() {
        let mut t = TransportConfig::all_algorithms("t");
        let before: Vec<_> = t.ciphers.iter().map(|c| c.name).collect();
        prefer_aes_gcm(&mut t);
        let after: Vec<_> = t.ciphers.iter().map(|c| c.name).collect();
        assert_eq!(after[..2], ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"]);
        let rest: Vec<_> = before.iter().filter(|n| !n.contains("-gcm")).copied().collect();
        assert_eq!(after[2..], rest[..]);
    }

    #[test]
    fn a_policy_without_aes_gcm_stays_as_it_is() {
        let mut t = TransportConfig::all_algorithms("t");
        t.ciphers.retain(|c| !c.name.contains("-gcm"));
        let before: Vec<_> = t.ciphers.iter().map(|c| c.name).collect();
        let up = upstream_transport(&t);
        assert_eq!(up.ciphers.iter().map(|c| c.name).collect::<Vec<_>>(), before);
        assert!(up.host_keys.is_empty());
    }
}
