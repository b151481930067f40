//! The algorithm registry: names as spelled on the wire ↔ implementations, and negotiation
//! (RFC 4253 §7.1).
//!
//! Every family is a static table in our preference order; adding an algorithm is one file and
//! one table entry. Randomness comes through [`Rng`] so tests and fuzzing can make it
//! deterministic.

pub mod cipher;
pub mod host_key;
pub mod kex;
pub mod mac;
pub mod negotiate;
pub mod rng;

pub use rng::{JobRng, RandCore};

/// Source of randomness for cookies, padding and the like.
pub trait Rng: Send {
    fn fill(&mut self, out: &mut [u8]);
}

/// The operating system's CSPRNG (getrandom via ring).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRng;

impl Rng for SystemRng {
    fn fill(&mut self, out: &mut [u8]) {
        use ring::rand::SecureRandom;
        // ring's SystemRandom only fails if the OS has no entropy source at all; then we have
        // nothing safe to do but stop.
        if ring::rand::SystemRandom::new().fill(out).is_err() {
            std::process::abort();
        }
    }
}

/// A deterministic, NOT secure generator for tests, simulations and fuzzing (splitmix64).
#[derive(Debug, Clone)]
pub struct TestRng(pub u64);

impl Rng for TestRng {
    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            let b = z.to_le_bytes();
            chunk.copy_from_slice(b.get(..chunk.len()).unwrap_or(&b));
        }
    }
}

/// Hash function of a key exchange method (RFC 4253 §7.2, RFC 5656 §6.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    pub fn ring(self) -> &'static ring::digest::Algorithm {
        match self {
            HashAlg::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            HashAlg::Sha256 => &ring::digest::SHA256,
            HashAlg::Sha384 => &ring::digest::SHA384,
            HashAlg::Sha512 => &ring::digest::SHA512,
        }
    }

    pub fn output_len(self) -> usize {
        self.ring().output_len()
    }
}
