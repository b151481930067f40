//! Cross-method tests: every entry of `ALL` round-trips, and the known-answer vectors in
//! `tests/data/kex_vectors.txt` (made by scripts/gen-kex-vectors.py) match.

use super::*;

#[test]
fn all_is_in_openssh_order_and_complete() {
    let names: Vec<_> = ALL.iter().map(|k| k.name).collect();
    assert_eq!(names.len(), 15);
    assert_eq!(names[0], "mlkem768x25519-sha256");
    assert_eq!(names[11], "diffie-hellman-group14-sha256");
    for off in OFF_BY_DEFAULT {
        assert!(by_name(off).is_some(), "{off}");
    }
}

#[test]
fn every_method_round_trips() {
    let gex = gex::GexGroups::builtin();
    for alg in ALL {
        // The 8192-bit groups are slow in debug builds; group exchange is covered at 2048.
        let group = match alg.method {
            KexMethod::Gex => Some(&gex.groups[0]),
            _ => None,
        };
        let c = ClientEphemeral::generate(alg.method, group, &mut crate::algo::SystemRng).unwrap();
        let (reply, ks) =
            server_agree(alg.method, group, c.public(), &mut crate::algo::SystemRng).unwrap();
        let kc = c.agree(&reply).unwrap();
        assert_eq!(kc.bytes, ks.bytes, "{}", alg.name);
        assert_eq!(kc.as_string, ks.as_string);
        assert_eq!(
            ks.as_string,
            matches!(alg.method, KexMethod::MlKem768X25519 | KexMethod::Sntrup761X25519)
        );
    }
}

#[test]
fn server_refuses_bad_client_values() {
    let g14 = Some(&dh::GROUP14);
    let m = KexMethod::Dh(&dh::GROUP14);
    let p = num_bigint::BigUint::from_bytes_be(&dh::GROUP14.p);
    for e in [vec![], vec![1], (&p - 1u32).to_bytes_be(), p.to_bytes_be()] {
        assert_eq!(
            server_agree(m, g14, &e, &mut crate::algo::SystemRng).err(),
            Some(KexError::DhValueOutOfRange)
        );
    }
    assert_eq!(
        server_agree(KexMethod::Gex, None, &[5], &mut crate::algo::SystemRng).err(),
        Some(KexError::Internal("group exchange without a group"))
    );
    assert_eq!(
        server_agree(KexMethod::Curve25519, None, &[9; 31], &mut crate::algo::SystemRng).err(),
        Some(KexError::BadPublicLength { expected: 32, got: 31 })
    );
    assert_eq!(
        server_agree(KexMethod::Curve25519, None, &[0; 32], &mut crate::algo::SystemRng).err(),
        Some(KexError::AllZeroSecret)
    );
    let mut off_curve = vec![4u8; 65];
    off_curve[64] = 7;
    assert_eq!(
        server_agree(KexMethod::EcdhP256, None, &off_curve, &mut crate::algo::SystemRng).err(),
        Some(KexError::InvalidPoint)
    );
    assert_eq!(
        server_agree(KexMethod::MlKem768X25519, None, &[0; 100], &mut crate::algo::SystemRng).err(),
        Some(KexError::BadPublicLength { expected: 1216, got: 100 })
    );
    assert_eq!(
        server_agree(KexMethod::Sntrup761X25519, None, &[0; 1191], &mut crate::algo::SystemRng)
            .err(),
        Some(KexError::BadPublicLength { expected: 1190, got: 1191 })
    );
}

#[test]
fn shared_secret_encodings() {
    let k = SharedSecret { bytes: vec![0x80, 1], as_string: false };
    assert_eq!(k.encoded(), [0, 0, 0, 3, 0, 0x80, 1]);
    let k = SharedSecret { bytes: vec![0, 0x80], as_string: true };
    assert_eq!(k.encoded(), [0, 0, 0, 2, 0, 0x80]);
}

fn hash_alg(name: &str) -> HashAlg {
    match name {
        "sha1" => HashAlg::Sha1,
        "sha256" => HashAlg::Sha256,
        "sha384" => HashAlg::Sha384,
        "sha512" => HashAlg::Sha512,
        _ => panic!("hash {name}"),
    }
}

