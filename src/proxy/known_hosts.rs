//! Pinned upstream host keys in OpenSSH known_hosts form: plain patterns (`host`, `[host]:port`,
//! wildcards, `!negation`) and hashed names (`|1|salt|hash`, HMAC-SHA1 of the name). Parsed at
//! load time by ssh-key; matched here.

use crate::auth::policy::wildcard_match;
use ssh_key::known_hosts::{Entry, HostPatterns, KnownHosts, Marker};

/// The keys pinned for one route.
#[derive(Debug, Clone, Default)]
pub struct PinnedKeys {
    entries: Vec<(HostPatterns, Vec<u8>, bool)>,
}

/// What the pinned list says about a key an upstream presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Match,
    /// Keys are pinned for this host, and this is not one of them: refuse.
    Mismatch,
    /// Nothing pinned for this host name: refuse too (a route with known_hosts pins every
    /// upstream).
    Unknown,
    /// The key is marked @revoked.
    Revoked,
}

impl PinnedKeys {
    /// Parses known_hosts text; `Err` names the 1-based line.
    pub fn parse(text: &str) -> Result<PinnedKeys, (usize, String)> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let mut one = KnownHosts::new(t);
            let e: Entry = match one.next() {
                Some(Ok(e)) => e,
                Some(Err(e)) => return Err((i + 1, format!("not a known_hosts entry: {e}"))),
                None => continue,
            };
            if matches!(e.marker(), Some(Marker::CertAuthority)) {
                return Err((i + 1, "@cert-authority entries are not supported".into()));
            }
            let blob = e.public_key().to_bytes().map_err(|e| (i + 1, e.to_string()))?;
            let revoked = matches!(e.marker(), Some(Marker::Revoked));
            entries.push((e.host_patterns().clone(), blob, revoked));
        }
        Ok(PinnedKeys { entries })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks the key blob `key` presented by `host:port`.
    pub fn check(&self, host: &str, port: u16, key: &[u8]) -> Verdict {
        let name = host_name(host, port);
        let mut known = false;
        for (patterns, blob, revoked) in &self.entries {
            if !matches_host(patterns, &name) {
                continue;
            }
            if blob == key {
                if *revoked {
                    return Verdict::Revoked;
                }
                return Verdict::Match;
            }
            known |= !*revoked;
        }
        if known {
            Verdict::Mismatch
        } else {
            Verdict::Unknown
        }
    }
}

/// The name OpenSSH looks up: `host` on port 22, `[host]:port` otherwise.
pub fn host_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

fn matches_host(p: &HostPatterns, name: &str) -> bool {
    match p {
        HostPatterns::Patterns(list) => {
            let mut hit = false;
            for pat in list {
                if let Some(neg) = pat.strip_prefix('!') {
                    if wildcard_match(neg, name) {
                        return false;
                    }
                } else if wildcard_match(pat, name) {
                    hit = true;
                }
            }
            hit
        }
        HostPatterns::HashedName { salt, hash } => {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, salt);
            ring::hmac::verify(&key, name.as_bytes(), hash).is_ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algo::host_key::{HostKeyPair, KeyKind};
    use base64ct::{Base64, Encoding};

    fn key_line(k: &HostKeyPair) -> String {
        let pk = ssh_key::PublicKey::from_bytes(k.public_blob()).unwrap();
        pk.to_openssh().unwrap()
    }

    #[test]
    fn plain_hashed_port_and_revoked() {
        let (a, _) = HostKeyPair::generate(KeyKind::Ed25519).unwrap();
        let (b, _) = HostKeyPair::generate(KeyKind::Ed25519).unwrap();
        let salt = [9u8; 20];
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &salt);
        let h = ring::hmac::sign(&k, b"[db2]:2222");
        let text = format!(
            "# pinned\ndb1,db1.internal {a}\n|1|{s}|{h} {a}\n@revoked db3 {b}\n",
            a = key_line(&a),
            b = key_line(&b),
            s = Base64::encode_string(&salt),
            h = Base64::encode_string(h.as_ref()),
        );
        let p = PinnedKeys::parse(&text).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p.check("db1", 22, a.public_blob()), Verdict::Match);
        assert_eq!(p.check("db1", 22, b.public_blob()), Verdict::Mismatch);
        assert_eq!(p.check("db1", 2222, a.public_blob()), Verdict::Unknown);
        assert_eq!(p.check("db2", 2222, a.public_blob()), Verdict::Match, "hashed entry");
        assert_eq!(p.check("db2", 2222, b.public_blob()), Verdict::Mismatch);
        assert_eq!(p.check("db3", 22, b.public_blob()), Verdict::Revoked);
        assert_eq!(PinnedKeys::parse("db1 ssh-ed25519 !!!\n").unwrap_err().0, 1);
    }
}
