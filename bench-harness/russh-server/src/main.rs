//! A minimal SSH server on the `russh` crate (tokio, ring backend), the second peer of
//! `scripts/compare.sh`: ed25519 host key, publickey and password auth for one user,
//! direct-tcpip to loopback targets, and `exec` as a sink (`cat > /dev/null`).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use clap::Parser;
use russh::keys::{PrivateKey, PublicKey};
use russh::server::{Auth, Msg, Server as _, Session};
use russh::{cipher, Channel, ChannelId, ChannelMsg, MethodKind, MethodSet};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

/// Minimal russh server for benchmarks (loopback only).
#[derive(Parser, Debug)]
struct Args {
    /// Loopback address to listen on.
    #[arg(long, default_value = "127.0.0.1:2224")]
    listen: SocketAddr,
    /// OpenSSH ed25519 host private key.
    #[arg(long)]
    host_key: PathBuf,
    /// The one user allowed in.
    #[arg(long)]
    user: String,
    /// OpenSSH public key file (one key) accepted for the user.
    #[arg(long)]
    authorized_key: Option<PathBuf>,
    /// Password accepted for the user.
    #[arg(long)]
    password: Option<String>,
    /// Tokio worker threads [default: number of cores].
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Clone)]
struct Shared {
    user: String,
    key: Option<PublicKey>,
    password: Option<String>,
}

struct Srv(Arc<Shared>);

impl russh::server::Server for Srv {
    type Handler = Conn;
    fn new_client(&mut self, _peer: Option<SocketAddr>) -> Conn {
        Conn { shared: self.0.clone(), sessions: HashMap::new() }
    }
}

struct Conn {
    shared: Arc<Shared>,
    /// Session channels opened but not yet given a command.
    sessions: HashMap<ChannelId, Channel<Msg>>,
}

impl russh::server::Handler for Conn {
    type Error = russh::Error;

    async fn auth_publickey(&mut self, user: &str, key: &PublicKey) -> Result<Auth, Self::Error> {
        let ok = user == self.shared.user
            && self.shared.key.as_ref().is_some_and(|k| k.key_data() == key.key_data());
        Ok(if ok { Auth::Accept } else { Auth::reject() })
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let ok = user == self.shared.user && self.shared.password.as_deref() == Some(password);
        Ok(if ok { Auth::Accept } else { Auth::reject() })
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        self.sessions.insert(channel.id(), channel);
        Ok(true)
    }

    async fn exec_request(
        &mut self,
        id: ChannelId,
        _command: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(mut channel) = self.sessions.remove(&id) else {
            return session.channel_failure(id);
        };
        session.channel_success(id)?;
        // Every command is a sink: read and drop until EOF, then exit 0.
        tokio::spawn(async move {
            while let Some(msg) = channel.wait().await {
                if let ChannelMsg::Eof = msg {
                    let _ = channel.exit_status(0).await;
                    let _ = channel.eof().await;
                    let _ = channel.close().await;
                    break;
                }
            }
        });
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host: &str,
        port: u32,
        _orig: &str,
        _orig_port: u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        let Ok(ip) = host.parse::<IpAddr>() else { return Ok(false) };
        let Ok(port) = u16::try_from(port) else { return Ok(false) };
        if !ip.is_loopback() {
            return Ok(false);
        }
        let Ok(mut tcp) = tokio::net::TcpStream::connect((ip, port)).await else {
            return Ok(false);
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(async move {
            let mut stream = channel.into_stream();
            let _ = tokio::io::copy_bidirectional(&mut stream, &mut tcp).await;
        });
        Ok(true)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if !args.listen.ip().is_loopback() {
        return Err("only loopback addresses".into());
    }
    let host_key = PrivateKey::read_openssh_file(&args.host_key)?;
    let key = match &args.authorized_key {
        Some(p) => Some(PublicKey::read_openssh_file(p)?),
        None => None,
    };
    let mut methods = Vec::new();
    if key.is_some() {
        methods.push(MethodKind::PublicKey);
    }
    if args.password.is_some() {
        methods.push(MethodKind::Password);
    }
    let config = russh::server::Config {
        methods: MethodSet::from(&methods[..]),
        auth_rejection_time: std::time::Duration::from_millis(0),
        auth_rejection_time_initial: Some(std::time::Duration::from_millis(0)),
        keys: vec![host_key],
        inactivity_timeout: None,
        nodelay: true,
        // russh's default list lacks aes128-gcm; the comparison needs it.
        preferred: russh::Preferred {
            cipher: std::borrow::Cow::Borrowed(&[
                cipher::CHACHA20_POLY1305,
                cipher::AES_128_GCM,
                cipher::AES_256_GCM,
                cipher::AES_128_CTR,
                cipher::AES_256_CTR,
            ]),
            ..Default::default()
        },
        ..Default::default()
    };
    let shared = Arc::new(Shared { user: args.user, key, password: args.password });
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        rt.worker_threads(n);
    }
    rt.enable_all()
        .build()?
        .block_on(async move { Srv(shared).run_on_address(Arc::new(config), args.listen).await })?;
    Ok(())
}
