//! ssh-agent client protocol (draft-miller-ssh-agent), sans-IO: what the session proxy says to
//! the user's forwarded agent (`ssh -A`) over an `auth-agent@openssh.com` channel, to log in
//! upstream with the user's key without the key ever being here.
//!
//! Requests are built as whole frames (`uint32 length, byte type, contents`). Replies arrive
//! as channel data in any split: [`Decoder`] collects them and hands out one [`Reply`] per
//! frame. The agent is the user's software, so its bytes are hostile: a frame longer than
//! [`MAX_FRAME`] is an error (nothing is buffered past it), counts are checked against the
//! bytes present before anything is allocated, and every string is bounded by its frame.

use crate::wire::{DecodeError, Reader, Writer};

/// Largest frame accepted from an agent (OpenSSH's own limit is 256 KiB too).
pub const MAX_FRAME: usize = 256 * 1024;
/// Most identities taken from one answer (more are ignored, not an error).
pub const MAX_IDENTITIES: usize = 64;

pub const SSH_AGENT_FAILURE: u8 = 5;
pub const SSH_AGENT_SUCCESS: u8 = 6;
pub const SSH_AGENTC_REQUEST_IDENTITIES: u8 = 11;
pub const SSH_AGENT_IDENTITIES_ANSWER: u8 = 12;
pub const SSH_AGENTC_SIGN_REQUEST: u8 = 13;
pub const SSH_AGENT_SIGN_RESPONSE: u8 = 14;
pub const SSH_AGENT_EXTENSION_FAILURE: u8 = 28;

/// Sign-request flags: RSA signatures with SHA-256 / SHA-512 (`rsa-sha2-256` / `-512`).
pub const SSH_AGENT_RSA_SHA2_256: u32 = 2;
pub const SSH_AGENT_RSA_SHA2_512: u32 = 4;

/// One key the agent holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The public key blob (as in a publickey USERAUTH_REQUEST).
    pub key_blob: Vec<u8>,
    /// Lossy UTF-8, at most 256 bytes kept: for logs only.
    pub comment: String,
}

/// One reply from the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Identities(Vec<Identity>),
    /// The signature blob (`string alg, string sig`), ready for USERAUTH_REQUEST.
    Signature(Vec<u8>),
    /// FAILURE (or EXTENSION_FAILURE): the agent refused.
    Failure,
    Success,
    /// A reply type this client never asks for.
    Unexpected(u8),
}

/// Why the agent's bytes cannot be used; the channel should be closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentError {
    FrameTooLarge(usize),
    EmptyFrame,
    Malformed(String),
}

impl std::fmt::Display for AgentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgentError::FrameTooLarge(n) => {
                write!(f, "agent frame of {n} bytes (at most {MAX_FRAME})")
            }
            AgentError::EmptyFrame => write!(f, "empty agent frame"),
            AgentError::Malformed(m) => write!(f, "malformed agent reply: {m}"),
        }
    }
}

impl std::error::Error for AgentError {}

impl From<DecodeError> for AgentError {
    fn from(e: DecodeError) -> Self {
        AgentError::Malformed(e.to_string())
    }
}

/// `SSH_AGENTC_REQUEST_IDENTITIES`, framed.
pub fn request_identities() -> Vec<u8> {
    vec![0, 0, 0, 1, SSH_AGENTC_REQUEST_IDENTITIES]
}

/// `SSH_AGENTC_SIGN_REQUEST` for `data` with the key `key_blob`, framed. `flags`: 0, or
/// [`SSH_AGENT_RSA_SHA2_256`] / [`SSH_AGENT_RSA_SHA2_512`] for RSA keys.
pub fn sign_request(key_blob: &[u8], data: &[u8], flags: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + 1 + 8 + key_blob.len() + data.len() + 4);
    let mut w = Writer::new(&mut v);
    w.u32(0).u8(SSH_AGENTC_SIGN_REQUEST).string(key_blob).string(data).u32(flags);
    let len = u32::try_from(v.len() - 4).unwrap_or(u32::MAX);
    v[..4].copy_from_slice(&len.to_be_bytes());
    v
}

