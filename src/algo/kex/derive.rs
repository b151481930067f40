//! Key expansion (RFC 4253 §7.2). STUB.

/// RFC 4253 §7.2 key expansion. STUB.
pub fn derive_key(
    _hash: crate::algo::HashAlg,
    _k_encoded: &[u8],
    _h: &[u8],
    _letter: u8,
    _session_id: &[u8],
    _len: usize,
) -> Vec<u8> {
    todo!()
}
