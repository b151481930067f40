//! Finite-field Diffie-Hellman (RFC 4253 §8, RFC 8268): the MODP groups of RFC 3526 and RFC 2409
//! group 2 ("group1"), ephemeral keys and the validated shared secret.
//!
//! Values cross this module as big-endian magnitudes without a sign byte (what
//! `wire::Reader::mpint_positive` returns and `wire::write_mpint_bytes` takes).

use super::KexError;
use crate::algo::Rng;
use num_bigint::BigUint;
use num_traits::One;
use std::borrow::Cow;

/// A safe-prime group. `p` is big-endian without leading zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhGroup {
    pub p: std::borrow::Cow<'static, [u8]>,
    pub g: u32,
    /// Size of p in bits.
    pub bits: usize,
}

/// RFC 2409 §6.2, Oakley group 2 (1024 bits): `diffie-hellman-group1-sha1`, off by default.
pub static GROUP1: DhGroup = DhGroup { p: Cow::Borrowed(&P1), g: 2, bits: 1024 };
/// RFC 3526 §3, 2048-bit MODP group.
pub static GROUP14: DhGroup = DhGroup { p: Cow::Borrowed(&P14), g: 2, bits: 2048 };
/// RFC 3526 §4, 3072-bit MODP group (only served through group exchange).
pub static GROUP15: DhGroup = DhGroup { p: Cow::Borrowed(&P15), g: 2, bits: 3072 };
/// RFC 3526 §5, 4096-bit MODP group.
pub static GROUP16: DhGroup = DhGroup { p: Cow::Borrowed(&P16), g: 2, bits: 4096 };
/// RFC 3526 §6, 6144-bit MODP group (only served through group exchange).
pub static GROUP17: DhGroup = DhGroup { p: Cow::Borrowed(&P17), g: 2, bits: 6144 };
/// RFC 3526 §7, 8192-bit MODP group.
pub static GROUP18: DhGroup = DhGroup { p: Cow::Borrowed(&P18), g: 2, bits: 8192 };

/// Private exponent size in bits. OpenSSH draws twice the wanted security strength (Pollard rho
/// and baby-step/giant-step are O(sqrt)), never less than 256 bits; we use the strength of the
/// group itself, so the exponent never limits it: 256 bits up to 3072-bit groups (128-bit
/// strength), 512 above.
pub fn exponent_bits(group: &DhGroup) -> usize {
    if group.bits <= 3072 {
        256
    } else {
        512
    }
}

/// Our side of a DH exchange: the private exponent x and the public value g^x mod p.
pub(crate) struct DhKeyPair {
    p: BigUint,
    p_bytes: Vec<u8>,
    x: Vec<u8>,
    x_bits: usize,
    public: Vec<u8>,
}

impl DhKeyPair {
    /// Draws a fresh exponent from `rng`.
    pub(crate) fn generate(group: &DhGroup, rng: &mut dyn Rng) -> Result<Self, KexError> {
        let mut x = vec![0u8; exponent_bits(group) / 8];
        rng.fill(&mut x);
        Self::from_private(group, &x)
    }

    /// Builds the key pair from a given exponent (used by known-answer tests as well).
    pub(crate) fn from_private(group: &DhGroup, x: &[u8]) -> Result<Self, KexError> {
        let p = BigUint::from_bytes_be(&group.p);
        if BigUint::from_bytes_be(x) <= BigUint::one() {
            return Err(KexError::Internal("DH exponent too small"));
        }
        // The exponent's bound (its byte length, public) is all the timing may show.
        let x_bits = x.len() * 8;
        let e = modpow_ct(&group.g.to_be_bytes(), x, x_bits, &group.p)?;
        let e = BigUint::from_bytes_be(&e);
        // A correct exponent of at least 256 bits never yields an invalid value; checking our own
        // output as the peer would costs nothing next to the modpow.
        check_range(&p, &e)?;
        Ok(DhKeyPair {
            p,
            p_bytes: group.p.to_vec(),
            x: x.to_vec(),
            x_bits,
            public: e.to_bytes_be(),
        })
    }

    pub(crate) fn public(&self) -> &[u8] {
        &self.public
    }

    /// Validates the peer's value (1 < y < p-1) and returns K = y^x mod p as a magnitude.
    pub(crate) fn agree(&self, peer: &[u8]) -> Result<Vec<u8>, KexError> {
        let y = parse_peer(&self.p, peer)?;
        let k = modpow_ct(&y.to_bytes_be(), &self.x, self.x_bits, &self.p_bytes)?;
        Ok(BigUint::from_bytes_be(&k).to_bytes_be())
    }
}

