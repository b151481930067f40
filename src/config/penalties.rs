//! `--per-source-penalties SPEC` and `--per-source-penalty-exempt CIDR`: OpenSSH's
//! PerSourcePenalties (9.8+) in its own syntax, e.g.
//! `authfail:5s noauth:1s grace-exceeded:10s max:10m min:15s max-sources4:65536
//! overflow:permissive`, or `yes` for the defaults below, or `no`.
//!
//! What each keyword means is in `runtime::penalty`; this module only parses and validates.

use super::ConfigError;
use crate::proxy_protocol::Cidr;
use std::time::Duration;

/// What to do when the table of penalised sources is full (per address family).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Forget the penalties closest to expiry to make room (OpenSSH's default).
    Permissive,
    /// Refuse every connection of that family until entries expire.
    DenyAll,
}

/// The validated settings; defaults are OpenSSH's.
#[derive(Debug, Clone, PartialEq)]
pub struct PenaltySettings {
    pub authfail: Duration,
    pub noauth: Duration,
    pub grace_exceeded: Duration,
    pub invalid_user: Duration,
    pub refuse_connection: Duration,
    /// Accepted for compatibility; sshfront has no per-connection process to crash.
    pub crash: Duration,
    /// Penalty time a source may accumulate.
    pub max: Duration,
    /// Penalty time past which a source is refused.
    pub min: Duration,
    pub max_sources4: usize,
    pub max_sources6: usize,
    pub overflow4: Overflow,
    pub overflow6: Overflow,
    /// Prefix lengths sources are grouped by (`--per-source-netblock`).
    pub v4_bits: u8,
    pub v6_bits: u8,
    pub exempt: Vec<Cidr>,
}

impl Default for PenaltySettings {
    fn default() -> Self {
        PenaltySettings {
            authfail: Duration::from_secs(5),
            noauth: Duration::from_secs(1),
            grace_exceeded: Duration::from_secs(10),
            invalid_user: Duration::from_secs(5),
            refuse_connection: Duration::from_secs(10),
            crash: Duration::from_secs(90),
            max: Duration::from_secs(600),
            min: Duration::from_secs(15),
            max_sources4: 65536,
            max_sources6: 65536,
            overflow4: Overflow::Permissive,
            overflow6: Overflow::Permissive,
            v4_bits: 32,
            v6_bits: 64,
            exempt: Vec::new(),
        }
    }
}

const FLAG: &str = "--per-source-penalties";

/// Parses SPEC (space- or comma-separated keywords); `None` when penalties are off.
pub fn parse(
    spec: Option<&str>,
    exempt: &[String],
    netblock: Option<&str>,
) -> Result<Option<PenaltySettings>, ConfigError> {
    let Some(spec) = spec else { return Ok(None) };
    let words: Vec<&str> =
        spec.split(|c: char| c.is_whitespace() || c == ',').filter(|w| !w.is_empty()).collect();
    if words.is_empty() {
        return Err(ConfigError::new(FLAG, "empty value (use yes, no or keyword:value ...)"));
    }
    let mut s = PenaltySettings::default();
    let mut overflow6_set = false;
    for w in &words {
        let lw = w.to_ascii_lowercase();
        if lw == "yes" || lw == "no" {
            if words.len() > 1 {
                return Err(ConfigError::new(FLAG, format!("'{w}' must appear alone")));
            }
            if lw == "no" {
                return Ok(None);
            }
            continue;
        }
        let Some((key, value)) = w.split_once(':') else {
            return Err(ConfigError::new(FLAG, format!("'{w}': expected keyword:value")));
        };
        let time = |v: &str| {
            parse_time(v)
                .ok_or_else(|| ConfigError::new(FLAG, format!("'{w}': invalid time value")))
        };
        let count = |v: &str| {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ConfigError::new(FLAG, format!("'{w}': expected a positive count")))
        };
        let overflow = |v: &str| match v {
            "permissive" => Ok(Overflow::Permissive),
            "deny-all" => Ok(Overflow::DenyAll),
            _ => Err(ConfigError::new(FLAG, format!("'{w}': expected permissive or deny-all"))),
        };
        match key {
            "authfail" => s.authfail = time(value)?,
            "noauth" => s.noauth = time(value)?,
            "grace-exceeded" => s.grace_exceeded = time(value)?,
            "invaliduser" => s.invalid_user = time(value)?,
            "refuseconnection" => s.refuse_connection = time(value)?,
            "crash" => s.crash = time(value)?,
            "max" => s.max = time(value)?,
            "min" => s.min = time(value)?,
            "max-sources4" => s.max_sources4 = count(value)?,
            "max-sources6" => s.max_sources6 = count(value)?,
            "overflow" => s.overflow4 = overflow(value)?,
            "overflow6" => {
                s.overflow6 = overflow(value)?;
                overflow6_set = true;
            }
            _ => return Err(ConfigError::new(FLAG, format!("unsupported keyword '{key}'"))),
        }
    }
    if !overflow6_set {
        s.overflow6 = s.overflow4;
    }
    for e in exempt {
        s.exempt
            .push(Cidr::parse(e).map_err(|m| ConfigError::new("--per-source-penalty-exempt", m))?);
    }
    if let Some(nb) = netblock {
        let flag = "--per-source-netblock";
        let (v4, v6) = nb.split_once(':').unwrap_or((nb, "64"));
        s.v4_bits =
            v4.parse().ok().filter(|b| (1..=32).contains(b)).ok_or_else(|| {
                ConfigError::new(flag, format!("'{nb}': IPv4 prefix must be 1..=32"))
            })?;
        s.v6_bits = v6.parse().ok().filter(|b| (1..=128).contains(b)).ok_or_else(|| {
            ConfigError::new(flag, format!("'{nb}': IPv6 prefix must be 1..=128"))
        })?;
    }
    Ok(Some(s))
}

