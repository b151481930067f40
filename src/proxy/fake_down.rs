//! The user's side of the session proxy for the bridge and agent-login tests: a [`Down`] that
//! serves inbound bytes, takes output within a send window and logs every other call.

use super::bridge::Down;
use crate::connection::{ChannelId, ExitStatus, ListenerId};
use std::time::Instant;

/// Inbound bytes, a send window, what was sent, and a log of the other calls. `forwarded`
/// opens channel 100; the n-th call of `open_agent` (counting from 1, refused ones too) opens
/// channel 200 + n if `agent`.
#[derive(Default)]
pub(super) struct FakeDown {
    /// User bytes waiting for the upstream (any channel).
    pub inbound: Vec<u8>,
    /// What `send_data` may still take.
    pub window: usize,
    /// Taken by `send_data`, within `window`.
    pub out: Vec<u8>,
    /// Taken by `send_stderr`, all of it.
    pub err: Vec<u8>,
    pub log: Vec<String>,
    /// The user forwarded an agent.
    pub agent: bool,
    /// Calls of `open_agent` so far.
    pub agents_opened: u32,
}

impl Down for FakeDown {
    fn inbound(&self, _ch: ChannelId) -> &[u8] {
        &self.inbound
    }
    fn consumed(&mut self, _ch: ChannelId, n: usize) -> usize {
        self.inbound.drain(..n);
        n
    }
    fn send_data(&mut self, _ch: ChannelId, data: &[u8], _now: Instant) -> usize {
        let n = data.len().min(self.window);
        self.window -= n;
        self.out.extend_from_slice(&data[..n]);
        n
    }
    fn send_stderr(&mut self, _ch: ChannelId, data: &[u8], _now: Instant) -> usize {
        self.err.extend_from_slice(data);
        data.len()
    }
    fn eof(&mut self, _ch: ChannelId) {
        self.log.push("eof".into());
    }
    fn send_eow(&mut self, _ch: ChannelId) {
        self.log.push("eow".into());
    }
    fn closed(&mut self, ch: ChannelId) {
        self.log.push(format!("close {}", ch.0));
    }
    fn exited(&mut self, _ch: ChannelId, status: ExitStatus) {
        self.log.push(format!("exit {status:?}"));
    }
    fn opened(&mut self, _ch: ChannelId) {
        self.log.push("opened".into());
    }
    fn open_failed(&mut self, _ch: ChannelId, code: u32, text: &str) {
        self.log.push(format!("open-failed {code} {text}"));
    }
    fn listen_result(&mut self, listener: ListenerId, result: Result<u16, ()>) {
        self.log.push(format!("listen {} {result:?}", listener.0));
    }
    fn forwarded(&mut self, listener: ListenerId, _o: &str, _p: u16) -> Option<ChannelId> {
        self.log.push(format!("forwarded on {}", listener.0));
        Some(ChannelId(100))
    }
    fn agent_requested(&self) -> bool {
        self.agent
    }
    fn open_agent(&mut self) -> Option<ChannelId> {
        self.log.push("open agent".into());
        self.agents_opened += 1;
        self.agent.then_some(ChannelId(200 + self.agents_opened))
    }
}
