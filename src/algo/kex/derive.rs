//! Key expansion (RFC 4253 §7.2).
//!
//! "Initial IV client to server: HASH(K || H || "A" || session_id)" and so on for "B" to "F";
//! K is encoded (mpint or string) as in the exchange hash. When a key is longer than one hash
//! output it is extended: K1 = HASH(K || H || X || session_id), K2 = HASH(K || H || K1),
//! K3 = HASH(K || H || K1 || K2), ... and the key is the first `len` bytes of K1 || K2 || ...

use crate::algo::HashAlg;
use ring::digest::Context;

/// One derived key or IV of `len` bytes for `letter` (b'A'..=b'F').
pub fn derive_key(
    hash: HashAlg,
    k_encoded: &[u8],
    h: &[u8],
    letter: u8,
    session_id: &[u8],
    len: usize,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + hash.output_len());
    let mut ctx = Context::new(hash.ring());
    ctx.update(k_encoded);
    ctx.update(h);
    ctx.update(&[letter]);
    ctx.update(session_id);
    out.extend_from_slice(ctx.finish().as_ref());
    while out.len() < len {
        let mut ctx = Context::new(hash.ring());
        ctx.update(k_encoded);
        ctx.update(h);
        ctx.update(&out);
        out.extend_from_slice(ctx.finish().as_ref());
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_follows_rfc_4253() {
        let (k, h, sid) = (b"\0\0\0\x01\x05".as_slice(), [7u8; 32], [9u8; 32]);
        let key = derive_key(HashAlg::Sha256, k, &h, b'C', &sid, 80);
        assert_eq!(key.len(), 80);
        let k1 = ring::digest::digest(&ring::digest::SHA256, &[k, &h, b"C", &sid].concat());
        let k2 = ring::digest::digest(&ring::digest::SHA256, &[k, &h, k1.as_ref()].concat());
        let k3 = ring::digest::digest(
            &ring::digest::SHA256,
            &[k, &h, k1.as_ref(), k2.as_ref()].concat(),
        );
        assert_eq!(key, [k1.as_ref(), k2.as_ref(), &k3.as_ref()[..16]].concat());
        assert_eq!(derive_key(HashAlg::Sha256, k, &h, b'C', &sid, 16), &k1.as_ref()[..16]);
        assert!(derive_key(HashAlg::Sha1, k, &h, b'A', &sid, 0).is_empty());
    }
}
