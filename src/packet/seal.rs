//! Sealing in place (RFC 4253 §6), in two steps so a worker turn's packets are sealed in one
//! pass: [`PacketSealer::stage`] frames one encoded payload where it was written (header,
//! room for padding and MAC / tag right behind it), and [`PacketSealer::seal_staged`] then
//! pads, encrypts and MACs every staged packet of the batch where it lies.
//!
//! Without compression no payload byte is copied: the batch is laid out exactly as it goes on
//! the wire. With compression the staged packet holds the raw payload and no tail; the seal
//! pass deflates each payload straight into the batch's output (the one copy deflate makes
//! anyway) and seals it there. Padding for the whole batch comes from one draw from the
//! connection's RNG (one `getrandom` per batch of up to [`PAD_POOL`] padding bytes, not one
//! per packet), used in packet order.

use super::{Framing, Keyed, PacketError, PacketSealer, HEADER, MAX_PAYLOAD_LEN, MIN_PADDING};
use crate::algo::cipher::SealingCipher;
use crate::algo::mac::MAX_OUT_LEN;
use crate::algo::Rng;

/// Random padding drawn per RNG call: a batch of up to ~50 packets (padding ≤ 19 bytes each
/// with 16-byte blocks, ≤ 11 with 8) takes one `getrandom`, not one per packet.
const PAD_POOL: usize = 1024;

impl PacketSealer {
    /// Frames the packet begun at `start` (payload = `buf[start + HEADER..]`) for the next
    /// [`PacketSealer::seal_staged`]. On error the begun packet is removed.
    pub(super) fn stage_packet(
        &mut self,
        buf: &mut Vec<u8>,
        start: usize,
    ) -> Result<(), PacketError> {
        let Some(raw_len) = start.checked_add(HEADER).and_then(|b| buf.len().checked_sub(b)) else {
            return Err(PacketError::PayloadTooLarge { len: 0 });
        };
        if raw_len > MAX_PAYLOAD_LEN || matches!(self.keyed, Keyed::Broken) {
            buf.truncate(start);
            return Err(PacketError::PayloadTooLarge { len: raw_len });
        }
        if self.staged == 0 {
            self.staged_compressed = self.deflater.is_active();
        }
        let header = if self.staged_compressed {
            // Staged form: uint32 raw payload length, a zero byte, the payload; framed when the
            // seal pass knows the deflated length.
            let [l0, l1, l2, l3] = (raw_len as u32).to_be_bytes();
            [l0, l1, l2, l3, 0]
        } else {
            let padding = self.padding_for(raw_len);
            let packet_length = 1 + raw_len + padding;
            buf.resize(buf.len() + padding + self.params.tag_len, 0);
            // packet_length ≤ MAX_PACKET_LEN and padding < 256 by construction.
            let [l0, l1, l2, l3] = (packet_length as u32).to_be_bytes();
            [l0, l1, l2, l3, padding as u8]
        };
        let h = buf.get_mut(start..start + HEADER).ok_or(PacketError::Compression)?;
        h.copy_from_slice(&header);
        self.staged = self.staged.saturating_add(1);
        Ok(())
    }

    /// RFC 4253 §6: padding such that (packet_length || padding_length || payload || padding)
    /// is a multiple of max(8, block); openssh leaves the length out for -etm and AEAD since it
    /// is not encrypted with the rest.
    fn padding_for(&self, payload_len: usize) -> usize {
        let params = self.params;
        let aligned = if params.length_in_clear() { 1 + payload_len } else { HEADER + payload_len };
        let mut padding = params.align - aligned % params.align;
        if padding < MIN_PADDING {
            padding += params.align;
        }
        padding
    }

