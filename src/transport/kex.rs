//! The key exchange flow (RFC 4253 §7–§8, RFC 4419, RFC 5656, RFC 8731, the PQ hybrids) for
//! both roles: KEXINIT negotiation with the guessed-packet rule, the per-family messages, the
//! crypto job hand-off, NEWKEYS per direction, strict KEX and EXT_INFO.

use super::config::{COMPRESSION_NONE, COMPRESSION_ZLIB, COMPRESSION_ZLIB_OPENSSH};
use super::error::DecodeContext;
use super::job::{ClientFinishJob, CryptoJob, HashParts, JobKind, JobResult, ServerKexJob};
use super::msgs::{self, KexInit, KexInitLists, KexReply};
use super::{Error, Event, KexSummary, Role, Transport};
use crate::algo::cipher::{self, CipherAlg};
use crate::algo::host_key::{HostKeyAlg, HostKeyPair};
use crate::algo::kex::derive::derive_key;
use crate::algo::kex::dh::DhGroup;
use crate::algo::kex::gex::{GexRequest, MAX_BITS, MIN_BITS};
use crate::algo::kex::{self, ClientEphemeral, KexAlg, KexMethod};
use crate::algo::mac::{self, MacAlg};
use crate::algo::negotiate::{choose, choose_slices};
use crate::packet::{Compression, DirectionKeys};
use crate::wire::{msg_no, NameList, Writer};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

const EXT_INFO_C: &str = "ext-info-c";
const EXT_INFO_S: &str = "ext-info-s";
const STRICT_C: &str = "kex-strict-c-v00@openssh.com";
const STRICT_S: &str = "kex-strict-s-v00@openssh.com";
/// Dropbear's extension: when both sides list it, a guess is right when it is what negotiation
/// picks (not only when both sides' first choices agree), which saves its clients a round trip.
pub(crate) const KEXGUESS2: &str = "kexguess2@matt.ucc.asn.au";
/// Names in a KEX list that are signals, not methods.
const MARKERS: [&str; 5] = [EXT_INFO_C, EXT_INFO_S, STRICT_C, STRICT_S, KEXGUESS2];

/// Client role: the group size we ask for in group exchange.
const CLIENT_GEX_N: u32 = 3072;

/// One running key exchange. Boxed in the transport and dropped when it completes, so an
/// established connection carries none of this.
pub(super) struct KexRun {
    pub started: Instant,
    /// Our KEXINIT payload (I_S or I_C).
    pub(super) ours: Vec<u8>,
    /// The peer's KEXINIT payload, once it arrived.
    peer: Option<Vec<u8>>,
    neg: Option<Negotiated>,
    /// The peer guessed wrong: drop its next KEX-method message (RFC 4253 §7).
    ignore_next: bool,
    step: Step,
    /// Keys for the inbound direction, waiting for the peer's NEWKEYS.
    pending_in: Option<DirectionKeys>,
    pub sent_newkeys: bool,
}

impl KexRun {
    pub fn peer_kexinit_seen(&self) -> bool {
        self.peer.is_some()
    }

    /// The negotiated (kex, host key) names, once the peer's KEXINIT arrived.
    #[cfg(test)]
    pub(super) fn negotiated_names(&self) -> Option<(&'static str, &'static str)> {
        self.neg.as_ref().map(|n| (n.kex.name, n.host_key.name()))
    }

    pub fn is_computing(&self) -> bool {
        matches!(self.step, Step::Computing | Step::Generating { .. })
    }
}

/// Where the exchange waits.
enum Step {
    /// Our KEXINIT is out; the peer's has not arrived.
    AwaitKexInit,
    /// Server: waiting for the client's first method message (init, or a GEX request).
    AwaitClientInit,
    /// Server: group sent, waiting for GEX_INIT.
    AwaitGexInit { request: GexRequest, group: DhGroup },
    /// Client: GEX request sent, waiting for the group.
    AwaitGexGroup { request: GexRequest },
    /// Client: our init is out, waiting for the server's reply.
    AwaitReply { eph: ClientEphemeral, gex: Option<(GexRequest, DhGroup)> },
    /// A crypto job is in flight. Client generation keeps the GEX group here.
    Computing,
    /// Client: waiting for our ephemeral; what to do with it once it comes.
    Generating { gex: Option<(GexRequest, DhGroup)> },
    /// Our NEWKEYS is out; waiting for the peer's.
    AwaitNewKeys,
}