/// Range-checks a peer's public value (a big-endian magnitude) against `group`:
/// 1 < y < p-1, without computing anything else.
pub fn check_peer(group: &DhGroup, peer: &[u8]) -> Result<(), KexError> {
    parse_peer(&BigUint::from_bytes_be(&group.p), peer).map(|_| ())
}

/// Parses and range-checks a peer's public value. The length is bounded first so a huge value
/// costs nothing to reject.
fn parse_peer(p: &BigUint, peer: &[u8]) -> Result<BigUint, KexError> {
    let first = peer.iter().position(|&b| b != 0).unwrap_or(peer.len());
    let magnitude = peer.get(first..).unwrap_or(&[]);
    let p_len = usize::try_from(p.bits().div_ceil(8)).unwrap_or(usize::MAX);
    if magnitude.len() > p_len {
        return Err(KexError::DhValueOutOfRange);
    }
    let y = BigUint::from_bytes_be(magnitude);
    check_range(p, &y)?;
    Ok(y)
}

/// RFC 4253 §8: "Values of 'e' or 'f' that are not in the range [1, p-1] MUST NOT be sent or
/// accepted"; like OpenSSH we also refuse 1 and p-1, which confine K to {1, p-1}.
fn check_range(p: &BigUint, y: &BigUint) -> Result<(), KexError> {
    let one = BigUint::one();
    let p_minus_1 = p - &one;
    if *y <= one || *y >= p_minus_1 {
        return Err(KexError::DhValueOutOfRange);
    }
    Ok(())
}

/// base^exp mod p in constant time for a given exponent bound (crypto-bigint's fixed-window
/// Montgomery exponentiation): the exponent is our secret, and num-bigint's `modpow` branches
/// on its bits. Sizes are fixed per modulus width class, so a 7680-bit
/// `moduli` entry runs in the 8192-bit class.
fn modpow_ct(base: &[u8], exp: &[u8], exp_bits: usize, p: &[u8]) -> Result<Vec<u8>, KexError> {
    use crypto_bigint::Limb;
    let n = p.len();
    let out = if n <= 128 {
        modpow_sized::<{ 128 / Limb::BYTES }>(base, exp, exp_bits, p)
    } else if n <= 256 {
        modpow_sized::<{ 256 / Limb::BYTES }>(base, exp, exp_bits, p)
    } else if n <= 384 {
        modpow_sized::<{ 384 / Limb::BYTES }>(base, exp, exp_bits, p)
    } else if n <= 512 {
        modpow_sized::<{ 512 / Limb::BYTES }>(base, exp, exp_bits, p)
    } else if n <= 768 {
        modpow_sized::<{ 768 / Limb::BYTES }>(base, exp, exp_bits, p)
    } else if n <= 1024 {
        modpow_sized::<{ 1024 / Limb::BYTES }>(base, exp, exp_bits, p)
    } else {
        None
    };
    out.ok_or(KexError::Internal("DH modulus unsupported"))
}

fn modpow_sized<const L: usize>(
    base: &[u8],
    exp: &[u8],
    exp_bits: usize,
    p: &[u8],
) -> Option<Vec<u8>> {
    use crypto_bigint::modular::runtime_mod::{DynResidue, DynResidueParams};
    use crypto_bigint::{Limb, Uint};
    let size = L * Limb::BYTES;
    // `from_be_slice` wants exactly `size` bytes: left-pad, refuse anything longer.
    let uint = |b: &[u8]| -> Option<Uint<L>> {
        let pad = size.checked_sub(b.len())?;
        let mut v = vec![0u8; pad];
        v.extend_from_slice(b);
        Some(Uint::<L>::from_be_slice(&v))
    };
    // `new` panics on an even modulus; in crypto-bigint 0.5 `new_checked` is the form that
    // reports it instead.
    #[allow(deprecated)]
    let params = Option::from(DynResidueParams::new_checked(&uint(p)?))?;
    let r = DynResidue::new(&uint(base)?, params)
        .pow_bounded_exp(&uint(exp)?, exp_bits.min(size * 8))
        .retrieve();
    let mut out = Vec::with_capacity(size);
    for w in r.as_words().iter().rev() {
        out.extend_from_slice(&w.to_be_bytes());
    }
    Some(out)
}

/// Decodes the hex constants at compile time, so the primes sit in the binary as bytes.
const fn hex<const N: usize>(s: &str) -> [u8; N] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => 0,
        }
    }
    let s = s.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N && 2 * i + 1 < s.len() {
        out[i] = (nibble(s[2 * i]) << 4) | nibble(s[2 * i + 1]);
        i += 1;
    }
    out
}

