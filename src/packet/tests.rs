//! Packet-layer tests: every cipher × MAC × compression, framing errors, known answers.

use super::*;
use crate::algo::cipher;
use crate::algo::mac;
use crate::algo::{Rng, SystemRng, TestRng};

const SIZES: &[usize] = &[0, 1, 15, 16, 17, 1000, 32768, MAX_PAYLOAD_LEN];

type Combo = (&'static CipherAlg, Option<&'static MacAlg>);

/// Every (cipher, MAC) pair we can negotiate, plus the plaintext initial state. AEAD ciphers
/// ignore the MAC, so they appear once.
fn combos() -> Vec<Combo> {
    let mut v: Vec<Combo> = vec![(&cipher::NONE_ALG, None)];
    for c in cipher::ALL {
        if c.is_aead() {
            v.push((c, None));
        } else {
            for m in mac::ALL {
                v.push((c, Some(m)));
            }
        }
    }
    v
}

fn encrypted_combos() -> Vec<Combo> {
    combos().into_iter().filter(|(c, _)| !c.is_none()).collect()
}

fn label((c, m): Combo) -> String {
    format!("{}+{}", c.name, m.map_or("-", |m| m.name))
}

fn keys((c, m): Combo, salt: u64) -> DirectionKeys {
    let mut r = TestRng(salt);
    let mut key = vec![0; c.key_len];
    let mut iv = vec![0; c.iv_len];
    let mut mac_key = vec![0; m.map_or(0, |m| m.key_len)];
    r.fill(&mut key);
    r.fill(&mut iv);
    r.fill(&mut mac_key);
    DirectionKeys { cipher: c, mac: m, key, iv, mac_key }
}

fn pair(combo: Combo, comp: Compression) -> (PacketSealer, PacketOpener) {
    let mut s = PacketSealer::new();
    let mut o = PacketOpener::new();
    s.set_keys(keys(combo, 1));
    o.set_keys(keys(combo, 1));
    s.set_compression(comp);
    o.set_compression(comp);
    (s, o)
}

/// Random bytes, or for `compressible` a pattern zlib can shrink (so MAX_PAYLOAD_LEN still
/// fits once compressed).
fn payload(n: usize, compressible: bool) -> Vec<u8> {
    if compressible {
        (0..n).map(|i| (i % 251) as u8 ^ (i / 4096) as u8).collect()
    } else {
        let mut v = vec![0; n];
        TestRng(n as u64).fill(&mut v);
        v
    }
}

/// Opens one packet; returns (consumed, seq, payload copy).
fn open_one(
    o: &mut PacketOpener,
    buf: &mut [u8],
) -> Result<Option<(usize, u32, Vec<u8>)>, PacketError> {
    let Some(op) = o.open(buf)? else {
        return Ok(None);
    };
    let p = match op.payload {
        PayloadAt::Input(r) => buf[r].to_vec(),
        PayloadAt::Inflated => o.inflated().to_vec(),
    };
    Ok(Some((op.consumed, op.seq, p)))
}

/// A packet framed exactly as given (no checks) and protected with `s`'s keys: what a
/// misbehaving peer holding the keys could send.
fn crafted(s: &mut PacketSealer, len_field: u32, pad_field: u8, rest: &[u8]) -> Vec<u8> {
    let mut buf = len_field.to_be_bytes().to_vec();
    buf.push(pad_field);
    buf.extend_from_slice(rest);
    s.protect(&mut buf, 0).unwrap();
    buf
}