    /// Seals every packet staged in `buf[from..]` in one pass. Returns how many were sealed.
    /// On error the packets before the failing one stay sealed, the rest are removed, and the
    /// sequence number counts only those sealed.
    pub(super) fn seal_batch(
        &mut self,
        buf: &mut Vec<u8>,
        from: usize,
        rng: &mut dyn Rng,
    ) -> Result<usize, PacketError> {
        let count = std::mem::take(&mut self.staged) as usize;
        if count == 0 {
            return Ok(0);
        }
        if !self.staged_compressed {
            return self.seal_framed(buf, from, count, rng);
        }
        // Deflate every payload into the batch's output, framed with room for padding and
        // MAC / tag, then seal that as an uncompressed batch would be.
        let mut out = std::mem::take(&mut self.deflated);
        out.clear();
        let framed = self.frame_deflated(buf, from, count, &mut out);
        let n = framed.as_ref().copied().unwrap_or_else(|(n, _)| *n);
        let sealed = self.seal_framed(&mut out, 0, n, rng);
        if from == 0 {
            std::mem::swap(buf, &mut out);
            out.clear();
        } else {
            buf.truncate(from);
            buf.extend_from_slice(&out);
            self.copied = self.copied.saturating_add(out.len() as u64);
        }
        self.deflated = out;
        match (framed, sealed) {
            (Ok(_), sealed) => sealed,
            (Err((_, e)), Ok(_)) | (Err(_), Err(e)) => Err(e),
        }
    }

    /// Deflates `count` staged payloads from `buf[from..]` onto `out`, each behind a header and
    /// followed by room for its padding and MAC / tag. Returns how many were framed.
    fn frame_deflated(
        &mut self,
        buf: &[u8],
        from: usize,
        count: usize,
        out: &mut Vec<u8>,
    ) -> Result<usize, (usize, PacketError)> {
        let mut pos = from;
        for i in 0..count {
            let Some(&[l0, l1, l2, l3, _]) = buf.get(pos..pos + HEADER) else {
                return Err((i, PacketError::Compression));
            };
            let raw_len = u32::from_be_bytes([l0, l1, l2, l3]) as usize;
            let Some(raw) = buf.get(pos + HEADER..pos + HEADER + raw_len) else {
                return Err((i, PacketError::Compression));
            };
            let start = out.len();
            out.extend_from_slice(&[0u8; HEADER]);
            if let Err(e) = self.deflater.deflate_append(raw, out) {
                out.truncate(start);
                return Err((i, e));
            }
            let payload_len = out.len() - start - HEADER;
            if payload_len > MAX_PAYLOAD_LEN {
                out.truncate(start);
                return Err((i, PacketError::PayloadTooLarge { len: payload_len }));
            }
            let padding = self.padding_for(payload_len);
            out.resize(out.len() + padding + self.params.tag_len, 0);
            let [p0, p1, p2, p3] = ((1 + payload_len + padding) as u32).to_be_bytes();
            if let Some(h) = out.get_mut(start..start + HEADER) {
                h.copy_from_slice(&[p0, p1, p2, p3, padding as u8]);
            }
            pos += HEADER + raw_len;
        }
        Ok(count)
    }

    /// Pads, encrypts and MACs `count` framed packets lying back to back from `buf[from..]`.
    /// Padding comes from the RNG in one draw per [`PAD_POOL`] bytes, in packet order.
    fn seal_framed(
        &mut self,
        buf: &mut Vec<u8>,
        from: usize,
        count: usize,
        rng: &mut dyn Rng,
    ) -> Result<usize, PacketError> {
        let tag_len = self.params.tag_len;
        let mut pool = [0u8; PAD_POOL];
        // pool[taken..filled] is drawn and unused.
        let (mut taken, mut filled) = (0usize, 0usize);
        let mut pos = from;
        for i in 0..count {
            let Some(&[l0, l1, l2, l3, padding]) = buf.get(pos..pos + HEADER) else {
                buf.truncate(pos);
                return Err(PacketError::Compression);
            };
            let len = 4 + u32::from_be_bytes([l0, l1, l2, l3]) as usize;
            let end = pos + len + tag_len;
            let padding = usize::from(padding);
            if filled - taken < padding {
                // Exactly what the rest of the batch needs (so a fixed-vector RNG in the
                // known-answer tests lines up), at most the pool.
                let need = self.batch_padding(buf, pos, count - i).clamp(padding, PAD_POOL);
                rng.fill(pool.get_mut(..need).unwrap_or_default());
                (taken, filled) = (0, need);
            }
            let pad = pool.get(taken..taken + padding).unwrap_or_default();
            taken += padding;
            let Some(packet) = buf.get_mut(pos..end) else {
                buf.truncate(pos);
                return Err(PacketError::Compression);
            };
            if let Some(p) = packet.get_mut(len - padding..len) {
                p.copy_from_slice(pad);
            }
            if let Err(e) = self.protect_packet(packet, len) {
                buf.truncate(pos);
                return Err(e);
            }
            pos = end;
        }
        Ok(count)
    }

