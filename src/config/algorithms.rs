//! OpenSSH algorithm list syntax (`sshd_config(5)`, e.g. `Ciphers`), checked against the
//! registry's name tables.
//!
//! - `a,b` replaces the default list;
//! - `+a,b` appends to the default list;
//! - `-a,b` removes from the default list;
//! - `^a,b` puts them at the head of the default list.
//!
//! Any item may be a pattern with `*` and `?` (as OpenSSH's `match_pattern`); it expands to the
//! matching names of the table in table order. A literal name or a pattern that matches nothing
//! is an error, so a typo never silently changes what is offered.

use super::ConfigError;

/// Applies `spec` (the flag's value, if given) to `default`, checking every name against
/// `all`. Without a spec the default is returned unchanged (even if empty: the registries decide
/// what exists).
pub fn apply_list(
    flag: &'static str,
    spec: Option<&str>,
    all: &[&'static str],
    default: &[&'static str],
) -> Result<Vec<&'static str>, ConfigError> {
    let Some(spec) = spec else {
        return Ok(default.to_vec());
    };
    let spec = spec.trim();
    let (op, rest) = match spec.chars().next() {
        Some(c @ ('+' | '-' | '^')) => (Some(c), spec.get(1..).unwrap_or("")),
        _ => (None, spec),
    };
    let items = expand(flag, rest, all)?;
    let out: Vec<&'static str> = match op {
        None => items,
        Some('+') => {
            let mut v = default.to_vec();
            push_unique(&mut v, &items);
            v
        }
        Some('-') => default.iter().copied().filter(|n| !items.contains(n)).collect(),
        Some(_) => {
            let mut v = items;
            let tail: Vec<&'static str> = default.to_vec();
            push_unique(&mut v, &tail);
            v
        }
    };
    if out.is_empty() {
        return Err(ConfigError::new(flag, format!("'{spec}' leaves no algorithm")));
    }
    Ok(out)
}

fn push_unique(v: &mut Vec<&'static str>, more: &[&'static str]) {
    for n in more {
        if !v.contains(n) {
            v.push(n);
        }
    }
}

/// Splits a comma list and expands each item against `all`, keeping first occurrences.
fn expand(
    flag: &'static str,
    list: &str,
    all: &[&'static str],
) -> Result<Vec<&'static str>, ConfigError> {
    let mut out = Vec::new();
    for item in list.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(ConfigError::new(flag, format!("empty name in list '{list}'")));
        }
        let matches: Vec<&'static str> = if item.contains(['*', '?']) {
            all.iter().copied().filter(|n| wildcard_match(item, n)).collect()
        } else {
            all.iter().copied().filter(|n| *n == item).collect()
        };
        if matches.is_empty() {
            let known = if all.is_empty() { "none".to_string() } else { all.join(",") };
            return Err(ConfigError::new(
                flag,
                format!("unknown algorithm '{item}' (known: {known})"),
            ));
        }
        push_unique(&mut out, &matches);
    }
    Ok(out)
}

/// Glob match with `*` (any run, possibly empty) and `?` (one character), iteratively with
/// one backtrack point, so a hostile pattern costs O(len(pattern) * len(name)) at worst.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == '?' || Some(&c) == n.get(ni) => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..).is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[&str] = &["aes128-ctr", "aes256-ctr", "aes128-gcm", "chacha20", "weak-sha1"];
    const DEF: &[&str] = &["chacha20", "aes128-gcm", "aes128-ctr", "aes256-ctr"];

    fn run(spec: &str) -> Result<Vec<&'static str>, ConfigError> {
        apply_list("--ciphers", Some(spec), ALL, DEF)
    }

    #[test]
    fn no_flag_keeps_default() {
        assert_eq!(apply_list("--ciphers", None, ALL, DEF).unwrap(), DEF);
    }

    #[test]
    fn plain_list_replaces_in_given_order() {
        assert_eq!(run("aes256-ctr,chacha20").unwrap(), ["aes256-ctr", "chacha20"]);
    }

    #[test]
    fn plus_appends_and_may_enable_off_by_default() {
        assert_eq!(run("+weak-sha1").unwrap(), [DEF, &["weak-sha1"]].concat());
        // Already present: no duplicate.
        assert_eq!(run("+chacha20").unwrap(), DEF);
    }

    #[test]
    fn minus_removes_with_wildcards() {
        assert_eq!(run("-aes*-ctr").unwrap(), ["chacha20", "aes128-gcm"]);
        assert_eq!(run("-aes128-?cm,chacha20").unwrap(), ["aes128-ctr", "aes256-ctr"]);
    }

    #[test]
    fn caret_puts_first() {
        assert_eq!(
            run("^aes256-ctr").unwrap(),
            ["aes256-ctr", "chacha20", "aes128-gcm", "aes128-ctr"]
        );
        assert_eq!(run("^weak-sha1").unwrap()[0], "weak-sha1");
    }

    #[test]
    fn wildcard_in_plain_list_expands_in_table_order() {
        assert_eq!(run("aes*").unwrap(), ["aes128-ctr", "aes256-ctr", "aes128-gcm"]);
    }

    #[test]
    fn unknown_names_are_errors_naming_the_flag() {
        let e = run("aes128-ctr,rot13").unwrap_err();
        assert_eq!(e.flag, "--ciphers");
        assert!(e.to_string().contains("rot13"), "{e}");
        assert!(run("+nope*").is_err());
        assert!(run("-nope").is_err());
    }

    #[test]
    fn empty_lists_are_errors() {
        assert!(run("").is_err());
        assert!(run("+").is_err());
        assert!(run("a,,b").is_err());
        assert!(run("-*").is_err());
    }

    #[test]
    fn wildcard_matcher() {
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a*c", "abbbc"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("a?c", "ac"));
        assert!(wildcard_match("*@openssh.com", "zlib@openssh.com"));
        assert!(!wildcard_match("zlib", "zlib@openssh.com"));
        assert!(wildcard_match("**a**", "xxaxx"));
    }
}
