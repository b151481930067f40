//! The command line: every knob of the server, its default and its help line.
//!
//! clap only checks the shape of each value (a number, an address); everything that needs
//! knowledge of the registries or files (algorithm lists, size suffixes, host keys) is validated
//! once in [`crate::config::Config::from_args`], whose errors name the flag.

use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where we listen when no `--listen` is given: loopback only, so a first try exposes nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:2222";
/// Host keys (and later user files) live here; created 0700 on first start.
pub const DEFAULT_DATA_DIR: &str = "./sshfront-data";
/// Jobs queued or running on the crypto pool, all workers together; past it handshakes wait in a
/// small per-worker queue and then get DISCONNECT 12, instead of latency growing without limit.
pub const DEFAULT_CRYPTO_QUEUE: usize = 1024;
/// Seconds a connection may take to send its PROXY header. Short: the balancer sends it at
/// once, and until it arrives the connection costs a slot and we say nothing.
pub const DEFAULT_PROXY_TIMEOUT: u64 = 5;
/// MaxStartups for a front end rather than sshd's 10:30:100: thousands of concurrent handshakes
/// are normal here; early drop starts at 4000 unauthenticated connections, all are dropped at
/// 10000 (the default --max-connections).
pub const DEFAULT_MAX_STARTUPS: &str = "4000:30:10000";
/// Seconds from accept until authentication must have succeeded (OpenSSH's LoginGraceTime).
pub const DEFAULT_LOGIN_GRACE_TIME: u64 = 120;
/// Open connections across all workers; at the bound the acceptor stops accepting and the
/// kernel backlog absorbs the burst.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Seconds between one-line statistics summaries; 0 turns them off.
pub const DEFAULT_STATS_INTERVAL: u64 = 0;
/// Seconds between returns of freed heap memory to the OS (`--heap-trim-interval`).
pub const DEFAULT_HEAP_TRIM_INTERVAL: u64 = 30;
/// Seconds authenticated connections may keep running after SIGTERM/SIGINT.
pub const DEFAULT_DRAIN_TIMEOUT: u64 = 30;
/// Budget for all pooled read/write buffers together (K/M/G suffixes, powers of 1024).
pub const DEFAULT_MAX_BUFFER_MEMORY: &str = "512M";
/// Failed authentication attempts per connection before DISCONNECT 14 (OpenSSH's MaxAuthTries).
pub const DEFAULT_MAX_AUTH_TRIES: u32 = crate::auth::policy::DEFAULT_MAX_AUTH_TRIES;
/// Session channels open at once per connection (OpenSSH's MaxSessions).
pub const DEFAULT_MAX_SESSIONS: usize = crate::connection::DEFAULT_MAX_SESSIONS;
/// Channels of any kind (sessions and forwards) open at once per connection.
pub const DEFAULT_MAX_CHANNELS: usize = crate::connection::DEFAULT_MAX_CHANNELS;
/// `env` requests accepted for these names (wildcards allowed): locale only, as OpenSSH's
/// default AcceptEnv in most distributions; never PATH or LD_*.
pub const DEFAULT_ENV_ALLOW: &str = "LANG,LC_*";
/// Seconds between server keepalives after login; 0 = none (OpenSSH's ClientAliveInterval).
pub const DEFAULT_KEEPALIVE_INTERVAL: u64 = 0;
/// Unanswered keepalives before the connection is dropped (OpenSSH's ClientAliveCountMax).
pub const DEFAULT_KEEPALIVE_COUNT_MAX: u32 = crate::connection::DEFAULT_KEEPALIVE_COUNT_MAX;
/// Seconds a direct-tcpip backend connect (name lookup included) may take before
/// CHANNEL_OPEN_FAILURE.
pub const DEFAULT_CONNECT_TIMEOUT: u64 = 10;
/// Where `sshfront passwd` writes without `--password-file`.
pub const DEFAULT_PASSWORD_FILE: &str = "./sshfront-data/passwords";
/// Largest session recording (`--record-max-size`); past it recording stops with a marker.
pub const DEFAULT_RECORD_MAX_SIZE: &str = "64M";

