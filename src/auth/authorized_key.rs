//! What an authorized_keys line grants: the key and the options sshfront honours. A leaf
//! module (no IO, no dependencies inside the crate): `config::users` parses files into it,
//! `auth` checks keys against it and `connection` enforces its options.

/// The options of one authorized_keys line that sshfront honours (sshd(8) AUTHORIZED_KEYS FILE
/// FORMAT). `None` lists mean "no restriction from the key".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyOptions {
    /// `from="pattern-list"`: the key is only valid from matching client addresses.
    pub from: Option<Vec<String>>,
    /// `permitopen="host:port"` (repeatable): direct-tcpip only to these.
    pub permit_open: Option<Vec<String>>,
    /// `permitlisten="[host:]port"` (repeatable): tcpip-forward only on these.
    pub permit_listen: Option<Vec<String>>,
    /// `command="…"`: forced command for every session.
    pub command: Option<String>,
    /// `no-port-forwarding`, or `restrict` without a later `port-forwarding`.
    pub no_port_forwarding: bool,
    /// `no-touch-required`: a security key's signature needs no user presence.
    pub no_touch_required: bool,
    /// `verify-required`: a security key's signature must carry user verification (PIN).
    pub verify_required: bool,
    /// `no-pty`, or `restrict` without a later `pty`.
    pub no_pty: bool,
    /// `no-agent-forwarding`, or `restrict` without a later `agent-forwarding`: the session
    /// proxy may not use (or ask for) the user's agent.
    pub no_agent_forwarding: bool,
}

impl KeyOptions {
    /// Restrictions of two keys used in one login (`publickey,publickey`): the stricter of each.
    pub fn merge(&self, other: &KeyOptions) -> KeyOptions {
        fn both(a: &Option<Vec<String>>, b: &Option<Vec<String>>) -> Option<Vec<String>> {
            match (a, b) {
                (None, x) | (x, None) => x.clone(),
                (Some(a), Some(b)) => Some(a.iter().filter(|p| b.contains(p)).cloned().collect()),
            }
        }
        KeyOptions {
            from: both(&self.from, &other.from),
            permit_open: both(&self.permit_open, &other.permit_open),
            permit_listen: both(&self.permit_listen, &other.permit_listen),
            command: self.command.clone().or_else(|| other.command.clone()),
            no_port_forwarding: self.no_port_forwarding || other.no_port_forwarding,
            no_touch_required: self.no_touch_required && other.no_touch_required,
            verify_required: self.verify_required || other.verify_required,
            no_pty: self.no_pty || other.no_pty,
            no_agent_forwarding: self.no_agent_forwarding || other.no_agent_forwarding,
        }
    }
}

/// One usable line of an authorized_keys file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizedKey {
    /// Key type as on the wire (`ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`, …).
    pub algorithm: String,
    /// The public key blob (RFC 4253 §6.6), compared byte for byte with the client's.
    pub blob: Vec<u8>,
    pub options: KeyOptions,
}
