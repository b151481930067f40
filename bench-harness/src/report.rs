//! Results: latency percentiles from hdrhistogram, failures by kind, CPU per operation, and
//! their rendering as text or JSON.

use hdrhistogram::Histogram;
use sshfront::wire::json::{self, Escape};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A JSON value, just what the report needs.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    pub fn render(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Num(n) if n.is_finite() => {
                if n.fract() == 0.0 && n.abs() < 1e15 {
                    let _ = write!(out, "{}", *n as i64);
                } else {
                    let _ = write!(out, "{n}");
                }
            }
            Json::Num(_) => out.push_str("null"),
            Json::Str(s) => json::push_string(out, s, Escape::Ascii),
            Json::Arr(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.render(out);
                }
                out.push(']');
            }
            Json::Obj(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    Json::Str(k.clone()).render(out);
                    out.push(':');
                    v.render(out);
                }
                out.push('}');
            }
        }
    }
}

impl From<f64> for Json {
    fn from(v: f64) -> Json {
        Json::Num(v)
    }
}
impl From<u64> for Json {
    fn from(v: u64) -> Json {
        Json::Num(v as f64)
    }
}
impl From<&str> for Json {
    fn from(v: &str) -> Json {
        Json::Str(v.into())
    }
}
impl From<String> for Json {
    fn from(v: String) -> Json {
        Json::Str(v)
    }
}
impl<T: Into<Json>> From<Option<T>> for Json {
    fn from(v: Option<T>) -> Json {
        v.map_or(Json::Null, Into::into)
    }
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// Percentiles of a histogram recorded in microseconds; None when empty.
pub fn latency(h: &Histogram<u64>) -> Option<Latency> {
    if h.is_empty() {
        return None;
    }
    let ms = |us: u64| us as f64 / 1000.0;
    Some(Latency {
        p50: ms(h.value_at_quantile(0.50)),
        p90: ms(h.value_at_quantile(0.90)),
        p99: ms(h.value_at_quantile(0.99)),
        max: ms(h.max()),
    })
}

/// Quantiles of the latency CDF (plots): every 2% plus the tail.
const CDF_QUANTILES: [f64; 56] = {
    let mut q = [0.0; 56];
    let mut i = 0;
    while i < 50 {
        q[i] = i as f64 / 50.0;
        i += 1;
    }
    // 50..56: the tail from 99% to the maximum.
    q[50] = 0.99;
    q[51] = 0.995;
    q[52] = 0.999;
    q[53] = 0.9999;
    q[54] = 0.99999;
    q[55] = 1.0;
    q
};

/// The latency CDF as `[[quantile, ms], ...]` (for plots); an empty array when nothing was
/// recorded.
pub fn cdf(h: &Histogram<u64>) -> Json {
    if h.is_empty() {
        return Json::Arr(Vec::new());
    }
    let pts = CDF_QUANTILES.iter().map(|&q| {
        let ms = h.value_at_quantile(q) as f64 / 1000.0;
        Json::Arr(vec![Json::Num(q), Json::Num(ms)])
    });
    Json::Arr(pts.collect())
}

/// A histogram for microsecond latencies up to 10 minutes, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap_or_else(|_| Histogram::new(3).unwrap())
}

/// CPU seconds of the server tree and of the harness over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cpu {
    pub server_s: Option<f64>,
    pub harness_s: f64,
}

/// One run's results as ordered fields; rendered as text lines or one JSON object.
#[derive(Default)]
pub struct Report {
    pub fields: Vec<(String, Json)>,
}

impl Report {
    pub fn put(&mut self, k: &str, v: impl Into<Json>) {
        self.fields.push((k.to_string(), v.into()));
    }

    pub fn put_latency(&mut self, l: Option<Latency>) {
        let f = |g: fn(&Latency) -> f64| Json::from(l.as_ref().map(g));
        self.put(
            "latency_ms",
            Json::Obj(vec![
                ("p50".into(), f(|l| l.p50)),
                ("p90".into(), f(|l| l.p90)),
                ("p99".into(), f(|l| l.p99)),
                ("max".into(), f(|l| l.max)),
            ]),
        );
    }

    pub fn put_failures(&mut self, f: &BTreeMap<String, u64>) {
        let obj = f.iter().map(|(k, v)| (k.clone(), Json::from(*v))).collect();
        self.put("failures", Json::Obj(obj));
    }

