//! `mpint` encoding (RFC 4251 §5): two's complement, big-endian, minimal length.

/// Encoded length (including the 4-byte prefix) of a non-negative magnitude.
pub fn mpint_encoded_len(magnitude: &[u8]) -> usize {
    let m = strip_leading_zeros(magnitude);
    let pad = usize::from(m.first().is_some_and(|b| b & 0x80 != 0));
    4 + pad + m.len()
}

/// Appends `magnitude` (big-endian, non-negative, leading zeros allowed) as an `mpint`.
pub fn write_mpint_bytes(out: &mut Vec<u8>, magnitude: &[u8]) {
    let m = strip_leading_zeros(magnitude);
    let pad = m.first().is_some_and(|b| b & 0x80 != 0);
    let len = m.len() + usize::from(pad);
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    if pad {
        out.push(0);
    }
    out.extend_from_slice(m);
}

fn strip_leading_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b.get(first..).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    // Examples from RFC 4251 §5.
    #[test]
    fn rfc4251_examples() {
        let enc = |m: &[u8]| {
            let mut v = Vec::new();
            write_mpint_bytes(&mut v, m);
            assert_eq!(v.len(), mpint_encoded_len(m));
            v
        };
        assert_eq!(enc(&[]), [0, 0, 0, 0]);
        assert_eq!(enc(&[0, 0]), [0, 0, 0, 0]);
        assert_eq!(
            enc(&[0x09, 0xa3, 0x78, 0xf9, 0xb2, 0xe3, 0x32, 0xa7]),
            [0, 0, 0, 8, 0x09, 0xa3, 0x78, 0xf9, 0xb2, 0xe3, 0x32, 0xa7]
        );
        assert_eq!(enc(&[0x80]), [0, 0, 0, 2, 0, 0x80]);
    }
}
