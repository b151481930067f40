//! Validated, immutable configuration built once from the command line (and again on SIGHUP).
//!
//! Everything is checked here, before any socket is opened: algorithm lists, sizes, durations
//! and host keys. Each error names the flag it came from, so `main` can print one line and exit
//! with status 2. Cheap checks run first and host keys last, so a typo is reported without
//! touching the file system.

pub mod algorithms;
pub mod file;
pub mod fleet;
pub mod host_keys;
pub mod keys_cache;
pub mod passwd;
pub mod penalties;
pub mod policy;
pub mod routes;
pub mod startups;
pub mod users;

use crate::algo::host_key::HostKeyAlg;
use crate::algo::kex::gex::GexGroups;
use crate::auth::policy::parse_auth_methods;
use crate::auth::{AuthPolicy, Method, PasswordSource};
use crate::cli::{available_cores, Args, LogLevel};
use crate::connection::ConnectionPolicy;
use crate::server::ServerConfig;
use crate::transport::config::{
    COMPRESSION_NONE, COMPRESSION_ZLIB, COMPRESSION_ZLIB_OPENSSH, DEFAULT_KEX_TIMEOUT,
    DEFAULT_MAX_HELD_BYTES,
};
use crate::transport::TransportConfig;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Compression names in preference order (all we implement).
pub const COMPRESSION_ALL: &[&str] =
    &[COMPRESSION_NONE, COMPRESSION_ZLIB_OPENSSH, COMPRESSION_ZLIB];
/// Offered by default: `zlib` (compression from the first packet) is not, as OpenSSH.
pub const DEFAULT_COMPRESSION: &[&str] = &[COMPRESSION_NONE, COMPRESSION_ZLIB_OPENSSH];
/// The smallest buffer budget we accept: a few whole maximum-size packets.
pub const MIN_BUFFER_MEMORY: u64 = 1 << 20;
/// The longest duration any flag accepts (ten years): far beyond any use, and small enough that
/// `Instant + Duration` can never overflow.
pub const MAX_SECONDS: u64 = 10 * 365 * 24 * 3600;

/// A configuration error: which flag, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub flag: &'static str,
    pub message: String,
}

impl ConfigError {
    pub fn new(flag: &'static str, message: impl Into<String>) -> Self {
        ConfigError { flag, message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.flag, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Settings of the runtime itself (threads, bounds, timers); not seen by the protocol core.
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    pub listen: Vec<SocketAddr>,
    pub workers: usize,
    pub crypto_threads: usize,
    pub crypto_queue: usize,
    /// Pool threads that may hash passwords at once (`--password-concurrency`).
    pub password_concurrency: usize,
    pub max_connections: usize,
    pub stats_interval: Option<Duration>,
    /// `--heap-trim-interval`; `None` = off.
    pub heap_trim_interval: Option<Duration>,
    pub drain_timeout: Duration,
    pub max_buffer_memory: usize,
    pub port_file: Option<PathBuf>,
    pub log_level: LogLevel,
    /// PROXY protocol, SO_REUSEPORT, metrics endpoint, drain delay (issue 6).
    pub fleet: fleet::FleetSettings,
    /// `--per-source-penalties` (None = off).
    pub penalties: Option<penalties::PenaltySettings>,
    /// `--max-startups`, `--per-source-max-startups` (0 = off).
    pub max_startups: startups::MaxStartups,
    pub per_source_max_startups: usize,
}

/// Everything the process needs.
pub struct Config {
    /// What each new connection starts with; replaced (for new connections only) on SIGHUP.
    /// The session proxy's routes are in it (`server.gateway.routes`).
    pub server: Arc<ServerConfig>,
    pub runtime: RuntimeSettings,
}

/// Rekey limit as OpenSSH's `RekeyLimit`: bytes (`None` = per-cipher default) and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RekeyLimit {
    pub bytes: Option<u64>,
    pub interval: Option<Duration>,
}

impl Config {
    /// Validates every flag and loads (or generates) the host keys.
    pub fn from_args(args: &Args) -> Result<Config, ConfigError> {
        let runtime = runtime_settings(args)?;
        let mut server = server_config_without_host_keys(args)?;
        Arc::make_mut(&mut server.transport).host_keys = load_host_keys(args)?;
        Ok(Config { server: Arc::new(server), runtime })
    }

