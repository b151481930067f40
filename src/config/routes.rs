//! `--routes FILE`: the session proxy's routes in TOML, read and validated at startup. Every
//! error names `file:line`. Paths inside (identity files, known_hosts, record dirs) are taken
//! relative to the routes file. Example:
//!
//! ```toml
//! user_split = "+"              # optional: "db+alice" is user alice, target db
//!
//! [[route]]
//! name = "db"                   # optional; log and metric label (default route<N>)
//! target = "db"                 # optional glob on the target part; needs user_split
//! user = "*"                    # glob on the user part
//! source = ["10.0.0.0/8"]       # optional CIDRs (the real source, after PROXY)
//! upstreams = ["db1:22", "db2:22"]
//! balance = "hash-user"         # round-robin (default) | least-conn | hash-user
//! upstream_user = "postgres"    # default: the same name
//! known_hosts = "db_known_hosts"
//! auth = "key"                  # key | password | agent
//! identity_file = "gw_ed25519"  # with auth = "key"
//! connect_timeout = 5           # seconds (default 10)
//! login_timeout = 20            # upstream KEX + auth, seconds (default 30)
//! record_dir = "/var/log/sshfront/db" # PTY sessions as asciicast v2, one file each
//! record_max_size = "16M"       # per recording (default: --record-max-size)
//! health_interval = 10          # seconds; health_fall / health_rise: consecutive results
//! ```

use crate::algo::host_key::HostKeyPair;
use crate::proxy::health::HealthConfig;
use crate::proxy::known_hosts::PinnedKeys;
use crate::proxy::{Balance, Route, Routes, Upstream, UpstreamAuth};
use crate::proxy_protocol::Cidr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use toml::{Table, Value};

/// Largest routes file we read.
const MAX_FILE: u64 = 4 << 20;
/// Most routes and upstreams per route (metric labels come from route names: a fixed, small set).
const MAX_ROUTES: usize = 1024;
const MAX_UPSTREAMS: usize = 256;

const ROUTE_KEYS: &[&str] = &[
    "name",
    "target",
    "user",
    "source",
    "upstreams",
    "balance",
    "upstream_user",
    "known_hosts",
    "auth",
    "identity_file",
    "connect_timeout",
    "login_timeout",
    "record_dir",
    "record_max_size",
    "health_interval",
    "health_fall",
    "health_rise",
];

/// Reads and validates the routes file.
pub fn load(path: &Path) -> Result<Routes, String> {
    let file = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| format!("{file}: {e}"))?;
    if meta.len() > MAX_FILE {
        return Err(format!("{file}: larger than {MAX_FILE} bytes"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: {e}"))?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, &file, base, &|p| std::fs::read_to_string(p).map_err(|e| e.to_string()))
}

/// Parses routes text; `read` loads the files it names (identity files, known_hosts).
pub fn parse(
    text: &str,
    file: &str,
    base: &Path,
    read: &dyn Fn(&Path) -> Result<String, String>,
) -> Result<Routes, String> {
    let table: Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e.span().map_or(1, |s| line_of(text, s.start));
        format!("{file}:{line}: {}", e.message())
    })?;
    from_table(&table, text, file, base, read)
}

/// The `[routes]` table of a `--config` file (`user_split`, `[[routes.route]]`), with the same
/// keys and checks as a routes file; paths are relative to the config file.
pub fn parse_config_section(text: &str, path: &Path) -> Result<Routes, String> {
    let file = path.display().to_string();
    let table: Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e.span().map_or(1, |s| line_of(text, s.start));
        format!("{file}:{line}: {}", e.message())
    })?;
    let Some(Value::Table(routes)) = table.get("routes") else {
        return Err(format!("{file}: [routes] must be a table"));
    };
    let base = path.parent().unwrap_or(Path::new("."));
    from_table(routes, text, &file, base, &|p| {
        std::fs::read_to_string(p).map_err(|e| e.to_string())
    })
}

