//! Security-key (FIDO2/U2F) user keys, as OpenSSH's PROTOCOL.u2f defines them:
//! `sk-ssh-ed25519@openssh.com` and `sk-ecdsa-sha2-nistp256@openssh.com`.
//!
//! The authenticator does not sign the SSH data itself but
//! `SHA-256(application) ‖ flags ‖ counter ‖ SHA-256(data)`, and the signature blob carries the
//! flags and counter after the signature:
//! ```text
//! public key: string type, [string "nistp256"], string point, string application
//! signature:  string type, string signature, byte flags, uint32 counter
//! ```
//! (for ECDSA the inner signature is `mpint r, mpint s`, over SHA-256 of that message). The
//! flags say whether the user touched the key (user presence, 0x01) and whether the key
//! verified the user, e.g. by PIN (0x04); sshd requires presence unless the key's line says
//! `no-touch-required`, and verification when it says `verify-required`.

use crate::algo::host_key::{ecdsa_fixed, VerifyError};
use crate::wire::Reader;
use ring::digest::{digest, SHA256};
use ring::signature as rsig;

/// User presence: the key was touched.
pub const FLAG_USER_PRESENT: u8 = 0x01;
/// User verification: PIN or biometrics checked by the key.
pub const FLAG_USER_VERIFIED: u8 = 0x04;
/// Longest application string we accept (OpenSSH's are "ssh:…").
const MAX_APPLICATION: usize = 1024;

/// A security-key signature algorithm (same name for key and signature).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkAlg {
    Ed25519,
    EcdsaP256,
}

impl SkAlg {
    pub const ALL: &'static [SkAlg] = &[SkAlg::Ed25519, SkAlg::EcdsaP256];

    pub fn name(self) -> &'static str {
        match self {
            SkAlg::Ed25519 => "sk-ssh-ed25519@openssh.com",
            SkAlg::EcdsaP256 => "sk-ecdsa-sha2-nistp256@openssh.com",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.name() == name)
    }
}

/// What the authenticator reported with a valid signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkSignature {
    pub flags: u8,
    pub counter: u32,
}

/// Verifies a security-key signature over `data` (the RFC 4252 §7 signed data) with the public
/// key blob `key`. Returns the flags and counter; the caller decides whether they suffice.
pub fn verify(alg: SkAlg, key: &[u8], data: &[u8], sig: &[u8]) -> Result<SkSignature, VerifyError> {
    let bad_key = |_| VerifyError::BadKey;
    let bad_sig = |_| VerifyError::BadSignatureFormat;
    let mut k = Reader::new(key);
    if k.string_max("key type", 64).map_err(bad_key)? != alg.name().as_bytes() {
        return Err(VerifyError::BadKey);
    }
    if alg == SkAlg::EcdsaP256 && k.string_max("curve", 16).map_err(bad_key)? != b"nistp256" {
        return Err(VerifyError::BadKey);
    }
    let point = k.string_max("public key", 133).map_err(bad_key)?;
    let application = k.string_max("application", MAX_APPLICATION).map_err(bad_key)?;
    k.finish("security key").map_err(bad_key)?;

    let mut s = Reader::new(sig);
    if s.string_max("signature type", 64).map_err(bad_sig)? != alg.name().as_bytes() {
        return Err(VerifyError::BadSignatureFormat);
    }
    let inner = s.string_max("signature", 256).map_err(bad_sig)?;
    let flags = s.u8("flags").map_err(bad_sig)?;
    let counter = s.u32("counter").map_err(bad_sig)?;
    s.finish("security key signature").map_err(bad_sig)?;

    // SHA-256(application) ‖ flags ‖ counter ‖ SHA-256(data)
    let mut msg = Vec::with_capacity(32 + 1 + 4 + 32);
    msg.extend_from_slice(digest(&SHA256, application).as_ref());
    msg.push(flags);
    msg.extend_from_slice(&counter.to_be_bytes());
    msg.extend_from_slice(digest(&SHA256, data).as_ref());

    let ok = match alg {
        SkAlg::Ed25519 => {
            if point.len() != 32 || inner.len() != 64 {
                return Err(VerifyError::BadKey);
            }
            rsig::UnparsedPublicKey::new(&rsig::ED25519, point).verify(&msg, inner)
        }
        SkAlg::EcdsaP256 => {
            let fixed = ecdsa_fixed(inner, 32)?;
            rsig::UnparsedPublicKey::new(&rsig::ECDSA_P256_SHA256_FIXED, point).verify(&msg, &fixed)
        }
    };
    ok.map_err(|_| VerifyError::Mismatch)?;
    Ok(SkSignature { flags, counter })
}

