//! `sshfront passwd USER`: add or replace one user's line in the password file with a fresh
//! argon2id hash. The password comes from the terminal with echo off (termios directly, no
//! extra crate) or, when stdin is not a terminal, from its first line (for scripts).
//! The file is rewritten atomically with mode 0600: a crash never leaves half a file, and the
//! hashes are never world-readable.

use super::host_keys::write_atomic;
use super::users::{hash_password, parse_password_file, MAX_FILE_LEN};
use crate::auth::msgs::MAX_PASSWORD_LEN;
use std::io::{BufRead, Read, Write};
use std::path::Path;

/// Reads the password, hashes it and writes `path` with `user`'s line added or replaced.
pub fn run(user: &str, path: &Path) -> Result<(), String> {
    check_user(user)?;
    let password = read_password(user)?;
    set_password(path, user, &password)
}

/// The same user names the server would look up: no `:` (the field separator), no newline.
fn check_user(user: &str) -> Result<(), String> {
    if user.is_empty()
        || user.len() > crate::auth::msgs::MAX_USER_LEN
        || user.contains([':', '\n', '\r', '\0'])
        || user.starts_with('#')
    {
        return Err(format!("{user:?} is not a usable user name"));
    }
    Ok(())
}

/// Adds or replaces `user`'s hash in `path` (created if missing), atomically, mode 0600.
pub fn set_password(path: &Path, user: &str, password: &str) -> Result<(), String> {
    check_user(user)?;
    if password.is_empty() {
        return Err("empty password".into());
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(format!("password longer than {MAX_PASSWORD_LEN} bytes"));
    }
    let text = match std::fs::File::open(path) {
        Ok(f) => {
            let mut t = String::new();
            f.take(MAX_FILE_LEN + 1)
                .read_to_string(&mut t)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            t
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut db = parse_password_file(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    db.set(user, hash_password(password)?);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    write_atomic(path, db.to_file_text().as_bytes(), 0o600)
}

fn read_password(user: &str) -> Result<String, String> {
    // SAFETY: isatty on our own stdin descriptor.
    let tty = unsafe { libc::isatty(libc::STDIN_FILENO) } == 1;
    if !tty {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .take(MAX_PASSWORD_LEN as u64 + 2)
            .read_line(&mut line)
            .map_err(|e| format!("reading stdin: {e}"))?;
        return Ok(line.trim_end_matches(['\n', '\r']).to_string());
    }
    let first = prompt_no_echo(&format!("Password for {user}: "))?;
    let again = prompt_no_echo("Retype password: ")?;
    if first != again {
        return Err("passwords do not match".into());
    }
    Ok(first)
}

/// Prompts on stderr and reads one line from the terminal with echo off; echo comes back even
/// if the read fails.
fn prompt_no_echo(prompt: &str) -> Result<String, String> {
    let mut err = std::io::stderr();
    let _ = err.write_all(prompt.as_bytes());
    let _ = err.flush();
    // SAFETY: termios is plain data; tcgetattr fills it for our stdin, which is a terminal.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut saved) } != 0 {
        return Err(format!("tcgetattr: {}", std::io::Error::last_os_error()));
    }
    let mut quiet = saved;
    quiet.c_lflag &= !libc::ECHO;
    quiet.c_lflag |= libc::ECHONL;
    // SAFETY: as above, with a copy of the settings we just read.
    if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSAFLUSH, &quiet) } != 0 {
        return Err(format!("tcsetattr: {}", std::io::Error::last_os_error()));
    }
    let mut line = String::new();
    let r = std::io::stdin().lock().take(MAX_PASSWORD_LEN as u64 + 2).read_line(&mut line);
    // SAFETY: restores the settings read above.
    unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSAFLUSH, &saved) };
    r.map_err(|e| format!("reading the terminal: {e}"))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::users::load_password_file;

    #[test]
    fn adds_and_replaces_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("sshfront-passwd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("passwords");
        set_password(&path, "alice", "one").unwrap();
        set_password(&path, "bob", "two").unwrap();
        set_password(&path, "alice", "three").unwrap();
        let db = load_password_file(&path).unwrap();
        assert_eq!(db.len(), 2);
        assert!(db.verify("alice", b"three"));
        assert!(!db.verify("alice", b"one"));
        assert!(db.verify("bob", b"two"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(set_password(&path, "a:b", "x").is_err());
        assert!(set_password(&path, "carol", "").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
