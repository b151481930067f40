//! The client side of channels (RFC 4254 §5): the table of channels we opened, both windows,
//! the peer's maximum packet, EOF and CLOSE in each direction, and the received bytes waiting
//! for the caller.
//!
//! Flow control: the peer may send only what our window allows, and window goes back
//! (WINDOW_ADJUST) only as the caller consumes, so `recv_window + buffered + credit` never
//! exceeds the initial window: what we hold for a channel is bounded by the window we granted.

use std::collections::VecDeque;

/// A channel we opened, named by our channel number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientChannel(pub u32);

/// Most channels open at once on one client connection.
pub const MAX_CHANNELS: usize = 64;
/// Most requests with want-reply outstanding per channel (and global requests per connection).
pub const MAX_PENDING_REPLIES: usize = 16;

/// Received bytes not yet taken by the caller: `buf[head..]`.
#[derive(Debug, Default)]
pub(crate) struct Inbound {
    buf: Vec<u8>,
    head: usize,
}

impl Inbound {
    pub fn bytes(&self) -> &[u8] {
        self.buf.get(self.head..).unwrap_or(&[])
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Drops the buffer's capacity when nothing is waiting in it.
    pub fn release_if_empty(&mut self) {
        if self.bytes().is_empty() {
            self.buf = Vec::new();
            self.head = 0;
        }
    }

    /// Marks up to `n` bytes taken; returns how many were.
    pub fn take(&mut self, n: usize) -> usize {
        let n = n.min(self.bytes().len());
        self.head += n;
        if self.head >= self.buf.len() {
            self.buf.clear();
            self.head = 0;
            if self.buf.capacity() > 256 * 1024 {
                self.buf = Vec::new();
            }
        } else if self.head > self.buf.len() / 2 {
            self.buf.drain(..self.head);
            self.head = 0;
        }
        n
    }
}

#[derive(Debug)]
pub(crate) struct Chan {
    /// The server confirmed the open (or we accepted its open).
    pub open: bool,
    /// The server opened it and the caller has not answered yet.
    pub incoming: bool,
    /// The server's number for this channel (valid once open).
    pub peer_id: u32,
    pub initial_window: u32,
    /// What the peer may still send.
    pub recv_window: u32,
    /// Taken by the caller, not yet given back with WINDOW_ADJUST.
    pub credit: u32,
    pub stdout: Inbound,
    pub stderr: Inbound,
    pub peer_window: u32,
    pub peer_max_packet: u32,
    pub peer_eof: bool,
    pub peer_closed: bool,
    pub eof_sent: bool,
    pub close_sent: bool,
    /// Names of requests sent with want-reply, oldest first (replies come in order).
    pub replies: VecDeque<&'static str>,
}

impl Chan {
    pub fn new(window: u32) -> Self {
        Chan {
            open: false,
            incoming: false,
            peer_id: 0,
            initial_window: window,
            recv_window: window,
            credit: 0,
            stdout: Inbound::default(),
            stderr: Inbound::default(),
            peer_window: 0,
            peer_max_packet: 0,
            peer_eof: false,
            peer_closed: false,
            eof_sent: false,
            close_sent: false,
            replies: VecDeque::new(),
        }
    }

    pub fn buffered(&self) -> usize {
        self.stdout.bytes().len() + self.stderr.bytes().len()
    }

    /// Counts `n` received bytes against our window.
    pub fn received(&mut self, n: u32) {
        self.recv_window = self.recv_window.saturating_sub(n);
    }

    /// `n` bytes left the buffers (taken or dropped): they become window credit.
    pub fn credited(&mut self, n: usize) {
        self.credit = self.credit.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
    }

    /// The WINDOW_ADJUST to send now: at half the window, as OpenSSH does, so the peer keeps
    /// streaming while we are not flooded with adjust messages.
    pub fn take_window_adjust(&mut self) -> Option<u32> {
        if !self.open
            || self.close_sent
            || self.peer_eof
            || self.credit == 0
            || self.credit < self.initial_window / 2
        {
            return None;
        }
        let n = self.credit;
        self.credit = 0;
        self.recv_window = self.recv_window.saturating_add(n);
        Some(n)
    }