/// Log verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per record.
    Text,
    /// One JSON object per line with stable field names (README, "Log events").
    Json,
}

/// Named starting points for the algorithm lists (`--crypto-policy`); see config::policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CryptoPolicy {
    /// Post-quantum key exchange, no NIST curves, no SHA-1, EtM MACs: zero ssh-audit findings.
    Modern,
    /// Everything implemented except SHA-1 key exchange and ssh-rsa (OpenSSH's default offer).
    Compat,
}

/// Which policy applies without `--crypto-policy`: compat, so no existing client breaks on
/// upgrade (README, "Crypto policies").
pub const DEFAULT_CRYPTO_POLICY: CryptoPolicy = CryptoPolicy::Compat;

/// sshfront: a fast, robust SSH front end.
#[derive(Debug, Clone, Parser)]
#[command(name = "sshfront", version, about, long_about = None)]
pub struct Args {
    /// TOML file with defaults for any flag: each key is a long flag name ("max-auth-tries = 3",
    /// arrays for repeatable flags, true/false for switches). Flags given here win. Re-read on
    /// SIGHUP.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The command line as given, kept to re-read it with the config file on SIGHUP.
    #[arg(skip)]
    pub argv: Vec<std::ffi::OsString>,

    /// Address to listen on (repeatable). Port 0 picks a free port; see --port-file.
    #[arg(long = "listen", value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    pub listen: Vec<SocketAddr>,

    /// Directory for generated host keys; created with mode 0700 if missing.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,

    /// Host private key, OpenSSH format, mode 0600 (repeatable). Without it, ed25519, ecdsa-p256
    /// and rsa-3072 keys are generated in the data dir on first start and reused afterwards.
    #[arg(long = "host-key", value_name = "FILE")]
    pub host_key: Vec<PathBuf>,

    /// Worker threads running connections [default: number of cores].
    #[arg(long, allow_negative_numbers = true, value_name = "N", value_parser = parse_positive)]
    pub workers: Option<usize>,

    /// Threads computing key exchanges and signatures [default: number of cores].
    #[arg(long, allow_negative_numbers = true, value_name = "N", value_parser = parse_positive)]
    pub crypto_threads: Option<usize>,

    /// Bound on crypto jobs queued or running; past it handshakes wait briefly, then are refused
    /// with DISCONNECT 12.
    #[arg(long, allow_negative_numbers = true, value_name = "N", default_value_t = DEFAULT_CRYPTO_QUEUE, value_parser = parse_positive)]
    pub crypto_queue: usize,

    /// Default algorithm lists: modern (post-quantum kex, EtM MACs, ed25519/rsa-sha2 host keys;
    /// no ssh-audit findings) or compat (also NIST curves, classic DH, SHA-1 MACs). --kex,
    /// --ciphers, --macs, --host-key-algorithms and --compression apply on top.
    #[arg(long, value_name = "POLICY", value_enum, default_value_t = DEFAULT_CRYPTO_POLICY)]
    pub crypto_policy: CryptoPolicy,
    /// Crypto threads that may hash passwords at once, so key exchanges and publickey logins
    /// keep moving during a password spray [default: half of --crypto-threads, at least 1].
    #[arg(long, allow_negative_numbers = true, value_name = "N", value_parser = parse_positive)]
    pub password_concurrency: Option<usize>,

    /// Key exchange methods, OpenSSH list syntax: "a,b" replaces the default list, "+a,b"
    /// appends, "-a,b" removes (wildcards * and ? allowed), "^a,b" puts them first.
    #[arg(long, value_name = "LIST", allow_hyphen_values = true)]
    pub kex: Option<String>,

    /// Ciphers, OpenSSH list syntax (see --kex).
    #[arg(long, value_name = "LIST", allow_hyphen_values = true)]
    pub ciphers: Option<String>,

    /// MACs, OpenSSH list syntax (see --kex).
    #[arg(long, value_name = "LIST", allow_hyphen_values = true)]
    pub macs: Option<String>,

