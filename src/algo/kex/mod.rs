//! Key exchange math, pure and run on the crypto pool.
//!
//! The *flow* (which message carries what, when) lives in `transport::kex`; this module only
//! computes: ephemeral keys, validated shared secrets, the exchange hash and key expansion.

pub mod derive;
pub mod dh;
pub mod ecdh;
pub mod gex;
pub mod hash;
pub mod hybrid;
#[cfg(feature = "fuzzing")]
mod stand_in;

use crate::algo::{HashAlg, Rng};
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
pub static ALL: &[&KexAlg] = &[
    &KexAlg {
        name: "mlkem768x25519-sha256",
        hash: HashAlg::Sha256,
        method: KexMethod::MlKem768X25519,
    },
    &KexAlg {
        name: "sntrup761x25519-sha512",
        hash: HashAlg::Sha512,
        method: KexMethod::Sntrup761X25519,
    },
    &KexAlg {
        name: "sntrup761x25519-sha512@openssh.com",
        hash: HashAlg::Sha512,
        method: KexMethod::Sntrup761X25519,
    },
    &KexAlg { name: "curve25519-sha256", hash: HashAlg::Sha256, method: KexMethod::Curve25519 },
    &KexAlg {
        name: "curve25519-sha256@libssh.org",
        hash: HashAlg::Sha256,
        method: KexMethod::Curve25519,
    },
    &KexAlg { name: "ecdh-sha2-nistp256", hash: HashAlg::Sha256, method: KexMethod::EcdhP256 },
    &KexAlg { name: "ecdh-sha2-nistp384", hash: HashAlg::Sha384, method: KexMethod::EcdhP384 },
    &KexAlg { name: "ecdh-sha2-nistp521", hash: HashAlg::Sha512, method: KexMethod::EcdhP521 },
    &KexAlg {
        name: "diffie-hellman-group-exchange-sha256",
        hash: HashAlg::Sha256,
        method: KexMethod::Gex,
    },
    &KexAlg {
        name: "diffie-hellman-group16-sha512",
        hash: HashAlg::Sha512,
        method: KexMethod::Dh(&dh::GROUP16),
    },
    &KexAlg {
        name: "diffie-hellman-group18-sha512",
        hash: HashAlg::Sha512,
        method: KexMethod::Dh(&dh::GROUP18),
    },
    &KexAlg {
        name: "diffie-hellman-group14-sha256",
        hash: HashAlg::Sha256,
        method: KexMethod::Dh(&dh::GROUP14),
    },
    &KexAlg {
        name: "diffie-hellman-group14-sha1",
        hash: HashAlg::Sha1,
        method: KexMethod::Dh(&dh::GROUP14),
    },
    &KexAlg {
        name: "diffie-hellman-group1-sha1",
        hash: HashAlg::Sha1,
        method: KexMethod::Dh(&dh::GROUP1),
    },
    &KexAlg {
        name: "diffie-hellman-group-exchange-sha1",
        hash: HashAlg::Sha1,
        method: KexMethod::Gex,
    },
];

/// Names in [`ALL`] that are not offered unless enabled explicitly.
pub static OFF_BY_DEFAULT: &[&str] = &[
    "diffie-hellman-group1-sha1",
    "diffie-hellman-group14-sha1",
    "diffie-hellman-group-exchange-sha1",
];

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
    pub fn encode(&self, out: &mut Vec<u8>) {
        if self.as_string {
            crate::wire::Writer::new(out).string(&self.bytes);
        } else {
            crate::wire::write_mpint_bytes(out, &self.bytes);
        }
    }

    /// K in its wire encoding, as [`hash::exchange_hash`] and [`derive::derive_key`] take it.
    pub fn encoded(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bytes.len() + 5);
        self.encode(&mut out);
        out
    }

    fn mpint(bytes: Vec<u8>) -> Self {
        SharedSecret { bytes, as_string: false }
    }

    fn string(bytes: Vec<u8>) -> Self {
        SharedSecret { bytes, as_string: true }
    }
}