/// The flags for signing with signature algorithm `alg` (the RSA SHA-2 names need one).
pub fn sign_flags(alg: &str) -> u32 {
    match alg {
        "rsa-sha2-256" | "rsa-sha2-256-cert-v01@openssh.com" => SSH_AGENT_RSA_SHA2_256,
        "rsa-sha2-512" | "rsa-sha2-512-cert-v01@openssh.com" => SSH_AGENT_RSA_SHA2_512,
        _ => 0,
    }
}

/// Collects the agent's bytes into frames.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn new() -> Self {
        Decoder::default()
    }

    /// Bytes held, waiting for the rest of their frame (at most `4 + MAX_FRAME`).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Takes bytes from the agent; returns how many it took. It takes no more than the frame
    /// being collected needs, so a whole buffer of replies is fed in a loop with `next_reply`.
    pub fn push(&mut self, data: &[u8]) -> Result<usize, AgentError> {
        let mut taken = 0;
        loop {
            // A too-large length is refused as soon as its 4 bytes are in.
            let need = self.need()?;
            let rest = data.get(taken..).unwrap_or_default();
            if need == 0 || rest.is_empty() {
                return Ok(taken);
            }
            let n = need.min(rest.len());
            self.buf.extend_from_slice(&rest[..n]);
            taken += n;
        }
    }

    /// The next whole reply, if one is in.
    pub fn next_reply(&mut self) -> Result<Option<Reply>, AgentError> {
        if self.buf.len() < 4 || self.need()? > 0 {
            return Ok(None);
        }
        let frame = std::mem::take(&mut self.buf);
        parse_reply(&frame[4..]).map(Some)
    }

    /// Bytes still missing from the frame being collected.
    fn need(&self) -> Result<usize, AgentError> {
        let Some(len) = self.buf.get(..4) else {
            return Ok(4 - self.buf.len());
        };
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if len > MAX_FRAME {
            return Err(AgentError::FrameTooLarge(len));
        }
        if len == 0 {
            return Err(AgentError::EmptyFrame);
        }
        Ok(4 + len - self.buf.len())
    }
}

/// Most requests outstanding on one agent channel.
pub const MAX_PENDING: usize = 16;

/// What a request was, so its reply (agents answer in order) can be checked and handed back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    Identities,
    /// A signature with algorithm `alg`; `tag` is the caller's (e.g. the client core's sign
    /// request number).
    Sign {
        tag: u64,
        alg: String,
    },
}

/// A request and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Identities(Vec<Identity>),
    /// The signature blob, already checked to be of the algorithm asked for.
    Signature {
        tag: u64,
        blob: Vec<u8>,
    },
    /// The agent refused (no such key, user declined a confirmation, …).
    Refused(Asked),
}

/// One agent channel's client side: frames out, replies matched to their requests in order.
#[derive(Debug, Default)]
pub struct AgentClient {
    decoder: Decoder,
    pending: std::collections::VecDeque<Asked>,
}

impl AgentClient {
    pub fn new() -> Self {
        AgentClient::default()
    }

    /// Reply bytes held for an incomplete frame (at most `4 + MAX_FRAME`).
    pub fn buffered(&self) -> usize {
        self.decoder.buffered()
    }

    /// Requests sent and not answered yet.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The frame asking for the agent's keys.
    pub fn request_identities(&mut self) -> Result<Vec<u8>, AgentError> {
        self.ask(Asked::Identities)?;
        Ok(request_identities())
    }

    /// The frame asking for a signature over `data` with `key_blob`, algorithm `alg` (e.g.
    /// `rsa-sha2-512` for an RSA key).
    pub fn sign(
        &mut self,
        tag: u64,
        key_blob: &[u8],
        data: &[u8],
        alg: &str,
    ) -> Result<Vec<u8>, AgentError> {
        self.ask(Asked::Sign { tag, alg: alg.to_string() })?;
        Ok(sign_request(key_blob, data, sign_flags(alg)))
    }

    fn ask(&mut self, a: Asked) -> Result<(), AgentError> {
        if self.pending.len() >= MAX_PENDING {
            return Err(AgentError::Malformed("too many agent requests outstanding".into()));
        }
        self.pending.push_back(a);
        Ok(())
    }