/// The outcome of negotiation (RFC 4253 §7.1).
#[derive(Clone)]
pub(super) struct Negotiated {
    kex: &'static KexAlg,
    host_key: HostKeyAlg,
    cipher_c2s: &'static CipherAlg,
    cipher_s2c: &'static CipherAlg,
    mac_c2s: Option<&'static MacAlg>,
    mac_s2c: Option<&'static MacAlg>,
    comp_c2s: &'static str,
    comp_s2c: &'static str,
}

impl Transport {
    /// Sends our KEXINIT and opens a new exchange.
    pub(super) fn start_kex(&mut self, now: Instant) {
        let mut cookie = [0u8; 16];
        self.rng.fill(&mut cookie);
        let mut kex_names: Vec<&str> = self.config.kex.iter().map(|k| k.name).collect();
        // Markers go in the first KEXINIT only (strict KEX and EXT_INFO are about the first).
        if !self.first_kex_done {
            match self.role {
                Role::Server => kex_names.extend([EXT_INFO_S, STRICT_S]),
                Role::Client => kex_names.extend([EXT_INFO_C, STRICT_C]),
            }
        }
        // kexguess2 applies to every exchange (Dropbear guesses on rekeys too).
        if self.config.kexguess2 {
            kex_names.push(KEXGUESS2);
        }
        let host_key = self.host_key_names();
        let cipher: Vec<&str> = self.config.ciphers.iter().map(|c| c.name).collect();
        let mac: Vec<&str> = self.config.macs.iter().map(|m| m.name).collect();
        let lists = KexInitLists {
            kex: &kex_names,
            host_key: &host_key,
            cipher: &cipher,
            mac: &mac,
            compression: &self.config.compression,
        };
        let mut ours = Vec::with_capacity(1024);
        msgs::encode_kexinit(&mut ours, cookie, &lists);
        self.kex = Some(Box::new(KexRun {
            started: now,
            ours: ours.clone(),
            peer: None,
            neg: None,
            ignore_next: false,
            step: Step::AwaitKexInit,
            pending_in: None,
            sent_newkeys: false,
        }));
        if let Err(e) = self.send(&ours) {
            self.fail(e);
        }
    }

    pub(super) fn on_kexinit(&mut self, p: &[u8], now: Instant) -> Result<(), Error> {
        let ki = KexInit::parse(p).msg(msg_no::KEXINIT)?;
        match &self.kex {
            Some(k) if k.peer.is_some() => return Err(Error::SecondKexInitDuringKex),
            Some(_) => {}
            // The peer starts a re-exchange: answer with exactly one KEXINIT.
            None => self.start_kex(now),
        }
        if !self.first_kex_done {
            let (ours, theirs) = match self.role {
                Role::Server => (STRICT_S, STRICT_C),
                Role::Client => (STRICT_C, STRICT_S),
            };
            let _ = ours;
            self.strict = ki.kex.contains(theirs);
            if self.strict && self.packets_before_kexinit > 0 {
                return Err(Error::KexInitNotFirst);
            }
            if self.role == Role::Server {
                self.peer_ext_info = ki.kex.contains(EXT_INFO_C);
            }
        }
        let neg = self.negotiate(&ki)?;
        let wrong_guess = ki.first_kex_packet_follows && !self.peer_guess_is_right(&ki, &neg);
        let role = self.role;
        let Some(k) = self.kex.as_mut() else {
            return Err(Error::SecondKexInitDuringKex);
        };
        k.peer = Some(p.to_vec());
        k.ignore_next = wrong_guess;
        k.neg = Some(neg.clone());
        match role {
            Role::Server => {
                k.step = Step::AwaitClientInit;
                Ok(())
            }
            Role::Client => self.client_begin(&neg),
        }
    }

