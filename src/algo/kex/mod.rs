//! Key exchange math, pure and run on the crypto pool. STUB API: to be implemented.
//!
//! The *flow* (which message carries what, when) lives in `transport::kex`; this module only
//! computes: ephemeral keys, validated shared secrets, the exchange hash and key expansion.

pub mod derive;
pub mod dh;
pub mod gex;
pub mod hash;

use crate::algo::HashAlg;
use std::fmt;

/// What kind of exchange a KEX method is; decides the message flow in the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KexMethod {
    /// X25519 (curve25519-sha256, curve25519-sha256@libssh.org). RFC 8731.
    Curve25519,
    /// ECDH on a NIST curve (RFC 5656).
    EcdhP256,
    EcdhP384,
    EcdhP521,
    /// Fixed-group Diffie-Hellman (RFC 4253 §8, RFC 8268).
    Dh(&'static dh::DhGroup),
    /// Group exchange (RFC 4419): the group is chosen per connection.
    Gex,
    /// sntrup761 + X25519 hybrid (sntrup761x25519-sha512[@openssh.com]).
    Sntrup761X25519,
    /// ML-KEM-768 + X25519 hybrid (mlkem768x25519-sha256).
    MlKem768X25519,
}

/// Static description of a KEX method, as listed in KEXINIT.
#[derive(Debug)]
pub struct KexAlg {
    pub name: &'static str,
    pub hash: HashAlg,
    pub method: KexMethod,
}

/// All KEX methods we implement, in default preference order (OpenSSH 9.9's), including the ones
/// that are off by default (group1-sha1, group14-sha1, gex-sha1).
pub static ALL: &[&KexAlg] = &[];

/// Names in [`ALL`] that are not offered unless enabled explicitly.
pub static OFF_BY_DEFAULT: &[&str] =
    &["diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1", "diffie-hellman-group-exchange-sha1"];

pub fn by_name(name: &str) -> Option<&'static KexAlg> {
    ALL.iter().copied().find(|k| k.name == name)
}

/// The shared secret K and how the exchange hash and key derivation encode it: an `mpint` for
/// DH and ECDH, a `string` for the post-quantum hybrids.
pub struct SharedSecret {
    pub bytes: Vec<u8>,
    pub as_string: bool,
}

impl SharedSecret {
    /// Appends K in its wire encoding (mpint or string) to `out`.
    pub fn encode(&self, _out: &mut Vec<u8>) {
        todo!()
    }
}

/// Why a key exchange computation failed. All are DISCONNECT 3 (KEY_EXCHANGE_FAILED).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KexError {
    /// The peer's public value has the wrong length for the method.
    BadPublicLength { expected: usize, got: usize },
    /// DH e or f outside 1 < x < p-1.
    DhValueOutOfRange,
    /// Not a valid point on the curve (or the identity).
    InvalidPoint,
    /// X25519 produced the all-zero output (small-order peer key).
    AllZeroSecret,
    /// KEM ciphertext or key rejected.
    InvalidKem,
    /// Our own crypto library failed.
    Internal(&'static str),
}

impl fmt::Display for KexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KexError::BadPublicLength { expected, got } => {
                write!(f, "public value of {got} bytes, expected {expected}")
            }
            KexError::DhValueOutOfRange => write!(f, "DH public value out of range"),
            KexError::InvalidPoint => write!(f, "invalid elliptic curve point"),
            KexError::AllZeroSecret => write!(f, "X25519 shared secret is all zero"),
            KexError::InvalidKem => write!(f, "invalid KEM value"),
            KexError::Internal(s) => write!(f, "internal crypto error: {s}"),
        }
    }
}

/// Server side of every method: validate the client's public value (e, Q_C, or the hybrid
/// init), generate our ephemeral, return (our public value f / Q_S / hybrid reply, K).
/// For `Dh` and `Gex` pass the group in `group`; for the others it is ignored.
pub fn server_agree(
    _method: KexMethod,
    _group: Option<&dh::DhGroup>,
    _client_public: &[u8],
) -> Result<(Vec<u8>, SharedSecret), KexError> {
    todo!()
}

/// Client side ephemeral: holds the secret between our init and the server's reply.
pub struct ClientEphemeral {}

impl ClientEphemeral {
    /// Generates our ephemeral for `method` (with `group` for DH / GEX).
    pub fn generate(_method: KexMethod, _group: Option<&dh::DhGroup>) -> Result<Self, KexError> {
        todo!()
    }

    /// Our public value to send (e, Q_C, or the hybrid client init).
    pub fn public(&self) -> &[u8] {
        todo!()
    }

    /// Validates the server's public value and computes K.
    pub fn agree(self, _server_public: &[u8]) -> Result<SharedSecret, KexError> {
        todo!()
    }
}
