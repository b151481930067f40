use super::{DecodeError, NameList, MAX_FIELD_LEN};

/// A borrowing, bounds-checked reader over one message payload.
///
/// Every read checks what is left; length-prefixed fields are capped at [`MAX_FIELD_LEN`] (or a
/// tighter per-call bound) before anything is sliced, so a hostile length costs nothing.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Offset of the next byte within the original buffer.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Takes exactly `n` raw bytes.
    pub fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let left = self.buf.len().saturating_sub(self.pos);
        if n > left {
            return Err(DecodeError::Truncated { field, needed: n, left });
        }
        let out = self.buf.get(self.pos..self.pos + n).ok_or(DecodeError::Truncated {
            field,
            needed: n,
            left,
        })?;
        self.pos += n;
        Ok(out)
    }

    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let b = self.bytes(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        // RFC 4251 §5: any non-zero value is TRUE.
        Ok(self.u8(field)? != 0)
    }

    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array::<4>(field)?))
    }

    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array::<8>(field)?))
    }

    /// An RFC 4251 `string` (uint32 length + bytes), capped at [`MAX_FIELD_LEN`].
    pub fn string(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        self.string_max(field, MAX_FIELD_LEN)
    }

    /// A `string` with a tighter bound than [`MAX_FIELD_LEN`].
    pub fn string_max(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(field)? as usize;
        if len > max {
            return Err(DecodeError::TooLong { field, len, max });
        }
        self.bytes(len, field)
    }

    /// A `string` that must be UTF-8 (RFC 4251 says ISO-10646 UTF-8 for text fields).
    pub fn utf8(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        let b = self.string(field)?;
        std::str::from_utf8(b).map_err(|_| DecodeError::Invalid { field })
    }

    /// A `name-list`: comma-separated US-ASCII names, none empty (RFC 4251 §5).
    pub fn name_list(&mut self, field: &'static str) -> Result<NameList<'a>, DecodeError> {
        let b = self.string(field)?;
        NameList::parse(b, field)
    }

    /// An `mpint` that must be non-negative; returns its big-endian magnitude without the
    /// sign-padding zero byte.
    pub fn mpint_positive(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let b = self.string(field)?;
        match b {
            [] => Ok(b),
            [first, ..] if first & 0x80 != 0 => Err(DecodeError::BadMpint { field }),
            [0, second, ..] if second & 0x80 == 0 => Err(DecodeError::BadMpint { field }),
            [0] => Err(DecodeError::BadMpint { field }),
            [0, rest @ ..] => Ok(rest),
            _ => Ok(b),
        }
    }

    /// Fails unless every byte was consumed.
    pub fn finish(&self, message: &'static str) -> Result<(), DecodeError> {
        let left = self.buf.len().saturating_sub(self.pos);
        if left != 0 {
            return Err(DecodeError::TrailingBytes { message, left });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_primitives_in_order() {
        let buf = [1u8, 0, 0, 0, 7, 0, 0, 0, 2, b'h', b'i', 0];
        let mut r = Reader::new(&buf);
        assert!(r.bool("b").unwrap());
        assert_eq!(r.u32("n").unwrap(), 7);
        assert_eq!(r.string("s").unwrap(), b"hi");
        assert!(!r.bool("b2").unwrap());
        r.finish("m").unwrap();
    }

    #[test]
    fn truncated_and_oversized_lengths_fail_without_allocating() {
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(r.string("s"), Err(DecodeError::TooLong { .. })));
        let mut r = Reader::new(&[0, 0, 0, 9, 1]);
        assert!(matches!(r.string("s"), Err(DecodeError::Truncated { needed: 9, left: 1, .. })));
        let mut r = Reader::new(&[0, 0]);
        assert!(matches!(r.u32("n"), Err(DecodeError::Truncated { .. })));
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let r = Reader::new(&[1]);
        assert!(matches!(r.finish("m"), Err(DecodeError::TrailingBytes { left: 1, .. })));
    }

    #[test]
    fn mpint_rules() {
        let ok = |b: &[u8]| {
            let mut v = (b.len() as u32).to_be_bytes().to_vec();
            v.extend_from_slice(b);
            Reader::new(&v).mpint_positive("x").map(|s| s.to_vec())
        };
        assert_eq!(ok(&[]).unwrap(), Vec::<u8>::new());
        assert_eq!(ok(&[0x7f]).unwrap(), vec![0x7f]);
        assert_eq!(ok(&[0x00, 0x80]).unwrap(), vec![0x80]);
        assert!(ok(&[0x80]).is_err(), "negative");
        assert!(ok(&[0x00, 0x7f]).is_err(), "redundant leading zero");
        assert!(ok(&[0x00]).is_err(), "zero must be empty");
    }
}
