//! Channel requests (RFC 4254 §6): session requests handed to the channel's [`Session`],
//! agent forwarding (OpenSSH PROTOCOL.agent), and the session's end as exit-status or
//! exit-signal.

use super::{
    channel::{Channel, Kind, Phase},
    msgs,
    session::SessionAction,
    table::slot_mut,
    AgentChannelError, ChannelId, Connection, Event, ExitStatus,
};
use crate::service::{Outbound, ServiceError};
use crate::wire::msg_no;

impl Connection {
    pub(super) fn on_channel_request(
        &mut self,
        out: &mut dyn Outbound,
        p: &[u8],
    ) -> Result<(), ServiceError> {
        let (id, name, want_reply, r) = msgs::parse_channel_request(p)?;
        if name == b"auth-agent-req@openssh.com" {
            r.finish("auth-agent-req")?;
            return self.on_agent_request(out, id, want_reply);
        }
        let forced_command = self.restrictions.command.clone();
        let allow_pty = !self.restrictions.no_pty;
        let env_allow = &self.policy.env_allow;
        let subsystems = &self.policy.subsystems;
        let Some(ch) = slot_mut(&mut self.channels, &self.gens, ChannelId(id)) else {
            return Err(ServiceError::protocol("request for an unknown channel"));
        };
        if ch.phase != Phase::Open || ch.peer_closed {
            return Err(ServiceError::protocol("request for a channel that is not open"));
        }
        let peer = ch.peer_id;
        let closing = ch.close_sent;
        let action = match &mut ch.kind {
            Kind::Session(s) if !closing => s.request(name, r, env_allow, subsystems, allow_pty)?,
            _ => SessionAction::Refuse,
        };
        let ok = !matches!(action, SessionAction::Refuse);
        if want_reply && !closing {
            let m = if ok { msg_no::CHANNEL_SUCCESS } else { msg_no::CHANNEL_FAILURE };
            out.send_with(&mut |o| msgs::encode_channel_only(o, m, peer))?;
        }
        if let SessionAction::Resize(size) = action {
            self.events.push_back(Event::WindowChange { channel: ChannelId(id), size });
        }
        if let SessionAction::Signal(name) = &action {
            self.events.push_back(Event::Signal { channel: ChannelId(id), name: name.clone() });
        }
        if let SessionAction::Break(ms) = action {
            self.events.push_back(Event::Break { channel: ChannelId(id), ms });
        }
        if let SessionAction::Eow = action {
            self.events.push_back(Event::Eow { channel: ChannelId(id) });
        }
        if let SessionAction::Start { command, subsystem } = action {
            let (env, pty) = match &ch.kind {
                Kind::Session(s) => (s.env.clone(), s.pty.clone()),
                _ => (Vec::new(), None),
            };
            self.events.push_back(Event::Exec {
                channel: ChannelId(id),
                command,
                subsystem,
                env,
                forced_command,
                pty,
            });
        }
        Ok(())
    }

    /// auth-agent-req@openssh.com (OpenSSH PROTOCOL.agent): noted for the session proxy when
    /// allowed, refused otherwise. Only a session may ask, once it is open.
    pub(super) fn on_agent_request(
        &mut self,
        out: &mut dyn Outbound,
        id: u32,
        want_reply: bool,
    ) -> Result<(), ServiceError> {
        let allowed = self.agent_allowed && !self.restrictions.no_agent_forwarding;
        let Some(ch) = slot_mut(&mut self.channels, &self.gens, ChannelId(id)) else {
            return Err(ServiceError::protocol("request for an unknown channel"));
        };
        if ch.phase != Phase::Open || ch.peer_closed {
            return Err(ServiceError::protocol("request for a channel that is not open"));
        }
        let ok = allowed && !ch.close_sent && matches!(ch.kind, Kind::Session(_));
        let peer = ch.peer_id;
        if want_reply && !ch.close_sent {
            let m = if ok { msg_no::CHANNEL_SUCCESS } else { msg_no::CHANNEL_FAILURE };
            out.send_with(&mut |o| msgs::encode_channel_only(o, m, peer))?;
        }
        if ok && self.agent_requested().is_none() {
            self.agent_session = Some(ChannelId(id));
            self.events.push_back(Event::AgentForwarding { channel: ChannelId(id) });
        }
        Ok(())
    }

    /// Opens an `auth-agent@openssh.com` channel to the client's agent (after
    /// [`Event::AgentForwarding`]). The answer comes as `ChannelOpened` or `ChannelOpenFailed`;
    /// then agent requests go out with `send_data` and replies come in as `inbound` (consumed
    /// with `backend_consumed`), as on any channel, and `backend_closed` ends it.
    pub fn open_agent_channel(
        &mut self,
        out: &mut dyn Outbound,
    ) -> Result<Result<ChannelId, AgentChannelError>, ServiceError> {
        if self.agent_requested().is_none() || !self.agent_allowed {
            return Ok(Err(AgentChannelError::NotRequested));
        }
        let Some(id) = self.free_slot() else {
            return Ok(Err(AgentChannelError::TooManyChannels));
        };
        let window = self.new_window();
        self.insert(id, Channel::new(Kind::Agent, Phase::OpeningByUs, 0, window));
        let m = self.policy.max_packet;
        out.send_with(&mut |o| msgs::encode_open_agent(o, id.0, window, m))?;
        Ok(Ok(id))
    }

    /// The session's child exited (call after its output was sent): exit-status or
    /// exit-signal, then EOF, then CLOSE (RFC 4254 §6.10: the status goes before CLOSE).
    pub fn child_exited(
        &mut self,
        out: &mut dyn Outbound,
        channel: ChannelId,
        status: ExitStatus,
    ) -> Result<(), ServiceError> {
        let Some(ch) = self.get_mut(channel) else {
            return Ok(());
        };
        let Kind::Session(s) = &mut ch.kind else {
            return Ok(());
        };
        if s.exited || ch.close_sent || ch.phase != Phase::Open {
            return Ok(());
        }
        s.exited = true;
        let peer = ch.peer_id;
        match &status {
            ExitStatus::Code(c) => out.send_with(&mut |o| msgs::encode_exit_status(o, peer, *c))?,
            ExitStatus::Signal { name, core_dumped, message } => {
                // RFC 4254 §6.10: the name without the "SIG" prefix.
                let name = name.strip_prefix("SIG").unwrap_or(name);
                let (core, msg) = (*core_dumped, message.as_str());
                out.send_with(&mut |o| msgs::encode_exit_signal(o, peer, name, core, msg))?
            }
        }
        self.backend_closed(out, channel)
    }

    /// eow@openssh.com to the client (a proxied upstream will read no more of this session's
    /// data); only on an open session.
    pub fn send_eow(
        &mut self,
        out: &mut dyn Outbound,
        channel: ChannelId,
    ) -> Result<(), ServiceError> {
        let Some(ch) = self.get_mut(channel) else {
            return Ok(());
        };
        if ch.phase != Phase::Open || ch.close_sent || !matches!(ch.kind, Kind::Session(_)) {
            return Ok(());
        }
        let peer = ch.peer_id;
        out.send_with(&mut |o| msgs::encode_eow(o, peer))?;
        Ok(())
    }
}
