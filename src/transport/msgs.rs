//! Typed transport messages (RFC 4253 §7–§11, RFC 4419, RFC 5656, RFC 8308): parse from a
//! payload (message number included) into structs whose fields are already checked, and encode.

use crate::wire::{msg_no, DecodeError, NameList, Reader, Writer};

/// SSH_MSG_KEXINIT (RFC 4253 §7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KexInit<'a> {
    pub cookie: [u8; 16],
    pub kex: NameList<'a>,
    pub host_key: NameList<'a>,
    pub cipher_c2s: NameList<'a>,
    pub cipher_s2c: NameList<'a>,
    pub mac_c2s: NameList<'a>,
    pub mac_s2c: NameList<'a>,
    pub comp_c2s: NameList<'a>,
    pub comp_s2c: NameList<'a>,
    pub lang_c2s: NameList<'a>,
    pub lang_s2c: NameList<'a>,
    pub first_kex_packet_follows: bool,
}

impl<'a> KexInit<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        expect_no(&mut r, msg_no::KEXINIT)?;
        let m = KexInit {
            cookie: r.array("KEXINIT cookie")?,
            kex: r.name_list("kex_algorithms")?,
            host_key: r.name_list("server_host_key_algorithms")?,
            cipher_c2s: r.name_list("encryption_algorithms_client_to_server")?,
            cipher_s2c: r.name_list("encryption_algorithms_server_to_client")?,
            mac_c2s: r.name_list("mac_algorithms_client_to_server")?,
            mac_s2c: r.name_list("mac_algorithms_server_to_client")?,
            comp_c2s: r.name_list("compression_algorithms_client_to_server")?,
            comp_s2c: r.name_list("compression_algorithms_server_to_client")?,
            lang_c2s: r.name_list("languages_client_to_server")?,
            lang_s2c: r.name_list("languages_server_to_client")?,
            first_kex_packet_follows: r.bool("first_kex_packet_follows")?,
        };
        // uint32 reserved: "reserved for future extension"; its value is not checked.
        r.u32("KEXINIT reserved")?;
        r.finish("KEXINIT")?;
        Ok(m)
    }
}

/// Lists for our own KEXINIT, in preference order.
pub struct KexInitLists<'a> {
    pub kex: &'a [&'a str],
    pub host_key: &'a [&'a str],
    pub cipher: &'a [&'a str],
    pub mac: &'a [&'a str],
    pub compression: &'a [&'a str],
}

/// Encodes our KEXINIT (same lists both directions, no languages, no guess).
pub fn encode_kexinit(out: &mut Vec<u8>, cookie: [u8; 16], l: &KexInitLists<'_>) {
    let mut w = Writer::new(out);
    w.u8(msg_no::KEXINIT).raw(&cookie);
    w.name_list(l.kex.iter().copied());
    w.name_list(l.host_key.iter().copied());
    w.name_list(l.cipher.iter().copied());
    w.name_list(l.cipher.iter().copied());
    w.name_list(l.mac.iter().copied());
    w.name_list(l.mac.iter().copied());
    w.name_list(l.compression.iter().copied());
    w.name_list(l.compression.iter().copied());
    w.name_list(std::iter::empty());
    w.name_list(std::iter::empty());
    w.bool(false).u32(0);
}

/// SSH_MSG_DISCONNECT (RFC 4253 §11.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect<'a> {
    pub code: u32,
    pub description: &'a [u8],
}

impl<'a> Disconnect<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        expect_no(&mut r, msg_no::DISCONNECT)?;
        let code = r.u32("reason code")?;
        let description = r.string("description")?;
        // Language tag; some peers omit it, which we tolerate on a message that ends things.
        if !r.is_empty() {
            r.string("language tag")?;
        }
        Ok(Disconnect { code, description })
    }
}

pub fn encode_disconnect(out: &mut Vec<u8>, code: u32, description: &str) {
    Writer::new(out).u8(msg_no::DISCONNECT).u32(code).string(description.as_bytes()).string(b"");
}

/// SSH_MSG_DEBUG (RFC 4253 §11.3).
pub struct Debug<'a> {
    pub always_display: bool,
    pub message: &'a [u8],
}

impl<'a> Debug<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        expect_no(&mut r, msg_no::DEBUG)?;
        let always_display = r.bool("always_display")?;
        let message = r.string("message")?;
        r.string("language tag")?;
        r.finish("DEBUG")?;
        Ok(Debug { always_display, message })
    }
}

