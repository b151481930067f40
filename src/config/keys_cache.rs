//! authorized_keys files kept parsed while their metadata stays the same. Every publickey
//! login used to open, read, parse and close the file: about a tenth of the server's CPU per
//! handshake. A `stat` now tells whether the parsed copy is still the file's content (device,
//! inode, size, modification and change times to the nanosecond), so an edit or a replaced
//! file takes effect at the next login, as with sshd, which reads the file every time.
//!
//! The content stored is never older than the stamp it is stored under: the stamp is taken
//! before the read, so a file changed in between is read again at the next lookup.

use super::users::{expand_user_path, parse_authorized_keys, read_bounded, AuthorizedKey};
use super::users::{UsersError, MAX_KEYS};
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;

/// Parsed keys held at most, over all files (each file holds at most `MAX_KEYS`): bounds the
/// cache's memory when a `%u` template names many users' files.
const MAX_CACHED_KEYS: usize = 16 * MAX_KEYS;
/// Files held at most (empty files count too).
const MAX_FILES: usize = 4096;

/// What a file's metadata says about its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Self {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

struct Entry {
    stamp: Stamp,
    keys: Arc<[AuthorizedKey]>,
}

/// Parsed authorized_keys files by path. One per reader thread: no lock.
///
/// `%u` in a template is the user name, `%%` a `%`. A missing file is no keys (unknown users
/// take this path too). A user name that could escape the directory (`/`, leading `.`, NUL,
/// empty) is never put into a path: no keys.
#[derive(Default)]
pub struct KeysCache {
    files: HashMap<PathBuf, Entry>,
    keys: usize,
    hits: u64,
    reads: u64,
}

impl KeysCache {
    /// The keys of `user` under `template` (`Ok(None)`: the lookup says the user is unknown,
    /// as the template is per user and the file does not exist, or the name cannot be a path),
    /// from the parsed copy when the file's stamp has not changed.
    pub fn load(
        &mut self,
        template: &str,
        user: &str,
    ) -> Result<Option<Arc<[AuthorizedKey]>>, UsersError> {
        let per_user = template.contains("%u");
        let missing = || if per_user { None } else { Some(Arc::from(Vec::new())) };
        let Some(path) = expand_user_path(template, user) else {
            return Ok(missing());
        };
        let not_found = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
        let stamp = match std::fs::metadata(&path) {
            Ok(m) => Stamp::of(&m),
            Err(e) if not_found(&e) => {
                self.forget(&path);
                return Ok(missing());
            }
            Err(err) => return Err(UsersError::Io { path, err }),
        };
        if let Some(e) = self.files.get(&path).filter(|e| e.stamp == stamp) {
            self.hits += 1;
            return Ok(Some(e.keys.clone()));
        }
        let text = match read_bounded(&path) {
            Ok(t) => t,
            Err(UsersError::Io { err, .. }) if not_found(&err) => {
                self.forget(&path);
                return Ok(missing());
            }
            Err(e) => {
                self.forget(&path);
                return Err(e);
            }
        };
        self.reads += 1;
        let keys: Arc<[AuthorizedKey]> = parse_authorized_keys(&text).into();
        self.insert(path, Entry { stamp, keys: keys.clone() });
        Ok(Some(keys))
    }

    /// (lookups answered from the parsed copy, files read and parsed), for the tests.
    #[cfg(test)]
    pub fn counts(&self) -> (u64, u64) {
        (self.hits, self.reads)
    }

    fn forget(&mut self, path: &PathBuf) {
        if let Some(old) = self.files.remove(path) {
            self.keys -= old.keys.len();
        }
    }

    fn insert(&mut self, path: PathBuf, entry: Entry) {
        self.forget(&path);
        // Over a bound: make room by dropping files (any: a dropped file is only read again).
        while !self.files.is_empty()
            && (self.files.len() >= MAX_FILES || self.keys + entry.keys.len() > MAX_CACHED_KEYS)
        {
            let Some(victim) = self.files.keys().next().cloned() else { break };
            self.forget(&victim);
        }
        self.keys += entry.keys.len();
        self.files.insert(path, entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti";

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "sshfront-keys-cache-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn reads_once_then_again_after_an_edit_or_removal() {
        let d = dir();
        let path = d.join("keys");
        std::fs::write(&path, format!("{ED} a\n")).unwrap();
        let template = path.to_str().unwrap();
        let mut c = KeysCache::default();
        assert_eq!(c.load(template, "u").unwrap().unwrap().len(), 1);
        assert_eq!(c.load(template, "u").unwrap().unwrap().len(), 1);
        assert_eq!(c.counts(), (1, 1), "the second lookup is answered from the parsed copy");
        // An edit (other size, new times) is seen at the next lookup.
        std::fs::write(&path, format!("{ED} a\n{ED} b\n")).unwrap();
        assert_eq!(c.load(template, "u").unwrap().unwrap().len(), 2);
        assert_eq!(c.counts(), (1, 2));
        // A replaced file of the same size (a new inode) as well.
        let tmp = d.join("keys.new");
        std::fs::write(&tmp, format!("{ED} c\n{ED} d\n")).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        let keys = c.load(template, "u").unwrap().unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(c.counts(), (1, 3));
        // Removed: a shared file is no keys; the copy is dropped.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(c.load(template, "u").unwrap().unwrap().len(), 0);
        assert!(c.files.is_empty() && c.keys == 0);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn missing_file_is_no_keys() {
        let mut c = KeysCache::default();
        // Per user: a missing file means an unknown user.
        assert!(c.load("/nonexistent-sshfront-test/%u", "nobody").unwrap().is_none());
        assert!(c.load("/nonexistent-sshfront-test/%u", "../x").unwrap().is_none());
        // One shared file: its absence says nothing about the user.
        let shared = c.load("/nonexistent-sshfront-test/keys", "nobody").unwrap();
        assert_eq!(shared.map(|k| k.len()), Some(0));
    }

    #[test]
    fn per_user_files_and_unsafe_names() {
        let d = dir();
        std::fs::write(d.join("alice"), format!("{ED} a\n")).unwrap();
        let template = format!("{}/%u", d.display());
        let mut c = KeysCache::default();
        assert_eq!(c.load(&template, "alice").unwrap().unwrap().len(), 1);
        assert!(c.load(&template, "bob").unwrap().is_none(), "no file: unknown user");
        assert!(c.load(&template, "../alice").unwrap().is_none(), "never put into a path");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn bounded_in_files_and_keys() {
        let d = dir();
        let mut c = KeysCache::default();
        for i in 0..(MAX_FILES + 10) {
            let p = d.join(format!("f{i}"));
            std::fs::write(&p, "").unwrap();
            c.load(p.to_str().unwrap(), "u").unwrap();
            assert!(c.files.len() <= MAX_FILES);
        }
        assert!(c.keys <= MAX_CACHED_KEYS);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