    /// Padding bytes of the `count` framed packets from `buf[pos..]`.
    fn batch_padding(&self, buf: &[u8], mut pos: usize, count: usize) -> usize {
        let mut total = 0;
        for _ in 0..count {
            let Some(&[l0, l1, l2, l3, padding]) = buf.get(pos..pos + HEADER) else { break };
            total += usize::from(padding);
            pos += 4 + u32::from_be_bytes([l0, l1, l2, l3]) as usize + self.params.tag_len;
            if total >= PAD_POOL {
                break;
            }
        }
        total
    }

    /// Encrypts and MACs one framed plaintext packet in place: `packet[..len]` is header,
    /// payload and padding, `packet[len..]` the room for the MAC / tag. Counts it and moves the
    /// sequence number on.
    fn protect_packet(&mut self, packet: &mut [u8], len: usize) -> Result<(), PacketError> {
        let Keyed::Ok { cipher, mac, .. } = &mut self.keyed else {
            return Err(PacketError::Compression);
        };
        let params = self.params;
        let seq = self.seq;
        let total = packet.len();
        let (packet, tag_out) = packet.split_at_mut(len.min(total));
        let tag_len = params.tag_len.min(MAX_OUT_LEN).min(tag_out.len());
        let tag_out = tag_out.get_mut(..tag_len).unwrap_or_default();
        match cipher {
            SealingCipher::None => {
                if let Some(mac) = mac {
                    mac.sign(seq, packet, tag_out);
                }
            }
            SealingCipher::ChaCha(key) => {
                if packet.len() < 4 {
                    return Err(PacketError::Compression);
                }
                let mut t = [0u8; 16];
                key.seal_in_place(seq, packet, &mut t);
                copy_into(tag_out, &t);
            }
            SealingCipher::Gcm(gcm) => {
                let (length, rest) = packet.split_at_mut(4.min(packet.len()));
                let t = gcm.seal(length, rest);
                copy_into(tag_out, &t);
            }
            SealingCipher::Ctr(ctr) => {
                if params.framing == Framing::EncryptThenMac {
                    ctr.apply(packet.get_mut(4..).ok_or(PacketError::Compression)?);
                    if let Some(mac) = mac {
                        mac.sign(seq, packet, tag_out);
                    }
                } else {
                    if let Some(mac) = mac {
                        mac.sign(seq, packet, tag_out);
                    }
                    ctr.apply(packet);
                }
            }
        }
        self.seq = self.seq.wrapping_add(1);
        self.since_rekey.add(total);
        self.total.add(total);
        Ok(())
    }

    /// Test hook: encrypts and MACs the framed packet at `buf[start..]` as is, appending the
    /// MAC / tag, without moving the sequence number on (crafted packets).
    #[cfg(test)]
    pub(crate) fn protect(&mut self, buf: &mut Vec<u8>, start: usize) -> Result<(), PacketError> {
        let len = buf.len() - start;
        buf.resize(buf.len() + self.params.tag_len, 0);
        let packet = buf.get_mut(start..).ok_or(PacketError::Compression)?;
        self.protect_packet(packet, len)?;
        self.seq = self.seq.wrapping_sub(1);
        Ok(())
    }

    /// Test hook: the sequence number of the next packet.
    #[cfg(test)]
    pub(crate) fn set_seq(&mut self, seq: u32) {
        self.seq = seq;
    }
}

fn copy_into(out: &mut [u8], from: &[u8]) {
    for (o, f) in out.iter_mut().zip(from) {
        *o = *f;
    }
}