pub fn parse_ignore(payload: &[u8]) -> Result<(), DecodeError> {
    let mut r = Reader::new(payload);
    expect_no(&mut r, msg_no::IGNORE)?;
    // RFC 4253 §11.2 says a string; tolerate a bare message number as OpenSSH does.
    if !r.is_empty() {
        r.string("data")?;
    }
    r.finish("IGNORE")
}

pub fn parse_unimplemented(payload: &[u8]) -> Result<u32, DecodeError> {
    let mut r = Reader::new(payload);
    expect_no(&mut r, msg_no::UNIMPLEMENTED)?;
    let seq = r.u32("packet sequence number")?;
    r.finish("UNIMPLEMENTED")?;
    Ok(seq)
}

pub fn encode_unimplemented(out: &mut Vec<u8>, seq: u32) {
    Writer::new(out).u8(msg_no::UNIMPLEMENTED).u32(seq);
}

pub fn encode_ignore(out: &mut Vec<u8>, data: &[u8]) {
    Writer::new(out).u8(msg_no::IGNORE).string(data);
}

pub fn encode_debug(out: &mut Vec<u8>, always_display: bool, message: &str) {
    Writer::new(out).u8(msg_no::DEBUG).bool(always_display).string(message.as_bytes()).string(b"");
}

/// SSH_MSG_SERVICE_REQUEST / SERVICE_ACCEPT: one string, the service name.
pub fn parse_service(payload: &[u8], no: u8) -> Result<&[u8], DecodeError> {
    let mut r = Reader::new(payload);
    expect_no(&mut r, no)?;
    let name = r.string_max("service name", 64)?;
    r.finish("SERVICE_REQUEST")?;
    Ok(name)
}

pub fn encode_service(out: &mut Vec<u8>, no: u8, name: &str) {
    Writer::new(out).u8(no).string(name.as_bytes());
}

/// SSH_MSG_NEWKEYS: nothing after the number (a payload is a protocol error).
pub fn parse_newkeys(payload: &[u8]) -> Result<(), DecodeError> {
    let mut r = Reader::new(payload);
    expect_no(&mut r, msg_no::NEWKEYS)?;
    r.finish("NEWKEYS")
}

/// SSH_MSG_EXT_INFO (RFC 8308 §2.3): parsed only for shape and bounds; we act on no extension
/// a client sends.
pub fn parse_ext_info(payload: &[u8]) -> Result<u32, DecodeError> {
    let mut r = Reader::new(payload);
    expect_no(&mut r, msg_no::EXT_INFO)?;
    let n = r.u32("nr-extensions")?;
    // Each extension has at least two 4-byte length prefixes: bound n by what is there.
    if (n as usize).saturating_mul(8) > r.remaining().len() {
        return Err(DecodeError::Invalid { field: "nr-extensions" });
    }
    for _ in 0..n {
        r.string_max("extension-name", 64)?;
        r.string("extension-value")?;
    }
    r.finish("EXT_INFO")?;
    Ok(n)
}

pub fn encode_ext_info(out: &mut Vec<u8>, exts: &[(&str, &[u8])]) {
    let mut w = Writer::new(out);
    w.u8(msg_no::EXT_INFO).u32(u32::try_from(exts.len()).unwrap_or(0));
    for (name, value) in exts {
        w.string(name.as_bytes()).string(value);
    }
}

/// A message whose body is one `string` (KEX_ECDH_INIT's Q_C, hybrid init) or one `mpint`
/// (KEXDH_INIT's e, GEX_INIT's e).
pub fn parse_single_string<'a>(
    payload: &'a [u8],
    no: u8,
    what: &'static str,
) -> Result<&'a [u8], DecodeError> {
    let mut r = Reader::new(payload);
    expect_no(&mut r, no)?;
    let v = r.string(what)?;
    r.finish(what)?;
    Ok(v)
}

pub fn parse_single_mpint<'a>(
    payload: &'a [u8],
    no: u8,
    what: &'static str,
) -> Result<&'a [u8], DecodeError> {
    let mut r = Reader::new(payload);
    expect_no(&mut r, no)?;
    let v = r.mpint_positive(what)?;
    r.finish(what)?;
    Ok(v)
}

