//! `zlib` (RFC 4253 §6.2) and `zlib@openssh.com` (openssh PROTOCOL §2.1) streams, via flate2.
//!
//! Each direction has one zlib stream that lives across packets and starts afresh at every
//! NEWKEYS, as OpenSSH does (its `ssh_set_newkeys` re-runs deflateInit/inflateInit for the new
//! keys' compression, so a stream continued across a rekey is "invalid format" to it). Every outgoing payload ends with a partial flush so the peer can inflate it whole;
//! incoming payloads are inflated with a sync flush into a buffer that may never grow past
//! [`MAX_PAYLOAD_LEN`] + 1 bytes, so a compression bomb is an error, not an allocation.

use super::{Compression, PacketError, MAX_PAYLOAD_LEN};
use flate2::{Compress, Decompress, FlushCompress, FlushDecompress, Status};

/// zlib level OpenSSH uses (`Z_DEFAULT_COMPRESSION`).
const LEVEL: u32 = 6;

/// When a direction's negotiated compression is on: `zlib` at once, the delayed form only
/// after user authentication succeeded.
#[derive(Debug, Clone, Copy)]
struct Activation {
    kind: Compression,
    authenticated: bool,
}

impl Activation {
    fn active(self) -> bool {
        match self.kind {
            Compression::None => false,
            Compression::Zlib => true,
            Compression::ZlibDelayed => self.authenticated,
        }
    }
}

/// Outbound stream.
pub(crate) struct Deflater {
    when: Activation,
    stream: Option<Compress>,
}

impl Deflater {
    pub(crate) fn new() -> Self {
        Self { when: Activation { kind: Compression::None, authenticated: false }, stream: None }
    }

    /// New keys (first or rekey): a fresh stream if the kind is active, as the peer restarts
    /// its inflater at NEWKEYS.
    pub(crate) fn set(&mut self, kind: Compression) {
        self.when.kind = kind;
        self.stream = None;
        self.refresh();
    }

    pub(crate) fn auth_succeeded(&mut self) {
        self.when.authenticated = true;
        self.refresh();
    }

    fn refresh(&mut self) {
        if !self.when.active() {
            self.stream = None;
        } else if self.stream.is_none() {
            self.stream = Some(Compress::new(flate2::Compression::new(LEVEL), true));
        }
    }

    pub(crate) fn is_active(&self) -> bool {
        self.stream.is_some()
    }

    /// Compresses `input` into `out` (cleared first), ending with a partial flush (tests and
    /// the decompression fuzz target).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn deflate(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), PacketError> {
        out.clear();
        self.deflate_append(input, out)
    }

    /// Compresses `input` onto the end of `out` (deflate writes straight into its spare
    /// capacity), ending with a partial flush.
    pub(crate) fn deflate_append(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), PacketError> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(PacketError::Compression);
        };
        let base = out.len();
        // Incompressible data grows by a few bytes per 16 KiB block plus the flush marker.
        out.reserve(input.len() + input.len() / 1024 + 64);
        let mut input = input;
        loop {
            let before = stream.total_in();
            stream
                .compress_vec(input, out, FlushCompress::Partial)
                .map_err(|_| PacketError::Compression)?;
            let used = usize::try_from(stream.total_in().wrapping_sub(before))
                .map_err(|_| PacketError::Compression)?;
            input = input.get(used..).ok_or(PacketError::Compression)?;
            // zlib's rule: the flush is complete once a call leaves output space unused.
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(());
            }
            if out.len() - base > 2 * MAX_PAYLOAD_LEN {
                return Err(PacketError::Compression);
            }
            out.reserve(input.len() + 1024);
        }
    }
}

/// Inbound stream.
pub(crate) struct Inflater {
    when: Activation,
    stream: Option<Decompress>,
}

impl Inflater {
    pub(crate) fn new() -> Self {
        Self { when: Activation { kind: Compression::None, authenticated: false }, stream: None }
    }

    /// New keys (first or rekey): a fresh stream, as the peer restarts its deflater.
    pub(crate) fn set(&mut self, kind: Compression) {
        self.when.kind = kind;
        self.stream = None;
        self.refresh();
    }

    pub(crate) fn auth_succeeded(&mut self) {
        self.when.authenticated = true;
        self.refresh();
    }

    fn refresh(&mut self) {
        if !self.when.active() {
            self.stream = None;
        } else if self.stream.is_none() {
            self.stream = Some(Decompress::new(true));
        }
    }

    pub(crate) fn is_active(&self) -> bool {
        self.stream.is_some()
    }

