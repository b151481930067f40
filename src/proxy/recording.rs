//! asciicast v2 encoding of a PTY session, sans-IO: a header line, then one JSON array per
//! event (`[seconds, "o", "output"]`, `[seconds, "r", "COLSxROWS"]`), newline-separated, as
//! `asciinema play` reads them. The runtime's recorder thread (`runtime::recording`) feeds it
//! and writes the bytes.
//!
//! Output is arbitrary bytes: a UTF-8 sequence split across two reads is held back (at most 3
//! bytes) until its end arrives; bytes that are not UTF-8 become U+FFFD, so every event is a
//! valid JSON string. The file is bounded: the event that would take it past the limit is
//! replaced by a final marker (`[seconds, "m", "…"]`) and nothing more is written.

use crate::wire::json::{self, Escape};
use std::fmt::Write as _;
use std::time::Duration;

/// Room kept for the final marker.
const MARKER_ROOM: u64 = 128;

/// What the header says about the session.
#[derive(Debug, Clone, Default)]
pub struct Header {
    pub width: u32,
    pub height: u32,
    /// Start, seconds since the Unix epoch.
    pub timestamp: u64,
    pub user: String,
    /// For proxied sessions.
    pub route: Option<String>,
    pub upstream: Option<String>,
    pub term: Option<String>,
    pub command: Option<String>,
}

/// The encoder's state for one recording.
#[derive(Debug)]
pub struct Cast {
    limit: u64,
    written: u64,
    carry: Vec<u8>,
    stopped: bool,
    line: String,
}

/// What `output` / `resize` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Written,
    /// This event hit the size limit: the final marker was written instead; nothing more will
    /// be.
    Truncated,
    /// The recording had already stopped.
    Stopped,
}