static P1: [u8; 128] = hex(P1_HEX);
static P14: [u8; 256] = hex(P14_HEX);
static P15: [u8; 384] = hex(P15_HEX);
static P16: [u8; 512] = hex(P16_HEX);
static P17: [u8; 768] = hex(P17_HEX);
static P18: [u8; 1024] = hex(P18_HEX);

// The primes as printed in RFC 2409 §6.2 and RFC 3526 (p = 2^n - 2^(n-64) - 1 +
// 2^64 * (floor(2^(n-130) * pi) + k)); the tests check length, the fixed high and low 64 bits,
// a SHA-256 of the hex and that p and (p-1)/2 pass Miller-Rabin.
const P1_HEX: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF",
);

const P14_HEX: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
);

const P15_HEX: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33",
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864",
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2",
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
);

const P16_HEX: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33",
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864",
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2",
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7",
    "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8",
    "DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2",
    "233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9",
    "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C934063199FFFFFFFFFFFFFFFF",
);

const P17_HEX: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33",
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864",
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2",
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7",
    "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8",
    "DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2",
    "233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9",
    "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C93402849236C3FAB4D27C7026",
    "C1D4DCB2602646DEC9751E763DBA37BDF8FF9406AD9E530EE5DB382F413001AE",
    "B06A53ED9027D831179727B0865A8918DA3EDBEBCF9B14ED44CE6CBACED4BB1B",
    "DB7F1447E6CC254B332051512BD7AF426FB8F401378CD2BF5983CA01C64B92EC",
    "F032EA15D1721D03F482D7CE6E74FEF6D55E702F46980C82B5A84031900B1C9E",
    "59E7C97FBEC7E8F323A97A7E36CC88BE0F1D45B7FF585AC54BD407B22B4154AA",
    "CC8F6D7EBF48E1D814CC5ED20F8037E0A79715EEF29BE32806A1D58BB7C5DA76",
    "F550AA3D8A1FBFF0EB19CCB1A313D55CDA56C9EC2EF29632387FE8D76E3C0468",
    "043E8F663F4860EE12BF2D5B0B7474D6E694F91E6DCC4024FFFFFFFFFFFFFFFF",
);