impl fmt::Debug for SharedSecret {
    /// Never prints the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedSecret({} bytes, as_string: {})", self.bytes.len(), self.as_string)
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
///
/// DH values (e in, f out) are big-endian magnitudes as `wire::Reader::mpint_positive` returns
/// them; the transport writes f with `Writer::mpint`. Everything else is the raw `string`
/// contents.
#[cfg(not(feature = "fuzzing"))]
pub fn server_agree(
    method: KexMethod,
    group: Option<&dh::DhGroup>,
    client_public: &[u8],
    rng: &mut dyn Rng,
) -> Result<(Vec<u8>, SharedSecret), KexError> {
    match method {
        KexMethod::Dh(_) | KexMethod::Gex => {
            let group = dh_group(method, group)?;
            // Validate the client's value before the costly modpow for our own.
            dh::check_peer(group, client_public)?;
            let ours = dh::DhKeyPair::generate(group, rng)?;
            let k = ours.agree(client_public)?;
            Ok((ours.public().to_vec(), SharedSecret::mpint(k)))
        }
        KexMethod::Curve25519 | KexMethod::EcdhP256 | KexMethod::EcdhP384 | KexMethod::EcdhP521 => {
            let curve = curve_of(method).ok_or(KexError::Internal("curve"))?;
            let expected = curve.public_len();
            if client_public.len() != expected {
                return Err(KexError::BadPublicLength { expected, got: client_public.len() });
            }
            let ours = ecdh::EcdhKeyPair::generate(curve, rng)?;
            let public = ours.public().to_vec();
            let k = ours.agree(client_public)?;
            Ok((public, SharedSecret::mpint(k)))
        }
        KexMethod::Sntrup761X25519 => hybrid_server(hybrid::Kem::Sntrup761, client_public, rng),
        KexMethod::MlKem768X25519 => hybrid_server(hybrid::Kem::MlKem768, client_public, rng),
    }
}

/// Fuzzing stand-in for [`server_agree`]: the cheap checks, then fixed values (see `stand_in`).
#[cfg(feature = "fuzzing")]
pub fn server_agree(
    method: KexMethod,
    group: Option<&dh::DhGroup>,
    client_public: &[u8],
    _rng: &mut dyn Rng,
) -> Result<(Vec<u8>, SharedSecret), KexError> {
    stand_in::server_agree(method, group, client_public)
}

/// The cheap checks of [`server_agree`] alone (lengths, DH range), so the transport can refuse
/// a bad KEXDH_INIT / KEX_ECDH_INIT / GEX_INIT at once instead of queueing a crypto job for
/// it. Curve membership and KEM key validity are still checked by `server_agree`.
pub fn check_client_public(
    method: KexMethod,
    group: Option<&dh::DhGroup>,
    client_public: &[u8],
) -> Result<(), KexError> {
    let expected = match method {
        KexMethod::Dh(_) | KexMethod::Gex => {
            return dh::check_peer(dh_group(method, group)?, client_public)
        }
        KexMethod::Sntrup761X25519 => hybrid::Kem::Sntrup761.client_len(),
        KexMethod::MlKem768X25519 => hybrid::Kem::MlKem768.client_len(),
        _ => curve_of(method).ok_or(KexError::Internal("curve"))?.public_len(),
    };
    if client_public.len() != expected {
        return Err(KexError::BadPublicLength { expected, got: client_public.len() });
    }
    Ok(())
}

#[cfg(not(feature = "fuzzing"))]
fn hybrid_server(
    kem: hybrid::Kem,
    client: &[u8],
    rng: &mut dyn Rng,
) -> Result<(Vec<u8>, SharedSecret), KexError> {
    let (reply, k) = hybrid::server_agree(kem, client, rng)?;
    Ok((reply, SharedSecret::string(k)))
}

/// The group a DH method uses: fixed for `Dh`, the negotiated one for `Gex`.
fn dh_group(method: KexMethod, group: Option<&dh::DhGroup>) -> Result<&dh::DhGroup, KexError> {
    match (method, group) {
        (_, Some(g)) => Ok(g),
        (KexMethod::Dh(g), None) => Ok(g),
        _ => Err(KexError::Internal("group exchange without a group")),
    }
}

fn curve_of(method: KexMethod) -> Option<ecdh::Curve> {
    match method {
        KexMethod::Curve25519 => Some(ecdh::Curve::X25519),
        KexMethod::EcdhP256 => Some(ecdh::Curve::P256),
        KexMethod::EcdhP384 => Some(ecdh::Curve::P384),
        KexMethod::EcdhP521 => Some(ecdh::Curve::P521),
        _ => None,
    }
}

/// Client side ephemeral: holds the secret between our init and the server's reply.
pub struct ClientEphemeral {
    inner: ClientInner,
}

enum ClientInner {
    Dh(dh::DhKeyPair),
    Ecdh(ecdh::EcdhKeyPair),
    Hybrid(hybrid::HybridClient),
    /// Fuzzing stand-in: a fixed public value, a constant K.
    #[cfg(feature = "fuzzing")]
    StandIn {
        method: KexMethod,
        public: Vec<u8>,
    },
}

impl ClientEphemeral {
    /// Fuzzing stand-in: a fixed public value of the method's length (see `stand_in`).
    #[cfg(feature = "fuzzing")]
    pub fn generate(
        method: KexMethod,
        _group: Option<&dh::DhGroup>,
        _rng: &mut dyn Rng,
    ) -> Result<Self, KexError> {
        let public = stand_in::public_value(method, stand_in::Side::Client);
        Ok(ClientEphemeral { inner: ClientInner::StandIn { method, public } })
    }

