//! Port forwarding and the other global requests (RFC 4254 §4, §7): tcpip-forward and
//! streamlocal-forward with their cancels, checked against `--permit-listen` and the key's
//! options; the runtime's answer (`listen_result`) and the connections it accepts
//! (`forwarded_connection`); replies in request order; our keepalives and their answers.

use super::{
    channel::{Channel, Kind, Phase},
    forward, msgs, ChannelId, Connection, Event, ForwardError, Listener, ListenerId, Reply,
    MAX_PENDING_GLOBAL_REPLIES,
};
use crate::service::{Outbound, ServiceError};
use crate::transport::DisconnectReason;

impl Connection {
    pub(super) fn on_global_request(
        &mut self,
        out: &mut dyn Outbound,
        p: &[u8],
    ) -> Result<(), ServiceError> {
        let (name, want_reply, mut r) = msgs::parse_global_request(p)?;
        match name {
            b"tcpip-forward" => {
                let (addr, port) = msgs::host_port(&mut r, "address to bind")?;
                r.finish("tcpip-forward")?;
                // Proxied: the upstream decides where it listens; key options still apply.
                let permitted = if self.proxied {
                    let r = &self.restrictions;
                    !r.no_port_forwarding
                        && r.permit_listen
                            .as_ref()
                            .is_none_or(|k| forward::permit_listen_allows(k, addr, port))
                } else {
                    forward::may_listen(&self.policy.permit_listen, &self.restrictions, addr, port)
                };
                let allowed = permitted && self.listeners.len() < self.policy.max_listeners;
                if !allowed {
                    return self.reply(out, want_reply, Reply::Failure);
                }
                let reply = if want_reply { Some(self.push_reply(Reply::Pending)?) } else { None };
                let id = ListenerId(self.next_listener);
                self.next_listener = self.next_listener.wrapping_add(1);
                self.listeners.push(Listener {
                    id,
                    addr: addr.to_string(),
                    requested_port: port,
                    bound_port: None,
                    unix: false,
                    reply,
                });
                self.events.push_back(Event::Listen { listener: id, addr: addr.to_string(), port });
                Ok(())
            }
            b"streamlocal-forward@openssh.com" => {
                let path = msgs::socket_path(&mut r, "socket path")?;
                r.finish("streamlocal-forward")?;
                let allowed = msgs::socket_path_usable(path)
                    && forward::may_listen_path(
                        &self.policy.permit_listen_path,
                        &self.restrictions,
                        path,
                    )
                    && self.listeners.len() < self.policy.max_listeners
                    && !self.listeners.iter().any(|l| l.unix && l.addr == path);
                if !allowed {
                    return self.reply(out, want_reply, Reply::Failure);
                }
                let reply = if want_reply { Some(self.push_reply(Reply::Pending)?) } else { None };
                let id = ListenerId(self.next_listener);
                self.next_listener = self.next_listener.wrapping_add(1);
                self.listeners.push(Listener {
                    id,
                    addr: path.to_string(),
                    requested_port: 0,
                    bound_port: None,
                    unix: true,
                    reply,
                });
                self.events.push_back(Event::ListenUnix { listener: id, path: path.to_string() });
                Ok(())
            }
            b"cancel-streamlocal-forward@openssh.com" => {
                let path = msgs::socket_path(&mut r, "socket path")?;
                r.finish("cancel-streamlocal-forward")?;
                let found = self.listeners.iter().position(|l| {
                    l.unix && l.addr == path && l.bound_port.is_some() && l.reply.is_none()
                });
                match found {
                    Some(i) => {
                        let l = self.listeners.remove(i);
                        self.events.push_back(Event::Unlisten { listener: l.id });
                        self.reply(out, want_reply, Reply::Success(None))
                    }
                    None => self.reply(out, want_reply, Reply::Failure),
                }
            }
            b"cancel-tcpip-forward" => {
                let (addr, port) = msgs::host_port(&mut r, "address to bind")?;
                r.finish("cancel-tcpip-forward")?;
                let found = self.listeners.iter().position(|l| {
                    !l.unix && l.addr == addr && l.bound_port == Some(port) && l.reply.is_none()
                });
                match found {
                    Some(i) => {
                        let l = self.listeners.remove(i);
                        self.events.push_back(Event::Unlisten { listener: l.id });
                        self.reply(out, want_reply, Reply::Success(None))
                    }
                    None => self.reply(out, want_reply, Reply::Failure),
                }
            }
            b"no-more-sessions@openssh.com" => {
                self.no_more_sessions = true;
                self.reply(out, want_reply, Reply::Success(None))
            }
            _ => self.reply(out, want_reply, Reply::Failure),
        }
    }

    /// Queues a reply slot; replies must leave in request order.
    pub(super) fn push_reply(&mut self, reply: Reply) -> Result<u64, ServiceError> {
        if self.replies.len() >= MAX_PENDING_GLOBAL_REPLIES {
            return Err(ServiceError::protocol("too many outstanding global requests"));
        }
        let id = self.next_reply;
        self.next_reply = self.next_reply.wrapping_add(1);
        self.replies.push_back((id, reply));
        Ok(id)
    }

