//! Host key algorithms: signing (server) and verification (client, and publickey auth), in the
//! SSH wire formats (RFC 4253 §6.6, RFC 5656 §3.1, RFC 8332, RFC 8709).
//!
//! Keys are loaded and generated with `ssh-key`, then handed to ring (Ed25519, ECDSA P-256/384,
//! RSA) or RustCrypto's `p521` (ring has no P-521), which do the signing. Blobs are built here
//! so their format is visible next to the RFC sections they follow.

#[cfg(not(feature = "fuzzing"))]
use crate::algo::rng::{with_ring_rng, RandCore};
use crate::algo::Rng;
use crate::wire::{Reader, Writer};
use num_bigint::BigUint;
use ring::rand::SystemRandom;
use ring::signature as rsig;
use std::fmt;

/// A host key / signature algorithm as negotiated in KEXINIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostKeyAlg {
    Ed25519,
    EcdsaP256,
    EcdsaP384,
    EcdsaP521,
    RsaSha512,
    RsaSha256,
    /// SHA-1 RSA signatures; off by default.
    SshRsa,
}

impl HostKeyAlg {
    /// Default preference order (OpenSSH's).
    pub const ALL: &'static [HostKeyAlg] = &[
        HostKeyAlg::Ed25519,
        HostKeyAlg::EcdsaP256,
        HostKeyAlg::EcdsaP384,
        HostKeyAlg::EcdsaP521,
        HostKeyAlg::RsaSha512,
        HostKeyAlg::RsaSha256,
        HostKeyAlg::SshRsa,
    ];

    pub fn name(self) -> &'static str {
        match self {
            HostKeyAlg::Ed25519 => "ssh-ed25519",
            HostKeyAlg::EcdsaP256 => "ecdsa-sha2-nistp256",
            HostKeyAlg::EcdsaP384 => "ecdsa-sha2-nistp384",
            HostKeyAlg::EcdsaP521 => "ecdsa-sha2-nistp521",
            HostKeyAlg::RsaSha512 => "rsa-sha2-512",
            HostKeyAlg::RsaSha256 => "rsa-sha2-256",
            HostKeyAlg::SshRsa => "ssh-rsa",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.name() == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyError {
    /// The key file could not be parsed or is of an unsupported type.
    Parse(String),
    /// This key cannot make signatures of that algorithm.
    WrongAlgorithm,
    /// Signing failed in the crypto library.
    Sign,
}

impl fmt::Display for HostKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostKeyError::Parse(s) => write!(f, "host key: {s}"),
            HostKeyError::WrongAlgorithm => write!(f, "host key cannot sign with that algorithm"),
            HostKeyError::Sign => write!(f, "host key signing failed"),
        }
    }
}

/// A signature or public key that did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// The public key blob is malformed or of another type than the algorithm.
    BadKey,
    /// The signature blob is malformed or names another algorithm.
    BadSignatureFormat,
    /// Well-formed but does not verify.
    Mismatch,
}

/// Kinds of key that can be generated on first start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Ed25519,
    EcdsaP256,
    EcdsaP384,
    EcdsaP521,
    Rsa { bits: usize },
}

/// A private host key ready to sign. `Send + Sync`: shared as `Arc` with crypto jobs.
pub struct HostKeyPair {
    signer: Signer,
    public_blob: Vec<u8>,
    fingerprint: String,
}

enum Signer {
    Ed25519(rsig::Ed25519KeyPair),
    /// P-256 or P-384, with ring's fixed-width r || s output re-encoded as two mpints.
    Ecdsa(HostKeyAlg, rsig::EcdsaKeyPair),
    P521(Box<p521::ecdsa::SigningKey>),
    /// ring signs rsa-sha2-* (for moduli up to 4096 bits, ring's limit for private keys);
    /// ring has no SHA-1 RSA signing, so ssh-rsa, and every signature of a larger key, goes
    /// through the `rsa` crate (with blinding).
    Rsa(Option<Box<rsig::RsaKeyPair>>, Box<rsa::RsaPrivateKey>),
}