    /// Host key signature algorithms, OpenSSH list syntax (see --kex).
    #[arg(long, value_name = "LIST", allow_hyphen_values = true)]
    pub host_key_algorithms: Option<String>,

    /// Compression: none, zlib@openssh.com, zlib; OpenSSH list syntax (see --kex)
    /// [default: none,zlib@openssh.com].
    #[arg(long, value_name = "LIST", allow_hyphen_values = true)]
    pub compression: Option<String>,

    /// OpenSSH `moduli` file with the groups offered for diffie-hellman-group-exchange (safe
    /// primes of 2048–8192 bits) [default: the built-in RFC 3526 groups].
    #[arg(long, value_name = "FILE")]
    pub moduli: Option<PathBuf>,

    /// Rekey after BYTES (K/M/G suffixes) and optionally SECONDS, like OpenSSH's RekeyLimit;
    /// "default" keeps the per-cipher volume [default: per cipher, no time limit].
    #[arg(long, value_name = "BYTES[:SECONDS]")]
    pub rekey_limit: Option<String>,

    /// Do not list Dropbear's kexguess2@matt.ucc.asn.au: a client's guessed key exchange packet
    /// is then used only when both sides' first choices agree (RFC 4253 §7). Never listed under
    /// --crypto-policy modern.
    #[arg(long)]
    pub no_kexguess2: bool,

    /// Seconds from accept until authentication must have succeeded (at least 1).
    #[arg(long, allow_negative_numbers = true, value_name = "SECS", default_value_t = DEFAULT_LOGIN_GRACE_TIME, value_parser = parse_positive_u64)]
    pub login_grace_time: u64,

    /// Open connections at most; at the bound new ones wait in the kernel backlog.
    #[arg(long, allow_negative_numbers = true, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS, value_parser = parse_positive)]
    pub max_connections: usize,

    /// Open connections allowed per client address (IPv4 address, IPv6 /64; the PROXY header's
    /// with --proxy-protocol); past it new ones are closed before any SSH byte. 0 = no limit.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_per_source: usize,

    /// Random early drop of unauthenticated connections, as OpenSSH's MaxStartups: from START
    /// of them on, new ones are dropped at accept with probability RATE% rising to 100% at FULL.
    #[arg(long, value_name = "START:RATE:FULL", default_value = DEFAULT_MAX_STARTUPS)]
    pub max_startups: String,

    /// Unauthenticated connections per source (IPv4 address, IPv6 /64); past it new ones are
    /// dropped at accept. 0 = no limit.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub per_source_max_startups: usize,

    /// Per-source penalties in OpenSSH's PerSourcePenalties syntax, e.g. "authfail:5s noauth:1s
    /// grace-exceeded:10s max:10m min:15s max-sources4:65536 overflow:permissive", or "yes"
    /// (OpenSSH's defaults) or "no". A source whose penalty exceeds min is refused at accept.
    /// [default: no]
    #[arg(long, value_name = "SPEC")]
    pub per_source_penalties: Option<String>,

    /// Sources never penalised (CIDR or address); repeatable.
    #[arg(long, value_name = "CIDR")]
    pub per_source_penalty_exempt: Vec<String>,

    /// Prefix lengths penalties group sources by, IPv4[:IPv6] [default: 32:64].
    #[arg(long, value_name = "V4[:V6]")]
    pub per_source_netblock: Option<String>,

    /// Log verbosity.
    #[arg(long, value_name = "LEVEL", value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,

    /// Log line format on stderr: text, or json (one object per line: ts, level, worker, conn,
    /// peer, user, event, code, reason, bytes_in, bytes_out, duration_ms, kex, cipher, msg).
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Seconds between one-line statistics summaries on stderr; 0 = off.
    #[arg(long, allow_negative_numbers = true, value_name = "SECS", default_value_t = DEFAULT_STATS_INTERVAL)]
    pub stats_interval: u64,

