//! Authentication policy: which methods, in which sequences (OpenSSH `AuthenticationMethods`),
//! how many tries, the banner, where keys and passwords come from.

use crate::config::users::PasswordDb;
use std::path::PathBuf;
use std::sync::Arc;

pub use super::patterns::{from_allows, wildcard_match};

/// Default `--max-auth-tries` (OpenSSH's MaxAuthTries).
pub const DEFAULT_MAX_AUTH_TRIES: u32 = 6;
/// Longest `--auth-methods` sequence we accept.
pub const MAX_SEQUENCE_LEN: usize = 4;

/// An authentication method that can succeed ("none" never does here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    PublicKey,
    Password,
    KeyboardInteractive,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::PublicKey => "publickey",
            Method::Password => "password",
            Method::KeyboardInteractive => "keyboard-interactive",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        [Method::PublicKey, Method::Password, Method::KeyboardInteractive]
            .into_iter()
            .find(|m| m.name() == s)
    }
}

/// Where password hashes come from.
#[derive(Debug, Clone, Default)]
pub enum PasswordSource {
    /// No password file: password and keyboard-interactive are never offered.
    #[default]
    None,
    /// Loaded at startup (or SIGHUP).
    Db(Arc<PasswordDb>),
    /// Read on the pool at each check (edits apply without a reload).
    File(PathBuf),
}

/// The ssh-userauth side of the server's configuration.
#[derive(Debug, Clone)]
pub struct AuthPolicy {
    /// Accepted method sequences: one of them must be completed in order (`publickey,password`
    /// means both, that order, with partial success after the first). RFC 4252 §5.1.
    pub sequences: Vec<Vec<Method>>,
    /// Failures after which the client is disconnected with code 14.
    pub max_auth_tries: u32,
    /// Sent once, as USERAUTH_BANNER before the first FAILURE or SUCCESS (RFC 4252 §5.4).
    pub banner: Option<String>,
    /// Signature algorithms accepted in publickey auth (`--pubkey-accepted-algorithms`, sshd's
    /// PubkeyAcceptedAlgorithms), in preference order; announced as `server-sig-algs`. SHA-1
    /// `ssh-rsa` is not in the default list.
    pub pubkey_algs: Vec<&'static str>,
    /// `--authorized-keys PATH` with `%u`; None: publickey is never offered.
    pub authorized_keys: Option<String>,
    pub passwords: PasswordSource,
}

impl Default for AuthPolicy {
    fn default() -> Self {
        AuthPolicy {
            sequences: vec![
                vec![Method::PublicKey],
                vec![Method::Password],
                vec![Method::KeyboardInteractive],
            ],
            max_auth_tries: DEFAULT_MAX_AUTH_TRIES,
            banner: None,
            pubkey_algs: super::publickey::DEFAULT_PUBKEY_ALGS.to_vec(),
            authorized_keys: None,
            passwords: PasswordSource::None,
        }
    }
}

/// Parses `--auth-methods`: sequences separated by spaces, methods in one by commas
/// (`"publickey,password publickey"`), as OpenSSH's AuthenticationMethods.
pub fn parse_auth_methods(s: &str) -> Result<Vec<Vec<Method>>, String> {
    let mut out = Vec::new();
    for seq in s.split_whitespace() {
        let mut v = Vec::new();
        for name in seq.split(',') {
            let m = Method::from_name(name)
                .ok_or_else(|| format!("unknown authentication method {name:?}"))?;
            v.push(m);
        }
        if v.len() > MAX_SEQUENCE_LEN {
            return Err(format!("authentication sequence {seq:?} longer than {MAX_SEQUENCE_LEN}"));
        }
        out.push(v);
    }
    if out.is_empty() {
        return Err("no authentication method".into());
    }
    Ok(out)
}

impl AuthPolicy {
    /// Whether a method can work at all with this configuration and transport state. Passwords
    /// only travel over an encrypted transport (RFC 4252 §8).
    pub fn usable(&self, m: Method, encrypted: bool) -> bool {
        match m {
            Method::PublicKey => self.authorized_keys.is_some(),
            Method::Password | Method::KeyboardInteractive => {
                encrypted && !matches!(self.passwords, PasswordSource::None)
            }
        }
    }

    /// Methods that may come next after `done`, in configuration order, without duplicates.
    pub fn next_methods(&self, done: &[Method], encrypted: bool) -> Vec<Method> {
        let mut out: Vec<Method> = Vec::new();
        for seq in &self.sequences {
            if seq.len() > done.len() && seq.starts_with(done) {
                if let Some(&m) = seq.get(done.len()) {
                    if self.usable(m, encrypted) && !out.contains(&m) {
                        out.push(m);
                    }
                }
            }
        }
        out
    }

    /// True when `done` is a whole sequence.
    pub fn is_complete(&self, done: &[Method]) -> bool {
        !done.is_empty() && self.sequences.iter().any(|s| s.as_slice() == done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_and_partial_success() {
        let p = AuthPolicy {
            sequences: parse_auth_methods("publickey,password keyboard-interactive").unwrap(),
            authorized_keys: Some("/k/%u".into()),
            passwords: PasswordSource::File("/p".into()),
            ..AuthPolicy::default()
        };
        assert_eq!(p.next_methods(&[], true), [Method::PublicKey, Method::KeyboardInteractive]);
        assert_eq!(p.next_methods(&[Method::PublicKey], true), [Method::Password]);
        assert!(!p.is_complete(&[Method::PublicKey]));
        assert!(p.is_complete(&[Method::PublicKey, Method::Password]));
        assert!(p.is_complete(&[Method::KeyboardInteractive]));
        assert_eq!(p.next_methods(&[], false), [Method::PublicKey], "no passwords in the clear");
        assert!(parse_auth_methods("publickey,bogus").is_err());
        assert!(parse_auth_methods("").is_err());
    }
}
