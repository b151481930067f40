//! Host key tests: sign/verify for every generated type, blob formats against `ssh-key`, and
//! signatures made by Python's `cryptography` (tests/data/kex_vectors.txt).

use super::*;

fn kinds() -> Vec<KeyKind> {
    vec![
        KeyKind::Ed25519,
        KeyKind::EcdsaP256,
        KeyKind::EcdsaP384,
        KeyKind::EcdsaP521,
        KeyKind::Rsa { bits: 2048 },
    ]
}

#[test]
fn generated_keys_sign_and_verify_and_reload() {
    for kind in kinds() {
        let (pair, text) = HostKeyPair::generate(kind).unwrap();
        let reloaded = HostKeyPair::from_openssh(&text).unwrap();
        assert_eq!(reloaded.public_blob(), pair.public_blob(), "{kind:?}");
        // Our blob matches ssh-key's encoding and our fingerprint its fingerprint.
        let sk = ssh_key::PrivateKey::from_openssh(&text).unwrap();
        assert_eq!(sk.public_key().to_bytes().unwrap(), pair.public_blob(), "{kind:?}");
        assert_eq!(
            sk.public_key().fingerprint(ssh_key::HashAlg::Sha256).to_string(),
            pair.fingerprint()
        );
        for &alg in pair.algorithms() {
            let data = b"exchange hash H";
            let sig = pair.sign(alg, data, &mut crate::algo::SystemRng).unwrap();
            verify(alg, pair.public_blob(), data, &sig).unwrap();
            assert_eq!(
                verify(alg, pair.public_blob(), b"other data", &sig),
                Err(VerifyError::Mismatch),
                "{alg:?}"
            );
            let mut r = Reader::new(&sig);
            assert_eq!(r.string("n").unwrap(), alg.name().as_bytes());
        }
        let other = HostKeyAlg::ALL.iter().find(|a| !pair.algorithms().contains(a)).unwrap();
        assert_eq!(
            pair.sign(*other, b"x", &mut crate::algo::SystemRng),
            Err(HostKeyError::WrongAlgorithm)
        );
    }
}

#[test]
fn rsa_blob_keeps_ssh_rsa_name_and_signature_names_the_hash() {
    let (pair, _) = HostKeyPair::generate(KeyKind::Rsa { bits: 2048 }).unwrap();
    let mut r = Reader::new(pair.public_blob());
    assert_eq!(r.string("t").unwrap(), b"ssh-rsa");
    let sig = pair.sign(HostKeyAlg::RsaSha256, b"h", &mut crate::algo::SystemRng).unwrap();
    let mut r = Reader::new(&sig);
    assert_eq!(r.string("t").unwrap(), b"rsa-sha2-256");
    assert_eq!(r.string("s").unwrap().len(), 256);
    // A signature presented under another name does not verify.
    assert_eq!(
        verify(HostKeyAlg::RsaSha512, pair.public_blob(), b"h", &sig),
        Err(VerifyError::BadSignatureFormat)
    );
}

#[test]
fn malformed_blobs_are_refused() {
    let (pair, _) = HostKeyPair::generate(KeyKind::Ed25519).unwrap();
    let sig = pair.sign(HostKeyAlg::Ed25519, b"h", &mut crate::algo::SystemRng).unwrap();
    let mut long = pair.public_blob().to_vec();
    long.push(0);
    assert_eq!(verify(HostKeyAlg::Ed25519, &long, b"h", &sig), Err(VerifyError::BadKey));
    assert_eq!(
        verify(HostKeyAlg::EcdsaP256, pair.public_blob(), b"h", &sig),
        Err(VerifyError::BadKey)
    );
    assert_eq!(
        verify(HostKeyAlg::Ed25519, pair.public_blob(), b"h", &sig[..sig.len() - 1]),
        Err(VerifyError::BadSignatureFormat)
    );
    assert_eq!(verify(HostKeyAlg::Ed25519, &[0xff; 3], b"h", &sig), Err(VerifyError::BadKey));
    assert_eq!(base64_unpadded(b"foob"), "Zm9vYg");
    assert_eq!(base64_unpadded(b"foobar"), "Zm9vYmFy");
}

/// Signatures made by Python `cryptography` over the message in the vectors file.
#[test]
fn verifies_signatures_from_an_independent_implementation() {
    let vectors = include_str!("../../../tests/data/kex_vectors.txt");
    let mut n = 0;
    for block in crate::algo::kex::test_vectors::blocks(vectors) {
        if block.get("type") != Some("hostkey-sig") {
            continue;
        }
        let alg = HostKeyAlg::from_name(block.get("alg").unwrap()).unwrap();
        let blob = block.hex("public_blob");
        let data = block.hex("data");
        let sig = block.hex("signature_blob");
        verify(alg, &blob, &data, &sig).unwrap_or_else(|e| panic!("{alg:?}: {e:?}"));
        let mut bad = data.clone();
        bad[0] ^= 1;
        assert_eq!(verify(alg, &blob, &bad, &sig), Err(VerifyError::Mismatch));
        n += 1;
    }
    assert!(n >= 4, "expected the python signatures in the vectors file, found {n}");
}

#[test]
fn host_key_pair_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<HostKeyPair>();
}

/// The `rsa`-crate path (keys over ring's 4096-bit limit) makes the same signatures as ring:
/// PKCS#1 v1.5 is deterministic.
#[test]
fn rsa_fallback_signs_like_ring() {
    let (pair, _) = HostKeyPair::generate(KeyKind::Rsa { bits: 2048 }).unwrap();
    let Signer::Rsa(Some(ring_pair), legacy) = &pair.signer else { panic!("rsa") };
    assert!(ring_pair.public().modulus_len() == 256);
    for alg in [HostKeyAlg::RsaSha256, HostKeyAlg::RsaSha512, HostKeyAlg::SshRsa] {
        let fallback = sign_rsa_pkcs1(legacy, alg, b"data", &mut crate::algo::SystemRng).unwrap();
        let mut blob = Vec::new();
        Writer::new(&mut blob).string(alg.name().as_bytes()).string(&fallback);
        verify(alg, pair.public_blob(), b"data", &blob).unwrap();
        assert_eq!(pair.sign(alg, b"data", &mut crate::algo::SystemRng).unwrap(), blob, "{alg:?}");
    }
}

/// An ssh-keygen P-521 key whose private scalar is a 65-byte mpint: ssh-key 0.6 alone refuses
/// it ("length invalid"); `from_openssh` must load it and sign with it.
#[test]
fn p521_key_with_short_scalar_from_ssh_keygen_loads() {
    let text = include_str!("../../../tests/data/ecdsa521_short_scalar_key");
    assert!(
        ssh_key::PrivateKey::from_openssh(text).is_err(),
        "fixture no longer exercises the bug"
    );
    let key = HostKeyPair::from_openssh(text).expect("padded and parsed");
    let sig = key.sign(HostKeyAlg::EcdsaP521, b"data", &mut crate::algo::SystemRng).expect("sign");
    verify(HostKeyAlg::EcdsaP521, key.public_blob(), b"data", &sig).expect("verify");
}
