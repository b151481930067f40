//! Log line formats (`--log-format`): `text` for people, `json` for pipelines.
//!
//! Call sites attach structured fields with the `log` crate's key-values
//! (`log::info!(event = "closed", code = 11; "…")`); the text format prints only the message,
//! as before, and the JSON format prints one object per line with a fixed set of fields, in a
//! fixed order, each present on every line (`null` when the record has no such value):
//! [`FIELDS`]. Other key-values follow, then `msg`. Every string, peer-supplied ones included
//! (user names, disconnect texts, DEBUG messages), is escaped, so one record is one line.

use crate::cli::LogFormat;
use crate::wire::json::{self, Escape};
use log::kv::{Key, Value, VisitSource};
use std::fmt::Write as _;

/// The stable fields of a JSON line after `ts` and `level`, in output order.
pub const FIELDS: &[&str] = &[
    "worker",
    "conn",
    "peer",
    "user",
    "event",
    "code",
    "reason",
    "bytes_in",
    "bytes_out",
    "duration_ms",
    "kex",
    "cipher",
];

/// Event name of a record that names none.
pub const DEFAULT_EVENT: &str = "message";

/// One complete line (with `\n`) for `record` at time `ts` (RFC 3339).
pub fn format(format: LogFormat, ts: &str, record: &log::Record<'_>) -> String {
    match format {
        LogFormat::Text => format!("{ts} {:<5} {}\n", record.level(), record.args()),
        LogFormat::Json => json(ts, record),
    }
}

/// A JSON value already encoded (number, bool or quoted string).
struct Collected {
    fields: Vec<(String, String)>,
}

impl<'kvs> VisitSource<'kvs> for Collected {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        self.fields.push((key.as_str().to_string(), encode(&value)));
        Ok(())
    }
}

/// Finds out whether a value is null (an absent `Option`).
struct IsNull(bool);

impl<'v> log::kv::VisitValue<'v> for IsNull {
    fn visit_any(&mut self, _: Value<'_>) -> Result<(), log::kv::Error> {
        Ok(())
    }
    fn visit_null(&mut self) -> Result<(), log::kv::Error> {
        self.0 = true;
        Ok(())
    }
}

fn encode(v: &Value<'_>) -> String {
    let mut null = IsNull(false);
    if v.visit(&mut null).is_ok() && null.0 {
        return "null".into();
    }
    if let Some(n) = v.to_u64() {
        return n.to_string();
    }
    if let Some(n) = v.to_i64() {
        return n.to_string();
    }
    if let Some(b) = v.to_bool() {
        return b.to_string();
    }
    if let Some(f) = v.to_f64() {
        if f.is_finite() {
            return f.to_string();
        }
    }
    quote(&v.to_string())
}

fn json(ts: &str, record: &log::Record<'_>) -> String {
    let mut c = Collected { fields: Vec::new() };
    let _ = record.key_values().visit(&mut c);
    let mut o = String::with_capacity(256);
    let _ = write!(
        o,
        "{{\"ts\":{},\"level\":{}",
        quote(ts),
        quote(&record.level().as_str().to_ascii_lowercase())
    );
    for name in FIELDS {
        let v = c.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let v = match (v, *name) {
            (Some(v), _) => v.to_string(),
            (None, "event") => quote(DEFAULT_EVENT),
            (None, _) => "null".to_string(),
        };
        let _ = write!(o, ",\"{name}\":{v}");
    }
    for (k, v) in c.fields.iter().filter(|(k, _)| !FIELDS.contains(&k.as_str()) && k != "msg") {
        let _ = write!(o, ",{}:{v}", quote(k));
    }
    let _ = write!(o, ",\"msg\":{}}}", quote(&record.args().to_string()));
    o.push('\n');
    o
}

/// A JSON string: quotes, backslashes and every control character escaped (so a peer's
/// newline cannot start a forged line), and the two separators some JSON readers treat as
/// newlines.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    json::push_string(&mut out, s, Escape::LineSafe);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_every_field_in_order_and_escapes() {
        let kvs: &[(&str, Value<'_>)] = &[
            ("event", Value::from("closed")),
            ("worker", Value::from(1u64)),
            ("conn", Value::from(7u64)),
            ("user", Value::from("ev\"il\nuser\u{1b}")),
            ("code", Value::from(11u64)),
            ("method", Value::from("password")),
            ("peer", Value::null()),
        ];
        let args = format_args!("closed \"x\"");
        let rec =
            log::Record::builder().level(log::Level::Warn).args(args).key_values(&kvs).build();
        let out = format(LogFormat::Json, "2026-01-01T00:00:00.000Z", &rec);
        assert!(out.ends_with("}\n") && out.matches('\n').count() == 1, "{out}");
        assert_eq!(
            out,
            "{\"ts\":\"2026-01-01T00:00:00.000Z\",\"level\":\"warn\",\"worker\":1,\"conn\":7,\
             \"peer\":null,\"user\":\"ev\\\"il\\nuser\\u001b\",\"event\":\"closed\",\"code\":11,\
             \"reason\":null,\"bytes_in\":null,\"bytes_out\":null,\"duration_ms\":null,\
             \"kex\":null,\"cipher\":null,\"method\":\"password\",\"msg\":\"closed \\\"x\\\"\"}\n"
        );
    }

    #[test]
    fn text_is_the_message_and_records_without_event_are_messages() {
        let args = format_args!("listening on 127.0.0.1:22");
        let rec = log::Record::builder().level(log::Level::Info).args(args).build();
        assert_eq!(format(LogFormat::Text, "T", &rec), "T INFO  listening on 127.0.0.1:22\n");
        let out = format(LogFormat::Json, "T", &rec);
        assert!(out.contains("\"event\":\"message\""), "{out}");
    }
}