    /// SIGHUP: as [`Config::from_args`], except that routes which do not load keep `current`
    /// (the routes in use) and the reason comes back beside the config, so a typo in the
    /// routes file neither drops every route nor blocks the rest of the reload.
    pub fn reload(
        args: &Args,
        current: Option<Arc<crate::proxy::Routes>>,
    ) -> Result<(Config, Option<String>), ConfigError> {
        let runtime = runtime_settings(args)?;
        let (routes, routes_error) = match load_routes(args) {
            Ok(r) => (r, None),
            Err(e) => (current, Some(e)),
        };
        let mut server = server_config_with_routes(args, routes)?;
        Arc::make_mut(&mut server.transport).host_keys = load_host_keys(args)?;
        Ok((Config { server: Arc::new(server), runtime }, routes_error))
    }
}

/// `--routes FILE`, else the `[routes]` table of the config file, else none. Errors name
/// `file:line`.
pub fn load_routes(args: &Args) -> Result<Option<Arc<crate::proxy::Routes>>, String> {
    if let Some(p) = &args.routes {
        return routes::load(p).map(|r| Some(Arc::new(r)));
    }
    match &args.routes_inline {
        Some((file, text)) => routes::parse_config_section(text, file).map(|r| Some(Arc::new(r))),
        None => Ok(None),
    }
}

pub use crate::server::GatewayConfig;

/// Largest `--banner` file: a banner is a few lines, and it goes out before authentication.
pub const MAX_BANNER_LEN: u64 = 16 * 1024;

/// The validated server config with no host keys loaded: for tests of the runtime, and the
/// first half of [`Config::from_args`]. Reads the password and banner files if given.
pub fn server_config_without_host_keys(args: &Args) -> Result<ServerConfig, ConfigError> {
    runtime_settings(args)?;
    let routes = load_routes(args).map_err(|e| ConfigError::new("--routes", e))?;
    server_config_with_routes(args, routes)
}

fn server_config_with_routes(
    args: &Args,
    routes: Option<Arc<crate::proxy::Routes>>,
) -> Result<ServerConfig, ConfigError> {
    let record_max_bytes =
        parse_size(&args.record_max_size).map_err(|e| ConfigError::new("--record-max-size", e))?;
    if record_max_bytes < 4096 {
        return Err(ConfigError::new("--record-max-size", "below the minimum of 4K"));
    }
    let mut transport = transport_config(args)?;
    let auth = auth_policy(args)?;
    // EXT_INFO announces exactly what publickey authentication accepts.
    transport.server_sig_algs = auth.pubkey_algs.join(",");
    Ok(ServerConfig {
        transport: Arc::new(transport),
        login_grace_time: Duration::from_secs(args.login_grace_time),
        auth,
        connection: Arc::new(connection_policy(args)?),
        gateway: Arc::new(GatewayConfig {
            session_command: args.session_command.clone(),
            allow_exec: args.allow_exec,
            connect_timeout: Duration::from_secs(args.connect_timeout),
            set_env: parse_assignments("--set-env", &args.set_env, check_env_name)?,
            routes,
            record_dir: args.record_dir.clone(),
            record_max_bytes,
        }),
    })
}

fn auth_policy(args: &Args) -> Result<AuthPolicy, ConfigError> {
    use crate::auth::publickey::{DEFAULT_PUBKEY_ALGS, PUBKEY_ALGS_ALL};
    let pubkey_algs = algorithms::apply_list(
        "--pubkey-accepted-algorithms",
        args.pubkey_accepted_algorithms.as_deref(),
        PUBKEY_ALGS_ALL,
        DEFAULT_PUBKEY_ALGS,
    )?;
    let mut p =
        AuthPolicy { max_auth_tries: args.max_auth_tries, pubkey_algs, ..AuthPolicy::default() };
    if let Some(t) = &args.authorized_keys {
        if t.trim().is_empty() {
            return Err(ConfigError::new("--authorized-keys", "empty path"));
        }
        p.authorized_keys = Some(t.clone());
    }
    if let Some(path) = &args.password_file {
        let db = users::load_password_file(path)
            .map_err(|e| ConfigError::new("--password-file", e.to_string()))?;
        p.passwords = PasswordSource::Db(Arc::new(db));
    }
    if let Some(path) = &args.banner {
        p.banner = Some(read_banner(path).map_err(|e| ConfigError::new("--banner", e))?);
    }
    if let Some(list) = &args.auth_methods {
        p.sequences =
            parse_auth_methods(list).map_err(|e| ConfigError::new("--auth-methods", e))?;
        // As sshd: a listed method that cannot work here is a configuration error, not a
        // silent lock-out.
        for m in p.sequences.iter().flatten() {
            if !p.usable(*m, true) {
                let need = match m {
                    Method::PublicKey => "--authorized-keys",
                    Method::Password | Method::KeyboardInteractive => "--password-file",
                };
                return Err(ConfigError::new(
                    "--auth-methods",
                    format!("{} needs {need}", m.name()),
                ));
            }
        }
    }
    Ok(p)
}

fn read_banner(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    f.take(MAX_BANNER_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_BANNER_LEN {
        return Err(format!("{}: larger than {MAX_BANNER_LEN} bytes", path.display()));
    }
    String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8", path.display()))
}

fn connection_policy(args: &Args) -> Result<ConnectionPolicy, ConfigError> {
    for p in &args.permit_open {
        check_permit_open(p).map_err(|e| ConfigError::new("--permit-open", e))?;
    }
    for p in &args.permit_listen {
        check_permit_listen(p).map_err(|e| ConfigError::new("--permit-listen", e))?;
    }
    for (flag, globs) in [
        ("--permit-open-path", &args.permit_open_path),
        ("--permit-listen-path", &args.permit_listen_path),
    ] {
        if let Some(g) = globs.iter().find(|g| !g.starts_with('/') && g.as_str() != "*") {
            return Err(ConfigError::new(flag, format!("{g:?}: expected an absolute path glob")));
        }
    }
    check_seconds("--keepalive-interval", args.keepalive_interval)?;
    let env_allow: Vec<String> = args
        .env_allow
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(bad) = env_allow.iter().find(|n| n.contains(['=', '\0', ' '])) {
        return Err(ConfigError::new("--env-allow", format!("{bad:?} is not a variable name")));
    }
    let subsystems = parse_assignments("--subsystem", &args.subsystem, |n| {
        if n.is_empty() || n.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(format!("{n:?} is not a subsystem name"));
        }
        Ok(())
    })?;
    if let Some((n, _)) = subsystems.iter().find(|(_, c)| c.trim().is_empty()) {
        return Err(ConfigError::new("--subsystem", format!("{n:?}: empty command")));
    }
    Ok(ConnectionPolicy {
        subsystems,
        permit_open_path: args.permit_open_path.clone(),
        permit_listen_path: args.permit_listen_path.clone(),
        max_sessions: args.max_sessions,
        max_channels: args.max_channels,
        permit_open: args.permit_open.clone(),
        permit_listen: args.permit_listen.clone(),
        env_allow,
        keepalive_interval: (args.keepalive_interval > 0)
            .then(|| Duration::from_secs(args.keepalive_interval)),
        keepalive_count_max: args.keepalive_count_max,
        ..ConnectionPolicy::default()
    })
}

/// `NAME=VALUE` flags (`--set-env`, `--subsystem`): split at the first `=`, NAME checked by
/// `check`; a later one with the same NAME replaces the earlier.
fn parse_assignments(
    flag: &'static str,
    items: &[String],
    check: impl Fn(&str) -> Result<(), String>,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for item in items {
        let Some((name, value)) = item.split_once('=') else {
            return Err(ConfigError::new(flag, format!("{item:?}: expected NAME=VALUE")));
        };
        check(name).map_err(|e| ConfigError::new(flag, e))?;
        if value.contains('\0') {
            return Err(ConfigError::new(flag, format!("{item:?}: NUL in the value")));
        }
        out.retain(|(n, _)| n != name);
        out.push((name.to_string(), value.to_string()));
    }
    Ok(out)
}

/// An environment variable name: not empty, no `=`, NUL or whitespace.
fn check_env_name(n: &str) -> Result<(), String> {
    if n.is_empty() || n.contains(|c: char| c == '=' || c == '\0' || c.is_whitespace()) {
        return Err(format!("{n:?} is not a variable name"));
    }
    Ok(())
}

/// `HOST:PORT` (HOST may be `[v6]` and use wildcards; PORT a number or `*`), `any` or `none`.
fn check_permit_open(p: &str) -> Result<(), String> {
    if p == "any" || p == "none" {
        return Ok(());
    }
    let Some((host, port)) = p.rsplit_once(':') else {
        return Err(format!("{p:?}: expected HOST:PORT"));
    };
    if host.is_empty() {
        return Err(format!("{p:?}: empty host"));
    }
    check_port(p, port)
}

/// `[HOST:]PORT`, `any` or `none`.
fn check_permit_listen(p: &str) -> Result<(), String> {
    if p == "any" || p == "none" {
        return Ok(());
    }
    let port = p.rsplit_once(':').map_or(p, |(_, port)| port);
    check_port(p, port)
}

fn check_port(p: &str, port: &str) -> Result<(), String> {
    if port == "*" || port.parse::<u16>().is_ok_and(|n| n > 0) {
        return Ok(());
    }
    Err(format!("{p:?}: port must be 1-65535 or *"))
}

fn check_seconds(flag: &'static str, secs: u64) -> Result<(), ConfigError> {
    if secs > MAX_SECONDS {
        return Err(ConfigError::new(flag, format!("{secs} is more than {MAX_SECONDS} seconds")));
    }
    Ok(())
}

fn runtime_settings(args: &Args) -> Result<RuntimeSettings, ConfigError> {
    check_seconds("--login-grace-time", args.login_grace_time)?;
    check_seconds("--stats-interval", args.stats_interval)?;
    check_seconds("--heap-trim-interval", args.heap_trim_interval)?;
    check_seconds("--drain-timeout", args.drain_timeout)?;
    if args.listen.is_empty() {
        return Err(ConfigError::new("--listen", "no address to listen on"));
    }
    let max_buffer_memory = parse_size(&args.max_buffer_memory)
        .map_err(|e| ConfigError::new("--max-buffer-memory", e))?;
    if max_buffer_memory < MIN_BUFFER_MEMORY {
        return Err(ConfigError::new(
            "--max-buffer-memory",
            format!("{} is below the minimum of 1M", args.max_buffer_memory),
        ));
    }
    let max_buffer_memory = usize::try_from(max_buffer_memory)
        .map_err(|_| ConfigError::new("--max-buffer-memory", "too large for this machine"))?;
    let crypto_threads = args.crypto_threads.unwrap_or_else(available_cores);
    Ok(RuntimeSettings {
        listen: args.listen.clone(),
        workers: args.workers.unwrap_or_else(available_cores),
        crypto_threads,
        crypto_queue: args.crypto_queue,
        password_concurrency: args
            .password_concurrency
            .unwrap_or(crypto_threads / 2)
            .clamp(1, crypto_threads.max(1)),
        max_connections: args.max_connections,
        stats_interval: (args.stats_interval > 0).then(|| Duration::from_secs(args.stats_interval)),
        heap_trim_interval: (args.heap_trim_interval > 0)
            .then(|| Duration::from_secs(args.heap_trim_interval)),
        drain_timeout: Duration::from_secs(args.drain_timeout),
        max_buffer_memory,
        port_file: args.port_file.clone(),
        log_level: args.log_level,
        fleet: fleet::settings(args)?,
        max_startups: startups::MaxStartups::parse(&args.max_startups)
            .map_err(|e| ConfigError::new("--max-startups", e))?,
        per_source_max_startups: args.per_source_max_startups,
        penalties: penalties::parse(
            args.per_source_penalties.as_deref(),
            &args.per_source_penalty_exempt,
            args.per_source_netblock.as_deref(),
        )?,
    })
}

/// Groups for group exchange: the built-in RFC 3526 ones, or those of `--moduli FILE`, at
/// least `min_bits` long (the crypto policy's floor).
fn gex_groups(args: &Args, min_bits: usize) -> Result<GexGroups, ConfigError> {
    let Some(path) = &args.moduli else {
        let mut g = GexGroups::builtin();
        g.groups.retain(|g| g.bits >= min_bits);
        return Ok(g);
    };
    let err = |message: String| ConfigError { flag: "--moduli", message };
    let text =
        std::fs::read_to_string(path).map_err(|e| err(format!("{}: {e}", path.display())))?;
    let mut groups =
        GexGroups::from_moduli(&text).map_err(|e| err(format!("{}: {e}", path.display())))?;
    groups.groups.retain(|g| g.bits >= min_bits);
    if groups.groups.is_empty() {
        return Err(err(format!(
            "{}: no usable group (safe primes of {min_bits}-8192 bits)",
            path.display()
        )));
    }
    Ok(groups)
}

fn transport_config(args: &Args) -> Result<TransportConfig, ConfigError> {
    use crate::algo::{cipher, kex, mac};

    let defaults = policy::PolicyLists::for_policy(args.crypto_policy);
    let kex_all: Vec<&'static str> = kex::ALL.iter().map(|k| k.name).collect();
    let kex_names = algorithms::apply_list("--kex", args.kex.as_deref(), &kex_all, &defaults.kex)?;

    let cipher_all: Vec<&'static str> = cipher::ALL.iter().map(|c| c.name).collect();
    let cipher_names = algorithms::apply_list(
        "--ciphers",
        args.ciphers.as_deref(),
        &cipher_all,
        &defaults.ciphers,
    )?;

    let mac_all: Vec<&'static str> = mac::ALL.iter().map(|m| m.name).collect();
    let mac_names =
        algorithms::apply_list("--macs", args.macs.as_deref(), &mac_all, &defaults.macs)?;

    let hk_all: Vec<&'static str> = HostKeyAlg::ALL.iter().map(|a| a.name()).collect();
    let hk_names = algorithms::apply_list(
        "--host-key-algorithms",
        args.host_key_algorithms.as_deref(),
        &hk_all,
        &defaults.host_key_algs,
    )?;

    let compression = algorithms::apply_list(
        "--compression",
        args.compression.as_deref(),
        COMPRESSION_ALL,
        &defaults.compression,
    )?;

    let rekey = match &args.rekey_limit {
        None => RekeyLimit { bytes: None, interval: None },
        Some(s) => parse_rekey_limit(s).map_err(|e| ConfigError::new("--rekey-limit", e))?,
    };

    // apply_list only returns names from the tables, so these lookups cannot miss.
    Ok(TransportConfig {
        software_version: format!("sshfront_{}", env!("CARGO_PKG_VERSION")),
        comment: None,
        kex: kex_names.iter().filter_map(|n| kex::by_name(n)).collect(),
        host_key_algs: hk_names.iter().filter_map(|n| HostKeyAlg::from_name(n)).collect(),
        ciphers: cipher_names.iter().filter_map(|n| cipher::by_name(n)).collect(),
        macs: mac_names.iter().filter_map(|n| mac::by_name(n)).collect(),
        compression,
        host_keys: Vec::new(),
        gex_groups: Arc::new(gex_groups(args, defaults.gex_min_bits)?),
        rekey_bytes: rekey.bytes,
        rekey_interval: rekey.interval,
        kex_timeout: DEFAULT_KEX_TIMEOUT,
        max_held_bytes: DEFAULT_MAX_HELD_BYTES,
        accept_1_99: true,
        // ssh-audit rates any name it does not know in the kex list, the marker included, as
        // a weak kex; `modern` stays clean without it (Dropbear lacks PQ kex anyway).
        kexguess2: !args.no_kexguess2 && args.crypto_policy != crate::cli::CryptoPolicy::Modern,
        server_sig_algs: crate::transport::config::default_server_sig_algs(),
    })
}

fn load_host_keys(
    args: &Args,
) -> Result<Vec<Arc<crate::algo::host_key::HostKeyPair>>, ConfigError> {
    let keys = if args.host_key.is_empty() {
        host_keys::load_or_generate(&host_keys::RealKeys, &args.data_dir)
            .map_err(|e| ConfigError::new("--data-dir", e))?
    } else {
        host_keys::load_files(&host_keys::RealKeys, &args.host_key)
            .map_err(|e| ConfigError::new("--host-key", e))?
    };
    Ok(keys.into_iter().map(Arc::new).collect())
}

/// Parses a size with an optional K/M/G suffix (powers of 1024, as OpenSSH's RekeyLimit).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let mult: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                _ => return Err(format!("'{s}': unknown size suffix '{c}' (use K, M or G)")),
            };
            (s.get(..i).unwrap_or(""), mult)
        }
        _ => (s, 1),
    };
    let n: u64 = digits.parse().map_err(|_| format!("'{s}' is not a size (e.g. 512M)"))?;
    n.checked_mul(mult).ok_or_else(|| format!("'{s}' is too large"))
}