    /// Takes the agent's bytes (channel data); returns how many were taken and the answer
    /// they completed, if any. Call again with the rest. A reply nobody asked for, or one
    /// that does not fit its request, is an error: close the channel.
    pub fn receive(&mut self, data: &[u8]) -> Result<(usize, Option<Answer>), AgentError> {
        let n = self.decoder.push(data)?;
        let Some(reply) = self.decoder.next_reply()? else {
            return Ok((n, None));
        };
        let asked = self
            .pending
            .pop_front()
            .ok_or_else(|| AgentError::Malformed("a reply to no request".into()))?;
        let answer = match (asked, reply) {
            (asked, Reply::Failure) => Answer::Refused(asked),
            (Asked::Identities, Reply::Identities(ids)) => Answer::Identities(ids),
            (Asked::Sign { tag, alg }, Reply::Signature(blob)) => {
                let got = Reader::new(&blob).string("signature algorithm")?;
                if got != alg.as_bytes() {
                    return Err(AgentError::Malformed(format!(
                        "signature of type {:?}, asked for {alg:?}",
                        String::from_utf8_lossy(got)
                    )));
                }
                Answer::Signature { tag, blob }
            }
            (asked, other) => {
                return Err(AgentError::Malformed(format!("{other:?} in answer to {asked:?}")))
            }
        };
        Ok((n, Some(answer)))
    }
}

