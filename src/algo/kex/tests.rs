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
        let c = ClientEphemeral::generate(alg.method, group).unwrap();
        let (reply, ks) = server_agree(alg.method, group, c.public()).unwrap();
        let kc = c.agree(&reply).unwrap();
        assert_eq!(kc.bytes, ks.bytes, "{}", alg.name);
        assert_eq!(kc.as_string, ks.as_string);
        assert_eq!(
            ks.as_string,
            matches!(
                alg.method,
                KexMethod::MlKem768X25519 | KexMethod::Sntrup761X25519
            )
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
            server_agree(m, g14, &e).err(),
            Some(KexError::DhValueOutOfRange)
        );
    }
    assert_eq!(
        server_agree(KexMethod::Gex, None, &[5]).err(),
        Some(KexError::Internal("group exchange without a group"))
    );
    assert_eq!(
        server_agree(KexMethod::Curve25519, None, &[9; 31]).err(),
        Some(KexError::BadPublicLength {
            expected: 32,
            got: 31
        })
    );
    assert_eq!(
        server_agree(KexMethod::Curve25519, None, &[0; 32]).err(),
        Some(KexError::AllZeroSecret)
    );
    let mut off_curve = vec![4u8; 65];
    off_curve[64] = 7;
    assert_eq!(
        server_agree(KexMethod::EcdhP256, None, &off_curve).err(),
        Some(KexError::InvalidPoint)
    );
    assert_eq!(
        server_agree(KexMethod::MlKem768X25519, None, &[0; 100]).err(),
        Some(KexError::BadPublicLength {
            expected: 1216,
            got: 100
        })
    );
    assert_eq!(
        server_agree(KexMethod::Sntrup761X25519, None, &[0; 1191]).err(),
        Some(KexError::BadPublicLength {
            expected: 1190,
            got: 1191
        })
    );
}

#[test]
fn shared_secret_encodings() {
    let k = SharedSecret {
        bytes: vec![0x80, 1],
        as_string: false,
    };
    assert_eq!(k.encoded(), [0, 0, 0, 3, 0, 0x80, 1]);
    let k = SharedSecret {
        bytes: vec![0, 0x80],
        as_string: true,
    };
    assert_eq!(k.encoded(), [0, 0, 0, 2, 0, 0x80]);
}