/// Signature algorithms per key type.
const ED25519_ALGS: &[HostKeyAlg] = &[HostKeyAlg::Ed25519];
const P256_ALGS: &[HostKeyAlg] = &[HostKeyAlg::EcdsaP256];
const P384_ALGS: &[HostKeyAlg] = &[HostKeyAlg::EcdsaP384];
const P521_ALGS: &[HostKeyAlg] = &[HostKeyAlg::EcdsaP521];
const RSA_ALGS: &[HostKeyAlg] = &[HostKeyAlg::RsaSha512, HostKeyAlg::RsaSha256, HostKeyAlg::SshRsa];

impl HostKeyPair {
    /// Parses an OpenSSH private key file (unencrypted) with `ssh-key`.
    pub fn from_openssh(text: &str) -> Result<Self, HostKeyError> {
        let key = match ssh_key::PrivateKey::from_openssh(text) {
            Ok(k) => k,
            Err(e) => {
                // ssh-key 0.6 wants the ECDSA scalar at full field width; see `pad_ecdsa_scalar`.
                let fixed = pad_ecdsa_scalar(text).ok_or_else(|| parse_err(&e))?;
                ssh_key::PrivateKey::from_openssh(&fixed).map_err(|e| parse_err(&e))?
            }
        };
        Self::from_ssh_key(&key)
    }

    /// Generates a new key; returns it and its OpenSSH private key file text.
    pub fn generate(kind: KeyKind) -> Result<(Self, String), HostKeyError> {
        Self::generate_with(kind, &mut super::SystemRng)
    }

    /// As [`HostKeyPair::generate`] from a chosen RNG (a fixed key for fuzzing and tests).
    pub fn generate_with(kind: KeyKind, rng: &mut dyn Rng) -> Result<(Self, String), HostKeyError> {
        use ssh_key::{private::KeypairData, Algorithm, EcdsaCurve};
        let mut rng = crate::algo::RandCore(rng);
        let key = match kind {
            KeyKind::Rsa { bits } => {
                let pair = ssh_key::private::RsaKeypair::random(&mut rng, bits)
                    .map_err(|e| parse_err(&e))?;
                ssh_key::PrivateKey::new(KeypairData::Rsa(pair), "")
            }
            KeyKind::Ed25519 => ssh_key::PrivateKey::random(&mut rng, Algorithm::Ed25519),
            KeyKind::EcdsaP256 => ssh_key::PrivateKey::random(
                &mut rng,
                Algorithm::Ecdsa { curve: EcdsaCurve::NistP256 },
            ),
            KeyKind::EcdsaP384 => ssh_key::PrivateKey::random(
                &mut rng,
                Algorithm::Ecdsa { curve: EcdsaCurve::NistP384 },
            ),
            KeyKind::EcdsaP521 => ssh_key::PrivateKey::random(
                &mut rng,
                Algorithm::Ecdsa { curve: EcdsaCurve::NistP521 },
            ),
        }
        .map_err(|e| parse_err(&e))?;
        let text = key.to_openssh(ssh_key::LineEnding::LF).map_err(|e| parse_err(&e))?;
        Ok((Self::from_ssh_key(&key)?, text.to_string()))
    }

