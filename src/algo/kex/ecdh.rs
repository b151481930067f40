//! Elliptic-curve Diffie-Hellman: X25519 (RFC 8731) and the NIST curves (RFC 5656 §4).
//!
//! Public values are Q_C / Q_S as sent: 32 raw bytes for X25519, SEC1 uncompressed points
//! (0x04 || x || y) for P-256/384/521. K is the x-coordinate (the X25519 output), encoded later
//! as an mpint.

use super::KexError;
use crate::algo::rng::{with_ring_rng, RandCore};
use crate::algo::Rng;
use ring::agreement;

/// Which curve; decides lengths and the library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    X25519,
    P256,
    P384,
    P521,
}

impl Curve {
    /// Length of a public value on the wire.
    pub fn public_len(self) -> usize {
        match self {
            Curve::X25519 => 32,
            Curve::P256 => 65,
            Curve::P384 => 97,
            Curve::P521 => 133,
        }
    }

    /// Bytes ring draws for a private key on this curve (see `algo::rng::with_ring_rng`).
    fn ring_seed_len(self) -> usize {
        if self == Curve::P384 {
            48
        } else {
            32
        }
    }

    fn ring_alg(self) -> Option<&'static agreement::Algorithm> {
        match self {
            Curve::X25519 => Some(&agreement::X25519),
            Curve::P256 => Some(&agreement::ECDH_P256),
            Curve::P384 => Some(&agreement::ECDH_P384),
            Curve::P521 => None,
        }
    }
}

/// An ephemeral ECDH secret with its public value.
pub(crate) enum EcdhKeyPair {
    /// ring covers X25519, P-256 and P-384.
    Ring { curve: Curve, secret: agreement::EphemeralPrivateKey, public: Vec<u8> },
    /// ring has no P-521; RustCrypto's `p521` does.
    P521 { secret: p521::ecdh::EphemeralSecret, public: Vec<u8> },
}

impl EcdhKeyPair {
    pub(crate) fn generate(curve: Curve, rng: &mut dyn Rng) -> Result<Self, KexError> {
        match curve.ring_alg() {
            Some(alg) => {
                let secret = ring_ephemeral(alg, curve.ring_seed_len(), rng)
                    .ok_or(KexError::Internal("ECDH key generation"))?;
                let public = secret
                    .compute_public_key()
                    .map_err(|_| KexError::Internal("ECDH public key"))?
                    .as_ref()
                    .to_vec();
                Ok(EcdhKeyPair::Ring { curve, secret, public })
            }
            None => {
                let secret = p521::ecdh::EphemeralSecret::random(&mut RandCore(rng));
                let point = p521::EncodedPoint::from(secret.public_key());
                let public = point.as_bytes().to_vec();
                Ok(EcdhKeyPair::P521 { secret, public })
            }
        }
    }

    pub(crate) fn public(&self) -> &[u8] {
        match self {
            EcdhKeyPair::Ring { public, .. } | EcdhKeyPair::P521 { public, .. } => public,
        }
    }

    /// Validates the peer's point and returns the raw shared secret (x-coordinate).
    pub(crate) fn agree(self, peer: &[u8]) -> Result<Vec<u8>, KexError> {
        match self {
            EcdhKeyPair::Ring { curve, secret, .. } => {
                check_len(curve, peer)?;
                let alg = curve.ring_alg().ok_or(KexError::Internal("curve"))?;
                let peer = agreement::UnparsedPublicKey::new(alg, peer);
                agreement::agree_ephemeral(secret, &peer, |k| k.to_vec()).map_err(|_| {
                    // For X25519 the only failure ring reports is the all-zero output of a
                    // small-order point (RFC 7748 §6.1); for the NIST curves it is a point that
                    // is not on the curve.
                    if curve == Curve::X25519 {
                        KexError::AllZeroSecret
                    } else {
                        KexError::InvalidPoint
                    }
                })
            }
            EcdhKeyPair::P521 { secret, .. } => {
                let pk = p521_public(peer)?;
                Ok(secret.diffie_hellman(&pk).raw_secret_bytes().to_vec())
            }
        }
    }
}

fn check_len(curve: Curve, peer: &[u8]) -> Result<(), KexError> {
    let expected = curve.public_len();
    if peer.len() != expected {
        return Err(KexError::BadPublicLength { expected, got: peer.len() });
    }
    Ok(())
}

/// Parses an uncompressed P-521 point; `from_sec1_bytes` checks it lies on the curve.
pub(crate) fn p521_public(peer: &[u8]) -> Result<p521::PublicKey, KexError> {
    check_len(Curve::P521, peer)?;
    if peer.first() != Some(&0x04) {
        return Err(KexError::InvalidPoint);
    }
    p521::PublicKey::from_sec1_bytes(peer).map_err(|_| KexError::InvalidPoint)
}

