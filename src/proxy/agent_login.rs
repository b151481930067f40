//! Upstream login with the user's forwarded agent (`auth = "agent"`), sans-IO: the gateway
//! never holds a user secret. Once the upstream's host key is accepted and the user has asked
//! for agent forwarding (`ssh -A`), an `auth-agent@openssh.com` channel is opened to the user,
//! the agent's keys are listed, and each usable one (at most [`MAX_KEYS_TRIED`]) is offered
//! upstream with publickey; every signature the client core asks for
//! ([`Event::Sign`](crate::client::Event::Sign)) is a SIGN_REQUEST on that channel.
//!
//! Both cores are reached through small traits ([`Down`] for the user's side, [`Login`] for
//! the upstream client core), so the sequence is tested without sockets. What is held is
//! bounded: the agent's replies by [`agent::MAX_FRAME`], outgoing frames by [`MAX_OUT`], the
//! keys by [`MAX_KEYS_TRIED`].

use super::agent::{AgentClient, AgentError, Answer, Identity};
use super::bridge::Down;
use crate::algo::host_key::HostKeyAlg;
use crate::client::{AgentKey, ClientConnection, Method, UseError, UserSigner};
use crate::connection::ChannelId;
use crate::wire::Reader;
use std::sync::Arc;
use std::time::Instant;

/// Keys offered upstream at most. OpenSSH's sshd ends the connection at its `MaxAuthTries`
/// (6 by default) failed attempts, so trying more would turn "refused every key" into a
/// disconnect.
pub const MAX_KEYS_TRIED: usize = 5;
/// Agent request bytes waiting for the user's channel window (a few small frames at most).
pub const MAX_OUT: usize = 64 * 1024;

/// The upstream client core as the login sees it.
pub trait Login {
    /// One publickey attempt with a key whose private half is in the user's agent.
    fn try_key(&mut self, user: &str, key: Arc<dyn UserSigner>) -> Result<(), UseError>;
    /// The agent's answer to the core's sign request.
    fn signed(&mut self, sig: Result<Vec<u8>, String>);
}

impl Login for ClientConnection {
    fn try_key(&mut self, user: &str, key: Arc<dyn UserSigner>) -> Result<(), UseError> {
        self.authenticate(user, Method::PublicKey(key))
    }
    fn signed(&mut self, sig: Result<Vec<u8>, String>) {
        self.sign_done(sig)
    }
}

/// Why the login cannot go on; the runtime words it for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentLoginError {
    /// The user did not forward an agent (no `ssh -A`, or the key forbids it), or its
    /// channel was refused or closed before the login was done.
    NoAgent,
    /// The agent holds no key of a type the gateway can use.
    NoKeys,
    /// The upstream refused every key tried (`tried` of them).
    Refused { tried: usize },
    /// The agent's bytes could not be used.
    Agent(String),
    /// The upstream core refused the attempt (a caller mistake or a closed connection).
    Core(String),
}

