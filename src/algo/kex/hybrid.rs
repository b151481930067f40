//! Post-quantum hybrids: a KEM combined with X25519 (OpenSSH's kexsntrup761x25519.c and
//! kexmlkem768x25519.c, draft-ietf-sshm-mlkem-hybrid-kex).
//!
//! Client init = KEM public key || X25519 public; server reply = KEM ciphertext || X25519 public;
//! K = HASH(kem_shared || x25519_shared), sent as a `string` (not an mpint). Lengths are exact.

use super::ecdh::{x25519_agree, x25519_generate};
use super::KexError;
use crate::algo::{RandCore, Rng};
use ml_kem::kem::{Decapsulate, Encapsulate};
use ml_kem::{EncodedSizeUser, KemCore, MlKem768};
use ring::digest;

/// Which KEM is paired with X25519.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kem {
    Sntrup761,
    MlKem768,
}

const X25519_LEN: usize = 32;
/// ML-KEM-768 encapsulation key and ciphertext (FIPS 203 table 3).
pub const MLKEM768_PUBLIC_LEN: usize = 1184;
pub const MLKEM768_CIPHERTEXT_LEN: usize = 1088;

impl Kem {
    /// Length of the client's init value (KEM public key || X25519 public).
    pub fn client_len(self) -> usize {
        X25519_LEN
            + match self {
                Kem::Sntrup761 => sntrup761::PUBLIC_KEY_SIZE,
                Kem::MlKem768 => MLKEM768_PUBLIC_LEN,
            }
    }

    /// Length of the server's reply (KEM ciphertext || X25519 public).
    pub fn server_len(self) -> usize {
        X25519_LEN
            + match self {
                Kem::Sntrup761 => sntrup761::CIPHERTEXT_SIZE,
                Kem::MlKem768 => MLKEM768_CIPHERTEXT_LEN,
            }
    }

    fn hash(self) -> &'static digest::Algorithm {
        match self {
            Kem::Sntrup761 => &digest::SHA512,
            Kem::MlKem768 => &digest::SHA256,
        }
    }

    /// K = HASH(kem_shared || x25519_shared): the bytes that are then encoded as a `string`.
    pub fn combine(self, kem_shared: &[u8], x25519_shared: &[u8]) -> Vec<u8> {
        let mut ctx = digest::Context::new(self.hash());
        ctx.update(kem_shared);
        ctx.update(x25519_shared);
        ctx.finish().as_ref().to_vec()
    }
}

/// Server side: encapsulate to the client's KEM key, X25519 with its share; returns
/// (reply, K bytes).
pub(crate) fn server_agree(
    kem: Kem,
    client: &[u8],
    rng: &mut dyn Rng,
) -> Result<(Vec<u8>, Vec<u8>), KexError> {
    let expected = kem.client_len();
    if client.len() != expected {
        return Err(KexError::BadPublicLength { expected, got: client.len() });
    }
    let split = expected - X25519_LEN;
    let (kem_pub, x_pub) = client.split_at(split);
    let (ciphertext, kem_shared) = match kem {
        Kem::Sntrup761 => {
            let ek =
                sntrup761::EncapsulationKey::try_from(kem_pub).map_err(|_| KexError::InvalidKem)?;
            let mut seed = [0u8; 32];
            rng.fill(&mut seed);
            let (ct, ss) = ek.encapsulate_deterministic(seed);
            (ct.as_ref().to_vec(), ss.as_ref().to_vec())
        }
        Kem::MlKem768 => {
            mlkem768_check_public(kem_pub)?;
            let enc = ml_kem::Encoded::<<MlKem768 as KemCore>::EncapsulationKey>::try_from(kem_pub)
                .map_err(|_| KexError::InvalidKem)?;
            let ek = <MlKem768 as KemCore>::EncapsulationKey::from_bytes(&enc);
            let (ct, ss) =
                ek.encapsulate(&mut RandCore(&mut *rng)).map_err(|_| KexError::InvalidKem)?;
            (ct.as_slice().to_vec(), ss.as_slice().to_vec())
        }
    };
    let (secret, our_x) = x25519_generate(rng)?;
    let x_shared = x25519_agree(secret, x_pub)?;
    let mut reply = ciphertext;
    reply.extend_from_slice(&our_x);
    Ok((reply, kem.combine(&kem_shared, &x_shared)))
}

/// FIPS 203 §7.2 input check (what OpenSSH's libcrux `validate_public_key` does): every 12-bit
/// coefficient of the encoded vector must be reduced mod q = 3329.
fn mlkem768_check_public(kem_pub: &[u8]) -> Result<(), KexError> {
    const Q: u16 = 3329;
    let t = kem_pub.get(..MLKEM768_PUBLIC_LEN - 32).ok_or(KexError::InvalidKem)?;
    for c in t.chunks_exact(3) {
        if let [a, b, d] = *c {
            let lo = u16::from(a) | (u16::from(b & 0x0f) << 8);
            let hi = u16::from(b >> 4) | (u16::from(d) << 4);
            if lo >= Q || hi >= Q {
                return Err(KexError::InvalidKem);
            }
        }
    }
    Ok(())
}