    /// Whether the peer's guessed KEX packet may be used (RFC 4253 §7), see [`guess_is_right`].
    fn peer_guess_is_right(&self, ki: &KexInit<'_>, neg: &Negotiated) -> bool {
        let our_kex = self.config.kex.first().map(|k| k.name);
        let our_hk = self.host_key_names().first().copied();
        let peer_kex = first_method(ki.kex.iter());
        let peer_hk = ki.host_key.first();
        let (client, server) = match self.role {
            Role::Server => ((peer_kex, peer_hk), (our_kex, our_hk)),
            Role::Client => ((our_kex, our_hk), (peer_kex, peer_hk)),
        };
        let kexguess2 = self.config.kexguess2 && ki.kex.contains(KEXGUESS2);
        guess_is_right(client, server, (neg.kex.name, neg.host_key.name()), kexguess2)
    }

    fn negotiate(&self, ki: &KexInit<'_>) -> Result<Negotiated, Error> {
        let kex_names: Vec<&'static str> = self.config.kex.iter().map(|k| k.name).collect();
        let hk_names = self.host_key_names();
        let ciphers: Vec<&'static str> = self.config.ciphers.iter().map(|c| c.name).collect();
        let macs: Vec<&'static str> = self.config.macs.iter().map(|m| m.name).collect();
        let comps: &[&'static str] = &self.config.compression;
        let pick = |peer: &NameList<'_>, ours: &[&'static str], family: &'static str| {
            let r = match self.role {
                Role::Server => choose(peer, ours),
                Role::Client => choose_slices(ours, peer),
            };
            r.ok_or(Error::NoCommonAlgorithm { family })
        };
        let kex_name = pick(&ki.kex, &kex_names, "key exchange")?;
        let hk_name = pick(&ki.host_key, &hk_names, "host key")?;
        let c2s = pick(&ki.cipher_c2s, &ciphers, "cipher (client to server)")?;
        let s2c = pick(&ki.cipher_s2c, &ciphers, "cipher (server to client)")?;
        let cipher_c2s =
            cipher::by_name(c2s).ok_or(Error::NoCommonAlgorithm { family: "cipher" })?;
        let cipher_s2c =
            cipher::by_name(s2c).ok_or(Error::NoCommonAlgorithm { family: "cipher" })?;
        // An AEAD cipher authenticates itself; no MAC is negotiated for it (openssh PROTOCOL).
        let mac_c2s = if cipher_c2s.is_aead() {
            None
        } else {
            let n = pick(&ki.mac_c2s, &macs, "MAC (client to server)")?;
            Some(mac::by_name(n).ok_or(Error::NoCommonAlgorithm { family: "MAC" })?)
        };
        let mac_s2c = if cipher_s2c.is_aead() {
            None
        } else {
            let n = pick(&ki.mac_s2c, &macs, "MAC (server to client)")?;
            Some(mac::by_name(n).ok_or(Error::NoCommonAlgorithm { family: "MAC" })?)
        };
        let comp_c2s = pick(&ki.comp_c2s, comps, "compression (client to server)")?;
        let comp_s2c = pick(&ki.comp_s2c, comps, "compression (server to client)")?;
        Ok(Negotiated {
            kex: kex::by_name(kex_name)
                .ok_or(Error::NoCommonAlgorithm { family: "key exchange" })?,
            host_key: HostKeyAlg::from_name(hk_name)
                .ok_or(Error::NoCommonAlgorithm { family: "host key" })?,
            cipher_c2s,
            cipher_s2c,
            mac_c2s,
            mac_s2c,
            comp_c2s,
            comp_s2c,
        })
    }

    /// Client: the first method message after negotiation.
    fn client_begin(&mut self, neg: &Negotiated) -> Result<(), Error> {
        match neg.kex.method {
            KexMethod::Gex => {
                let request = GexRequest::New { min: MIN_BITS, n: CLIENT_GEX_N, max: MAX_BITS };
                self.set_step(Step::AwaitGexGroup { request });
                self.send_with(|out| {
                    Writer::new(out)
                        .u8(msg_no::KEX_DH_GEX_REQUEST)
                        .u32(MIN_BITS)
                        .u32(CLIENT_GEX_N)
                        .u32(MAX_BITS);
                })
            }
            method => {
                let group = match method {
                    KexMethod::Dh(g) => Some(g.clone()),
                    _ => None,
                };
                self.set_step(Step::Generating { gex: None });
                self.events.push_back(Event::Job(CryptoJob::new(
                    neg.kex.name,
                    JobKind::ClientGenerate { method, group },
                )));
                Ok(())
            }
        }
    }

    fn set_step(&mut self, step: Step) {
        if let Some(k) = self.kex.as_mut() {
            k.step = step;
        }
    }

    pub(super) fn on_kex_msg(&mut self, msg: u8, p: &[u8], now: Instant) -> Result<(), Error> {
        let Some(k) = self.kex.as_mut() else {
            return Err(Error::UnexpectedKexMessage { msg, expected: "no key exchange running" });
        };
        if msg != msg_no::NEWKEYS && k.ignore_next {
            // RFC 4253 §7: a wrongly guessed first KEX packet is ignored, exactly one.
            k.ignore_next = false;
            return Ok(());
        }
        if msg == msg_no::NEWKEYS {
            return self.on_newkeys(p, now);
        }
        let Some(neg) = k.neg.clone() else {
            return Err(Error::UnexpectedKexMessage { msg, expected: "KEXINIT" });
        };
        let step = std::mem::replace(&mut k.step, Step::Computing);
        let res = match (self.role, step) {
            (Role::Server, Step::AwaitClientInit) => self.server_first(msg, p, &neg),
            (Role::Server, Step::AwaitGexInit { request, group }) => {
                if msg != msg_no::KEX_DH_GEX_INIT {
                    return Err(Error::UnexpectedKexMessage { msg, expected: "KEX_DH_GEX_INIT" });
                }
                let e = msgs::parse_single_mpint(p, msg, "e").msg(msg)?;
                self.server_job(&neg, e, Some((request, group)))
            }
            (Role::Client, Step::AwaitGexGroup { request }) => {
                self.client_gex_group(msg, p, &neg, request)
            }
            (Role::Client, Step::AwaitReply { eph, gex }) => {
                self.client_reply(msg, p, &neg, eph, gex)
            }
            (_, step) => {
                let expected = match step {
                    Step::AwaitKexInit => "KEXINIT",
                    Step::AwaitNewKeys => "NEWKEYS",
                    _ => "no message while computing",
                };
                Err(Error::UnexpectedKexMessage { msg, expected })
            }
        };
        res
    }

    /// Server: the client's first method message.
    fn server_first(&mut self, msg: u8, p: &[u8], neg: &Negotiated) -> Result<(), Error> {
        match neg.kex.method {
            KexMethod::Gex => {
                let request = match msg {
                    msg_no::KEX_DH_GEX_REQUEST => {
                        let (min, n, max) = msgs::parse_gex_request(p).msg(msg)?;
                        GexRequest::New { min, n, max }
                    }
                    msg_no::KEX_DH_GEX_REQUEST_OLD => {
                        GexRequest::Old { n: msgs::parse_gex_request_old(p).msg(msg)? }
                    }
                    _ => {
                        return Err(Error::UnexpectedKexMessage {
                            msg,
                            expected: "KEX_DH_GEX_REQUEST",
                        })
                    }
                };
                let group = self.config.gex_groups.choose(&request)?.clone();
                let (p_bytes, g) = (group.p.clone(), group.g);
                self.set_step(Step::AwaitGexInit { request, group });
                self.send_with(|out| {
                    Writer::new(out)
                        .u8(msg_no::KEX_DH_GEX_GROUP)
                        .mpint(&p_bytes)
                        .mpint(&g.to_be_bytes());
                })
            }
            KexMethod::Dh(_) => {
                if msg != msg_no::KEXDH_INIT {
                    return Err(Error::UnexpectedKexMessage { msg, expected: "KEXDH_INIT" });
                }
                let e = msgs::parse_single_mpint(p, msg, "e").msg(msg)?;
                self.server_job(neg, e, None)
            }
            _ => {
                if msg != msg_no::KEX_ECDH_INIT {
                    return Err(Error::UnexpectedKexMessage { msg, expected: "KEX_ECDH_INIT" });
                }
                let q_c = msgs::parse_single_string(p, msg, "Q_C").msg(msg)?;
                self.server_job(neg, q_c, None)
            }
        }
    }

    fn hash_parts(&self, gex: Option<(GexRequest, DhGroup)>, neg: &Negotiated) -> HashParts {
        let (ours, peer) = match &self.kex {
            Some(k) => (k.ours.clone(), k.peer.clone().unwrap_or_default()),
            None => (Vec::new(), Vec::new()),
        };
        let peer_version = self.peer_version.clone().unwrap_or_default();
        let (v_c, v_s, i_c, i_s) = match self.role {
            Role::Server => (peer_version, self.our_version.clone(), peer, ours),
            Role::Client => (self.our_version.clone(), peer_version, ours, peer),
        };
        HashParts { hash: neg.kex.hash, v_c, v_s, i_c, i_s, gex }
    }

    fn server_job(
        &mut self,
        neg: &Negotiated,
        client_public: &[u8],
        gex: Option<(GexRequest, DhGroup)>,
    ) -> Result<(), Error> {
        let host_key = self.host_key_for(neg.host_key)?;
        let group = match (&neg.kex.method, &gex) {
            (KexMethod::Dh(g), _) => Some((*g).clone()),
            (KexMethod::Gex, Some((_, g))) => Some(g.clone()),
            _ => None,
        };
        let parts = self.hash_parts(gex, neg);
        let job = ServerKexJob {
            method: neg.kex.method,
            group,
            client_public: client_public.to_vec(),
            parts,
            host_key,
            host_key_alg: neg.host_key,
        };
        self.set_step(Step::Computing);
        self.events
            .push_back(Event::Job(CryptoJob::new(neg.kex.name, JobKind::ServerKex(Box::new(job)))));
        Ok(())
    }

    fn host_key_for(&self, alg: HostKeyAlg) -> Result<Arc<HostKeyPair>, Error> {
        self.config
            .host_keys
            .iter()
            .find(|k| k.algorithms().contains(&alg))
            .cloned()
            .ok_or(Error::NoCommonAlgorithm { family: "host key" })
    }

    /// Client: the server's GEX group; check it is within what we asked for.
    fn client_gex_group(
        &mut self,
        msg: u8,
        p: &[u8],
        neg: &Negotiated,
        request: GexRequest,
    ) -> Result<(), Error> {
        if msg != msg_no::KEX_DH_GEX_GROUP {
            return Err(Error::UnexpectedKexMessage { msg, expected: "KEX_DH_GEX_GROUP" });
        }
        let (p_bytes, g_bytes) = msgs::parse_gex_group(p).msg(msg)?;
        let bits = bit_len(p_bytes);
        let g = match g_bytes.len() {
            1..=4 => g_bytes.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)),
            _ => 0,
        };
        if !(MIN_BITS as usize..=MAX_BITS as usize).contains(&bits) || g < 2 {
            return Err(Error::Gex(crate::algo::kex::gex::GexError::NoGroupInRange {
                min: MIN_BITS,
                max: MAX_BITS,
            }));
        }
        let group = DhGroup { p: Cow::Owned(p_bytes.to_vec()), g, bits };
        self.set_step(Step::Generating { gex: Some((request, group.clone())) });
        self.events.push_back(Event::Job(CryptoJob::new(
            neg.kex.name,
            JobKind::ClientGenerate { method: KexMethod::Gex, group: Some(group) },
        )));
        Ok(())
    }

    /// Client: the server's reply; verification happens in a job.
    fn client_reply(
        &mut self,
        msg: u8,
        p: &[u8],
        neg: &Negotiated,
        eph: ClientEphemeral,
        gex: Option<(GexRequest, DhGroup)>,
    ) -> Result<(), Error> {
        let (expected_no, is_mpint, name) = match neg.kex.method {
            KexMethod::Gex => (msg_no::KEX_DH_GEX_REPLY, true, "KEX_DH_GEX_REPLY"),
            KexMethod::Dh(_) => (msg_no::KEXDH_REPLY, true, "KEXDH_REPLY"),
            _ => (msg_no::KEX_ECDH_REPLY, false, "KEX_ECDH_REPLY"),
        };
        if msg != expected_no {
            return Err(Error::UnexpectedKexMessage { msg, expected: name });
        }
        let reply = KexReply::parse(p, msg, is_mpint).msg(msg)?;
        self.server_host_key = Some(reply.k_s.to_vec());
        let parts = self.hash_parts(gex, neg);
        let job = ClientFinishJob {
            eph,
            method: neg.kex.method,
            server_public: reply.server_public.to_vec(),
            k_s: reply.k_s.to_vec(),
            signature: reply.signature.to_vec(),
            parts,
            host_key_alg: neg.host_key,
            expected_host_key: self.expected_host_key.clone(),
        };
        self.set_step(Step::Computing);
        self.events.push_back(Event::Job(CryptoJob::new(
            neg.kex.name,
            JobKind::ClientFinish(Box::new(job)),
        )));
        Ok(())
    }

    /// A finished crypto job for this connection.
    pub fn handle_job_done(&mut self, done: JobDone, now: Instant) {
        if self.closed {
            return;
        }
        let res = self.on_job_done(done, now);
        if let Err(e) = res {
            self.fail(e);
        }
    }

    fn on_job_done(&mut self, done: super::JobDone, now: Instant) -> Result<(), Error> {
        let Some(k) = self.kex.as_mut() else {
            return Ok(()); // Stale: nothing is waiting (cannot happen with generation checks).
        };
        let Some(neg) = k.neg.clone() else { return Ok(()) };
        let step = std::mem::replace(&mut k.step, Step::Computing);
        match (done.result, step) {
            (JobResult::ServerKex(r), Step::Computing) => {
                let out = r?;
                let reply_no = match neg.kex.method {
                    KexMethod::Gex => msg_no::KEX_DH_GEX_REPLY,
                    _ => msg_no::KEXDH_REPLY,
                };
                let is_mpint = matches!(neg.kex.method, KexMethod::Gex | KexMethod::Dh(_));
                self.send_with(|o| {
                    msgs::encode_kex_reply(
                        o,
                        reply_no,
                        &out.k_s,
                        &out.server_public,
                        is_mpint,
                        &out.signature,
                    )
                })?;
                self.keys_ready(&neg, &out.k_encoded, &out.h, now)
            }
            (JobResult::ClientGenerated(r), Step::Generating { gex }) => {
                let eph = r?;
                let public = eph.public().to_vec();
                let (no, is_mpint) = match neg.kex.method {
                    KexMethod::Gex => (msg_no::KEX_DH_GEX_INIT, true),
                    KexMethod::Dh(_) => (msg_no::KEXDH_INIT, true),
                    _ => (msg_no::KEX_ECDH_INIT, false),
                };
                self.set_step(Step::AwaitReply { eph, gex });
                self.send_with(|o| {
                    let mut w = Writer::new(o);
                    w.u8(no);
                    if is_mpint {
                        w.mpint(&public);
                    } else {
                        w.string(&public);
                    }
                })
            }
            (JobResult::ClientFinished(r), Step::Computing) => {
                let out = r?;
                self.keys_ready(&neg, &out.k_encoded, &out.h, now)
            }
            (_, step) => {
                self.set_step(step);
                Ok(())
            }
        }
    }

    /// K and H are known: derive keys, send NEWKEYS, switch outbound keys, send EXT_INFO (first
    /// exchange, server, if asked) and whatever was held back.
    fn keys_ready(
        &mut self,
        neg: &Negotiated,
        k: &[u8],
        h: &[u8],
        now: Instant,
    ) -> Result<(), Error> {
        if self.session_id.is_none() {
            self.session_id = Some(h.to_vec());
        }
        let sid = self.session_id.clone().unwrap_or_default();
        let hash = neg.kex.hash;
        let make =
            |cipher: &'static CipherAlg, mac: Option<&'static MacAlg>, iv: u8, key: u8, mk: u8| {
                DirectionKeys {
                    cipher,
                    mac,
                    iv: derive_key(hash, k, h, iv, &sid, cipher.iv_len),
                    key: derive_key(hash, k, h, key, &sid, cipher.key_len),
                    mac_key: mac
                        .map(|m| derive_key(hash, k, h, mk, &sid, m.key_len))
                        .unwrap_or_default(),
                }
            };
        let c2s = make(neg.cipher_c2s, neg.mac_c2s, b'A', b'C', b'E');
        let s2c = make(neg.cipher_s2c, neg.mac_s2c, b'B', b'D', b'F');
        let (out_keys, in_keys, comp_out, comp_in) = match self.role {
            Role::Server => (s2c, c2s, neg.comp_s2c, neg.comp_c2s),
            Role::Client => (c2s, s2c, neg.comp_c2s, neg.comp_s2c),
        };
        // NEWKEYS goes out under the old keys; everything after it under the new ones.
        self.send_with(|o| o.push(msg_no::NEWKEYS))?;
        self.seal_staged()?;
        self.sealer.set_keys(out_keys);
        // Always: the compression stream restarts with every set of keys (see compress.rs).
        self.sealer.set_compression(compression_kind(comp_out));
        self.compression_out = comp_out;
        if self.strict {
            self.sealer.reset_seq();
        }
        let first = !self.first_kex_done;
        if let Some(k) = self.kex.as_mut() {
            k.sent_newkeys = true;
            k.pending_in = Some(in_keys);
            k.step = Step::AwaitNewKeys;
        }
        let _ = comp_in;
        if first && self.role == Role::Server && self.peer_ext_info {
            let config = self.config.clone();
            self.send_with(|out| Transport::ext_info_payload(out, &config.server_sig_algs))?;
        }
        self.flush_held()?;
        if self.kex.as_ref().is_some_and(|k| k.pending_in.is_none()) {
            self.finish_kex(now);
        }
        Ok(())
    }

    fn flush_held(&mut self) -> Result<(), Error> {
        while let Some(r) = {
            let (held, sealer, tx) = (&mut self.held, &mut self.sealer, &mut self.tx);
            held.pop_with(|p| {
                let start = sealer.begin(tx);
                tx.extend_from_slice(p);
                sealer.stage(tx, start)
            })
        } {
            r?;
        }
        Ok(())
    }

    fn on_newkeys(&mut self, p: &[u8], now: Instant) -> Result<(), Error> {
        msgs::parse_newkeys(p).msg(msg_no::NEWKEYS)?;
        let neg = self.kex.as_ref().and_then(|k| k.neg.clone());
        let Some(k) = self.kex.as_mut() else {
            return Err(Error::UnexpectedKexMessage { msg: msg_no::NEWKEYS, expected: "KEXINIT" });
        };
        if !matches!(k.step, Step::AwaitNewKeys) {
            return Err(Error::UnexpectedKexMessage {
                msg: msg_no::NEWKEYS,
                expected: "the key exchange reply",
            });
        }
        let Some(keys) = k.pending_in.take() else {
            return Err(Error::UnexpectedKexMessage {
                msg: msg_no::NEWKEYS,
                expected: "the key exchange reply",
            });
        };
        self.opener.set_keys(keys);
        if let Some(neg) = neg {
            let comp_in = match self.role {
                Role::Server => neg.comp_c2s,
                Role::Client => neg.comp_s2c,
            };
            self.opener.set_compression(compression_kind(comp_in));
            self.compression_in = comp_in;
        }
        if self.strict {
            self.opener.reset_seq();
        }
        self.finish_kex(now);
        Ok(())
    }

    /// Both NEWKEYS are through: drop the exchange state and report it.
    fn finish_kex(&mut self, now: Instant) {
        let Some(k) = self.kex.take() else { return };
        let Some(neg) = k.neg else { return };
        let first = !self.first_kex_done;
        self.first_kex_done = true;
        self.kex_count = self.kex_count.saturating_add(1);
        self.last_kex_done_at = Some(now);
        let mac_name = |m: Option<&'static MacAlg>| m.map_or("<implicit>", |m| m.name);
        let (cipher_in, cipher_out, mac_in, mac_out, compression_in, compression_out) =
            match self.role {
                Role::Server => (
                    neg.cipher_c2s.name,
                    neg.cipher_s2c.name,
                    mac_name(neg.mac_c2s),
                    mac_name(neg.mac_s2c),
                    neg.comp_c2s,
                    neg.comp_s2c,
                ),
                Role::Client => (
                    neg.cipher_s2c.name,
                    neg.cipher_c2s.name,
                    mac_name(neg.mac_s2c),
                    mac_name(neg.mac_c2s),
                    neg.comp_s2c,
                    neg.comp_c2s,
                ),
            };
        let summary = KexSummary {
            first,
            kex: neg.kex.name,
            host_key: neg.host_key.name(),
            cipher_in,
            cipher_out,
            mac_in,
            mac_out,
            compression_in,
            compression_out,
            strict: self.strict,
            duration: now.saturating_duration_since(k.started),
        };
        let chacha = |c: &str| c.starts_with("chacha20");
        self.rekey_bytes = self.config.rekey_bytes.unwrap_or(
            if chacha(summary.cipher_in) || chacha(summary.cipher_out) {
                super::config::DEFAULT_REKEY_BYTES_CHACHA
            } else {
                super::config::DEFAULT_REKEY_BYTES_AES
            },
        );
        self.last_kex = Some(summary.clone());
        self.events.push_back(Event::KexDone(summary));
    }
}

