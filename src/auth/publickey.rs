//! publickey authentication (RFC 4252 §7, RFC 8332 for RSA/SHA-2): algorithm checks, the key
//! lookup in the user's authorized_keys entries, and signature verification.
//!
//! The key that is authorised is exactly the key whose signature verified, looked up again at
//! that moment with its own options: nothing is remembered from an earlier query (Go's
//! CVE-2024-45337, where a key from a PK_OK query was later taken as the authenticated one).

use crate::algo::host_key::{HostKeyAlg, VerifyError};
use crate::config::users::AuthorizedKey;
use crate::wire::Reader;
use std::net::IpAddr;

/// Signature verification, as `crate::algo::host_key::verify`. A function pointer so unit
/// tests can run without the crypto implementation.
pub type VerifyFn = fn(HostKeyAlg, &[u8], &[u8], &[u8]) -> Result<(), VerifyError>;

/// The production verifier.
pub fn real_verify(
    alg: HostKeyAlg,
    key: &[u8],
    data: &[u8],
    sig: &[u8],
) -> Result<(), VerifyError> {
    crate::algo::host_key::verify(alg, key, data, sig)
}

/// The signature algorithm for a request naming `alg` with key blob `key`, or why not.
/// RSA keys (`ssh-rsa` blobs) sign with rsa-sha2-256/512 (RFC 8332 §3) and with SHA-1 `ssh-rsa`
/// only when allowed; other key types sign with the algorithm of their own name.
pub fn signature_alg(alg: &str, key: &[u8], allow_sha1: bool) -> Option<HostKeyAlg> {
    let sig_alg = HostKeyAlg::from_name(alg)?;
    let key_type = Reader::new(key).string_max("key type", 64).ok()?;
    let ok = match sig_alg {
        HostKeyAlg::SshRsa => allow_sha1 && key_type == b"ssh-rsa",
        HostKeyAlg::RsaSha256 | HostKeyAlg::RsaSha512 => key_type == b"ssh-rsa",
        other => key_type == other.name().as_bytes(),
    };
    ok.then_some(sig_alg)
}

/// The authorized entry for this exact key blob, if it is valid from `peer` (`from=`) and was
/// not already used in this login (a `publickey,publickey` sequence needs two keys).
pub fn find_key<'k>(
    keys: &'k [AuthorizedKey],
    blob: &[u8],
    peer: IpAddr,
    used: &[Vec<u8>],
) -> Option<&'k AuthorizedKey> {
    if used.iter().any(|u| u == blob) {
        return None;
    }
    keys.iter().find(|k| {
        k.blob == blob
            && k.options.from.as_ref().map_or(true, |f| super::policy::from_allows(f, peer))
    })
}

/// Checks the signature blob names the same algorithm as the request (RFC 4252 §7) before the
/// verifier sees it, then verifies over `signed`.
pub fn check_signature(
    verify: VerifyFn,
    alg: HostKeyAlg,
    key: &[u8],
    signed: &[u8],
    signature: &[u8],
) -> Result<(), VerifyError> {
    let named = Reader::new(signature)
        .string_max("signature algorithm", 64)
        .map_err(|_| VerifyError::BadSignatureFormat)?;
    if named != alg.name().as_bytes() {
        return Err(VerifyError::BadSignatureFormat);
    }
    verify(alg, key, signed, signature)
}

/// A signature to verify on the pool (see [`check_signature`]).
pub struct SignatureCheck {
    pub verify: VerifyFn,
    pub alg: HostKeyAlg,
    pub key: Vec<u8>,
    pub signed: Vec<u8>,
    pub signature: Vec<u8>,
}

impl std::fmt::Debug for SignatureCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureCheck").field("alg", &self.alg).finish_non_exhaustive()
    }
}

impl SignatureCheck {
    /// Runs the check (on a pool thread).
    pub fn run(self) -> bool {
        check_signature(self.verify, self.alg, &self.key, &self.signed, &self.signature).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::users::KeyOptions;
    use crate::wire::Writer;

    fn blob(t: &str) -> Vec<u8> {
        let mut v = Vec::new();
        Writer::new(&mut v).string(t.as_bytes()).string(b"pub");
        v
    }

    #[test]
    fn rsa_algorithms() {
        let rsa = blob("ssh-rsa");
        assert_eq!(signature_alg("rsa-sha2-256", &rsa, false), Some(HostKeyAlg::RsaSha256));
        assert_eq!(signature_alg("rsa-sha2-512", &rsa, false), Some(HostKeyAlg::RsaSha512));
        assert_eq!(signature_alg("ssh-rsa", &rsa, false), None, "SHA-1 off by default");
        assert_eq!(signature_alg("ssh-rsa", &rsa, true), Some(HostKeyAlg::SshRsa));
        assert_eq!(signature_alg("ssh-ed25519", &rsa, true), None, "type mismatch");
        assert_eq!(
            signature_alg("ssh-ed25519", &blob("ssh-ed25519"), false),
            Some(HostKeyAlg::Ed25519)
        );
        assert_eq!(signature_alg("rsa-sha2-256", &blob("ssh-ed25519"), false), None);
        assert_eq!(signature_alg("ssh-dss", &blob("ssh-dss"), true), None);
        assert_eq!(signature_alg("ssh-ed25519", b"\xff\xff", false), None);
    }

    #[test]
    fn lookup_honours_from_and_reuse() {
        let k = AuthorizedKey {
            algorithm: "ssh-ed25519".into(),
            blob: blob("ssh-ed25519"),
            options: KeyOptions { from: Some(vec!["10.0.0.0/8".into()]), ..KeyOptions::default() },
        };
        let keys = vec![k];
        let b = blob("ssh-ed25519");
        assert!(find_key(&keys, &b, "10.2.3.4".parse().unwrap(), &[]).is_some());
        assert!(find_key(&keys, &b, "192.0.2.1".parse().unwrap(), &[]).is_none());
        assert!(
            find_key(&keys, &b, "10.2.3.4".parse().unwrap(), std::slice::from_ref(&b)).is_none()
        );
        assert!(find_key(&keys, &blob("ssh-rsa"), "10.2.3.4".parse().unwrap(), &[]).is_none());
    }

    #[test]
    fn signature_must_name_the_request_algorithm() {
        fn ok(_: HostKeyAlg, _: &[u8], _: &[u8], _: &[u8]) -> Result<(), VerifyError> {
            Ok(())
        }
        let mut sig = Vec::new();
        Writer::new(&mut sig).string(b"rsa-sha2-512").string(b"s");
        assert!(check_signature(ok, HostKeyAlg::RsaSha512, b"k", b"d", &sig).is_ok());
        assert_eq!(
            check_signature(ok, HostKeyAlg::RsaSha256, b"k", b"d", &sig),
            Err(VerifyError::BadSignatureFormat)
        );
    }
}