impl From<AgentError> for AgentLoginError {
    fn from(e: AgentError) -> Self {
        AgentLoginError::Agent(e.to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The upstream is not ready for a login yet (connect, key exchange).
    Idle,
    /// Ready to log in; the user has not asked for agent forwarding yet.
    WaitForwarding,
    /// The agent channel to the user is being opened.
    Opening,
    /// REQUEST_IDENTITIES sent.
    Listing,
    /// A key is being tried upstream.
    Trying,
    /// Logged in (or given up): the agent channel is closed.
    Done,
}

/// One upstream login with the user's agent.
#[derive(Debug)]
pub struct AgentLogin {
    user: String,
    phase: Phase,
    channel: Option<ChannelId>,
    client: AgentClient,
    /// Keys still to try, in the agent's order (at most `MAX_KEYS_TRIED` in all).
    keys: std::collections::VecDeque<(Vec<u8>, HostKeyAlg)>,
    tried: usize,
    next_tag: u64,
    /// Request bytes not yet taken by the channel.
    out: Vec<u8>,
}

/// What each step returns: an error ends the login.
pub type Step = Result<(), AgentLoginError>;

impl AgentLogin {
    /// A login as `user` upstream.
    pub fn new(user: &str) -> Self {
        AgentLogin {
            user: user.to_string(),
            phase: Phase::Idle,
            channel: None,
            client: AgentClient::new(),
            keys: std::collections::VecDeque::new(),
            tried: 0,
            next_tag: 0,
            out: Vec::new(),
        }
    }

    /// Memory held for the user's agent (a partial reply, requests not yet sent): charged
    /// with the connection's.
    pub fn held_bytes(&self) -> usize {
        self.client.buffered() + self.out.capacity()
    }

    /// Whether `ch` is the login's agent channel (its events are the login's, not the
    /// bridge's).
    pub fn owns(&self, ch: ChannelId) -> bool {
        self.channel == Some(ch)
    }

    /// Whether the login still waits for the user to forward an agent.
    pub fn waiting_for_agent(&self) -> bool {
        matches!(self.phase, Phase::Idle | Phase::WaitForwarding)
    }

    /// The upstream's host key is accepted: log in as soon as the agent is reachable.
    pub fn start(&mut self, d: &mut dyn Down) -> Step {
        if self.phase == Phase::Idle {
            self.phase = Phase::WaitForwarding;
        }
        self.forwarding(d)
    }

    /// The user asked for agent forwarding (or may have): open the channel if the login waits
    /// for it.
    pub fn forwarding(&mut self, d: &mut dyn Down) -> Step {
        if self.phase != Phase::WaitForwarding || !d.agent_requested() {
            return Ok(());
        }
        let ch = d.open_agent().ok_or(AgentLoginError::NoAgent)?;
        self.channel = Some(ch);
        self.phase = Phase::Opening;
        Ok(())
    }

    /// A session started (exec, shell, subsystem). OpenSSH asks for agent forwarding before
    /// that, so a login still waiting for it will not get it.
    pub fn session_started(&mut self, d: &dyn Down) -> Step {
        if self.waiting_for_agent() && !d.agent_requested() {
            return Err(AgentLoginError::NoAgent);
        }
        Ok(())
    }

    /// The user's side confirmed the agent channel: ask for the keys.
    pub fn opened(&mut self, d: &mut dyn Down, now: Instant) -> Step {
        if self.phase != Phase::Opening {
            return Ok(());
        }
        self.phase = Phase::Listing;
        let frame = self.client.request_identities()?;
        self.queue(&frame)?;
        self.flush(d, now);
        Ok(())
    }

    /// The agent channel was refused, or ended (EOF, CLOSE) while the login needed it.
    pub fn channel_gone(&mut self) -> Step {
        self.channel = None;
        match self.phase {
            Phase::Done => Ok(()),
            _ => {
                self.phase = Phase::Done;
                Err(AgentLoginError::NoAgent)
            }
        }
    }

    /// Moves request bytes out and the agent's answers in; returns whether anything moved.
    pub fn pump(
        &mut self,
        d: &mut dyn Down,
        up: &mut dyn Login,
        now: Instant,
    ) -> Result<bool, AgentLoginError> {
        let Some(ch) = self.channel.filter(|_| self.phase != Phase::Done) else {
            return Ok(false);
        };
        let mut progress = self.flush(d, now);
        loop {
            let data = d.inbound(ch);
            if data.is_empty() {
                break;
            }
            let (n, answer) = self.client.receive(data)?;
            if n > 0 {
                d.consumed(ch, n);
                progress = true;
            }
            match answer {
                Some(a) => self.answer(a, up)?,
                None if n == 0 => break,
                None => {}
            }
        }
        Ok(progress)
    }

    fn answer(&mut self, a: Answer, up: &mut dyn Login) -> Step {
        match a {
            Answer::Identities(ids) => {
                if self.phase != Phase::Listing {
                    return Err(AgentLoginError::Agent("keys nobody asked for".into()));
                }
                self.keys = usable(&ids).take(MAX_KEYS_TRIED).collect();
                if self.keys.is_empty() {
                    self.phase = Phase::Done;
                    return Err(AgentLoginError::NoKeys);
                }
                self.phase = Phase::Trying;
                self.next_key(up)
            }
            Answer::Signature { blob, .. } => {
                up.signed(Ok(blob));
                Ok(())
            }
            Answer::Refused(super::agent::Asked::Identities) => {
                self.phase = Phase::Done;
                Err(AgentLoginError::NoKeys)
            }
            // The agent declined (a confirmation was refused, the key went): the core counts
            // it as a failed attempt and the next key is tried.
            Answer::Refused(_) => {
                up.signed(Err("the agent refused to sign".into()));
                Ok(())
            }
        }
    }

    /// The upstream core wants a signature over `data` with `key` (an agent key).
    pub fn sign(
        &mut self,
        key: &dyn UserSigner,
        data: &[u8],
        d: &mut dyn Down,
        now: Instant,
    ) -> Step {
        if self.phase != Phase::Trying {
            return Err(AgentLoginError::Agent("a signature asked for outside the login".into()));
        }
        self.next_tag += 1;
        let frame =
            self.client.sign(self.next_tag, key.public_blob(), data, key.algorithm().name())?;
        self.queue(&frame)?;
        self.flush(d, now);
        Ok(())
    }

    /// The upstream refused the last key: the next one, or the end.
    pub fn auth_failed(&mut self, up: &mut dyn Login) -> Step {
        if self.phase != Phase::Trying {
            return Ok(());
        }
        self.next_key(up)
    }

    fn next_key(&mut self, up: &mut dyn Login) -> Step {
        let Some((blob, alg)) = self.keys.pop_front() else {
            self.phase = Phase::Done;
            return Err(AgentLoginError::Refused { tried: self.tried });
        };
        self.tried += 1;
        up.try_key(&self.user, Arc::new(AgentKey { public_blob: blob, alg }))
            .map_err(|e| AgentLoginError::Core(e.to_string()))
    }

    /// Logged in (or the upstream is gone): the agent channel to the user is closed.
    pub fn finish(&mut self, d: &mut dyn Down) {
        self.phase = Phase::Done;
        self.out = Vec::new();
        self.client = AgentClient::new();
        self.keys.clear();
        if let Some(ch) = self.channel.take() {
            d.closed(ch);
        }
    }

    fn queue(&mut self, frame: &[u8]) -> Step {
        if self.out.len() + frame.len() > MAX_OUT {
            return Err(AgentLoginError::Agent("agent requests pile up".into()));
        }
        self.out.extend_from_slice(frame);
        Ok(())
    }

    fn flush(&mut self, d: &mut dyn Down, now: Instant) -> bool {
        let Some(ch) = self.channel else { return false };
        if self.out.is_empty() || matches!(self.phase, Phase::Opening | Phase::Done) {
            return false;
        }
        let n = d.send_data(ch, &self.out, now);
        self.out.drain(..n);
        n > 0
    }
}

/// The agent's keys the gateway can sign with, and the signature algorithm for each (RSA keys
/// sign `rsa-sha2-512`; certificates and security-key types are skipped).
fn usable(ids: &[Identity]) -> impl Iterator<Item = (Vec<u8>, HostKeyAlg)> + '_ {
    ids.iter().filter_map(|id| {
        let kind = Reader::new(&id.key_blob).utf8("key type").ok()?;
        let alg = match kind {
            "ssh-rsa" => HostKeyAlg::RsaSha512,
            "ssh-ed25519"
            | "ecdsa-sha2-nistp256"
            | "ecdsa-sha2-nistp384"
            | "ecdsa-sha2-nistp521" => HostKeyAlg::from_name(kind)?,
            _ => return None,
        };
        Some((id.key_blob.clone(), alg))
    })
}

#[cfg(test)]
#[path = "agent_login_tests.rs"]
mod tests;