    /// Builds the signer and the public blob from a decoded private key.
    pub fn from_ssh_key(key: &ssh_key::PrivateKey) -> Result<Self, HostKeyError> {
        use ssh_key::private::{EcdsaKeypair, KeypairData};
        let bad = |what: &str| HostKeyError::Parse(format!("{what} key rejected"));
        let mut blob = Vec::new();
        let mut w = Writer::new(&mut blob);
        let signer = match key.key_data() {
            KeypairData::Ed25519(kp) => {
                let pair = rsig::Ed25519KeyPair::from_seed_and_public_key(
                    &kp.private.to_bytes(),
                    &kp.public.0,
                )
                .map_err(|_| bad("ed25519"))?;
                w.string(b"ssh-ed25519").string(&kp.public.0);
                Signer::Ed25519(pair)
            }
            KeypairData::Ecdsa(EcdsaKeypair::NistP256 { public, private }) => {
                let pair = ring_ecdsa(
                    &rsig::ECDSA_P256_SHA256_FIXED_SIGNING,
                    private.as_slice(),
                    public.as_bytes(),
                )
                .map_err(|_| bad("ecdsa-p256"))?;
                ecdsa_blob(&mut w, HostKeyAlg::EcdsaP256, public.as_bytes());
                Signer::Ecdsa(HostKeyAlg::EcdsaP256, pair)
            }
            KeypairData::Ecdsa(EcdsaKeypair::NistP384 { public, private }) => {
                let pair = ring_ecdsa(
                    &rsig::ECDSA_P384_SHA384_FIXED_SIGNING,
                    private.as_slice(),
                    public.as_bytes(),
                )
                .map_err(|_| bad("ecdsa-p384"))?;
                ecdsa_blob(&mut w, HostKeyAlg::EcdsaP384, public.as_bytes());
                Signer::Ecdsa(HostKeyAlg::EcdsaP384, pair)
            }
            KeypairData::Ecdsa(EcdsaKeypair::NistP521 { public, private }) => {
                let sk = p521::ecdsa::SigningKey::from_slice(private.as_slice())
                    .map_err(|_| bad("ecdsa-p521"))?;
                let secret = p521::SecretKey::from_slice(private.as_slice())
                    .map_err(|_| bad("ecdsa-p521"))?;
                let derived = p521::EncodedPoint::from(secret.public_key());
                if derived.as_bytes() != public.as_bytes() {
                    return Err(bad("ecdsa-p521 (public part does not match)"));
                }
                ecdsa_blob(&mut w, HostKeyAlg::EcdsaP521, public.as_bytes());
                Signer::P521(Box::new(sk))
            }
            KeypairData::Rsa(kp) => {
                let pair = ring_rsa(kp);
                let legacy = rsa_crate_key(kp).ok_or_else(|| bad("rsa"))?;
                let e = kp.public.e.as_positive_bytes().ok_or_else(|| bad("rsa"))?;
                let n = kp.public.n.as_positive_bytes().ok_or_else(|| bad("rsa"))?;
                w.string(b"ssh-rsa").mpint(e).mpint(n);
                Signer::Rsa(pair.map(Box::new), Box::new(legacy))
            }
            KeypairData::Encrypted(_) => {
                return Err(HostKeyError::Parse("encrypted private keys are not supported".into()))
            }
            other => {
                return Err(HostKeyError::Parse(format!(
                    "unsupported key type {}",
                    other.algorithm().map(|a| a.to_string()).unwrap_or_default()
                )))
            }
        };
        let fingerprint = fingerprint_of(&blob);
        Ok(HostKeyPair { signer, public_blob: blob, fingerprint })
    }

    /// The public key blob (K_S), as in RFC 4253 §6.6.
    pub fn public_blob(&self) -> &[u8] {
        &self.public_blob
    }

