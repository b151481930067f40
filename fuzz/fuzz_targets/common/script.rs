//! Scripts of well-formed SSH messages with mutated fields, built from fuzzer bytes with the
//! `arbitrary` crate's `Unstructured` (no derive: each message is written with `sshfront`'s own
//! `Writer`, so the framing of every field is right and only the values vary).

use arbitrary::{Result, Unstructured};
use sshfront::fuzz_entry::session::{msg, Action, PASSWORD, USER};
use sshfront::wire::{msg_no, Writer};

/// Longest script (bounds a run).
const MAX_ACTIONS: usize = 48;

/// A script for the server (`client_side` false: the client core sends) or for the client core
/// (`client_side` true: mostly the server sends).
pub fn script(u: &mut Unstructured<'_>, client_side: bool) -> Result<Vec<Action>> {
    let mut out = Vec::new();
    if u.ratio(7u8, 8u8)? {
        out.push(Action::Login);
    }
    while out.len() < MAX_ACTIONS && !u.is_empty() {
        out.push(action(u, client_side)?);
    }
    Ok(out)
}

fn action(u: &mut Unstructured<'_>, client_side: bool) -> Result<Action> {
    Ok(match u.int_in_range(0u8..=15)? {
        0 => Action::Login,
        1 => Action::ClientRekey,
        2 => Action::ServerRekey,
        3 => Action::Wait(u.int_in_range(0u16..=4000)?),
        4 => {
            let n = u.int_in_range(0usize..=64)?;
            let b = u.bytes(n)?.to_vec();
            if client_side {
                Action::RawToClient(b)
            } else {
                Action::RawToServer(b)
            }
        }
        5..=9 if client_side => Action::ServerSends(server_msg(u)?),
        _ => {
            let m = client_msg(u)?;
            if client_side && u.ratio(1u8, 2u8)? {
                Action::ServerSends(m)
            } else {
                Action::ClientSends(m)
            }
        }
    })
}

/// A channel or listener number: usually one that exists, sometimes anything.
fn id(u: &mut Unstructured<'_>) -> Result<u32> {
    if u.ratio(7u8, 8u8)? {
        u.int_in_range(0u32..=3)
    } else {
        u.arbitrary()
    }
}

/// A size or count: edges and small values more often than uniform.
fn num(u: &mut Unstructured<'_>) -> Result<u32> {
    Ok(match u.int_in_range(0u8..=5)? {
        0 => 0,
        1 => u32::MAX,
        2 => u.int_in_range(0u32..=64)?,
        3 => u.int_in_range(0u32..=70_000)?,
        4 => 1u32 << u.int_in_range(0u32..=31)?,
        _ => u.arbitrary()?,
    })
}

fn text<'a>(u: &mut Unstructured<'a>, known: &[&'a str]) -> Result<&'a [u8]> {
    if !known.is_empty() && u.ratio(3u8, 4u8)? {
        Ok(u.choose(known)?.as_bytes())
    } else {
        let n = u.int_in_range(0usize..=40)?;
        u.bytes(n)
    }
}

fn blob<'a>(u: &mut Unstructured<'a>) -> Result<&'a [u8]> {
    let n = u.int_in_range(0usize..=300)?;
    u.bytes(n)
}

const CHANNEL_TYPES: &[&str] =
    &["session", "direct-tcpip", "forwarded-tcpip", "x11", "direct-streamlocal@openssh.com"];
const CHANNEL_REQUESTS: &[&str] = &[
    "pty-req",
    "env",
    "exec",
    "shell",
    "subsystem",
    "window-change",
    "signal",
    "exit-status",
    "exit-signal",
    "xon-xoff",
    "break",
    "x11-req",
    "auth-agent-req@openssh.com",
    "keepalive@openssh.com",
    "eow@openssh.com",
];
const GLOBAL_REQUESTS: &[&str] = &[
    "tcpip-forward",
    "cancel-tcpip-forward",
    "keepalive@openssh.com",
    "no-more-sessions@openssh.com",
    "hostkeys-prove-00@openssh.com",
    "streamlocal-forward@openssh.com",
];
const HOSTS: &[&str] = &["localhost", "127.0.0.1", "db.internal", "", "::1", "0.0.0.0"];
const METHODS: &[&str] = &["none", "password", "publickey", "keyboard-interactive", "hostbased"];
const NAMES: &[&str] = &[
    "curve25519-sha256",
    "mlkem768x25519-sha256",
    "diffie-hellman-group-exchange-sha256",
    "ecdh-sha2-nistp384",
    "ssh-ed25519",
    "rsa-sha2-256",
    "aes128-ctr",
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "hmac-sha2-256",
    "hmac-sha2-512-etm@openssh.com",
    "none",
    "zlib@openssh.com",
    "zlib",
    "kex-strict-c-v00@openssh.com",
    "ext-info-c",
];