    /// Seconds between returns of freed heap memory to the OS (glibc malloc_trim, on its own
    /// thread), so RSS comes back down after load peaks; 0 = off.
    #[arg(long, allow_negative_numbers = true, value_name = "SECS", default_value_t = DEFAULT_HEAP_TRIM_INTERVAL)]
    pub heap_trim_interval: u64,

    /// Seconds authenticated connections may run after SIGTERM/SIGINT before the process exits.
    #[arg(long, allow_negative_numbers = true, value_name = "SECS", default_value_t = DEFAULT_DRAIN_TIMEOUT)]
    pub drain_timeout: u64,

    /// Budget for all read/write buffers together (K/M/G suffixes); a connection that cannot get
    /// a buffer stops reading until one frees.
    #[arg(long, value_name = "BYTES", default_value = DEFAULT_MAX_BUFFER_MEMORY)]
    pub max_buffer_memory: String,

    /// Write the actually bound addresses, one per line, to FILE once listening (useful with
    /// port 0).
    #[arg(long, value_name = "FILE")]
    pub port_file: Option<PathBuf>,

    // Running as a load-balanced fleet (issue 6); validated in config::fleet.
    /// Every listener expects a PROXY protocol v1 or v2 header (HAProxy send-proxy[-v2], nginx
    /// proxy_protocol) before the SSH stream, and uses the client address it names.
    #[arg(long)]
    pub proxy_protocol: bool,

    /// Address block allowed to send the PROXY header, e.g. 10.0.0.0/8 or 127.0.0.1
    /// (repeatable; required with --proxy-protocol). Other peers are closed at once.
    #[arg(long = "proxy-from", value_name = "CIDR")]
    pub proxy_from: Vec<String>,

    /// Seconds to wait for the PROXY header before closing the connection.
    #[arg(long, allow_negative_numbers = true, value_name = "SECS", default_value_t = DEFAULT_PROXY_TIMEOUT, value_parser = parse_positive_u64)]
    pub proxy_timeout: u64,

    /// Set SO_REUSEPORT on the listeners, so several sshfront processes can share one port
    /// (the kernel spreads connections over them).
    #[arg(long)]
    pub reuse_port: bool,

    /// Serve Prometheus metrics (/metrics), /healthz and /readyz over HTTP on ADDR.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,

    /// Seconds between SIGTERM (when /readyz turns 503) and closing the listeners, so a load
    /// balancer's health check stops sending new clients before they would be refused.
    #[arg(long, allow_negative_numbers = true, value_name = "SECS", default_value_t = 0)]
    pub drain_delay: u64,

    /// OpenSSH authorized_keys file per user; %u is the user name, %% a literal %. Read at each
    /// login. Without it, publickey authentication is not offered.
    #[arg(long, value_name = "PATH")]
    pub authorized_keys: Option<String>,

    /// Password file, one user:hash line each (argon2id or bcrypt; see `sshfront passwd`).
    /// Re-read on SIGHUP. Without it, password and keyboard-interactive are not offered.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// Accepted authentication method sequences, as OpenSSH's AuthenticationMethods: sequences
    /// separated by spaces, methods in one by commas ("publickey,password publickey")
    /// [default: publickey password keyboard-interactive].
    #[arg(long, value_name = "LIST")]
    pub auth_methods: Option<String>,

    /// Signature algorithms accepted for publickey authentication, OpenSSH list syntax (see
    /// --kex), as sshd's PubkeyAcceptedAlgorithms; also announced as server-sig-algs
    /// [default: all but SHA-1 ssh-rsa].
    #[arg(long, value_name = "LIST", allow_hyphen_values = true)]
    pub pubkey_accepted_algorithms: Option<String>,

    /// Failed authentication attempts per connection before it is disconnected.
    #[arg(long, allow_negative_numbers = true, value_name = "N", default_value_t = DEFAULT_MAX_AUTH_TRIES, value_parser = parse_positive_u32)]
    pub max_auth_tries: u32,

    /// Text file sent to clients before authentication (USERAUTH_BANNER), at most 16 KiB.
    #[arg(long, value_name = "FILE")]
    pub banner: Option<PathBuf>,