    /// Signature algorithms this key can serve (an RSA key serves three).
    pub fn algorithms(&self) -> &'static [HostKeyAlg] {
        match &self.signer {
            Signer::Ed25519(_) => ED25519_ALGS,
            Signer::Ecdsa(HostKeyAlg::EcdsaP384, _) => P384_ALGS,
            Signer::Ecdsa(..) => P256_ALGS,
            Signer::P521(_) => P521_ALGS,
            Signer::Rsa(..) => RSA_ALGS,
        }
    }

    /// Signs `data` (the exchange hash H) and returns the SSH signature blob
    /// (string algorithm name, string signature). ECDSA nonces and RSA blinding draw from `rng`.
    pub fn sign(
        &self,
        alg: HostKeyAlg,
        data: &[u8],
        rng: &mut dyn Rng,
    ) -> Result<Vec<u8>, HostKeyError> {
        if !self.algorithms().contains(&alg) {
            return Err(HostKeyError::WrongAlgorithm);
        }
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out);
        w.string(alg.name().as_bytes());
        self.sign_into(&mut w, alg, data, rng)?;
        Ok(out)
    }

    /// Fuzzing stand-in: a fixed signature (the verifier accepts any), so inputs get past KEX.
    #[cfg(feature = "fuzzing")]
    fn sign_into(
        &self,
        w: &mut Writer<'_>,
        _alg: HostKeyAlg,
        _data: &[u8],
        _rng: &mut dyn Rng,
    ) -> Result<(), HostKeyError> {
        w.string(&[0x5a; 64]);
        Ok(())
    }

    #[cfg(not(feature = "fuzzing"))]
    fn sign_into(
        &self,
        w: &mut Writer<'_>,
        alg: HostKeyAlg,
        data: &[u8],
        rng: &mut dyn Rng,
    ) -> Result<(), HostKeyError> {
        match &self.signer {
            Signer::Ed25519(pair) => {
                w.string(pair.sign(data).as_ref());
            }
            Signer::Ecdsa(curve, pair) => {
                // ring's nonce fill: the digest's block minus its output (see algo::rng).
                let nonce_len = if *curve == HostKeyAlg::EcdsaP384 { 128 - 48 } else { 64 - 32 };
                let sig = (0..4)
                    .find_map(|_| with_ring_rng(rng, nonce_len, |r| pair.sign(r, data).ok()))
                    .ok_or(HostKeyError::Sign)?;
                let (r, s) = sig.as_ref().split_at(sig.as_ref().len() / 2);
                let at = w.begin_string();
                w.mpint(r).mpint(s);
                w.end_string(at);
            }
            Signer::P521(sk) => {
                // RFC 6979 deterministic nonce: draws nothing.
                use p521::ecdsa::signature::Signer as _;
                let sig: p521::ecdsa::Signature =
                    sk.try_sign(data).map_err(|_| HostKeyError::Sign)?;
                let (r, s) = sig.split_bytes();
                let at = w.begin_string();
                w.mpint(&r).mpint(&s);
                w.end_string(at);
            }
            Signer::Rsa(Some(pair), _) if alg != HostKeyAlg::SshRsa => {
                let padding: &'static dyn rsig::RsaEncoding = match alg {
                    HostKeyAlg::RsaSha512 => &rsig::RSA_PKCS1_SHA512,
                    _ => &rsig::RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0u8; pair.public().modulus_len()];
                // PKCS#1 v1.5 padding is deterministic: ring takes an RNG here but draws nothing.
                pair.sign(padding, &SystemRandom::new(), data, &mut sig)
                    .map_err(|_| HostKeyError::Sign)?;
                w.string(&sig);
            }
            Signer::Rsa(_, key) => {
                w.string(&sign_rsa_pkcs1(key, alg, data, rng)?);
            }
        }
        Ok(())
    }

    /// `SHA256:…` fingerprint as OpenSSH prints it.
    pub fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }
}

