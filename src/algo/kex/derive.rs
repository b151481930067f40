//! Key expansion (RFC 4253 §7.2). STUB.
