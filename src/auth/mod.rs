//! ssh-userauth, server side (RFC 4252, RFC 4256), sans-IO.
//!
//! [`Auth`] takes USERAUTH_REQUEST and USERAUTH_INFO_RESPONSE payloads and answers through an
//! [`Outbound`]. Work that needs files or slow hashing (the user's authorized_keys, password
//! checks) leaves as an [`AuthJob`] for the crypto pool; while one is out, [`Auth::is_waiting`]
//! is true and the owner stops feeding input. Only this module sends USERAUTH_SUCCESS, once,
//! and only [`AuthOutcome::Success`] makes the owner mark the transport authenticated; a
//! client-sent SUCCESS never reaches here (the transport's state table refuses it).

pub mod authorized_key;
pub mod msgs;
pub mod password;
pub mod patterns;
pub mod policy;
pub mod publickey;
pub mod sk;

use crate::service::{Outbound, ServiceError};
use crate::transport::DisconnectReason;
use crate::wire::{msg_no, DecodeError};
pub use authorized_key::{AuthorizedKey, KeyOptions};
use msgs::{MethodRequest, UserauthRequest};
pub use password::{PasswordCheck, Secret};
pub use policy::{AuthPolicy, Method, PasswordSource};
pub use publickey::VerifyFn;
use std::net::IpAddr;
use std::sync::Arc;

/// The service a successful login gives access to (RFC 4252 §5).
pub const CONNECTION_SERVICE: &[u8] = b"ssh-connection";

/// Work for the runtime on behalf of authentication: this module decides what to check; the
/// runtime reads the files and runs the checks (`runtime::auth_jobs`), off the worker.
#[derive(Debug)]
pub enum AuthJob {
    /// Read and parse the user's authorized_keys (`config::users::load_authorized_keys`).
    LoadKeys { template: String, user: String },
    /// Check a password against the password file.
    CheckPassword(PasswordCheck),
    /// Verify a publickey signature (off the worker: RSA verification costs ~0.1 ms).
    VerifySignature(publickey::SignatureCheck),
}

/// What an [`AuthJob`] produced.
#[derive(Debug)]
pub enum AuthJobResult {
    /// The user's keys; an error text when the file could not be read (treated as no keys).
    Keys(Result<Arc<[AuthorizedKey]>, String>),
    /// The per-user authorized_keys file (`%u` in the template) does not exist: no keys, and
    /// this lookup says the user is unknown.
    NoKeyFile,
    Password(bool),
    /// The password file has no such user (the dummy hash was checked, so the time is the same).
    UnknownUser,
    Signature(bool),
}

impl AuthJob {
    /// Bytes the job holds for the peer while queued or running (memory budget).
    pub fn held_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + match self {
                AuthJob::LoadKeys { template, user } => template.len() + user.len(),
                AuthJob::CheckPassword(c) => c.user.len() + c.password.len(),
                AuthJob::VerifySignature(c) => c.key.len() + c.signed.len() + c.signature.len(),
            }
    }

    /// For per-kind histograms.
    pub fn label(&self) -> &'static str {
        match self {
            AuthJob::LoadKeys { .. } => "auth-load-keys",
            AuthJob::CheckPassword(_) => "auth-password",
            AuthJob::VerifySignature(_) => "auth-verify",
        }
    }
}

/// What the owner must do after a call into [`Auth`].
#[derive(Debug)]
pub enum AuthOutcome {
    /// Nothing more (replies, if any, were sent).
    Continue,
    /// Run this on the pool, then call [`Auth::handle_job_result`]; stop reading until then.
    Job(AuthJob),
    /// USERAUTH_SUCCESS was sent: mark the transport authenticated, start the connection layer
    /// with [`Auth::restrictions`].
    Success { user: String, method: &'static str },
    /// Worth a log line; otherwise as `Continue`.
    Log(String),
}

/// Per-connection context the checks need.
#[derive(Debug, Clone, Copy)]
pub struct AuthContext<'a> {
    pub policy: &'a AuthPolicy,
    /// H of the first key exchange (RFC 4253 §7.2), signed over in publickey auth.
    pub session_id: &'a [u8],
    /// Whether the transport is encrypted both ways (passwords only then).
    pub encrypted: bool,
}

/// A publickey request held while the user's keys load.
#[derive(Debug)]
struct PendingPk {
    alg: String,
    key: Vec<u8>,
    signature: Option<Vec<u8>>,
}

