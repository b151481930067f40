use super::mpint::write_mpint_bytes;

/// Appends RFC 4251 types to a caller-owned buffer. Used to encode a message once, straight into
/// the slot it is sent from (the outbox leaves room in front for the packet header).
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut Vec<u8>,
}

impl<'a> Writer<'a> {
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        Writer { buf }
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(v as u8)
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }

    /// A `string`. Callers never pass more than a packet's worth, so the u32 cast holds.
    pub fn string(&mut self, v: &[u8]) -> &mut Self {
        let len = u32::try_from(v.len()).unwrap_or(u32::MAX);
        self.u32(len);
        self.raw(v)
    }

    /// A `name-list` from names (joined with commas, no allocation).
    pub fn name_list<'n, I>(&mut self, names: I) -> &mut Self
    where
        I: IntoIterator<Item = &'n str> + Clone,
    {
        let total: usize = names.clone().into_iter().map(|n| n.len() + 1).sum::<usize>();
        let len = total.saturating_sub(1);
        self.u32(u32::try_from(len).unwrap_or(u32::MAX));
        for (i, n) in names.into_iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            self.buf.extend_from_slice(n.as_bytes());
        }
        self
    }

    /// An `mpint` from a non-negative big-endian magnitude.
    pub fn mpint(&mut self, magnitude: &[u8]) -> &mut Self {
        write_mpint_bytes(self.buf, magnitude);
        self
    }

    /// Starts a length-prefixed `string` whose contents are written afterwards; returns the
    /// offset to hand to [`Writer::end_string`].
    pub fn begin_string(&mut self) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        at
    }

    /// Patches the length prefix written by [`Writer::begin_string`].
    pub fn end_string(&mut self, at: usize) {
        let len = self.buf.len().saturating_sub(at + 4);
        let len = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
        if let Some(slot) = self.buf.get_mut(at..at + 4) {
            slot.copy_from_slice(&len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Reader;

    #[test]
    fn round_trip() {
        let mut v = Vec::new();
        let mut w = Writer::new(&mut v);
        w.u8(20).bool(true).u32(5).string(b"abc").name_list(["a", "bc"]).mpint(&[0x80]);
        let at = w.begin_string();
        w.u32(1);
        w.end_string(at);
        let mut r = Reader::new(&v);
        assert_eq!(r.u8("t").unwrap(), 20);
        assert!(r.bool("b").unwrap());
        assert_eq!(r.u32("u").unwrap(), 5);
        assert_eq!(r.string("s").unwrap(), b"abc");
        let nl = r.name_list("n").unwrap();
        assert_eq!(nl.iter().collect::<Vec<_>>(), vec!["a", "bc"]);
        assert_eq!(r.mpint_positive("m").unwrap(), &[0x80]);
        assert_eq!(r.string("inner").unwrap(), &[0, 0, 0, 1]);
        r.finish("m").unwrap();
    }

    #[test]
    fn empty_name_list() {
        let mut v = Vec::new();
        Writer::new(&mut v).name_list(std::iter::empty::<&str>());
        assert_eq!(v, [0, 0, 0, 0]);
    }
}