/// X25519 with our ephemeral, for the hybrids: the raw 32-byte output, all-zero refused.
pub(crate) fn x25519_agree(
    secret: agreement::EphemeralPrivateKey,
    peer: &[u8],
) -> Result<Vec<u8>, KexError> {
    check_len(Curve::X25519, peer)?;
    let peer = agreement::UnparsedPublicKey::new(&agreement::X25519, peer);
    agreement::agree_ephemeral(secret, &peer, |k| k.to_vec()).map_err(|_| KexError::AllZeroSecret)
}

/// A ring ephemeral from `rng`'s bytes. A P-256/P-384 draw at or above the group order is
/// refused by ring (odds below 2^-32); then fresh bytes are drawn.
fn ring_ephemeral(
    alg: &'static agreement::Algorithm,
    seed_len: usize,
    rng: &mut dyn Rng,
) -> Option<agreement::EphemeralPrivateKey> {
    (0..4).find_map(|_| {
        with_ring_rng(rng, seed_len, |r| agreement::EphemeralPrivateKey::generate(alg, r).ok())
    })
}

/// A fresh X25519 ephemeral and its public value, for the hybrids.
pub(crate) fn x25519_generate(
    rng: &mut dyn Rng,
) -> Result<(agreement::EphemeralPrivateKey, [u8; 32]), KexError> {
    let secret = ring_ephemeral(&agreement::X25519, 32, rng)
        .ok_or(KexError::Internal("X25519 key generation"))?;
    let public = secret.compute_public_key().map_err(|_| KexError::Internal("X25519 public"))?;
    let mut out = [0u8; 32];
    if public.as_ref().len() != 32 {
        return Err(KexError::Internal("X25519 public length"));
    }
    out.copy_from_slice(public.as_ref());
    Ok((secret, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_curve_agrees() {
        for curve in [Curve::X25519, Curve::P256, Curve::P384, Curve::P521] {
            let a = EcdhKeyPair::generate(curve, &mut crate::algo::SystemRng).unwrap();
            let b = EcdhKeyPair::generate(curve, &mut crate::algo::SystemRng).unwrap();
            assert_eq!(a.public().len(), curve.public_len());
            let (pa, pb) = (a.public().to_vec(), b.public().to_vec());
            assert_eq!(a.agree(&pb).unwrap(), b.agree(&pa).unwrap(), "{curve:?}");
        }
    }

    #[test]
    fn wrong_lengths_are_refused() {
        for curve in [Curve::X25519, Curve::P256, Curve::P384, Curve::P521] {
            let n = curve.public_len();
            for len in [0, 1, n - 1, n + 1] {
                let a = EcdhKeyPair::generate(curve, &mut crate::algo::SystemRng).unwrap();
                assert_eq!(
                    a.agree(&vec![4u8; len]),
                    Err(KexError::BadPublicLength { expected: n, got: len })
                );
            }
        }
    }

    #[test]
    fn x25519_small_order_points_give_all_zero() {
        // The zero point and the point of order 1 (u = 1) produce an all-zero output.
        let mut one = [0u8; 32];
        one[0] = 1;
        for peer in [[0u8; 32], one] {
            let a = EcdhKeyPair::generate(Curve::X25519, &mut crate::algo::SystemRng).unwrap();
            assert_eq!(a.agree(&peer), Err(KexError::AllZeroSecret));
            let (s, _) = x25519_generate(&mut crate::algo::SystemRng).unwrap();
            assert_eq!(x25519_agree(s, &peer), Err(KexError::AllZeroSecret));
        }
    }

    #[test]
    fn points_off_the_curve_are_refused() {
        for curve in [Curve::P256, Curve::P384, Curve::P521] {
            let b = EcdhKeyPair::generate(curve, &mut crate::algo::SystemRng).unwrap();
            let mut bad = b.public().to_vec();
            let last = bad.len() - 1;
            bad[last] ^= 1; // y no longer matches x
            let a = EcdhKeyPair::generate(curve, &mut crate::algo::SystemRng).unwrap();
            assert_eq!(a.agree(&bad), Err(KexError::InvalidPoint), "{curve:?}");
            // Compressed or identity encodings are not what RFC 5656 sends.
            let mut compressed = b.public().to_vec();
            compressed[0] = 0x02;
            let a = EcdhKeyPair::generate(curve, &mut crate::algo::SystemRng).unwrap();
            assert_eq!(a.agree(&compressed), Err(KexError::InvalidPoint), "{curve:?}");
        }
    }
}
