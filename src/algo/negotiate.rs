//! Algorithm negotiation (RFC 4253 §7.1).
