//! The client side of user authentication (RFC 4252): one attempt at a time, `none`, `password`
//! or `publickey`. Signing is never done here: the core asks for it with
//! [`Event::Sign`](super::Event::Sign) so a local key can sign on the crypto pool and an agent
//! (a forwarded `ssh-agent`, RFC draft-miller-ssh-agent) can answer over its own channel.

use crate::algo::host_key::{HostKeyAlg, HostKeyPair};
use crate::auth::msgs;
use std::sync::Arc;

/// The service user authentication opens.
pub const SERVICE: &str = "ssh-connection";

/// Whoever holds the private half of a user key.
pub trait UserSigner: Send + Sync {
    /// The SSH public key blob sent in the request.
    fn public_blob(&self) -> &[u8];
    /// The signature algorithm (an RSA key signs `rsa-sha2-256` / `-512`).
    fn algorithm(&self) -> HostKeyAlg;
    /// Signs in this process when the key is here; `None` when the signature comes from
    /// elsewhere (an agent), which the caller fetches and hands to `sign_done`.
    fn sign_local(&self, data: &[u8]) -> Option<Result<Vec<u8>, String>>;
}

/// A private key loaded in this process.
pub struct LocalKey {
    pub key: Arc<HostKeyPair>,
    pub alg: HostKeyAlg,
}

impl LocalKey {
    /// The key with its preferred signature algorithm.
    pub fn new(key: Arc<HostKeyPair>) -> Self {
        let alg = key.algorithms().first().copied().unwrap_or(HostKeyAlg::Ed25519);
        LocalKey { key, alg }
    }
}

impl UserSigner for LocalKey {
    fn public_blob(&self) -> &[u8] {
        self.key.public_blob()
    }
    fn algorithm(&self) -> HostKeyAlg {
        self.alg
    }
    fn sign_local(&self, data: &[u8]) -> Option<Result<Vec<u8>, String>> {
        // Ed25519 and RSA PKCS#1 signatures draw nothing; ECDSA nonces come from the OS.
        let mut rng = crate::algo::SystemRng;
        Some(self.key.sign(self.alg, data, &mut rng).map_err(|e| format!("sign: {e}")))
    }
}

/// A key held by an agent: only the public half is here.
pub struct AgentKey {
    pub public_blob: Vec<u8>,
    pub alg: HostKeyAlg,
}

impl UserSigner for AgentKey {
    fn public_blob(&self) -> &[u8] {
        &self.public_blob
    }
    fn algorithm(&self) -> HostKeyAlg {
        self.alg
    }
    fn sign_local(&self, _data: &[u8]) -> Option<Result<Vec<u8>, String>> {
        None
    }
}

/// A signature the core needs: `data` is the RFC 4252 §7 blob. Owned and `Send`, so it can go
/// to the crypto pool ([`SignRequest::run_local`]) or to an agent.
pub struct SignRequest {
    pub signer: Arc<dyn UserSigner>,
    pub data: Vec<u8>,
}

impl SignRequest {
    /// Signs with a local key; `None` for an agent key.
    pub fn run_local(&self) -> Option<Result<Vec<u8>, String>> {
        self.signer.sign_local(&self.data)
    }
}

/// How to authenticate.
#[derive(Clone)]
pub enum Method {
    /// Learn the methods the server offers (or get in, if it lets anyone).
    None,
    /// Sent once and then dropped from memory with the attempt.
    Password(Vec<u8>),
    PublicKey(Arc<dyn UserSigner>),
}

impl Method {
    pub fn name(&self) -> &'static str {
        match self {
            Method::None => "none",
            Method::Password(_) => "password",
            Method::PublicKey(_) => "publickey",
        }
    }
}

/// Where the attempt is.
#[derive(Default)]
pub(crate) enum State {
    /// No attempt yet, or the last one failed.
    #[default]
    Idle,
    /// An attempt waits for SERVICE_ACCEPT.
    WaitService {
        user: String,
        method: Method,
    },
    /// Publickey: the signature is being made.
    Signing {
        user: String,
        signer: Arc<dyn UserSigner>,
    },
    /// Request sent; waiting for SUCCESS or FAILURE.
    Sent,
    Done,
}

/// Encodes the request for `method` (not publickey, which goes through signing).
pub(crate) fn encode_simple(out: &mut Vec<u8>, user: &str, method: &Method) {
    match method {
        Method::None => msgs::encode_request_none(out, user, SERVICE),
        Method::Password(pw) => msgs::encode_request_password(out, user, SERVICE, pw),
        Method::PublicKey(_) => {}
    }
}

/// The signed publickey request.
pub(crate) fn encode_signed(out: &mut Vec<u8>, user: &str, signer: &dyn UserSigner, sig: &[u8]) {
    let alg = signer.algorithm().name();
    msgs::encode_request_publickey(out, user, SERVICE, alg, signer.public_blob(), Some(sig));
}

/// What the signature must cover (RFC 4252 §7).
pub(crate) fn signed_data(session_id: &[u8], user: &str, signer: &dyn UserSigner) -> Vec<u8> {
    msgs::publickey_signed_data(
        session_id,
        user,
        SERVICE.as_bytes(),
        signer.algorithm().name(),
        signer.public_blob(),
    )
}
