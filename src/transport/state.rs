//! The one answer to "may message N arrive now?" (RFC 4253 §7.1, RFC 4252 §6, openssh
//! PROTOCOL §1.10 for strict KEX).
//!
//! Every inbound packet passes through [`verdict`] before any handler sees it, so a message
//! arriving in the wrong phase is rejected the same way wherever it would have been handled.

use super::Role;
use crate::wire::msg_no as m;

/// Where the connection is, as far as inbound messages are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The first key exchange is running (or has not started); strict KEX not in force.
    InitialKex,
    /// The first key exchange is running with strict KEX: only KEX messages.
    InitialKexStrict,
    /// A re-exchange is running and the peer's KEXINIT has arrived: only messages 1–49.
    Rekey,
    /// Keys are in place; no service has been accepted yet.
    NoService,
    /// `ssh-userauth` is running; the user is not authenticated.
    Auth,
    /// The user is authenticated; the connection protocol runs.
    Authenticated,
}

/// What to do with an inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A transport message the transport handles itself (DISCONNECT, IGNORE, KEXINIT, …).
    Transport,
    /// A key exchange message (NEWKEYS and 30–49) for the running exchange.
    Kex,
    /// For the service layer (user authentication or connection protocol).
    Service,
    /// Not something we implement here: answer UNIMPLEMENTED with this packet's sequence number.
    Unimplemented,
    /// Not allowed now: DISCONNECT (PROTOCOL_ERROR).
    ProtocolError,
}

/// Numbers some layer defines (RFC 4250 §4.1.2, RFC 4256, RFC 4419, RFC 5656, RFC 8308 §2.3,
/// openssh PROTOCOL for ping): the transport's 1–7, 20, 21 and the KEX-method range 30–49,
/// userauth's 50–53 and its method range 60–79, the connection protocol's 80–100, and
/// PING/PONG. Anything else is unrecognized and answered with UNIMPLEMENTED (RFC 4253 §11.4)
/// in every phase but the strict initial KEX; a defined number out of its phase is a protocol
/// error instead.
pub fn is_defined(msg: u8) -> bool {
    matches!(msg, 1..=7 | 20 | 21 | 30..=53 | 60..=100 | m::PING | m::PONG)
}

/// The table. Pure; tested exhaustively for every (role, phase, number).
pub fn verdict(role: Role, phase: Phase, msg: u8) -> Verdict {
    use Verdict::*;
    match phase {
        // openssh PROTOCOL §1.10 (and OpenSSH itself): during a strict initial KEX anything
        // but the KEX messages and DISCONNECT is fatal, unrecognized numbers included.
        Phase::InitialKexStrict => match msg {
            m::DISCONNECT | m::KEXINIT => Transport,
            m::NEWKEYS | 30..=49 => Kex,
            _ => ProtocolError,
        },
        Phase::InitialKex | Phase::Rekey => match msg {
            m::DISCONNECT | m::IGNORE | m::UNIMPLEMENTED | m::DEBUG | m::KEXINIT => Transport,
            // RFC 4253 §7.1: no service messages (and no EXT_INFO) inside a key exchange.
            m::SERVICE_REQUEST | m::SERVICE_ACCEPT | m::EXT_INFO => ProtocolError,
            m::NEWKEYS | 30..=49 => Kex,
            _ if !is_defined(msg) => Unimplemented,
            _ => ProtocolError,
        },
        Phase::NoService | Phase::Auth | Phase::Authenticated => established(role, phase, msg),
    }
}

fn established(role: Role, phase: Phase, msg: u8) -> Verdict {
    use Verdict::*;
    match msg {
        m::DISCONNECT | m::IGNORE | m::UNIMPLEMENTED | m::DEBUG | m::KEXINIT | m::EXT_INFO => {
            Transport
        }
        m::SERVICE_REQUEST => match role {
            Role::Server => Transport,
            Role::Client => ProtocolError,
        },
        m::SERVICE_ACCEPT => match role {
            Role::Server => ProtocolError,
            Role::Client => Transport,
        },
        // NEWKEYS outside a key exchange.
        m::NEWKEYS => ProtocolError,
        // KEX-method numbers outside a key exchange mean nothing here.
        22..=49 => Unimplemented,
        _ if !is_defined(msg) => Unimplemented,
        50..=79 => match phase {
            Phase::NoService => ProtocolError,
            Phase::Auth => userauth(role, msg),
            // RFC 4252 §5.1: requests after success are ignored (by the service layer).
            _ => Service,
        },
        m::PING | m::PONG if phase == Phase::Authenticated => Transport,
        _ => match phase {
            Phase::Authenticated => Service,
            // Nothing of the connection protocol (nor ping) before authentication.
            _ => ProtocolError,
        },
    }
}

