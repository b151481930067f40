//! One channel's state (RFC 4254 §5): both windows, the peer's maximum packet, EOF and CLOSE in
//! each direction, and the inbound bytes waiting for the backend.
//!
//! Flow control: the peer may send only what our window allows; the window is given back
//! (WINDOW_ADJUST) only as the runtime reports bytes written to the backend, so
//! `recv_window + pending + credit` never exceeds the initial window and the pending bytes are
//! bounded by it whatever the peer does. They wait in pooled chunks ([`Inbound`]).

use super::inbound::Inbound;
use super::session::Session;
use super::ListenerId;

/// What the channel is for.
#[derive(Debug)]
pub(crate) enum Kind {
    Session(Session),
    DirectTcpip,
    ForwardedTcpip(ListenerId),
    /// `auth-agent@openssh.com`, opened by us to the client's forwarded agent.
    Agent,
}

/// Where the channel is in its opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The client opened it; the runtime is connecting the backend.
    OpeningBackend,
    /// We opened it (forwarded-tcpip); waiting for the client's confirmation.
    OpeningByUs,
    Open,
}

#[derive(Debug)]
pub(crate) struct Channel {
    pub kind: Kind,
    pub phase: Phase,
    /// The client's number for this channel (valid once known).
    pub peer_id: u32,
    /// Our initial window, the bound for `recv_window + pending + credit`.
    pub initial_window: u32,
    /// What the peer may still send.
    pub recv_window: u32,
    /// Received, not yet consumed by the backend, in pooled chunks: what the backend takes
    /// leaves from the front without moving the rest (no memmove per partial write).
    inbound: Inbound,
    /// Consumed by the backend but not yet given back with WINDOW_ADJUST.
    pub credit: u32,
    pub peer_window: u32,
    pub peer_max_packet: u32,
    pub peer_eof: bool,
    pub peer_closed: bool,
    pub eof_sent: bool,
    pub close_sent: bool,
}

impl Channel {
    pub fn new(kind: Kind, phase: Phase, peer_id: u32, window: u32) -> Self {
        Channel {
            kind,
            phase,
            peer_id,
            initial_window: window,
            recv_window: window,
            inbound: Inbound::default(),
            credit: 0,
            peer_window: 0,
            peer_max_packet: 0,
            peer_eof: false,
            peer_closed: false,
            eof_sent: false,
            close_sent: false,
        }
    }

    /// Memory held for inbound data (capacity of its chunks), for the global memory budget.
    pub fn held_bytes(&self) -> usize {
        self.inbound.held()
    }

    /// Inbound bytes not yet consumed: the first contiguous run (empty only when nothing is
    /// pending; write it, `consume`, and ask again for the rest).
    pub fn pending(&self) -> &[u8] {
        self.inbound.front()
    }

    /// All inbound bytes not yet consumed (`pending` is only the first run of them).
    pub fn pending_len(&self) -> usize {
        self.inbound.len()
    }

    /// Takes `data` against our window, in chunks from `lend` (see [`Inbound::push`]).
    /// The caller has checked the window and max packet. Returns the chunks allocated here.
    pub fn push_inbound(
        &mut self,
        data: &[u8],
        lend: &mut dyn FnMut(usize) -> Option<Vec<u8>>,
    ) -> u32 {
        self.recv_window = self.recv_window.saturating_sub(len32(data.len()));
        self.inbound.push(data, lend)
    }

    /// Marks `n` pending bytes consumed; returns how many were (at most what is pending).
    /// Chunks taken whole go to `spent` (back to the runtime's pool).
    pub fn consume(&mut self, n: usize, spent: &mut Vec<Vec<u8>>) -> usize {
        let n = self.inbound.consume(n, spent);
        self.credit = self.credit.saturating_add(len32(n));
        n
    }

    /// The channel is gone: its chunks go to `spent`.
    pub fn release_inbound(&mut self, spent: &mut Vec<Vec<u8>>) {
        self.inbound.clear(spent);
    }

    /// Bytes counted against the window but dropped (extended data from the client, data after
    /// our CLOSE): given back like consumed bytes.
    pub fn discard(&mut self, n: usize) {
        self.recv_window = self.recv_window.saturating_sub(len32(n));
        self.credit = self.credit.saturating_add(len32(n));
    }

    /// The WINDOW_ADJUST to send now, if the credit is worth a message: half the window, as
    /// OpenSSH does, so a fast backend keeps the peer streaming.
    pub fn take_window_adjust(&mut self) -> Option<u32> {
        if self.close_sent
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

    /// May we still send data to the peer?
    pub fn can_send(&self) -> bool {
        self.phase == Phase::Open && !self.eof_sent && !self.close_sent && !self.peer_closed
    }

    /// Both CLOSEs went: the slot can be reused.
    pub fn is_finished(&self) -> bool {
        self.close_sent && self.peer_closed
    }
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_accounting_stays_bounded() {
        let mut c = Channel::new(Kind::DirectTcpip, Phase::Open, 0, 100);
        let mut spent = Vec::new();
        c.push_inbound(&[1; 60], &mut |_| None);
        assert_eq!(c.recv_window, 40);
        assert_eq!(c.pending().len(), 60);
        assert_eq!(c.take_window_adjust(), None, "nothing consumed yet");
        assert_eq!(c.consume(30, &mut spent), 30);
        assert_eq!(c.pending().len(), 30);
        assert_eq!(c.recv_window + c.pending().len() as u32 + c.credit, 100);
        assert_eq!(c.take_window_adjust(), None, "below half the window");
        assert_eq!(c.consume(1000, &mut spent), 30, "never more than pending");
        assert_eq!(c.take_window_adjust(), Some(60));
        assert_eq!(c.recv_window, 100);
        assert!(c.pending().is_empty());
    }

    #[test]
    fn inbound_is_held_in_lent_chunks_within_the_window() {
        let window = 3 * 32 * 1024 + 100;
        let mut c = Channel::new(Kind::DirectTcpip, Phase::Open, 0, window);
        let (mut lent, mut left) = (0, window as usize);
        while left > 0 {
            let n = left.min(1000);
            let own = c.push_inbound(&vec![7; n], &mut |_| {
                lent += 1;
                Some(Vec::with_capacity(16 * 1024))
            });
            assert_eq!(own, 0, "every chunk lent");
            left -= n;
        }
        assert_eq!(c.pending().len(), 16 * 1024, "the first chunk, full");
        assert_eq!(lent, (window as usize).div_ceil(16 * 1024));
        assert!(c.held_bytes() < window as usize + 16 * 1024, "one partial chunk at most");
        let mut spent = Vec::new();
        assert_eq!(c.consume(window as usize, &mut spent), window as usize);
        assert_eq!(spent.len(), lent, "every chunk goes back");
        assert_eq!(c.held_bytes(), 0);
    }
}