/// Client side KEM secret held until the server's reply.
pub(crate) enum KemSecret {
    Sntrup761(Box<sntrup761::DecapsulationKey>),
    MlKem768(Box<<MlKem768 as KemCore>::DecapsulationKey>),
}

pub(crate) struct HybridClient {
    kem: KemSecret,
    x25519: ring::agreement::EphemeralPrivateKey,
    public: Vec<u8>,
}

impl HybridClient {
    pub(crate) fn generate(kem: Kem, rng: &mut dyn Rng) -> Result<Self, KexError> {
        let (kem, mut public) = match kem {
            Kem::Sntrup761 => {
                let mut seed = [0u8; 32];
                rng.fill(&mut seed);
                let (ek, dk) = sntrup761::generate_key_from_seed(seed);
                (KemSecret::Sntrup761(Box::new(dk)), ek.as_ref().to_vec())
            }
            Kem::MlKem768 => {
                let (dk, ek) = MlKem768::generate(&mut RandCore(&mut *rng));
                (KemSecret::MlKem768(Box::new(dk)), ek.as_bytes().as_slice().to_vec())
            }
        };
        let (x25519, x_pub) = x25519_generate(rng)?;
        public.extend_from_slice(&x_pub);
        Ok(HybridClient { kem, x25519, public })
    }

    pub(crate) fn public(&self) -> &[u8] {
        &self.public
    }

    pub(crate) fn agree(self, server: &[u8]) -> Result<Vec<u8>, KexError> {
        let kind = match self.kem {
            KemSecret::Sntrup761(_) => Kem::Sntrup761,
            KemSecret::MlKem768(_) => Kem::MlKem768,
        };
        let expected = kind.server_len();
        if server.len() != expected {
            return Err(KexError::BadPublicLength { expected, got: server.len() });
        }
        let (ct, x_pub) = server.split_at(expected - X25519_LEN);
        let kem_shared = match &self.kem {
            KemSecret::Sntrup761(dk) => {
                let ct = sntrup761::Ciphertext::try_from(ct).map_err(|_| KexError::InvalidKem)?;
                dk.decapsulate(&ct).as_ref().to_vec()
            }
            KemSecret::MlKem768(dk) => {
                let ct = ml_kem::Ciphertext::<MlKem768>::try_from(ct)
                    .map_err(|_| KexError::InvalidKem)?;
                dk.decapsulate(&ct).map_err(|_| KexError::InvalidKem)?.as_slice().to_vec()
            }
        };
        let x_shared = x25519_agree(self.x25519, x_pub)?;
        Ok(kind.combine(&kem_shared, &x_shared))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_match_the_spec() {
        assert_eq!(Kem::Sntrup761.client_len(), 1158 + 32);
        assert_eq!(Kem::Sntrup761.server_len(), 1039 + 32);
        assert_eq!(Kem::MlKem768.client_len(), 1184 + 32);
        assert_eq!(Kem::MlKem768.server_len(), 1088 + 32);
    }

    #[test]
    fn round_trip_and_bad_lengths() {
        for kem in [Kem::Sntrup761, Kem::MlKem768] {
            let c = HybridClient::generate(kem, &mut crate::algo::SystemRng).unwrap();
            assert_eq!(c.public().len(), kem.client_len());
            let (reply, k) = server_agree(kem, c.public(), &mut crate::algo::SystemRng).unwrap();
            assert_eq!(reply.len(), kem.server_len());
            assert_eq!(k.len(), if kem == Kem::Sntrup761 { 64 } else { 32 });
            let client_pub = c.public().to_vec();
            assert_eq!(c.agree(&reply).unwrap(), k);

            let short = &client_pub[..client_pub.len() - 1];
            assert_eq!(
                server_agree(kem, short, &mut crate::algo::SystemRng),
                Err(KexError::BadPublicLength { expected: kem.client_len(), got: short.len() })
            );
            let c = HybridClient::generate(kem, &mut crate::algo::SystemRng).unwrap();
            let mut long = reply.clone();
            long.push(0);
            assert_eq!(
                c.agree(&long),
                Err(KexError::BadPublicLength { expected: kem.server_len(), got: long.len() })
            );
        }
    }

    #[test]
    fn all_zero_x25519_share_is_refused() {
        for kem in [Kem::Sntrup761, Kem::MlKem768] {
            let c = HybridClient::generate(kem, &mut crate::algo::SystemRng).unwrap();
            let mut bad = c.public().to_vec();
            let n = bad.len();
            bad[n - 32..].fill(0);
            assert_eq!(
                server_agree(kem, &bad, &mut crate::algo::SystemRng),
                Err(KexError::AllZeroSecret)
            );
        }
    }

    #[test]
    fn unreduced_mlkem_key_is_refused() {
        let c = HybridClient::generate(Kem::MlKem768, &mut crate::algo::SystemRng).unwrap();
        let mut bad = c.public().to_vec();
        bad[0] = 0xff;
        bad[1] |= 0x0f; // first coefficient = 0xfff > q
        assert_eq!(
            server_agree(Kem::MlKem768, &bad, &mut crate::algo::SystemRng),
            Err(KexError::InvalidKem)
        );
    }
}