/// One frame's body (type byte onwards).
pub fn parse_reply(body: &[u8]) -> Result<Reply, AgentError> {
    let mut r = Reader::new(body);
    let t = r.u8("agent reply type")?;
    match t {
        SSH_AGENT_FAILURE | SSH_AGENT_EXTENSION_FAILURE => Ok(Reply::Failure),
        SSH_AGENT_SUCCESS => Ok(Reply::Success),
        SSH_AGENT_SIGN_RESPONSE => {
            let sig = r.string("signature")?;
            r.finish("sign response")?;
            // The blob must itself be `string alg, string sig`.
            let mut s = Reader::new(sig);
            s.string("signature algorithm")?;
            s.string("signature")?;
            s.finish("signature")?;
            Ok(Reply::Signature(sig.to_vec()))
        }
        SSH_AGENT_IDENTITIES_ANSWER => {
            let n = r.u32("key count")? as usize;
            // Each identity takes at least 8 bytes (two string lengths).
            if n > r.remaining().len() / 8 {
                return Err(AgentError::Malformed(format!("{n} keys in a frame too short")));
            }
            let mut ids = Vec::with_capacity(n.min(MAX_IDENTITIES));
            for _ in 0..n {
                let key_blob = r.string("key blob")?;
                let comment = r.string("comment")?;
                if ids.len() < MAX_IDENTITIES {
                    let c = comment.get(..256).unwrap_or(comment);
                    ids.push(Identity {
                        key_blob: key_blob.to_vec(),
                        comment: String::from_utf8_lossy(c).into_owned(),
                    });
                }
            }
            r.finish("identities answer")?;
            Ok(Reply::Identities(ids))
        }
        other => Ok(Reply::Unexpected(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    fn feed(d: &mut Decoder, mut data: &[u8]) -> Result<Vec<Reply>, AgentError> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let n = d.push(data)?;
            data = &data[n..];
            if let Some(r) = d.next_reply()? {
                out.push(r);
            }
        }
        Ok(out)
    }

    #[test]
    fn requests_are_framed() {
        assert_eq!(request_identities(), [0, 0, 0, 1, 11]);
        let s = sign_request(b"KEY", b"DATA", SSH_AGENT_RSA_SHA2_512);
        let mut want = vec![0, 0, 0, 20, 13, 0, 0, 0, 3];
        want.extend_from_slice(b"KEY");
        want.extend_from_slice(&[0, 0, 0, 4]);
        want.extend_from_slice(b"DATA");
        want.extend_from_slice(&[0, 0, 0, 4]);
        assert_eq!(s, want);
        assert_eq!(sign_flags("rsa-sha2-256"), 2);
        assert_eq!(sign_flags("ssh-ed25519"), 0);
    }

    #[test]
    fn replies_in_any_split() {
        let mut w = Vec::new();
        Writer::new(&mut w).u8(12).u32(2).string(b"k1").string(b"one").string(b"k2").string(b"");
        let mut sig = Vec::new();
        Writer::new(&mut sig).string(b"ssh-ed25519").string(&[7; 64]);
        let mut s = Vec::new();
        Writer::new(&mut s).u8(14).string(&sig);
        let mut all = frame(&w);
        all.extend(frame(&s));
        all.extend(frame(&[5]));
        all.extend(frame(&[99, 1, 2]));
        for step in [1, 3, 7, all.len()] {
            let mut d = Decoder::new();
            let mut got = Vec::new();
            for chunk in all.chunks(step) {
                got.extend(feed(&mut d, chunk).unwrap());
            }
            assert_eq!(got.len(), 4, "step {step}");
            let Reply::Identities(ids) = &got[0] else { panic!() };
            assert_eq!(ids[0], Identity { key_blob: b"k1".to_vec(), comment: "one".into() });
            assert_eq!(ids[1].key_blob, b"k2");
            assert_eq!(got[1], Reply::Signature(sig.clone()));
            assert_eq!(got[2], Reply::Failure);
            assert_eq!(got[3], Reply::Unexpected(99));
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn hostile_replies_are_refused_without_allocating() {
        let mut d = Decoder::new();
        let e = feed(&mut d, &[0x7f, 0xff, 0xff, 0xff, 12]).unwrap_err();
        assert_eq!(e, AgentError::FrameTooLarge(0x7fff_ffff));
        assert!(d.buffered() <= 4);
        let e = feed(&mut Decoder::new(), &[0, 0, 0, 0]).unwrap_err();
        assert_eq!(e, AgentError::EmptyFrame);
        // A key count far beyond the frame: refused before any allocation.
        let mut w = Vec::new();
        Writer::new(&mut w).u8(12).u32(u32::MAX);
        assert!(matches!(parse_reply(&w), Err(AgentError::Malformed(_))));
        // Strings past the frame's end, trailing bytes, a signature that is no blob.
        for body in [
            &[14u8, 0, 0, 1, 0][..],
            &[12, 0, 0, 0, 0, 9][..],
            &[14, 0, 0, 0, 3, 1, 2, 3][..],
            &[][..],
        ] {
            assert!(parse_reply(body).is_err(), "{body:?}");
        }
        // Many identities: only MAX_IDENTITIES are kept.
        let mut w = Vec::new();
        let mut wr = Writer::new(&mut w);
        wr.u8(12).u32(1000);
        for _ in 0..1000 {
            wr.string(b"k").string(b"c");
        }
        let Reply::Identities(ids) = parse_reply(&w).unwrap() else { panic!() };
        assert_eq!(ids.len(), MAX_IDENTITIES);
    }

    #[test]
    fn client_matches_replies_to_requests() {
        let mut c = AgentClient::new();
        assert_eq!(c.request_identities().unwrap(), [0, 0, 0, 1, 11]);
        c.sign(7, b"KEY", b"data", "rsa-sha2-256").unwrap();
        c.sign(8, b"KEY", b"data", "ssh-ed25519").unwrap();
        let mut w = Vec::new();
        Writer::new(&mut w).u8(12).u32(1).string(b"KEY").string(b"c");
        let mut sig = Vec::new();
        Writer::new(&mut sig).string(b"rsa-sha2-256").string(b"s");
        let mut s = Vec::new();
        Writer::new(&mut s).u8(14).string(&sig);
        let mut all = frame(&w);
        all.extend(frame(&s));
        all.extend(frame(&[5]));
        let mut got = Vec::new();
        let mut data = &all[..];
        while !data.is_empty() {
            let (n, a) = c.receive(data).unwrap();
            data = &data[n..];
            got.extend(a);
        }
        assert!(matches!(&got[0], Answer::Identities(ids) if ids.len() == 1));
        assert_eq!(got[1], Answer::Signature { tag: 7, blob: sig.clone() });
        assert_eq!(got[2], Answer::Refused(Asked::Sign { tag: 8, alg: "ssh-ed25519".into() }));
        assert_eq!(c.pending(), 0);
        // Unasked replies, the wrong kind, the wrong algorithm: errors.
        assert!(c.receive(&frame(&[5])).is_err());
        let mut c = AgentClient::new();
        c.request_identities().unwrap();
        assert!(c.receive(&frame(&s)).is_err());
        let mut c = AgentClient::new();
        c.sign(1, b"KEY", b"data", "rsa-sha2-512").unwrap();
        assert!(c.receive(&frame(&s)).is_err(), "rsa-sha2-256 when 512 was asked");
        let mut c = AgentClient::new();
        for i in 0..MAX_PENDING as u64 {
            c.sign(i, b"K", b"d", "ssh-ed25519").unwrap();
        }
        assert!(c.sign(99, b"K", b"d", "ssh-ed25519").is_err(), "outstanding requests bounded");
    }

    /// The codec against a real OpenSSH agent: list the keys, sign, verify the signature.
    #[test]
    fn signs_through_a_real_ssh_agent() {
        use std::io::{Read, Write};
        use std::os::unix::net::UnixStream;
        use std::process::{Command, Stdio};

        let dir = std::env::temp_dir().join(format!("sshfront-agent-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("agent.sock");
        let agent = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent (openssh-client) must be installed");
        struct Kill(std::process::Child);
        impl Drop for Kill {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let agent_guard = Kill(agent);
        for _ in 0..200 {
            if sock.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        let mut keys = Vec::new();
        for (t, bits) in [("ed25519", None), ("rsa", Some("2048")), ("ecdsa", Some("256"))] {
            let k = dir.join(format!("id_{t}"));
            let mut c = Command::new("ssh-keygen");
            c.args(["-q", "-t", t, "-N", "", "-C", &format!("test-{t}"), "-f"]).arg(&k);
            if let Some(b) = bits {
                c.args(["-b", b]);
            }
            assert!(c.status().expect("ssh-keygen must be installed").success());
            let st = Command::new("ssh-add")
                .arg(&k)
                .env("SSH_AUTH_SOCK", &sock)
                .stderr(Stdio::null())
                .status()
                .expect("ssh-add must be installed");
            assert!(st.success(), "ssh-add {t}");
            keys.push(std::fs::read_to_string(k.with_extension("pub")).unwrap());
        }

        let mut conn = UnixStream::connect(&sock).unwrap();
        conn.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        let mut ask = |req: &[u8]| -> Reply {
            conn.write_all(req).unwrap();
            let mut d = Decoder::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = conn.read(&mut buf).unwrap();
                assert!(n > 0, "agent closed");
                let mut data = &buf[..n];
                while !data.is_empty() {
                    let k = d.push(data).unwrap();
                    data = &data[k..];
                    if let Some(r) = d.next_reply().unwrap() {
                        return r;
                    }
                }
            }
        };
        let Reply::Identities(ids) = ask(&request_identities()) else { panic!("no identities") };
        assert_eq!(ids.len(), 3);
        let data = b"session id and userauth request, as the client core builds it";
        for id in &ids {
            let key_type = Reader::new(&id.key_blob).utf8("key type").unwrap().to_string();
            let alg = if key_type == "ssh-rsa" { "rsa-sha2-512" } else { key_type.as_str() };
            let alg_kind = crate::algo::host_key::HostKeyAlg::from_name(alg).unwrap();
            // Through the request-matching client, as the proxy uses it.
            let mut client = AgentClient::new();
            let req = client.sign(5, &id.key_blob, data, alg).unwrap();
            let Reply::Signature(sig) = ask(&req) else { panic!("{alg}: no signature") };
            let mut framed = (sig.len() as u32 + 5).to_be_bytes().to_vec();
            framed.push(SSH_AGENT_SIGN_RESPONSE);
            framed.extend_from_slice(&(sig.len() as u32).to_be_bytes());
            framed.extend_from_slice(&sig);
            let (n, answer) = client.receive(&framed).unwrap();
            assert_eq!(n, framed.len());
            assert_eq!(answer, Some(Answer::Signature { tag: 5, blob: sig.clone() }), "{alg}");
            crate::algo::host_key::verify(alg_kind, &id.key_blob, data, &sig)
                .unwrap_or_else(|e| panic!("{alg}: {e:?}"));
            assert!(
                crate::algo::host_key::verify(alg_kind, &id.key_blob, b"other data", &sig).is_err(),
                "{alg}: a signature over other data must not verify"
            );
            assert!(id.comment.starts_with("test-"));
        }
        assert_eq!(keys.len(), 3);
        // A key the agent does not hold: FAILURE.
        let Reply::Identities(ids) = ask(&request_identities()) else { panic!() };
        let mut unknown = ids[0].key_blob.clone();
        let last = unknown.len() - 1;
        unknown[last] ^= 1;
        assert_eq!(ask(&sign_request(&unknown, data, 0)), Reply::Failure);
        drop(agent_guard);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
