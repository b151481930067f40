//! Transport settings: what a connection offers and its limits. Built once by `config/` from
//! the command line, shared as `Arc`, immutable for the connection's life.

use crate::algo::cipher::CipherAlg;
use crate::algo::host_key::{HostKeyAlg, HostKeyPair};
use crate::algo::kex::gex::GexGroups;
use crate::algo::kex::KexAlg;
use crate::algo::mac::MacAlg;
use std::sync::Arc;
use std::time::Duration;

/// Default bound on outgoing bytes held back while a key exchange runs.
pub const DEFAULT_MAX_HELD_BYTES: usize = 4 * 1024 * 1024;
/// Default time a key exchange may take once started.
pub const DEFAULT_KEX_TIMEOUT: Duration = Duration::from_secs(60);
/// Default rekey volume for 64-bit-block-free AES modes (OpenSSH: 2^(128/4)… capped; we use 64 GiB).
pub const DEFAULT_REKEY_BYTES_AES: u64 = 64 << 30;
/// Default rekey volume for chacha20-poly1305 (OpenSSH rekeys it at 1 GiB).
pub const DEFAULT_REKEY_BYTES_CHACHA: u64 = 1 << 30;
/// Rekey after this many packets in one direction (2^31, RFC 4344 §3.1 advises well below 2^32).
pub const DEFAULT_REKEY_PACKETS: u64 = 1 << 31;

/// Compression names as negotiated.
pub const COMPRESSION_NONE: &str = "none";
pub const COMPRESSION_ZLIB: &str = "zlib";
pub const COMPRESSION_ZLIB_OPENSSH: &str = "zlib@openssh.com";

#[derive(Clone)]
pub struct TransportConfig {
    /// Our software version (`sshfront_0.1.0`): printable ASCII, no `-` or space.
    pub software_version: String,
    /// Optional comment after the software version in our banner.
    pub comment: Option<String>,
    /// KEX methods offered, in preference order (markers are added by the transport).
    pub kex: Vec<&'static KexAlg>,
    /// Host-key algorithms offered (only those a loaded key can serve are sent).
    pub host_key_algs: Vec<HostKeyAlg>,
    pub ciphers: Vec<&'static CipherAlg>,
    pub macs: Vec<&'static MacAlg>,
    /// Subset of `none`, `zlib@openssh.com`, `zlib`, in preference order.
    pub compression: Vec<&'static str>,
    /// Server role: the host keys. Empty in the client role.
    pub host_keys: Vec<Arc<HostKeyPair>>,
    /// Server role: groups for diffie-hellman-group-exchange.
    pub gex_groups: Arc<GexGroups>,
    /// Rekey after this many bytes in either direction; `None` = per-cipher default.
    pub rekey_bytes: Option<u64>,
    /// Rekey after this much time; `None` = never by time.
    pub rekey_interval: Option<Duration>,
    pub kex_timeout: Duration,
    /// Bound on outgoing bytes held back during a key exchange (backpressure above it).
    pub max_held_bytes: usize,
    /// Accept `SSH-1.99-` as 2.0 (RFC 4253 §5.1). Other versions are always refused.
    pub accept_1_99: bool,
    /// List `kexguess2@matt.ucc.asn.au` (Dropbear's guess rule, see `kex::guess_is_right`).
    pub kexguess2: bool,
    /// Server role: the `server-sig-algs` value of EXT_INFO (RFC 8308 §3.1), the publickey
    /// algorithms authentication accepts.
    pub server_sig_algs: String,
}

/// `server-sig-algs` when nothing else is configured: the default publickey algorithms.
pub fn default_server_sig_algs() -> String {
    crate::auth::publickey::DEFAULT_PUBKEY_ALGS.join(",")
}

impl TransportConfig {
    /// Every algorithm we implement (the off-by-default ones too), in default order, no host
    /// keys, built-in GEX groups, default limits: the client role's usual config, and the base
    /// that tests, fuzzing and benchmarks narrow down.
    pub fn all_algorithms(software_version: &str) -> Self {
        use crate::algo::kex::gex::GexGroups;
        use crate::algo::{cipher, kex, mac};
        TransportConfig {
            software_version: software_version.to_string(),
            comment: None,
            kex: kex::ALL.to_vec(),
            host_key_algs: HostKeyAlg::ALL.to_vec(),
            ciphers: cipher::ALL.to_vec(),
            macs: mac::ALL.to_vec(),
            compression: vec![COMPRESSION_NONE, COMPRESSION_ZLIB_OPENSSH, COMPRESSION_ZLIB],
            host_keys: Vec::new(),
            gex_groups: Arc::new(GexGroups::builtin()),
            rekey_bytes: None,
            rekey_interval: None,
            kex_timeout: DEFAULT_KEX_TIMEOUT,
            max_held_bytes: DEFAULT_MAX_HELD_BYTES,
            accept_1_99: true,
            kexguess2: true,
            server_sig_algs: default_server_sig_algs(),
        }
    }
}
