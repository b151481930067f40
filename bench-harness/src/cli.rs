//! Command line of the load generator.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Load generator for SSH servers on sshfront's client core (loopback targets only).
#[derive(Parser, Debug)]
#[command(name = "bench-harness", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Keep C connections in flight, each doing KEX, auth and optionally one channel, then closing.
    Handshake(HandshakeArgs),
    /// K connections pushing N bytes each through direct-tcpip (or exec) to a sink.
    Bulk(BulkArgs),
    /// Open and hold N authenticated connections; report the server's memory per connection.
    Idle(IdleArgs),
    /// Attack from --bind while a legitimate client measures login latency at a fixed rate;
    /// one JSON line per second, then a summary line.
    Attack(AttackArgs),
    /// The crypto floor of one curve25519 + ssh-ed25519 publickey handshake on this machine:
    /// the server's X25519 (key pair + agreement), one Ed25519 signature (host key) and one
    /// Ed25519 verification (the user's), in CPU time on one thread.
    Crypto(CryptoArgs),
}

#[derive(Args, Debug, Clone)]
pub struct CryptoArgs {
    /// Operations timed per primitive (after a tenth as many to warm up).
    #[arg(short = 'n', long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub iterations: u32,
    /// One JSON object instead of text lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttackMode {
    /// Concurrent wrong-password logins.
    Spray,
    /// Concurrent connections doing a key exchange, then dropping.
    KexFlood,
    /// Connections that send the version line and sit.
    PreauthIdle,
    /// Connections that dribble bytes slowly.
    Slowloris,
}