#[derive(Debug)]
enum State {
    Idle,
    WaitingKeys(PendingPk),
    WaitingPassword(Method),
    /// A signature is being verified: the key blob and the options of its entry.
    WaitingSignature(Vec<u8>, KeyOptions),
    /// INFO_REQUEST sent; the next INFO_RESPONSE carries the password.
    KbdPrompted,
    Done,
}

/// One connection's authentication state.
pub struct Auth {
    peer: IpAddr,
    verify: VerifyFn,
    /// Fixed by the first request; a change is refused (as OpenSSH does).
    user: Option<String>,
    keys: Option<Arc<[AuthorizedKey]>>,
    /// Methods completed so far in this login (partial success).
    done: Vec<Method>,
    /// Key blobs already used for a completed publickey step.
    used_keys: Vec<Vec<u8>>,
    restrictions: KeyOptions,
    failures: u32,
    /// User lookups made (key file, password file) and whether any found the user: a login
    /// whose every lookup came back "no such user" was by an invalid user (a penalty kind).
    lookups: u32,
    user_found: bool,
    none_seen: bool,
    banner_sent: bool,
    state: State,
    /// The password of the attempt in flight, then of the login that succeeded, until the
    /// runtime takes it (`take_password`); wiped on failure.
    password: Option<Secret>,
}

impl Auth {
    /// `peer`: the client's address, for `from=` in authorized_keys.
    pub fn new(peer: IpAddr) -> Self {
        Self::with_verifier(peer, publickey::real_verify)
    }

    /// As [`Auth::new`] with a chosen signature verifier (tests, fuzzing).
    pub fn with_verifier(peer: IpAddr, verify: VerifyFn) -> Self {
        Auth {
            peer,
            verify,
            user: None,
            keys: None,
            done: Vec::new(),
            used_keys: Vec::new(),
            restrictions: KeyOptions::default(),
            failures: 0,
            lookups: 0,
            user_found: false,
            none_seen: false,
            banner_sent: false,
            state: State::Idle,
            password: None,
        }
    }

    /// A job is out: do not feed more messages until its result is in.
    pub fn is_waiting(&self) -> bool {
        matches!(
            self.state,
            State::WaitingKeys(_) | State::WaitingPassword(_) | State::WaitingSignature(..)
        )
    }

    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Failures counted so far (against `max_auth_tries`).
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// True when the user's name was looked up and no lookup found it (no password entry, no
    /// authorized_keys file of their own). Never shown to the peer: only the penalty differs.
    pub fn invalid_user(&self) -> bool {
        self.lookups > 0 && !self.user_found
    }