/// sshd's rule: presence unless `no-touch-required`, verification when `verify-required`.
pub fn flags_acceptable(flags: u8, no_touch_required: bool, verify_required: bool) -> bool {
    (no_touch_required || flags & FLAG_USER_PRESENT != 0)
        && (!verify_required || flags & FLAG_USER_VERIFIED != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Writer;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};

    const APP: &[u8] = b"ssh:";

    /// Signs (flags, counter, data) as an authenticator would; returns the SSH signature blob.
    type Signer = Box<dyn Fn(u8, u32, &[u8]) -> Vec<u8>>;

    /// The message an authenticator signs (PROTOCOL.u2f), built independently here.
    fn sk_message(flags: u8, counter: u32, data: &[u8]) -> Vec<u8> {
        let mut m = digest(&SHA256, APP).as_ref().to_vec();
        m.push(flags);
        m.extend_from_slice(&counter.to_be_bytes());
        m.extend_from_slice(digest(&SHA256, data).as_ref());
        m
    }

    fn ed25519() -> (Vec<u8>, Signer) {
        let rng = SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let kp = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
        let mut key = Vec::new();
        Writer::new(&mut key)
            .string(SkAlg::Ed25519.name().as_bytes())
            .string(kp.public_key().as_ref())
            .string(APP);
        let sign = Box::new(move |flags: u8, counter: u32, data: &[u8]| {
            let s = kp.sign(&sk_message(flags, counter, data));
            let mut sig = Vec::new();
            Writer::new(&mut sig)
                .string(SkAlg::Ed25519.name().as_bytes())
                .string(s.as_ref())
                .u8(flags)
                .u32(counter);
            sig
        });
        (key, sign)
    }

    fn ecdsa() -> (Vec<u8>, Signer) {
        let rng = SystemRandom::new();
        let alg = &rsig::ECDSA_P256_SHA256_FIXED_SIGNING;
        let doc = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let kp = EcdsaKeyPair::from_pkcs8(alg, doc.as_ref(), &rng).unwrap();
        let mut key = Vec::new();
        Writer::new(&mut key)
            .string(SkAlg::EcdsaP256.name().as_bytes())
            .string(b"nistp256")
            .string(kp.public_key().as_ref())
            .string(APP);
        let sign = Box::new(move |flags: u8, counter: u32, data: &[u8]| {
            let s = kp.sign(&SystemRandom::new(), &sk_message(flags, counter, data)).unwrap();
            let (r, s) = s.as_ref().split_at(32);
            let mut inner = Vec::new();
            Writer::new(&mut inner).mpint(r).mpint(s);
            let mut sig = Vec::new();
            Writer::new(&mut sig)
                .string(SkAlg::EcdsaP256.name().as_bytes())
                .string(&inner)
                .u8(flags)
                .u32(counter);
            sig
        });
        (key, sign)
    }

    #[test]
    fn ed25519_and_ecdsa_signatures_verify_with_their_flags() {
        let data = b"session id and userauth request";
        let (key, sign) = ed25519();
        let got = verify(SkAlg::Ed25519, &key, data, &sign(0x01, 7, data)).unwrap();
        assert_eq!(got, SkSignature { flags: 0x01, counter: 7 });
        let (ekey, esign) = ecdsa();
        let got = verify(SkAlg::EcdsaP256, &ekey, data, &esign(0x05, 9, data)).unwrap();
        assert_eq!(got, SkSignature { flags: 0x05, counter: 9 });
        // The key types do not mix.
        assert!(verify(SkAlg::EcdsaP256, &key, data, &sign(1, 7, data)).is_err());
    }

    #[test]
    fn flags_counter_and_data_are_covered_by_the_signature() {
        let data = b"signed data";
        for (alg, (key, sign)) in [(SkAlg::Ed25519, ed25519()), (SkAlg::EcdsaP256, ecdsa())] {
            let good = sign(0x01, 1, data);
            assert!(verify(alg, &key, data, &good).is_ok());
            assert_eq!(verify(alg, &key, b"other data", &good), Err(VerifyError::Mismatch));
            // Flip the flags byte (presence → none) or the counter after signing.
            let n = good.len();
            let mut f = good.clone();
            f[n - 5] = 0x00;
            assert_eq!(verify(alg, &key, data, &f), Err(VerifyError::Mismatch));
            let mut c = good.clone();
            c[n - 1] ^= 1;
            assert_eq!(verify(alg, &key, data, &c), Err(VerifyError::Mismatch));
            assert!(verify(alg, &key, data, &good[..n - 1]).is_err(), "truncated");
        }
        let (key, sign) = ecdsa();
        let mut f = sign(0x01, 1, data);
        let n = f.len();
        f[n - 5] = 0x05;
        assert_eq!(verify(SkAlg::EcdsaP256, &key, data, &f), Err(VerifyError::Mismatch));
    }

    #[test]
    fn presence_and_verification_rules() {
        assert!(flags_acceptable(0x01, false, false));
        assert!(!flags_acceptable(0x00, false, false), "touch required by default");
        assert!(flags_acceptable(0x00, true, false), "no-touch-required");
        assert!(!flags_acceptable(0x01, false, true), "verify-required needs UV");
        assert!(flags_acceptable(0x05, false, true));
        assert!(flags_acceptable(0x04, true, true));
    }
}