/// Parses a duration in seconds with an optional s/m/h/d/w suffix (OpenSSH time format, one
/// unit).
pub fn parse_seconds(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let mult: u64 = match c.to_ascii_lowercase() {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86400,
                'w' => 604800,
                _ => return Err(format!("'{s}': unknown time suffix '{c}' (use s, m, h, d or w)")),
            };
            (s.get(..i).unwrap_or(""), mult)
        }
        _ => (s, 1),
    };
    let n: u64 = digits.parse().map_err(|_| format!("'{s}' is not a number of seconds"))?;
    n.checked_mul(mult).ok_or_else(|| format!("'{s}' is too large"))
}

/// `BYTES[:SECONDS]`, BYTES may be `default`; SECONDS 0 or `none` = no time limit. Bytes must be
/// at least 16 bytes as in OpenSSH (smaller is almost certainly a mistake).
pub fn parse_rekey_limit(s: &str) -> Result<RekeyLimit, String> {
    let (bytes_s, secs_s) = match s.split_once(':') {
        Some((b, t)) => (b, Some(t)),
        None => (s, None),
    };
    let bytes = match bytes_s.trim() {
        "default" => None,
        b => {
            let n = parse_size(b)?;
            if n < 16 {
                return Err(format!("'{b}' is too small (at least 16 bytes)"));
            }
            Some(n)
        }
    };
    let interval = match secs_s.map(str::trim) {
        None | Some("none") => None,
        Some(t) => match parse_seconds(t)? {
            0 => None,
            n if n > MAX_SECONDS => {
                return Err(format!("'{t}' is more than {MAX_SECONDS} seconds"))
            }
            n => Some(Duration::from_secs(n)),
        },
    };
    Ok(RekeyLimit { bytes, interval })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert!(parse_size("1T").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[test]
    fn rekey_limit() {
        assert_eq!(
            parse_rekey_limit("1G"),
            Ok(RekeyLimit { bytes: Some(1 << 30), interval: None })
        );
        assert_eq!(
            parse_rekey_limit("500M:1h"),
            Ok(RekeyLimit { bytes: Some(500 << 20), interval: Some(Duration::from_secs(3600)) })
        );
        assert_eq!(
            parse_rekey_limit("default:600"),
            Ok(RekeyLimit { bytes: None, interval: Some(Duration::from_secs(600)) })
        );
        assert_eq!(
            parse_rekey_limit("64K:none"),
            Ok(RekeyLimit { bytes: Some(65536), interval: None })
        );
        assert_eq!(
            parse_rekey_limit("64K:0"),
            Ok(RekeyLimit { bytes: Some(65536), interval: None })
        );
        assert!(parse_rekey_limit("8").is_err());
        assert!(parse_rekey_limit("1X").is_err());
        assert!(parse_rekey_limit("1G:soon").is_err());
        assert!(parse_rekey_limit("").is_err());
    }

    fn args(extra: &[&str]) -> Args {
        let mut v = vec!["sshfront"];
        v.extend_from_slice(extra);
        Args::try_parse_from(v).unwrap()
    }

    #[test]
    fn errors_name_the_flag() {
        let cases: &[(&[&str], &str)] = &[
            (&["--kex", "nope"], "--kex"),
            (&["--ciphers", "+nope"], "--ciphers"),
            (&["--macs", "-nope"], "--macs"),
            (&["--host-key-algorithms", "ssh-dss"], "--host-key-algorithms"),
            (&["--compression", "zstd"], "--compression"),
            (&["--rekey-limit", "1X"], "--rekey-limit"),
            (&["--max-buffer-memory", "lots"], "--max-buffer-memory"),
            (&["--max-buffer-memory", "1K"], "--max-buffer-memory"),
            (&["--drain-timeout", "99999999999"], "--drain-timeout"),
            (&["--login-grace-time", "18446744073709551615"], "--login-grace-time"),
            (&["--rekey-limit", "1G:99999999w"], "--rekey-limit"),
            (&["--permit-open", "db"], "--permit-open"),
            (&["--permit-open", "db:0"], "--permit-open"),
            (&["--permit-listen", "host:x"], "--permit-listen"),
            (&["--auth-methods", "publickey,bogus"], "--auth-methods"),
            (&["--auth-methods", "publickey"], "--auth-methods"),
            (&["--password-file", "/nonexistent/sshfront-pw"], "--password-file"),
            (&["--banner", "/nonexistent/sshfront-banner"], "--banner"),
            (&["--env-allow", "A=B"], "--env-allow"),
            (&["--pubkey-accepted-algorithms", "+ssh-dss"], "--pubkey-accepted-algorithms"),
            (&["--subsystem", "sftp"], "--subsystem"),
            (&["--subsystem", "sftp="], "--subsystem"),
            (&["--subsystem", "=cmd"], "--subsystem"),
            (&["--set-env", "NOEQUALS"], "--set-env"),
            (&["--set-env", "=v"], "--set-env"),
            (&["--permit-open-path", "relative.sock"], "--permit-open-path"),
            (&["--permit-listen-path", "x/*.sock"], "--permit-listen-path"),
            (&["--keepalive-interval", "99999999999"], "--keepalive-interval"),
        ];
        for (extra, flag) in cases {
            let e = Config::from_args(&args(extra)).err().unwrap();
            assert_eq!(e.flag, *flag, "{extra:?}: {e}");
        }
    }

    #[test]
    fn routes_load_into_the_server_config_and_a_bad_file_keeps_the_old_ones() {
        let dir = std::env::temp_dir().join(format!("sshfront-cfg-routes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("routes.toml");
        let good = "[[route]]\nuser = \"*\"\nupstreams = [\"127.0.0.1:22\"]\nauth = \"agent\"\n";
        std::fs::write(&path, good).unwrap();
        let a = args(&["--routes", path.to_str().unwrap(), "--record-dir", "/tmp/rec"]);
        let c = server_config_without_host_keys(&a).unwrap();
        let routes = c.gateway.routes.clone().unwrap();
        assert_eq!(routes.routes.len(), 1);
        assert_eq!(c.gateway.record_dir.as_deref(), Some(std::path::Path::new("/tmp/rec")));
        assert_eq!(c.gateway.record_max_bytes, 64 << 20);
        assert!(server_config_without_host_keys(&args(&[])).unwrap().gateway.routes.is_none());
        std::fs::write(&path, "[[route]]\nuser = \"*\"\n").unwrap();
        let e = server_config_without_host_keys(&a).err().unwrap();
        assert_eq!(e.flag, "--routes");
        assert!(e.message.contains("routes.toml:1:"), "{e}");
        // SIGHUP: the routes in use stay, the reason comes back, the rest is built.
        let mut a = a;
        a.host_key = vec![];
        a.data_dir = dir.join("keys");
        let (cfg, err) = Config::reload(&a, Some(routes.clone())).unwrap();
        assert!(Arc::ptr_eq(cfg.server.gateway.routes.as_ref().unwrap(), &routes));
        assert!(err.unwrap().contains("routes.toml:1:"));
        let e = Config::from_args(&args(&["--record-max-size", "1K"])).err().unwrap();
        assert_eq!(e.flag, "--record-max-size");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn kexguess2_is_listed_unless_turned_off() {
        assert!(transport_config(&args(&[])).unwrap().kexguess2);
        assert!(!transport_config(&args(&["--no-kexguess2"])).unwrap().kexguess2);
        let modern = transport_config(&args(&["--crypto-policy", "modern"])).unwrap();
        assert!(!modern.kexguess2, "not listed under modern (ssh-audit flags it)");
    }

    #[test]
    fn gateway_policies_from_flags() {
        let c = server_config_without_host_keys(&args(&[
            "--permit-open",
            "db:5432",
            "--permit-listen",
            "*",
            "--max-sessions",
            "3",
            "--env-allow",
            "LANG, TZ",
            "--keepalive-interval",
            "15",
            "--authorized-keys",
            "/keys/%u",
            "--auth-methods",
            "publickey",
            "--allow-exec",
        ]))
        .unwrap();
        assert_eq!(c.connection.permit_open, ["db:5432"]);
        assert_eq!(c.connection.max_sessions, 3);
        assert_eq!(c.connection.max_channels, crate::connection::DEFAULT_MAX_CHANNELS);
        assert_eq!(c.connection.env_allow, ["LANG", "TZ"]);
        assert_eq!(c.connection.keepalive_interval, Some(Duration::from_secs(15)));
        assert_eq!(c.auth.sequences, vec![vec![Method::PublicKey]]);
        assert_eq!(c.auth.authorized_keys.as_deref(), Some("/keys/%u"));
        assert!(c.gateway.allow_exec);
        let d = server_config_without_host_keys(&args(&[])).unwrap();
        assert!(d.connection.permit_open.is_empty(), "no forwarding unless asked");
        assert!(d.connection.keepalive_interval.is_none());
    }

    #[test]
    fn pubkey_accepted_algorithms_and_server_sig_algs() {
        let d = server_config_without_host_keys(&args(&[])).unwrap();
        assert!(!d.auth.pubkey_algs.contains(&"ssh-rsa"));
        assert_eq!(d.transport.server_sig_algs, d.auth.pubkey_algs.join(","));
        let c =
            server_config_without_host_keys(&args(&["--pubkey-accepted-algorithms", "+ssh-rsa"]))
                .unwrap();
        assert_eq!(c.auth.pubkey_algs.last(), Some(&"ssh-rsa"));
        assert!(c.transport.server_sig_algs.ends_with(",ssh-rsa"));
        let c = server_config_without_host_keys(&args(&[
            "--pubkey-accepted-algorithms",
            "-ecdsa*,rsa*,sk-*",
        ]))
        .unwrap();
        assert_eq!(c.transport.server_sig_algs, "ssh-ed25519");
    }

    #[test]
    fn subsystems_and_set_env() {
        let c = server_config_without_host_keys(&args(&[
            "--subsystem",
            "sftp=/usr/lib/openssh/sftp-server -l INFO",
            "--set-env",
            "A=1=2",
            "--set-env",
            "B=",
            "--set-env",
            "A=3",
        ]))
        .unwrap();
        assert_eq!(
            c.connection.subsystems,
            [("sftp".to_string(), "/usr/lib/openssh/sftp-server -l INFO".to_string())]
        );
        assert_eq!(
            c.gateway.set_env,
            [("B".to_string(), String::new()), ("A".to_string(), "3".to_string())]
        );
    }

    #[test]
    fn runtime_defaults() {
        let r = runtime_settings(&args(&["--stats-interval", "0"])).unwrap();
        assert!(r.stats_interval.is_none());
        assert!(r.workers >= 1 && r.crypto_threads >= 1);
        assert_eq!(r.max_buffer_memory, 512 << 20);
    }

    #[test]
    fn compression_and_host_key_defaults() {
        let t = transport_config(&args(&[])).unwrap();
        assert_eq!(t.compression, DEFAULT_COMPRESSION);
        assert!(!t.host_key_algs.contains(&HostKeyAlg::SshRsa));
        assert_eq!(t.host_key_algs.len(), HostKeyAlg::ALL.len() - 1);
        let t = transport_config(&args(&["--host-key-algorithms", "+ssh-rsa"])).unwrap();
        assert_eq!(t.host_key_algs.last(), Some(&HostKeyAlg::SshRsa));
        let t = transport_config(&args(&["--compression", "^zlib"])).unwrap();
        assert_eq!(t.compression, ["zlib", "none", "zlib@openssh.com"]);
    }

    #[test]
    fn crypto_policy_modern_with_lists_on_top() {
        let t = transport_config(&args(&["--crypto-policy", "modern"])).unwrap();
        assert_eq!(t.kex.first().map(|k| k.name), Some("mlkem768x25519-sha256"));
        assert!(t.macs.iter().all(|m| m.etm));
        assert!(!t.host_key_algs.contains(&HostKeyAlg::EcdsaP256));
        assert!(t.gex_groups.groups.iter().all(|g| g.bits >= policy::MODERN_GEX_MIN_BITS));
        let t = transport_config(&args(&[
            "--crypto-policy",
            "modern",
            "--kex",
            "+curve25519-sha256",
            "--macs",
            "-hmac-sha2-512*",
        ]))
        .unwrap();
        assert_eq!(t.kex.last().map(|k| k.name), Some("curve25519-sha256"));
        assert_eq!(t.macs.len(), 1);
        let c = transport_config(&args(&[])).unwrap();
        assert!(c.kex.iter().any(|k| k.name == "ecdh-sha2-nistp256"), "compat is the default");
    }
}
