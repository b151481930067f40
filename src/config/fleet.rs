//! Settings for running as a load-balanced fleet (issue 6): PROXY protocol, SO_REUSEPORT, the
//! metrics/health endpoint and the drain delay. Validated here so errors name the flag.

use super::{check_seconds, ConfigError};
use crate::cli::Args;
use crate::proxy_protocol::Cidr;
use std::net::SocketAddr;
use std::time::Duration;

pub use crate::cli::DEFAULT_PROXY_TIMEOUT;

#[derive(Debug, Clone, Default)]
pub struct FleetSettings {
    /// `Some(allowed peers)` when every listener expects a PROXY header.
    pub proxy_from: Option<Vec<Cidr>>,
    pub proxy_timeout: Duration,
    pub reuse_port: bool,
    pub metrics_listen: Option<SocketAddr>,
    pub drain_delay: Duration,
}

pub fn settings(args: &Args) -> Result<FleetSettings, ConfigError> {
    check_seconds("--proxy-timeout", args.proxy_timeout)?;
    check_seconds("--drain-delay", args.drain_delay)?;
    let cidrs = args
        .proxy_from
        .iter()
        .map(|s| Cidr::parse(s).map_err(|e| ConfigError::new("--proxy-from", e)))
        .collect::<Result<Vec<_>, _>>()?;
    let proxy_from = match (args.proxy_protocol, cidrs.is_empty()) {
        (true, true) => {
            return Err(ConfigError::new(
                "--proxy-from",
                "--proxy-protocol needs at least one --proxy-from CIDR (who may send the header)",
            ))
        }
        (false, false) => {
            return Err(ConfigError::new("--proxy-from", "has no effect without --proxy-protocol"))
        }
        (true, false) => Some(cidrs),
        (false, true) => None,
    };
    Ok(FleetSettings {
        proxy_from,
        proxy_timeout: Duration::from_secs(args.proxy_timeout),
        reuse_port: args.reuse_port,
        metrics_listen: args.metrics_listen,
        drain_delay: Duration::from_secs(args.drain_delay),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(extra: &[&str]) -> Result<FleetSettings, ConfigError> {
        let mut v = vec!["sshfront"];
        v.extend_from_slice(extra);
        settings(&Args::try_parse_from(v).unwrap())
    }

    #[test]
    fn proxy_flags() {
        let s = parse(&[]).unwrap();
        assert!(s.proxy_from.is_none() && !s.reuse_port && s.metrics_listen.is_none());
        assert_eq!(s.proxy_timeout, Duration::from_secs(DEFAULT_PROXY_TIMEOUT));
        let s = parse(&[
            "--proxy-protocol",
            "--proxy-from",
            "127.0.0.1/32",
            "--proxy-from",
            "fd00::/8",
            "--proxy-timeout",
            "2",
            "--reuse-port",
            "--metrics-listen",
            "127.0.0.1:9100",
            "--drain-delay",
            "3",
        ])
        .unwrap();
        assert_eq!(s.proxy_from.as_ref().map(Vec::len), Some(2));
        assert_eq!(s.proxy_timeout, Duration::from_secs(2));
        assert!(s.reuse_port);
        assert_eq!(s.drain_delay, Duration::from_secs(3));
    }

    #[test]
    fn errors_name_the_flag() {
        for (extra, flag) in [
            (&["--proxy-protocol"][..], "--proxy-from"),
            (&["--proxy-from", "127.0.0.1"][..], "--proxy-from"),
            (&["--proxy-protocol", "--proxy-from", "10.0.0.1/8"][..], "--proxy-from"),
            (&["--proxy-protocol", "--proxy-from", "x"][..], "--proxy-from"),
            (&["--drain-delay", "99999999999"][..], "--drain-delay"),
        ] {
            assert_eq!(parse(extra).unwrap_err().flag, flag, "{extra:?}");
        }
        let mut v = vec!["sshfront", "--proxy-timeout", "0"];
        assert!(Args::try_parse_from(&v).is_err());
        v.truncate(1);
        assert!(Args::try_parse_from(&v).is_ok());
    }
}
