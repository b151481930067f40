//! What the service layers (user authentication, RFC 4252; connection protocol, RFC 4254) need
//! from the transport: a way to send one message and a backpressure signal. Behind a trait so
//! both layers are unit-tested without a [`Transport`] (and without any crypto).

use crate::transport::{DisconnectReason, Error, Transport};

/// Sends service-layer messages. Implemented by [`Transport`] (encode straight into the sealer's
/// buffer) and by a collecting fake in tests.
pub trait Outbound {
    /// Encodes one message with `f` and queues it for sending.
    fn send_with(&mut self, f: &mut dyn FnMut(&mut Vec<u8>)) -> Result<(), Error>;
    /// True while producers of bulk data (channel data) should pause.
    fn is_backpressured(&self) -> bool;
    /// Starts a message whose last `max` bytes the caller fills in place (see
    /// [`Transport::begin_fill`]); `None`: send it with `send_with` instead.
    fn begin_fill(&mut self, _prefix: &[u8], _max: usize) -> Option<&mut [u8]> {
        None
    }
    /// Ends the message begun by `begin_fill` with `n` bytes filled (0 cancels it).
    fn commit_fill(&mut self, _n: usize) -> Result<(), Error> {
        Ok(())
    }
}

impl Outbound for Transport {
    fn send_with(&mut self, f: &mut dyn FnMut(&mut Vec<u8>)) -> Result<(), Error> {
        Transport::send_with(self, |out| f(out))
    }

    fn begin_fill(&mut self, prefix: &[u8], max: usize) -> Option<&mut [u8]> {
        Transport::begin_fill(self, prefix, max)
    }

    fn commit_fill(&mut self, n: usize) -> Result<(), Error> {
        Transport::commit_fill(self, n)
    }

    fn is_backpressured(&self) -> bool {
        Transport::is_backpressured(self)
    }
}

/// A peer fault (or a local send failure) a service layer cannot continue after: the owner turns
/// it into a DISCONNECT with this reason code and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    pub reason: DisconnectReason,
    pub text: String,
}

impl ServiceError {
    pub fn new(reason: DisconnectReason, text: impl Into<String>) -> Self {
        ServiceError { reason, text: text.into() }
    }

    /// RFC 4253 §11.1 code 2, the usual answer to a malformed or out-of-place message.
    pub fn protocol(text: impl Into<String>) -> Self {
        Self::new(DisconnectReason::ProtocolError, text)
    }

    /// Into the transport's error type, for `Transport::fail`.
    pub fn into_transport(self) -> Error {
        Error::Service { reason: self.reason, text: self.text }
    }
}

impl From<Error> for ServiceError {
    /// A send failure (held-back queue overflow, sealing fault) ends the connection too.
    fn from(e: Error) -> Self {
        let (reason, text) = e.disconnect();
        ServiceError { reason, text }
    }
}

impl From<crate::wire::DecodeError> for ServiceError {
    fn from(e: crate::wire::DecodeError) -> Self {
        ServiceError::protocol(e.to_string())
    }
}

/// Test double: collects each message's payload.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct VecOutbound {
    pub msgs: Vec<Vec<u8>>,
    pub backpressured: bool,
}

#[cfg(test)]
impl VecOutbound {
    /// Message numbers sent so far, in order.
    pub fn numbers(&self) -> Vec<u8> {
        self.msgs.iter().map(|m| m.first().copied().unwrap_or(0)).collect()
    }

    pub fn take(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.msgs)
    }
}

#[cfg(test)]
impl Outbound for VecOutbound {
    fn send_with(&mut self, f: &mut dyn FnMut(&mut Vec<u8>)) -> Result<(), Error> {
        let mut v = Vec::new();
        f(&mut v);
        self.msgs.push(v);
        Ok(())
    }

    fn is_backpressured(&self) -> bool {
        self.backpressured
    }
}
