//! MACs (RFC 4253 §6.4, RFC 6668, openssh PROTOCOL §1.5 for `-etm@openssh.com`), via ring's
//! HMAC.
//!
//! Encrypt-and-MAC: `mac = MAC(key, uint32 sequence_number || unencrypted_packet)`.
//! Encrypt-then-MAC: packet_length is sent in clear and the MAC covers
//! `uint32 sequence_number || uint32 packet_length || ciphertext`. Either way the MAC input is
//! `seq || <the bytes of the packet as they are when the MAC is taken>`, so one function serves
//! both; the packet layer decides when to call it.

use ring::hmac;
use subtle::ConstantTimeEq;

/// Static description of a MAC, as listed in KEXINIT.
#[derive(Debug)]
pub struct MacAlg {
    pub name: &'static str,
    pub key_len: usize,
    pub out_len: usize,
    /// `-etm@openssh.com`: MAC over the ciphertext, packet length sent in clear.
    pub etm: bool,
    /// The HMAC hash.
    pub hash: MacHash,
}

/// Hash function under the HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacHash {
    Sha1,
    Sha256,
    Sha512,
}

impl MacHash {
    fn ring(self) -> hmac::Algorithm {
        match self {
            MacHash::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            MacHash::Sha256 => hmac::HMAC_SHA256,
            MacHash::Sha512 => hmac::HMAC_SHA512,
        }
    }
}

/// Largest `out_len` of any MAC here (HMAC-SHA-512).
pub const MAX_OUT_LEN: usize = 64;

impl MacAlg {
    /// Keyed state; `key` must be at least `key_len` bytes (the prefix is used).
    pub fn key(&'static self, key: &[u8]) -> Option<MacKey> {
        let key = key.get(..self.key_len)?;
        Some(MacKey { alg: self, key: hmac::Key::new(self.hash.ring(), key) })
    }
}

/// One direction's keyed MAC.
pub struct MacKey {
    alg: &'static MacAlg,
    key: hmac::Key,
}

impl MacKey {
    pub fn alg(&self) -> &'static MacAlg {
        self.alg
    }

    /// Writes `MAC(key, uint32 seq || data)` into `out` (which must be `out_len` bytes; a
    /// shorter `out` gets a prefix).
    #[cfg(not(feature = "fuzzing"))]
    pub fn sign(&self, seq: u32, data: &[u8], out: &mut [u8]) {
        let tag = self.compute(seq, data);
        let tag = tag.as_ref();
        for (o, t) in out.iter_mut().zip(tag) {
            *o = *t;
        }
    }

    /// Fuzzing stand-in: an all-zero tag of the right length.
    #[cfg(feature = "fuzzing")]
    pub fn sign(&self, _seq: u32, _data: &[u8], out: &mut [u8]) {
        out.fill(0);
    }

    /// Fuzzing stand-in: every tag verifies (the framing, tag length included, is unchanged).
    #[cfg(feature = "fuzzing")]
    pub fn verify(&self, _seq: u32, _data: &[u8], _mac: &[u8]) -> bool {
        true
    }

    /// Checks `mac` against `MAC(key, uint32 seq || data)` in constant time.
    #[cfg(not(feature = "fuzzing"))]
    pub fn verify(&self, seq: u32, data: &[u8], mac: &[u8]) -> bool {
        let tag = self.compute(seq, data);
        match tag.as_ref().get(..self.alg.out_len) {
            Some(expected) => bool::from(expected.ct_eq(mac)),
            None => false,
        }
    }

    #[cfg(not(feature = "fuzzing"))]
    fn compute(&self, seq: u32, data: &[u8]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(&seq.to_be_bytes());
        ctx.update(data);
        ctx.sign()
    }
}

pub static HMAC_SHA2_256_ETM: MacAlg = MacAlg {
    name: "hmac-sha2-256-etm@openssh.com",
    key_len: 32,
    out_len: 32,
    etm: true,
    hash: MacHash::Sha256,
};
pub static HMAC_SHA2_512_ETM: MacAlg = MacAlg {
    name: "hmac-sha2-512-etm@openssh.com",
    key_len: 64,
    out_len: 64,
    etm: true,
    hash: MacHash::Sha512,
};
pub static HMAC_SHA1_ETM: MacAlg = MacAlg {
    name: "hmac-sha1-etm@openssh.com",
    key_len: 20,
    out_len: 20,
    etm: true,
    hash: MacHash::Sha1,
};
pub static HMAC_SHA2_256: MacAlg =
    MacAlg { name: "hmac-sha2-256", key_len: 32, out_len: 32, etm: false, hash: MacHash::Sha256 };
pub static HMAC_SHA2_512: MacAlg =
    MacAlg { name: "hmac-sha2-512", key_len: 64, out_len: 64, etm: false, hash: MacHash::Sha512 };
pub static HMAC_SHA1: MacAlg =
    MacAlg { name: "hmac-sha1", key_len: 20, out_len: 20, etm: false, hash: MacHash::Sha1 };

/// All MACs we implement, in default preference order (OpenSSH's).
pub static ALL: &[&MacAlg] = &[
    &HMAC_SHA2_256_ETM,
    &HMAC_SHA2_512_ETM,
    &HMAC_SHA1_ETM,
    &HMAC_SHA2_256,
    &HMAC_SHA2_512,
    &HMAC_SHA1,
];

pub fn by_name(name: &str) -> Option<&'static MacAlg> {
    ALL.iter().copied().find(|m| m.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_lookup() {
        let names: Vec<_> = ALL.iter().map(|m| m.name).collect();
        assert_eq!(
            names,
            [
                "hmac-sha2-256-etm@openssh.com",
                "hmac-sha2-512-etm@openssh.com",
                "hmac-sha1-etm@openssh.com",
                "hmac-sha2-256",
                "hmac-sha2-512",
                "hmac-sha1"
            ]
        );
        for m in ALL {
            assert!(std::ptr::eq(by_name(m.name).unwrap(), *m));
            assert!(m.out_len <= MAX_OUT_LEN);
        }
    }

    /// RFC 4231 test case 2 ("Jefe"), with the 4 data bytes "what" standing in for the
    /// sequence number.
    #[test]
    fn rfc4231_case2_sha256() {
        let k = HMAC_SHA2_256.key(b"Jefe").map(|_| ());
        assert!(k.is_none(), "short key must be refused");
        let mut key = b"Jefe".to_vec();
        key.resize(32, 0); // HMAC zero-pads short keys, so this is the same key
        let k = HMAC_SHA2_256.key(&key).unwrap();
        let seq = u32::from_be_bytes(*b"what");
        let data = b" do ya want for nothing?";
        let expected =
            hex::decode("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
                .unwrap();
        let mut out = [0u8; 32];
        k.sign(seq, data, &mut out);
        assert_eq!(&out[..], &expected[..]);
        assert!(k.verify(seq, data, &expected));
        let mut bad = expected.clone();
        bad[31] ^= 1;
        assert!(!k.verify(seq, data, &bad));
        assert!(!k.verify(seq, data, &expected[..31]));
    }
}
