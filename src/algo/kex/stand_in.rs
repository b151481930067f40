//! Fuzzing stand-in for the key exchange math (`--features fuzzing` only): no security at all,
//! deterministic, and cheap, so a fuzz input gets past KEX into NEWKEYS, userauth and the
//! connection protocol. The message flow, the lengths and the cheap checks of the client's value
//! (`check_client_public`) stay; the public values are fixed bytes of the right length and K is
//! a constant both roles agree on.

use super::{check_client_public, curve_of, dh, hybrid, KexError, KexMethod, SharedSecret};

/// K of every stand-in exchange.
const K: [u8; 32] = [0x4b; 32];

/// Server side: the client's value passes the same cheap checks as in production.
pub(super) fn server_agree(
    method: KexMethod,
    group: Option<&dh::DhGroup>,
    client_public: &[u8],
) -> Result<(Vec<u8>, SharedSecret), KexError> {
    check_client_public(method, group, client_public)?;
    Ok((public_value(method, Side::Server), secret(method)))
}

/// Client side: the server's value must have the length the method gives it.
pub(super) fn client_agree(
    method: KexMethod,
    server_public: &[u8],
) -> Result<SharedSecret, KexError> {
    let expected = public_value(method, Side::Server).len();
    let dh = matches!(method, KexMethod::Dh(_) | KexMethod::Gex);
    if (dh && server_public.is_empty()) || (!dh && server_public.len() != expected) {
        return Err(KexError::BadPublicLength { expected, got: server_public.len() });
    }
    Ok(secret(method))
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    Client,
    Server,
}

/// A well-formed public value for `method`: 2 for DH (inside 1 < y < p-1), a SEC1 / X25519
/// length for the curves, the KEM lengths for the hybrids.
pub(super) fn public_value(method: KexMethod, side: Side) -> Vec<u8> {
    let kem = |k: hybrid::Kem| {
        vec![0u8; if side == Side::Client { k.client_len() } else { k.server_len() }]
    };
    match method {
        KexMethod::Dh(_) | KexMethod::Gex => vec![2],
        KexMethod::Sntrup761X25519 => kem(hybrid::Kem::Sntrup761),
        KexMethod::MlKem768X25519 => kem(hybrid::Kem::MlKem768),
        _ => {
            let len = curve_of(method).map_or(32, |c| c.public_len());
            let mut v = vec![0x09; len];
            if let (Some(first), true) = (v.first_mut(), len > 32) {
                *first = 0x04;
            }
            v
        }
    }
}

fn secret(method: KexMethod) -> SharedSecret {
    match method {
        KexMethod::Sntrup761X25519 | KexMethod::MlKem768X25519 => SharedSecret::string(K.to_vec()),
        _ => SharedSecret::mpint(K.to_vec()),
    }
}