/// The first method in a KEX name-list, skipping markers: a peer that lists `ext-info-c` or
/// `kexguess2@…` first still guesses its first real method. (OpenSSH compares the literal first
/// names; every implementation we know appends its markers, so the two agree in practice, and
/// this way a marker can never make a guess look right.)
fn first_method<'a>(mut names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    names.find(|n| !MARKERS.contains(n))
}

/// RFC 4253 §7: a guessed first KEX packet is right only if the client's first KEX method and
/// first host-key algorithm are the server's first ones too; otherwise the packet is ignored,
/// even when negotiation ends up on the guessed method. With `kexguess2` (both KEXINITs list
/// `kexguess2@matt.ucc.asn.au`, Dropbear's rule): right when the client's first method and first
/// host-key algorithm are the negotiated ones. Arguments are (kex, host key) pairs.
pub(super) fn guess_is_right(
    client_first: (Option<&str>, Option<&str>),
    server_first: (Option<&str>, Option<&str>),
    negotiated: (&str, &str),
    kexguess2: bool,
) -> bool {
    let (c_kex, c_hk) = client_first;
    if kexguess2 {
        c_kex == Some(negotiated.0) && c_hk == Some(negotiated.1)
    } else {
        c_kex.is_some() && c_kex == server_first.0 && c_hk.is_some() && c_hk == server_first.1
    }
}

