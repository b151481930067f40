//! The exchange hash H (RFC 4253 §8, RFC 4419 §3, RFC 5656 §4, RFC 8731). STUB.

/// The method-specific middle of the exchange hash.
pub enum HashMiddle<'a> {
    /// Fixed-group DH: mpint e, mpint f.
    Dh { e: &'a [u8], f: &'a [u8] },
    /// Group exchange: raw request (12 or 4 bytes), mpint p, mpint g, mpint e, mpint f.
    Gex { request: &'a [u8], p: &'a [u8], g: &'a [u8], e: &'a [u8], f: &'a [u8] },
    /// ECDH, X25519 and the hybrids: string Q_C, string Q_S.
    Ecdh { q_c: &'a [u8], q_s: &'a [u8] },
}

/// Everything that goes into H.
pub struct HashInputs<'a> {
    /// Version lines without CR LF.
    pub v_c: &'a [u8],
    pub v_s: &'a [u8],
    /// KEXINIT payloads, starting with the message number byte.
    pub i_c: &'a [u8],
    pub i_s: &'a [u8],
    /// Server host key blob.
    pub k_s: &'a [u8],
    pub middle: HashMiddle<'a>,
    /// K already encoded (mpint or string).
    pub k_encoded: &'a [u8],
}

/// Computes H. STUB.
pub fn exchange_hash(_hash: crate::algo::HashAlg, _inputs: &HashInputs<'_>) -> Vec<u8> {
    todo!()
}
