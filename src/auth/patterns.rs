//! Pattern matching shared by authorized_keys options, forwarding permissions and routes:
//! sshd's `*`/`?` wildcards and the `from=` address list. A leaf: it imports nothing of ours.

use std::net::IpAddr;

/// `*` and `?` wildcard match (sshd's match_pattern), ASCII case-insensitive as host names are.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p = pattern.as_bytes();
    let t = text.as_bytes();
    // Iterative with one backtrack point: linear-ish, no recursion on peer-controlled input.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == b'?' || t.get(ti).is_some_and(|x| x.eq_ignore_ascii_case(&c)) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..).is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

/// The `from=` option: the client's address must match a positive pattern and no negated one
/// (`!pattern`). Patterns are address wildcards (`10.0.*`) or CIDR (`10.0.0.0/8`). Host names
/// are not resolved (no DNS on a worker), so a name pattern never matches: fail closed.
pub fn from_allows(patterns: &[String], ip: IpAddr) -> bool {
    let text = ip.to_string();
    let mut allowed = false;
    for pat in patterns {
        let (negated, pat) = match pat.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pat.as_str()),
        };
        let hit = if pat.contains('/') { cidr_match(pat, ip) } else { wildcard_match(pat, &text) };
        if hit && negated {
            return false;
        }
        allowed |= hit;
    }
    allowed
}

fn cidr_match(pat: &str, ip: IpAddr) -> bool {
    let Some((addr, bits)) = pat.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(bits)) = (addr.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    let ip = match (net, ip) {
        (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        _ => ip,
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*", "anything"));
        assert!(wildcard_match("*.example.com", "db.Example.COM"));
        assert!(!wildcard_match("*.example.com", "example.com"));
        assert!(wildcard_match("10.0.?.1", "10.0.5.1"));
        assert!(!wildcard_match("10.0.?.1", "10.0.55.1"));
        assert!(wildcard_match("a*b*c", "aXXbYYc"));
        assert!(!wildcard_match("a*b*c", "aXXbYY"));
        assert!(!wildcard_match(&"*a".repeat(50), &"a".repeat(49)));
    }

    #[test]
    fn from_patterns() {
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let pats = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(from_allows(&pats(&["10.0.0.0/8"]), ip));
        assert!(!from_allows(&pats(&["10.0.0.0/8", "!10.1.2.3"]), ip));
        assert!(from_allows(&pats(&["10.1.2.*"]), ip));
        assert!(!from_allows(&pats(&["192.168.0.0/16"]), ip));
        assert!(!from_allows(&pats(&["host.example.com"]), ip), "names never match: no DNS");
        assert!(!from_allows(&[], ip));
        let v6: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert!(from_allows(&pats(&["10.0.0.0/8"]), v6));
        assert!(from_allows(&pats(&["0.0.0.0/0"]), ip));
        assert!(from_allows(&pats(&["2001:db8::/32"]), "2001:db8::1".parse().unwrap()));
    }
}