    /// Allow direct-tcpip (ssh -W, -L, -J) to HOST:PORT (repeatable; * and ? wildcards in HOST,
    /// * as PORT; "any" allows all). Without it, no forwarding to backends.
    #[arg(long = "permit-open", value_name = "HOST:PORT")]
    pub permit_open: Vec<String>,

    /// Allow remote forwarding (ssh -R) listening on [HOST:]PORT (repeatable; * wildcards; port
    /// * also allows port 0). Without it, no listening.
    #[arg(long = "permit-listen", value_name = "[HOST:]PORT")]
    pub permit_listen: Vec<String>,

    /// Allow direct-streamlocal (ssh -L PORT:/path.sock) to Unix sockets matching GLOB
    /// (repeatable; * and ? wildcards). Without it, no Unix-socket forwarding to backends.
    #[arg(long = "permit-open-path", value_name = "GLOB")]
    pub permit_open_path: Vec<String>,

    /// Allow streamlocal-forward (ssh -R /path.sock:HOST:PORT) listening on Unix socket paths
    /// matching GLOB (repeatable). Sockets are created mode 0600 and removed on close.
    #[arg(long = "permit-listen-path", value_name = "GLOB")]
    pub permit_listen_path: Vec<String>,

    /// Session channels (shell, exec, subsystem) open at once per connection, as sshd's
    /// MaxSessions; forwarded connections do not count.
    #[arg(long, allow_negative_numbers = true, value_name = "N", default_value_t = DEFAULT_MAX_SESSIONS, value_parser = parse_positive)]
    pub max_sessions: usize,

    /// Channels of any kind (sessions and forwarded connections) open at once per connection.
    #[arg(long, allow_negative_numbers = true, value_name = "N", default_value_t = DEFAULT_MAX_CHANNELS, value_parser = parse_positive)]
    pub max_channels: usize,

    /// Command run (through /bin/sh -c) for every exec, shell or subsystem request, with the
    /// client's request in SSH_ORIGINAL_COMMAND and SSH_USER, SSH_CLIENT set.
    #[arg(long, value_name = "CMD")]
    pub session_command: Option<String>,

    /// Run the client's requested command through /bin/sh -c as the server's own user (when no
    /// --session-command or key command= applies). Off by default.
    #[arg(long)]
    pub allow_exec: bool,

    /// A subsystem sessions may start (repeatable), as sshd's Subsystem: e.g.
    /// sftp=/usr/lib/openssh/sftp-server. COMMAND runs through /bin/sh -c like
    /// --session-command children. Other subsystem requests are refused.
    #[arg(long = "subsystem", value_name = "NAME=COMMAND")]
    pub subsystem: Vec<String>,

    /// Environment variable set for every command (repeatable), as sshd's SetEnv; wins over
    /// the client's `env` request for the same name.
    #[arg(long = "set-env", value_name = "NAME=VALUE")]
    pub set_env: Vec<String>,
    /// Session proxy routes (TOML): which users go to which upstream SSH servers. A routed
    /// user's sessions, forwards and sftp are carried there after login. Re-read on SIGHUP; a
    /// file that does not load keeps the routes in use. Without it, a [routes] table in the
    /// --config file is used.
    #[arg(long, value_name = "FILE")]
    pub routes: Option<std::path::PathBuf>,

    /// The [routes] table of the --config file (its path and whole text), when --routes is
    /// not given.
    #[arg(skip)]
    pub routes_inline: Option<(PathBuf, String)>,

    /// Record PTY sessions of local commands as asciicast v2 files in DIR (created with mode
    /// 0700), one file per session. Routes have their own record_dir.
    #[arg(long, value_name = "DIR")]
    pub record_dir: Option<PathBuf>,

    /// Largest recording file (K, M, G suffixes); past it the recording stops with a marker.
    #[arg(long, value_name = "BYTES", default_value = DEFAULT_RECORD_MAX_SIZE)]
    pub record_max_size: String,

    /// Environment variable names accepted from `env` requests, comma-separated, wildcards
    /// allowed; "" accepts none.
    #[arg(long, value_name = "NAMES", default_value = DEFAULT_ENV_ALLOW)]
    pub env_allow: String,