    /// Inflates `input` into `out` (cleared first). More than [`MAX_PAYLOAD_LEN`] bytes of
    /// output, a corrupt stream, or a stream that ends → [`PacketError::Decompression`].
    pub(crate) fn inflate(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), PacketError> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(PacketError::Decompression);
        };
        out.clear();
        let limit = MAX_PAYLOAD_LEN + 1;
        let mut input = input;
        loop {
            if out.len() == out.capacity() {
                if out.len() >= limit {
                    return Err(PacketError::Decompression);
                }
                // Grow geometrically, never past the bound.
                let want = out.capacity().saturating_mul(2).clamp(4096, limit);
                out.reserve_exact(want.saturating_sub(out.len()));
            }
            let (before_in, before_out) = (stream.total_in(), out.len());
            let status = stream
                .decompress_vec(input, out, FlushDecompress::Sync)
                .map_err(|_| PacketError::Decompression)?;
            let used = usize::try_from(stream.total_in().wrapping_sub(before_in))
                .map_err(|_| PacketError::Decompression)?;
            input = input.get(used..).ok_or(PacketError::Decompression)?;
            if out.len() > MAX_PAYLOAD_LEN {
                return Err(PacketError::Decompression);
            }
            // An SSH zlib stream never ends: each packet's data is flushed, not finished.
            if status == Status::StreamEnd {
                return Err(PacketError::Decompression);
            }
            let progressed = used != 0 || out.len() != before_out;
            // All input taken is not the end: miniz_oxide returns once the input is used up
            // even when its window still holds output (highly compressible data), so call
            // again until a call produces nothing.
            if input.is_empty() && !progressed {
                return Ok(());
            }
            if !progressed && out.len() < out.capacity() {
                // Input left that inflate will not take: truncated or corrupt.
                return Err(PacketError::Decompression);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_spans_packets() {
        let mut d = Deflater::new();
        let mut i = Inflater::new();
        d.set(Compression::Zlib);
        i.set(Compression::Zlib);
        let (mut c, mut p) = (Vec::new(), Vec::new());
        for n in 0..5 {
            let msg = format!("hello hello hello {n}").into_bytes();
            d.deflate(&msg, &mut c).unwrap();
            i.inflate(&c, &mut p).unwrap();
            assert_eq!(p, msg);
        }
        // Empty payloads still flush.
        d.deflate(b"", &mut c).unwrap();
        i.inflate(&c, &mut p).unwrap();
        assert!(p.is_empty());
    }

    #[test]
    fn delayed_waits_for_auth_and_restarts_at_rekey() {
        let mut d = Deflater::new();
        d.set(Compression::ZlibDelayed);
        assert!(!d.is_active());
        d.auth_succeeded();
        assert!(d.is_active());
        let mut c = Vec::new();
        d.deflate(b"abc", &mut c).unwrap();
        assert_eq!(d.stream.as_ref().unwrap().total_in(), 3);
        d.set(Compression::ZlibDelayed);
        assert!(d.is_active(), "still authenticated: on at once");
        assert_eq!(d.stream.as_ref().unwrap().total_in(), 0, "a fresh stream after NEWKEYS");
        d.set(Compression::None);
        assert!(!d.is_active());
    }

    #[test]
    fn very_compressible_payloads_inflate_whole() {
        let mut d = Deflater::new();
        let mut i = Inflater::new();
        d.set(Compression::Zlib);
        i.set(Compression::Zlib);
        let (mut c, mut p) = (Vec::new(), Vec::new());
        for n in 0..20u8 {
            let msg: Vec<u8> =
                b"sshfront compresses this line well. ".repeat(900 + n as usize).to_vec();
            d.deflate(&msg, &mut c).unwrap();
            i.inflate(&c, &mut p).unwrap();
            assert_eq!(p, msg, "packet {n}");
        }
    }

    #[test]
    fn bomb_is_refused() {
        let mut c = Compress::new(flate2::Compression::best(), true);
        let zeros = vec![0u8; MAX_PAYLOAD_LEN + 10];
        let mut out = Vec::with_capacity(zeros.len());
        c.compress_vec(&zeros, &mut out, FlushCompress::Sync).unwrap();
        assert!(out.len() < 2048);
        let mut i = Inflater::new();
        i.set(Compression::Zlib);
        let mut p = Vec::new();
        assert_eq!(i.inflate(&out, &mut p), Err(PacketError::Decompression));
        assert!(p.capacity() <= MAX_PAYLOAD_LEN + 1);
    }

    #[test]
    fn garbage_is_refused() {
        let mut i = Inflater::new();
        i.set(Compression::Zlib);
        let mut p = Vec::new();
        assert_eq!(i.inflate(b"\xff\xff\xff\xff", &mut p), Err(PacketError::Decompression));
    }
}
