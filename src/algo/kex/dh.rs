//! Finite-field Diffie-Hellman groups (RFC 3526, RFC 2409 group 2 as "group1"). STUB.

/// A safe-prime group. `p` is big-endian without leading zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhGroup {
    pub p: std::borrow::Cow<'static, [u8]>,
    pub g: u32,
    /// Size of p in bits.
    pub bits: usize,
}
