//! A channel's life (RFC 4254 §5.1, §5.3): CHANNEL_OPEN of each type checked against the
//! policy and the bounds, the backend's connect result as confirmation or failure, and EOF
//! and CLOSE in each direction until the number is free again.

use super::{
    channel::{Channel, Kind, Phase},
    forward, msgs,
    session::Session,
    ChannelId, Connection, Event,
};
use crate::service::{Outbound, ServiceError};
use crate::wire::msg_no;

impl Connection {
    pub(super) fn on_channel_open(
        &mut self,
        out: &mut dyn Outbound,
        p: &[u8],
    ) -> Result<(), ServiceError> {
        let open = msgs::ChannelOpen::parse(p)?;
        let sender = open.sender;
        let refuse = |out: &mut dyn Outbound, code: u32, text: &str| -> Result<(), ServiceError> {
            out.send_with(&mut |o| msgs::encode_open_failure(o, sender, code, text))?;
            Ok(())
        };
        match open.channel_type {
            b"session" => {
                open.rest.finish("session open")?;
                if self.no_more_sessions {
                    return refuse(out, msgs::OPEN_ADMINISTRATIVELY_PROHIBITED, "no more sessions");
                }
                if self.session_count() >= self.policy.max_sessions {
                    return refuse(out, msgs::OPEN_RESOURCE_SHORTAGE, "too many sessions");
                }
                let Some(id) = self.free_slot() else {
                    return refuse(out, msgs::OPEN_RESOURCE_SHORTAGE, "too many channels");
                };
                let window = self.new_window();
                let session = Session { any_subsystem: self.proxied, ..Session::default() };
                let mut ch = Channel::new(Kind::Session(session), Phase::Open, sender, window);
                ch.peer_window = open.window;
                ch.peer_max_packet = open.max_packet;
                self.insert(id, ch);
                let (w, m) = (window, self.policy.max_packet);
                out.send_with(&mut |o| msgs::encode_open_confirmation(o, sender, id.0, w, m))?;
                Ok(())
            }
            b"direct-tcpip" => {
                let ((host, port), (orig, orig_port)) = msgs::parse_direct_tcpip(open.rest)?;
                let allowed = if self.proxied {
                    let r = &self.restrictions;
                    !r.no_port_forwarding
                        && r.permit_open
                            .as_ref()
                            .is_none_or(|k| forward::permit_open_allows(k, host, port))
                } else {
                    forward::may_open(&self.policy.permit_open, &self.restrictions, host, port)
                };
                if !allowed {
                    return refuse(
                        out,
                        msgs::OPEN_ADMINISTRATIVELY_PROHIBITED,
                        "administratively prohibited",
                    );
                }
                let Some(id) = self.free_slot() else {
                    return refuse(out, msgs::OPEN_RESOURCE_SHORTAGE, "too many channels");
                };
                let window = self.new_window();
                let mut ch = Channel::new(Kind::DirectTcpip, Phase::OpeningBackend, sender, window);
                ch.peer_window = open.window;
                ch.peer_max_packet = open.max_packet;
                self.insert(id, ch);
                self.events.push_back(Event::OpenBackend {
                    channel: id,
                    host: host.to_string(),
                    port,
                    originator: orig.to_string(),
                    originator_port: orig_port,
                });
                Ok(())
            }
            b"direct-streamlocal@openssh.com" => {
                let path = msgs::parse_direct_streamlocal(open.rest)?;
                // Proxied: the upstream's socket, the upstream's to allow.
                let allowed = msgs::socket_path_usable(path)
                    && if self.proxied {
                        !self.restrictions.no_port_forwarding
                    } else {
                        forward::may_open_path(
                            &self.policy.permit_open_path,
                            &self.restrictions,
                            path,
                        )
                    };
                if !allowed {
                    return refuse(
                        out,
                        msgs::OPEN_ADMINISTRATIVELY_PROHIBITED,
                        "administratively prohibited",
                    );
                }
                let Some(id) = self.free_slot() else {
                    return refuse(out, msgs::OPEN_RESOURCE_SHORTAGE, "too many channels");
                };
                let window = self.new_window();
                let mut ch = Channel::new(Kind::DirectTcpip, Phase::OpeningBackend, sender, window);
                ch.peer_window = open.window;
                ch.peer_max_packet = open.max_packet;
                self.insert(id, ch);
                self.events
                    .push_back(Event::OpenUnixBackend { channel: id, path: path.to_string() });
                Ok(())
            }
            _ => refuse(out, msgs::OPEN_UNKNOWN_CHANNEL_TYPE, "unknown channel type"),
        }
    }

    pub(super) fn on_open_confirmation(&mut self, p: &[u8]) -> Result<(), ServiceError> {
        let (id, sender, window, max_packet) = msgs::parse_open_confirmation(p)?;
        let ch = self.channel_mut(id)?;
        if ch.phase != Phase::OpeningByUs {
            return Err(ServiceError::protocol("confirmation for a channel we did not open"));
        }
        ch.phase = Phase::Open;
        ch.peer_id = sender;
        ch.peer_window = window;
        ch.peer_max_packet = max_packet;
        self.events.push_back(Event::ChannelOpened { channel: ChannelId(id) });
        Ok(())
    }

