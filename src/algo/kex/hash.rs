//! The exchange hash H (RFC 4253 §8, RFC 4419 §3, RFC 5656 §4, RFC 8731).

use crate::algo::HashAlg;
use crate::wire::Writer;

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

/// H = HASH(string V_C || string V_S || string I_C || string I_S || string K_S || middle || K).
///
/// The middle is `mpint e, mpint f` for fixed-group DH, the raw request then `mpint p, g, e, f`
/// for group exchange (RFC 4419 §3), `string Q_C, string Q_S` for ECDH and the hybrids.
/// `k_encoded` is appended as is (already an mpint or a string).
pub fn exchange_hash(hash: HashAlg, inputs: &HashInputs) -> Vec<u8> {
    let mut buf = Vec::with_capacity(encoded_len(inputs));
    let mut w = Writer::new(&mut buf);
    w.string(inputs.v_c).string(inputs.v_s).string(inputs.i_c).string(inputs.i_s);
    w.string(inputs.k_s);
    match inputs.middle {
        HashMiddle::Dh { e, f } => {
            w.mpint(e).mpint(f);
        }
        HashMiddle::Gex { request, p, g, e, f } => {
            w.raw(request).mpint(p).mpint(g).mpint(e).mpint(f);
        }
        HashMiddle::Ecdh { q_c, q_s } => {
            w.string(q_c).string(q_s);
        }
    }
    w.raw(inputs.k_encoded);
    ring::digest::digest(hash.ring(), &buf).as_ref().to_vec()
}

/// Upper bound of the hashed bytes, so the buffer is allocated once.
fn encoded_len(i: &HashInputs) -> usize {
    let middle = match i.middle {
        HashMiddle::Dh { e, f } => e.len() + f.len() + 10,
        HashMiddle::Gex { request, p, g, e, f } => {
            request.len() + p.len() + g.len() + e.len() + f.len() + 20
        }
        HashMiddle::Ecdh { q_c, q_s } => q_c.len() + q_s.len() + 8,
    };
    i.v_c.len()
        + i.v_s.len()
        + i.i_c.len()
        + i.i_s.len()
        + i.k_s.len()
        + 20
        + middle
        + i.k_encoded.len()
}
