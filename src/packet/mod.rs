//! RFC 4253 §6 binary packets, opened and sealed in place. STUB API: to be implemented.
//!
//! `PacketOpener` is the inbound half of one connection's packet state, `PacketSealer` the
//! outbound half; each holds its direction's keys, sequence number (wrapping u32) and counters.

use crate::algo::cipher::CipherAlg;
use crate::algo::mac::MacAlg;
use crate::algo::Rng;
use std::fmt;

/// Bytes `PacketSealer::begin` reserves in front of a payload (uint32 length, byte padding).
pub const HEADER_LEN: usize = 5;

/// Largest packet_length we accept or produce (excluding the MAC / tag): 256 KiB.
pub const MAX_PACKET_LEN: usize = 256 * 1024;
/// Largest payload (after inflation) we accept or produce.
pub const MAX_PAYLOAD_LEN: usize = MAX_PACKET_LEN - 5 - 4;

/// Keys for one direction, derived per RFC 4253 §7.2 and installed at NEWKEYS.
pub struct DirectionKeys {
    pub cipher: &'static CipherAlg,
    /// Ignored (and may be `None`) when the cipher is AEAD.
    pub mac: Option<&'static MacAlg>,
    pub key: Vec<u8>,
    pub iv: Vec<u8>,
    pub mac_key: Vec<u8>,
}

/// Compression for one direction (RFC 4253 §6.2, openssh PROTOCOL §2.1 for the delayed form).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    /// `zlib`: active from the NEWKEYS that negotiated it.
    Zlib,
    /// `zlib@openssh.com`: active only once user authentication has succeeded.
    ZlibDelayed,
}

/// Why a packet could not be opened or sealed. Each maps to one DISCONNECT code in
/// `transport::disconnect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketError {
    /// packet_length < 5, > MAX_PACKET_LEN, or not a multiple of the block size → code 2.
    BadLength { len: u32 },
    /// padding_length < 4 or ≥ packet_length → code 2.
    BadPadding { padding: u8, len: u32 },
    /// MAC or AEAD tag mismatch → code 5.
    BadMac,
    /// Inflate failed or the packet would inflate past MAX_PAYLOAD_LEN → code 6.
    Decompression,
    /// Compress failed (should not happen) or payload too large to send.
    Compression,
    /// Payload larger than MAX_PAYLOAD_LEN handed to the sealer (our bug, not the peer's).
    PayloadTooLarge { len: usize },
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacketError::BadLength { len } => write!(f, "bad packet length {len}"),
            PacketError::BadPadding { padding, len } => {
                write!(f, "bad padding length {padding} for packet length {len}")
            }
            PacketError::BadMac => write!(f, "MAC or AEAD tag mismatch"),
            PacketError::Decompression => write!(f, "decompression failed or exceeded the bound"),
            PacketError::Compression => write!(f, "compression failed"),
            PacketError::PayloadTooLarge { len } => write!(f, "payload of {len} bytes too large"),
        }
    }
}

/// Where an opened packet's payload is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadAt {
    /// Decrypted in place: this range of the input buffer.
    Input(std::ops::Range<usize>),
    /// Inflated into the opener's scratch buffer: take it with [`PacketOpener::take_inflated`].
    Inflated,
}

/// One opened packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// Bytes of the input buffer this packet used (header, payload, padding, MAC).
    pub consumed: usize,
    /// This packet's sequence number (before the increment).
    pub seq: u32,
    pub payload: PayloadAt,
}

/// Inbound packet state. STUB.
pub struct PacketOpener {}

impl PacketOpener {
    /// Plaintext state ("none" cipher, no MAC), sequence number 0.
    pub fn new() -> Self {
        todo!()
    }

    /// Installs new keys (the peer's NEWKEYS arrived). Resets any half-decrypted first block.
    pub fn set_keys(&mut self, _keys: DirectionKeys) {
        todo!()
    }

    /// Sets the compression negotiated for this direction (takes effect per its kind).
    pub fn set_compression(&mut self, _c: Compression) {
        todo!()
    }

    /// Turns on `zlib@openssh.com` once authentication succeeded (no-op for other kinds).
    pub fn auth_succeeded(&mut self) {
        todo!()
    }

    /// Opens the packet at the front of `buf`, decrypting it in place.
    ///
    /// `Ok(None)`: not all of it is here yet (the first block stays decrypted and remembered,
    /// so call again with the same bytes at the front plus more). Length and padding are checked
    /// before anything is allocated; MAC / tag in constant time.
    pub fn open(&mut self, _buf: &mut [u8]) -> Result<Option<Opened>, PacketError> {
        todo!()
    }

    /// Takes the inflated payload of the last opened packet (hand it back with
    /// [`PacketOpener::restore_inflated`] so its capacity is reused).
    pub fn take_inflated(&mut self) -> Vec<u8> {
        todo!()
    }

    pub fn restore_inflated(&mut self, _v: Vec<u8>) {
        todo!()
    }

    /// Sequence number of the next packet.
    pub fn seq(&self) -> u32 {
        todo!()
    }

    /// Strict KEX: sequence number back to 0 after NEWKEYS.
    pub fn reset_seq(&mut self) {
        todo!()
    }

    /// Bytes and packets opened since the last key change (for rekey limits).
    pub fn since_rekey(&self) -> (u64, u64) {
        todo!()
    }

    /// Total bytes and packets opened on this connection.
    pub fn totals(&self) -> (u64, u64) {
        todo!()
    }

    /// True once keys other than "none" are installed.
    pub fn is_encrypted(&self) -> bool {
        todo!()
    }
}

/// Outbound packet state. STUB.
pub struct PacketSealer {}

impl PacketSealer {
    pub fn new() -> Self {
        todo!()
    }

    pub fn set_keys(&mut self, _keys: DirectionKeys) {
        todo!()
    }

    pub fn set_compression(&mut self, _c: Compression) {
        todo!()
    }

    pub fn auth_succeeded(&mut self) {
        todo!()
    }

    /// Reserves the packet header at the end of `buf` and returns where this packet starts;
    /// the caller then appends the payload directly after it and calls [`PacketSealer::finish`].
    pub fn begin(&self, _buf: &mut Vec<u8>) -> usize {
        todo!()
    }

    /// Seals the packet begun at `start` (its payload is `buf[start + HEADER..]`): compresses
    /// if on, adds random padding, encrypts and MACs in place, increments the sequence number.
    pub fn finish(
        &mut self,
        _buf: &mut Vec<u8>,
        _start: usize,
        _rng: &mut dyn Rng,
    ) -> Result<(), PacketError> {
        todo!()
    }

    /// Convenience: `begin`, copy `payload`, `finish`.
    pub fn seal(
        &mut self,
        buf: &mut Vec<u8>,
        payload: &[u8],
        rng: &mut dyn Rng,
    ) -> Result<(), PacketError> {
        let start = self.begin(buf);
        buf.extend_from_slice(payload);
        self.finish(buf, start, rng)
    }

    pub fn seq(&self) -> u32 {
        todo!()
    }

    pub fn reset_seq(&mut self) {
        todo!()
    }

    pub fn since_rekey(&self) -> (u64, u64) {
        todo!()
    }

    pub fn totals(&self) -> (u64, u64) {
        todo!()
    }

    pub fn is_encrypted(&self) -> bool {
        todo!()
    }
}
