//! Readers for the user databases: OpenSSH `authorized_keys` files (`--authorized-keys PATH`,
//! `%u` = user name) and the password file (`--password-file`, one `user:hash` line each).
//!
//! These do file IO, so they run as jobs on the crypto pool (see `auth::AuthJob`), never on a
//! worker and never inside the sans-IO `auth/` module. Everything read is bounded.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Largest authorized_keys or password file we read.
pub const MAX_FILE_LEN: u64 = 1024 * 1024;
/// Most keys taken from one authorized_keys file (the rest are ignored).
pub const MAX_KEYS: usize = 1024;
/// Most patterns in one option list (`from=`, `permitopen=`, …).
pub const MAX_OPTION_PATTERNS: usize = 64;

#[derive(Debug)]
pub enum UsersError {
    Io {
        path: PathBuf,
        err: std::io::Error,
    },
    TooLarge {
        path: PathBuf,
    },
    /// A password-file line that is not `user:hash` with a supported hash.
    BadLine {
        line: usize,
    },
}

impl fmt::Display for UsersError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsersError::Io { path, err } => write!(f, "{}: {err}", path.display()),
            UsersError::TooLarge { path } => {
                write!(f, "{}: larger than {MAX_FILE_LEN} bytes", path.display())
            }
            UsersError::BadLine { line } => {
                write!(f, "password file line {line}: expected user:hash")
            }
        }
    }
}

impl std::error::Error for UsersError {}

// ---- authorized_keys ---------------------------------------------------------------------

pub use crate::auth::authorized_key::{AuthorizedKey, KeyOptions};

/// `%u` → user, `%%` → `%`; None for a user name unsafe in a path.
pub fn expand_user_path(template: &str, user: &str) -> Option<PathBuf> {
    let unsafe_name = user.is_empty()
        || user.starts_with('.')
        || user.contains(['/', '\\', '\0'])
        || user.len() > 256;
    if unsafe_name && template.contains("%u") {
        return None;
    }
    let mut out = String::with_capacity(template.len() + user.len());
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('u') => out.push_str(user),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    Some(PathBuf::from(out))
}

/// Parses authorized_keys text. Lines that do not parse, or carry an option sshfront cannot
/// honour (`cert-authority`, `principals=`, `expiry-time=`, unknown ones),
/// are skipped: fail closed, as sshd does for bad lines.
pub fn parse_authorized_keys(text: &str) -> Vec<AuthorizedKey> {
    text.lines().filter_map(parse_authorized_line).take(MAX_KEYS).collect()
}

/// One line: `[options] keytype base64 [comment]`.
pub fn parse_authorized_line(line: &str) -> Option<AuthorizedKey> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    // ssh-key's own parser first. It rejects spaces inside quoted option values (command="a b"),
    // so fall back to splitting the options field ourselves, quote-aware.
    let (opts_str, key) = match line.parse::<ssh_key::authorized_keys::Entry>() {
        Ok(e) => (e.config_opts().as_str().to_string(), e.public_key().clone()),
        Err(_) => {
            let (opts, rest) = split_options_field(line)?;
            let key = ssh_key::PublicKey::from_openssh(rest.trim_start()).ok()?;
            (opts.to_string(), key)
        }
    };
    let options = parse_key_options(&opts_str)?;
    let blob = key.to_bytes().ok()?;
    Some(AuthorizedKey { algorithm: key.algorithm().as_str().to_string(), blob, options })
}

/// Splits `opts key…` at the first whitespace outside double quotes.
fn split_options_field(line: &str) -> Option<(&str, &str)> {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ' ' | '\t' if !quoted => return Some((line.get(..i)?, line.get(i..)?)),
            _ => {}
        }
    }
    None
}