    /// Seconds between server keepalives after login; 0 = none.
    #[arg(long, allow_negative_numbers = true, value_name = "SECS", default_value_t = DEFAULT_KEEPALIVE_INTERVAL)]
    pub keepalive_interval: u64,

    /// Unanswered keepalives after which the connection is dropped.
    #[arg(long, allow_negative_numbers = true, value_name = "N", default_value_t = DEFAULT_KEEPALIVE_COUNT_MAX, value_parser = parse_positive_u32)]
    pub keepalive_count_max: u32,

    /// Seconds a backend connect (name lookup included) may take before the channel open fails.
    #[arg(long, allow_negative_numbers = true, value_name = "SECS", default_value_t = DEFAULT_CONNECT_TIMEOUT, value_parser = parse_positive_u64)]
    pub connect_timeout: u64,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands (without one, sshfront runs the server).
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Add or replace USER's line in the password file with a fresh argon2id hash; the
    /// password is read from the terminal (not echoed) or, when stdin is not a terminal, from
    /// its first line.
    Passwd {
        /// The user name.
        user: String,
        /// The password file to edit (created with mode 0600)
        /// [default: the server's --password-file, else ./sshfront-data/passwords].
        #[arg(long = "password-file", value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Validate the configuration (--config FILE and the flags after it) without starting;
    /// print the effective configuration. Exit 0 when valid, 2 naming each error.
    CheckConfig,
    /// Write the man page (man/sshfront.8) and bash, zsh and fish completions
    /// (completions/) under DIR, generated from these definitions.
    GenerateDocs {
        /// Output directory (the repository keeps them in packaging/).
        dir: PathBuf,
    },
}

fn parse_positive(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

fn parse_positive_u32(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

fn parse_positive_u64(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// Number of cores, the default for `--workers` and `--crypto-threads`.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn defaults() {
        let a = Args::try_parse_from(["sshfront"]).unwrap();
        assert_eq!(a.listen, vec![DEFAULT_LISTEN.parse::<SocketAddr>().unwrap()]);
        assert_eq!(a.crypto_queue, DEFAULT_CRYPTO_QUEUE);
        assert_eq!(a.log_level, LogLevel::Info);
    }

    #[test]
    fn listen_repeats_and_replaces_default() {
        let a =
            Args::try_parse_from(["sshfront", "--listen", "127.0.0.1:0", "--listen", "[::1]:0"])
                .unwrap();
        assert_eq!(a.listen.len(), 2);
    }

    #[test]
    fn list_flags_take_leading_dash() {
        let a = Args::try_parse_from(["sshfront", "--kex", "-diffie*"]).unwrap();
        assert_eq!(a.kex.as_deref(), Some("-diffie*"));
    }

    #[test]
    fn gateway_flags() {
        let a = Args::try_parse_from([
            "sshfront",
            "--permit-open",
            "db:5432",
            "--permit-open",
            "*:80",
            "--permit-listen",
            "8080",
            "--allow-exec",
            "--auth-methods",
            "publickey,password publickey",
        ])
        .unwrap();
        assert_eq!(a.permit_open, ["db:5432", "*:80"]);
        assert_eq!(a.permit_listen, ["8080"]);
        assert!(a.allow_exec);
        assert_eq!(a.max_auth_tries, DEFAULT_MAX_AUTH_TRIES);
        assert!(Args::try_parse_from(["sshfront", "--max-auth-tries", "0"]).is_err());
        let a =
            Args::try_parse_from(["sshfront", "passwd", "alice", "--password-file", "/p"]).unwrap();
        match a.command {
            Some(Command::Passwd { user, password_file }) => {
                assert_eq!(user, "alice");
                assert_eq!(password_file, Some(PathBuf::from("/p")));
            }
            _ => panic!("no passwd subcommand"),
        }
    }

    #[test]
    fn zero_workers_rejected() {
        assert!(Args::try_parse_from(["sshfront", "--workers", "0"]).is_err());
    }
}