#[test]
fn round_trip_every_cipher_mac_compression_size() {
    let mut rng = TestRng(7);
    for combo in combos() {
        for comp in [Compression::None, Compression::Zlib] {
            let (mut s, mut o) = pair(combo, comp);
            let payloads: Vec<Vec<u8>> = SIZES
                .iter()
                .map(|&n| payload(n, comp != Compression::None && n == MAX_PAYLOAD_LEN))
                .collect();
            // All back to back in one buffer.
            let mut wire = Vec::new();
            for p in &payloads {
                s.seal(&mut wire, p, &mut rng).unwrap();
            }
            assert_eq!(s.totals(), (wire.len() as u64, SIZES.len() as u64));
            let mut at = 0;
            for (i, p) in payloads.iter().enumerate() {
                let (consumed, seq, got) = open_one(&mut o, &mut wire[at..])
                    .unwrap_or_else(|e| panic!("{} {comp:?} #{i}: {e}", label(combo)))
                    .unwrap();
                assert_eq!(seq, i as u32);
                assert!(got == *p, "{} {comp:?} payload #{i} differs", label(combo));
                at += consumed;
            }
            assert_eq!(at, wire.len());
            assert_eq!(o.open(&mut wire[at..]), Ok(None));
            assert_eq!(o.totals(), s.totals());
            assert_eq!(o.since_rekey(), s.since_rekey());
            assert_eq!((o.seq(), s.seq()), (SIZES.len() as u32, SIZES.len() as u32));
            assert_eq!(o.is_encrypted(), !combo.0.is_none());
            assert_eq!(s.is_encrypted(), !combo.0.is_none());
        }
    }
}

#[test]
fn framing_follows_keys() {
    let f = |c: Combo| pair(c, Compression::None).0.framing();
    assert_eq!(f((&cipher::NONE_ALG, None)), Framing::Plain);
    assert_eq!(f((&cipher::AES128_CTR, Some(&mac::HMAC_SHA1))), Framing::EncryptAndMac);
    assert_eq!(f((&cipher::AES128_CTR, Some(&mac::HMAC_SHA1_ETM))), Framing::EncryptThenMac);
    assert_eq!(f((&cipher::AES128_GCM, Some(&mac::HMAC_SHA1))), Framing::Aead);
    assert_eq!(PacketOpener::new().framing(), Framing::Plain);
}

#[test]
fn sealed_lengths_are_aligned() {
    let mut rng = TestRng(3);
    for combo in combos() {
        let (mut s, _) = pair(combo, Compression::None);
        let align = combo.0.block_size.max(8);
        let tag = combo.0.aead_tag_len.or(combo.1.map(|m| m.out_len)).unwrap_or(0);
        let clear = combo.0.is_aead() || combo.1.is_some_and(|m| m.etm);
        for n in 0..40 {
            let mut buf = Vec::new();
            s.seal(&mut buf, &payload(n, false), &mut rng).unwrap();
            let body = buf.len() - tag - if clear { 4 } else { 0 };
            assert_eq!(body % align, 0, "{} n={n}", label(combo));
            // Minimal padding: at least 4, fewer than 4 + align.
            let padding = buf.len() - tag - 5 - n;
            assert!((4..4 + align).contains(&padding), "{} n={n}", label(combo));
            assert!(buf.len() <= s.max_sealed_len(n));
        }
    }
}

#[test]
fn fed_one_byte_at_a_time() {
    let mut rng = TestRng(11);
    for combo in combos() {
        for comp in [Compression::None, Compression::Zlib] {
            let (mut s, mut o) = pair(combo, comp);
            let payloads = [payload(40, false), payload(0, false), payload(100, true)];
            let mut data = Vec::new();
            for p in &payloads {
                s.seal(&mut data, p, &mut rng).unwrap();
            }
            let (mut off, mut n, mut got) = (0, 1, Vec::new());
            while off < data.len() {
                match open_one(&mut o, &mut data[off..n]).unwrap() {
                    None => {
                        assert!(n < data.len(), "{}: stuck", label(combo));
                        n += 1;
                    }
                    Some((consumed, _, p)) => {
                        assert_eq!(off + consumed, n, "{}: opened early", label(combo));
                        got.push(p);
                        off = n;
                        n = off + 1;
                    }
                }
            }
            assert_eq!(got, payloads, "{} {comp:?}", label(combo));
        }
    }
}

