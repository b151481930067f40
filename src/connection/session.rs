//! Session channels (RFC 4254 §6): `env` for an allow-list of names, `pty-req` (kept for the
//! command, unless the key says `no-pty`), `window-change` passed on once a PTY is there,
//! `exec` / `shell` / `subsystem` turned into one [`Exec`](super::Event::Exec) event for the
//! runtime, and the child's end reported as exit-status or exit-signal.

use super::msgs::{self, WinSize, MAX_NAME_LEN};
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
    /// exit-signal: the signal name without the "SIG" prefix (e.g. "TERM"), whether a core
    /// was dumped, and the error message (carried as given by a proxied upstream).
    Signal { name: String, core_dumped: bool, message: String },
}

impl ExitStatus {
    /// exit-signal with only the signal's name.
    pub fn signal(name: &str) -> ExitStatus {
        ExitStatus::Signal { name: name.to_string(), core_dumped: false, message: String::new() }
    }
}

/// A terminal the client asked for (RFC 4254 §6.2). Local PTYs do not apply the terminal
/// modes; the session proxy passes them upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pty {
    /// TERM, printable ASCII only (anything else is refused).
    pub term: String,
    pub size: WinSize,
    /// Encoded terminal modes (RFC 4254 §8), re-encoded from the well-formed opcodes of the
    /// request (see [`msgs::terminal_modes`]); empty when none were given.
    pub modes: Vec<u8>,
}

/// Per-session state.
#[derive(Debug, Default)]
pub(crate) struct Session {
    pub env: Vec<(String, String)>,
    pub pty: Option<Pty>,
    /// exec, shell or subsystem was accepted: only one per channel (RFC 4254 §6.5).
    pub started: bool,
    pub exited: bool,
    /// Carried upstream by the session proxy: any subsystem name is passed on (the upstream
    /// decides), and signal / break requests of a started session go upstream too.
    pub any_subsystem: bool,
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
    /// window-change on a running PTY session: emit `WindowChange`.
    Resize(WinSize),
    /// signal (RFC 4254 §6.9) on a proxied, started session: emit `Signal`.
    Signal(String),
    /// break (RFC 4335) on a proxied, started session: emit `Break`.
    Break(u32),
    /// eow@openssh.com on a proxied, started session: emit `Eow`.
    Eow,
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
        allow_pty: bool,
    ) -> Result<SessionAction, DecodeError> {
        match name {
            b"pty-req" => {
                let req = msgs::parse_pty_req(r)?;
                let term_ok = !req.term.is_empty() && req.term.iter().all(|b| b.is_ascii_graphic());
                if !allow_pty || self.started || self.pty.is_some() || !term_ok {
                    return Ok(SessionAction::Refuse);
                }
                let term = String::from_utf8_lossy(req.term).into_owned();
                let modes = msgs::terminal_modes(req.modes);
                self.pty = Some(Pty { term, size: clamp(req.size), modes });
                Ok(SessionAction::Accept)
            }
            b"window-change" => {
                let size = clamp(msgs::parse_window_change(r)?);
                match &mut self.pty {
                    Some(p) => {
                        p.size = size;
                        Ok(if self.started {
                            SessionAction::Resize(size)
                        } else {
                            SessionAction::Accept
                        })
                    }
                    None => Ok(SessionAction::Refuse),
                }
            }
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
                    (b"subsystem", Some(sub)) if self.any_subsystem => {
                        SessionAction::Start { command: None, subsystem: Some(sub.to_string()) }
                    }
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
            b"signal" if self.any_subsystem && self.started => {
                let name = r.string_max("signal name", MAX_NAME_LEN)?;
                r.finish("signal request")?;
                match std::str::from_utf8(name) {
                    Ok(n) if n.bytes().all(|b| b.is_ascii_alphanumeric()) && !n.is_empty() => {
                        Ok(SessionAction::Signal(n.to_string()))
                    }
                    _ => Ok(SessionAction::Refuse),
                }
            }
            b"break" if self.any_subsystem && self.started => {
                let ms = r.u32("break length")?;
                r.finish("break request")?;
                Ok(SessionAction::Break(ms))
            }
            // OpenSSH's "I will not read more of your data" (PROTOCOL §2.1): the upstream's
            // business when proxied.
            b"eow@openssh.com" if self.any_subsystem && self.started => {
                r.finish("eow request")?;
                Ok(SessionAction::Eow)
            }
            // No X11 or agent forwarding; local sessions have nothing to act on a signal with:
            // a clean refusal, never a disconnect.
            _ => Ok(SessionAction::Refuse),
        }
    }
}

