//! Crypto jobs: the expensive part of a key exchange (ephemeral key, shared secret, exchange
//! hash, host-key signature or its verification), packaged so the runtime can run it on the
//! rayon pool.
//!
//! A job owns everything it needs (no reference to the connection) and is `Send`; its result
//! goes back into the connection that asked, which the runtime identifies by (worker, key,
//! generation) — the job itself does not know.

use super::Error;
use crate::algo::host_key::{self, HostKeyAlg, HostKeyPair};
use crate::algo::kex::dh::DhGroup;
use crate::algo::kex::gex::GexRequest;
use crate::algo::kex::hash::{exchange_hash, HashInputs, HashMiddle};
use crate::algo::kex::{self, ClientEphemeral, KexMethod};
use crate::algo::{HashAlg, JobRng, Rng, SystemRng};
use std::sync::Arc;

/// A unit of work for the crypto pool.
pub struct CryptoJob {
    label: &'static str,
    kind: JobKind,
    /// Seed of the generator ephemeral keys and signature nonces come from; drawn from the
    /// connection's RNG by [`CryptoJob::seed_rng`] as the job leaves the transport.
    /// Boxed: the job moves through channels and stays under clippy's large-error bound.
    rng_seed: Option<Box<[u8; 32]>>,
}

pub(crate) enum JobKind {
    /// Server: agree on K with the client's value, hash, sign.
    ServerKex(Box<ServerKexJob>),
    /// Client: generate our ephemeral (DH modpow is the costly part).
    ClientGenerate { method: KexMethod, group: Option<DhGroup> },
    /// Client: agree on K with the server's value, hash, verify the server's signature.
    ClientFinish(Box<ClientFinishJob>),
}

/// Inputs shared by both roles' hash computations.
pub(crate) struct HashParts {
    pub hash: HashAlg,
    pub v_c: Vec<u8>,
    pub v_s: Vec<u8>,
    pub i_c: Vec<u8>,
    pub i_s: Vec<u8>,
    /// Group exchange: the request and the group, which enter H.
    pub gex: Option<(GexRequest, DhGroup)>,
}

pub(crate) struct ServerKexJob {
    pub method: KexMethod,
    pub group: Option<DhGroup>,
    pub client_public: Vec<u8>,
    pub parts: HashParts,
    pub host_key: Arc<HostKeyPair>,
    pub host_key_alg: HostKeyAlg,
}

pub(crate) struct ClientFinishJob {
    pub eph: ClientEphemeral,
    pub method: KexMethod,
    pub server_public: Vec<u8>,
    pub k_s: Vec<u8>,
    pub signature: Vec<u8>,
    pub parts: HashParts,
    pub host_key_alg: HostKeyAlg,
    /// When set, K_S must equal it.
    pub expected_host_key: Option<Arc<[u8]>>,
}

/// What a server KEX job produced.
pub(crate) struct ServerKexOut {
    pub server_public: Vec<u8>,
    pub k_encoded: Vec<u8>,
    pub h: Vec<u8>,
    pub k_s: Vec<u8>,
    pub signature: Vec<u8>,
}

/// What a client finish job produced.
pub(crate) struct ClientKexOut {
    pub k_encoded: Vec<u8>,
    pub h: Vec<u8>,
}

pub(crate) enum JobResult {
    ServerKex(Result<ServerKexOut, Error>),
    ClientGenerated(Result<ClientEphemeral, Error>),
    ClientFinished(Result<ClientKexOut, Error>),
}

impl CryptoJob {
    pub(crate) fn new(label: &'static str, kind: JobKind) -> Self {
        CryptoJob { label, kind, rng_seed: None }
    }

    /// Gives the job its generator, drawn from the connection's RNG (the transport does this
    /// for every job it hands out).
    pub(crate) fn seed_rng(&mut self, from: &mut dyn Rng) {
        if self.rng_seed.is_none() {
            let mut seed = Box::new([0u8; 32]);
            from.fill(&mut seed[..]);
            self.rng_seed = Some(seed);
        }
    }