#[test]
fn bytes_after_the_packet_stay() {
    let mut rng = TestRng(5);
    for combo in combos() {
        let (mut s, mut o) = pair(combo, Compression::None);
        let mut buf = Vec::new();
        s.seal(&mut buf, b"hello", &mut rng).unwrap();
        let len = buf.len();
        buf.extend_from_slice(b"next packet...");
        let (consumed, _, p) = open_one(&mut o, &mut buf).unwrap().unwrap();
        assert_eq!((consumed, p.as_slice()), (len, &b"hello"[..]));
        assert_eq!(&buf[len..], b"next packet...");
    }
}

#[test]
fn flipped_byte_is_bad_mac() {
    let mut rng = TestRng(9);
    for combo in encrypted_combos() {
        let (mut s, _) = pair(combo, Compression::None);
        let mut wire = Vec::new();
        s.seal(&mut wire, &payload(100, false), &mut rng).unwrap();
        // Last byte (MAC / tag), a payload byte past the first block, the last padding byte.
        let tag = combo.0.aead_tag_len.or(combo.1.map(|m| m.out_len)).unwrap();
        for pos in [wire.len() - 1, wire.len() - tag, 40, wire.len() - tag - 1] {
            let (_, mut o) = pair(combo, Compression::None);
            let mut bad = wire.clone();
            bad[pos] ^= 0x01;
            assert_eq!(o.open(&mut bad), Err(PacketError::BadMac), "{} pos {pos}", label(combo));
        }
    }
}

#[test]
fn bad_lengths_refused_from_the_first_block() {
    for combo in combos() {
        let align = combo.0.block_size.max(8) as u32;
        let clear = combo.0.is_aead() || combo.1.is_some_and(|m| m.etm);
        let fix = |aligned: u32| if clear { aligned } else { aligned - 4 };
        let too_big = fix((MAX_PACKET_LEN as u32 / align + 1) * align);
        let misaligned = fix(4 * align) + 1;
        for len in [0, 1, 4, too_big, misaligned, u32::MAX, 0x4745_5420 /* "GET " */] {
            let (mut s, mut o) = pair(combo, Compression::None);
            let mut wire = crafted(&mut s, len, 4, &[0u8; 64]);
            // 16 bytes are enough to learn any length; nothing more is waited for.
            assert_eq!(
                o.open(&mut wire[..16]),
                Err(PacketError::BadLength { len }),
                "{} len {len}",
                label(combo)
            );
        }
    }
}

#[test]
fn largest_length_accepted() {
    let mut rng = TestRng(1);
    for combo in combos() {
        let (mut s, mut o) = pair(combo, Compression::None);
        let mut wire = Vec::new();
        s.seal(&mut wire, &payload(MAX_PAYLOAD_LEN, false), &mut rng).unwrap();
        let (_, _, p) = open_one(&mut o, &mut wire).unwrap().unwrap();
        assert_eq!(p.len(), MAX_PAYLOAD_LEN);
        let mut big = Vec::new();
        assert_eq!(
            s.seal(&mut big, &payload(MAX_PAYLOAD_LEN + 1, false), &mut rng),
            Err(PacketError::PayloadTooLarge { len: MAX_PAYLOAD_LEN + 1 })
        );
    }
}

#[test]
fn bad_padding_refused() {
    for combo in combos() {
        let align = combo.0.block_size.max(8) as u32;
        let clear = combo.0.is_aead() || combo.1.is_some_and(|m| m.etm);
        let len = if clear { 2 * align } else { 2 * align - 4 };
        let rest = vec![0x55u8; len as usize - 1];
        for (padding, ok) in [
            (0u8, false),
            (1, false),
            (2, false),
            (3, false),
            (4, true),
            (len as u8 - 1, true), // empty payload
            (len as u8, false),
            (len as u8 + 1, false),
            (255, false),
        ] {
            let (mut s, mut o) = pair(combo, Compression::None);
            let mut wire = crafted(&mut s, len, padding, &rest);
            let r = open_one(&mut o, &mut wire);
            if ok {
                let (consumed, _, p) = r.unwrap().unwrap();
                assert_eq!(consumed, wire.len());
                assert_eq!(p.len(), (len - 1 - u32::from(padding)) as usize);
            } else {
                assert_eq!(
                    r,
                    Err(PacketError::BadPadding { padding, len }),
                    "{} padding {padding}",
                    label(combo)
                );
            }
        }
    }
}

