//! publickey authentication (RFC 4252 §7, RFC 8332 for RSA/SHA-2): algorithm checks, the key
//! lookup in the user's authorized_keys entries, and signature verification.
//!
//! The key that is authorised is exactly the key whose signature verified, looked up again at
//! that moment with its own options: nothing is remembered from an earlier query (Go's
//! CVE-2024-45337, where a key from a PK_OK query was later taken as the authenticated one).

use super::sk::{self, SkAlg};
use crate::algo::host_key::{HostKeyAlg, VerifyError};
use crate::config::users::{AuthorizedKey, KeyOptions};
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

/// Every publickey signature algorithm we can verify, in default preference order (the names
/// `--pubkey-accepted-algorithms` knows).
pub const PUBKEY_ALGS_ALL: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
    "ssh-rsa",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// Accepted by default: all but SHA-1 `ssh-rsa` (as OpenSSH since 8.8).
pub const DEFAULT_PUBKEY_ALGS: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// A publickey signature algorithm: one we also know as a host-key algorithm, or a security
/// key's (PROTOCOL.u2f).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserSigAlg {
    Plain(HostKeyAlg),
    Sk(SkAlg),
}

impl UserSigAlg {
    pub fn name(self) -> &'static str {
        match self {
            UserSigAlg::Plain(a) => a.name(),
            UserSigAlg::Sk(a) => a.name(),
        }
    }
}

/// The signature algorithm for a request naming `alg` with key blob `key`, or why not: `alg`
/// must be in `accepted`. RSA keys (`ssh-rsa` blobs) sign with rsa-sha2-256/512 (RFC 8332 §3)
/// or SHA-1 `ssh-rsa`; other key types sign with the algorithm of their own name.
pub fn signature_alg(alg: &str, key: &[u8], accepted: &[&str]) -> Option<UserSigAlg> {
    if !accepted.contains(&alg) {
        return None;
    }
    let key_type = Reader::new(key).string_max("key type", 64).ok()?;
    if let Some(sk) = SkAlg::from_name(alg) {
        return (key_type == sk.name().as_bytes()).then_some(UserSigAlg::Sk(sk));
    }
    let sig_alg = HostKeyAlg::from_name(alg)?;
    let ok = match sig_alg {
        HostKeyAlg::SshRsa | HostKeyAlg::RsaSha256 | HostKeyAlg::RsaSha512 => {
            key_type == b"ssh-rsa"
        }
        other => key_type == other.name().as_bytes(),
    };
    ok.then_some(UserSigAlg::Plain(sig_alg))
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
            && k.options.from.as_ref().is_none_or(|f| super::patterns::from_allows(f, peer))
    })
}

/// Checks the signature blob names the same algorithm as the request (RFC 4252 §7) before the
/// verifier sees it, then verifies over `signed`. A security key's signature must also carry
/// the flags the key's options ask for (`options`: presence unless `no-touch-required`,
/// verification with `verify-required`), as sshd.
pub fn check_signature(
    verify: VerifyFn,
    alg: UserSigAlg,
    key: &[u8],
    signed: &[u8],
    signature: &[u8],
    options: &KeyOptions,
) -> Result<(), VerifyError> {
    let named = Reader::new(signature)
        .string_max("signature algorithm", 64)
        .map_err(|_| VerifyError::BadSignatureFormat)?;
    if named != alg.name().as_bytes() {
        return Err(VerifyError::BadSignatureFormat);
    }
    match alg {
        UserSigAlg::Plain(a) => verify(a, key, signed, signature),
        UserSigAlg::Sk(a) => {
            let got = sk::verify(a, key, signed, signature)?;
            if sk::flags_acceptable(got.flags, options.no_touch_required, options.verify_required) {
                Ok(())
            } else {
                Err(VerifyError::Mismatch)
            }
        }
    }
}

/// A signature to verify on the pool (see [`check_signature`]).
pub struct SignatureCheck {
    pub verify: VerifyFn,
    pub alg: UserSigAlg,
    pub key: Vec<u8>,
    pub signed: Vec<u8>,
    pub signature: Vec<u8>,
    /// The key's `no-touch-required` / `verify-required` options (security keys only).
    pub no_touch_required: bool,
    pub verify_required: bool,
}

impl std::fmt::Debug for SignatureCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureCheck").field("alg", &self.alg).finish_non_exhaustive()
    }
}

impl SignatureCheck {
    /// Runs the check (on a pool thread).
    pub fn run(self) -> bool {
        let options = KeyOptions {
            no_touch_required: self.no_touch_required,
            verify_required: self.verify_required,
            ..KeyOptions::default()
        };
        check_signature(self.verify, self.alg, &self.key, &self.signed, &self.signature, &options)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Writer;

    fn blob(t: &str) -> Vec<u8> {
        let mut v = Vec::new();
        Writer::new(&mut v).string(t.as_bytes()).string(b"pub");
        v
    }

    #[test]
    fn rsa_algorithms() {
        let rsa = blob("ssh-rsa");
        let (d, all) = (DEFAULT_PUBKEY_ALGS, PUBKEY_ALGS_ALL);
        let plain = |a| Some(UserSigAlg::Plain(a));
        assert_eq!(signature_alg("rsa-sha2-256", &rsa, d), plain(HostKeyAlg::RsaSha256));
        assert_eq!(signature_alg("rsa-sha2-512", &rsa, d), plain(HostKeyAlg::RsaSha512));
        assert_eq!(signature_alg("ssh-rsa", &rsa, d), None, "SHA-1 off by default");
        assert_eq!(signature_alg("ssh-rsa", &rsa, all), plain(HostKeyAlg::SshRsa));
        assert_eq!(signature_alg("ssh-ed25519", &rsa, all), None, "type mismatch");
        assert_eq!(
            signature_alg("ssh-ed25519", &blob("ssh-ed25519"), d),
            plain(HostKeyAlg::Ed25519)
        );
        let sk = blob("sk-ssh-ed25519@openssh.com");
        assert_eq!(
            signature_alg("sk-ssh-ed25519@openssh.com", &sk, d),
            Some(UserSigAlg::Sk(SkAlg::Ed25519))
        );
        assert_eq!(signature_alg("ssh-ed25519", &sk, d), None, "type mismatch");
        assert_eq!(signature_alg("sk-ecdsa-sha2-nistp256@openssh.com", &sk, d), None);
        assert_eq!(signature_alg("ssh-ed25519", &blob("ssh-ed25519"), &["rsa-sha2-256"]), None);
        assert_eq!(signature_alg("rsa-sha2-256", &blob("ssh-ed25519"), d), None);
        assert_eq!(signature_alg("ssh-dss", &blob("ssh-dss"), &["ssh-dss"]), None);
        assert_eq!(signature_alg("ssh-ed25519", b"\xff\xff", d), None);
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
        let o = KeyOptions::default();
        let alg = |a| UserSigAlg::Plain(a);
        assert!(check_signature(ok, alg(HostKeyAlg::RsaSha512), b"k", b"d", &sig, &o).is_ok());
        assert_eq!(
            check_signature(ok, alg(HostKeyAlg::RsaSha256), b"k", b"d", &sig, &o),
            Err(VerifyError::BadSignatureFormat)
        );
    }
}
