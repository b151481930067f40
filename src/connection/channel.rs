//! One channel's state (RFC 4254 §5): both windows, the peer's maximum packet, EOF and CLOSE in
//! each direction, and the inbound bytes waiting for the backend.
//!
//! Flow control: the peer may send only what our window allows; the window is given back
//! (WINDOW_ADJUST) only as the runtime reports bytes written to the backend, so
//! `recv_window + pending + credit` never exceeds the initial window and the pending buffer is
//! bounded by it whatever the peer does.

use super::session::Session;
use super::ListenerId;
use std::collections::VecDeque;

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
    /// Received, not yet consumed by the backend: a ring, so what the backend takes leaves
    /// from the front without moving the rest (no memmove per partial write).
    inbound: VecDeque<u8>,
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
            inbound: VecDeque::new(),
            credit: 0,
            peer_window: 0,
            peer_max_packet: 0,
            peer_eof: false,
            peer_closed: false,
            eof_sent: false,
            close_sent: false,
        }
    }

    /// Memory held for inbound data (capacity of its buffer), for the global memory budget.
    pub fn held_bytes(&self) -> usize {
        self.inbound.capacity()
    }

    /// Inbound bytes not yet consumed: the first contiguous part of the ring (empty only when
    /// nothing is pending; write it, `consume`, and ask again for the rest).
    pub fn pending(&self) -> &[u8] {
        self.inbound.as_slices().0
    }

    /// Takes `data` against our window. The caller has checked the window and max packet.
    pub fn push_inbound(&mut self, data: &[u8]) {
        self.recv_window = self.recv_window.saturating_sub(len32(data.len()));
        let need = self.inbound.len().saturating_add(data.len());
        if need > self.inbound.capacity() {
            // Grow as Vec would (doubling), but not past the window where that is enough: the
            // capacity counts against the memory budget, and a doubling from just under the
            // window would hold up to twice it.
            let target = self.inbound.capacity().saturating_mul(2).max(need);
            let target = target.min((self.initial_window as usize).max(need));
            self.inbound.reserve_exact(target - self.inbound.len());
        }
        self.inbound.extend(data);
    }

    /// Marks `n` pending bytes consumed; returns how many were (at most what is pending).
    pub fn consume(&mut self, n: usize) -> usize {
        let n = n.min(self.inbound.len());
        self.inbound.drain(..n);
        self.credit = self.credit.saturating_add(len32(n));
        if self.inbound.is_empty() && self.inbound.capacity() > 256 * 1024 {
            self.inbound = VecDeque::new();
        }
        n
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
        c.push_inbound(&[1; 60]);
        assert_eq!(c.recv_window, 40);
        assert_eq!(c.pending().len(), 60);
        assert_eq!(c.take_window_adjust(), None, "nothing consumed yet");
        assert_eq!(c.consume(30), 30);
        assert_eq!(c.pending().len(), 30);
        assert_eq!(c.recv_window + c.pending().len() as u32 + c.credit, 100);
        assert_eq!(c.take_window_adjust(), None, "below half the window");
        assert_eq!(c.consume(1000), 30, "never more than pending");
        assert_eq!(c.take_window_adjust(), Some(60));
        assert_eq!(c.recv_window, 100);
        assert!(c.pending().is_empty());
    }

    #[test]
    fn inbound_capacity_stays_within_the_window() {
        let window = 3 * 32 * 1024 + 100;
        let mut c = Channel::new(Kind::DirectTcpip, Phase::Open, 0, window);
        let mut left = window as usize;
        while left > 0 {
            let n = left.min(1000);
            c.push_inbound(&vec![7; n]);
            left -= n;
        }
        assert_eq!(c.pending().len(), window as usize);
        assert_eq!(c.held_bytes(), window as usize, "not doubled past the window");
    }
}