/// Which user-authentication messages each role may receive (RFC 4252, RFC 4256).
fn userauth(role: Role, msg: u8) -> Verdict {
    use Verdict::*;
    match (role, msg) {
        (Role::Server, m::USERAUTH_REQUEST | m::USERAUTH_INFO_RESPONSE) => Service,
        // A client-sent USERAUTH_SUCCESS must never authenticate anyone (libssh CVE-2018-10933).
        (Role::Server, m::USERAUTH_FAILURE | m::USERAUTH_SUCCESS | m::USERAUTH_BANNER | 60) => {
            ProtocolError
        }
        (Role::Client, m::USERAUTH_FAILURE | m::USERAUTH_SUCCESS | m::USERAUTH_BANNER | 60) => {
            Service
        }
        (Role::Client, m::USERAUTH_REQUEST | m::USERAUTH_INFO_RESPONSE) => ProtocolError,
        _ => Unimplemented,
    }
}

/// Outgoing: may a message of this number go out while our key exchange is running (between
/// our KEXINIT and our NEWKEYS)? Otherwise it is held back (RFC 4253 §7.1; Twisted's set).
pub fn may_send_during_kex(msg: u8) -> bool {
    matches!(msg, 1..=4 | 8..=19 | 20..=29 | 30..=49)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHASES: [Phase; 6] = [
        Phase::InitialKex,
        Phase::InitialKexStrict,
        Phase::Rekey,
        Phase::NoService,
        Phase::Auth,
        Phase::Authenticated,
    ];

    /// Every number in every phase for both roles: the table is total and these invariants hold.
    #[test]
    fn exhaustive_invariants() {
        for role in [Role::Server, Role::Client] {
            for phase in PHASES {
                for msg in 0..=255u8 {
                    let v = verdict(role, phase, msg);
                    let kexing =
                        matches!(phase, Phase::InitialKex | Phase::InitialKexStrict | Phase::Rekey);
                    let strict = phase == Phase::InitialKexStrict;
                    // RFC 4253 §11.4: every unrecognized number gets UNIMPLEMENTED, in every
                    // phase but the strict initial KEX (where anything unexpected is fatal).
                    if !is_defined(msg) {
                        let want =
                            if strict { Verdict::ProtocolError } else { Verdict::Unimplemented };
                        assert_eq!(v, want, "{role:?} {phase:?} {msg}");
                    }
                    // Defined service numbers out of their phase end the connection.
                    if is_defined(msg) && msg >= 50 && (kexing || phase == Phase::NoService) {
                        assert_eq!(v, Verdict::ProtocolError, "{role:?} {phase:?} {msg}");
                    }
                    if is_defined(msg) && msg >= 80 && phase == Phase::Auth {
                        assert_eq!(v, Verdict::ProtocolError, "{role:?} {phase:?} {msg}");
                    }
                    if strict {
                        let ok = matches!(msg, 1 | 20 | 21 | 30..=49);
                        assert_eq!(v != Verdict::ProtocolError, ok, "strict {msg}");
                    }
                    if (30..=49).contains(&msg) || msg == 21 {
                        assert_eq!(v == Verdict::Kex, kexing, "{phase:?} {msg}");
                    }
                    if kexing && matches!(msg, 5..=7) {
                        assert_eq!(v, Verdict::ProtocolError);
                    }
                    if v == Verdict::Service {
                        assert!(msg >= 50 && is_defined(msg), "{msg}");
                    }
                }
            }
        }
    }

    #[test]
    fn unrecognized_numbers_after_auth_are_unimplemented() {
        for msg in [0u8, 8, 54, 59, 101, 127, 128, 150, 191, 194, 255] {
            for role in [Role::Server, Role::Client] {
                for phase in [Phase::InitialKex, Phase::Rekey, Phase::NoService, Phase::Auth] {
                    assert_eq!(
                        verdict(role, phase, msg),
                        Verdict::Unimplemented,
                        "{phase:?} {msg}"
                    );
                }
                assert_eq!(verdict(role, Phase::Authenticated, msg), Verdict::Unimplemented);
                assert_eq!(verdict(role, Phase::InitialKexStrict, msg), Verdict::ProtocolError);
            }
        }
    }

    #[test]
    fn client_sent_userauth_success_is_a_protocol_error() {
        assert_eq!(verdict(Role::Server, Phase::Auth, 52), Verdict::ProtocolError);
        assert_eq!(verdict(Role::Client, Phase::Auth, 52), Verdict::Service);
    }

    #[test]
    fn connection_messages_only_after_auth() {
        assert_eq!(verdict(Role::Server, Phase::Auth, 90), Verdict::ProtocolError);
        assert_eq!(verdict(Role::Server, Phase::Authenticated, 90), Verdict::Service);
        assert_eq!(verdict(Role::Server, Phase::Authenticated, 192), Verdict::Transport);
        assert_eq!(verdict(Role::Server, Phase::Auth, 192), Verdict::ProtocolError);
    }

    #[test]
    fn unknown_transport_numbers_are_unimplemented() {
        for msg in [8u8, 19, 22, 29, 30, 49] {
            assert_eq!(verdict(Role::Server, Phase::NoService, msg), Verdict::Unimplemented);
        }
        assert_eq!(verdict(Role::Server, Phase::Auth, 70), Verdict::Unimplemented);
    }

    #[test]
    fn outgoing_during_kex() {
        for msg in 0..=255u8 {
            let allowed = may_send_during_kex(msg);
            assert_eq!(allowed, (1..=49).contains(&msg) && !(5..=7).contains(&msg), "{msg}");
        }
    }
}