fn from_table(
    table: &Table,
    text: &str,
    file: &str,
    base: &Path,
    read: &dyn Fn(&Path) -> Result<String, String>,
) -> Result<Routes, String> {
    let headers = route_lines(text);
    let mut split = None;
    let mut routes = Vec::new();
    for (k, v) in table {
        match (k.as_str(), v) {
            ("user_split", Value::String(s)) => {
                let mut c = s.chars();
                match (c.next(), c.next()) {
                    (Some(ch), None) if !ch.is_alphanumeric() => split = Some(ch),
                    _ => {
                        let line = key_line(text, 0, text.len(), "user_split");
                        return Err(format!(
                            "{file}:{line}: user_split must be one non-alphanumeric character"
                        ));
                    }
                }
            }
            ("route", Value::Array(list)) => {
                if list.len() > MAX_ROUTES {
                    return Err(format!("{file}: more than {MAX_ROUTES} routes"));
                }
                for (i, v) in list.iter().enumerate() {
                    let start = headers.get(i).copied().unwrap_or(0);
                    let end = headers.get(i + 1).copied().unwrap_or(text.len());
                    let cx = Cx { text, file, start, end, base, read };
                    let Value::Table(t) = v else {
                        return Err(cx.err(None, "route must be a table ([[route]])"));
                    };
                    routes.push(Arc::new(route(&cx, i, t)?));
                }
            }
            (k, _) => {
                let line = key_line(text, 0, text.len(), k);
                return Err(format!(
                    "{file}:{line}: unknown key {k:?} (expected user_split, [[route]])"
                ));
            }
        }
    }
    if routes.iter().any(|r| r.target.is_some()) && split.is_none() {
        return Err(format!("{file}: a route has `target` but user_split is not set"));
    }
    Ok(Routes { split, routes })
}

/// Where one route is in the text, for error lines.
struct Cx<'a> {
    text: &'a str,
    file: &'a str,
    /// Byte range of the route's block.
    start: usize,
    end: usize,
    base: &'a Path,
    read: &'a dyn Fn(&Path) -> Result<String, String>,
}

impl Cx<'_> {
    fn err(&self, key: Option<&str>, msg: impl std::fmt::Display) -> String {
        let line = match key {
            Some(k) => key_line(self.text, self.start, self.end, k),
            None => line_of(self.text, self.start),
        };
        format!("{}:{line}: {msg}", self.file)
    }

    fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }
}

