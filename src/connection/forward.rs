//! Port-forwarding permissions: `--permit-open HOST:PORT` and `--permit-listen [HOST:]PORT`
//! patterns (sshd_config PermitOpen / PermitListen syntax, `*` wildcards), combined with the
//! key's `permitopen=` / `permitlisten=` / `no-port-forwarding` (sshd(8) AUTHORIZED_KEYS).
//! Both must allow: the command line sets the outer bound, the key narrows it.

use crate::auth::policy::wildcard_match;
use crate::config::users::KeyOptions;

/// True if `host:port` matches one of `patterns`. A pattern is `HOST:PORT` where HOST may use
/// `*`/`?` (IPv6 in brackets) and PORT is a number or `*`; `any` allows everything, `none` and
/// an empty list nothing.
pub fn permit_open_allows(patterns: &[String], host: &str, port: u16) -> bool {
    patterns.iter().any(|p| match p.as_str() {
        "any" => true,
        "none" => false,
        p => split_pattern(p)
            .is_some_and(|(h, pp)| port_matches(pp, port) && wildcard_match(h, host)),
    })
}

/// As [`permit_open_allows`] for listen requests; a bare `PORT` pattern allows any address.
/// A request for port 0 (the server picks) only matches a `*` port.
pub fn permit_listen_allows(patterns: &[String], addr: &str, port: u16) -> bool {
    patterns.iter().any(|p| match p.as_str() {
        "any" => true,
        "none" => false,
        p => {
            let (h, pp) = split_pattern(p).unwrap_or(("*", p));
            port_matches(pp, port) && wildcard_match(h, addr)
        }
    })
}

fn split_pattern(p: &str) -> Option<(&str, &str)> {
    let (h, port) = p.rsplit_once(':')?;
    let h = h.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(h);
    Some((h, port))
}

fn port_matches(pattern: &str, port: u16) -> bool {
    if pattern == "*" {
        return true;
    }
    port != 0 && pattern.parse::<u16>().is_ok_and(|p| p == port)
}

/// Whether a direct-tcpip to `host:port` may be opened on this connection.
pub fn may_open(policy: &[String], key: &KeyOptions, host: &str, port: u16) -> bool {
    !key.no_port_forwarding
        && permit_open_allows(policy, host, port)
        && key.permit_open.as_ref().is_none_or(|k| permit_open_allows(k, host, port))
}

/// Whether a tcpip-forward listen on `addr:port` may be requested on this connection.
pub fn may_listen(policy: &[String], key: &KeyOptions, addr: &str, port: u16) -> bool {
    !key.no_port_forwarding
        && permit_listen_allows(policy, addr, port)
        && key.permit_listen.as_ref().is_none_or(|k| permit_listen_allows(k, addr, port))
}

/// Whether a direct-streamlocal to the Unix socket `path` may be opened: `--permit-open-path`
/// globs (none by default), and not a `no-port-forwarding` key (as sshd).
pub fn may_open_path(patterns: &[String], key: &KeyOptions, path: &str) -> bool {
    !key.no_port_forwarding && patterns.iter().any(|p| wildcard_match(p, path))
}

/// Whether a streamlocal-forward may listen on `path`: `--permit-listen-path` globs.
pub fn may_listen_path(patterns: &[String], key: &KeyOptions, path: &str) -> bool {
    !key.no_port_forwarding && patterns.iter().any(|p| wildcard_match(p, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pats(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn permit_open_wildcards_and_ports() {
        let p = pats(&["db.internal:5432", "*.web.internal:443", "10.0.0.*:*", "[::1]:22"]);
        assert!(permit_open_allows(&p, "db.internal", 5432));
        assert!(permit_open_allows(&p, "DB.internal", 5432), "host names are case-insensitive");
        assert!(!permit_open_allows(&p, "db.internal", 5433));
        assert!(permit_open_allows(&p, "a.web.internal", 443));
        assert!(!permit_open_allows(&p, "web.internal", 443));
        assert!(!permit_open_allows(&p, "a.web.internal", 80));
        assert!(permit_open_allows(&p, "10.0.0.9", 1));
        assert!(permit_open_allows(&p, "10.0.0.9", 65535));
        assert!(!permit_open_allows(&p, "10.0.1.9", 1));
        assert!(permit_open_allows(&p, "::1", 22));
        assert!(!permit_open_allows(&[], "db.internal", 5432), "empty list: nothing");
        assert!(permit_open_allows(&pats(&["any"]), "x", 1));
        assert!(!permit_open_allows(&pats(&["none"]), "x", 1));
        assert!(!permit_open_allows(&pats(&["db:notaport"]), "db", 1));
    }

    #[test]
    fn permit_listen_forms() {
        let p = pats(&["8080", "localhost:9000", "127.0.0.1:*"]);
        assert!(permit_listen_allows(&p, "", 8080), "bare port: any address");
        assert!(permit_listen_allows(&p, "0.0.0.0", 8080));
        assert!(permit_listen_allows(&p, "localhost", 9000));
        assert!(!permit_listen_allows(&p, "0.0.0.0", 9000));
        assert!(permit_listen_allows(&p, "127.0.0.1", 0), "port 0 only with *");
        assert!(!permit_listen_allows(&p, "localhost", 0));
    }

    #[test]
    fn socket_path_globs() {
        let p = pats(&["/run/app/*.sock", "/tmp/exact.sock"]);
        let key = KeyOptions::default();
        assert!(may_open_path(&p, &key, "/run/app/db.sock"));
        assert!(may_open_path(&p, &key, "/tmp/exact.sock"));
        assert!(!may_open_path(&p, &key, "/run/other/db.sock"));
        assert!(!may_open_path(&[], &key, "/tmp/exact.sock"), "off by default");
        assert!(may_listen_path(&p, &key, "/run/app/x.sock"));
        let key = KeyOptions { no_port_forwarding: true, ..KeyOptions::default() };
        assert!(!may_open_path(&p, &key, "/tmp/exact.sock"));
        assert!(!may_listen_path(&p, &key, "/tmp/exact.sock"));
    }

    #[test]
    fn key_options_narrow_the_policy() {
        let policy = pats(&["*:*"]);
        let mut key = KeyOptions { permit_open: Some(pats(&["db:5432"])), ..KeyOptions::default() };
        assert!(may_open(&policy, &key, "db", 5432));
        assert!(!may_open(&policy, &key, "other", 5432));
        assert!(!may_open(&pats(&["other:1"]), &key, "db", 5432), "policy still bounds");
        key.no_port_forwarding = true;
        assert!(!may_open(&policy, &key, "db", 5432));
        assert!(!may_listen(&policy, &key, "", 8080));
        let key =
            KeyOptions { permit_listen: Some(pats(&["localhost:8080"])), ..KeyOptions::default() };
        assert!(may_listen(&policy, &key, "localhost", 8080));
        assert!(!may_listen(&policy, &key, "", 8080));
    }
}
