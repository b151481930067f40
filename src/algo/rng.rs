//! Bridges from the core's [`Rng`] to the RNG interfaces of the crypto libraries, so every random
//! byte a connection uses (cookies, padding, ephemeral keys, signature nonces) comes from the RNG
//! the transport was built with: the OS CSPRNG in production, a seeded one in tests and fuzzing.
//!
//! Crypto jobs run on the pool, away from the connection's RNG, so each job carries a
//! [`JobRng`]: ChaCha20 keyed with 32 bytes drawn from the connection's RNG as the job leaves the
//! transport. With [`super::SystemRng`] behind it that is a CSPRNG seeded from the OS.

use super::Rng;
use rand_chacha::rand_core::SeedableRng;

/// The per-job generator (ChaCha20, seeded from the connection's RNG).
pub struct JobRng(rand_chacha::ChaCha20Rng);

impl JobRng {
    /// Seeds a new generator with 32 bytes from `from`.
    pub fn seeded_from(from: &mut dyn Rng) -> Self {
        let mut seed = [0u8; 32];
        from.fill(&mut seed);
        Self::from_seed(seed)
    }

    /// A generator from a seed drawn earlier (a job carries 32 bytes, not the ChaCha state).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        JobRng(rand_chacha::ChaCha20Rng::from_seed(seed))
    }
}

impl Rng for JobRng {
    fn fill(&mut self, out: &mut [u8]) {
        rand_core::RngCore::fill_bytes(&mut self.0, out);
    }
}

impl std::fmt::Debug for JobRng {
    /// Never prints the state.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JobRng")
    }
}

/// `rand_core` view of any [`Rng`], for RustCrypto APIs (ML-KEM, P-521, RSA blinding). Marked
/// `CryptoRng` because the RNGs the core is built with in production are; a test RNG behind it
/// is as weak as it is anywhere else.
pub struct RandCore<'a>(pub &'a mut dyn Rng);

impl rand_core::RngCore for RandCore<'_> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for RandCore<'_> {}

/// Runs `f` with a `ring` RNG that hands out `len` bytes drawn from `rng`. ring's `SecureRandom`
/// is sealed; its fixed-slice generator (a hidden, deprecated API of ring 0.17, pinned by
/// Cargo.lock) is the one way to feed it our bytes. It panics on a fill of another length, so
/// `len` must be exactly what ring asks for: 32 for X25519 and P-256 keys, 48 for P-384 keys,
/// 32 / 80 for ECDSA P-256 / P-384 nonces (`algo::rng::tests` pins each one). ring repeats a
/// fill when it draws an out-of-range scalar (odds below 2^-32); it then gets the same bytes,
/// fails, and the caller draws fresh ones.
pub fn with_ring_rng<T>(
    rng: &mut dyn Rng,
    len: usize,
    f: impl FnOnce(&dyn ring::rand::SecureRandom) -> T,
) -> T {
    let mut bytes = [0u8; MAX_RING_FILL];
    let bytes = bytes.get_mut(..len.min(MAX_RING_FILL)).unwrap_or_default();
    rng.fill(bytes);
    #[allow(deprecated)]
    let ring_rng = ring::test::rand::FixedSliceRandom { bytes };
    f(&ring_rng)
}

/// Longest single fill ring asks for in our uses (an ECDSA P-384 nonce: SHA-384's block minus
/// its output, 128 - 48).
const MAX_RING_FILL: usize = 80;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algo::TestRng;
    use ring::agreement;

    /// The fill lengths `with_ring_rng` callers pass are the ones ring asks for (it panics
    /// otherwise), and the output depends only on our RNG.
    #[test]
    fn ring_fills_have_the_lengths_we_pass() {
        for (alg, len) in
            [(&agreement::X25519, 32), (&agreement::ECDH_P256, 32), (&agreement::ECDH_P384, 48)]
        {
            let public = |seed| {
                with_ring_rng(&mut TestRng(seed), len, |r| {
                    let k = agreement::EphemeralPrivateKey::generate(alg, r).unwrap();
                    k.compute_public_key().unwrap().as_ref().to_vec()
                })
            };
            assert_eq!(public(1), public(1));
            assert_ne!(public(1), public(2));
        }
    }

    #[test]
    fn job_rng_is_seeded_from_the_core_rng() {
        let draw = |seed| {
            let mut j = JobRng::seeded_from(&mut TestRng(seed));
            let mut b = [0u8; 40];
            j.fill(&mut b);
            b
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }
}
