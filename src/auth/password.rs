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

impl std::fmt::Debug for PasswordCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordCheck").field("user", &self.user).finish_non_exhaustive()
    }
}
