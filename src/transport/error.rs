//! Transport errors: one variant per misbehaviour, each mapped to exactly one DISCONNECT reason
//! code in [`Error::disconnect`].

use super::state::Phase;
use super::version::VersionError;
use super::DisconnectReason as R;
use crate::algo::host_key::{HostKeyError, VerifyError};
use crate::algo::kex::gex::GexError;
use crate::algo::kex::KexError;
use crate::packet::PacketError;
use crate::wire::DecodeError;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    Version(VersionError),
    Packet(PacketError),
    /// A message of this number could not be decoded.
    Decode { msg: u8, err: DecodeError },
    /// The state table refused this message number now.
    UnexpectedMessage { msg: u8, phase: Phase },
    /// A KEX message (30–49, NEWKEYS) that is not the one the exchange expects next.
    UnexpectedKexMessage { msg: u8, expected: &'static str },
    /// A second KEXINIT while a key exchange is running.
    SecondKexInitDuringKex,
    /// Strict KEX: the peer's KEXINIT was not its first packet.
    KexInitNotFirst,
    /// No algorithm in common for this family.
    NoCommonAlgorithm { family: &'static str },
    Kex(KexError),
    Gex(GexError),
    /// Our own host key failed to sign (a local fault).
    HostKey(HostKeyError),
    /// Client role: the server's signature or host key did not verify.
    HostKeyVerify(VerifyError),
    /// Client role: the server presented a host key other than the expected one.
    HostKeyMismatch,
    /// Unknown or not-now service in SERVICE_REQUEST.
    ServiceNotAvailable(String),
    /// The key exchange did not finish in time.
    KexTimeout,
    /// Too many outgoing messages held back during a key exchange.
    HeldQueueFull,
    /// A service layer (auth, connection) refused the peer's input.
    Service { reason: R, text: String },
    /// We are closing on purpose (shutdown, login grace, …).
    Local { reason: R, text: String },
}

impl Error {
    /// The reason code and the short text sent in our DISCONNECT.
    pub fn disconnect(&self) -> (R, String) {
        match self {
            Error::Version(VersionError::Unsupported(v)) => {
                (R::ProtocolVersionNotSupported, format!("unsupported protocol version: {v}"))
            }
            Error::Version(VersionError::NotSsh(_)) => {
                (R::ProtocolVersionNotSupported, "not an SSH-2.0 identification".into())
            }
            Error::Version(VersionError::TooLong) => {
                (R::ProtocolError, "identification line too long".into())
            }
            Error::Version(VersionError::Malformed) => {
                (R::ProtocolError, "malformed identification line".into())
            }
            Error::Packet(e @ PacketError::BadMac) => (R::MacError, e.to_string()),
            Error::Packet(e @ PacketError::Decompression) => (R::CompressionError, e.to_string()),
            Error::Packet(e) => (R::ProtocolError, e.to_string()),
            Error::Decode { msg, err } => (R::ProtocolError, format!("message {msg}: {err}")),
            Error::UnexpectedMessage { msg, phase } => {
                (R::ProtocolError, format!("unexpected message {msg} in phase {phase:?}"))
            }
            Error::UnexpectedKexMessage { msg, expected } => {
                (R::ProtocolError, format!("unexpected key exchange message {msg}, expected {expected}"))
            }
            Error::SecondKexInitDuringKex => {
                (R::ProtocolError, "KEXINIT during a key exchange".into())
            }
            Error::KexInitNotFirst => {
                (R::ProtocolError, "strict KEX: KEXINIT was not the first packet".into())
            }
            Error::NoCommonAlgorithm { family } => {
                (R::KeyExchangeFailed, format!("no matching {family} algorithm"))
            }
            Error::Kex(e) => (R::KeyExchangeFailed, e.to_string()),
            Error::Gex(e) => (R::KeyExchangeFailed, format!("group exchange: {e:?}")),
            Error::HostKey(e) => (R::KeyExchangeFailed, e.to_string()),
            Error::HostKeyVerify(e) => {
                (R::HostKeyNotVerifiable, format!("host key signature: {e:?}"))
            }
            Error::HostKeyMismatch => (R::HostKeyNotVerifiable, "unexpected host key".into()),
            Error::ServiceNotAvailable(s) => {
                (R::ServiceNotAvailable, format!("service not available: {s}"))
            }
            Error::KexTimeout => (R::KeyExchangeFailed, "key exchange timed out".into()),
            Error::HeldQueueFull => (R::ByApplication, "output queue overflow".into()),
            Error::Service { reason, text } | Error::Local { reason, text } => (*reason, text.clone()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (code, text) = self.disconnect();
        write!(f, "{text} (code {})", code.code())
    }
}

impl From<PacketError> for Error {
    fn from(e: PacketError) -> Self {
        Error::Packet(e)
    }
}

impl From<KexError> for Error {
    fn from(e: KexError) -> Self {
        Error::Kex(e)
    }
}

impl From<GexError> for Error {
    fn from(e: GexError) -> Self {
        Error::Gex(e)
    }
}

impl From<VersionError> for Error {
    fn from(e: VersionError) -> Self {
        Error::Version(e)
    }
}

/// Attaches the message number to a decode error.
pub trait DecodeContext<T> {
    fn msg(self, msg: u8) -> Result<T, Error>;
}

impl<T> DecodeContext<T> for Result<T, DecodeError> {
    fn msg(self, msg: u8) -> Result<T, Error> {
        self.map_err(|err| Error::Decode { msg, err })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(Error::Packet(PacketError::BadMac).disconnect().0, R::MacError);
        assert_eq!(Error::Packet(PacketError::Decompression).disconnect().0, R::CompressionError);
        assert_eq!(Error::Packet(PacketError::BadLength { len: 1 }).disconnect().0, R::ProtocolError);
        assert_eq!(
            Error::Version(VersionError::Unsupported("SSH-1.5-x".into())).disconnect().0,
            R::ProtocolVersionNotSupported
        );
        assert_eq!(Error::NoCommonAlgorithm { family: "cipher" }.disconnect().0, R::KeyExchangeFailed);
        assert!(Error::NoCommonAlgorithm { family: "cipher" }.disconnect().1.contains("cipher"));
        assert_eq!(Error::ServiceNotAvailable("x".into()).disconnect().0, R::ServiceNotAvailable);
        assert_eq!(Error::Kex(KexError::AllZeroSecret).disconnect().0, R::KeyExchangeFailed);
    }
}
