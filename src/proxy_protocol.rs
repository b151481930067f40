//! PROXY protocol v1 and v2 (HAProxy's spec, parsed with the `ppp` crate) and the CIDR lists
//! that say who may send it, sans-IO.
//!
//! An L4 load balancer (HAProxy `send-proxy`/`send-proxy-v2`, nginx stream `proxy_protocol on`,
//! cloud NLBs) prepends one header naming the real client before any byte of the client's
//! stream. [`parse_header`] looks at the bytes seen so far and says: wait for more, here is the
//! header (its length and the client it names), or refuse. It is bounded before `ppp` sees
//! anything: a v1 line is at most [`V1_MAX_LEN`] bytes (the spec's own limit), a v2 header at
//! most [`V2_MAX_LEN`] bytes in total (the spec allows 16 + 65535; the address block is at most
//! 216 bytes, so this leaves about 800 bytes of TLVs, more than HAProxy sends), so the runtime
//! can peek into one fixed buffer. Peer input never panics here: every slice is checked.

use ppp::v1;
use ppp::v2;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// Longest PROXY v1 line, CRLF included (spec §2.1: "a maximum of 107 characters").
pub const V1_MAX_LEN: usize = 107;
/// Longest v2 header we take, fixed part included; longer ones are refused.
pub const V2_MAX_LEN: usize = 1024;
/// Bytes the runtime must be able to look at to decide (the larger of the two bounds).
pub const MAX_HEADER_LEN: usize = V2_MAX_LEN;

/// The 12-byte v2 signature (spec §2.2).
pub const V2_SIGNATURE: [u8; 12] =
    [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];
const V1_PREFIX: &[u8] = b"PROXY ";
const V2_FIXED_LEN: usize = 16;

/// What the bytes seen so far amount to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A valid header might still arrive: read more (within the timeout).
    Incomplete,
    /// A complete header of `len` bytes. `source`: the client it names; `None` for a LOCAL
    /// command (the balancer's own health check) or an UNKNOWN / unspecified / UNIX family,
    /// where the spec says to use the socket's own peer address.
    Header { len: usize, source: Option<SocketAddr> },
    /// Not a PROXY header, malformed, or too long: close the connection.
    Invalid(&'static str),
}

/// Parses the start of a connection's input. Never consumes anything: on `Header { len, .. }`
/// the caller removes exactly `len` bytes and hands the rest to SSH.
pub fn parse_header(buf: &[u8]) -> Parsed {
    if buf.is_empty() {
        return Parsed::Incomplete;
    }
    if is_prefix_of(buf, &V2_SIGNATURE) {
        return parse_v2(buf);
    }
    if is_prefix_of(buf, V1_PREFIX) {
        return parse_v1(buf);
    }
    Parsed::Invalid("not a PROXY protocol header")
}

/// Whether `buf` and `sig` agree on their common length (a short `buf` may still become `sig`).
fn is_prefix_of(buf: &[u8], sig: &[u8]) -> bool {
    let n = buf.len().min(sig.len());
    buf.get(..n) == sig.get(..n)
}

fn parse_v2(buf: &[u8]) -> Parsed {
    let Some(fixed) = buf.get(..V2_FIXED_LEN) else {
        return Parsed::Incomplete;
    };
    let (Some(&hi), Some(&lo)) = (fixed.get(14), fixed.get(15)) else {
        return Parsed::Incomplete;
    };
    let len = V2_FIXED_LEN + usize::from(u16::from_be_bytes([hi, lo]));
    if len > V2_MAX_LEN {
        return Parsed::Invalid("PROXY v2 header longer than 1024 bytes");
    }
    let Some(header) = buf.get(..len) else {
        return Parsed::Incomplete;
    };
    match v2::Header::try_from(header) {
        Ok(h) => {
            let source = match (h.command, h.addresses) {
                (v2::Command::Local, _) => None,
                (v2::Command::Proxy, v2::Addresses::IPv4(a)) => {
                    Some(SocketAddr::new(IpAddr::V4(a.source_address), a.source_port))
                }
                (v2::Command::Proxy, v2::Addresses::IPv6(a)) => {
                    Some(SocketAddr::new(IpAddr::V6(a.source_address), a.source_port))
                }
                (v2::Command::Proxy, v2::Addresses::Unspecified | v2::Addresses::Unix(_)) => None,
            };
            Parsed::Header { len, source }
        }
        Err(_) => Parsed::Invalid("malformed PROXY v2 header"),
    }
}

fn parse_v1(buf: &[u8]) -> Parsed {
    let window = buf.get(..buf.len().min(V1_MAX_LEN)).unwrap_or(buf);
    let Some(cr) = window.windows(2).position(|w| w == b"\r\n") else {
        if buf.len() >= V1_MAX_LEN {
            return Parsed::Invalid("PROXY v1 line longer than 107 bytes");
        }
        // A bare LF can never become a valid line.
        if window.contains(&b'\n') {
            return Parsed::Invalid("malformed PROXY v1 header");
        }
        return Parsed::Incomplete;
    };
    let len = cr + 2;
    let Some(line) = buf.get(..len) else {
        return Parsed::Incomplete;
    };
    match v1::Header::try_from(line) {
        Ok(h) => {
            let source = match h.addresses {
                v1::Addresses::Tcp4(a) => {
                    Some(SocketAddr::new(IpAddr::V4(a.source_address), a.source_port))
                }
                v1::Addresses::Tcp6(a) => {
                    Some(SocketAddr::new(IpAddr::V6(a.source_address), a.source_port))
                }
                v1::Addresses::Unknown => None,
            };
            Parsed::Header { len, source }
        }
        Err(_) => Parsed::Invalid("malformed PROXY v1 header"),
    }
}

