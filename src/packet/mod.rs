//! RFC 4253 §6 binary packets, opened and sealed in place.
//!
//! `PacketOpener` is the inbound half of one connection's packet state, `PacketSealer` the
//! outbound half; each holds its direction's keys, sequence number (wrapping u32) and counters.
//!
//! ```text
//! uint32    packet_length     (encrypted, except for -etm MACs and AES-GCM)
//! byte      padding_length
//! byte[n1]  payload           n1 = packet_length - padding_length - 1
//! byte[n2]  random padding    n2 = padding_length ≥ 4
//! byte[m]   mac / tag
//! ```
//! Four framings follow from the keys (see [`Framing`]): plaintext before the first NEWKEYS,
//! encrypt-and-MAC, encrypt-then-MAC (`-etm@openssh.com`) and AEAD (GCM, chacha20-poly1305).

pub(crate) mod compress;
mod open;
mod seal;

use crate::algo::cipher::{CipherAlg, KeyLenError, OpeningCipher, SealingCipher};
use crate::algo::mac::{MacAlg, MacKey};
use crate::algo::Rng;
use std::fmt;

/// Bytes [`PacketSealer::begin`] reserves in front of the payload: uint32 packet_length and
/// byte padding_length.
pub const HEADER: usize = 5;
/// RFC 4253 §6: "There MUST be at least four bytes of padding."
pub const MIN_PADDING: usize = 4;
/// Alias used by the transport.
pub const HEADER_LEN: usize = HEADER;

/// Largest packet_length we accept or produce (excluding the MAC / tag): 256 KiB.
pub const MAX_PACKET_LEN: usize = 256 * 1024;
/// Largest payload (after inflation) we accept or produce.
pub const MAX_PAYLOAD_LEN: usize = MAX_PACKET_LEN - 5 - 4;

/// Keys for one direction, derived per RFC 4253 §7.2 and installed at NEWKEYS.
///
/// `key`, `iv` and `mac_key` must be at least the algorithm's `key_len` / `iv_len` /
/// `mac.key_len` bytes; longer ones are cut to that length.
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
    /// Inflated into the opener's scratch buffer: borrow it with [`PacketOpener::inflated`] or
    /// take it with [`PacketOpener::take_inflated`].
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

/// How a direction frames packets, fixed by its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Before the first NEWKEYS: no cipher, no MAC, block 8.
    Plain,
    /// MAC over seq ‖ plaintext packet; packet_length encrypted with the rest.
    EncryptAndMac,
    /// `-etm@openssh.com`: packet_length in clear, MAC over seq ‖ length ‖ ciphertext.
    EncryptThenMac,
    /// GCM or chacha20-poly1305: the tag replaces the MAC.
    Aead,
}

/// What both halves derive from a [`DirectionKeys`].
#[derive(Debug, Clone, Copy)]
struct Params {
    framing: Framing,
    /// max(8, cipher block): what padding aligns to (RFC 4253 §6).
    align: usize,
    /// MAC or tag bytes after the packet.
    tag_len: usize,
}

impl Params {
    const PLAIN: Params = Params { framing: Framing::Plain, align: 8, tag_len: 0 };

    fn new(cipher: &CipherAlg, mac: Option<&MacAlg>) -> Params {
        let align = cipher.block_size.max(8);
        if let Some(tag_len) = cipher.aead_tag_len {
            return Params { framing: Framing::Aead, align, tag_len };
        }
        match mac {
            Some(m) if m.etm => {
                Params { framing: Framing::EncryptThenMac, align, tag_len: m.out_len }
            }
            Some(m) => Params { framing: Framing::EncryptAndMac, align, tag_len: m.out_len },
            None if cipher.is_none() => Params { align, ..Params::PLAIN },
            None => Params { framing: Framing::EncryptAndMac, align, tag_len: 0 },
        }
    }

    /// For -etm and AEAD the length is outside what is encrypted and padded.
    fn length_in_clear(self) -> bool {
        matches!(self.framing, Framing::EncryptThenMac | Framing::Aead)
    }
}

