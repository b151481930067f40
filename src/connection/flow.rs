//! Flow control and data (RFC 4254 §5.2): the peer's window and maximum packet on the way
//! out (`send_capacity`, `send_data`, `data_slot`), ours on the way in (`on_data` takes no
//! more than the window; `backend_consumed` gives it back as WINDOW_ADJUST once the backend
//! has taken the bytes), so what a channel holds is bounded by its window.

use super::{
    channel::Phase, msgs, table, table::make_id, ChannelId, Connection, DataSink, Event,
    MAX_SEND_CHUNK,
};
use crate::service::{Outbound, ServiceError};
use crate::wire::msg_no;

impl Connection {
    pub(super) fn on_window_adjust(
        &mut self,
        out: &mut dyn Outbound,
        p: &[u8],
    ) -> Result<(), ServiceError> {
        let (id, n) = msgs::parse_window_adjust(p)?;
        let backpressured = out.is_backpressured();
        let ch = self.open_channel(id)?;
        let was_zero = ch.peer_window == 0;
        ch.peer_window = ch
            .peer_window
            .checked_add(n)
            .ok_or_else(|| ServiceError::protocol("window adjust past 2^32-1"))?;
        if was_zero && n > 0 && ch.can_send() && !backpressured {
            self.events.push_back(Event::ChannelWritable { channel: ChannelId(id) });
        }
        Ok(())
    }

    pub(super) fn on_data(
        &mut self,
        out: &mut dyn Outbound,
        p: &[u8],
        extended: bool,
        sink: Option<&mut dyn DataSink>,
    ) -> Result<(), ServiceError> {
        let (id, _code, data) = msgs::parse_data(p, extended)?;
        let max_packet = self.policy.max_packet as usize;
        let ch = self.open_channel(id)?;
        if data.len() > max_packet {
            return Err(ServiceError::protocol("channel data larger than the maximum packet"));
        }
        if data.len() > ch.recv_window as usize {
            return Err(ServiceError::protocol("channel data past the window"));
        }
        if ch.peer_eof {
            return Err(ServiceError::protocol("channel data after EOF"));
        }
        // Our stdin has no stderr; after our CLOSE nobody reads: count it, give it back.
        if extended || ch.close_sent {
            ch.discard(data.len());
            return self.maybe_adjust(out, ChannelId(id));
        }
        let was_empty = ch.pending().is_empty();
        let mut sink = sink;
        // Zero-copy: with nothing queued before it, the runtime may take the bytes straight
        // from the packet; they count as consumed at once. Only the rest is copied and queued,
        // in chunks the runtime lends from its pool.
        let taken = match sink.as_deref_mut() {
            Some(sink) if was_empty && !data.is_empty() => {
                sink.write(ChannelId(id), data).min(data.len())
            }
            _ => 0,
        };
        let rest = data.get(taken..).unwrap_or(&[]);
        if taken > 0 {
            ch.discard(taken);
        }
        let mut lend = |min: usize| sink.as_deref_mut().and_then(|s| s.inbound_buffer(min));
        let own = ch.push_inbound(rest, &mut lend);
        self.own_inbound = self.own_inbound.saturating_add(u64::from(own));
        self.copied = self.copied.saturating_add(rest.len() as u64);
        if taken > 0 {
            self.maybe_adjust(out, ChannelId(id))?;
        }
        if was_empty && !rest.is_empty() {
            self.events.push_back(Event::ChannelReadable { channel: ChannelId(id) });
        }
        Ok(())
    }

    /// Inbound channel bytes queued (copied) because the backend did not take them from the
    /// packet.
    pub fn bytes_copied(&self) -> u64 {
        self.copied
    }

    /// Inbound bytes waiting for the backend (borrowed; nothing is copied out): the first
    /// contiguous run, empty only when none wait. Write it, `backend_consumed`, ask again.
    pub fn inbound(&self, channel: ChannelId) -> &[u8] {
        self.get(channel).map_or(&[], |c| c.pending())
    }

    /// All inbound bytes waiting for the backend of `channel`.
    pub fn inbound_len(&self, channel: ChannelId) -> usize {
        self.get(channel).map_or(0, |c| c.pending_len())
    }

    /// The backend took `n` bytes of `inbound`: they leave the buffer and, once enough has
    /// gathered, go back to the client as window (WINDOW_ADJUST). Returns how many were taken.
    pub fn backend_consumed(
        &mut self,
        out: &mut dyn Outbound,
        channel: ChannelId,
        n: usize,
    ) -> Result<usize, ServiceError> {
        // The channel table and the spent list are separate fields: borrow both.
        let Some(ch) = table::slot_mut(&mut self.channels, &self.gens, channel) else {
            return Ok(0);
        };
        let n = ch.consume(n, &mut self.spent_inbound);
        if ch.peer_closed && !ch.close_sent && ch.pending().is_empty() {
            // The client's CLOSE waited for this data (see `on_close`): answer it now.
            ch.close_sent = true;
            let peer = ch.peer_id;
            out.send_with(&mut |o| msgs::encode_channel_only(o, msg_no::CHANNEL_CLOSE, peer))?;
            self.finish(channel);
            return Ok(n);
        }
        self.maybe_adjust(out, channel)?;
        Ok(n)
    }