/// Vectors computed by Python `cryptography` + hashlib (scripts/gen-kex-vectors.py).
#[test]
fn known_answer_vectors() {
    let text = include_str!("../../../tests/data/kex_vectors.txt");
    let mut seen = std::collections::HashSet::new();
    for b in test_vectors::blocks(text) {
        if b.get("type") != Some("kex") {
            continue;
        }
        let name = b.get("name").unwrap();
        let alg = by_name(name).unwrap_or_else(|| panic!("{name} not in ALL"));
        let hash = hash_alg(b.get("hash").unwrap());
        assert_eq!(alg.hash, hash, "{name}");
        seen.insert(name);
        let k_encoded = b.hex("k_encoded");

        // K from the fixed private values, where our libraries accept a given private key.
        match alg.method {
            KexMethod::Dh(_) | KexMethod::Gex => {
                let group = match alg.method {
                    KexMethod::Dh(g) => g.clone(),
                    _ => {
                        let req = b.hex("gex_request");
                        let r = match req.len() {
                            12 => gex::GexRequest::New {
                                min: u32::from_be_bytes(req[0..4].try_into().unwrap()),
                                n: u32::from_be_bytes(req[4..8].try_into().unwrap()),
                                max: u32::from_be_bytes(req[8..12].try_into().unwrap()),
                            },
                            4 => gex::GexRequest::Old {
                                n: u32::from_be_bytes(req[..].try_into().unwrap()),
                            },
                            n => panic!("request of {n} bytes"),
                        };
                        let mut raw = Vec::new();
                        r.hash_bytes(&mut raw);
                        assert_eq!(raw, req);
                        let groups = gex::GexGroups::builtin();
                        let g = groups.choose(&r).unwrap().clone();
                        assert_eq!(&*g.p, b.hex("p").as_slice(), "chosen group");
                        g
                    }
                };
                let client = dh::DhKeyPair::from_private(&group, &b.hex("x")).unwrap();
                assert_eq!(client.public(), b.hex("e").as_slice(), "{name} e");
                let server = dh::DhKeyPair::from_private(&group, &b.hex("y")).unwrap();
                assert_eq!(server.public(), b.hex("f").as_slice(), "{name} f");
                let k = client.agree(&b.hex("f")).unwrap();
                assert_eq!(k, b.hex("k"), "{name} K");
                assert_eq!(SharedSecret { bytes: k, as_string: false }.encoded(), k_encoded);
            }
            KexMethod::EcdhP521 => {
                let sk = p521::SecretKey::from_slice(&b.hex("priv_c")).unwrap();
                let q_c = p521::EncodedPoint::from(sk.public_key());
                assert_eq!(q_c.as_bytes(), b.hex("q_c").as_slice());
                let pk = ecdh::p521_public(&b.hex("q_s")).unwrap();
                let k = p521::ecdh::diffie_hellman(sk.to_nonzero_scalar(), pk.as_affine());
                assert_eq!(k.raw_secret_bytes().as_slice(), b.hex("k").as_slice());
            }
            KexMethod::MlKem768X25519 | KexMethod::Sntrup761X25519 => {
                let kem = if alg.method == KexMethod::MlKem768X25519 {
                    hybrid::Kem::MlKem768
                } else {
                    hybrid::Kem::Sntrup761
                };
                assert_eq!(b.hex("q_c").len(), kem.client_len());
                assert_eq!(b.hex("q_s").len(), kem.server_len());
                if let Some(seed) = b.get("mlkem_seed") {
                    mlkem_decapsulates_python_ciphertext(&hex::decode(seed).unwrap(), &b);
                }
                let k = kem.combine(&b.hex("kem_shared"), &b.hex("x25519_shared"));
                assert_eq!(k, b.hex("k"));
                assert_eq!(SharedSecret { bytes: k, as_string: true }.encoded(), k_encoded);
            }
            // ring cannot import X25519 / P-256 / P-384 private keys: K is taken from the file.
            _ => {
                let k = SharedSecret { bytes: b.hex("k"), as_string: false };
                assert_eq!(k.encoded(), k_encoded);
            }
        }

        // The exchange hash.
        let (v_c, v_s, i_c, i_s, k_s) =
            (b.hex("v_c"), b.hex("v_s"), b.hex("i_c"), b.hex("i_s"), b.hex("k_s"));
        let (e, f, q_c, q_s, req, p, g) = (
            b.get("e").map(hex::decode).transpose().unwrap().unwrap_or_default(),
            b.get("f").map(hex::decode).transpose().unwrap().unwrap_or_default(),
            b.get("q_c").map(hex::decode).transpose().unwrap().unwrap_or_default(),
            b.get("q_s").map(hex::decode).transpose().unwrap().unwrap_or_default(),
            b.get("gex_request").map(hex::decode).transpose().unwrap().unwrap_or_default(),
            b.get("p").map(hex::decode).transpose().unwrap().unwrap_or_default(),
            b.get("g").map(hex::decode).transpose().unwrap().unwrap_or_default(),
        );
        let middle = match alg.method {
            KexMethod::Dh(_) => hash::HashMiddle::Dh { e: &e, f: &f },
            KexMethod::Gex => hash::HashMiddle::Gex { request: &req, p: &p, g: &g, e: &e, f: &f },
            _ => hash::HashMiddle::Ecdh { q_c: &q_c, q_s: &q_s },
        };
        let inputs = hash::HashInputs {
            v_c: &v_c,
            v_s: &v_s,
            i_c: &i_c,
            i_s: &i_s,
            k_s: &k_s,
            middle,
            k_encoded: &k_encoded,
        };
        let h = hash::exchange_hash(hash, &inputs);
        assert_eq!(h, b.hex("h"), "{name} H");

        // The six keys.
        let sid = b.hex("session_id");
        for letter in b'A'..=b'F' {
            let want = b.hex(&format!("key_{}", letter as char));
            let got = derive::derive_key(hash, &k_encoded, &h, letter, &sid, want.len());
            assert_eq!(got, want, "{name} key {}", letter as char);
        }
    }
    for family in [
        "diffie-hellman-group14-sha256",
        "diffie-hellman-group16-sha512",
        "diffie-hellman-group-exchange-sha256",
        "ecdh-sha2-nistp256",
        "ecdh-sha2-nistp384",
        "ecdh-sha2-nistp521",
        "curve25519-sha256",
        "mlkem768x25519-sha256",
        "sntrup761x25519-sha512",
    ] {
        assert!(seen.contains(family), "no vector for {family}");
    }
}

