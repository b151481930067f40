//! ssh-connection messages (RFC 4254 §4–§7): parsing of what the client sends, encoders for
//! what we send. Parsers borrow from the payload; nothing is copied here.

use crate::wire::{msg_no, DecodeError, Reader, Writer};

/// Longest request or channel type name (RFC 4251 §6).
pub const MAX_NAME_LEN: usize = 64;
/// Longest host or address string we accept (DNS names are ≤ 253).
pub const MAX_HOST_LEN: usize = 255;

/// CHANNEL_OPEN failure reason codes (RFC 4254 §5.1).
pub const OPEN_ADMINISTRATIVELY_PROHIBITED: u32 = 1;
pub const OPEN_CONNECT_FAILED: u32 = 2;
pub const OPEN_UNKNOWN_CHANNEL_TYPE: u32 = 3;
pub const OPEN_RESOURCE_SHORTAGE: u32 = 4;

/// SSH_EXTENDED_DATA_STDERR (RFC 4254 §5.2).
pub const EXTENDED_DATA_STDERR: u32 = 1;

/// The common head of CHANNEL_OPEN; `rest` holds the type-specific fields.
#[derive(Debug, Clone)]
pub struct ChannelOpen<'a> {
    pub channel_type: &'a [u8],
    pub sender: u32,
    pub window: u32,
    pub max_packet: u32,
    pub rest: Reader<'a>,
}

impl<'a> ChannelOpen<'a> {
    pub fn parse(p: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(p);
        r.u8("message number")?;
        let channel_type = r.string_max("channel type", MAX_NAME_LEN)?;
        let sender = r.u32("sender channel")?;
        let window = r.u32("initial window size")?;
        let max_packet = r.u32("maximum packet size")?;
        Ok(ChannelOpen { channel_type, sender, window, max_packet, rest: r })
    }
}

/// A host (or address) and a port, borrowed from the message.
pub type HostPort<'a> = (&'a str, u16);

/// A host:port pair as in direct-tcpip and tcpip-forward; the port must fit 16 bits.
pub fn host_port<'a>(
    r: &mut Reader<'a>,
    field: &'static str,
) -> Result<(&'a str, u16), DecodeError> {
    let host = r.string_max(field, MAX_HOST_LEN)?;
    let host = std::str::from_utf8(host).map_err(|_| DecodeError::Invalid { field })?;
    let port = r.u32("port")?;
    let port = u16::try_from(port).map_err(|_| DecodeError::Invalid { field: "port" })?;
    Ok((host, port))
}

/// direct-tcpip (RFC 4254 §7.2): host to connect, port, originator address, originator port.
pub fn parse_direct_tcpip(mut r: Reader<'_>) -> Result<(HostPort<'_>, HostPort<'_>), DecodeError> {
    let target = host_port(&mut r, "host to connect")?;
    let origin = host_port(&mut r, "originator address")?;
    r.finish("direct-tcpip")?;
    Ok((target, origin))
}

/// GLOBAL_REQUEST head (RFC 4254 §4).
pub fn parse_global_request(p: &[u8]) -> Result<(&[u8], bool, Reader<'_>), DecodeError> {
    let mut r = Reader::new(p);
    r.u8("message number")?;
    let name = r.string_max("request name", MAX_NAME_LEN)?;
    let want_reply = r.bool("want reply")?;
    Ok((name, want_reply, r))
}

/// CHANNEL_REQUEST head (RFC 4254 §5.4).
pub fn parse_channel_request(p: &[u8]) -> Result<(u32, &[u8], bool, Reader<'_>), DecodeError> {
    let mut r = Reader::new(p);
    r.u8("message number")?;
    let recipient = r.u32("recipient channel")?;
    let name = r.string_max("request type", MAX_NAME_LEN)?;
    let want_reply = r.bool("want reply")?;
    Ok((recipient, name, want_reply, r))
}

/// The recipient channel, the first field of every channel message (RFC 4254 §5).
pub fn recipient(p: &[u8]) -> Result<u32, DecodeError> {
    let mut r = Reader::new(p);
    r.u8("message number")?;
    r.u32("recipient channel")
}