/// Bits in a big-endian magnitude (0 for an empty one). A hostile server's empty or zero `p`
/// must come out as a small number the range check refuses, not an underflow.
fn bit_len(magnitude: &[u8]) -> usize {
    let first = magnitude.iter().position(|&b| b != 0).unwrap_or(magnitude.len());
    let rest = magnitude.get(first..).unwrap_or(&[]);
    match rest.first() {
        None => 0,
        Some(b) => (rest.len() - 1) * 8 + (8 - b.leading_zeros() as usize),
    }
}

fn compression_kind(name: &str) -> Compression {
    match name {
        COMPRESSION_ZLIB => Compression::Zlib,
        COMPRESSION_ZLIB_OPENSSH => Compression::ZlibDelayed,
        COMPRESSION_NONE => Compression::None,
        _ => Compression::None,
    }
}

use super::JobDone;

#[cfg(test)]
mod bit_len_tests {
    use super::bit_len;

    #[test]
    fn bit_len_of_magnitudes() {
        assert_eq!(bit_len(&[]), 0);
        assert_eq!(bit_len(&[0, 0]), 0);
        assert_eq!(bit_len(&[1]), 1);
        assert_eq!(bit_len(&[0x80, 0]), 16);
        assert_eq!(bit_len(&[0, 0x7f, 0xff]), 15);
    }
}