    pub(super) fn reply(
        &mut self,
        out: &mut dyn Outbound,
        want_reply: bool,
        reply: Reply,
    ) -> Result<(), ServiceError> {
        if want_reply {
            self.push_reply(reply)?;
            self.flush_replies(out)?;
        }
        Ok(())
    }

    pub(super) fn flush_replies(&mut self, out: &mut dyn Outbound) -> Result<(), ServiceError> {
        while let Some((_, r)) = self.replies.front() {
            match r {
                Reply::Pending => break,
                Reply::Success(port) => {
                    let port = *port;
                    out.send_with(&mut |o| msgs::encode_request_success(o, port))?;
                }
                Reply::Failure => out.send_with(&mut |o| msgs::encode_request_failure(o))?,
            }
            self.replies.pop_front();
        }
        Ok(())
    }

    /// A reply to one of our keepalives: the client is alive.
    pub(super) fn on_global_reply(&mut self) -> Result<(), ServiceError> {
        if self.keepalives_outstanding == 0 {
            return Err(ServiceError::protocol("global request reply without a request"));
        }
        self.keepalives_outstanding -= 1;
        self.keepalives_missed = 0;
        Ok(())
    }

    /// The result of a `Listen` event: the bound port, or failure. Replies to the client in
    /// request order (with the port when it asked for port 0, RFC 4254 §7.1).
    pub fn listen_result(
        &mut self,
        out: &mut dyn Outbound,
        listener: ListenerId,
        result: Result<u16, ()>,
    ) -> Result<(), ServiceError> {
        let Some(i) =
            self.listeners.iter().position(|l| l.id == listener && l.bound_port.is_none())
        else {
            return Ok(());
        };
        let reply = match result {
            Ok(port) => {
                let l = self.listeners.get_mut(i);
                let mut reply = None;
                if let Some(l) = l {
                    l.bound_port = Some(port);
                    let with_port = l.requested_port == 0 && !l.unix;
                    reply = l
                        .reply
                        .take()
                        .map(|slot| (slot, Reply::Success(with_port.then_some(u32::from(port)))));
                }
                reply
            }
            Err(()) => {
                let l = self.listeners.remove(i);
                l.reply.map(|slot| (slot, Reply::Failure))
            }
        };
        if let Some((slot, r)) = reply {
            if let Some(entry) = self.replies.iter_mut().find(|(s, _)| *s == slot) {
                entry.1 = r;
            }
            self.flush_replies(out)?;
        }
        Ok(())
    }

    /// A connection arrived on a listener: opens a forwarded-tcpip channel to the client
    /// (RFC 4254 §7.2). The answer comes as `ChannelOpened` or `ChannelOpenFailed`.
    pub fn forwarded_connection(
        &mut self,
        out: &mut dyn Outbound,
        listener: ListenerId,
        originator: &str,
        originator_port: u16,
    ) -> Result<Result<ChannelId, ForwardError>, ServiceError> {
        let Some(l) = self.listeners.iter().find(|l| l.id == listener) else {
            return Ok(Err(ForwardError::NoListener));
        };
        let Some(port) = l.bound_port else {
            return Ok(Err(ForwardError::NoListener));
        };
        let (addr, unix) = (l.addr.clone(), l.unix);
        let Some(id) = self.free_slot() else {
            return Ok(Err(ForwardError::TooManyChannels));
        };
        let window = self.new_window();
        let ch = Channel::new(Kind::ForwardedTcpip(listener), Phase::OpeningByUs, 0, window);
        self.insert(id, ch);
        let (w, m) = (window, self.policy.max_packet);
        if unix {
            out.send_with(&mut |o| msgs::encode_open_forwarded_streamlocal(o, id.0, w, m, &addr))?;
            return Ok(Ok(id));
        }
        out.send_with(&mut |o| {
            msgs::encode_open_forwarded(o, id.0, w, m, (&addr, port), (originator, originator_port))
        })?;
        Ok(Ok(id))
    }

    /// The listener a forwarded-tcpip channel came from.
    pub fn channel_listener(&self, channel: ChannelId) -> Option<ListenerId> {
        match self.get(channel).map(|c| &c.kind) {
            Some(Kind::ForwardedTcpip(l)) => Some(*l),
            _ => None,
        }
    }

    /// A keepalive is due (`--keepalive-interval`): a global request with want-reply, as
    /// OpenSSH's ClientAliveInterval. Past `keepalive_count_max` unanswered: give up.
    pub fn keepalive_tick(&mut self, out: &mut dyn Outbound) -> Result<(), ServiceError> {
        if self.keepalives_missed >= self.policy.keepalive_count_max {
            return Err(ServiceError::new(DisconnectReason::ConnectionLost, "keepalive timeout"));
        }
        self.keepalives_missed += 1;
        self.keepalives_outstanding = self.keepalives_outstanding.saturating_add(1);
        out.send_with(&mut |o| msgs::encode_global_request(o, "keepalive@openssh.com", true))?;
        Ok(())
    }
}