pub fn encode_open_confirmation(
    out: &mut Vec<u8>,
    recipient: u32,
    sender: u32,
    window: u32,
    max_packet: u32,
) {
    Writer::new(out)
        .u8(msg_no::CHANNEL_OPEN_CONFIRMATION)
        .u32(recipient)
        .u32(sender)
        .u32(window)
        .u32(max_packet);
}

pub fn encode_open_failure(out: &mut Vec<u8>, recipient: u32, code: u32, text: &str) {
    Writer::new(out)
        .u8(msg_no::CHANNEL_OPEN_FAILURE)
        .u32(recipient)
        .u32(code)
        .string(text.as_bytes())
        .string(b"");
}

pub fn encode_window_adjust(out: &mut Vec<u8>, recipient: u32, n: u32) {
    Writer::new(out).u8(msg_no::CHANNEL_WINDOW_ADJUST).u32(recipient).u32(n);
}

pub fn encode_data(out: &mut Vec<u8>, recipient: u32, data: &[u8]) {
    Writer::new(out).u8(msg_no::CHANNEL_DATA).u32(recipient).string(data);
}

pub fn encode_extended_data(out: &mut Vec<u8>, recipient: u32, code: u32, data: &[u8]) {
    Writer::new(out).u8(msg_no::CHANNEL_EXTENDED_DATA).u32(recipient).u32(code).string(data);
}

pub fn encode_channel_only(out: &mut Vec<u8>, msg: u8, recipient: u32) {
    Writer::new(out).u8(msg).u32(recipient);
}

pub fn encode_exit_status(out: &mut Vec<u8>, recipient: u32, code: u32) {
    Writer::new(out)
        .u8(msg_no::CHANNEL_REQUEST)
        .u32(recipient)
        .string(b"exit-status")
        .bool(false)
        .u32(code);
}

pub fn encode_exit_signal(
    out: &mut Vec<u8>,
    recipient: u32,
    name: &str,
    core_dumped: bool,
    message: &str,
) {
    Writer::new(out)
        .u8(msg_no::CHANNEL_REQUEST)
        .u32(recipient)
        .string(b"exit-signal")
        .bool(false)
        .string(name.as_bytes())
        .bool(core_dumped)
        .string(message.as_bytes())
        .string(b"");
}

/// eow@openssh.com (OpenSSH PROTOCOL §2.1): no more channel data will be read.
pub fn encode_eow(out: &mut Vec<u8>, recipient: u32) {
    Writer::new(out)
        .u8(msg_no::CHANNEL_REQUEST)
        .u32(recipient)
        .string(b"eow@openssh.com")
        .bool(false);
}

pub fn encode_request_success(out: &mut Vec<u8>, port: Option<u32>) {
    let mut w = Writer::new(out);
    w.u8(msg_no::REQUEST_SUCCESS);
    if let Some(p) = port {
        w.u32(p);
    }
}

pub fn encode_request_failure(out: &mut Vec<u8>) {
    out.push(msg_no::REQUEST_FAILURE);
}

pub fn encode_global_request(out: &mut Vec<u8>, name: &str, want_reply: bool) {
    Writer::new(out).u8(msg_no::GLOBAL_REQUEST).string(name.as_bytes()).bool(want_reply);
}

/// CHANNEL_OPEN "forwarded-tcpip" (RFC 4254 §7.2).
pub fn encode_open_forwarded(
    out: &mut Vec<u8>,
    sender: u32,
    window: u32,
    max_packet: u32,
    connected: (&str, u16),
    originator: (&str, u16),
) {
    Writer::new(out)
        .u8(msg_no::CHANNEL_OPEN)
        .string(b"forwarded-tcpip")
        .u32(sender)
        .u32(window)
        .u32(max_packet)
        .string(connected.0.as_bytes())
        .u32(u32::from(connected.1))
        .string(originator.0.as_bytes())
        .u32(u32::from(originator.1));
}