fn route(cx: &Cx<'_>, i: usize, t: &Table) -> Result<Route, String> {
    for k in t.keys() {
        if !ROUTE_KEYS.contains(&k.as_str()) {
            return Err(cx.err(Some(k), format!("unknown route key {k:?}")));
        }
    }
    let s = |k: &str| -> Result<Option<String>, String> {
        match t.get(k) {
            None => Ok(None),
            Some(Value::String(v)) if !v.is_empty() => Ok(Some(v.clone())),
            Some(_) => Err(cx.err(Some(k), format!("{k} must be a non-empty string"))),
        }
    };
    let secs = |k: &str, default: u64| -> Result<Duration, String> {
        match t.get(k) {
            None => Ok(Duration::from_secs(default)),
            Some(Value::Integer(n)) if (1..=86_400).contains(n) => {
                Ok(Duration::from_secs(*n as u64))
            }
            Some(_) => Err(cx.err(Some(k), format!("{k} must be whole seconds, 1..=86400"))),
        }
    };
    let count = |k: &str, default: u32| -> Result<u32, String> {
        match t.get(k) {
            None => Ok(default),
            Some(Value::Integer(n)) if (1..=100).contains(n) => Ok(*n as u32),
            Some(_) => Err(cx.err(Some(k), format!("{k} must be 1..=100"))),
        }
    };
    let name = s("name")?.unwrap_or_else(|| format!("route{}", i + 1));
    if name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err(cx.err(Some("name"), "name: up to 64 of A-Z a-z 0-9 - _ ."));
    }
    let user = s("user")?.ok_or_else(|| cx.err(None, "route needs `user` (a name or glob)"))?;
    let target = s("target")?;
    let sources = match t.get("source") {
        None => Vec::new(),
        Some(Value::String(v)) => vec![Cidr::parse(v).map_err(|e| cx.err(Some("source"), e))?],
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| match v {
                Value::String(v) => Cidr::parse(v).map_err(|e| cx.err(Some("source"), e)),
                _ => Err(cx.err(Some("source"), "source: CIDR strings")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(cx.err(Some("source"), "source: a CIDR or a list of them")),
    };
    let upstreams = match t.get("upstreams") {
        Some(Value::Array(a)) if !a.is_empty() && a.len() <= MAX_UPSTREAMS => a
            .iter()
            .map(|v| match v {
                Value::String(v) => upstream(v).map_err(|e| cx.err(Some("upstreams"), e)),
                _ => Err(cx.err(Some("upstreams"), "upstreams: \"host:port\" strings")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => {
            let msg = format!("route needs `upstreams`: 1..={MAX_UPSTREAMS} \"host:port\" strings");
            return Err(cx.err(Some("upstreams"), msg));
        }
    };
    let balance = match s("balance")? {
        None => Balance::RoundRobin,
        Some(b) => Balance::from_name(&b).ok_or_else(|| {
            cx.err(Some("balance"), format!("balance {b:?}: round-robin, least-conn or hash-user"))
        })?,
    };
    let identity = s("identity_file")?;
    let mut identity_key = None;
    let auth = match (s("auth")?.as_deref(), identity) {
        (Some("key"), Some(f)) => {
            let p = cx.path(&f);
            let text = (cx.read)(&p).map_err(|e| cx.err(Some("identity_file"), e))?;
            let key = HostKeyPair::from_openssh(&text)
                .map_err(|e| cx.err(Some("identity_file"), format!("{}: {e}", p.display())))?;
            identity_key = Some(crate::proxy::route::Identity(Arc::new(key)));
            UpstreamAuth::Key(p)
        }
        (Some("key"), None) => {
            return Err(cx.err(Some("auth"), "auth = \"key\" needs identity_file"))
        }
        (Some("password"), None) => UpstreamAuth::Password,
        (Some("agent"), None) => UpstreamAuth::Agent,
        (Some("password" | "agent"), Some(_)) => {
            return Err(cx.err(Some("identity_file"), "identity_file only goes with auth = \"key\""))
        }
        (Some(a), _) => {
            return Err(cx.err(Some("auth"), format!("auth {a:?}: key, password or agent")))
        }
        (None, _) => return Err(cx.err(None, "route needs `auth` (key, password or agent)")),
    };
    let known_hosts = match s("known_hosts")? {
        None => None,
        Some(f) => {
            let p = cx.path(&f);
            let text = (cx.read)(&p).map_err(|e| cx.err(Some("known_hosts"), e))?;
            let pinned = PinnedKeys::parse(&text).map_err(|(line, e)| {
                cx.err(Some("known_hosts"), format!("{}:{line}: {e}", p.display()))
            })?;
            Some(Arc::new(pinned))
        }
    };
    let origin = format!("{}:{}", cx.file, line_of(cx.text, cx.start));
    let mut r = Route::new(name, origin, user, target, sources, upstreams, balance, auth);
    r.upstream_user = s("upstream_user")?;
    r.known_hosts = known_hosts;
    r.identity = identity_key;
    r.connect_timeout = secs("connect_timeout", 10)?;
    r.login_timeout = secs("login_timeout", 30)?;
    r.record_dir = s("record_dir")?.map(|d| cx.path(&d));
    r.record_max_bytes = match s("record_max_size")? {
        None => None,
        Some(v) => match crate::config::parse_size(&v) {
            Ok(n) if n >= 4096 => Some(n),
            Ok(_) => return Err(cx.err(Some("record_max_size"), "below the minimum of 4K")),
            Err(e) => return Err(cx.err(Some("record_max_size"), e)),
        },
    };
    r.health = HealthConfig {
        interval: secs("health_interval", 10)?,
        fall: count("health_fall", 3)?,
        rise: count("health_rise", 2)?,
    };
    Ok(r)
}

/// `host:port`, `[v6]:port`, or `host` (port 22).
fn upstream(s: &str) -> Result<Upstream, String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once(']').ok_or_else(|| format!("{s:?}: missing ]"))?;
        (h, p.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            Some(_) => return Err(format!("{s:?}: write IPv6 addresses as [addr]:port")),
            None => (s, None),
        }
    };
    if host.is_empty() || host.len() > 253 || host.contains(char::is_whitespace) {
        return Err(format!("{s:?}: bad host"));
    }
    let port = match port {
        None => 22,
        Some(p) => {
            p.parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(|| format!("{s:?}: bad port"))?
        }
    };
    Ok(Upstream::new(host.to_string(), port))
}

/// 1-based line of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes().iter().take(at).filter(|&&b| b == b'\n').count() + 1
}

/// Byte offsets of each `[[route]]` header line.
fn route_lines(text: &str) -> Vec<usize> {
    let mut v = Vec::new();
    let mut off = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with("[[") && t[2..].trim_start().starts_with("route") {
            v.push(off);
        }
        off += line.len();
    }
    v
}

