//! Diffie-Hellman group exchange (RFC 4419): group choice and the `moduli` file.

use super::dh::{self, DhGroup};
use std::borrow::Cow;

/// Smallest and largest group sizes we serve.
pub const MIN_BITS: u32 = 2048;
pub const MAX_BITS: u32 = 8192;

/// A client's group request: the new form (min, n, max) or the old one (n only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GexRequest {
    New { min: u32, n: u32, max: u32 },
    Old { n: u32 },
}

impl GexRequest {
    /// The raw request bytes as they go into the exchange hash (12 bytes new form, 4 bytes old).
    pub fn hash_bytes(&self, out: &mut Vec<u8>) {
        match *self {
            GexRequest::New { min, n, max } => {
                out.extend_from_slice(&min.to_be_bytes());
                out.extend_from_slice(&n.to_be_bytes());
                out.extend_from_slice(&max.to_be_bytes());
            }
            GexRequest::Old { n } => out.extend_from_slice(&n.to_be_bytes()),
        }
    }

    /// Checks the request's shape: min ≤ n ≤ max, and [min, max] must meet
    /// [`MIN_BITS`, `MAX_BITS`]. The old form is always acceptable (n is clamped).
    pub fn validate(&self) -> Result<(), GexError> {
        match *self {
            GexRequest::New { min, n, max } => {
                if min > n || n > max || min > MAX_BITS || max < MIN_BITS {
                    return Err(GexError::RangeInvalid { min, n, max });
                }
                Ok(())
            }
            GexRequest::Old { .. } => Ok(()),
        }
    }

    /// The range a group must lie in and the size wanted, both within what we serve.
    fn window(&self) -> (u32, u32, u32) {
        match *self {
            GexRequest::New { min, n, max } => {
                let lo = min.max(MIN_BITS);
                let hi = max.min(MAX_BITS);
                (lo, n.clamp(lo, hi.max(lo)), hi)
            }
            GexRequest::Old { n } => (MIN_BITS, n.clamp(MIN_BITS, MAX_BITS), MAX_BITS),
        }
    }
}

/// Why a group request cannot be served (DISCONNECT 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GexError {
    /// min > n or n > max, or the range does not meet [MIN_BITS, MAX_BITS].
    RangeInvalid { min: u32, n: u32, max: u32 },
    /// No group we have lies within [min, max].
    NoGroupInRange { min: u32, max: u32 },
}

/// The set of groups a server offers for group exchange.
#[derive(Debug, Clone)]
pub struct GexGroups {
    pub groups: Vec<DhGroup>,
}

/// `moduli(5)` fields we rely on.
const MODULI_TYPE_SAFE: u32 = 2;
const MODULI_TESTS_COMPOSITE: u32 = 0x01;

impl GexGroups {
    /// The RFC 3526 groups from 2048 to 8192 bits.
    pub fn builtin() -> Self {
        GexGroups {
            groups: [&dh::GROUP14, &dh::GROUP15, &dh::GROUP16, &dh::GROUP17, &dh::GROUP18]
                .into_iter()
                .cloned()
                .collect(),
        }
    }