/// RFC 8017 §9.2 EMSA-PKCS1-v1_5: DigestInfo prefix then the digest, signed by the `rsa`
/// crate's blinded private operation.
#[cfg(not(feature = "fuzzing"))]
fn sign_rsa_pkcs1(
    key: &rsa::RsaPrivateKey,
    alg: HostKeyAlg,
    data: &[u8],
    rng: &mut dyn Rng,
) -> Result<Vec<u8>, HostKeyError> {
    // RFC 8017 §9.2 note 1: the DER DigestInfo prefixes.
    const SHA1: &[u8] =
        &[0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14];
    const SHA256: &[u8] = &[
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    const SHA512: &[u8] = &[
        0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03,
        0x05, 0x00, 0x04, 0x40,
    ];
    let (prefix, hash) = match alg {
        HostKeyAlg::RsaSha512 => (SHA512, &ring::digest::SHA512),
        HostKeyAlg::RsaSha256 => (SHA256, &ring::digest::SHA256),
        _ => (SHA1, &ring::digest::SHA1_FOR_LEGACY_USE_ONLY),
    };
    let mut t = prefix.to_vec();
    t.extend_from_slice(ring::digest::digest(hash, data).as_ref());
    key.sign_with_rng(&mut RandCore(rng), rsa::Pkcs1v15Sign::new_unprefixed(), &t)
        .map_err(|_| HostKeyError::Sign)
}

fn parse_err(e: &ssh_key::Error) -> HostKeyError {
    HostKeyError::Parse(e.to_string())
}

fn ring_ecdsa(
    alg: &'static rsig::EcdsaSigningAlgorithm,
    private: &[u8],
    public: &[u8],
) -> Result<rsig::EcdsaKeyPair, ring::error::KeyRejected> {
    rsig::EcdsaKeyPair::from_private_key_and_public_key(alg, private, public, &SystemRandom::new())
}

/// ring wants the CRT exponents, which OpenSSH files do not store: dP = d mod (p-1),
/// dQ = d mod (q-1). `iqmp` is ring's qInv (q^-1 mod p).
fn ring_rsa(kp: &ssh_key::private::RsaKeypair) -> Option<rsig::RsaKeyPair> {
    let big = |m: &ssh_key::Mpint| m.as_positive_bytes().map(BigUint::from_bytes_be);
    let (d, p, q) = (big(&kp.private.d)?, big(&kp.private.p)?, big(&kp.private.q)?);
    let one = BigUint::from(1u32);
    if p <= one || q <= one {
        return None;
    }
    let dp = (&d % (&p - &one)).to_bytes_be();
    let dq = (&d % (&q - &one)).to_bytes_be();
    let components = ring::rsa::KeyPairComponents {
        public_key: ring::rsa::PublicKeyComponents {
            n: kp.public.n.as_positive_bytes()?,
            e: kp.public.e.as_positive_bytes()?,
        },
        d: kp.private.d.as_positive_bytes()?,
        p: kp.private.p.as_positive_bytes()?,
        q: kp.private.q.as_positive_bytes()?,
        dP: dp.as_slice(),
        dQ: dq.as_slice(),
        qInv: kp.private.iqmp.as_positive_bytes()?,
    };
    rsig::RsaKeyPair::from_components(&components).map_err(|e| eprintln!("ring rsa: {e}")).ok()
}

/// The same key for the `rsa` crate. Built by hand: ssh-key 0.6.7's `TryFrom<&RsaKeypair>`
/// passes p twice instead of p and q.
fn rsa_crate_key(kp: &ssh_key::private::RsaKeypair) -> Option<rsa::RsaPrivateKey> {
    let big = |m: &ssh_key::Mpint| m.as_positive_bytes().map(rsa::BigUint::from_bytes_be);
    let primes = vec![big(&kp.private.p)?, big(&kp.private.q)?];
    let n = big(&kp.public.n)?;
    let e = big(&kp.public.e)?;
    rsa::RsaPrivateKey::from_components(n, e, big(&kp.private.d)?, primes).ok()
}

/// RFC 5656 §3.1: string "ecdsa-sha2-<id>", string <id>, string Q.
fn ecdsa_blob(w: &mut Writer, alg: HostKeyAlg, q: &[u8]) {
    w.string(alg.name().as_bytes()).string(curve_id(alg).as_bytes()).string(q);
}

fn curve_id(alg: HostKeyAlg) -> &'static str {
    match alg {
        HostKeyAlg::EcdsaP384 => "nistp384",
        HostKeyAlg::EcdsaP521 => "nistp521",
        _ => "nistp256",
    }
}