#[test]
fn sequence_number_wraps() {
    let mut rng = TestRng(13);
    for combo in combos() {
        let (mut s, mut o) = pair(combo, Compression::None);
        s.set_seq(u32::MAX - 1);
        o.set_seq(u32::MAX - 1);
        let mut wire = Vec::new();
        for _ in 0..3 {
            s.seal(&mut wire, b"x", &mut rng).unwrap();
        }
        assert_eq!(s.seq(), 1);
        let mut at = 0;
        for want in [u32::MAX - 1, u32::MAX, 0] {
            let (consumed, seq, _) = open_one(&mut o, &mut wire[at..]).unwrap().unwrap();
            assert_eq!(seq, want, "{}", label(combo));
            at += consumed;
        }
        assert_eq!(o.seq(), 1);
        o.reset_seq();
        s.reset_seq();
        assert_eq!((o.seq(), s.seq()), (0, 0));
    }
}

#[test]
fn wrong_sequence_number_never_opens() {
    let mut rng = TestRng(2);
    // GCM's nonce is its own invocation counter, not the sequence number.
    for combo in encrypted_combos().into_iter().filter(|c| c.0.kind != cipher::CipherKind::AesGcm) {
        let (mut s, mut o) = pair(combo, Compression::None);
        o.set_seq(1);
        let mut wire = Vec::new();
        s.seal(&mut wire, &payload(50, false), &mut rng).unwrap();
        let r = o.open(&mut wire);
        assert!(!matches!(r, Ok(Some(_))), "{}: {r:?}", label(combo));
    }
}

#[test]
fn random_and_mutated_input_never_panics() {
    let mut r = TestRng(0x5eed);
    let mut byte = || {
        let mut b = [0u8; 1];
        r.fill(&mut b);
        b[0]
    };
    for combo in combos() {
        for comp in [Compression::None, Compression::Zlib] {
            let (mut s, _) = pair(combo, comp);
            let mut valid = Vec::new();
            s.seal(&mut valid, &payload(64, true), &mut TestRng(1)).unwrap();
            for i in 0..300 {
                let (_, mut o) = pair(combo, comp);
                let mut buf = if i % 2 == 0 {
                    (0..usize::from(byte()) * 2).map(|_| byte()).collect()
                } else {
                    let mut v = valid.clone();
                    let at = usize::from(byte()) % v.len();
                    v[at] ^= byte() | 1;
                    v
                };
                // Opening whatever comes out must end in Ok or Err, never a panic.
                let n = buf.len();
                let _ = o.open(&mut buf[..n / 2]);
                let _ = o.open(&mut buf);
            }
        }
    }
}

fn bomb() -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::best(), true);
    let zeros = vec![0u8; MAX_PAYLOAD_LEN + 1];
    let mut out = Vec::with_capacity(zeros.len());
    c.compress_vec(&zeros, &mut out, flate2::FlushCompress::Sync).unwrap();
    out
}

#[test]
fn compression_bomb_is_decompression_error() {
    let bomb = bomb();
    assert!(bomb.len() < 1024);
    let mut rng = TestRng(4);
    for combo in [(&cipher::NONE_ALG, None), (&cipher::AES128_GCM, None)] {
        let (mut s, mut o) = pair(combo, Compression::None);
        o.set_compression(Compression::Zlib);
        let mut wire = Vec::new();
        s.seal(&mut wire, &bomb, &mut rng).unwrap();
        assert_eq!(o.open(&mut wire), Err(PacketError::Decompression));
        assert!(o.take_inflated().capacity() <= MAX_PAYLOAD_LEN + 1);
        // And plain garbage.
        let (mut s, mut o) = pair(combo, Compression::None);
        o.set_compression(Compression::Zlib);
        let mut wire = Vec::new();
        s.seal(&mut wire, b"\x78\x9c\xff\xff\xff", &mut rng).unwrap();
        assert_eq!(o.open(&mut wire), Err(PacketError::Decompression));
    }
}

