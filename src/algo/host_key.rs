//! Host key algorithms: signing (server) and verification (client, and publickey auth), in the
//! SSH wire formats (RFC 4253 §6.6, RFC 5656 §3.1, RFC 8332, RFC 8709). STUB API.

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
pub struct HostKeyPair {}

impl HostKeyPair {
    /// Parses an OpenSSH private key file (unencrypted) with `ssh-key`.
    pub fn from_openssh(_text: &str) -> Result<Self, HostKeyError> {
        todo!()
    }

    /// Generates a new key; returns it and its OpenSSH private key file text.
    pub fn generate(_kind: KeyKind) -> Result<(Self, String), HostKeyError> {
        todo!()
    }

    /// The public key blob (K_S), as in RFC 4253 §6.6.
    pub fn public_blob(&self) -> &[u8] {
        todo!()
    }

    /// Signature algorithms this key can serve (an RSA key serves three).
    pub fn algorithms(&self) -> &'static [HostKeyAlg] {
        todo!()
    }

    /// Signs `data` (the exchange hash H) and returns the SSH signature blob
    /// (string algorithm name, string signature).
    pub fn sign(&self, _alg: HostKeyAlg, _data: &[u8]) -> Result<Vec<u8>, HostKeyError> {
        todo!()
    }

    /// `SHA256:…` fingerprint as OpenSSH prints it.
    pub fn fingerprint(&self) -> String {
        todo!()
    }
}

/// Verifies an SSH signature blob over `data` with the public key blob, for algorithm `alg`.
pub fn verify(
    _alg: HostKeyAlg,
    _public_blob: &[u8],
    _data: &[u8],
    _signature_blob: &[u8],
) -> Result<(), VerifyError> {
    todo!()
}