/// OpenSSH's `SHA256:` + unpadded base64 of SHA-256(blob).
pub fn fingerprint_of(public_blob: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, public_blob);
    format!("SHA256:{}", base64_unpadded(digest.as_ref()))
}

/// Standard-alphabet base64 without padding (only used on 32-byte digests).
fn base64_unpadded(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sym = |v: u32| char::from(ABC.get((v & 63) as usize).copied().unwrap_or(b'A'));
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let v = (b(0) << 16) | (b(1) << 8) | b(2);
        for i in 0..=chunk.len() {
            out.push(sym(v >> (18 - 6 * i)));
        }
    }
    out
}

/// A parsed public key blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey<'a> {
    Ed25519(&'a [u8]),
    /// Curve (as the ECDSA algorithm) and the SEC1 point Q.
    Ecdsa(HostKeyAlg, &'a [u8]),
    /// Exponent and modulus magnitudes.
    Rsa {
        e: &'a [u8],
        n: &'a [u8],
    },
}

impl<'a> PublicKey<'a> {
    /// Parses a public key blob (RFC 4253 §6.6, RFC 5656 §3.1, RFC 8709); trailing bytes, an
    /// unknown type or a curve id that disagrees with the name are refused.
    pub fn from_blob(blob: &'a [u8]) -> Result<Self, VerifyError> {
        let mut r = Reader::new(blob);
        let name = r.string("key type").map_err(|_| VerifyError::BadKey)?;
        let key = match name {
            b"ssh-ed25519" => {
                let k = r.string("ed25519 key").map_err(|_| VerifyError::BadKey)?;
                if k.len() != 32 {
                    return Err(VerifyError::BadKey);
                }
                PublicKey::Ed25519(k)
            }
            b"ssh-rsa" => {
                let e = r.mpint_positive("rsa e").map_err(|_| VerifyError::BadKey)?;
                let n = r.mpint_positive("rsa n").map_err(|_| VerifyError::BadKey)?;
                PublicKey::Rsa { e, n }
            }
            _ => {
                let alg = std::str::from_utf8(name)
                    .ok()
                    .and_then(HostKeyAlg::from_name)
                    .filter(|a| {
                        matches!(
                            a,
                            HostKeyAlg::EcdsaP256 | HostKeyAlg::EcdsaP384 | HostKeyAlg::EcdsaP521
                        )
                    })
                    .ok_or(VerifyError::BadKey)?;
                let id = r.string("curve id").map_err(|_| VerifyError::BadKey)?;
                if id != curve_id(alg).as_bytes() {
                    return Err(VerifyError::BadKey);
                }
                let q = r.string("ecdsa point").map_err(|_| VerifyError::BadKey)?;
                PublicKey::Ecdsa(alg, q)
            }
        };
        r.finish("public key").map_err(|_| VerifyError::BadKey)?;
        Ok(key)
    }

    /// Whether signatures of `alg` can be made by this kind of key.
    pub fn serves(&self, alg: HostKeyAlg) -> bool {
        match self {
            PublicKey::Ed25519(_) => alg == HostKeyAlg::Ed25519,
            PublicKey::Ecdsa(a, _) => *a == alg,
            PublicKey::Rsa { .. } => RSA_ALGS.contains(&alg),
        }
    }
}

/// Verifies an SSH signature blob over `data` with the public key blob, for algorithm `alg`.
pub fn verify(
    alg: HostKeyAlg,
    public_blob: &[u8],
    data: &[u8],
    signature_blob: &[u8],
) -> Result<(), VerifyError> {
    let key = PublicKey::from_blob(public_blob)?;
    if !key.serves(alg) {
        return Err(VerifyError::BadKey);
    }
    let mut r = Reader::new(signature_blob);
    let name = r.string("signature type").map_err(|_| VerifyError::BadSignatureFormat)?;
    let sig = r.string("signature").map_err(|_| VerifyError::BadSignatureFormat)?;
    r.finish("signature").map_err(|_| VerifyError::BadSignatureFormat)?;
    if name != alg.name().as_bytes() {
        return Err(VerifyError::BadSignatureFormat);
    }
    check_signature(key, alg, data, sig)
}

/// Fuzzing stand-in: every well-formed signature verifies, so inputs get past KEX and
/// publickey auth.
#[cfg(feature = "fuzzing")]
fn check_signature(
    _key: PublicKey<'_>,
    _alg: HostKeyAlg,
    _data: &[u8],
    _sig: &[u8],
) -> Result<(), VerifyError> {
    Ok(())
}

/// The signature math, once the blobs are parsed.
#[cfg(not(feature = "fuzzing"))]
fn check_signature(
    key: PublicKey<'_>,
    alg: HostKeyAlg,
    data: &[u8],
    sig: &[u8],
) -> Result<(), VerifyError> {
    let mismatch = |_| VerifyError::Mismatch;
    match key {
        PublicKey::Ed25519(k) => {
            if sig.len() != 64 {
                return Err(VerifyError::BadSignatureFormat);
            }
            rsig::UnparsedPublicKey::new(&rsig::ED25519, k).verify(data, sig).map_err(mismatch)
        }
        PublicKey::Ecdsa(HostKeyAlg::EcdsaP521, q) => {
            use p521::ecdsa::signature::Verifier as _;
            let vk =
                p521::ecdsa::VerifyingKey::from_sec1_bytes(q).map_err(|_| VerifyError::BadKey)?;
            let fixed = ecdsa_fixed(sig, 66)?;
            let s = p521::ecdsa::Signature::from_slice(&fixed)
                .map_err(|_| VerifyError::BadSignatureFormat)?;
            vk.verify(data, &s).map_err(|_| VerifyError::Mismatch)
        }
        PublicKey::Ecdsa(a, q) => {
            let (ring_alg, width): (&rsig::EcdsaVerificationAlgorithm, usize) = match a {
                HostKeyAlg::EcdsaP384 => (&rsig::ECDSA_P384_SHA384_FIXED, 48),
                _ => (&rsig::ECDSA_P256_SHA256_FIXED, 32),
            };
            let fixed = ecdsa_fixed(sig, width)?;
            rsig::UnparsedPublicKey::new(ring_alg, q).verify(data, &fixed).map_err(mismatch)
        }
        PublicKey::Rsa { e, n } => {
            let params: &rsig::RsaParameters = match alg {
                HostKeyAlg::RsaSha512 => &rsig::RSA_PKCS1_2048_8192_SHA512,
                HostKeyAlg::RsaSha256 => &rsig::RSA_PKCS1_2048_8192_SHA256,
                _ => &rsig::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            };
            // OpenSSH accepts a signature shorter than the modulus and left-pads it.
            if sig.len() > n.len() {
                return Err(VerifyError::BadSignatureFormat);
            }
            let mut padded = vec![0u8; n.len() - sig.len()];
            padded.extend_from_slice(sig);
            rsig::RsaPublicKeyComponents { n, e }.verify(params, data, &padded).map_err(mismatch)
        }
    }
}

/// Turns the ECDSA `string(mpint r, mpint s)` contents into ring's fixed-width r || s.
pub(crate) fn ecdsa_fixed(sig: &[u8], width: usize) -> Result<Vec<u8>, VerifyError> {
    let mut r = Reader::new(sig);
    let bad = |_| VerifyError::BadSignatureFormat;
    let rr = r.mpint_positive("ecdsa r").map_err(bad)?;
    let ss = r.mpint_positive("ecdsa s").map_err(bad)?;
    r.finish("ecdsa signature").map_err(bad)?;
    if rr.len() > width || ss.len() > width {
        return Err(VerifyError::BadSignatureFormat);
    }
    let mut out = vec![0u8; 2 * width];
    let (ro, so) = out.split_at_mut(width);
    ro.get_mut(width - rr.len()..).ok_or(VerifyError::BadSignatureFormat)?.copy_from_slice(rr);
    so.get_mut(width - ss.len()..).ok_or(VerifyError::BadSignatureFormat)?.copy_from_slice(ss);
    Ok(out)
}

// Real signatures only: the fuzzing build's stand-ins would fail them by design.
#[cfg(all(test, not(feature = "fuzzing")))]
mod tests;

/// ssh-key 0.6 decodes an ECDSA private scalar as exactly the field width (32, 48 or 66 bytes),
/// but OpenSSH writes it as a minimal mpint: about half of all P-521 keys from `ssh-keygen` (and
/// 1 in 256 P-256/P-384 keys) then fail with "length invalid". This re-encodes an unencrypted
/// `openssh-key-v1` container with the scalar left-padded to the field width, so ssh-key can
/// parse it. Returns `None` for anything else (encrypted, other key types, malformed).
fn pad_ecdsa_scalar(text: &str) -> Option<String> {
    use crate::wire::{Reader, Writer};
    use base64ct::{Base64, Encoding};
    const BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
    const END: &str = "-----END OPENSSH PRIVATE KEY-----";
    const MAGIC: &[u8] = b"openssh-key-v1\0";
    let body: String = text
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != BEGIN)
        .skip(1)
        .take_while(|l| *l != END)
        .collect();
    let blob = Base64::decode_vec(&body).ok()?;
    let mut r = Reader::new(&blob);
    if r.bytes(MAGIC.len(), "magic").ok()? != MAGIC {
        return None;
    }
    let cipher = r.string("cipher").ok()?;
    let kdf = r.string("kdf").ok()?;
    let kdf_opts = r.string("kdf options").ok()?;
    let nkeys = r.u32("nkeys").ok()?;
    let public = r.string("public").ok()?;
    let private = r.string("private").ok()?;
    if cipher != b"none" || nkeys != 1 {
        return None;
    }
    let mut p = Reader::new(private);
    let check1 = p.u32("check").ok()?;
    let check2 = p.u32("check").ok()?;
    let key_type = p.string("key type").ok()?;
    let width = match key_type {
        b"ecdsa-sha2-nistp256" => 32,
        b"ecdsa-sha2-nistp384" => 48,
        b"ecdsa-sha2-nistp521" => 66,
        _ => return None,
    };
    let curve = p.string("curve").ok()?;
    let q = p.string("Q").ok()?;
    let d = p.mpint_positive("d").ok()?;
    let comment = p.string("comment").ok()?;
    if d.len() > width {
        return None;
    }
    let mut padded = vec![0u8; width - d.len()];
    padded.extend_from_slice(d);
    let mut priv_out = Vec::new();
    let mut w = Writer::new(&mut priv_out);
    w.u32(check1).u32(check2).string(key_type).string(curve).string(q).string(&padded);
    w.string(comment);
    // The private section is padded with 1, 2, 3, ... to the block size (8 for "none").
    let mut i = 1u8;
    while priv_out.len() % 8 != 0 {
        priv_out.push(i);
        i = i.wrapping_add(1);
    }
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out);
    w.raw(MAGIC).string(cipher).string(kdf).string(kdf_opts).u32(nkeys).string(public);
    w.string(&priv_out);
    let b64 = Base64::encode_string(&out);
    let mut pem = String::from(BEGIN);
    pem.push('\n');
    for chunk in b64.as_bytes().chunks(70) {
        pem.push_str(std::str::from_utf8(chunk).ok()?);
        pem.push('\n');
    }
    pem.push_str(END);
    pem.push('\n');
    Some(pem)
}