impl Cast {
    /// A recording of at most `limit` bytes (the header included).
    pub fn new(limit: u64) -> Cast {
        Cast { limit, written: 0, carry: Vec::new(), stopped: false, line: String::new() }
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// The header line.
    pub fn header(&mut self, h: &Header, out: &mut Vec<u8>) {
        let mut s = String::with_capacity(256);
        let _ = write!(
            s,
            "{{\"version\":2,\"width\":{},\"height\":{},\"timestamp\":{}",
            h.width.max(1),
            h.height.max(1),
            h.timestamp
        );
        let mut title = h.user.clone();
        if let Some(r) = &h.route {
            let _ = write!(title, " via {r}");
        }
        if let Some(u) = &h.upstream {
            let _ = write!(title, " to {u}");
        }
        s.push_str(",\"title\":");
        json_str(&mut s, &title);
        s.push_str(",\"env\":{\"SHELL\":\"/bin/sh\",\"TERM\":");
        json_str(&mut s, h.term.as_deref().unwrap_or("xterm"));
        s.push_str("},\"sshfront\":{\"user\":");
        json_str(&mut s, &h.user);
        for (k, v) in [("route", &h.route), ("upstream", &h.upstream), ("command", &h.command)] {
            if let Some(v) = v {
                let _ = write!(s, ",\"{k}\":");
                json_str(&mut s, v);
            }
        }
        s.push_str("}}\n");
        self.written += s.len() as u64;
        out.extend_from_slice(s.as_bytes());
    }

    /// Terminal output at `t` since the start.
    pub fn output(&mut self, t: Duration, data: &[u8], out: &mut Vec<u8>) -> Step {
        if self.stopped {
            return Step::Stopped;
        }
        let mut text = String::with_capacity(data.len() + 16);
        if self.carry.is_empty() {
            self.carry_decode(data, &mut text);
        } else {
            let mut joined = std::mem::take(&mut self.carry);
            joined.extend_from_slice(data);
            self.carry_decode(&joined, &mut text);
        }
        if text.is_empty() {
            return Step::Written;
        }
        self.event(t, "o", &text, out)
    }

    /// The terminal was resized.
    pub fn resize(&mut self, t: Duration, cols: u32, rows: u32, out: &mut Vec<u8>) -> Step {
        if self.stopped {
            return Step::Stopped;
        }
        self.event(t, "r", &format!("{cols}x{rows}"), out)
    }

    /// Output was lost in between (the recorder's queue was full): a held-back partial
    /// sequence cannot be completed any more.
    pub fn gap(&mut self) {
        self.carry.clear();
    }

    /// The session ended: a held-back partial sequence goes out as U+FFFD.
    pub fn finish(&mut self, t: Duration, out: &mut Vec<u8>) {
        if !self.carry.is_empty() && !self.stopped {
            self.carry.clear();
            self.event(t, "o", "\u{FFFD}", out);
        }
    }

    /// Decodes `data` as UTF-8 into `text`, invalid bytes as U+FFFD, keeping an incomplete
    /// trailing sequence in `carry`.
    fn carry_decode(&mut self, mut data: &[u8], text: &mut String) {
        loop {
            match std::str::from_utf8(data) {
                Ok(s) => {
                    text.push_str(s);
                    return;
                }
                Err(e) => {
                    let (good, bad) = data.split_at(e.valid_up_to());
                    // valid_up_to is a char boundary: this cannot fail.
                    text.push_str(std::str::from_utf8(good).unwrap_or_default());
                    match e.error_len() {
                        Some(n) => {
                            text.push('\u{FFFD}');
                            data = bad.get(n..).unwrap_or_default();
                        }
                        None => {
                            // An incomplete sequence at the end (at most 3 bytes).
                            self.carry.extend_from_slice(bad);
                            return;
                        }
                    }
                }
            }
        }
    }

    fn event(&mut self, t: Duration, kind: &str, data: &str, out: &mut Vec<u8>) -> Step {
        self.line.clear();
        let _ = write!(self.line, "[{}.{:06}, \"{kind}\", ", t.as_secs(), t.subsec_micros());
        json_str(&mut self.line, data);
        self.line.push_str("]\n");
        let len = self.line.len() as u64;
        if self.written + len + MARKER_ROOM > self.limit {
            self.stopped = true;
            self.carry.clear();
            self.line.clear();
            let _ = writeln!(
                self.line,
                "[{}.{:06}, \"m\", \"sshfront: recording stopped at {} bytes\"]",
                t.as_secs(),
                t.subsec_micros(),
                self.limit
            );
            self.written += self.line.len() as u64;
            out.extend_from_slice(self.line.as_bytes());
            return Step::Truncated;
        }
        self.written += len;
        out.extend_from_slice(self.line.as_bytes());
        Step::Written
    }
}

/// Appends `s` as a JSON string literal: the C0 controls and DEL escaped, the rest as it is.
fn json_str(out: &mut String, s: &str) {
    json::push_string(out, s, Escape::Ascii);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn text(out: &[u8]) -> &str {
        std::str::from_utf8(out).unwrap()
    }

    #[test]
    fn header_and_events() {
        let mut c = Cast::new(1 << 20);
        let mut out = Vec::new();
        let h = Header {
            width: 80,
            height: 24,
            timestamp: 1_700_000_000,
            user: "alice".into(),
            route: Some("db".into()),
            upstream: Some("127.0.0.1:22".into()),
            term: Some("xterm-256color".into()),
            command: None,
        };
        c.header(&h, &mut out);
        assert_eq!(
            text(&out),
            "{\"version\":2,\"width\":80,\"height\":24,\"timestamp\":1700000000,\
             \"title\":\"alice via db to 127.0.0.1:22\",\"env\":{\"SHELL\":\"/bin/sh\",\
             \"TERM\":\"xterm-256color\"},\"sshfront\":{\"user\":\"alice\",\"route\":\"db\",\
             \"upstream\":\"127.0.0.1:22\"}}\n"
        );
        out.clear();
        assert_eq!(c.output(ms(1500), b"a\"\\\x1b[0m\r\n\x7f", &mut out), Step::Written);
        assert_eq!(text(&out), "[1.500000, \"o\", \"a\\\"\\\\\\u001b[0m\\r\\n\\u007f\"]\n");
        out.clear();
        c.resize(ms(2000), 100, 30, &mut out);
        assert_eq!(text(&out), "[2.000000, \"r\", \"100x30\"]\n");
    }

    #[test]
    fn utf8_split_across_reads_is_held_back() {
        let mut c = Cast::new(1 << 20);
        let mut out = Vec::new();
        let s = "é€😀".as_bytes(); // 2, 3 and 4 bytes
        for cut in 1..s.len() {
            out.clear();
            let (a, b) = s.split_at(cut);
            c.output(ms(1), a, &mut out);
            c.output(ms(2), b, &mut out);
            let got: String = text(&out)
                .lines()
                .map(|l| {
                    let start = l.find(", \"o\", \"").unwrap() + 8;
                    l[start..l.len() - 2].to_string()
                })
                .collect();
            assert_eq!(got, "é€😀", "cut at {cut}");
        }
        // One byte at a time.
        out.clear();
        for b in s {
            c.output(ms(3), std::slice::from_ref(b), &mut out);
        }
        assert_eq!(text(&out).lines().count(), 3);
        assert!(!text(&out).contains('\u{FFFD}'));
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut c = Cast::new(1 << 20);
        let mut out = Vec::new();
        c.output(ms(1), b"a\xff\xfeb\xc3", &mut out);
        assert_eq!(text(&out), "[0.001000, \"o\", \"a\u{FFFD}\u{FFFD}b\"]\n");
        out.clear();
        // The held-back \xc3 is not continued: it becomes U+FFFD too.
        c.output(ms(2), b"x", &mut out);
        assert_eq!(text(&out), "[0.002000, \"o\", \"\u{FFFD}x\"]\n");
        out.clear();
        c.output(ms(3), b"\xe2\x82", &mut out);
        assert!(out.is_empty());
        c.finish(ms(4), &mut out);
        assert_eq!(text(&out), "[0.004000, \"o\", \"\u{FFFD}\"]\n");
    }

    #[test]
    fn stops_at_the_limit_with_a_marker() {
        let mut c = Cast::new(1000);
        let mut out = Vec::new();
        c.header(
            &Header { width: 80, height: 24, user: "u".into(), ..Default::default() },
            &mut out,
        );
        let mut steps = Vec::new();
        for i in 0..100 {
            steps.push(c.output(ms(i), b"0123456789012345678901234567890123456789", &mut out));
        }
        assert!(out.len() <= 1000, "{} bytes", out.len());
        assert_eq!(steps.iter().filter(|s| **s == Step::Truncated).count(), 1);
        assert_eq!(steps.last(), Some(&Step::Stopped));
        let last = text(&out).lines().last().unwrap();
        assert!(last.contains("\"m\", \"sshfront: recording stopped at 1000 bytes\""), "{last}");
    }
}
