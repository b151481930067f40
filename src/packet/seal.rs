//! Sealing one packet in place (RFC 4253 §6): compress, pad with random bytes to the
//! alignment, write the lengths, encrypt, append the MAC / tag. No allocation of ours per
//! packet: the compression scratch is reused and `buf` is the caller's.

use super::{
    Framing, Keyed, PacketError, PacketSealer, HEADER, MAX_PAYLOAD_LEN, MIN_PADDING,
};
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
        let Keyed::Ok { cipher, mac, .. } = &mut self.keyed else {
            return Err(PacketError::Compression);
        };
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
        let packet = buf.get_mut(start..).ok_or(PacketError::Compression)?;
        let header = packet.get_mut(..HEADER).ok_or(PacketError::Compression)?;
        // packet_length ≤ MAX_PACKET_LEN and padding < 256 by construction.
        header[..4].copy_from_slice(&(packet_length as u32).to_be_bytes());
        header[4] = padding as u8;

        let seq = self.seq;
        let mut tag = [0u8; MAX_OUT_LEN];
        let tag_len = params.tag_len;
        match cipher {
            SealingCipher::None => {
                if let Some(mac) = mac {
                    mac.sign(seq, packet, &mut tag[..tag_len]);
                }
            }
            SealingCipher::ChaCha(key) => {
                let mut t = [0u8; 16];
                key.seal_in_place(seq, packet, &mut t);
                tag[..16].copy_from_slice(&t);
            }
            SealingCipher::Gcm(gcm) => {
                let (length, rest) = packet.split_at_mut(4);
                let t = gcm.seal(length, rest);
                tag[..16].copy_from_slice(&t);
            }
            SealingCipher::Ctr(ctr) => {
                if params.framing == Framing::EncryptThenMac {
                    ctr.apply(&mut packet[4..]);
                    if let Some(mac) = mac {
                        mac.sign(seq, packet, &mut tag[..tag_len]);
                    }
                } else {
                    if let Some(mac) = mac {
                        mac.sign(seq, packet, &mut tag[..tag_len]);
                    }
                    ctr.apply(packet);
                }
            }
        }
        buf.extend_from_slice(&tag[..tag_len]);

        let total = buf.len() - start;
        self.seq = seq.wrapping_add(1);
        self.since_rekey.add(total);
        self.total.add(total);
        Ok(())
    }
}