#[test]
fn padding_is_random() {
    let mut seen = std::collections::HashSet::new();
    for rng in [&mut TestRng(99) as &mut dyn Rng, &mut SystemRng] {
        let mut s = PacketSealer::new();
        for _ in 0..20 {
            let mut buf = Vec::new();
            s.seal(&mut buf, b"", rng).unwrap();
            // Plaintext: 4 + 1 + 0 + 11 padding bytes.
            assert_eq!(buf.len(), 16);
            assert_eq!(buf[4], 11);
            assert!(buf[5..].iter().any(|&b| b != 0));
            seen.insert(buf[5..].to_vec());
        }
    }
    assert_eq!(seen.len(), 40);
}

#[test]
fn delayed_compression_waits_for_auth() {
    let mut rng = TestRng(6);
    let combo = (&cipher::NONE_ALG, None);
    let (mut s, mut o) = pair(combo, Compression::ZlibDelayed);
    let text = b"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz";
    let mut wire = Vec::new();
    s.seal(&mut wire, text, &mut rng).unwrap();
    assert_eq!(&wire[5..5 + text.len()], text, "not compressed before auth");
    let op = o.open(&mut wire).unwrap().unwrap();
    assert_eq!(op.payload, PayloadAt::Input(5..5 + text.len()));
    s.auth_succeeded();
    o.auth_succeeded();
    for _ in 0..3 {
        let mut wire = Vec::new();
        s.seal(&mut wire, text, &mut rng).unwrap();
        assert!(wire.len() < 5 + text.len());
        let op = o.open(&mut wire).unwrap().unwrap();
        assert_eq!(op.payload, PayloadAt::Inflated);
        let v = o.take_inflated();
        assert_eq!(v, text);
        o.restore_inflated(v);
    }
}

#[test]
fn delayed_compression_negotiated_after_auth_is_on_at_once() {
    let (mut s, mut o) = pair((&cipher::NONE_ALG, None), Compression::None);
    s.auth_succeeded();
    o.auth_succeeded();
    s.set_compression(Compression::ZlibDelayed);
    o.set_compression(Compression::ZlibDelayed);
    let mut wire = Vec::new();
    s.seal(&mut wire, b"payload payload payload", &mut TestRng(1)).unwrap();
    let op = o.open(&mut wire).unwrap().unwrap();
    assert_eq!(op.payload, PayloadAt::Inflated);
    assert_eq!(o.inflated(), b"payload payload payload");
}

#[test]
fn valid_length_waits_without_growing_anything() {
    for combo in combos() {
        let (mut s, mut o) = pair(combo, Compression::None);
        let mut wire = Vec::new();
        s.seal(&mut wire, &payload(200_000, false), &mut TestRng(1)).unwrap();
        // A prefix: the length is learnt and accepted, the rest waited for.
        assert_eq!(o.open(&mut wire[..100]), Ok(None), "{}", label(combo));
        let almost = wire.len() - 1;
        assert_eq!(o.open(&mut wire[..almost]), Ok(None), "{}", label(combo));
        let op = o.open(&mut wire).unwrap().unwrap();
        assert_eq!(op.consumed, wire.len());
        assert_eq!(o.inflated().len(), 0);
    }
}

#[test]
fn zlib_stream_restarts_at_rekey_and_counters_reset() {
    let mut rng = TestRng(8);
    let a = (&cipher::AES128_CTR as &CipherAlg, Some(&mac::HMAC_SHA2_256 as &MacAlg));
    let b = (&cipher::CHACHA20_POLY1305 as &CipherAlg, None);
    let (mut s, mut o) = pair(a, Compression::Zlib);
    let mut wire = Vec::new();
    s.seal(&mut wire, b"before before before", &mut rng).unwrap();
    open_one(&mut o, &mut wire).unwrap().unwrap();
    assert_eq!(s.since_rekey().1, 1);
    s.set_keys(keys(b, 2));
    o.set_keys(keys(b, 2));
    s.set_compression(Compression::Zlib);
    o.set_compression(Compression::Zlib);
    assert_eq!((s.since_rekey(), o.since_rekey()), ((0, 0), (0, 0)));
    let mut wire = Vec::new();
    s.seal(&mut wire, b"after before before", &mut rng).unwrap();
    let (_, seq, p) = open_one(&mut o, &mut wire).unwrap().unwrap();
    assert_eq!((seq, p.as_slice()), (1, &b"after before before"[..]));
    assert_eq!(s.totals().1, 2);
    assert_eq!(s.since_rekey().1, 1);
}

