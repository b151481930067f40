//! Session channels (RFC 4254 §6): `env` for an allow-list of names, `exec` / `shell` /
//! `subsystem` turned into one [`Exec`](super::Event::Exec) event for the runtime, `pty-req`
//! refused (no PTY support), and the child's end reported as exit-status or exit-signal.

use super::msgs::MAX_NAME_LEN;
use crate::auth::policy::wildcard_match;
use crate::wire::{DecodeError, Reader};

/// Most `env` variables kept per session.
pub const MAX_ENV: usize = 64;
/// Longest env value kept.
pub const MAX_ENV_VALUE: usize = 4096;
/// Longest exec command accepted.
pub const MAX_COMMAND_LEN: usize = 32 * 1024;

/// How a child process ended (RFC 4254 §6.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    /// exit-status with this code.
    Code(u32),
    /// exit-signal with this signal name, without the "SIG" prefix (e.g. "TERM").
    Signal(String),
}

/// Per-session state.
#[derive(Debug, Default)]
pub(crate) struct Session {
    pub env: Vec<(String, String)>,
    /// exec, shell or subsystem was accepted: only one per channel (RFC 4254 §6.5).
    pub started: bool,
    pub exited: bool,
}

/// What a session request asks the connection to do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SessionAction {
    /// Reply success (if asked); nothing else.
    Accept,
    /// Reply failure (if asked).
    Refuse,
    /// Start the command: reply success and emit `Exec`. For a subsystem, `command` is the
    /// configured `--subsystem` command and `subsystem` its name.
    Start { command: Option<String>, subsystem: Option<String> },
}

impl Session {
    /// One CHANNEL_REQUEST on this session; `r` is positioned after `want reply`. A subsystem
    /// must be one of `subsystems` (name, command), as sshd's `Subsystem`; any other is refused
    /// with CHANNEL_FAILURE.
    pub fn request(
        &mut self,
        name: &[u8],
        mut r: Reader<'_>,
        env_allow: &[String],
        subsystems: &[(String, String)],
    ) -> Result<SessionAction, DecodeError> {
        match name {
            b"env" => {
                let n = r.string_max("variable name", MAX_NAME_LEN)?;
                let v = r.string_max("variable value", MAX_ENV_VALUE)?;
                r.finish("env request")?;
                let (Ok(n), Ok(v)) = (std::str::from_utf8(n), std::str::from_utf8(v)) else {
                    return Ok(SessionAction::Refuse);
                };
                let allowed =
                    env_allow.iter().any(|p| wildcard_match(p, n)) && !n.contains(['=', '\0']);
                if !allowed || self.env.len() >= MAX_ENV || self.started {
                    return Ok(SessionAction::Refuse);
                }
                self.env.retain(|(k, _)| k != n);
                self.env.push((n.to_string(), v.to_string()));
                Ok(SessionAction::Accept)
            }
            b"exec" | b"shell" | b"subsystem" => {
                let arg = match name {
                    b"shell" => None,
                    _ => {
                        let field = if name == b"exec" { "command" } else { "subsystem name" };
                        Some(r.string_max(field, MAX_COMMAND_LEN)?)
                    }
                };
                r.finish("session request")?;
                if self.started {
                    return Ok(SessionAction::Refuse);
                }
                let Ok(arg) = arg.map(std::str::from_utf8).transpose() else {
                    return Ok(SessionAction::Refuse);
                };
                let action = match (name, arg) {
                    (b"subsystem", Some(sub)) => {
                        let Some((n, cmd)) = subsystems.iter().find(|(n, _)| n == sub) else {
                            return Ok(SessionAction::Refuse);
                        };
                        SessionAction::Start {
                            command: Some(cmd.clone()),
                            subsystem: Some(n.clone()),
                        }
                    }
                    (_, arg) => {
                        SessionAction::Start { command: arg.map(str::to_string), subsystem: None }
                    }
                };
                self.started = true;
                Ok(action)
            }
            // No PTYs, X11, agent forwarding; signals and window changes have nothing to act
            // on: a clean refusal, never a disconnect.
            _ => Ok(SessionAction::Refuse),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Writer;

    fn allow() -> Vec<String> {
        vec!["LANG".into(), "LC_*".into()]
    }

    fn body(f: impl FnOnce(&mut Writer)) -> Vec<u8> {
        let mut v = Vec::new();
        f(&mut Writer::new(&mut v));
        v
    }

    #[test]
    fn env_allow_list() {
        let mut s = Session::default();
        let b = body(|w| {
            w.string(b"LANG").string(b"C.UTF-8");
        });
        assert_eq!(
            s.request(b"env", Reader::new(&b), &allow(), &[]).unwrap(),
            SessionAction::Accept
        );
        let b = body(|w| {
            w.string(b"LC_ALL").string(b"C");
        });
        assert_eq!(
            s.request(b"env", Reader::new(&b), &allow(), &[]).unwrap(),
            SessionAction::Accept
        );
        let b = body(|w| {
            w.string(b"LD_PRELOAD").string(b"/evil.so");
        });
        assert_eq!(
            s.request(b"env", Reader::new(&b), &allow(), &[]).unwrap(),
            SessionAction::Refuse
        );
        assert_eq!(s.env, vec![("LANG".into(), "C.UTF-8".into()), ("LC_ALL".into(), "C".into())]);
    }

    #[test]
    fn one_command_per_session_and_pty_refused() {
        let mut s = Session::default();
        assert_eq!(
            s.request(b"pty-req", Reader::new(b"anything"), &allow(), &[]).unwrap(),
            SessionAction::Refuse
        );
        let b = body(|w| {
            w.string(b"uname -a");
        });
        assert_eq!(
            s.request(b"exec", Reader::new(&b), &allow(), &[]).unwrap(),
            SessionAction::Start { command: Some("uname -a".into()), subsystem: None }
        );
        assert_eq!(
            s.request(b"shell", Reader::new(&[]), &allow(), &[]).unwrap(),
            SessionAction::Refuse
        );
        let mut s = Session::default();
        let b = body(|w| {
            w.string(b"sftp");
        });
        assert_eq!(
            s.request(b"subsystem", Reader::new(&b), &allow(), &[]).unwrap(),
            SessionAction::Refuse,
            "not configured"
        );
        assert!(!s.started, "a refused subsystem leaves the session free");
        let subs = [("sftp".to_string(), "/usr/lib/openssh/sftp-server".to_string())];
        assert_eq!(
            s.request(b"subsystem", Reader::new(&b), &allow(), &subs).unwrap(),
            SessionAction::Start {
                command: Some("/usr/lib/openssh/sftp-server".into()),
                subsystem: Some("sftp".into())
            }
        );
    }
}
