//! password (RFC 4252 §8) and keyboard-interactive (RFC 4256) checks. The hash comparison is
//! slow on purpose, so it runs as a job on the crypto pool; this module only builds the job and
//! runs it there.

use super::policy::PasswordSource;
use crate::config::users::{load_password_file, PasswordDb};

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

impl PasswordCheck {
    /// Runs the check (on a pool thread). An unknown user, a missing file and a wrong password
    /// all take the hashing path, so the time does not tell them apart.
    pub fn run(mut self) -> bool {
        let ok = match &self.source {
            PasswordSource::None => {
                let _ = PasswordDb::default().verify(&self.user, &self.password);
                false
            }
            PasswordSource::Db(db) => db.verify(&self.user, &self.password),
            PasswordSource::File(path) => {
                let db = load_password_file(path).unwrap_or_default();
                db.verify(&self.user, &self.password)
            }
        };
        // Best effort: do not leave the password in freed memory longer than needed.
        self.password.iter_mut().for_each(|b| *b = 0);
        ok
    }
}
