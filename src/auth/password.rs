//! password (RFC 4252 §8) and keyboard-interactive (RFC 4256) checks. The hash comparison is
//! slow on purpose, so it runs as a job on the crypto pool; this module only builds the job
//! (`runtime::auth_jobs` runs it).

use super::policy::PasswordSource;

/// The single keyboard-interactive prompt (RFC 4256 §3.2).
pub const PROMPT: &str = "Password: ";

/// A password to check on the pool.
pub struct PasswordCheck {
    pub source: PasswordSource,
    pub user: String,
    pub password: Vec<u8>,
}

/// A password that checked out, kept for one use upstream (the session proxy's `password`
/// auth) and wiped when dropped. Never printed.
pub struct Secret(Box<[u8]>);

impl Secret {
    pub fn new(bytes: &[u8]) -> Self {
        Secret(bytes.into())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(|b| *b = 0);
        // Keeps the wipe from being optimised away as a dead store.
        std::hint::black_box(&self.0);
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl std::fmt::Debug for PasswordCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordCheck").field("user", &self.user).finish_non_exhaustive()
    }
}
