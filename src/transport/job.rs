//! Crypto jobs: the expensive part of a key exchange (ephemeral key, shared secret, exchange
//! hash, host-key signature), packaged so the runtime can run it on the rayon pool.
//!
//! A job owns everything it needs (no reference to the connection) and is `Send`; its result
//! goes back into the connection that asked, which the runtime identifies by (worker, key,
//! generation) — the job itself does not know.

/// A unit of work for the crypto pool. STUB.
pub struct CryptoJob {}

impl CryptoJob {
    /// Runs the computation (on a pool thread).
    pub fn run(self) -> JobDone {
        todo!()
    }

    /// The KEX method name (for per-method histograms), e.g. `curve25519-sha256`.
    pub fn label(&self) -> &'static str {
        todo!()
    }
}

/// The result of a [`CryptoJob`], fed back with `handle_job_done`. STUB.
pub struct JobDone {}

impl JobDone {
    pub fn label(&self) -> &'static str {
        todo!()
    }
}