/// An address block such as `10.0.0.0/8` or `fd00::/8` (a bare address means /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `ADDR[/PREFIX]`. Host bits set under the mask are refused: `10.0.0.1/8` is almost
    /// always a typo for something narrower, and silently widening a trust list is worse.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr.parse().map_err(|_| format!("'{s}': not an IP address"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max && !p.starts_with('+') => n,
                _ => return Err(format!("'{s}': prefix length must be 0..={max}")),
            },
        };
        let c = Cidr { net, prefix };
        if c.masked(net) != net {
            return Err(format!("'{s}': host bits set (did you mean {}/{prefix}?)", c.masked(net)));
        }
        Ok(c)
    }

    /// Whether `ip` is inside. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a `[::]`
    /// listener reports for IPv4 clients) matches IPv4 blocks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.net.is_ipv4() && self.masked(ip) == self.net
    }

    fn masked(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(a) => {
                let bits = u32::from(a);
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                IpAddr::V4((bits & mask).into())
            }
            IpAddr::V6(a) => {
                let bits = u128::from(a);
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                IpAddr::V6((bits & mask).into())
            }
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

/// Whether any block in `list` contains `ip`.
pub fn allowed(list: &[Cidr], ip: IpAddr) -> bool {
    list.iter().any(|c| c.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(command: u8, family: u8, addrs: &[u8], tlvs: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | command);
        h.push(family);
        h.extend_from_slice(&((addrs.len() + tlvs.len()) as u16).to_be_bytes());
        h.extend_from_slice(addrs);
        h.extend_from_slice(tlvs);
        h
    }

    fn tcp4_addrs() -> Vec<u8> {
        let mut a = vec![192, 0, 2, 7, 10, 0, 0, 1];
        a.extend_from_slice(&51234u16.to_be_bytes());
        a.extend_from_slice(&22u16.to_be_bytes());
        a
    }

    #[test]
    fn v1_tcp4_tcp6_unknown() {
        let mut input = b"PROXY TCP4 192.0.2.7 10.0.0.1 51234 22\r\nSSH-2.0-x\r\n".to_vec();
        assert_eq!(
            parse_header(&input),
            Parsed::Header { len: 40, source: Some("192.0.2.7:51234".parse().unwrap()) }
        );
        input = b"PROXY TCP6 2001:db8::7 2001:db8::1 4000 22\r\n".to_vec();
        assert_eq!(
            parse_header(&input),
            Parsed::Header {
                len: input.len(),
                source: Some("[2001:db8::7]:4000".parse().unwrap())
            }
        );
        assert_eq!(parse_header(b"PROXY UNKNOWN\r\n"), Parsed::Header { len: 15, source: None });
        // UNKNOWN may carry anything up to the CRLF (spec §2.1).
        let junk = b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\nSSH";
        assert_eq!(parse_header(junk), Parsed::Header { len: 35, source: None });
    }

    #[test]
    fn v2_tcp4_tcp6_local_unspecified_and_tlvs() {
        let h = v2(1, 0x11, &tcp4_addrs(), &[]);
        let mut input = h.clone();
        input.extend_from_slice(b"SSH-2.0-client\r\n");
        assert_eq!(
            parse_header(&input),
            Parsed::Header { len: h.len(), source: Some("192.0.2.7:51234".parse().unwrap()) }
        );

        let mut a6 = Vec::new();
        a6.extend_from_slice(&"2001:db8::7".parse::<std::net::Ipv6Addr>().unwrap().octets());
        a6.extend_from_slice(&"2001:db8::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
        a6.extend_from_slice(&4000u16.to_be_bytes());
        a6.extend_from_slice(&22u16.to_be_bytes());
        let h = v2(1, 0x21, &a6, &[]);
        assert_eq!(
            parse_header(&h),
            Parsed::Header { len: 52, source: Some("[2001:db8::7]:4000".parse().unwrap()) }
        );

        // LOCAL (a health check from the balancer itself): use the socket's peer.
        let h = v2(0, 0x00, &[], &[]);
        assert_eq!(parse_header(&h), Parsed::Header { len: 16, source: None });
        // LOCAL even with addresses present: still the socket's peer.
        let h = v2(0, 0x11, &tcp4_addrs(), &[]);
        assert_eq!(parse_header(&h), Parsed::Header { len: 28, source: None });
        // PROXY with an unspecified family: the socket's peer.
        let h = v2(1, 0x00, &[], &[]);
        assert_eq!(parse_header(&h), Parsed::Header { len: 16, source: None });
        // TLVs (a NOOP of 3 bytes) are skipped, the length covers them.
        let h = v2(1, 0x11, &tcp4_addrs(), &[0x04, 0x00, 0x03, 1, 2, 3]);
        assert!(matches!(parse_header(&h), Parsed::Header { len: 34, source: Some(_) }));
    }

    #[test]
    fn truncated_headers_wait_for_more() {
        let v1 = b"PROXY TCP4 192.0.2.7 10.0.0.1 51234 22\r\n";
        for n in 0..v1.len() {
            assert_eq!(parse_header(&v1[..n]), Parsed::Incomplete, "v1 cut at {n}");
        }
        let h = v2(1, 0x11, &tcp4_addrs(), &[]);
        for n in 0..h.len() {
            assert_eq!(parse_header(&h[..n]), Parsed::Incomplete, "v2 cut at {n}");
        }
    }

    #[test]
    fn garbage_is_refused_at_once() {
        assert!(matches!(parse_header(b"SSH-2.0-OpenSSH_9.6\r\n"), Parsed::Invalid(_)));
        assert!(matches!(parse_header(b"GET / HTTP/1.1\r\n"), Parsed::Invalid(_)));
        assert!(matches!(parse_header(b"\r\n\r\n\x00\r\nXXXX"), Parsed::Invalid(_)));
        assert!(matches!(parse_header(b"PROXY TCP4 nope\r\n"), Parsed::Invalid(_)));
        assert!(matches!(parse_header(b"PROXY TCP4 1.2.3.4\n"), Parsed::Invalid(_)));
        assert!(matches!(
            parse_header(b"PROXY TCP4 192.0.2.7 10.0.0.1 99999 22\r\n"),
            Parsed::Invalid(_)
        ));
        // A v2 signature with a wrong version nibble, or an unknown command.
        let mut h = v2(1, 0x11, &tcp4_addrs(), &[]);
        h[12] = 0x11;
        assert!(matches!(parse_header(&h), Parsed::Invalid(_)));
        h[12] = 0x2F;
        assert!(matches!(parse_header(&h), Parsed::Invalid(_)));
        // TCP4 with a too short address block.
        let h = v2(1, 0x11, &[1, 2, 3], &[]);
        assert!(matches!(parse_header(&h), Parsed::Invalid(_)));
    }

    #[test]
    fn oversize_headers_are_refused_before_they_arrive() {
        let long = format!("PROXY UNKNOWN {}\r\n", "x".repeat(120));
        assert!(matches!(parse_header(long.as_bytes()), Parsed::Invalid(_)));
        assert!(matches!(parse_header(&long.as_bytes()[..V1_MAX_LEN]), Parsed::Invalid(_)));
        // A v2 length field past our bound is refused from the 16 fixed bytes alone.
        let mut fixed = V2_SIGNATURE.to_vec();
        fixed.extend_from_slice(&[0x21, 0x11, 0xFF, 0xFF]);
        assert!(matches!(parse_header(&fixed), Parsed::Invalid(_)));
        // Exactly at the bound is fine.
        let tlv_len = V2_MAX_LEN - 16 - 12 - 3;
        let mut tlv = vec![0x04];
        tlv.extend_from_slice(&(tlv_len as u16).to_be_bytes());
        tlv.resize(3 + tlv_len, 0);
        let h = v2(1, 0x11, &tcp4_addrs(), &tlv);
        assert_eq!(h.len(), V2_MAX_LEN);
        assert!(matches!(parse_header(&h), Parsed::Header { len: V2_MAX_LEN, .. }));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic generator: xorshift over many lengths and both prefixes.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..20_000 {
            let len = (next() % 300) as usize;
            let mut b: Vec<u8> = match i % 3 {
                0 => V2_SIGNATURE.to_vec(),
                1 => V1_PREFIX.to_vec(),
                _ => Vec::new(),
            };
            b.extend((0..len).map(|_| next() as u8));
            if let Parsed::Header { len, .. } = parse_header(&b) {
                assert!(len <= b.len() && len <= MAX_HEADER_LEN);
            }
        }
    }

    #[test]
    fn cidr_v4_v6_and_mapped() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains("10.255.1.2".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.2.3".parse().unwrap()), "v4-mapped v6 matches v4");
        assert!(!c.contains("::1".parse().unwrap()));
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert_eq!(one.to_string(), "127.0.0.1/32");
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        assert!(!all.contains("2001:db8::1".parse().unwrap()));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert!(Cidr::parse("::/0").unwrap().contains("fe80::1".parse().unwrap()));
        assert!(Cidr::parse("::1/128").unwrap().contains("::1".parse().unwrap()));
        let odd = Cidr::parse("192.168.4.0/22").unwrap();
        assert!(odd.contains("192.168.7.255".parse().unwrap()));
        assert!(!odd.contains("192.168.8.0".parse().unwrap()));
        assert!(allowed(&[one, v6], "2001:db8::5".parse().unwrap()));
        assert!(!allowed(&[], "127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn cidr_errors() {
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.1/8",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "10.0.0.0/+8",
            "host/8",
            "1.2.3/8",
            "2001:db8::1/32",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