/// Parses the comma-separated options field; None if any option is one we cannot honour.
pub fn parse_key_options(s: &str) -> Option<KeyOptions> {
    let mut o = KeyOptions::default();
    for opt in split_unquoted_commas(s) {
        let (name, value) = match opt.split_once('=') {
            Some((n, v)) => (n.to_ascii_lowercase(), Some(unquote(v)?)),
            None => (opt.to_ascii_lowercase(), None),
        };
        match (name.as_str(), value) {
            ("restrict", None) => {
                o.no_port_forwarding = true;
                o.no_pty = true;
                o.no_agent_forwarding = true;
            }
            ("no-agent-forwarding", None) => o.no_agent_forwarding = true,
            ("agent-forwarding", None) => o.no_agent_forwarding = false,
            ("no-pty", None) => o.no_pty = true,
            ("pty", None) => o.no_pty = false,
            ("no-touch-required", None) => o.no_touch_required = true,
            ("verify-required", None) => o.verify_required = true,
            ("no-port-forwarding", None) => o.no_port_forwarding = true,
            ("port-forwarding", None) => o.no_port_forwarding = false,
            ("from", Some(v)) => {
                let list = o.from.get_or_insert_with(Vec::new);
                for p in v.split(',').filter(|p| !p.is_empty()) {
                    push_bounded(list, p)?;
                }
            }
            ("permitopen", Some(v)) => {
                push_bounded(o.permit_open.get_or_insert_with(Vec::new), &v)?
            }
            ("permitlisten", Some(v)) => {
                push_bounded(o.permit_listen.get_or_insert_with(Vec::new), &v)?
            }
            ("command", Some(v)) => o.command = Some(v),
            // Features sshfront does not have anyway (X11, user rc, tunnels) or
            // settings with no effect here: accepted, nothing to enforce.
            ("no-x11-forwarding" | "x11-forwarding" | "no-user-rc" | "user-rc", None) => {}
            ("environment" | "tunnel", Some(_)) => {}
            _ => return None,
        }
    }
    Some(o)
}

fn push_bounded(list: &mut Vec<String>, v: &str) -> Option<()> {
    if list.len() >= MAX_OPTION_PATTERNS {
        return None;
    }
    list.push(v.to_string());
    Some(())
}

fn split_unquoted_commas(s: &str) -> impl Iterator<Item = &str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(s.get(start..i).unwrap_or(""));
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(s.get(start..).unwrap_or(""));
    parts.into_iter().filter(|p| !p.is_empty())
}

/// `"a \"b\""` → `a "b"`; unquoted values are taken as they are. None for an unterminated quote.
fn unquote(v: &str) -> Option<String> {
    let Some(inner) = v.strip_prefix('"') else {
        return Some(v.to_string());
    };
    let inner = inner.strip_suffix('"')?;
    Some(inner.replace("\\\"", "\""))
}

// ---- password file -----------------------------------------------------------------------

/// A hash every unknown user is checked against, so a failure costs the same time whether the
/// user exists or not (no user enumeration). Same argon2id parameters as [`hash_password`]; no
/// password matches it (its output is not the hash of anything we know). With bcrypt hashes
/// in the file the costs differ from this one: keep the file on argon2id (`sshfront passwd`).
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c3NoZnJvbnRkdW1teXNhbHQ$CVSGprhN3NEJ6hqBmU0tz0Ko7OdRnmZOVkBTJq+y8fo";

/// Users and their password hashes (argon2id or bcrypt PHC/MCF strings).
#[derive(Debug, Clone, Default)]
pub struct PasswordDb {
    entries: HashMap<String, String>,
}

/// Reads and parses `--password-file`.
pub fn load_password_file(path: &Path) -> Result<PasswordDb, UsersError> {
    let text = read_bounded(path)?;
    parse_password_file(&text)
}

/// One `user:hash` per line; blank lines and `#` comments skipped. The hash must be argon2 or
/// bcrypt so a typo does not silently lock a user out.
pub fn parse_password_file(text: &str) -> Result<PasswordDb, UsersError> {
    let mut entries = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, hash)) = line.split_once(':') else {
            return Err(UsersError::BadLine { line: i + 1 });
        };
        if user.is_empty() || !is_supported_hash(hash) {
            return Err(UsersError::BadLine { line: i + 1 });
        }
        entries.insert(user.to_string(), hash.to_string());
    }
    Ok(PasswordDb { entries })
}

fn is_supported_hash(h: &str) -> bool {
    h.starts_with("$argon2")
        || h.starts_with("$2a$")
        || h.starts_with("$2b$")
        || h.starts_with("$2y$")
}

impl PasswordDb {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks `password` for `user`. Slow on purpose (a password hash): run it on the pool. An
    /// unknown user is checked against a dummy hash so both paths cost the same.
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        self.check(user, password) == Some(true)
    }

    /// As [`PasswordDb::verify`], telling an unknown user (`None`) from a wrong password; both
    /// cost one hash.
    pub fn check(&self, user: &str, password: &[u8]) -> Option<bool> {
        match self.entries.get(user) {
            Some(h) => Some(verify_hash(h, password)),
            None => {
                let _ = verify_hash(DUMMY_HASH, password);
                None
            }
        }
    }

    /// Adds or replaces a user's hash (for `sshfront passwd USER`).
    pub fn set(&mut self, user: &str, hash: String) {
        self.entries.insert(user.to_string(), hash);
    }

    /// The file text, one `user:hash` per line, sorted by user.
    pub fn to_file_text(&self) -> String {
        let mut users: Vec<_> = self.entries.iter().collect();
        users.sort();
        users.iter().map(|(u, h)| format!("{u}:{h}\n")).collect()
    }
}