#[test]
fn short_keys_break_the_direction() {
    let combo = (&cipher::AES256_GCM as &CipherAlg, None);
    let mut k = keys(combo, 1);
    k.key.truncate(31);
    let mut o = PacketOpener::new();
    assert!(o.try_set_keys(keys_with_short_key()).is_err());
    assert!(!o.is_encrypted(), "state unchanged after try_set_keys fails");
    o.set_keys(k);
    assert!(o.is_encrypted());
    assert_eq!(o.open(&mut [0u8; 64]), Err(PacketError::BadMac));
    let mut s = PacketSealer::new();
    s.set_keys(keys_with_short_key());
    assert!(s.seal(&mut Vec::new(), b"x", &mut TestRng(1)).is_err());
}

fn keys_with_short_key() -> DirectionKeys {
    let mut k = keys((&cipher::AES128_CTR, Some(&mac::HMAC_SHA2_512)), 1);
    k.mac_key.truncate(63);
    k
}

/// Returns the padding bytes an independent implementation chose, in order.
struct FixedRng(Vec<u8>);

impl Rng for FixedRng {
    fn fill(&mut self, out: &mut [u8]) {
        assert!(self.0.len() >= out.len(), "vector has too little padding");
        let rest = self.0.split_off(out.len());
        out.copy_from_slice(&self.0);
        self.0 = rest;
    }
}

#[test]
fn known_answer_vectors_from_python_cryptography() {
    let text = include_str!("../../tests/data/packet_vectors.txt");
    let hx = |s: &str| {
        if s == "-" {
            Vec::new()
        } else {
            hex::decode(s).unwrap()
        }
    };
    let list = |s: &str| s.split(',').map(|p| hex::decode(p).unwrap()).collect::<Vec<_>>();
    let mut count = 0;
    for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f.len(), 9, "{line}");
        let c = if f[0] == "none" { &cipher::NONE_ALG } else { cipher::by_name(f[0]).unwrap() };
        let m = (f[1] != "-").then(|| mac::by_name(f[1]).unwrap());
        let keys =
            || DirectionKeys { cipher: c, mac: m, key: hx(f[2]), iv: hx(f[3]), mac_key: hx(f[4]) };
        let seq: u32 = f[5].parse().unwrap();
        let (payloads, paddings, expected) = (list(f[6]), list(f[7]), list(f[8]));

        let mut s = PacketSealer::new();
        s.set_keys(keys());
        s.set_seq(seq);
        let mut rng = FixedRng(paddings.concat());
        for (p, e) in payloads.iter().zip(&expected) {
            let mut buf = Vec::new();
            s.seal(&mut buf, p, &mut rng).unwrap();
            assert_eq!(hex::encode(&buf), hex::encode(e), "sealing {} {}", f[0], f[1]);
        }
        assert!(rng.0.is_empty());

        let mut o = PacketOpener::new();
        o.set_keys(keys());
        o.set_seq(seq);
        let mut wire = expected.concat();
        let mut at = 0;
        for p in &payloads {
            let (consumed, _, got) = open_one(&mut o, &mut wire[at..]).unwrap().unwrap();
            assert_eq!(&got, p, "opening {} {}", f[0], f[1]);
            at += consumed;
        }
        assert_eq!(at, wire.len());
        count += 1;
    }
    // none, chacha, 2 × GCM, 3 × CTR × 6 MACs.
    assert_eq!(count, 22);
}