/// Line of the first `key =` inside `text[start..end]` (the block's header line if none).
fn key_line(text: &str, start: usize, end: usize, key: &str) -> usize {
    let block = text.get(start..end).unwrap_or("");
    let mut off = start;
    for line in block.split_inclusive('\n') {
        if let Some(rest) = line.trim_start().strip_prefix(key) {
            if rest.trim_start().starts_with('=') {
                return line_of(text, off);
            }
        }
        off += line.len();
    }
    line_of(text, start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(p: &Path) -> Result<String, String> {
        match p.to_str() {
            Some("/etc/gw/kh") => Ok(String::new()),
            Some("/etc/gw/bad_kh") => Ok("# c\nhost ssh-ed25519 AAAA!!\n".into()),
            _ => Err("no such file".into()),
        }
    }

    fn load(text: &str) -> Result<Routes, String> {
        parse(text, "routes.toml", Path::new("/etc/gw"), &files)
    }

    #[test]
    fn a_full_file() {
        let r = load(
            r#"
user_split = "+"

[[route]]
name = "db"
target = "db"
user = "*"
source = ["10.0.0.0/8", "::1"]
upstreams = ["db1:2222", "[fd00::1]:22", "db3"]
balance = "hash-user"
upstream_user = "postgres"
known_hosts = "kh"
auth = "agent"
connect_timeout = 5

[[route]]
user = "alice"
upstreams = ["127.0.0.1:22"]
auth = "password"
record_dir = "rec"
record_max_size = "1M"
"#,
        )
        .unwrap();
        assert_eq!(r.split, Some('+'));
        assert_eq!(r.routes.len(), 2);
        let db = &r.routes[0];
        assert_eq!(db.upstreams[0].to_string(), "db1:2222");
        assert_eq!(db.upstreams[1].to_string(), "[fd00::1]:22");
        assert_eq!(db.upstreams[2].port, 22);
        assert_eq!(db.balance, Balance::HashUser);
        assert_eq!(db.connect_timeout, Duration::from_secs(5));
        assert!(db.known_hosts.is_some());
        assert_eq!(db.origin, "routes.toml:4");
        let a = &r.routes[1];
        assert_eq!(a.name, "route2");
        assert_eq!(a.auth, UpstreamAuth::Password);
        assert_eq!(a.record_dir.as_deref(), Some(Path::new("/etc/gw/rec")));
        assert_eq!(a.record_max_bytes, Some(1 << 20));
        assert_eq!(db.record_max_bytes, None);
    }

    #[test]
    fn a_routes_table_in_the_config_file() {
        let dir = std::env::temp_dir().join(format!("sshfront-routes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sshfront.toml");
        let text = "workers = 1\n\n[routes]\nuser_split = \"+\"\n\n[[routes.route]]\n\
                    name = \"db\"\nuser = \"*\"\nupstreams = [\"127.0.0.1:22\"]\n\
                    auth = \"password\"\nrecord_dir = \"rec\"\n\n[[routes.route]]\n\
                    user = \"x\"\nupstreams = [\"h\"]\nauth = \"agent\"\n";
        let r = parse_config_section(text, &path).unwrap();
        assert_eq!(r.split, Some('+'));
        assert_eq!(r.routes.len(), 2);
        assert_eq!(r.routes[0].origin, format!("{}:6", path.display()));
        assert_eq!(r.routes[0].record_dir.as_deref(), Some(dir.join("rec").as_path()));
        assert_eq!(r.routes[1].name, "route2");
        let bad = text.replace("auth = \"agent\"", "auth = \"magic\"");
        let e = parse_config_section(&bad, &path).unwrap_err();
        assert!(e.contains("sshfront.toml:16:"), "{e}");
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases = [
            ("[[route]]\nuser = \"a\"\nupstreams = [\"h:99999\"]\nauth = \"agent\"\n", ":3:"),
            ("[[route]]\nuser = \"a\"\nupstreams = [\"h\"]\nauth = \"magic\"\n", ":4:"),
            ("\n\n[[route]]\nupstreams = [\"h\"]\nauth = \"agent\"\n", ":3:"),
            ("[[route]]\nuser = \"a\"\nupstreams = [\"h\"]\nauth = \"agent\"\nusr = 1\n", ":5:"),
            ("[[route]]\nuser = \"a\"\nupstreams = [\"h\"]\nauth = \"key\"\n", ":4:"),
            (
                "[[route]]\nuser = \"a\"\nupstreams = [\"h\"]\nauth = \"key\"\nidentity_file = \"k\"\n",
                ":5:",
            ),
            ("[[route]]\nuser = \"a\"\nsource = \"10.0.0.1/8\"\nupstreams = [\"h\"]\n", ":3:"),
            (
                "[[route]]\nuser = \"a\"\nupstreams = [\"h\"]\nauth = \"agent\"\nknown_hosts = \"bad_kh\"\n",
                "bad_kh:2",
            ),
            ("user_split = \"ab\"\n", ":1:"),
            ("[[route]]\nuser = \"a\"\nupstreams = [\"h\"\n", "routes.toml:"),
            ("[[route]]\ntarget = \"db\"\nuser = \"a\"\nupstreams = [\"h\"]\nauth = \"agent\"\n", "user_split"),
            (
                "[[route]]\nuser = \"a\"\nupstreams = [\"h\"]\nauth = \"agent\"\nrecord_max_size = \"1K\"\n",
                ":5:",
            ),
        ];
        for (text, want) in cases {
            let e = load(text).expect_err(text);
            assert!(e.starts_with("routes.toml") && e.contains(want), "{text:?} gave {e:?}");
        }
    }
}