impl AttackMode {
    pub fn name(self) -> &'static str {
        match self {
            AttackMode::Spray => "spray",
            AttackMode::KexFlood => "kex-flood",
            AttackMode::PreauthIdle => "preauth-idle",
            AttackMode::Slowloris => "slowloris",
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct AttackArgs {
    /// The legitimate client (from 127.0.0.1): server, user, --auth and --key.
    #[command(flatten)]
    pub common: Common,
    /// What the attacker does.
    #[arg(long, value_enum)]
    pub mode: AttackMode,
    /// Attacker's source address (loopback, other than the legitimate client's).
    #[arg(long, default_value = "127.0.0.2")]
    pub bind: std::net::IpAddr,
    /// Attacker connections in flight (or held, for preauth-idle and slowloris).
    #[arg(short = 'c', long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=20000))]
    pub concurrency: u32,
    /// Seconds the attack and the measurement run.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Legitimate logins started per second.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub rate: u32,
    /// Attacker connections started per second at most (0: as fast as they end). Bounds the
    /// reconnect loop once the server refuses the source at accept.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(0..=100000))]
    pub connect_rate: u32,
    /// Password the spray tries (should be wrong).
    #[arg(long, default_value = "not-the-password")]
    pub attack_password: String,
    /// Slowloris: milliseconds between bytes on each connection.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=60000))]
    pub dribble_ms: u64,
    /// Write the JSON lines here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthKind {
    /// No user auth: KEX + SERVICE_ACCEPT(ssh-userauth) count as success (KEX-only figures).
    None,
    Password,
    Publickey,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    /// direct-tcpip to the harness's own sink (or --sink).
    Direct,
    /// exec the --command in a session channel.
    Exec,
}

#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Server address; must be loopback.
    #[arg(long, default_value = "127.0.0.1:2222")]
    pub addr: SocketAddr,
    /// User name to authenticate as.
    #[arg(long, default_value = "root")]
    pub user: String,
    /// User authentication method.
    #[arg(long, value_enum, default_value_t = AuthKind::Publickey)]
    pub auth: AuthKind,
    /// ed25519 private key (OpenSSH format) for publickey auth.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Password for password auth.
    #[arg(long)]
    pub password: Option<String>,
    /// Key exchange methods (comma-separated, preference order).
    #[arg(long, default_value = "curve25519-sha256")]
    pub kex: String,
    /// Host key algorithms.
    #[arg(long, default_value = "ssh-ed25519")]
    pub host_key_algorithms: String,
    /// Ciphers.
    #[arg(long, default_value = "aes128-gcm@openssh.com")]
    pub ciphers: String,
    /// MACs (unused with AEAD ciphers but must name at least one).
    #[arg(long, default_value = "hmac-sha2-256-etm@openssh.com")]
    pub macs: String,
    /// Event-loop threads, each with its share of the connections.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub threads: u32,
    /// Seconds a single connection may take to reach its goal before it counts as a timeout.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Server PID: report the CPU time (and for idle, memory) of its whole process tree.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Free-text label copied into the report.
    #[arg(long, default_value = "")]
    pub label: String,
    /// One JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct HandshakeArgs {
    #[command(flatten)]
    pub common: Common,
    /// Connections in flight.
    #[arg(short = 'c', long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub concurrency: u32,
    /// Seconds to keep starting connections (in-flight ones then finish, bounded by --timeout).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Stop starting connections after this many.
    #[arg(long, default_value_t = 10_000_000)]
    pub count: u64,
    /// Also open one session channel and close it before disconnecting.
    #[arg(long)]
    pub channel: bool,
    /// Instead: run this command in a session channel and wait for the channel's close.
    #[arg(long, conflicts_with = "channel")]
    pub exec: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct BulkArgs {
    #[command(flatten)]
    pub common: Common,
    /// Connections, one channel each.
    #[arg(short = 'k', long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub connections: u32,
    /// Bytes per connection (K/M/G suffixes, powers of 1024).
    #[arg(long, default_value = "256M", value_parser = parse_size)]
    pub bytes: u64,
    /// Where the data goes.
    #[arg(long, value_enum, default_value_t = TargetKind::Direct)]
    pub target: TargetKind,
    /// Command for --target exec.
    #[arg(long, default_value = "cat > /dev/null")]
    pub command: String,
    /// direct-tcpip destination instead of the harness's own sink (loopback only; bytes
    /// delivered are then not checked).
    #[arg(long)]
    pub sink: Option<SocketAddr>,
    /// Upper bound on the whole run, seconds.
    #[arg(long, default_value_t = 120.0)]
    pub max_time: f64,
}

#[derive(Args, Debug, Clone)]
pub struct IdleArgs {
    #[command(flatten)]
    pub common: Common,
    /// Connections to open and hold.
    #[arg(short = 'n', long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=20000))]
    pub connections: u32,
    /// Source addresses to spread the connections over, 127.0.0.2 onwards, round robin (0: the
    /// kernel's choice, 127.0.0.1). For more connections than one source has ephemeral ports.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=250))]
    pub sources: u32,
    /// Connections being set up at once.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub ramp: u32,
    /// Seconds to hold them after all are up (memory is sampled at the start of the hold).
    #[arg(long, default_value_t = 2.0)]
    pub hold: f64,
    /// Seconds to wait, still serving events, between the last connection up and the memory
    /// sample (a proxy's upstream logins finish after its users' logins).
    #[arg(long, default_value_t = 1.0)]
    pub settle: f64,
    /// Upper bound on the setup phase, seconds.
    #[arg(long, default_value_t = 120.0)]
    pub max_time: f64,
}

/// `123`, `64K`, `256M`, `1G` (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mul) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&s[..s.len() - 1], 1 << 20),
        Some('G' | 'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let n: u64 = num.parse().map_err(|e| format!("{s}: {e}"))?;
    let v = n.checked_mul(mul).ok_or_else(|| format!("{s}: too large"))?;
    if v == 0 {
        return Err("must be at least 1".into());
    }
    Ok(v)
}

/// Checks what clap cannot: loopback targets, credentials present, positive times.
pub fn validate(c: &Common) -> Result<(), String> {
    if !c.addr.ip().is_loopback() {
        return Err(format!("--addr {}: only loopback targets", c.addr));
    }
    match c.auth {
        AuthKind::Publickey if c.key.is_none() => return Err("--auth publickey needs --key".into()),
        AuthKind::Password if c.password.is_none() => {
            return Err("--auth password needs --password".into())
        }
        _ => {}
    }
    if !(c.timeout > 0.0 && c.timeout <= 600.0) {
        return Err("--timeout must be in (0, 600]".into());
    }
    Ok(())
}

/// A duration flag bounded to (0, 3600] seconds.
pub fn check_secs(name: &str, v: f64) -> Result<(), String> {
    if v > 0.0 && v <= 3600.0 {
        Ok(())
    } else {
        Err(format!("{name} must be in (0, 3600]"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_subcommands_and_defaults() {
        let cli = Cli::try_parse_from([
            "bench-harness",
            "handshake",
            "--addr",
            "127.0.0.1:2200",
            "-c",
            "64",
            "--auth",
            "none",
            "--json",
        ])
        .unwrap();
        let Cmd::Handshake(h) = cli.cmd else { panic!("wrong subcommand") };
        assert_eq!(h.concurrency, 64);
        assert_eq!(h.common.auth, AuthKind::None);
        assert_eq!(h.common.kex, "curve25519-sha256");
        assert!(h.common.json && !h.channel);
        assert!(validate(&h.common).is_ok());

        let cli =
            Cli::try_parse_from(["bench-harness", "bulk", "--bytes", "64M", "--key", "k"]).unwrap();
        let Cmd::Bulk(b) = cli.cmd else { panic!("wrong subcommand") };
        assert_eq!(b.bytes, 64 << 20);
        assert_eq!(b.target, TargetKind::Direct);

        let cli = Cli::try_parse_from(["bench-harness", "idle", "-n", "20000", "--sources", "2"])
            .unwrap();
        let Cmd::Idle(i) = cli.cmd else { panic!("wrong subcommand") };
        assert_eq!((i.connections, i.sources), (20000, 2));
        assert!(Cli::try_parse_from(["bench-harness", "idle", "--sources", "251"]).is_err());

        assert!(Cli::try_parse_from(["bench-harness", "idle", "-n", "0"]).is_err());
        assert!(Cli::try_parse_from(["bench-harness", "handshake", "-c", "0"]).is_err());
    }

    #[test]
    fn rejects_non_loopback_and_missing_credentials() {
        let cli = Cli::try_parse_from(["bench-harness", "idle", "--addr", "10.0.0.1:22"]).unwrap();
        let Cmd::Idle(i) = cli.cmd else { panic!("wrong subcommand") };
        assert!(validate(&i.common).unwrap_err().contains("loopback"));
        let cli = Cli::try_parse_from(["bench-harness", "idle"]).unwrap();
        let Cmd::Idle(i) = cli.cmd else { panic!("wrong subcommand") };
        assert!(validate(&i.common).unwrap_err().contains("--key"));
    }

    #[test]
    fn parses_attack() {
        let cli = Cli::try_parse_from([
            "bench-harness",
            "attack",
            "--mode",
            "kex-flood",
            "--key",
            "k",
            "--duration",
            "2",
        ])
        .unwrap();
        let Cmd::Attack(a) = cli.cmd else { panic!("wrong subcommand") };
        assert_eq!(a.mode, AttackMode::KexFlood);
        assert_eq!(a.bind.to_string(), "127.0.0.2");
        assert_eq!(a.concurrency, 64);
        assert!(Cli::try_parse_from(["bench-harness", "attack", "--mode", "nope"]).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10"), Ok(10));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert!(parse_size("0").is_err());
        assert!(parse_size("x").is_err());
        assert!(parse_size("99999999999G").is_err());
    }
}