#[test]
fn cheap_checks_match_server_agree() {
    let g14 = &dh::GROUP14;
    assert_eq!(
        check_client_public(KexMethod::Dh(g14), None, &[1]),
        Err(KexError::DhValueOutOfRange)
    );
    assert_eq!(check_client_public(KexMethod::Gex, Some(g14), &[2]), Ok(()));
    assert!(check_client_public(KexMethod::Gex, None, &[2]).is_err());
    assert_eq!(
        check_client_public(KexMethod::EcdhP384, None, &[4; 65]),
        Err(KexError::BadPublicLength { expected: 97, got: 65 })
    );
    for alg in ALL {
        let group = matches!(alg.method, KexMethod::Gex).then_some(g14);
        if matches!(alg.method, KexMethod::Dh(g) if g.bits > 2048) {
            continue; // keep the debug-build test fast
        }
        let c = ClientEphemeral::generate(alg.method, group, &mut crate::algo::SystemRng).unwrap();
        assert_eq!(check_client_public(alg.method, group, c.public()), Ok(()), "{}", alg.name);
    }
}

/// ML-KEM-768 from the seed in the vector: our key generation gives Python's encapsulation
/// key, and decapsulating Python's ciphertext gives its shared secret.
fn mlkem_decapsulates_python_ciphertext(seed: &[u8], b: &test_vectors::Block) {
    use ml_kem::kem::Decapsulate;
    use ml_kem::{EncodedSizeUser, KemCore, MlKem768, B32};
    let d = B32::try_from(&seed[..32]).unwrap();
    let z = B32::try_from(&seed[32..]).unwrap();
    let (dk, ek) = MlKem768::generate_deterministic(&d, &z);
    let q_c = b.hex("q_c");
    assert_eq!(ek.as_bytes().as_slice(), &q_c[..1184], "ML-KEM encapsulation key");
    let q_s = b.hex("q_s");
    let ct = ml_kem::Ciphertext::<MlKem768>::try_from(&q_s[..1088]).unwrap();
    assert_eq!(dk.decapsulate(&ct).unwrap().as_slice(), b.hex("kem_shared").as_slice());
}