/// OpenSSH's time format: a number of seconds, or numbers with units concatenated (`1h30m`,
/// `90s`, `1.5m`): s, m, h, d, w.
pub fn parse_time(v: &str) -> Option<Duration> {
    if v.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut num = String::new();
    for c in v.chars() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let unit = match c.to_ascii_lowercase() {
            's' => 1.0,
            'm' => 60.0,
            'h' => 3600.0,
            'd' => 86400.0,
            'w' => 604_800.0,
            _ => return None,
        };
        total += num.parse::<f64>().ok()? * unit;
        num.clear();
    }
    if !num.is_empty() {
        total += num.parse::<f64>().ok()?;
    }
    (total.is_finite() && total <= 365.0 * 86400.0).then(|| Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("5"), Some(Duration::from_secs(5)));
        assert_eq!(parse_time("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_time("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_time("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_time("0.5s"), Some(Duration::from_millis(500)));
        assert_eq!(parse_time("5x"), None);
        assert_eq!(parse_time(""), None);
        assert_eq!(parse_time("99999w"), None);
    }

    #[test]
    fn spec_syntax() {
        assert_eq!(parse(None, &[], None).unwrap(), None);
        assert_eq!(parse(Some("no"), &[], None).unwrap(), None);
        assert_eq!(parse(Some("yes"), &[], None).unwrap(), Some(PenaltySettings::default()));
        let s = parse(
            Some("authfail:2s noauth:1s grace-exceeded:10s max:10m min:15s max-sources4:4 overflow:deny-all"),
            &["10.0.0.0/8".into()],
            Some("24:48"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.authfail, Duration::from_secs(2));
        assert_eq!(s.max, Duration::from_secs(600));
        assert_eq!(s.max_sources4, 4);
        assert_eq!((s.overflow4, s.overflow6), (Overflow::DenyAll, Overflow::DenyAll));
        assert_eq!((s.v4_bits, s.v6_bits), (24, 48));
        assert_eq!(s.exempt.len(), 1);
        for bad in ["yes authfail:1", "authfail", "bogus:1", "authfail:x", "max-sources4:0", ""] {
            let e = parse(Some(bad), &[], None).unwrap_err().to_string();
            assert!(e.contains("--per-source-penalties"), "{bad}: {e}");
        }
        assert!(parse(Some("yes"), &["10.0.0.1/8".into()], None).is_err());
        assert!(parse(Some("yes"), &[], Some("33")).is_err());
    }
}
