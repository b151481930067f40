//! Host keys: load `--host-key` files, or load-or-generate the default set in the data dir.
//!
//! Like sshd we refuse a private key that group or others may read or write: a leaked host key
//! lets anyone impersonate the server. Generated files are written atomically (temporary file,
//! fsync, rename) so a crash never leaves half a key that the next start would refuse or, worse,
//! accept.
//!
//! The file handling is generic over [`KeyOps`] so it can be tested with a fake key type; the
//! real one is [`RealKeys`] (`HostKeyPair` + `ssh-key` for the `.pub` line).

use crate::algo::host_key::{HostKeyPair, KeyKind};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Keys generated on first start when no `--host-key` is given: (file name, kind).
pub const DEFAULT_KEYS: &[(&str, KeyKind)] = &[
    ("ssh_host_ed25519_key", KeyKind::Ed25519),
    ("ssh_host_ecdsa_key", KeyKind::EcdsaP256),
    ("ssh_host_rsa_key", KeyKind::Rsa { bits: DEFAULT_RSA_BITS }),
];
/// RSA modulus size for a generated host key (OpenSSH's ssh-keygen default).
pub const DEFAULT_RSA_BITS: usize = 3072;

/// What file handling needs from a key implementation.
pub trait KeyOps {
    type Key;
    fn parse(&self, text: &str) -> Result<Self::Key, String>;
    /// A new key and its private-key file text.
    fn generate(&self, kind: KeyKind) -> Result<(Self::Key, String), String>;
    /// The `.pub` line for a private-key file text.
    fn public_line(&self, private_text: &str) -> Result<String, String>;
}

/// The real key type.
pub struct RealKeys;

impl KeyOps for RealKeys {
    type Key = HostKeyPair;
    fn parse(&self, text: &str) -> Result<HostKeyPair, String> {
        HostKeyPair::from_openssh(text).map_err(|e| e.to_string())
    }
    fn generate(&self, kind: KeyKind) -> Result<(HostKeyPair, String), String> {
        HostKeyPair::generate(kind).map_err(|e| e.to_string())
    }
    fn public_line(&self, private_text: &str) -> Result<String, String> {
        let key = ssh_key::PrivateKey::from_openssh(private_text).map_err(|e| e.to_string())?;
        key.public_key().to_openssh().map_err(|e| e.to_string())
    }
}

/// Loads each given key file (checking permissions first).
pub fn load_files<K: KeyOps>(ops: &K, files: &[PathBuf]) -> Result<Vec<K::Key>, String> {
    files.iter().map(|p| load_file(ops, p)).collect()
}

/// Loads one private key file after checking its mode.
pub fn load_file<K: KeyOps>(ops: &K, path: &Path) -> Result<K::Key, String> {
    check_private_mode(path)?;
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    ops.parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Loads the default key set from `dir`, generating (and writing) each missing one.
pub fn load_or_generate<K: KeyOps>(ops: &K, dir: &Path) -> Result<Vec<K::Key>, String> {
    ensure_private_dir(dir)?;
    let mut keys = Vec::with_capacity(DEFAULT_KEYS.len());
    for &(name, kind) in DEFAULT_KEYS {
        let path = dir.join(name);
        if path.exists() {
            keys.push(load_file(ops, &path)?);
            continue;
        }
        let (key, text) = ops.generate(kind).map_err(|e| format!("generating {name}: {e}"))?;
        write_atomic(&path, text.as_bytes(), 0o600)?;
        match ops.public_line(&text) {
            Ok(line) => write_atomic(
                &dir.join(format!("{name}.pub")),
                format!("{line}\n").as_bytes(),
                0o644,
            )?,
            // The .pub file is a convenience for operators; the server does not need it.
            Err(e) => log::warn!("{}.pub not written: {e}", path.display()),
        }
        log::info!("generated host key {}", path.display());
        keys.push(key);
    }
    Ok(keys)
}

/// Creates `dir` (and parents) with mode 0700 if it does not exist.
pub fn ensure_private_dir(dir: &Path) -> Result<(), String> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("creating {}: {e}", dir.display()))
}