/// Sizes as a kernel winsize holds them (16 bits each).
fn clamp(s: WinSize) -> WinSize {
    let c = |v: u32| v.min(u32::from(u16::MAX));
    WinSize { cols: c(s.cols), rows: c(s.rows), width_px: c(s.width_px), height_px: c(s.height_px) }
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
            s.request(b"env", Reader::new(&b), &allow(), &[], true).unwrap(),
            SessionAction::Accept
        );
        let b = body(|w| {
            w.string(b"LC_ALL").string(b"C");
        });
        assert_eq!(
            s.request(b"env", Reader::new(&b), &allow(), &[], true).unwrap(),
            SessionAction::Accept
        );
        let b = body(|w| {
            w.string(b"LD_PRELOAD").string(b"/evil.so");
        });
        assert_eq!(
            s.request(b"env", Reader::new(&b), &allow(), &[], true).unwrap(),
            SessionAction::Refuse
        );
        assert_eq!(s.env, vec![("LANG".into(), "C.UTF-8".into()), ("LC_ALL".into(), "C".into())]);
    }

    #[test]
    fn one_command_per_session() {
        let mut s = Session::default();
        let b = body(|w| {
            w.string(b"uname -a");
        });
        assert_eq!(
            s.request(b"exec", Reader::new(&b), &allow(), &[], true).unwrap(),
            SessionAction::Start { command: Some("uname -a".into()), subsystem: None }
        );
        assert_eq!(
            s.request(b"shell", Reader::new(&[]), &allow(), &[], true).unwrap(),
            SessionAction::Refuse
        );
        let mut s = Session::default();
        let b = body(|w| {
            w.string(b"sftp");
        });
        assert_eq!(
            s.request(b"subsystem", Reader::new(&b), &allow(), &[], true).unwrap(),
            SessionAction::Refuse,
            "not configured"
        );
        assert!(!s.started, "a refused subsystem leaves the session free");
        let subs = [("sftp".to_string(), "/usr/lib/openssh/sftp-server".to_string())];
        assert_eq!(
            s.request(b"subsystem", Reader::new(&b), &allow(), &subs, true).unwrap(),
            SessionAction::Start {
                command: Some("/usr/lib/openssh/sftp-server".into()),
                subsystem: Some("sftp".into())
            }
        );
    }

    fn pty_body(term: &[u8], cols: u32, rows: u32) -> Vec<u8> {
        body(|w| {
            w.string(term).u32(cols).u32(rows).u32(0).u32(0).string(b"");
        })
    }

    #[test]
    fn pty_then_resize() {
        let mut s = Session::default();
        let wc = body(|w| {
            w.u32(100).u32(40).u32(0).u32(0);
        });
        assert_eq!(
            s.request(b"window-change", Reader::new(&wc), &allow(), &[], true).unwrap(),
            SessionAction::Refuse,
            "no PTY yet"
        );
        let b = pty_body(b"xterm-256color", 80, 24);
        assert_eq!(
            s.request(b"pty-req", Reader::new(&b), &allow(), &[], true).unwrap(),
            SessionAction::Accept
        );
        assert_eq!(
            s.request(b"pty-req", Reader::new(&b), &allow(), &[], true).unwrap(),
            SessionAction::Refuse,
            "one PTY"
        );
        assert_eq!(s.pty.as_ref().unwrap().term, "xterm-256color");
        assert_eq!(
            s.request(b"window-change", Reader::new(&wc), &allow(), &[], true).unwrap(),
            SessionAction::Accept,
            "before start: kept"
        );
        assert_eq!(s.pty.as_ref().unwrap().size.cols, 100);
        let e = body(|w| {
            w.string(b"sh");
        });
        assert!(matches!(
            s.request(b"exec", Reader::new(&e), &allow(), &[], true).unwrap(),
            SessionAction::Start { .. }
        ));
        let wc = body(|w| {
            w.u32(u32::MAX).u32(50).u32(0).u32(0);
        });
        let want = WinSize { cols: 65535, rows: 50, width_px: 0, height_px: 0 };
        assert_eq!(
            s.request(b"window-change", Reader::new(&wc), &allow(), &[], true).unwrap(),
            SessionAction::Resize(want)
        );
    }

    #[test]
    fn pty_modes_kept_and_eow_only_when_proxied_and_started() {
        let mut s = Session { any_subsystem: true, ..Session::default() };
        let b = body(|w| {
            w.string(b"xterm").u32(80).u32(24).u32(0).u32(0).string(&[53, 0, 0, 0, 0, 0, 7]);
        });
        assert_eq!(
            s.request(b"pty-req", Reader::new(&b), &allow(), &[], true).unwrap(),
            SessionAction::Accept
        );
        assert_eq!(s.pty.as_ref().unwrap().modes, [53, 0, 0, 0, 0, 0], "re-encoded, junk dropped");
        assert_eq!(
            s.request(b"eow@openssh.com", Reader::new(&[]), &allow(), &[], true).unwrap(),
            SessionAction::Refuse,
            "nothing started yet"
        );
        s.request(b"shell", Reader::new(&[]), &allow(), &[], true).unwrap();
        assert_eq!(
            s.request(b"eow@openssh.com", Reader::new(&[]), &allow(), &[], true).unwrap(),
            SessionAction::Eow
        );
        let mut local = Session { started: true, ..Session::default() };
        assert_eq!(
            local.request(b"eow@openssh.com", Reader::new(&[]), &allow(), &[], true).unwrap(),
            SessionAction::Refuse,
            "a local session has no one to tell"
        );
    }

    #[test]
    fn pty_refused_by_key_or_bad_term() {
        let mut s = Session::default();
        let b = pty_body(b"xterm", 80, 24);
        assert_eq!(
            s.request(b"pty-req", Reader::new(&b), &allow(), &[], false).unwrap(),
            SessionAction::Refuse
        );
        let b = pty_body(b"x\x1b]", 80, 24);
        assert_eq!(
            s.request(b"pty-req", Reader::new(&b), &allow(), &[], true).unwrap(),
            SessionAction::Refuse
        );
        let b = pty_body(&[b'x'; 300], 80, 24);
        assert!(s.request(b"pty-req", Reader::new(&b), &allow(), &[], true).is_err(), "TERM bound");
        assert!(s.pty.is_none());
    }

    #[test]
    fn proxied_sessions_pass_any_subsystem_signals_and_break() {
        let mut s = Session { any_subsystem: true, ..Session::default() };
        let sig = body(|w| {
            w.string(b"INT");
        });
        assert_eq!(
            s.request(b"signal", Reader::new(&sig), &allow(), &[], true).unwrap(),
            SessionAction::Refuse,
            "nothing started yet"
        );
        let sub = body(|w| {
            w.string(b"sftp");
        });
        assert_eq!(
            s.request(b"subsystem", Reader::new(&sub), &allow(), &[], true).unwrap(),
            SessionAction::Start { command: None, subsystem: Some("sftp".into()) },
            "not configured here: the upstream decides"
        );
        assert_eq!(
            s.request(b"signal", Reader::new(&sig), &allow(), &[], true).unwrap(),
            SessionAction::Signal("INT".into())
        );
        let bad = body(|w| {
            w.string(b"I\nT");
        });
        assert_eq!(
            s.request(b"signal", Reader::new(&bad), &allow(), &[], true).unwrap(),
            SessionAction::Refuse
        );
        let brk = body(|w| {
            w.u32(500);
        });
        assert_eq!(
            s.request(b"break", Reader::new(&brk), &allow(), &[], true).unwrap(),
            SessionAction::Break(500)
        );
        // A local session still refuses them.
        let mut local = Session { started: true, ..Session::default() };
        assert_eq!(
            local.request(b"signal", Reader::new(&sig), &allow(), &[], true).unwrap(),
            SessionAction::Refuse
        );
    }
}
