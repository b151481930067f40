//! Entry points for the fuzzers (`fuzz/`) and for the seeded fuzz smoke test: each takes
//! arbitrary input and must never panic, loop forever or allocate beyond the crate's bounds.
//! Whole sessions (server and client core, byte streams and scripts) are in [`session`].

pub mod session;

use crate::algo::TestRng;
use crate::packet::PacketOpener;
use crate::transport::{msgs, Read, Transport, TransportConfig};
use std::sync::Arc;
use std::time::Instant;

/// The packet decoder on arbitrary bytes (plaintext framing: lengths, padding, bounds).
pub fn packet_open(data: &[u8]) {
    let mut buf = data.to_vec();
    let mut opener = PacketOpener::new();
    let mut off = 0usize;
    for _ in 0..1024 {
        let Some(rest) = buf.get_mut(off..) else { return };
        match opener.open(rest) {
            Ok(Some(o)) if o.consumed > 0 => off += o.consumed,
            _ => return,
        }
    }
}

/// The message parsers on arbitrary bytes (transport only; [`msg_parsers`] covers every layer).
pub fn wire_msgs(data: &[u8]) {
    let _ = msgs::KexInit::parse(data);
    let _ = msgs::Disconnect::parse(data);
    let _ = msgs::Debug::parse(data);
    let _ = msgs::parse_ext_info(data);
    let _ = msgs::parse_gex_request(data);
    let _ = msgs::parse_gex_group(data);
    let _ = msgs::KexReply::parse(data, 31, true);
    let _ = msgs::KexReply::parse(data, 31, false);
    let _ = msgs::parse_service(data, 5);
}

/// Every message parser of every layer on the same bytes: transport, user authentication and
/// connection protocol, plus the wire primitives they are built on.
pub fn msg_parsers(data: &[u8]) {
    use crate::{auth, connection, wire};
    wire_msgs(data);
    let _ = msgs::parse_ignore(data);
    let _ = msgs::parse_unimplemented(data);
    let _ = msgs::parse_newkeys(data);
    let _ = msgs::parse_gex_request_old(data);
    let _ = msgs::parse_single_string(data, 30, "fuzz");
    let _ = msgs::parse_single_mpint(data, 30, "fuzz");
    let _ = msgs::KexReply::parse(data, 33, true);
    let _ = auth::msgs::UserauthRequest::parse(data);
    let _ = auth::msgs::parse_info_response(data);
    let _ = connection::msgs::ChannelOpen::parse(data).map(|o| {
        let _ = connection::msgs::parse_direct_tcpip(o.rest);
    });
    let _ = connection::msgs::parse_global_request(data).map(|(_, _, r)| {
        let _ = connection::msgs::host_port(&mut r.clone(), "fuzz");
    });
    let _ = connection::msgs::parse_channel_request(data);
    let _ = connection::msgs::recipient(data);
    let mut r = wire::Reader::new(data);
    let _ = r.name_list("fuzz");
    let _ = wire::Reader::new(data).mpint_positive("fuzz");
    let _ = crate::algo::host_key::PublicKey::from_blob(data);
    let _ =
        crate::algo::host_key::verify(crate::algo::host_key::HostKeyAlg::Ed25519, data, b"h", data);
}

/// zlib inflation on arbitrary streams: `data` is split into payloads by one length byte each,
/// inflated in order by one stream (as packets are), for both compression kinds. Then a
/// round trip: what our deflater makes, our inflater gives back.
pub fn decompress(data: &[u8]) {
    use crate::packet::compress::{Deflater, Inflater};
    use crate::packet::Compression;
    let kind = if data.first().is_some_and(|b| b & 1 == 1) {
        Compression::Zlib
    } else {
        Compression::ZlibDelayed
    };
    let mut inflater = Inflater::new();
    inflater.set(kind);
    inflater.auth_succeeded();
    let mut out = Vec::new();
    let mut rest = data.get(1..).unwrap_or(&[]);
    while let Some((&n, tail)) = rest.split_first() {
        let n = usize::from(n).min(tail.len());
        let (chunk, tail) = tail.split_at(n);
        rest = tail;
        if inflater.inflate(chunk, &mut out).is_err() {
            break;
        }
    }
    let mut deflater = Deflater::new();
    deflater.set(kind);
    deflater.auth_succeeded();
    let mut inflater = Inflater::new();
    inflater.set(kind);
    inflater.auth_succeeded();
    let mut packed = Vec::new();
    for chunk in data.chunks(4096).take(8) {
        if deflater.deflate(chunk, &mut packed).is_err() {
            return;
        }
        if inflater.inflate(&packed, &mut out).is_err() || out != chunk {
            // Our own stream must always round-trip.
            std::process::abort();
        }
    }
}