/// CHANNEL_OPEN `auth-agent@openssh.com` (OpenSSH PROTOCOL.agent): no type-specific data.
pub fn encode_open_agent(out: &mut Vec<u8>, sender: u32, window: u32, max_packet: u32) {
    Writer::new(out)
        .u8(msg_no::CHANNEL_OPEN)
        .string(b"auth-agent@openssh.com")
        .u32(sender)
        .u32(window)
        .u32(max_packet);
}

/// Longest Unix socket path we accept (Linux's `sun_path` holds 108 bytes with the NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// A Unix socket path from direct-streamlocal / streamlocal-forward (openssh PROTOCOL §2.4):
/// UTF-8, absolute, no NUL, within `sun_path`.
pub fn socket_path<'a>(r: &mut Reader<'a>, field: &'static str) -> Result<&'a str, DecodeError> {
    let p = r.string_max(field, MAX_HOST_LEN)?;
    let p = std::str::from_utf8(p).map_err(|_| DecodeError::Invalid { field })?;
    Ok(p)
}

/// Whether a socket path may be used at all: absolute, short enough, no NUL, and normalised
/// (no `.` or `..` component, no empty one), so a glob like `/run/app/*.sock` cannot be
/// escaped with `/run/app/../../var/run/docker.sock`.
pub fn socket_path_usable(p: &str) -> bool {
    p.starts_with('/')
        && p.len() <= MAX_SOCKET_PATH
        && !p.contains('\0')
        && p.split('/').skip(1).all(|c| !c.is_empty() && c != "." && c != "..")
}

/// direct-streamlocal@openssh.com: socket path, reserved string, reserved uint32.
pub fn parse_direct_streamlocal(mut r: Reader<'_>) -> Result<&str, DecodeError> {
    let path = socket_path(&mut r, "socket path")?;
    r.string_max("reserved", MAX_HOST_LEN)?;
    r.u32("reserved")?;
    r.finish("direct-streamlocal")?;
    Ok(path)
}

/// CHANNEL_OPEN "forwarded-streamlocal@openssh.com" (openssh PROTOCOL §2.4): the listening
/// socket's path and a reserved string.
pub fn encode_open_forwarded_streamlocal(
    out: &mut Vec<u8>,
    sender: u32,
    window: u32,
    max_packet: u32,
    path: &str,
) {
    Writer::new(out)
        .u8(msg_no::CHANNEL_OPEN)
        .string(b"forwarded-streamlocal@openssh.com")
        .u32(sender)
        .u32(window)
        .u32(max_packet)
        .string(path.as_bytes())
        .string(b"");
}

/// CHANNEL_OPEN_CONFIRMATION (RFC 4254 §5.1): recipient, sender, initial window, max packet.
pub fn parse_open_confirmation(p: &[u8]) -> Result<(u32, u32, u32, u32), DecodeError> {
    let mut r = Reader::new(p);
    r.u8("message number")?;
    let id = r.u32("recipient channel")?;
    let sender = r.u32("sender channel")?;
    let window = r.u32("initial window size")?;
    let max_packet = r.u32("maximum packet size")?;
    r.finish("CHANNEL_OPEN_CONFIRMATION")?;
    Ok((id, sender, window, max_packet))
}

/// CHANNEL_OPEN_FAILURE (RFC 4254 §5.1): recipient, reason code, description (language tag
/// ignored).
pub fn parse_open_failure(p: &[u8]) -> Result<(u32, u32, &[u8]), DecodeError> {
    let mut r = Reader::new(p);
    r.u8("message number")?;
    let id = r.u32("recipient channel")?;
    let code = r.u32("reason code")?;
    let text = r.string("description")?;
    Ok((id, code, text))
}

/// CHANNEL_WINDOW_ADJUST (RFC 4254 §5.2): recipient, bytes to add.
pub fn parse_window_adjust(p: &[u8]) -> Result<(u32, u32), DecodeError> {
    let mut r = Reader::new(p);
    r.u8("message number")?;
    let id = r.u32("recipient channel")?;
    let n = r.u32("bytes to add")?;
    r.finish("CHANNEL_WINDOW_ADJUST")?;
    Ok((id, n))
}