    /// Bytes the job holds on the peer's behalf (its KEXINITs, version lines and public
    /// values), charged to the memory budget while it is queued or running.
    pub fn held_bytes(&self) -> usize {
        let parts = |p: &HashParts| p.v_c.len() + p.v_s.len() + p.i_c.len() + p.i_s.len();
        std::mem::size_of::<Self>()
            + match &self.kind {
                JobKind::ServerKex(j) => j.client_public.len() + parts(&j.parts),
                JobKind::ClientGenerate { .. } => 0,
                JobKind::ClientFinish(j) => {
                    j.server_public.len() + j.k_s.len() + j.signature.len() + parts(&j.parts)
                }
            }
    }

    /// Runs the computation (on a pool thread).
    pub fn run(self) -> JobDone {
        // A job that never passed through `seed_rng` (none does today) still gets a secure one.
        let mut rng = match self.rng_seed {
            Some(seed) => JobRng::from_seed(*seed),
            None => JobRng::seeded_from(&mut SystemRng),
        };
        let result = match self.kind {
            JobKind::ServerKex(j) => JobResult::ServerKex(run_server(*j, &mut rng)),
            JobKind::ClientGenerate { method, group } => JobResult::ClientGenerated(
                ClientEphemeral::generate(method, group.as_ref(), &mut rng).map_err(Error::Kex),
            ),
            JobKind::ClientFinish(j) => JobResult::ClientFinished(run_client(*j)),
        };
        JobDone { label: self.label, result }
    }

    /// The KEX method name (for per-method histograms), e.g. `curve25519-sha256`.
    pub fn label(&self) -> &'static str {
        self.label
    }
}

/// The result of a [`CryptoJob`], fed back with `handle_job_done`.
pub struct JobDone {
    label: &'static str,
    pub(crate) result: JobResult,
}

impl JobDone {
    pub fn label(&self) -> &'static str {
        self.label
    }
}

fn run_server(j: ServerKexJob, rng: &mut dyn Rng) -> Result<ServerKexOut, Error> {
    let (server_public, k) = kex::server_agree(j.method, j.group.as_ref(), &j.client_public, rng)?;
    let mut k_encoded = Vec::with_capacity(k.bytes.len() + 5);
    k.encode(&mut k_encoded);
    let k_s = j.host_key.public_blob().to_vec();
    let h = compute_hash(&j.parts, j.method, &k_s, &j.client_public, &server_public, &k_encoded);
    let signature = j.host_key.sign(j.host_key_alg, &h, rng).map_err(Error::HostKey)?;
    Ok(ServerKexOut { server_public, k_encoded, h, k_s, signature })
}

fn run_client(j: ClientFinishJob) -> Result<ClientKexOut, Error> {
    if let Some(expected) = &j.expected_host_key {
        if **expected != *j.k_s {
            return Err(Error::HostKeyMismatch);
        }
    }
    let client_public = j.eph.public().to_vec();
    let k = j.eph.agree(&j.server_public)?;
    let mut k_encoded = Vec::with_capacity(k.bytes.len() + 5);
    k.encode(&mut k_encoded);
    let h = compute_hash(&j.parts, j.method, &j.k_s, &client_public, &j.server_public, &k_encoded);
    host_key::verify(j.host_key_alg, &j.k_s, &h, &j.signature).map_err(Error::HostKeyVerify)?;
    Ok(ClientKexOut { k_encoded, h })
}

/// H for any method: the middle part differs by family (RFC 4253 §8, RFC 4419 §3, RFC 5656 §4).
fn compute_hash(
    parts: &HashParts,
    method: KexMethod,
    k_s: &[u8],
    client_public: &[u8],
    server_public: &[u8],
    k_encoded: &[u8],
) -> Vec<u8> {
    let mut request = Vec::new();
    let g_bytes;
    let middle = match (method, &parts.gex) {
        (KexMethod::Gex, Some((req, group))) => {
            req.hash_bytes(&mut request);
            g_bytes = group.g.to_be_bytes();
            HashMiddle::Gex {
                request: &request,
                p: &group.p,
                g: &g_bytes,
                e: client_public,
                f: server_public,
            }
        }
        (KexMethod::Dh(_), _) | (KexMethod::Gex, None) => {
            HashMiddle::Dh { e: client_public, f: server_public }
        }
        _ => HashMiddle::Ecdh { q_c: client_public, q_s: server_public },
    };
    let inputs = HashInputs {
        v_c: &parts.v_c,
        v_s: &parts.v_s,
        i_c: &parts.i_c,
        i_s: &parts.i_s,
        k_s,
        middle,
        k_encoded,
    };
    exchange_hash(parts.hash, &inputs)
}