    /// Generates our ephemeral for `method` (with `group` for DH / GEX).
    #[cfg(not(feature = "fuzzing"))]
    pub fn generate(
        method: KexMethod,
        group: Option<&dh::DhGroup>,
        rng: &mut dyn Rng,
    ) -> Result<Self, KexError> {
        let inner = match method {
            KexMethod::Dh(_) | KexMethod::Gex => {
                ClientInner::Dh(dh::DhKeyPair::generate(dh_group(method, group)?, rng)?)
            }
            KexMethod::Sntrup761X25519 => {
                ClientInner::Hybrid(hybrid::HybridClient::generate(hybrid::Kem::Sntrup761, rng)?)
            }
            KexMethod::MlKem768X25519 => {
                ClientInner::Hybrid(hybrid::HybridClient::generate(hybrid::Kem::MlKem768, rng)?)
            }
            _ => {
                let curve = curve_of(method).ok_or(KexError::Internal("curve"))?;
                ClientInner::Ecdh(ecdh::EcdhKeyPair::generate(curve, rng)?)
            }
        };
        Ok(ClientEphemeral { inner })
    }

    /// Our public value to send (e, Q_C, or the hybrid client init).
    pub fn public(&self) -> &[u8] {
        match &self.inner {
            ClientInner::Dh(k) => k.public(),
            ClientInner::Ecdh(k) => k.public(),
            ClientInner::Hybrid(k) => k.public(),
            #[cfg(feature = "fuzzing")]
            ClientInner::StandIn { public, .. } => public,
        }
    }

    /// Validates the server's public value and computes K.
    pub fn agree(self, server_public: &[u8]) -> Result<SharedSecret, KexError> {
        match self.inner {
            ClientInner::Dh(k) => k.agree(server_public).map(SharedSecret::mpint),
            ClientInner::Ecdh(k) => k.agree(server_public).map(SharedSecret::mpint),
            ClientInner::Hybrid(k) => k.agree(server_public).map(SharedSecret::string),
            #[cfg(feature = "fuzzing")]
            ClientInner::StandIn { method, .. } => stand_in::client_agree(method, server_public),
        }
    }
}

#[cfg(test)]
pub(crate) mod test_vectors;
#[cfg(test)]
mod tests;