const P18_HEX: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33",
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864",
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2",
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7",
    "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8",
    "DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2",
    "233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9",
    "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C93402849236C3FAB4D27C7026",
    "C1D4DCB2602646DEC9751E763DBA37BDF8FF9406AD9E530EE5DB382F413001AE",
    "B06A53ED9027D831179727B0865A8918DA3EDBEBCF9B14ED44CE6CBACED4BB1B",
    "DB7F1447E6CC254B332051512BD7AF426FB8F401378CD2BF5983CA01C64B92EC",
    "F032EA15D1721D03F482D7CE6E74FEF6D55E702F46980C82B5A84031900B1C9E",
    "59E7C97FBEC7E8F323A97A7E36CC88BE0F1D45B7FF585AC54BD407B22B4154AA",
    "CC8F6D7EBF48E1D814CC5ED20F8037E0A79715EEF29BE32806A1D58BB7C5DA76",
    "F550AA3D8A1FBFF0EB19CCB1A313D55CDA56C9EC2EF29632387FE8D76E3C0468",
    "043E8F663F4860EE12BF2D5B0B7474D6E694F91E6DBE115974A3926F12FEE5E4",
    "38777CB6A932DF8CD8BEC4D073B931BA3BC832B68D9DD300741FA7BF8AFC47ED",
    "2576F6936BA424663AAB639C5AE4F5683423B4742BF1C978238F16CBE39D652D",
    "E3FDB8BEFC848AD922222E04A4037C0713EB57A81A23F0C73473FC646CEA306B",
    "4BCBC8862F8385DDFA9D4B7FA2C087E879683303ED5BDD3A062B3CF5B3A278A6",
    "6D2A13F83F44F82DDF310EE074AB6A364597E899A0255DC164F31CC50846851D",
    "F9AB48195DED7EA1B1D510BD7EE74D73FAF36BC31ECFA268359046F4EB879F92",
    "4009438B481C6CD7889A002ED5EE382BC9190DA6FC026E479558E4475677E9AA",
    "9E3050E2765694DFC81F56E880B96E7160C980DD98EDD3DFFFFFFFFFFFFFFFFF",
);

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> [(&'static DhGroup, &'static str, &'static str); 6] {
        [
            (&GROUP1, P1_HEX, "693daceaf10c4200894cbd5696b120faebc30f7c4a242a8cd915ca3e83e141db"),
            (&GROUP14, P14_HEX, "dcd8538e629d7b8bc0dabdcda6744e0542bfb801d50305b2f6acf823b3d4e7ba"),
            (&GROUP15, P15_HEX, "2b2c15e1523695d748a2f56b3b81d59d23467b300f1879585be61f0addacdc45"),
            (&GROUP16, P16_HEX, "2349a6f8251156cbfade78ada6bd1e0c961a56847def4d288b6fdbd740016bff"),
            (&GROUP17, P17_HEX, "eeff9f22efbb6af437e9bb4a5466ddc607a9d0c954e14a4a90461688896b9e2b"),
            (&GROUP18, P18_HEX, "d0c08f76798cac51345c195a01a2bea21bc577cfa9d857bbc6627ee41cb0b2b6"),
        ]
    }

    /// Miller-Rabin with fixed small bases: enough to catch a mistyped digit.
    fn probably_prime(n: &BigUint, rounds: u32) -> bool {
        let one = BigUint::one();
        let n1 = n - &one;
        let s = n1.trailing_zeros().unwrap();
        let d = &n1 >> s;
        'base: for a in [2u32, 3, 5, 7, 11, 13, 17, 19].iter().take(rounds as usize) {
            let mut x = BigUint::from(*a).modpow(&d, n);
            if x == one || x == n1 {
                continue;
            }
            for _ in 1..s {
                x = x.modpow(&BigUint::from(2u32), n);
                if x == n1 {
                    continue 'base;
                }
            }
            return false;
        }
        true
    }

    #[test]
    fn groups_match_the_rfc_constants() {
        for (g, hex_text, sha) in all() {
            assert_eq!(g.p.len() * 8, g.bits);
            assert_eq!(g.g, 2);
            let digest = ring::digest::digest(&ring::digest::SHA256, hex_text.as_bytes());
            assert_eq!(hex::encode(digest.as_ref()), sha, "{} bits", g.bits);
            assert_eq!(hex::encode_upper(&*g.p), hex_text);
            let p = BigUint::from_bytes_be(&g.p);
            assert_eq!(p.bits() as usize, g.bits);
            assert!(g.p.iter().take(8).all(|&b| b == 0xff));
            assert!(g.p.iter().rev().take(8).all(|&b| b == 0xff));
            assert_eq!(&p % 4u32, BigUint::from(3u32));
        }
    }

    #[test]
    fn groups_are_safe_primes() {
        // The big ones are slow in a debug build; two rounds each still catch any typo.
        for (g, _, _) in all() {
            let p = BigUint::from_bytes_be(&g.p);
            let rounds = if g.bits > 4096 { 1 } else { 3 };
            assert!(probably_prime(&p, rounds), "{} bits", g.bits);
            let q = (&p - 1u32) >> 1;
            assert!(probably_prime(&q, rounds), "(p-1)/2, {} bits", g.bits);
        }
    }

    #[test]
    fn peer_values_out_of_range_are_refused() {
        let pair = DhKeyPair::generate(&GROUP14, &mut crate::algo::SystemRng).unwrap();
        let p = BigUint::from_bytes_be(&GROUP14.p);
        let bad = [BigUint::from(0u32), BigUint::one(), &p - 1u32, p.clone(), &p + 1u32];
        for v in bad {
            assert_eq!(pair.agree(&v.to_bytes_be()), Err(KexError::DhValueOutOfRange), "{v:x}");
        }
        assert_eq!(pair.agree(&[]), Err(KexError::DhValueOutOfRange));
        assert_eq!(pair.agree(&[0xff; 300]), Err(KexError::DhValueOutOfRange));
        // Leading zeros are tolerated; 2 is in range.
        assert!(pair.agree(&[0, 0, 2]).is_ok());
    }

    #[test]
    fn constant_time_modpow_matches_num_bigint() {
        for g in [&GROUP1, &GROUP14, &GROUP15] {
            let p = BigUint::from_bytes_be(&g.p);
            let x = [0x5au8; 40];
            let y = BigUint::from(0x1234_5678u32) * BigUint::from(0xdead_beefu32);
            let want = y.modpow(&BigUint::from_bytes_be(&x), &p);
            let got = modpow_ct(&y.to_bytes_be(), &x, 320, &g.p).unwrap();
            assert_eq!(BigUint::from_bytes_be(&got), want, "{} bits", g.bits);
        }
        assert!(modpow_ct(&[2], &[3], 8, &[0u8; 1025]).is_err());
        assert!(modpow_ct(&[2], &[3], 8, &[4]).is_err(), "even modulus");
    }

    #[test]
    fn both_sides_agree() {
        let a = DhKeyPair::generate(&GROUP14, &mut crate::algo::SystemRng).unwrap();
        let b = DhKeyPair::generate(&GROUP14, &mut crate::algo::SystemRng).unwrap();
        assert_eq!(a.agree(b.public()).unwrap(), b.agree(a.public()).unwrap());
    }
}