    pub(super) fn maybe_adjust(
        &mut self,
        out: &mut dyn Outbound,
        channel: ChannelId,
    ) -> Result<(), ServiceError> {
        let Some(ch) = self.get_mut(channel) else {
            return Ok(());
        };
        if ch.phase != Phase::Open {
            return Ok(());
        }
        if let Some(n) = ch.take_window_adjust() {
            let peer = ch.peer_id;
            out.send_with(&mut |o| msgs::encode_window_adjust(o, peer, n))?;
        }
        Ok(())
    }

    /// How many bytes `send_data` would take now: the peer's window, or 0 when the channel
    /// cannot send or output is backed up. Read at most this much from the backend.
    pub fn send_capacity(&self, out: &dyn Outbound, channel: ChannelId) -> usize {
        match self.get(channel) {
            Some(c) if c.can_send() && !out.is_backpressured() && c.peer_max_packet > 0 => {
                c.peer_window as usize
            }
            _ => 0,
        }
    }

    /// Sends backend bytes to the client as CHANNEL_DATA, as much as the peer's window allows,
    /// split at its maximum packet. Returns how many bytes were taken; keep the rest.
    pub fn send_data(
        &mut self,
        out: &mut dyn Outbound,
        channel: ChannelId,
        data: &[u8],
    ) -> Result<usize, ServiceError> {
        self.send_inner(out, channel, data, None)
    }

    /// Room for up to `max` bytes of channel data (`stderr`: extended data type 1) inside the
    /// output buffer itself, within the peer's window and maximum packet: the runtime reads
    /// the backend straight into it and then calls [`Connection::data_filled`]. `None` when
    /// nothing can be sent now or the transport cannot stage in place (use `send_data`).
    pub fn data_slot<'o>(
        &mut self,
        out: &'o mut dyn Outbound,
        channel: ChannelId,
        max: usize,
        stderr: bool,
    ) -> Option<&'o mut [u8]> {
        let cap = self.send_capacity(out, channel);
        let ch = self.get(channel)?;
        let chunk = (ch.peer_max_packet as usize).clamp(1, MAX_SEND_CHUNK);
        let n = max.min(cap).min(chunk);
        if n == 0 {
            return None;
        }
        let [r0, r1, r2, r3] = ch.peer_id.to_be_bytes();
        let [e0, e1, e2, e3] = msgs::EXTENDED_DATA_STDERR.to_be_bytes();
        // Everything up to the data, ending with its uint32 length (patched on commit).
        let data = [msg_no::CHANNEL_DATA, r0, r1, r2, r3, 0, 0, 0, 0];
        let ext = [msg_no::CHANNEL_EXTENDED_DATA, r0, r1, r2, r3, e0, e1, e2, e3, 0, 0, 0, 0];
        out.begin_fill(if stderr { &ext } else { &data }, n)
    }

    /// The slot from [`Connection::data_slot`] holds `n` bytes: the message is staged and the
    /// peer's window shrinks by `n` (0 cancels it). Returns the bytes sent.
    pub fn data_filled(
        &mut self,
        out: &mut dyn Outbound,
        channel: ChannelId,
        n: usize,
    ) -> Result<usize, ServiceError> {
        out.commit_fill(n)?;
        if let Some(ch) = self.get_mut(channel) {
            ch.peer_window = ch.peer_window.saturating_sub(u32::try_from(n).unwrap_or(u32::MAX));
        }
        Ok(n)
    }

    /// As `send_data`, as CHANNEL_EXTENDED_DATA type 1 (stderr) for session channels.
    pub fn send_stderr(
        &mut self,
        out: &mut dyn Outbound,
        channel: ChannelId,
        data: &[u8],
    ) -> Result<usize, ServiceError> {
        self.send_inner(out, channel, data, Some(msgs::EXTENDED_DATA_STDERR))
    }

    pub(super) fn send_inner(
        &mut self,
        out: &mut dyn Outbound,
        channel: ChannelId,
        data: &[u8],
        ext: Option<u32>,
    ) -> Result<usize, ServiceError> {
        let cap = self.send_capacity(out, channel);
        let Some(ch) = self.get_mut(channel) else {
            return Ok(0);
        };
        let total = data.len().min(cap);
        let chunk = (ch.peer_max_packet as usize).clamp(1, MAX_SEND_CHUNK);
        let peer = ch.peer_id;
        let mut sent = 0;
        for part in data.get(..total).unwrap_or(&[]).chunks(chunk) {
            match ext {
                None => out.send_with(&mut |o| msgs::encode_data(o, peer, part))?,
                Some(code) => {
                    out.send_with(&mut |o| msgs::encode_extended_data(o, peer, code, part))?
                }
            }
            sent += part.len();
        }
        ch.peer_window = ch.peer_window.saturating_sub(u32::try_from(sent).unwrap_or(u32::MAX));
        Ok(sent)
    }

    /// Output backpressure ended (e.g. after a key exchange): every channel that can send
    /// gets a `ChannelWritable`.
    pub fn notify_writable(&mut self) {
        for (i, c) in self.channels.iter().enumerate() {
            if let (Some(c), Some(&g)) = (c, self.gens.get(i)) {
                if c.can_send() && c.peer_window > 0 {
                    self.events.push_back(Event::ChannelWritable { channel: make_id(i, g) });
                }
            }
        }
    }
}