/// KEX_DH_GEX_REQUEST (34): min, n, max. KEX_DH_GEX_REQUEST_OLD (30): n.
pub fn parse_gex_request(payload: &[u8]) -> Result<(u32, u32, u32), DecodeError> {
    let mut r = Reader::new(payload);
    expect_no(&mut r, msg_no::KEX_DH_GEX_REQUEST)?;
    let min = r.u32("min")?;
    let n = r.u32("n")?;
    let max = r.u32("max")?;
    r.finish("KEX_DH_GEX_REQUEST")?;
    Ok((min, n, max))
}

pub fn parse_gex_request_old(payload: &[u8]) -> Result<u32, DecodeError> {
    let mut r = Reader::new(payload);
    expect_no(&mut r, msg_no::KEX_DH_GEX_REQUEST_OLD)?;
    let n = r.u32("n")?;
    r.finish("KEX_DH_GEX_REQUEST_OLD")?;
    Ok(n)
}

/// KEX_DH_GEX_GROUP (31): mpint p, mpint g.
pub fn parse_gex_group(payload: &[u8]) -> Result<(&[u8], &[u8]), DecodeError> {
    let mut r = Reader::new(payload);
    expect_no(&mut r, msg_no::KEX_DH_GEX_GROUP)?;
    let p = r.mpint_positive("p")?;
    let g = r.mpint_positive("g")?;
    r.finish("KEX_DH_GEX_GROUP")?;
    Ok((p, g))
}

/// The server's KEX reply (KEXDH_REPLY, KEX_ECDH_REPLY, hybrid reply, GEX_REPLY): K_S, the
/// server's public value (mpint f for DH, string Q_S otherwise), signature.
pub struct KexReply<'a> {
    pub k_s: &'a [u8],
    pub server_public: &'a [u8],
    pub signature: &'a [u8],
}

impl<'a> KexReply<'a> {
    pub fn parse(payload: &'a [u8], no: u8, public_is_mpint: bool) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        expect_no(&mut r, no)?;
        let k_s = r.string("server public host key")?;
        let server_public =
            if public_is_mpint { r.mpint_positive("f")? } else { r.string("Q_S")? };
        let signature = r.string("signature")?;
        r.finish("KEX reply")?;
        Ok(KexReply { k_s, server_public, signature })
    }
}

pub fn encode_kex_reply(
    out: &mut Vec<u8>,
    no: u8,
    k_s: &[u8],
    server_public: &[u8],
    public_is_mpint: bool,
    signature: &[u8],
) {
    let mut w = Writer::new(out);
    w.u8(no).string(k_s);
    if public_is_mpint {
        w.mpint(server_public);
    } else {
        w.string(server_public);
    }
    w.string(signature);
}

fn expect_no(r: &mut Reader<'_>, no: u8) -> Result<(), DecodeError> {
    if r.u8("message number")? != no {
        return Err(DecodeError::Invalid { field: "message number" });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kexinit_round_trip_and_truncation() {
        let mut v = Vec::new();
        let lists = KexInitLists {
            kex: &["curve25519-sha256", "ext-info-s"],
            host_key: &["ssh-ed25519"],
            cipher: &["aes128-ctr"],
            mac: &["hmac-sha2-256"],
            compression: &["none"],
        };
        encode_kexinit(&mut v, [7; 16], &lists);
        let k = KexInit::parse(&v).unwrap();
        assert_eq!(k.cookie, [7; 16]);
        assert_eq!(k.kex.first(), Some("curve25519-sha256"));
        assert!(k.kex.contains("ext-info-s"));
        assert!(!k.first_kex_packet_follows);
        for cut in 0..v.len() {
            assert!(KexInit::parse(&v[..cut]).is_err(), "cut at {cut}");
        }
        v.push(0);
        assert!(KexInit::parse(&v).is_err(), "trailing byte");
    }

    #[test]
    fn newkeys_with_payload_is_rejected() {
        assert!(parse_newkeys(&[21]).is_ok());
        assert!(parse_newkeys(&[21, 0]).is_err());
    }

    #[test]
    fn ext_info_count_is_bounded_by_payload() {
        let mut v = vec![7];
        v.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(parse_ext_info(&v).is_err());
        let mut v = Vec::new();
        encode_ext_info(&mut v, &[("server-sig-algs", b"ssh-ed25519")]);
        assert_eq!(parse_ext_info(&v).unwrap(), 1);
    }
}
