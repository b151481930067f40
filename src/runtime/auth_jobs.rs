//! Runs what authentication asked for: the core decides, the runtime reads files and checks.
//!
//! authorized_keys reads run on the crypto pool's reader thread (`JobClass::Read`), password
//! hashing and signature verification on pool threads in their own queues.

use crate::auth::{AuthJob, AuthJobResult, PasswordSource};
use crate::config::keys_cache::KeysCache;
use crate::config::users::{load_password_file, PasswordDb};
use crate::server::{ServerJob, ServerJobDone};
use std::cell::RefCell;

thread_local! {
    /// Parsed authorized_keys files of the thread that reads them (the reader thread).
    static KEYS: RefCell<KeysCache> = RefCell::default();
}

/// Runs a server connection's job (on a pool or reader thread).
pub fn run(job: ServerJob) -> ServerJobDone {
    match job {
        ServerJob::Kex(j) => ServerJobDone::Kex(j.run()),
        ServerJob::Auth(j) => ServerJobDone::Auth(run_auth(j)),
        ServerJob::UpstreamKex(j) => ServerJobDone::UpstreamKex(j.run()),
        ServerJob::UpstreamSign(r) => ServerJobDone::UpstreamSign(
            r.run_local().unwrap_or_else(|| Err("the key is not held here".into())),
        ),
    }
}

fn run_auth(job: AuthJob) -> AuthJobResult {
    match job {
        AuthJob::LoadKeys { template, user } => {
            match KEYS.with_borrow_mut(|c| c.load(&template, &user)) {
                Ok(None) => AuthJobResult::NoKeyFile,
                Ok(Some(keys)) => AuthJobResult::Keys(Ok(keys)),
                Err(e) => AuthJobResult::Keys(Err(e.to_string())),
            }
        }
        AuthJob::CheckPassword(mut c) => {
            // An unknown user, a missing file and a wrong password all take the hashing path,
            // so the time does not tell them apart.
            let verdict = match &c.source {
                PasswordSource::None => PasswordDb::default().check(&c.user, &c.password),
                PasswordSource::Db(db) => db.check(&c.user, &c.password),
                PasswordSource::File(path) => {
                    load_password_file(path).unwrap_or_default().check(&c.user, &c.password)
                }
            };
            // Best effort: do not leave the password in freed memory longer than needed.
            c.password.iter_mut().for_each(|b| *b = 0);
            match verdict {
                Some(ok) => AuthJobResult::Password(ok),
                None => AuthJobResult::UnknownUser,
            }
        }
        AuthJob::VerifySignature(c) => AuthJobResult::Signature(c.run()),
    }
}