/// A message a client sends (any layer), well formed, fields mutated.
fn client_msg(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let kind = u.int_in_range(0u8..=19)?;
    Ok(match kind {
        0 => {
            let (t, sender, window, maxp) = (text(u, CHANNEL_TYPES)?, id(u)?, num(u)?, num(u)?);
            let (h, p, oh, op) = (text(u, HOSTS)?, num(u)?, text(u, HOSTS)?, num(u)?);
            msg(|w| {
                w.u8(msg_no::CHANNEL_OPEN).string(t).u32(sender).u32(window).u32(maxp);
                w.string(h).u32(p).string(oh).u32(op);
            })
        }
        1 | 2 => {
            let (ch, name, want) = (id(u)?, text(u, CHANNEL_REQUESTS)?, u.arbitrary::<bool>()?);
            let (s1, s2, n1, n2) =
                (text(u, &["xterm", "LANG", "sftp", "TERM"])?, blob(u)?, num(u)?, num(u)?);
            let shape = u.int_in_range(0u8..=3)?;
            msg(|w| {
                w.u8(msg_no::CHANNEL_REQUEST).u32(ch).string(name).bool(want);
                match shape {
                    0 => {
                        w.string(s1);
                    }
                    1 => {
                        w.string(s1).string(s2);
                    }
                    2 => {
                        w.string(s1).u32(n1).u32(n2).u32(n1).u32(n2).string(s2);
                    }
                    _ => {
                        w.u32(n1).u32(n2).u32(n1).u32(n2);
                    }
                }
            })
        }
        3..=5 => {
            let (ch, d) = (id(u)?, blob(u)?);
            msg(|w| {
                w.u8(msg_no::CHANNEL_DATA).u32(ch).string(d);
            })
        }
        6 => {
            let (ch, code, d) = (id(u)?, num(u)?, blob(u)?);
            msg(|w| {
                w.u8(msg_no::CHANNEL_EXTENDED_DATA).u32(ch).u32(code).string(d);
            })
        }
        7 => {
            let (ch, n) = (id(u)?, num(u)?);
            msg(|w| {
                w.u8(msg_no::CHANNEL_WINDOW_ADJUST).u32(ch).u32(n);
            })
        }
        8 => {
            let m = *u.choose(&[
                msg_no::CHANNEL_EOF,
                msg_no::CHANNEL_CLOSE,
                msg_no::CHANNEL_SUCCESS,
                msg_no::CHANNEL_FAILURE,
            ])?;
            let ch = id(u)?;
            msg(|w| {
                w.u8(m).u32(ch);
            })
        }
        9 => {
            let (ch, sender, window, maxp) = (id(u)?, id(u)?, num(u)?, num(u)?);
            msg(|w| {
                w.u8(msg_no::CHANNEL_OPEN_CONFIRMATION).u32(ch).u32(sender).u32(window).u32(maxp);
            })
        }
        10 => {
            let (ch, code, t) = (id(u)?, num(u)?, text(u, &["no"])?);
            msg(|w| {
                w.u8(msg_no::CHANNEL_OPEN_FAILURE).u32(ch).u32(code).string(t).string(b"");
            })
        }
        11 | 12 => {
            let (name, want, h, p) =
                (text(u, GLOBAL_REQUESTS)?, u.arbitrary::<bool>()?, text(u, HOSTS)?, num(u)?);
            msg(|w| {
                w.u8(msg_no::GLOBAL_REQUEST).string(name).bool(want).string(h).u32(p);
            })
        }
        13 => {
            let m = *u.choose(&[msg_no::REQUEST_SUCCESS, msg_no::REQUEST_FAILURE])?;
            vec![m]
        }
        14 | 15 => {
            let user = text(u, &[USER, "root"])?;
            let service = text(u, &["ssh-connection"])?;
            let method = text(u, METHODS)?;
            let (change, pw, alg, key, sig) = (
                u.arbitrary::<bool>()?,
                text(u, &[PASSWORD, "wrong"])?,
                text(u, NAMES)?,
                blob(u)?,
                blob(u)?,
            );
            let has_sig = u.arbitrary::<bool>()?;
            msg(|w| {
                w.u8(msg_no::USERAUTH_REQUEST).string(user).string(service).string(method);
                match method {
                    b"password" => {
                        w.bool(change).string(pw);
                        if change {
                            w.string(pw);
                        }
                    }
                    b"publickey" => {
                        w.bool(has_sig).string(alg).string(key);
                        if has_sig {
                            w.string(sig);
                        }
                    }
                    b"keyboard-interactive" => {
                        w.string(b"").string(b"");
                    }
                    _ => {}
                }
            })
        }
        16 => {
            let n = u.int_in_range(0u32..=3)?;
            let count = if u.ratio(1u8, 8u8)? { num(u)? } else { n };
            let answer = text(u, &[PASSWORD])?;
            msg(|w| {
                w.u8(msg_no::USERAUTH_INFO_RESPONSE).u32(count);
                for _ in 0..n {
                    w.string(answer);
                }
            })
        }
        17 => {
            let m = *u.choose(&[
                msg_no::IGNORE,
                msg_no::DEBUG,
                msg_no::UNIMPLEMENTED,
                msg_no::SERVICE_REQUEST,
                msg_no::EXT_INFO,
                msg_no::PING,
            ])?;
            let (b, n) = (blob(u)?, num(u)?);
            msg(|w| {
                w.u8(m);
                match m {
                    msg_no::UNIMPLEMENTED => {
                        w.u32(n);
                    }
                    msg_no::DEBUG => {
                        w.bool(n & 1 == 1).string(b).string(b"");
                    }
                    msg_no::EXT_INFO => {
                        w.u32(n & 3).string(b"server-sig-algs").string(b);
                    }
                    _ => {
                        w.string(b);
                    }
                }
            })
        }
        18 => kexinit(u)?,
        _ => {
            let (no, b) = (u.arbitrary::<u8>()?, blob(u)?);
            let mut v = vec![no];
            v.extend_from_slice(b);
            v
        }
    })
}