/// Keys installed for one direction, or the reason none could be.
enum Keyed<C> {
    Ok {
        cipher: C,
        mac: Option<MacKey>,
        encrypted: bool,
    },
    /// Key material too short (our derivation's bug): every later packet fails rather than
    /// travel with weak or no protection.
    Broken,
}

fn key_direction<C>(
    keys: &DirectionKeys,
    make: impl FnOnce(&'static CipherAlg, &[u8], &[u8]) -> Result<C, KeyLenError>,
) -> Result<(Keyed<C>, Params), KeyLenError> {
    let cipher = make(keys.cipher, &keys.key, &keys.iv)?;
    let mac_alg = if keys.cipher.is_aead() { None } else { keys.mac };
    let mac = match mac_alg {
        Some(m) => Some(m.key(&keys.mac_key).ok_or(KeyLenError)?),
        None => None,
    };
    let params = Params::new(keys.cipher, mac_alg);
    Ok((Keyed::Ok { cipher, mac, encrypted: !keys.cipher.is_none() }, params))
}

/// Bytes and packets, on the wire (header, payload, padding, MAC).
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    bytes: u64,
    packets: u64,
}

impl Counters {
    fn add(&mut self, bytes: usize) {
        self.bytes = self.bytes.saturating_add(bytes as u64);
        self.packets = self.packets.saturating_add(1);
    }

    fn pair(self) -> (u64, u64) {
        (self.bytes, self.packets)
    }
}

/// Inbound packet state.
pub struct PacketOpener {
    keyed: Keyed<OpeningCipher>,
    params: Params,
    seq: u32,
    /// packet_length of a packet whose first bytes were already read (and, for CTR without
    /// -etm, decrypted in place) by an earlier call that then lacked the rest.
    pending_len: Option<u32>,
    inflater: compress::Inflater,
    inflated: Vec<u8>,
    since_rekey: Counters,
    total: Counters,
}

impl Default for PacketOpener {
    fn default() -> Self {
        Self::new()
    }
}

impl PacketOpener {
    /// Plaintext state ("none" cipher, no MAC), sequence number 0.
    pub fn new() -> Self {
        Self {
            keyed: Keyed::Ok { cipher: OpeningCipher::None, mac: None, encrypted: false },
            params: Params::PLAIN,
            seq: 0,
            pending_len: None,
            inflater: compress::Inflater::new(),
            inflated: Vec::new(),
            since_rekey: Counters::default(),
            total: Counters::default(),
        }
    }

    /// Installs new keys (the peer's NEWKEYS arrived). Resets any half-decrypted first block.
    /// Key material shorter than the algorithms need leaves the direction broken: every later
    /// [`PacketOpener::open`] fails with `BadMac` (use [`PacketOpener::try_set_keys`] to see it).
    pub fn set_keys(&mut self, keys: DirectionKeys) {
        if self.try_set_keys(keys).is_err() {
            self.keyed = Keyed::Broken;
        }
    }

    /// [`PacketOpener::set_keys`] that reports short key material (state unchanged then).
    pub fn try_set_keys(&mut self, keys: DirectionKeys) -> Result<(), KeyLenError> {
        let (keyed, params) = key_direction(&keys, CipherAlg::opening)?;
        self.keyed = keyed;
        self.params = params;
        self.pending_len = None;
        self.since_rekey = Counters::default();
        Ok(())
    }

    /// Sets the compression negotiated for this direction (takes effect per its kind).
    pub fn set_compression(&mut self, c: Compression) {
        self.inflater.set(c);
    }

    /// Turns on `zlib@openssh.com` once authentication succeeded (no-op for other kinds).
    pub fn auth_succeeded(&mut self) {
        self.inflater.auth_succeeded();
    }

    /// Opens the packet at the front of `buf`, decrypting it in place.
    ///
    /// `Ok(None)`: not all of it is here yet (the first block stays decrypted and remembered,
    /// so call again with the same bytes at the front plus more). Length and padding are checked
    /// before anything is allocated; MAC / tag in constant time.
    pub fn open(&mut self, buf: &mut [u8]) -> Result<Option<Opened>, PacketError> {
        self.open_packet(buf)
    }

    /// Memory held for decompression output (its capacity), for the global memory budget.
    pub fn held_bytes(&self) -> usize {
        self.inflated.capacity()
    }