/// CHANNEL_DATA or, with `extended`, CHANNEL_EXTENDED_DATA (RFC 4254 §5.2): recipient, data
/// type code (0 for plain data), the data borrowed from the payload.
pub fn parse_data(p: &[u8], extended: bool) -> Result<(u32, u32, &[u8]), DecodeError> {
    let mut r = Reader::new(p);
    r.u8("message number")?;
    let id = r.u32("recipient channel")?;
    let code = if extended { r.u32("data type code")? } else { 0 };
    let data = r.string("data")?;
    r.finish("channel data")?;
    Ok((id, code, data))
}

/// CHANNEL_OPEN "session" (RFC 4254 §6.1).
pub fn encode_open_session(out: &mut Vec<u8>, sender: u32, window: u32, max_packet: u32) {
    Writer::new(out)
        .u8(msg_no::CHANNEL_OPEN)
        .string(b"session")
        .u32(sender)
        .u32(window)
        .u32(max_packet);
}

/// CHANNEL_OPEN "direct-tcpip" (RFC 4254 §7.2).
pub fn encode_open_direct_tcpip(
    out: &mut Vec<u8>,
    sender: u32,
    window: u32,
    max_packet: u32,
    target: (&str, u16),
    originator: (&str, u16),
) {
    Writer::new(out)
        .u8(msg_no::CHANNEL_OPEN)
        .string(b"direct-tcpip")
        .u32(sender)
        .u32(window)
        .u32(max_packet)
        .string(target.0.as_bytes())
        .u32(u32::from(target.1))
        .string(originator.0.as_bytes())
        .u32(u32::from(originator.1));
}

/// CHANNEL_OPEN "direct-streamlocal@openssh.com" (OpenSSH PROTOCOL §2.4): the socket path,
/// then the reserved string and uint32.
pub fn encode_open_direct_streamlocal(
    out: &mut Vec<u8>,
    sender: u32,
    window: u32,
    max_packet: u32,
    path: &str,
) {
    Writer::new(out)
        .u8(msg_no::CHANNEL_OPEN)
        .string(b"direct-streamlocal@openssh.com")
        .u32(sender)
        .u32(window)
        .u32(max_packet)
        .string(path.as_bytes())
        .string(b"")
        .u32(0);
}

/// The head of a CHANNEL_REQUEST; the caller appends the type-specific fields.
pub fn channel_request_head<'o>(
    out: &'o mut Vec<u8>,
    recipient: u32,
    name: &str,
    want_reply: bool,
) -> Writer<'o> {
    let mut w = Writer::new(out);
    w.u8(msg_no::CHANNEL_REQUEST).u32(recipient).string(name.as_bytes()).bool(want_reply);
    w
}

/// A terminal size in characters and pixels (pty-req, window-change; RFC 4254 §6.2, §6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WinSize {
    pub cols: u32,
    pub rows: u32,
    pub width_px: u32,
    pub height_px: u32,
}

/// Longest TERM value and encoded terminal modes we accept in a pty-req.
pub const MAX_TERM_LEN: usize = 256;
pub const MAX_TERM_MODES_LEN: usize = 4096;

/// A parsed pty-req body (after `want reply`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtyReq<'a> {
    pub term: &'a [u8],
    pub size: WinSize,
    pub modes: &'a [u8],
}