    pub(super) fn on_open_failure(&mut self, p: &[u8]) -> Result<(), ServiceError> {
        let (id, code, text) = msgs::parse_open_failure(p)?;
        let ch = self.channel_mut(id)?;
        if ch.phase != Phase::OpeningByUs {
            return Err(ServiceError::protocol("open failure for a channel we did not open"));
        }
        self.remove(ChannelId(id));
        let text = String::from_utf8_lossy(text.get(..256).unwrap_or(text)).into_owned();
        self.events.push_back(Event::ChannelOpenFailed { channel: ChannelId(id), code, text });
        Ok(())
    }

    pub(super) fn on_eof(&mut self, p: &[u8]) -> Result<(), ServiceError> {
        let id = msgs::recipient(p)?;
        let ch = self.open_channel(id)?;
        if ch.peer_eof {
            return Err(ServiceError::protocol("second EOF"));
        }
        ch.peer_eof = true;
        let closing = ch.close_sent;
        if !closing {
            self.events.push_back(Event::ChannelEof { channel: ChannelId(id) });
        }
        Ok(())
    }

    /// RFC 4254 §5.3: answer CLOSE with CLOSE unless ours already went; then the number is free.
    /// Data the client sent before its CLOSE is still delivered: while `inbound` holds some,
    /// the answer waits until the runtime has written it (`backend_consumed`) or the backend
    /// is gone (`backend_closed`); the runtime sees this as EOF.
    pub(super) fn on_close(
        &mut self,
        out: &mut dyn Outbound,
        p: &[u8],
    ) -> Result<(), ServiceError> {
        let id = msgs::recipient(p)?;
        let ch = self.open_channel(id)?;
        ch.peer_closed = true;
        if !ch.close_sent && !ch.pending().is_empty() {
            if !ch.peer_eof {
                ch.peer_eof = true;
                self.events.push_back(Event::ChannelEof { channel: ChannelId(id) });
            }
            return Ok(());
        }
        if !ch.close_sent {
            ch.close_sent = true;
            let peer = ch.peer_id;
            out.send_with(&mut |o| msgs::encode_channel_only(o, msg_no::CHANNEL_CLOSE, peer))?;
        }
        self.finish(ChannelId(id));
        Ok(())
    }

    /// The backend of a direct-tcpip channel connected: CHANNEL_OPEN_CONFIRMATION.
    pub fn backend_connected(
        &mut self,
        out: &mut dyn Outbound,
        channel: ChannelId,
    ) -> Result<(), ServiceError> {
        let m = self.policy.max_packet;
        let Some(ch) = self.get_mut(channel) else {
            return Ok(());
        };
        if ch.phase != Phase::OpeningBackend {
            return Ok(());
        }
        ch.phase = Phase::Open;
        let w = ch.initial_window;
        let peer = ch.peer_id;
        out.send_with(&mut |o| msgs::encode_open_confirmation(o, peer, channel.0, w, m))?;
        Ok(())
    }

    /// The backend could not be reached: CHANNEL_OPEN_FAILURE with an RFC 4254 §5.1 code
    /// (`msgs::OPEN_CONNECT_FAILED` usually), and the number is free again.
    pub fn backend_failed(
        &mut self,
        out: &mut dyn Outbound,
        channel: ChannelId,
        code: u32,
        text: &str,
    ) -> Result<(), ServiceError> {
        let Some(ch) = self.get_mut(channel) else {
            return Ok(());
        };
        if ch.phase != Phase::OpeningBackend {
            return Ok(());
        }
        let peer = ch.peer_id;
        self.remove(channel);
        out.send_with(&mut |o| msgs::encode_open_failure(o, peer, code, text))?;
        Ok(())
    }

    /// The backend will send no more (its read side hit EOF): CHANNEL_EOF, once.
    pub fn backend_eof(
        &mut self,
        out: &mut dyn Outbound,
        channel: ChannelId,
    ) -> Result<(), ServiceError> {
        let Some(ch) = self.get_mut(channel) else {
            return Ok(());
        };
        if ch.phase != Phase::Open || ch.eof_sent || ch.close_sent {
            return Ok(());
        }
        ch.eof_sent = true;
        let peer = ch.peer_id;
        out.send_with(&mut |o| msgs::encode_channel_only(o, msg_no::CHANNEL_EOF, peer))?;
        Ok(())
    }

    /// The backend is gone: EOF (if not sent) then CLOSE, once each. The number is free once
    /// the client's CLOSE arrives too.
    pub fn backend_closed(
        &mut self,
        out: &mut dyn Outbound,
        channel: ChannelId,
    ) -> Result<(), ServiceError> {
        self.backend_eof(out, channel)?;
        let Some(ch) = self.get_mut(channel) else {
            return Ok(());
        };
        if ch.phase != Phase::Open || ch.close_sent {
            return Ok(());
        }
        ch.close_sent = true;
        let peer = ch.peer_id;
        out.send_with(&mut |o| msgs::encode_channel_only(o, msg_no::CHANNEL_CLOSE, peer))?;
        self.finish(channel);
        Ok(())
    }
}