/// A KEXINIT with name lists drawn from known and unknown names (a rekey in mid-session).
fn kexinit(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let mut lists: Vec<Vec<&[u8]>> = Vec::new();
    for _ in 0..10 {
        let n = u.int_in_range(0usize..=3)?;
        let mut l = Vec::new();
        for _ in 0..n {
            l.push(text(u, NAMES)?);
        }
        lists.push(l);
    }
    let (cookie, follows) = (u.bytes(16)?, u.ratio(1u8, 8u8)?);
    Ok(msg(|w: &mut Writer| {
        w.u8(msg_no::KEXINIT).raw(cookie);
        for l in &lists {
            w.string(&l.join(&b","[..]));
        }
        w.bool(follows).u32(0);
    }))
}

/// A message a server sends to a client, well formed, fields mutated.
fn server_msg(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    Ok(match u.int_in_range(0u8..=7)? {
        0 => {
            let (m, partial) =
                (text(u, &["password,publickey", "keyboard-interactive"])?, u.arbitrary::<bool>()?);
            msg(|w| {
                w.u8(msg_no::USERAUTH_FAILURE).string(m).bool(partial);
            })
        }
        1 => vec![msg_no::USERAUTH_SUCCESS],
        2 => {
            let b = blob(u)?;
            msg(|w| {
                w.u8(msg_no::USERAUTH_BANNER).string(b).string(b"");
            })
        }
        3 => {
            let (n, prompt) = (u.int_in_range(0u32..=2)?, text(u, &["Password: "])?);
            msg(|w| {
                w.u8(msg_no::USERAUTH_INFO_REQUEST).string(b"").string(b"").string(b"").u32(n);
                for _ in 0..n {
                    w.string(prompt).bool(false);
                }
            })
        }
        4 => {
            let (t, sender, window, maxp, h, p) =
                (text(u, CHANNEL_TYPES)?, id(u)?, num(u)?, num(u)?, text(u, HOSTS)?, num(u)?);
            msg(|w| {
                w.u8(msg_no::CHANNEL_OPEN).string(t).u32(sender).u32(window).u32(maxp);
                w.string(h).u32(p).string(h).u32(p);
            })
        }
        5 => {
            let (ch, code) = (id(u)?, num(u)?);
            msg(|w| {
                w.u8(msg_no::CHANNEL_REQUEST).u32(ch).string(b"exit-status").bool(false).u32(code);
            })
        }
        6 => {
            let (n, b) = (num(u)?, blob(u)?);
            msg(|w| {
                w.u8(msg_no::EXT_INFO).u32(n & 3).string(b"server-sig-algs").string(b);
            })
        }
        _ => {
            let (n, b) = (num(u)?, blob(u)?);
            msg(|w| {
                w.u8(msg_no::SERVICE_ACCEPT).string(b"ssh-userauth");
                let _ = (n, b);
            })
        }
    })
}