    /// Takes the inflated payload of the last opened packet (hand it back with
    /// [`PacketOpener::restore_inflated`] so its capacity is reused).
    pub fn take_inflated(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.inflated)
    }

    /// Puts the payload back unchanged, so a later reader of the same packet (the service layer
    /// after the transport's dispatch) sees it too; the next inflate clears it.
    pub fn restore_inflated(&mut self, v: Vec<u8>) {
        self.inflated = v;
    }

    /// The inflated payload of the last opened packet, borrowed.
    pub fn inflated(&self) -> &[u8] {
        &self.inflated
    }

    /// Sequence number of the next packet.
    pub fn seq(&self) -> u32 {
        self.seq
    }

    /// Strict KEX: sequence number back to 0 after NEWKEYS.
    pub fn reset_seq(&mut self) {
        self.seq = 0;
    }

    /// Bytes and packets opened since the last key change (for rekey limits).
    pub fn since_rekey(&self) -> (u64, u64) {
        self.since_rekey.pair()
    }

    /// Total bytes and packets opened on this connection.
    pub fn totals(&self) -> (u64, u64) {
        self.total.pair()
    }

    /// True once keys other than "none" are installed.
    pub fn is_encrypted(&self) -> bool {
        match self.keyed {
            Keyed::Ok { encrypted, .. } => encrypted,
            Keyed::Broken => true,
        }
    }

    /// The framing the current keys give.
    pub fn framing(&self) -> Framing {
        self.params.framing
    }

    /// Test hook: the sequence number of the next packet.
    #[cfg(test)]
    pub(crate) fn set_seq(&mut self, seq: u32) {
        self.seq = seq;
    }
}

/// Outbound packet state.
pub struct PacketSealer {
    keyed: Keyed<SealingCipher>,
    params: Params,
    seq: u32,
    deflater: compress::Deflater,
    /// The compressed batch being sealed (its capacity is reused batch after batch).
    deflated: Vec<u8>,
    /// Packets staged and not yet sealed; they take the sequence numbers after `seq`.
    staged: u32,
    /// Whether the staged packets are in the compressed staging form (fixed per batch).
    staged_compressed: bool,
    /// Payload bytes copied after staging (only a compressed batch that does not start its
    /// buffer is copied back), for the copy-count check.
    copied: u64,
    since_rekey: Counters,
    total: Counters,
}

impl Default for PacketSealer {
    fn default() -> Self {
        Self::new()
    }
}

impl PacketSealer {
    pub fn new() -> Self {
        Self {
            keyed: Keyed::Ok { cipher: SealingCipher::None, mac: None, encrypted: false },
            params: Params::PLAIN,
            seq: 0,
            deflater: compress::Deflater::new(),
            deflated: Vec::new(),
            staged: 0,
            staged_compressed: false,
            copied: 0,
            since_rekey: Counters::default(),
            total: Counters::default(),
        }
    }

    /// Installs our new keys (right after our NEWKEYS is sealed). Short key material leaves
    /// the direction broken: every later `finish` fails (see [`PacketSealer::try_set_keys`]).
    /// Staged packets must be sealed first (they were framed for the old keys).
    pub fn set_keys(&mut self, keys: DirectionKeys) {
        if self.try_set_keys(keys).is_err() {
            self.keyed = Keyed::Broken;
        }
    }

    /// [`PacketSealer::set_keys`] that reports short key material (state unchanged then).
    pub fn try_set_keys(&mut self, keys: DirectionKeys) -> Result<(), KeyLenError> {
        debug_assert_eq!(self.staged, 0, "staged packets must be sealed before a key change");
        let (keyed, params) = key_direction(&keys, CipherAlg::sealing)?;
        self.keyed = keyed;
        self.params = params;
        self.since_rekey = Counters::default();
        Ok(())
    }

    /// Staged packets must be sealed first (their staging form depends on it).
    pub fn set_compression(&mut self, c: Compression) {
        debug_assert_eq!(
            self.staged, 0,
            "staged packets must be sealed before compression changes"
        );
        self.deflater.set(c);
    }