    /// The user name of this login, once the first request named it (for log lines).
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The password the login succeeded with, once (the session proxy logs in upstream with
    /// it); `None` after the first call or for other methods.
    pub fn take_password(&mut self) -> Option<Secret> {
        if matches!(self.state, State::Done) {
            self.password.take()
        } else {
            None
        }
    }

    /// Options of the key(s) that authenticated (empty for password-only logins).
    pub fn restrictions(&self) -> &KeyOptions {
        &self.restrictions
    }

    /// One message numbered 50–79 from the client.
    pub fn handle_message(
        &mut self,
        cx: AuthContext<'_>,
        out: &mut dyn Outbound,
        p: &[u8],
    ) -> Result<AuthOutcome, ServiceError> {
        // RFC 4252 §5.1: requests after success are ignored.
        if self.is_done() {
            return Ok(AuthOutcome::Continue);
        }
        if self.is_waiting() {
            return Err(ServiceError::protocol("authentication message while a check is running"));
        }
        match p.first().copied() {
            Some(msg_no::USERAUTH_REQUEST) => self.on_request(cx, out, p),
            Some(msg_no::USERAUTH_INFO_RESPONSE) => self.on_info_response(cx, out, p),
            _ => Err(ServiceError::protocol("unexpected user authentication message")),
        }
    }

    fn on_request(
        &mut self,
        cx: AuthContext<'_>,
        out: &mut dyn Outbound,
        p: &[u8],
    ) -> Result<AuthOutcome, ServiceError> {
        let req = UserauthRequest::parse(p).map_err(|e| match e {
            DecodeError::TooLong { field: "user name", .. } => {
                ServiceError::new(DisconnectReason::IllegalUserName, "user name too long")
            }
            e => e.into(),
        })?;
        // A new request abandons a keyboard-interactive exchange (RFC 4256 §3.4 allows it).
        self.state = State::Idle;
        if req.service != CONNECTION_SERVICE {
            return Err(ServiceError::new(
                DisconnectReason::ServiceNotAvailable,
                "service not available",
            ));
        }
        match &self.user {
            Some(u) if u != req.user => {
                return Err(ServiceError::protocol("change of user name during authentication"));
            }
            Some(_) => {}
            None => self.user = Some(req.user.to_string()),
        }
        let next = cx.policy.next_methods(&self.done, cx.encrypted);
        match req.method {
            MethodRequest::None => {
                // The first "none" is how clients ask for the method list: it costs no try.
                if !self.none_seen && self.done.is_empty() {
                    self.none_seen = true;
                    self.send_failure(cx, out, false)?;
                    return Ok(AuthOutcome::Continue);
                }
                self.failure(cx, out)
            }
            MethodRequest::PublicKey { alg, key, signature }
                if next.contains(&Method::PublicKey) =>
            {
                if publickey::signature_alg(alg, key, &cx.policy.pubkey_algs).is_none() {
                    return self.failure(cx, out);
                }
                let pending = PendingPk {
                    alg: alg.into(),
                    key: key.to_vec(),
                    signature: signature.map(<[u8]>::to_vec),
                };
                if self.keys.is_none() {
                    let template = cx.policy.authorized_keys.clone().unwrap_or_default();
                    let user = req.user.to_string();
                    self.state = State::WaitingKeys(pending);
                    return Ok(AuthOutcome::Job(AuthJob::LoadKeys { template, user }));
                }
                self.publickey(cx, out, pending)
            }
            MethodRequest::Password { password, change } if next.contains(&Method::Password) => {
                if change {
                    return self.failure(cx, out);
                }
                self.state = State::WaitingPassword(Method::Password);
                Ok(AuthOutcome::Job(self.password_job(cx, req.user, password)))
            }
            MethodRequest::KeyboardInteractive if next.contains(&Method::KeyboardInteractive) => {
                self.send_banner_once(cx, out)?;
                out.send_with(&mut |o| msgs::encode_info_request(o, password::PROMPT))?;
                self.state = State::KbdPrompted;
                Ok(AuthOutcome::Continue)
            }
            _ => self.failure(cx, out),
        }
    }

    fn on_info_response(
        &mut self,
        cx: AuthContext<'_>,
        out: &mut dyn Outbound,
        p: &[u8],
    ) -> Result<AuthOutcome, ServiceError> {
        if !matches!(self.state, State::KbdPrompted) {
            return Err(ServiceError::protocol("USERAUTH_INFO_RESPONSE without a request"));
        }
        let responses = msgs::parse_info_response(p)?;
        self.state = State::Idle;
        let [password] = responses.as_slice() else {
            return self.failure(cx, out);
        };
        let user = self.user.clone().unwrap_or_default();
        self.state = State::WaitingPassword(Method::KeyboardInteractive);
        Ok(AuthOutcome::Job(self.password_job(cx, &user, password)))
    }

    fn password_job(&mut self, cx: AuthContext<'_>, user: &str, password: &[u8]) -> AuthJob {
        self.password = Some(Secret::new(password));
        AuthJob::CheckPassword(PasswordCheck {
            source: cx.policy.passwords.clone(),
            user: user.to_string(),
            password: password.to_vec(),
        })
    }

    /// The result of a job this module asked for.
    pub fn handle_job_result(
        &mut self,
        cx: AuthContext<'_>,
        out: &mut dyn Outbound,
        result: AuthJobResult,
    ) -> Result<AuthOutcome, ServiceError> {
        let result = match result {
            AuthJobResult::NoKeyFile => {
                self.lookups += 1;
                AuthJobResult::Keys(Ok(Arc::from(Vec::new())))
            }
            AuthJobResult::UnknownUser => {
                self.lookups += 1;
                AuthJobResult::Password(false)
            }
            r @ (AuthJobResult::Keys(_) | AuthJobResult::Password(_)) => {
                self.lookups += 1;
                self.user_found = true;
                r
            }
            r => r,
        };
        match (std::mem::replace(&mut self.state, State::Idle), result) {
            (State::WaitingKeys(pending), AuthJobResult::Keys(keys)) => {
                let (keys, log) = match keys {
                    Ok(k) => (k, None),
                    Err(e) => (Arc::from(Vec::new()), Some(e)),
                };
                self.keys = Some(keys);
                let outcome = self.publickey(cx, out, pending)?;
                match (outcome, log) {
                    (AuthOutcome::Continue, Some(e)) => {
                        Ok(AuthOutcome::Log(format!("authorized keys: {e}")))
                    }
                    (o, _) => Ok(o),
                }
            }
            (State::WaitingSignature(key, options), AuthJobResult::Signature(ok)) => {
                if !ok {
                    return self.failure(cx, out);
                }
                // The key that verified is the key that is authorised, with its own options.
                self.used_keys.push(key);
                self.method_succeeded(cx, out, Method::PublicKey, Some(options))
            }
            (State::WaitingPassword(method), AuthJobResult::Password(ok)) => {
                if ok {
                    self.method_succeeded(cx, out, method, None)
                } else {
                    self.password = None;
                    self.failure(cx, out)
                }
            }
            (state, _) => {
                // Not what we wait for (a stale result): keep waiting.
                self.state = state;
                Ok(AuthOutcome::Continue)
            }
        }
    }

    /// Keys are loaded: answer a query with PK_OK, or verify a signature.
    fn publickey(
        &mut self,
        cx: AuthContext<'_>,
        out: &mut dyn Outbound,
        pk: PendingPk,
    ) -> Result<AuthOutcome, ServiceError> {
        let Some(alg) = publickey::signature_alg(&pk.alg, &pk.key, &cx.policy.pubkey_algs) else {
            return self.failure(cx, out);
        };
        let keys = self.keys.as_deref().unwrap_or(&[]);
        let Some(entry) = publickey::find_key(keys, &pk.key, self.peer, &self.used_keys) else {
            return self.failure(cx, out);
        };
        let options = entry.options.clone();
        let Some(signature) = pk.signature else {
            self.send_banner_once(cx, out)?;
            out.send_with(&mut |o| msgs::encode_pk_ok(o, &pk.alg, &pk.key))?;
            return Ok(AuthOutcome::Continue);
        };
        let user = self.user.as_deref().unwrap_or("");
        let signed =
            msgs::publickey_signed_data(cx.session_id, user, CONNECTION_SERVICE, &pk.alg, &pk.key);
        let check = publickey::SignatureCheck {
            verify: self.verify,
            alg,
            key: pk.key.clone(),
            signed,
            signature,
            no_touch_required: options.no_touch_required,
            verify_required: options.verify_required,
        };
        self.state = State::WaitingSignature(pk.key, options);
        Ok(AuthOutcome::Job(AuthJob::VerifySignature(check)))
    }

    fn method_succeeded(
        &mut self,
        cx: AuthContext<'_>,
        out: &mut dyn Outbound,
        m: Method,
        options: Option<KeyOptions>,
    ) -> Result<AuthOutcome, ServiceError> {
        if let Some(o) = options {
            self.restrictions = self.restrictions.merge(&o);
        }
        self.done.push(m);
        if cx.policy.is_complete(&self.done) {
            self.send_banner_once(cx, out)?;
            out.send_with(&mut |o| msgs::encode_success(o))?;
            self.state = State::Done;
            let user = self.user.clone().unwrap_or_default();
            return Ok(AuthOutcome::Success { user, method: m.name() });
        }
        // RFC 4252 §5.1: partial success, more methods needed.
        self.send_failure(cx, out, true)?;
        Ok(AuthOutcome::Continue)
    }

    /// A failed attempt: counted; at `max_auth_tries` the connection ends with code 14
    /// (RFC 4252 §5.1 leaves the limit to the server; OpenSSH disconnects the same way).
    fn failure(
        &mut self,
        cx: AuthContext<'_>,
        out: &mut dyn Outbound,
    ) -> Result<AuthOutcome, ServiceError> {
        self.failures = self.failures.saturating_add(1);
        if self.failures >= cx.policy.max_auth_tries {
            return Err(ServiceError::new(
                DisconnectReason::NoMoreAuthMethodsAvailable,
                "too many authentication failures",
            ));
        }
        self.send_failure(cx, out, false)?;
        Ok(AuthOutcome::Continue)
    }

    fn send_failure(
        &mut self,
        cx: AuthContext<'_>,
        out: &mut dyn Outbound,
        partial: bool,
    ) -> Result<(), ServiceError> {
        self.send_banner_once(cx, out)?;
        let next = cx.policy.next_methods(&self.done, cx.encrypted);
        let names: Vec<&str> = next.iter().map(|m| m.name()).collect();
        out.send_with(&mut |o| msgs::encode_failure(o, &names, partial))?;
        Ok(())
    }

    fn send_banner_once(
        &mut self,
        cx: AuthContext<'_>,
        out: &mut dyn Outbound,
    ) -> Result<(), ServiceError> {
        if self.banner_sent {
            return Ok(());
        }
        self.banner_sent = true;
        if let Some(b) = &cx.policy.banner {
            out.send_with(&mut |o| msgs::encode_banner(o, b))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
