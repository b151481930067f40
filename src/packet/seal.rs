//! Sealing one packet in place (RFC 4253 §6): compress, pad with random bytes to the
//! alignment, write the lengths, encrypt, append the MAC / tag. No allocation of ours per
//! packet: the compression scratch is reused and `buf` is the caller's.

use super::{Framing, Keyed, PacketError, PacketSealer, HEADER, MAX_PAYLOAD_LEN, MIN_PADDING};
use crate::algo::cipher::SealingCipher;
use crate::algo::mac::MAX_OUT_LEN;
use crate::algo::Rng;

impl PacketSealer {
    pub(super) fn seal_packet(
        &mut self,
        buf: &mut Vec<u8>,
        start: usize,
        rng: &mut dyn Rng,
    ) -> Result<(), PacketError> {
        if matches!(self.keyed, Keyed::Broken) {
            return Err(PacketError::Compression);
        }
        let params = self.params;
        let body = start.checked_add(HEADER).ok_or(PacketError::PayloadTooLarge { len: 0 })?;
        let raw_len = buf.len().checked_sub(body).ok_or(PacketError::PayloadTooLarge { len: 0 })?;
        if raw_len > MAX_PAYLOAD_LEN {
            return Err(PacketError::PayloadTooLarge { len: raw_len });
        }

        if self.deflater.is_active() {
            let raw = buf.get(body..).ok_or(PacketError::Compression)?;
            self.deflater.deflate(raw, &mut self.deflated)?;
            if self.deflated.len() > MAX_PAYLOAD_LEN {
                buf.truncate(start);
                return Err(PacketError::PayloadTooLarge { len: self.deflated.len() });
            }
            buf.truncate(body);
            buf.extend_from_slice(&self.deflated);
        }
        let payload_len = buf.len() - body;

        // RFC 4253 §6: padding such that the length of (packet_length || padding_length ||
        // payload || random padding) is a multiple of max(8, block); openssh leaves the length
        // out for -etm and AEAD since it is not encrypted with the rest.
        let aligned = if params.length_in_clear() { 1 + payload_len } else { HEADER + payload_len };
        let mut padding = params.align - aligned % params.align;
        if padding < MIN_PADDING {
            padding += params.align;
        }
        let packet_length = 1 + payload_len + padding;

        buf.reserve(padding + params.tag_len);
        let pad_start = buf.len();
        buf.resize(pad_start + padding, 0);
        rng.fill(buf.get_mut(pad_start..).ok_or(PacketError::Compression)?);
        let header = buf.get_mut(start..body).ok_or(PacketError::Compression)?;
        // packet_length ≤ MAX_PACKET_LEN and padding < 256 by construction.
        let [l0, l1, l2, l3] = (packet_length as u32).to_be_bytes();
        header.copy_from_slice(&[l0, l1, l2, l3, padding as u8]);

        self.protect(buf, start)?;
        let total = buf.len() - start;
        self.seq = self.seq.wrapping_add(1);
        self.since_rekey.add(total);
        self.total.add(total);
        Ok(())
    }

    /// Encrypts and MACs the framed plaintext packet at `buf[start..]` (header, payload and
    /// padding all written) and appends the MAC / tag.
    pub(super) fn protect(&mut self, buf: &mut Vec<u8>, start: usize) -> Result<(), PacketError> {
        let Keyed::Ok { cipher, mac, .. } = &mut self.keyed else {
            return Err(PacketError::Compression);
        };
        let params = self.params;
        let packet = buf.get_mut(start..).ok_or(PacketError::Compression)?;
        let seq = self.seq;
        let mut tag = [0u8; MAX_OUT_LEN];
        let tag_len = params.tag_len.min(MAX_OUT_LEN);
        let (tag_out, _) = tag.split_at_mut(tag_len);
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
        buf.extend_from_slice(tag_out);
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