    /// Per-op CPU figures and whether the harness was the cheaper side. `ops` is handshakes
    /// or GB; `unit` names the per-op figure.
    pub fn put_cpu(&mut self, cpu: Cpu, ops: f64, scale: f64, unit: &str) {
        self.put("server_cpu_s", cpu.server_s);
        self.put("harness_cpu_s", cpu.harness_s);
        let per = |s: f64| if ops > 0.0 { Some(s * scale / ops) } else { None };
        self.put(&format!("server_{unit}"), cpu.server_s.and_then(per));
        self.put(&format!("harness_{unit}"), per(cpu.harness_s));
        let cheaper = cpu.server_s.filter(|_| ops > 0.0).map(|s| Json::Bool(cpu.harness_s < s));
        self.put("harness_cheaper_than_server", cheaper);
    }

    pub fn json(&self) -> String {
        let mut s = String::new();
        Json::Obj(self.fields.clone()).render(&mut s);
        s
    }

    pub fn text(&self) -> String {
        let mut s = String::new();
        for (k, v) in &self.fields {
            let mut r = String::new();
            match v {
                Json::Str(x) => r.push_str(x),
                Json::Num(n) => r.push_str(&fmt_num(*n)),
                other => other.render(&mut r),
            }
            let _ = writeln!(s, "{k:<28} {r}");
        }
        if let Some(line) = self.cheaper_line() {
            s.push_str(&line);
            s.push('\n');
        }
        s
    }

    fn cheaper_line(&self) -> Option<String> {
        let get = |k: &str| self.fields.iter().find(|(n, _)| n == k).map(|(_, v)| v);
        match get("harness_cheaper_than_server")? {
            Json::Bool(true) => Some("note: the harness used less CPU per op than the server".into()),
            Json::Bool(false) => Some(
                "WARNING: the harness used MORE CPU per op than the server: rates may be capped by \
                 the load generator; trust the server CPU per op more than the rate"
                    .into(),
            ),
            _ => None,
        }
    }
}

fn fmt_num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else if n.abs() >= 100.0 {
        format!("{n:.1}")
    } else {
        format!("{n:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_from_histogram() {
        let mut h = new_histogram();
        assert!(latency(&h).is_none());
        for us in 1..=1000u64 {
            h.record(us * 1000).unwrap();
        }
        let Json::Arr(c) = cdf(&h) else { panic!("not an array") };
        assert_eq!(c.len(), CDF_QUANTILES.len());
        let ms: Vec<f64> = c
            .iter()
            .map(|p| match p {
                Json::Arr(v) => match v[1] {
                    Json::Num(x) => x,
                    _ => panic!("not a number"),
                },
                _ => panic!("not a pair"),
            })
            .collect();
        assert!(ms.windows(2).all(|w| w[0] <= w[1]), "CDF not monotonic: {ms:?}");
        assert!((ms[25] - 500.0).abs() < 1.0 && (ms[ms.len() - 1] - 1000.0).abs() < 1.0);
        let l = latency(&h).unwrap();
        assert!((l.p50 - 500.0).abs() < 1.0, "{l:?}");
        assert!((l.p90 - 900.0).abs() < 1.0, "{l:?}");
        assert!((l.p99 - 990.0).abs() < 1.0, "{l:?}");
        assert!((l.max - 1000.0).abs() < 1.0, "{l:?}");
    }

    #[test]
    fn json_and_text_rendering() {
        let mut r = Report::default();
        r.put("mode", "handshake");
        r.put("ok", 12u64);
        r.put("rate", 1.5f64);
        r.put("none", Option::<f64>::None);
        let mut f = BTreeMap::new();
        f.insert("disconnect_2".to_string(), 3u64);
        r.put_failures(&f);
        r.put_cpu(Cpu { server_s: Some(2.0), harness_s: 1.0 }, 1000.0, 1000.0, "cpu_ms_per_op");
        assert_eq!(
            r.json(),
            "{\"mode\":\"handshake\",\"ok\":12,\"rate\":1.5,\"none\":null,\
             \"failures\":{\"disconnect_2\":3},\"server_cpu_s\":2,\"harness_cpu_s\":1,\
             \"server_cpu_ms_per_op\":2,\"harness_cpu_ms_per_op\":1,\
             \"harness_cheaper_than_server\":true}"
        );
        let t = r.text();
        assert!(t.contains("rate                         1.5000\n"), "{t}");
        assert!(t.contains("less CPU per op"), "{t}");
        let mut s = String::new();
        Json::Arr(vec![Json::Arr(vec![0.5.into(), 2u64.into()]), Json::Null]).render(&mut s);
        assert_eq!(s, "[[0.5,2],null]");
        let mut s = String::new();
        Json::Str("a\"b\\\n\u{1}".into()).render(&mut s);
        assert_eq!(s, "\"a\\\"b\\\\\\n\\u0001\"");
    }
}