/// Verifies a password against an argon2 (PHC string) or bcrypt (`$2b$…`) hash.
pub fn verify_hash(hash: &str, password: &[u8]) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    // Fuzzing stand-in: `$fuzz-plain$PASSWORD` compares in the clear (argon2 costs milliseconds
    // per try). Only the fuzz targets' password database holds such an entry.
    #[cfg(feature = "fuzzing")]
    if let Some(plain) = hash.strip_prefix("$fuzz-plain$") {
        return plain.as_bytes() == password;
    }
    if hash.starts_with("$argon2") {
        let Ok(parsed) = PasswordHash::new(hash) else {
            return false;
        };
        return argon2::Argon2::default().verify_password(password, &parsed).is_ok();
    }
    if hash.starts_with("$2") {
        return bcrypt::verify(password, hash).unwrap_or(false);
    }
    false
}

/// A fresh argon2id hash (default parameters, random salt) for the password file.
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

pub(super) fn read_bounded(path: &Path) -> Result<String, UsersError> {
    use std::io::Read;
    let io = |err| UsersError::Io { path: path.to_path_buf(), err };
    let f = std::fs::File::open(path).map_err(io)?;
    let mut text = String::new();
    f.take(MAX_FILE_LEN + 1).read_to_string(&mut text).map_err(io)?;
    if text.len() as u64 > MAX_FILE_LEN {
        return Err(UsersError::TooLarge { path: path.to_path_buf() });
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti";

    #[test]
    fn plain_key_line() {
        let k = parse_authorized_line(&format!("{ED} me@host")).unwrap();
        assert_eq!(k.algorithm, "ssh-ed25519");
        assert_eq!(k.options, KeyOptions::default());
        assert_eq!(&k.blob[4..15], b"ssh-ed25519");
    }

    #[test]
    fn options_from_permitopen_restrict_command() {
        let line = format!(
            "restrict,from=\"10.0.0.0/8,!10.1.2.3\",permitopen=\"db:5432\",permitopen=\"*:80\",\
             permitlisten=\"8080\",command=\"echo hi there\" {ED} c"
        );
        let k = parse_authorized_line(&line).unwrap();
        assert!(k.options.no_port_forwarding, "restrict implies no-port-forwarding");
        assert_eq!(k.options.from, Some(vec!["10.0.0.0/8".into(), "!10.1.2.3".into()]));
        assert_eq!(k.options.permit_open, Some(vec!["db:5432".into(), "*:80".into()]));
        assert_eq!(k.options.permit_listen, Some(vec!["8080".into()]));
        assert_eq!(k.options.command.as_deref(), Some("echo hi there"));
    }

    #[test]
    fn restrict_then_port_forwarding_reallows() {
        let k = parse_authorized_line(&format!("restrict,port-forwarding {ED}")).unwrap();
        assert!(!k.options.no_port_forwarding);
        let k = parse_authorized_line(&format!("no-port-forwarding,no-pty {ED}")).unwrap();
        assert!(k.options.no_port_forwarding);
        assert!(k.options.no_pty);
    }

    #[test]
    fn restrict_denies_pty_until_pty() {
        let k = parse_authorized_line(&format!("restrict {ED}")).unwrap();
        assert!(k.options.no_pty);
        let k = parse_authorized_line(&format!("restrict,pty {ED}")).unwrap();
        assert!(!k.options.no_pty && k.options.no_port_forwarding);
        assert!(k.options.no_agent_forwarding, "restrict implies no-agent-forwarding");
        let k = parse_authorized_line(&format!("restrict,agent-forwarding {ED}")).unwrap();
        assert!(!k.options.no_agent_forwarding);
        let k = parse_authorized_line(&format!("no-agent-forwarding {ED}")).unwrap();
        assert!(k.options.no_agent_forwarding && !k.options.no_pty);
        let k = parse_authorized_line(&format!("command=\"x\" {ED}")).unwrap();
        assert!(!k.options.no_pty);
    }

    #[test]
    fn security_key_lines_and_their_options() {
        // Made by `ssh-keygen -t ed25519-sk` / `-t ecdsa-sk` with OpenSSH's sk-dummy provider.
        let ed = "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIHbHv3o1WWICNzhunw3VusTmHhcYLVm2Sy18Cb8rndu3AAAABHNzaDo= u@h";
        let ec = "sk-ecdsa-sha2-nistp256@openssh.com AAAAInNrLWVjZHNhLXNoYTItbmlzdHAyNTZAb3BlbnNzaC5jb20AAAAIbmlzdHAyNTYAAABBBO/mWf9R2KcD2Z02LOSt7eDks1Ok3XZ/iMpW9pKrowuRZ0rvvBrx/BfgTdF6fSbSJGSPkcLhR4mpELaSEzDUx9QAAAAEc3NoOg== u@h";
        let k = parse_authorized_line(ed).expect("sk-ed25519 line");
        assert_eq!(k.algorithm, "sk-ssh-ed25519@openssh.com");
        assert!(!k.options.no_touch_required && !k.options.verify_required);
        let k = parse_authorized_line(&format!("no-touch-required {ec}")).expect("sk-ecdsa");
        assert_eq!(k.algorithm, "sk-ecdsa-sha2-nistp256@openssh.com");
        assert!(k.options.no_touch_required);
        let k = parse_authorized_line(&format!("verify-required,restrict {ed}")).unwrap();
        assert!(k.options.verify_required && k.options.no_port_forwarding);
        // The blob is the wire form: type, key, application "ssh:".
        let mut r = crate::wire::Reader::new(&k.blob);
        assert_eq!(r.string("t").unwrap(), b"sk-ssh-ed25519@openssh.com");
        assert_eq!(r.string("k").unwrap().len(), 32);
        assert_eq!(r.string("app").unwrap(), b"ssh:");
    }

    #[test]
    fn unsupported_or_bad_lines_are_skipped() {
        assert!(parse_authorized_line(&format!("cert-authority {ED}")).is_none());
        assert!(parse_authorized_line(&format!("bogus-option {ED}")).is_none());
        assert!(parse_authorized_line("ssh-ed25519 notbase64!!").is_none());
        assert!(parse_authorized_line(&format!("command=\"unterminated {ED}")).is_none());
        let text = format!("# comment\n\nbogus {ED}\n{ED} ok\n");
        assert_eq!(parse_authorized_keys(&text).len(), 1);
    }

    #[test]
    fn user_path_expansion_refuses_traversal() {
        assert_eq!(expand_user_path("/k/%u.keys", "bob"), Some(PathBuf::from("/k/bob.keys")));
        assert_eq!(expand_user_path("/k/%%%u", "bob"), Some(PathBuf::from("/k/%bob")));
        assert_eq!(expand_user_path("/k/%u", "../etc"), None);
        assert_eq!(expand_user_path("/k/%u", "a/b"), None);
        assert_eq!(expand_user_path("/k/%u", ""), None);
        assert_eq!(expand_user_path("/k/fixed", "../x"), Some(PathBuf::from("/k/fixed")));
    }

    #[test]
    fn password_check_tells_unknown_users_apart() {
        let db = parse_password_file(&format!("alice:{}\n", hash_password("pw").unwrap())).unwrap();
        assert_eq!(db.check("alice", b"pw"), Some(true));
        assert_eq!(db.check("alice", b"no"), Some(false));
        assert_eq!(db.check("mallory", b"pw"), None);
        assert!(!db.verify("mallory", b"pw"));
    }

    #[test]
    fn password_file_argon2_and_bcrypt() {
        let a = hash_password("s3cret").unwrap();
        assert!(a.starts_with("$argon2id$"));
        let b = bcrypt::hash("hunter2", 4).unwrap();
        let db = parse_password_file(&format!("# users\nalice:{a}\nbob:{b}\n")).unwrap();
        assert_eq!(db.len(), 2);
        assert!(db.verify("alice", b"s3cret"));
        assert!(!db.verify("alice", b"wrong"));
        assert!(db.verify("bob", b"hunter2"));
        assert!(!db.verify("bob", b"hunter3"));
        assert!(!db.verify("mallory", b"s3cret"), "unknown user: dummy hash, never matches");
        assert!(parse_password_file("x:plaintext\n").is_err());
        assert!(parse_password_file("nocolon\n").is_err());
    }

    #[test]
    fn dummy_hash_parses_so_unknown_users_pay_the_full_cost() {
        use argon2::password_hash::PasswordHash;
        let h = PasswordHash::new(DUMMY_HASH).unwrap();
        assert_eq!(h.algorithm.as_str(), "argon2id");
        assert!(!verify_hash(DUMMY_HASH, b"anything"));
    }
}