/// pty-req body (RFC 4254 §6.2), `r` positioned after `want reply`.
pub fn parse_pty_req(mut r: Reader<'_>) -> Result<PtyReq<'_>, DecodeError> {
    let term = r.string_max("TERM", MAX_TERM_LEN)?;
    let size = parse_win_size(&mut r)?;
    let modes = r.string_max("terminal modes", MAX_TERM_MODES_LEN)?;
    r.finish("pty-req")?;
    Ok(PtyReq { term, size, modes })
}

/// The encoded terminal modes of a pty-req (RFC 4254 §8), re-encoded from what is well
/// formed: opcodes 1..=159 with their uint32 argument, in order, then TTY_OP_END. Parsing
/// stops at TTY_OP_END, at an opcode of 160 or more (their arguments are undefined, so
/// nothing after them can be read) and at a truncated argument. Empty input stays empty (no
/// modes). The input is bounded by [`MAX_TERM_MODES_LEN`], and so is the output.
pub fn terminal_modes(raw: &[u8]) -> Vec<u8> {
    if raw.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(raw.len().min(MAX_TERM_MODES_LEN) + 1);
    for op in raw.chunks(5) {
        match op {
            [code @ 1..=159, a, b, c, d] => out.extend_from_slice(&[*code, *a, *b, *c, *d]),
            _ => break,
        }
    }
    out.push(0);
    out
}

/// window-change body (RFC 4254 §6.7), `r` positioned after `want reply`.
pub fn parse_window_change(mut r: Reader<'_>) -> Result<WinSize, DecodeError> {
    let size = parse_win_size(&mut r)?;
    r.finish("window-change")?;
    Ok(size)
}

fn parse_win_size(r: &mut Reader<'_>) -> Result<WinSize, DecodeError> {
    Ok(WinSize {
        cols: r.u32("terminal width")?,
        rows: r.u32("terminal height")?,
        width_px: r.u32("terminal width, pixels")?,
        height_px: r.u32("terminal height, pixels")?,
    })
}

/// exit-signal body (RFC 4254 §6.10), `r` positioned after `want reply`: signal name (without
/// "SIG"), core dumped, error message.
pub fn parse_exit_signal(mut r: Reader<'_>) -> Result<(&[u8], bool, &[u8]), DecodeError> {
    let name = r.string_max("signal name", MAX_NAME_LEN)?;
    let core = r.bool("core dumped")?;
    let text = r.string_max("error message", 1024)?;
    r.string_max("language tag", MAX_NAME_LEN)?;
    r.finish("exit-signal")?;
    Ok((name, core, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_paths_must_be_normalised() {
        assert!(socket_path_usable("/run/app/db.sock"));
        assert!(!socket_path_usable("run/app/db.sock"), "relative");
        assert!(!socket_path_usable("/run/app/../../var/run/docker.sock"));
        assert!(!socket_path_usable("/run/app/./db.sock"));
        assert!(!socket_path_usable("/run//db.sock"));
        assert!(!socket_path_usable("/run/app/"));
        assert!(!socket_path_usable(&format!("/{}", "a".repeat(MAX_SOCKET_PATH))));
    }

    #[test]
    fn terminal_modes_keep_the_well_formed_prefix() {
        assert!(terminal_modes(&[]).is_empty(), "no modes stay none");
        // VINTR=3, ECHO=0, then TTY_OP_END and junk after it.
        let m = [1, 0, 0, 0, 3, 53, 0, 0, 0, 0, 0, 9, 9];
        assert_eq!(terminal_modes(&m), m[..11]);
        // A truncated argument and an opcode of 160+ end the list (then TTY_OP_END).
        assert_eq!(terminal_modes(&[53, 0, 0, 0, 1, 50, 0, 0]), [53, 0, 0, 0, 1, 0]);
        assert_eq!(terminal_modes(&[160, 1, 2, 3, 4, 53, 0, 0, 0, 1]), [0]);
        // Bounded by the input.
        let long = [53u8, 0, 0, 0, 1].repeat(MAX_TERM_MODES_LEN / 5 + 10);
        assert!(terminal_modes(&long).len() <= long.len() + 1);
    }

    #[test]
    fn exit_signal_carries_core_dump_and_message() {
        let mut v = Vec::new();
        encode_exit_signal(&mut v, 3, "SEGV", true, "Segmentation fault");
        let (_, name, want_reply, r) = parse_channel_request(&v).unwrap();
        assert_eq!((name, want_reply), (&b"exit-signal"[..], false));
        let (sig, core, msg) = parse_exit_signal(r).unwrap();
        assert_eq!((sig, core, msg), (&b"SEGV"[..], true, &b"Segmentation fault"[..]));
    }

    #[test]
    fn direct_tcpip_port_must_fit() {
        let mut v = Vec::new();
        Writer::new(&mut v).u8(90).string(b"direct-tcpip").u32(1).u32(10).u32(10);
        Writer::new(&mut v).string(b"h").u32(70000).string(b"o").u32(1);
        let o = ChannelOpen::parse(&v).unwrap();
        assert!(parse_direct_tcpip(o.rest).is_err());
    }
}