    /// Parses an OpenSSH `moduli` file: `time type tests tries size generator modulus` per line,
    /// where size is the bit length minus one. Keeps safe primes (type 2) that passed a
    /// primality test and were not marked composite, of 2048..=8192 bits, as OpenSSH does;
    /// other entries are skipped. A malformed line is an error naming its number.
    pub fn from_moduli(text: &str) -> Result<Self, String> {
        let mut groups = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let lineno = i + 1;
            let f: Vec<&str> = line.split_whitespace().collect();
            let [_time, typ, tests, _tries, size, gen, modulus] = f.as_slice() else {
                return Err(format!("moduli line {lineno}: expected 7 fields"));
            };
            let num = |s: &str, what: &str| {
                s.parse::<u32>().map_err(|_| format!("moduli line {lineno}: bad {what}"))
            };
            let (typ, tests, size) = (num(typ, "type")?, num(tests, "tests")?, num(size, "size")?);
            let g = u32::from_str_radix(gen, 16)
                .map_err(|_| format!("moduli line {lineno}: bad generator"))?;
            if typ != MODULI_TYPE_SAFE
                || tests & MODULI_TESTS_COMPOSITE != 0
                || tests & !MODULI_TESTS_COMPOSITE == 0
            {
                continue;
            }
            let bits = size.saturating_add(1);
            if !(MIN_BITS..=MAX_BITS).contains(&bits) {
                continue;
            }
            let p = decode_hex(modulus).ok_or(format!("moduli line {lineno}: bad modulus"))?;
            let first = p.iter().position(|&b| b != 0).unwrap_or(p.len());
            let p = p.get(first..).unwrap_or(&[]).to_vec();
            let real_bits =
                (p.len() * 8).saturating_sub(p.first().map_or(8, |b| b.leading_zeros() as usize));
            if real_bits != bits as usize || g < 2 || p.last().is_none_or(|b| b & 1 == 0) {
                return Err(format!("moduli line {lineno}: modulus does not match its size"));
            }
            groups.push(DhGroup { p: Cow::Owned(p), g, bits: real_bits });
        }
        if groups.is_empty() {
            return Err("moduli: no usable safe-prime group of 2048..8192 bits".into());
        }
        Ok(GexGroups { groups })
    }

    /// The group for a request: the size closest to n within
    /// [max(min, 2048), min(max, 8192)] (ties go to the larger group). The old form clamps n
    /// into [2048, 8192].
    pub fn choose(&self, req: &GexRequest) -> Result<&DhGroup, GexError> {
        req.validate()?;
        let (lo, n, hi) = req.window();
        let best = self
            .groups
            .iter()
            .filter(|g| (lo as usize..=hi as usize).contains(&g.bits))
            .min_by_key(|g| (g.bits.abs_diff(n as usize), std::cmp::Reverse(g.bits)));
        best.ok_or(match *req {
            GexRequest::New { min, max, .. } => GexError::NoGroupInRange { min, max },
            GexRequest::Old { .. } => GexError::NoGroupInRange { min: MIN_BITS, max: MAX_BITS },
        })
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 2 * 1024 + 2 {
        return None;
    }
    let b = s.as_bytes();
    b.chunks_exact(2)
        .map(|c| {
            let hi = (*c.first()? as char).to_digit(16)?;
            let lo = (*c.get(1)? as char).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(min: u32, n: u32, max: u32) -> GexRequest {
        GexRequest::New { min, n, max }
    }

    #[test]
    fn request_validation_table() {
        let g = GexGroups::builtin();
        let bits = |r: GexRequest| g.choose(&r).map(|g| g.bits);
        let invalid = |min, n, max| Err(GexError::RangeInvalid { min, n, max });
        assert_eq!(bits(new(2048, 3072, 8192)), Ok(3072));
        assert_eq!(bits(new(2048, 2048, 2048)), Ok(2048));
        assert_eq!(bits(new(2048, 7000, 8192)), Ok(6144));
        assert_eq!(bits(new(2048, 7200, 8192)), Ok(8192));
        assert_eq!(bits(new(1024, 1024, 8192)), Ok(2048), "n below what we serve is raised");
        assert_eq!(bits(new(4096, 100000, 100000)), Ok(8192), "n above is lowered");
        assert_eq!(bits(new(3000, 3500, 3800)), Ok(3072));
        assert_eq!(
            bits(new(3100, 3500, 4000)),
            Err(GexError::NoGroupInRange { min: 3100, max: 4000 })
        );
        assert_eq!(bits(new(4096, 2048, 8192)), invalid(4096, 2048, 8192), "min > n");
        assert_eq!(bits(new(2048, 8192, 4096)), invalid(2048, 8192, 4096), "n > max");
        assert_eq!(bits(new(9000, 9000, 9000)), invalid(9000, 9000, 9000), "min > 8192");
        assert_eq!(bits(new(1024, 1024, 1536)), invalid(1024, 1024, 1536), "max < 2048");
        assert_eq!(bits(GexRequest::Old { n: 1024 }), Ok(2048));
        assert_eq!(bits(GexRequest::Old { n: 4000 }), Ok(4096));
        assert_eq!(bits(GexRequest::Old { n: u32::MAX }), Ok(8192));
        assert!(GexRequest::Old { n: 0 }.validate().is_ok());
        let mut raw = Vec::new();
        new(1, 2, 3).hash_bytes(&mut raw);
        GexRequest::Old { n: 4 }.hash_bytes(&mut raw);
        assert_eq!(raw, [0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4]);
    }

    #[test]
    fn moduli_file_filtering() {
        let p14 = hex::encode_upper(&*dh::GROUP14.p);
        let p16 = hex::encode_upper(&*dh::GROUP16.p);
        let p1 = hex::encode_upper(&*dh::GROUP1.p);
        let text = format!(
            "# comment\n\n\
             20240101000000 2 6 100 2047 2 {p14}\n\
             20240101000000 2 6 100 4095 5 {p16}\n\
             20240101000000 2 6 100 1023 2 {p1}\n\
             20240101000000 4 6 100 2047 2 {p14}\n\
             20240101000000 2 1 100 2047 2 {p14}\n\
             20240101000000 2 0 100 2047 2 {p14}\n"
        );
        let g = GexGroups::from_moduli(&text).unwrap();
        assert_eq!(g.groups.len(), 2);
        assert_eq!(g.groups[0], dh::GROUP14);
        assert_eq!((g.groups[1].bits, g.groups[1].g), (4096, 5));
        assert!(GexGroups::from_moduli("1 2 6 100 2047 2 ZZ\n").is_err());
        assert!(GexGroups::from_moduli("1 2 6 100\n").is_err());
        assert!(GexGroups::from_moduli(&format!("1 2 6 100 3071 2 {p14}\n")).is_err());
        assert!(GexGroups::from_moduli("# nothing\n").is_err());
        assert!(GexGroups::from_moduli("1 2 6 100 2047 2 0000\n").is_err());
        assert!(GexGroups::from_moduli("1 2 6 100 2047 2 \n").is_err());
    }
}