    /// Staged packets must be sealed first (delayed compression may start here).
    pub fn auth_succeeded(&mut self) {
        debug_assert_eq!(self.staged, 0, "staged packets must be sealed before compression starts");
        self.deflater.auth_succeeded();
    }

    /// Reserves the packet header at the end of `buf` and returns where this packet starts;
    /// the caller then appends the payload directly after it and calls
    /// [`PacketSealer::stage`] (or [`PacketSealer::finish`]).
    pub fn begin(&self, buf: &mut Vec<u8>) -> usize {
        let start = buf.len();
        buf.extend_from_slice(&[0u8; HEADER]);
        start
    }

    /// Frames the packet begun at `start` (its payload is `buf[start + HEADER..]`) where it
    /// lies, with room behind it for padding and MAC / tag; [`PacketSealer::seal_staged`] seals
    /// it with the rest of the batch. Nothing is encrypted yet and the sequence number is
    /// assigned in staging order. On error (payload too large, broken keys) the begun packet
    /// is removed.
    pub fn stage(&mut self, buf: &mut Vec<u8>, start: usize) -> Result<(), PacketError> {
        self.stage_packet(buf, start)
    }

    /// Seals every packet staged since the last seal, which must all lie in `buf[from..]`
    /// back to back, in one pass: compress (if on), pad, encrypt and MAC in place. Returns how
    /// many packets were sealed. On error those before the failing one stay sealed and the
    /// rest are removed.
    pub fn seal_staged(
        &mut self,
        buf: &mut Vec<u8>,
        from: usize,
        rng: &mut dyn Rng,
    ) -> Result<usize, PacketError> {
        self.seal_batch(buf, from, rng)
    }

    /// Packets staged and not yet sealed.
    pub fn staged(&self) -> usize {
        self.staged as usize
    }

    /// Payload bytes copied after staging so far (see [`PacketSealer::seal_staged`]).
    pub fn bytes_copied(&self) -> u64 {
        self.copied
    }

    /// Stages the packet begun at `start` and seals it at once: compresses if on, adds random
    /// padding, encrypts and MACs in place, increments the sequence number. Nothing else may be
    /// staged (use [`PacketSealer::stage`] and [`PacketSealer::seal_staged`] for batches).
    ///
    /// On error nothing was encrypted and the sequence number is unchanged; the begun packet
    /// is removed.
    pub fn finish(
        &mut self,
        buf: &mut Vec<u8>,
        start: usize,
        rng: &mut dyn Rng,
    ) -> Result<(), PacketError> {
        debug_assert_eq!(self.staged, 0, "finish seals one packet; a batch is staged");
        self.stage(buf, start)?;
        self.seal_staged(buf, start, rng).map(|_| ())
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

    /// The sequence number the next packet staged will carry.
    pub fn seq(&self) -> u32 {
        self.seq.wrapping_add(self.staged)
    }

    /// Strict KEX: sequence number back to 0 (staged packets must be sealed first).
    pub fn reset_seq(&mut self) {
        debug_assert_eq!(self.staged, 0, "staged packets must be sealed before the reset");
        self.seq = 0;
    }

    pub fn since_rekey(&self) -> (u64, u64) {
        self.since_rekey.pair()
    }

    pub fn totals(&self) -> (u64, u64) {
        self.total.pair()
    }

    pub fn is_encrypted(&self) -> bool {
        match self.keyed {
            Keyed::Ok { encrypted, .. } => encrypted,
            Keyed::Broken => true,
        }
    }

    /// The framing the current keys give.
    pub fn framing(&self) -> Framing {
        self.params.framing
    }

    /// Memory held for the compressed batch (its capacity), for the global memory budget.
    pub fn held_bytes(&self) -> usize {
        self.deflated.capacity()
    }

    /// Wire bytes a payload of `payload_len` (uncompressed) will take at most, for sizing
    /// output buffers: header, payload, the largest padding, MAC / tag.
    pub fn max_sealed_len(&self, payload_len: usize) -> usize {
        HEADER
            .saturating_add(payload_len)
            .saturating_add(MIN_PADDING + self.params.align)
            .saturating_add(self.params.tag_len)
    }
}

#[cfg(test)]
mod tests;