/// Refuses a private key file that group or others can access, as sshd does.
pub fn check_private_mode(path: &Path) -> Result<(), String> {
    let meta = fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{}: not a regular file", path.display()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{}: permissions {mode:04o} are too open; a private key must not be accessible by \
             group or others (chmod 600)",
            path.display()
        ));
    }
    Ok(())
}

/// Writes `bytes` to `path` with `mode`: a temporary file in the same directory, fsync, rename.
/// Readers see the old file or the complete new one, never a partial one.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    let err = |e: std::io::Error| format!("writing {}: {e}", path.display());
    let file_name = path.file_name().ok_or_else(|| format!("{}: no file name", path.display()))?;
    let tmp =
        path.with_file_name(format!(".{}.tmp.{}", file_name.to_string_lossy(), std::process::id()));
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        // The umask may have narrowed the mode; we want exactly `mode`.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!(
                "sshfront-hk-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = fs::remove_dir_all(&p);
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// A fake key: the "key" is the file text.
    struct Fake {
        generated: Cell<usize>,
    }
    impl KeyOps for Fake {
        type Key = String;
        fn parse(&self, text: &str) -> Result<String, String> {
            text.starts_with("FAKE ").then(|| text.to_string()).ok_or("not a fake key".into())
        }
        fn generate(&self, kind: KeyKind) -> Result<(String, String), String> {
            self.generated.set(self.generated.get() + 1);
            let t = format!("FAKE {kind:?}");
            Ok((t.clone(), t))
        }
        fn public_line(&self, text: &str) -> Result<String, String> {
            Ok(format!("fake-pub {text}"))
        }
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn generates_once_with_private_modes_then_reuses() {
        let t = TempDir::new("gen");
        let dir = t.0.join("data");
        let ops = Fake { generated: Cell::new(0) };
        let keys = load_or_generate(&ops, &dir).unwrap();
        assert_eq!(keys.len(), 3);
        assert_eq!(ops.generated.get(), 3);
        assert_eq!(mode(&dir), 0o700);
        for (name, _) in DEFAULT_KEYS {
            assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
            assert!(dir.join(format!("{name}.pub")).exists());
        }
        let again = load_or_generate(&ops, &dir).unwrap();
        assert_eq!(again, keys);
        assert_eq!(ops.generated.get(), 3, "second start must reuse the keys");
        // No temporary files left behind.
        let names: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 6, "{names:?}");
    }

    #[test]
    fn refuses_group_or_world_readable_keys() {
        let t = TempDir::new("perm");
        ensure_private_dir(&t.0).unwrap();
        let p = t.0.join("k");
        write_atomic(&p, b"FAKE x", 0o644).unwrap();
        let ops = Fake { generated: Cell::new(0) };
        let e = load_file(&ops, &p).unwrap_err();
        assert!(e.contains("too open") && e.contains("0644"), "{e}");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(load_file(&ops, &p).unwrap(), "FAKE x");
    }

    #[test]
    fn missing_and_unparsable_files_name_the_path() {
        let t = TempDir::new("bad");
        ensure_private_dir(&t.0).unwrap();
        let ops = Fake { generated: Cell::new(0) };
        let missing = t.0.join("nope");
        assert!(load_file(&ops, &missing).unwrap_err().contains("nope"));
        let p = t.0.join("garbage");
        write_atomic(&p, b"garbage", 0o600).unwrap();
        assert!(load_file(&ops, &p).unwrap_err().contains("garbage"));
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let t = TempDir::new("atomic");
        ensure_private_dir(&t.0).unwrap();
        let p = t.0.join("f");
        write_atomic(&p, b"first version", 0o600).unwrap();
        write_atomic(&p, b"2nd", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"2nd");
        assert_eq!(mode(&p), 0o600);
    }
}
