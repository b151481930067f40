//! Diffie-Hellman group exchange (RFC 4419): group choice and the `moduli` file. STUB.

use super::dh::DhGroup;

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

impl GexGroups {
    /// STUB: chooses the group for a request.
    pub fn choose(&self, _req: &GexRequest) -> Result<&DhGroup, GexError> {
        todo!()
    }
}

impl GexGroups {
    /// STUB.
    pub fn builtin() -> Self {
        todo!()
    }
}
