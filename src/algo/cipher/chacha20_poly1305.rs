//! `chacha20-poly1305@openssh.com` (openssh PROTOCOL.chacha20poly1305), through ring's
//! `chacha20_poly1305_openssh`: K_2 (first 32 key bytes) encrypts the packet and keys
//! Poly1305, K_1 (last 32) encrypts the 4-byte packet_length; the nonce is the sequence number.

use ring::aead::chacha20_poly1305_openssh::{OpeningKey, SealingKey, KEY_LEN};

/// Tag length (Poly1305).
pub const TAG_LEN: usize = ring::aead::chacha20_poly1305_openssh::TAG_LEN;

pub(crate) fn opening_key(key: &[u8]) -> Option<OpeningKey> {
    let key: &[u8; KEY_LEN] = key.try_into().ok()?;
    Some(OpeningKey::new(key))
}

pub(crate) fn sealing_key(key: &[u8]) -> Option<SealingKey> {
    let key: &[u8; KEY_LEN] = key.try_into().ok()?;
    Some(SealingKey::new(key))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