    pub fn can_send(&self) -> bool {
        self.open && !self.eof_sent && !self.close_sent && !self.peer_closed
    }

    pub fn is_finished(&self) -> bool {
        self.close_sent && self.peer_closed
    }
}

/// The channel table: slot index is our channel number.
#[derive(Default)]
pub(crate) struct Table {
    slots: Vec<Option<Chan>>,
}

impl Table {
    /// Every channel's empty receive buffers give their capacity back.
    pub fn release_idle_memory(&mut self) {
        for c in self.slots.iter_mut().flatten() {
            c.stdout.release_if_empty();
            c.stderr.release_if_empty();
        }
    }

    pub fn insert(&mut self, ch: Chan) -> Option<ClientChannel> {
        let free = self.slots.iter().position(Option::is_none);
        let i = match free {
            Some(i) => i,
            None if self.slots.len() < MAX_CHANNELS => {
                self.slots.push(None);
                self.slots.len() - 1
            }
            None => return None,
        };
        *self.slots.get_mut(i)? = Some(ch);
        Some(ClientChannel(u32::try_from(i).ok()?))
    }

    pub fn get(&self, id: ClientChannel) -> Option<&Chan> {
        self.slots.get(id.0 as usize)?.as_ref()
    }

    pub fn get_mut(&mut self, id: ClientChannel) -> Option<&mut Chan> {
        self.slots.get_mut(id.0 as usize)?.as_mut()
    }

    pub fn remove(&mut self, id: ClientChannel) {
        if let Some(s) = self.slots.get_mut(id.0 as usize) {
            *s = None;
        }
        while self.slots.last().is_some_and(Option::is_none) {
            self.slots.pop();
        }
    }

    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// Received bytes held over all channels.
    pub fn buffered(&self) -> usize {
        self.slots.iter().flatten().map(Chan::buffered).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_accounting_stays_bounded() {
        let mut c = Chan::new(100);
        c.open = true;
        c.received(60);
        c.stdout.push(&[1; 60]);
        assert_eq!(c.take_window_adjust(), None, "nothing taken yet");
        let n = c.stdout.take(30);
        c.credited(n);
        assert_eq!(c.recv_window as usize + c.buffered() + c.credit as usize, 100);
        assert_eq!(c.take_window_adjust(), None, "below half the window");
        let n = c.stdout.take(1000);
        assert_eq!(n, 30, "never more than buffered");
        c.credited(n);
        assert_eq!(c.take_window_adjust(), Some(60));
        assert_eq!(c.recv_window, 100);
    }

    #[test]
    fn idle_release_keeps_waiting_bytes_and_frees_empty_buffers() {
        let mut t = Table::default();
        let a = t.insert(Chan::new(1 << 20)).unwrap();
        let b = t.insert(Chan::new(1 << 20)).unwrap();
        for id in [a, b] {
            t.get_mut(id).unwrap().stdout.push(&[7; 4096]);
        }
        let n = t.get_mut(a).unwrap().stdout.take(4096);
        assert_eq!(n, 4096);
        t.get_mut(b).unwrap().stdout.take(100);
        t.release_idle_memory();
        assert_eq!(t.get_mut(a).unwrap().stdout.buf.capacity(), 0, "empty: capacity given back");
        let kept = &t.get_mut(b).unwrap().stdout;
        assert_eq!(kept.bytes(), &[7; 3996][..], "bytes not yet taken stay");
    }

    #[test]
    fn table_is_bounded_and_reuses_slots() {
        let mut t = Table::default();
        let ids: Vec<_> = (0..MAX_CHANNELS).map(|_| t.insert(Chan::new(1)).unwrap()).collect();
        assert!(t.insert(Chan::new(1)).is_none());
        t.remove(ids[3]);
        assert_eq!(t.insert(Chan::new(1)), Some(ClientChannel(3)));
        assert_eq!(t.len(), MAX_CHANNELS);
    }
}
