//! JSON string literals, for the JSON log lines (`runtime::log_format`), the session recordings
//! (`proxy::recording`) and the bench harness's reports. A leaf: nothing from the rest of the
//! crate.

use std::fmt::Write as _;

/// Which characters, besides `"`, `\` and the C0 controls, are written as `\uXXXX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escape {
    /// DEL (U+007F) too; everything else from U+0020 up passes through (recordings, reports).
    Ascii,
    /// Every Unicode control (DEL and the C1 range U+0080..=U+009F too) and U+2028 / U+2029,
    /// which some JSON readers treat as line ends: one log record stays one line.
    LineSafe,
}

/// Appends `s` to `out` as a JSON string literal, quotes included: `"` and `\` backslashed,
/// `\n`, `\r` and `\t` as those escapes, the other C0 controls and what `esc` adds as `\u00xx`
/// (lowercase hex); every other character as it is.
pub fn push_string(out: &mut String, s: &str, esc: Escape) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' || escapes(c, esc) => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn escapes(c: char, esc: Escape) -> bool {
    match esc {
        Escape::Ascii => c == '\u{7f}',
        Escape::LineSafe => c.is_control() || c == '\u{2028}' || c == '\u{2029}',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str, esc: Escape) -> String {
        let mut out = String::new();
        push_string(&mut out, s, esc);
        out
    }

    #[test]
    fn escapes_quotes_backslashes_and_controls_and_passes_the_rest() {
        let s = "a\"b\\c\nd\re\tf\u{0}\u{1}\u{8}\u{c}\u{1b}\u{1f} ~\u{7f}\u{80}\u{9f}\u{a0}é€😀\
                 \u{2028}\u{2029}";
        // Common to both: the short escapes, the other C0 controls as \u00xx, DEL escaped,
        // and printable non-ASCII (é, €, 😀, NBSP) passed through as UTF-8.
        let common = "\"a\\\"b\\\\c\\nd\\re\\tf\\u0000\\u0001\\u0008\\u000c\\u001b\\u001f ~\\u007f";
        assert_eq!(
            lit(s, Escape::Ascii),
            format!("{common}\u{80}\u{9f}\u{a0}é€😀\u{2028}\u{2029}\"")
        );
        assert_eq!(
            lit(s, Escape::LineSafe),
            format!("{common}\\u0080\\u009f\u{a0}é€😀\\u2028\\u2029\"")
        );
        assert_eq!(lit("", Escape::Ascii), "\"\"");
        // Appends: what is already in `out` stays.
        let mut out = String::from("x:");
        push_string(&mut out, "y", Escape::LineSafe);
        assert_eq!(out, "x:\"y\"");
    }
}
