//! Opening one packet in place (RFC 4253 §6): learn packet_length (decrypting the first block
//! once if the length is encrypted), bound it, wait for the rest, check the MAC / tag in
//! constant time, decrypt, check padding, inflate.

use super::{
    Framing, Keyed, Opened, PacketError, PacketOpener, PayloadAt, HEADER, MAX_PACKET_LEN,
    MIN_PADDING,
};
use crate::algo::cipher::aes_ctr::BLOCK_LEN;
use crate::algo::cipher::OpeningCipher;

/// Bytes of packet_length.
const LEN: usize = 4;

impl PacketOpener {
    pub(super) fn open_packet(&mut self, buf: &mut [u8]) -> Result<Option<Opened>, PacketError> {
        let Keyed::Ok { cipher, mac, .. } = &mut self.keyed else {
            return Err(PacketError::BadMac);
        };
        let params = self.params;
        let seq = self.seq;

        let len = match self.pending_len {
            Some(len) => len,
            None => {
                let Some(len) = read_length(cipher, params.framing, seq, buf) else {
                    return Ok(None);
                };
                check_length(len, params.align, params.length_in_clear())?;
                self.pending_len = Some(len);
                len
            }
        };
        // len ≤ MAX_PACKET_LEN was checked, so none of this can overflow.
        let packet_end = LEN + len as usize;
        let total = packet_end + params.tag_len;
        if buf.len() < total {
            return Ok(None);
        }
        self.pending_len = None;

        let (packet, rest) = buf.split_at_mut(packet_end);
        let tag = rest.get(..params.tag_len).ok_or(PacketError::BadMac)?;
        match cipher {
            OpeningCipher::None => {
                if let Some(mac) = mac {
                    verify(mac, seq, packet, tag)?;
                }
            }
            OpeningCipher::ChaCha(key) => {
                let tag: &[u8; 16] = tag.try_into().map_err(|_| PacketError::BadMac)?;
                key.open_in_place(seq, packet, tag).map_err(|_| PacketError::BadMac)?;
            }
            OpeningCipher::Gcm(gcm) => {
                let (length, body) = packet.split_at_mut(LEN);
                gcm.open(length, body, tag).map_err(|_| PacketError::BadMac)?;
            }
            OpeningCipher::Ctr(ctr) => {
                if params.framing == Framing::EncryptThenMac {
                    if let Some(mac) = mac {
                        verify(mac, seq, packet, tag)?;
                    }
                    ctr.apply(packet.get_mut(LEN..).ok_or(PacketError::BadMac)?);
                } else {
                    // The first block was decrypted by read_length.
                    ctr.apply(packet.get_mut(BLOCK_LEN..).ok_or(PacketError::BadMac)?);
                    if let Some(mac) = mac {
                        verify(mac, seq, packet, tag)?;
                    }
                }
            }
        }

        let padding = *packet.get(LEN).ok_or(PacketError::BadLength { len })?;
        if usize::from(padding) < MIN_PADDING || u32::from(padding) >= len {
            return Err(PacketError::BadPadding { padding, len });
        }
        let payload = HEADER..packet_end - usize::from(padding);

        self.seq = seq.wrapping_add(1);
        self.since_rekey.add(total);
        self.total.add(total);

        let payload = if self.inflater.is_active() {
            let compressed = buf.get(payload).ok_or(PacketError::Decompression)?;
            self.inflater.inflate(compressed, &mut self.inflated)?;
            PayloadAt::Inflated
        } else {
            PayloadAt::Input(payload)
        };
        Ok(Some(Opened { consumed: total, seq, payload }))
    }
}

/// packet_length of the packet at the front of `buf`, or None if too few bytes are here.
/// With CTR and the length encrypted, the whole first block is decrypted in place (once: the
/// caller remembers the result in `pending_len`).
fn read_length(
    cipher: &mut OpeningCipher,
    framing: Framing,
    seq: u32,
    buf: &mut [u8],
) -> Option<u32> {
    let clear =
        |b: &[u8]| -> Option<u32> { Some(u32::from_be_bytes(b.get(..LEN)?.try_into().ok()?)) };
    match cipher {
        OpeningCipher::ChaCha(key) => {
            let enc: [u8; LEN] = buf.get(..LEN)?.try_into().ok()?;
            Some(u32::from_be_bytes(key.decrypt_packet_length(seq, enc)))
        }
        OpeningCipher::Ctr(ctr) if framing == Framing::EncryptAndMac => {
            let first = buf.get_mut(..BLOCK_LEN)?;
            ctr.apply(first);
            clear(first)
        }
        _ => clear(buf),
    }
}

/// RFC 4253 §6: "The minimum size of a packet is 16 (or the cipher block size, whichever is
/// larger) bytes"; the encrypted part (all of it, or all but the length for -etm and AEAD) is
/// a multiple of the alignment. Checked before waiting for or touching the rest.
fn check_length(len: u32, align: usize, length_in_clear: bool) -> Result<(), PacketError> {
    let n = len as usize;
    if !(1 + MIN_PADDING..=MAX_PACKET_LEN).contains(&n) {
        return Err(PacketError::BadLength { len });
    }
    let encrypted = if length_in_clear { n } else { n + LEN };
    if encrypted % align != 0 {
        return Err(PacketError::BadLength { len });
    }
    Ok(())
}

fn verify(
    mac: &crate::algo::mac::MacKey,
    seq: u32,
    data: &[u8],
    tag: &[u8],
) -> Result<(), PacketError> {
    if mac.verify(seq, data, tag) {
        Ok(())
    } else {
        Err(PacketError::BadMac)
    }
}
