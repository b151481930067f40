//! The channel table: slots numbered with a generation in the high bits of the
//! [`ChannelId`], so a stale number never reaches a reused slot; the bounds
//! (`--max-sessions`, `--max-channels`, the window budget) are counted here.

use super::{
    channel::{Channel, Kind, Phase},
    ChannelId, Connection, Event,
};
use crate::service::ServiceError;

impl Connection {
    /// Session channels in the table (what `--max-sessions` bounds).
    pub(super) fn session_count(&self) -> usize {
        self.channels.iter().flatten().filter(|c| matches!(c.kind, Kind::Session(_))).count()
    }

    /// The receive window for a new channel: the configured one while the connection's
    /// window budget has room, else one maximum packet (a trickle that still works).
    pub(super) fn new_window(&self) -> u32 {
        let granted: usize =
            self.channels.iter().flatten().map(|c| c.initial_window as usize).sum();
        let room = self.policy.window_budget.saturating_sub(granted);
        let room = u32::try_from(room).unwrap_or(u32::MAX);
        self.policy.window.min(room.max(self.policy.max_packet))
    }

    pub(super) fn free_slot(&mut self) -> Option<ChannelId> {
        if let Some(i) = self.channels.iter().position(Option::is_none) {
            return Some(make_id(i, self.gens.get(i).copied().unwrap_or(0)));
        }
        if self.channels.len() >= self.policy.max_channels.min(MAX_SLOTS) {
            return None;
        }
        self.channels.push(None);
        self.gens.push(0);
        Some(make_id(self.channels.len() - 1, 0))
    }

    pub(super) fn insert(&mut self, id: ChannelId, ch: Channel) {
        if let Some(slot) = self.channels.get_mut(slot_of(id)) {
            *slot = Some(ch);
        }
    }

    /// Empties the slot; its next channel gets another id, so a late mutator call for this
    /// one can never reach it.
    pub(super) fn remove(&mut self, id: ChannelId) {
        if self.get(id).is_none() {
            return;
        }
        if let Some(slot) = self.channels.get_mut(slot_of(id)) {
            if let Some(mut ch) = slot.take() {
                ch.release_inbound(&mut self.spent_inbound);
            }
        }
        if let Some(g) = self.gens.get_mut(slot_of(id)) {
            *g = g.wrapping_add(1);
        }
    }

    /// Frees the slot once both CLOSEs went, and tells the runtime.
    pub(super) fn finish(&mut self, id: ChannelId) {
        if self.get(id).is_some_and(Channel::is_finished) {
            self.remove(id);
            self.events.push_back(Event::ChannelClosed { channel: id });
        }
    }

    pub(super) fn get(&self, id: ChannelId) -> Option<&Channel> {
        let i = slot_of(id);
        if self.gens.get(i).map(|&g| u32::from(g)) != Some(id.0 >> 16) {
            return None;
        }
        self.channels.get(i).and_then(Option::as_ref)
    }

    pub(super) fn get_mut(&mut self, id: ChannelId) -> Option<&mut Channel> {
        slot_mut(&mut self.channels, &self.gens, id)
    }

    pub(super) fn channel_mut(&mut self, id: u32) -> Result<&mut Channel, ServiceError> {
        self.get_mut(ChannelId(id))
            .ok_or_else(|| ServiceError::protocol(format!("message for unknown channel {id}")))
    }

    /// A channel the client may talk about: known, opened, not closed by the client.
    pub(super) fn open_channel(&mut self, id: u32) -> Result<&mut Channel, ServiceError> {
        let ch = self.channel_mut(id)?;
        if ch.phase != Phase::Open {
            return Err(ServiceError::protocol(format!(
                "message for channel {id} before it is open"
            )));
        }
        if ch.peer_closed {
            return Err(ServiceError::protocol(format!(
                "message for channel {id} after its CLOSE"
            )));
        }
        Ok(ch)
    }
}

/// Slots are numbered in the low 16 bits of a [`ChannelId`].
pub(super) const MAX_SLOTS: usize = 1 << 16;

/// Our channel number: slot in the low 16 bits, the slot's generation in the high 16.
pub(super) fn make_id(slot: usize, gen: u16) -> ChannelId {
    ChannelId((u32::from(gen) << 16) | (slot as u32 & 0xffff))
}

pub(super) fn slot_of(id: ChannelId) -> usize {
    (id.0 & 0xffff) as usize
}

pub(super) fn slot_mut<'c>(
    channels: &'c mut [Option<Channel>],
    gens: &[u16],
    id: ChannelId,
) -> Option<&'c mut Channel> {
    let i = slot_of(id);
    if gens.get(i).map(|&g| u32::from(g)) != Some(id.0 >> 16) {
        return None;
    }
    channels.get_mut(i).and_then(Option::as_mut)
}