/// The server state machine fed a valid version line, then arbitrary bytes, in chunks whose sizes
/// come from the data itself. Jobs run inline.
pub fn server_transport(config: &Arc<TransportConfig>, data: &[u8], now: Instant) {
    let mut t = Transport::new_server(config.clone(), Box::new(TestRng(7)), &["ssh-userauth"], now);
    let mut buf = b"SSH-2.0-fuzz\r\n".to_vec();
    buf.extend_from_slice(data);
    let mut out = Vec::new();
    for _ in 0..4096 {
        let progressed = match t.read(&mut buf, now) {
            Read::Consumed(n) | Read::Service { consumed: n, .. } => {
                buf.drain(..n.min(buf.len()));
                n > 0
            }
            Read::Wait | Read::Closed => false,
        };
        let mut ran = false;
        while let Some(e) = t.poll_event() {
            if let crate::transport::Event::Job(j) = e {
                t.handle_job_done(j.run(), now);
                ran = true;
            }
        }
        t.poll_transmit(&mut out);
        out.clear();
        if t.is_closed() || (!progressed && !ran) {
            return;
        }
    }
}

/// A server config with every algorithm and one Ed25519 host key, for fuzzing.
pub fn fuzz_config() -> TransportConfig {
    use crate::algo::host_key::{HostKeyPair, KeyKind};
    let mut c = TransportConfig::all_algorithms("sshfront_fuzz");
    c.host_keys =
        HostKeyPair::generate(KeyKind::Ed25519).map(|(k, _)| vec![Arc::new(k)]).unwrap_or_default();
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algo::{Rng, TestRng};
    use crate::packet::PacketSealer;

    /// A plaintext client opening: KEXINIT for curve25519 and an ECDH init, framed.
    fn seed_stream() -> Vec<u8> {
        let mut ki = Vec::new();
        let lists = msgs::KexInitLists {
            kex: &["curve25519-sha256", "diffie-hellman-group-exchange-sha256"],
            host_key: &["ssh-ed25519"],
            cipher: &["aes128-ctr"],
            mac: &["hmac-sha2-256"],
            compression: &["none"],
        };
        msgs::encode_kexinit(&mut ki, [0; 16], &lists);
        let mut s = PacketSealer::new();
        let mut out = Vec::new();
        let mut rng = TestRng(1);
        s.seal(&mut out, &ki, &mut rng).unwrap();
        let mut init = vec![30u8, 0, 0, 0, 32];
        init.extend_from_slice(&[9u8; 32]);
        s.seal(&mut out, &init, &mut rng).unwrap();
        s.seal(&mut out, &[2, 0, 0, 0, 0], &mut rng).unwrap();
        out
    }

    /// Seeded mutation fuzzing, a few thousand cases: runs in the normal test suite. The seed is
    /// printed; set SSHFRONT_FUZZ_SEED to replay.
    #[test]
    fn fuzz_smoke() {
        let seed: u64 =
            std::env::var("SSHFRONT_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0xf022);
        eprintln!("fuzz_smoke seed {seed}");
        let config = Arc::new(fuzz_config());
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let base = seed_stream();
        let mut rng = TestRng(seed);
        let byte = |rng: &mut TestRng| {
            let mut b = [0u8; 1];
            rng.fill(&mut b);
            b[0]
        };
        for case in 0..1500 {
            let mut data = base.clone();
            let flips = 1 + usize::from(byte(&mut rng) % 8);
            for _ in 0..flips {
                let i =
                    (usize::from(byte(&mut rng)) << 8 | usize::from(byte(&mut rng))) % data.len();
                data[i] = byte(&mut rng);
            }
            if case % 5 == 0 {
                let cut = usize::from(byte(&mut rng)) % data.len();
                data.truncate(cut);
            }
            if case % 7 == 0 {
                let mut junk = vec![0u8; usize::from(byte(&mut rng))];
                rng.fill(&mut junk);
                data.extend_from_slice(&junk);
            }
            wire_msgs(&data);
            msg_parsers(&data);
            decompress(&data);
            packet_open(&data);
            server_transport(&config, &data, now);
        }
    }

    /// The same for whole sessions: the recorded tour transcripts, mutated, fed to the server
    /// and to the client core; and scripts of random well-formed-ish messages. With the
    /// `fuzzing` feature these get past key exchange; without it they stop at the first MAC.
    #[test]
    fn session_fuzz_smoke() {
        let seed: u64 =
            std::env::var("SSHFRONT_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0xf023);
        eprintln!("session_fuzz_smoke seed {seed}");
        let mut rng = TestRng(seed);
        let mut word = |n: usize| {
            let mut b = [0u8; 8];
            rng.fill(&mut b);
            (u64::from_le_bytes(b) % n.max(1) as u64) as usize
        };
        let transcripts = session::seed_transcripts();
        for case in 0..200 {
            let (_, c2s, s2c) = &transcripts[case % transcripts.len()];
            for (base, server) in [(c2s, true), (s2c, false)] {
                let mut data = base.clone();
                for _ in 0..1 + word(4) {
                    let i = word(data.len());
                    data[i] = word(256) as u8;
                }
                if case % 3 == 0 {
                    data.truncate(word(data.len()));
                }
                if server {
                    session::server_session(&data);
                } else {
                    session::client_session(&data);
                }
            }
        }
        let configs = session::seed_configs();
        for case in 0..40 {
            let mut script = vec![session::Action::Login];
            for _ in 0..word(12) {
                let mut p = vec![80 + word(21) as u8];
                p.extend((0..word(40)).map(|_| word(4) as u8));
                script.push(if case % 2 == 0 {
                    session::Action::ClientSends(p)
                } else {
                    session::Action::ServerSends(p)
                });
            }
            let cfg = configs[case % configs.len()].1.clone();
            session::pair_script(cfg, &script);
        }
    }
}
