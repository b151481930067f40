//! Small entry points for fuzzers (`fuzz/`) and for the seeded fuzz smoke test: each takes
//! arbitrary bytes and must never panic, loop forever or allocate beyond the crate's bounds.

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

/// The message parsers on arbitrary bytes.
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
            packet_open(&data);
            server_transport(&config, &data, now);
        }
    }
}
