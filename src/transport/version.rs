//! Version exchange (RFC 4253 §4.2): our identification line, and the peer's, read with bounds.
//!
//! The peer's line is kept exactly (minus CR LF) because it goes into the exchange hash. Twisted
//! Conch buffered a peer that never sent a newline without limit (CVE-2022-21716); here the line
//! is capped at 255 bytes and, in the client role, the lines a server may send before it are
//! capped too. The bound counts banner bytes only, never packet bytes that follow in the same read.

/// RFC 4253 §4.2: the maximum length of the identification line, CR LF included.
pub const MAX_VERSION_LINE: usize = 255;
/// Client role: bound on the other lines a server may send before its identification.
pub const MAX_PRE_BANNER_BYTES: usize = 8 * 1024;
pub const MAX_PRE_BANNER_LINES: usize = 64;

/// What scanning the input for the peer's identification found.
#[derive(Debug, PartialEq, Eq)]
pub enum VersionScan {
    /// Not complete yet; nothing consumed (call again with more bytes).
    NeedMore,
    /// The identification line is `input[start..end]` (without CR LF); `consumed` counts up to
    /// and including its LF.
    Found { start: usize, end: usize, consumed: usize, skipped_lines: usize },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionError {
    /// No LF within 255 bytes of a line's start, or too much before the identification.
    TooLong,
    /// The line starts with `SSH-` but names a protocol version we do not speak.
    Unsupported(String),
    /// Server role: the first line is not an SSH identification at all (e.g. `GET / HTTP/1.1`).
    NotSsh(String),
    /// The line contains a NUL or other bytes RFC 4253 §4.2 forbids.
    Malformed,
}

/// Scans `input` for the peer's identification line.
///
/// `allow_pre_banner`: client role — a server may send other lines first (RFC 4253 §4.2).
pub fn scan(input: &[u8], allow_pre_banner: bool) -> Result<VersionScan, VersionError> {
    let mut start = 0usize;
    let mut skipped = 0usize;
    loop {
        let rest = input.get(start..).unwrap_or(&[]);
        let window = rest.get(..MAX_VERSION_LINE).unwrap_or(rest);
        let Some(lf) = window.iter().position(|&b| b == b'\n') else {
            if window.len() >= MAX_VERSION_LINE {
                return Err(VersionError::TooLong);
            }
            // A server role peer that sent a few bytes that already cannot be "SSH-" need not be
            // waited for.
            if !allow_pre_banner
                && !b"SSH-".starts_with(window.get(..4.min(window.len())).unwrap_or(&[]))
            {
                return Err(VersionError::NotSsh(printable(window)));
            }
            return Ok(VersionScan::NeedMore);
        };
        let line = window.get(..lf).unwrap_or(&[]);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.starts_with(b"SSH-") {
            if line.contains(&0) {
                return Err(VersionError::Malformed);
            }
            return Ok(VersionScan::Found {
                start,
                end: start + line.len(),
                consumed: start + lf + 1,
                skipped_lines: skipped,
            });
        }
        if !allow_pre_banner {
            return Err(VersionError::NotSsh(printable(line)));
        }
        skipped += 1;
        start += lf + 1;
        if start > MAX_PRE_BANNER_BYTES || skipped > MAX_PRE_BANNER_LINES {
            return Err(VersionError::TooLong);
        }
    }
}

/// Checks the protocol version of a complete identification line (`SSH-protoversion-…`).
pub fn check_protocol(line: &[u8], accept_1_99: bool) -> Result<(), VersionError> {
    let ok = line.starts_with(b"SSH-2.0-") || (accept_1_99 && line.starts_with(b"SSH-1.99-"));
    if ok {
        Ok(())
    } else {
        Err(VersionError::Unsupported(printable(line)))
    }
}

/// Our identification line, CR LF included.
pub fn our_line(software_version: &str, comment: Option<&str>) -> Vec<u8> {
    let mut v = Vec::with_capacity(64);
    v.extend_from_slice(b"SSH-2.0-");
    // RFC 4253 §4.2: printable US-ASCII without '-' or whitespace.
    v.extend(software_version.bytes().filter(|b| b.is_ascii_graphic() && *b != b'-'));
    if let Some(c) = comment {
        v.push(b' ');
        v.extend(c.bytes().filter(|b| (0x20..0x7f).contains(b)));
    }
    v.truncate(MAX_VERSION_LINE - 2);
    v.extend_from_slice(b"\r\n");
    v
}

/// A log-safe rendering of peer bytes (printable ASCII, capped at 80 characters).
pub fn printable(b: &[u8]) -> String {
    printable_max(b, 80)
}

/// Printable ASCII rendering of peer bytes, capped at `max` characters.
pub fn printable_max(b: &[u8], max: usize) -> String {
    b.iter().take(max).map(|&c| if (0x20..0x7f).contains(&c) { c as char } else { '?' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(input: &[u8], pre: bool) -> (Vec<u8>, usize) {
        match scan(input, pre).unwrap() {
            VersionScan::Found { start, end, consumed, .. } => {
                (input[start..end].to_vec(), consumed)
            }
            VersionScan::NeedMore => panic!("need more"),
        }
    }

    #[test]
    fn our_line_is_crlf_terminated_and_clean() {
        let l = our_line("sshfront_0.1-x y", Some("hi"));
        assert_eq!(l, b"SSH-2.0-sshfront_0.1xy hi\r\n");
    }

    #[test]
    fn crlf_and_lf_alone_accepted_and_trailing_spaces_kept() {
        assert_eq!(found(b"SSH-2.0-x\r\nrest", false), (b"SSH-2.0-x".to_vec(), 11));
        assert_eq!(found(b"SSH-2.0-x\nrest", false), (b"SSH-2.0-x".to_vec(), 10));
        assert_eq!(found(b"SSH-2.0-x  \r\n", false).0, b"SSH-2.0-x  ".to_vec());
    }

    #[test]
    fn versions() {
        assert!(check_protocol(b"SSH-2.0-OpenSSH_9.2", true).is_ok());
        assert!(check_protocol(b"SSH-1.99-Old", true).is_ok());
        assert!(check_protocol(b"SSH-1.99-Old", false).is_err());
        assert!(check_protocol(b"SSH-1.5-Old", true).is_err());
        assert!(check_protocol(b"SSH-3.0-New", true).is_err());
    }

    #[test]
    fn http_is_not_ssh_and_is_refused_early() {
        assert!(matches!(scan(b"GET / HTTP/1.1\r\n", false), Err(VersionError::NotSsh(_))));
        assert!(matches!(scan(b"GET", false), Err(VersionError::NotSsh(_))));
        assert_eq!(scan(b"SS", false).unwrap(), VersionScan::NeedMore);
    }

    #[test]
    fn line_without_newline_is_cut_at_the_bound() {
        let mut v = b"SSH-2.0-".to_vec();
        v.resize(254, b'a');
        assert_eq!(scan(&v, false).unwrap(), VersionScan::NeedMore);
        v.push(b'a');
        assert_eq!(scan(&v, false), Err(VersionError::TooLong));
    }

    #[test]
    fn packet_bytes_after_the_banner_do_not_count_against_it() {
        let mut v = b"SSH-2.0-x\r\n".to_vec();
        v.extend(std::iter::repeat_n(0u8, 100_000));
        assert_eq!(found(&v, false).1, 11);
    }

    #[test]
    fn client_role_skips_bounded_pre_banner_lines() {
        let (line, consumed) = found(b"hello\r\nworld\nSSH-2.0-s\r\n", true);
        assert_eq!(line, b"SSH-2.0-s");
        assert_eq!(consumed, 24);
        let many = "x\n".repeat(100);
        assert_eq!(scan(many.as_bytes(), true), Err(VersionError::TooLong));
    }
}
