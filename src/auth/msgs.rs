//! ssh-userauth messages (RFC 4252 §5–§8, RFC 4256 §3): parsed borrowing from the payload,
//! encoded straight into the outbound buffer.

use crate::wire::{msg_no, DecodeError, Reader, Writer};

/// Longest user name we accept (OpenSSH has no fixed bound; 256 is plenty and keeps logs sane).
pub const MAX_USER_LEN: usize = 256;
/// Longest service or method name (RFC 4251 §6: names are at most 64 characters).
pub const MAX_NAME_LEN: usize = 64;
/// Longest password we take (hashing cost grows with it; nobody types more).
pub const MAX_PASSWORD_LEN: usize = 1024;
/// Most responses in one INFO_RESPONSE we parse (we ask exactly one question).
pub const MAX_INFO_RESPONSES: u32 = 8;

/// A parsed USERAUTH_REQUEST (RFC 4252 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserauthRequest<'a> {
    pub user: &'a str,
    pub service: &'a [u8],
    pub method: MethodRequest<'a>,
}

/// The method-specific part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MethodRequest<'a> {
    /// RFC 4252 §5.2.
    None,
    /// RFC 4252 §7: a query when `signature` is None.
    PublicKey { alg: &'a str, key: &'a [u8], signature: Option<&'a [u8]> },
    /// RFC 4252 §8; `change` is the password-change form (not supported: a failure).
    Password { password: &'a [u8], change: bool },
    /// RFC 4256 §3.1.
    KeyboardInteractive,
    /// Any other method name: answered with FAILURE.
    Other(&'a str),
}

impl<'a> UserauthRequest<'a> {
    pub fn parse(p: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(p);
        if r.u8("message number")? != msg_no::USERAUTH_REQUEST {
            return Err(DecodeError::Invalid { field: "message number" });
        }
        let user = r.string_max("user name", MAX_USER_LEN)?;
        let user =
            std::str::from_utf8(user).map_err(|_| DecodeError::Invalid { field: "user name" })?;
        let service = r.string_max("service name", MAX_NAME_LEN)?;
        let method = r.string_max("method name", MAX_NAME_LEN)?;
        let method = std::str::from_utf8(method)
            .map_err(|_| DecodeError::Invalid { field: "method name" })?;
        let method = match method {
            "none" => MethodRequest::None,
            "publickey" => {
                let has_sig = r.bool("publickey flag")?;
                let alg = r.string_max("public key algorithm", MAX_NAME_LEN)?;
                let alg = std::str::from_utf8(alg)
                    .map_err(|_| DecodeError::Invalid { field: "public key algorithm" })?;
                let key = r.string("public key blob")?;
                let signature = if has_sig { Some(r.string("signature")?) } else { None };
                MethodRequest::PublicKey { alg, key, signature }
            }
            "password" => {
                let change = r.bool("password change flag")?;
                let password = r.string_max("password", MAX_PASSWORD_LEN)?;
                if change {
                    r.string_max("new password", MAX_PASSWORD_LEN)?;
                }
                MethodRequest::Password { password, change }
            }
            "keyboard-interactive" => {
                r.string_max("language tag", MAX_NAME_LEN)?;
                r.string_max("submethods", 1024)?;
                MethodRequest::KeyboardInteractive
            }
            other => {
                // Unknown methods may carry anything: do not check for trailing bytes.
                return Ok(UserauthRequest { user, service, method: MethodRequest::Other(other) });
            }
        };
        r.finish("USERAUTH_REQUEST")?;
        Ok(UserauthRequest { user, service, method })
    }
}

/// The bytes a publickey signature covers (RFC 4252 §7), built field by field rather than
/// sliced from the request so it is exactly this whatever the client sent around it.
pub fn publickey_signed_data(
    session_id: &[u8],
    user: &str,
    service: &[u8],
    alg: &str,
    key: &[u8],
) -> Vec<u8> {
    let mut v = Vec::with_capacity(session_id.len() + user.len() + key.len() + 96);
    Writer::new(&mut v)
        .string(session_id)
        .u8(msg_no::USERAUTH_REQUEST)
        .string(user.as_bytes())
        .string(service)
        .string(b"publickey")
        .bool(true)
        .string(alg.as_bytes())
        .string(key);
    v
}

/// USERAUTH_INFO_RESPONSE (RFC 4256 §3.4): the responses, in order.
pub fn parse_info_response(p: &[u8]) -> Result<Vec<&[u8]>, DecodeError> {
    let mut r = Reader::new(p);
    if r.u8("message number")? != msg_no::USERAUTH_INFO_RESPONSE {
        return Err(DecodeError::Invalid { field: "message number" });
    }
    let n = r.u32("num-responses")?;
    if n > MAX_INFO_RESPONSES {
        return Err(DecodeError::TooLong {
            field: "num-responses",
            len: n as usize,
            max: MAX_INFO_RESPONSES as usize,
        });
    }
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        out.push(r.string_max("response", MAX_PASSWORD_LEN)?);
    }
    r.finish("USERAUTH_INFO_RESPONSE")?;
    Ok(out)
}

pub fn encode_failure(out: &mut Vec<u8>, methods: &[&str], partial: bool) {
    Writer::new(out).u8(msg_no::USERAUTH_FAILURE).name_list(methods.iter().copied()).bool(partial);
}

pub fn encode_success(out: &mut Vec<u8>) {
    out.push(msg_no::USERAUTH_SUCCESS);
}

pub fn encode_banner(out: &mut Vec<u8>, text: &str) {
    Writer::new(out).u8(msg_no::USERAUTH_BANNER).string(text.as_bytes()).string(b"");
}

pub fn encode_pk_ok(out: &mut Vec<u8>, alg: &str, key: &[u8]) {
    Writer::new(out).u8(msg_no::USERAUTH_PK_OK).string(alg.as_bytes()).string(key);
}

/// One INFO_REQUEST with a single non-echoed prompt.
pub fn encode_info_request(out: &mut Vec<u8>, prompt: &str) {
    Writer::new(out)
        .u8(msg_no::USERAUTH_INFO_REQUEST)
        .string(b"")
        .string(b"")
        .string(b"")
        .u32(1)
        .string(prompt.as_bytes())
        .bool(false);
}

// ---- the client direction -----------------------------------------------------------------

/// USERAUTH_REQUEST "none" (RFC 4252 §5.2): asks which methods may continue.
pub fn encode_request_none(out: &mut Vec<u8>, user: &str, service: &str) {
    Writer::new(out)
        .u8(msg_no::USERAUTH_REQUEST)
        .string(user.as_bytes())
        .string(service.as_bytes())
        .string(b"none");
}

/// USERAUTH_REQUEST "password" (RFC 4252 §8), no password change.
pub fn encode_request_password(out: &mut Vec<u8>, user: &str, service: &str, password: &[u8]) {
    Writer::new(out)
        .u8(msg_no::USERAUTH_REQUEST)
        .string(user.as_bytes())
        .string(service.as_bytes())
        .string(b"password")
        .bool(false)
        .string(password);
}

/// USERAUTH_REQUEST "publickey" (RFC 4252 §7): a query without `signature`, the signed
/// request with it. The signature covers [`publickey_signed_data`].
pub fn encode_request_publickey(
    out: &mut Vec<u8>,
    user: &str,
    service: &str,
    alg: &str,
    key: &[u8],
    signature: Option<&[u8]>,
) {
    let mut w = Writer::new(out);
    w.u8(msg_no::USERAUTH_REQUEST)
        .string(user.as_bytes())
        .string(service.as_bytes())
        .string(b"publickey")
        .bool(signature.is_some())
        .string(alg.as_bytes())
        .string(key);
    if let Some(sig) = signature {
        w.string(sig);
    }
}

/// Longest method list in a USERAUTH_FAILURE we parse.
pub const MAX_METHOD_LIST_LEN: usize = 1024;

/// USERAUTH_FAILURE (RFC 4252 §5.1): the name-list of methods that can continue (raw, comma
/// separated) and the partial-success flag.
pub fn parse_failure(p: &[u8]) -> Result<(&[u8], bool), DecodeError> {
    let mut r = Reader::new(p);
    r.u8("message number")?;
    let methods = r.string_max("authentications that can continue", MAX_METHOD_LIST_LEN)?;
    let partial = r.bool("partial success")?;
    r.finish("USERAUTH_FAILURE")?;
    Ok((methods, partial))
}

/// Longest banner text kept (OpenSSH's own bound is 64 KiB per packet; we keep 8 KiB).
pub const MAX_BANNER_LEN: usize = 8 * 1024;

/// USERAUTH_BANNER (RFC 4252 §5.4): the message; a longer one is cut, not refused.
pub fn parse_banner(p: &[u8]) -> Result<&[u8], DecodeError> {
    let mut r = Reader::new(p);
    r.u8("message number")?;
    let text = r.string("message")?;
    Ok(text.get(..MAX_BANNER_LEN).unwrap_or(text))
}

/// USERAUTH_PK_OK (RFC 4252 §7): algorithm and key blob echoed from the query.
pub fn parse_pk_ok(p: &[u8]) -> Result<(&[u8], &[u8]), DecodeError> {
    let mut r = Reader::new(p);
    r.u8("message number")?;
    let alg = r.string_max("public key algorithm", MAX_NAME_LEN)?;
    let key = r.string("public key blob")?;
    r.finish("USERAUTH_PK_OK")?;
    Ok((alg, key))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn request(
        user: &str,
        service: &str,
        method: &str,
        rest: impl FnOnce(&mut Writer),
    ) -> Vec<u8> {
        let mut v = Vec::new();
        let mut w = Writer::new(&mut v);
        w.u8(msg_no::USERAUTH_REQUEST)
            .string(user.as_bytes())
            .string(service.as_bytes())
            .string(method.as_bytes());
        rest(&mut w);
        v
    }

    #[test]
    fn parses_each_method() {
        let p = request("bob", "ssh-connection", "none", |_| {});
        assert_eq!(UserauthRequest::parse(&p).unwrap().method, MethodRequest::None);
        let p = request("bob", "ssh-connection", "password", |w| {
            w.bool(false).string(b"pw");
        });
        assert_eq!(
            UserauthRequest::parse(&p).unwrap().method,
            MethodRequest::Password { password: b"pw", change: false }
        );
        let p = request("bob", "ssh-connection", "publickey", |w| {
            w.bool(true).string(b"ssh-ed25519").string(b"KEY").string(b"SIG");
        });
        assert_eq!(
            UserauthRequest::parse(&p).unwrap().method,
            MethodRequest::PublicKey { alg: "ssh-ed25519", key: b"KEY", signature: Some(b"SIG") }
        );
        let p = request("bob", "ssh-connection", "keyboard-interactive", |w| {
            w.string(b"").string(b"");
        });
        assert_eq!(UserauthRequest::parse(&p).unwrap().method, MethodRequest::KeyboardInteractive);
        let p = request("bob", "ssh-connection", "hostbased", |w| {
            w.string(b"whatever");
        });
        assert_eq!(UserauthRequest::parse(&p).unwrap().method, MethodRequest::Other("hostbased"));
    }

    #[test]
    fn bounds_and_trailing_bytes() {
        let long = "u".repeat(MAX_USER_LEN + 1);
        assert!(UserauthRequest::parse(&request(&long, "ssh-connection", "none", |_| {})).is_err());
        let p = request("bob", "ssh-connection", "none", |w| {
            w.u8(0);
        });
        assert!(UserauthRequest::parse(&p).is_err());
        let big = vec![b'x'; MAX_PASSWORD_LEN + 1];
        let p = request("bob", "ssh-connection", "password", |w| {
            w.bool(false).string(&big);
        });
        assert!(UserauthRequest::parse(&p).is_err());
    }

    #[test]
    fn signed_data_layout() {
        let d = publickey_signed_data(b"SID", "u", b"ssh-connection", "ssh-ed25519", b"K");
        let mut r = Reader::new(&d);
        assert_eq!(r.string("sid").unwrap(), b"SID");
        assert_eq!(r.u8("n").unwrap(), 50);
        assert_eq!(r.string("user").unwrap(), b"u");
        assert_eq!(r.string("svc").unwrap(), b"ssh-connection");
        assert_eq!(r.string("m").unwrap(), b"publickey");
        assert!(r.bool("b").unwrap());
        assert_eq!(r.string("alg").unwrap(), b"ssh-ed25519");
        assert_eq!(r.string("key").unwrap(), b"K");
        r.finish("x").unwrap();
    }

    #[test]
    fn info_response_bounds() {
        let mut v = Vec::new();
        Writer::new(&mut v).u8(61).u32(1).string(b"pw");
        assert_eq!(parse_info_response(&v).unwrap(), vec![&b"pw"[..]]);
        let mut v = Vec::new();
        Writer::new(&mut v).u8(61).u32(u32::MAX);
        assert!(parse_info_response(&v).is_err());
    }
}
