//! DNS interface settings: `SIDECAR_DNS_ADDR`, `SIDECAR_DNS_DOMAIN`, `SIDECAR_DNS_TTL`,
//! `SIDECAR_DNS_RECURSORS`, `SIDECAR_DNS_TCP_MAX_CONNECTIONS`,
//! `SIDECAR_DNS_TCP_IDLE_TIMEOUT`.

use super::env::{Env, EnvError};
use crate::dns::DnsConfig;
use sidecar_catalog::parse_go_duration;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The longest TTL we hand out: the records follow the catalog, which changes in
/// seconds, so a long TTL only keeps clients on dead instances.
const MAX_TTL: u32 = 3600;

impl DnsConfig {
    pub fn load(env: &Env) -> Result<Self, EnvError> {
        let d = DnsConfig::default();
        let (addr, required) = match env.string("SIDECAR_DNS_ADDR", None) {
            None => (d.addr, false),
            Some(v) if v.trim().is_empty() => (None, false),
            Some(v) => (
                Some(v.trim().parse::<SocketAddr>().map_err(|_| {
                    invalid(env, "SIDECAR_DNS_ADDR", "not ip:port (empty turns DNS off)")
                })?),
                true,
            ),
        };
        let domain = match env.non_empty("SIDECAR_DNS_DOMAIN", None) {
            None => d.domain,
            Some(v) => domain(&v).ok_or_else(|| {
                invalid(
                    env,
                    "SIDECAR_DNS_DOMAIN",
                    "not a domain name (labels of 1-63 letters, digits, '-' or '_', at most 253 characters)",
                )
            })?,
        };
        let ttl = match env.string("SIDECAR_DNS_TTL", None) {
            None => d.ttl,
            Some(v) => ttl(&v).ok_or_else(|| {
                invalid(
                    env,
                    "SIDECAR_DNS_TTL",
                    "not a TTL: whole seconds (5) or a duration (5s), at most 1h",
                )
            })?,
        };
        let recursors = match env.list("SIDECAR_DNS_RECURSORS", None) {
            None => Vec::new(),
            Some(list) => list
                .iter()
                .map(|r| recursor(r))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    invalid(
                        env,
                        "SIDECAR_DNS_RECURSORS",
                        "a comma-separated list of IP or IP:port (port 53 when left out)",
                    )
                })?,
        };
        let tcp_max_connections = match env.int::<usize>("SIDECAR_DNS_TCP_MAX_CONNECTIONS", None)? {
            None => d.tcp_max_connections,
            Some(0) => {
                return Err(invalid(
                    env,
                    "SIDECAR_DNS_TCP_MAX_CONNECTIONS",
                    "must be at least 1",
                ));
            }
            Some(n) => n,
        };
        let tcp_idle_timeout = match env.duration("SIDECAR_DNS_TCP_IDLE_TIMEOUT", None)? {
            None => d.tcp_idle_timeout,
            Some(t) if t.is_zero() => {
                return Err(invalid(
                    env,
                    "SIDECAR_DNS_TCP_IDLE_TIMEOUT",
                    "must be greater than zero",
                ));
            }
            Some(t) => t,
        };
        Ok(DnsConfig {
            addr,
            required,
            domain,
            ttl,
            recursors,
            tcp_max_connections,
            tcp_idle_timeout,
        })
    }
}

/// The address `sidecar dns lookup` asks: `SIDECAR_DNS_ADDR` (an unspecified IP means
/// this host's loopback), else the default.
pub fn lookup_addr_from_process() -> anyhow::Result<SocketAddr> {
    let cfg = DnsConfig::load(&Env::from_process())?;
    let mut addr = cfg.addr.ok_or_else(|| {
        anyhow::anyhow!("the DNS interface is off (SIDECAR_DNS_ADDR is empty): pass --server")
    })?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    Ok(addr)
}

fn invalid(env: &Env, name: &str, reason: &str) -> EnvError {
    EnvError {
        name: name.to_string(),
        value: env.string(name, None).unwrap_or_default(),
        reason: reason.to_string(),
    }
}

fn domain(v: &str) -> Option<String> {
    let v = v.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !v.is_empty()
        && v.len() <= 253
        && v.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    ok.then_some(v)
}

fn ttl(v: &str) -> Option<u32> {
    let v = v.trim();
    let secs = match v.parse::<u32>() {
        Ok(n) => n,
        Err(_) => {
            let d = parse_go_duration(v).ok()?;
            if d.subsec_nanos() != 0 || d > Duration::from_secs(MAX_TTL as u64) {
                return None;
            }
            d.as_secs() as u32
        }
    };
    (secs <= MAX_TTL).then_some(secs)
}

fn recursor(v: &str) -> Option<SocketAddr> {
    if let Ok(a) = v.parse::<SocketAddr>() {
        return Some(a);
    }
    v.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, 53))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_listen_on_loopback_8600_without_recursors() {
        let c = DnsConfig::load(&Env::default()).expect("defaults");
        assert_eq!(c, DnsConfig::default());
        assert_eq!(c.addr, Some("127.0.0.1:8600".parse().expect("addr")));
        assert!(!c.required);
        assert_eq!(c.domain, "sidecar.local");
        assert_eq!(c.ttl, 0);
        assert!(c.recursors.is_empty());
    }

    #[test]
    fn settings_are_read_and_normalised() {
        let env = Env::from_pairs([
            ("SIDECAR_DNS_ADDR", "0.0.0.0:53"),
            ("SIDECAR_DNS_DOMAIN", "Consul."),
            ("SIDECAR_DNS_TTL", "5s"),
            ("SIDECAR_DNS_RECURSORS", "127.0.0.53, 127.0.0.1:5353,[::1]"),
            ("SIDECAR_DNS_TCP_MAX_CONNECTIONS", "10"),
            ("SIDECAR_DNS_TCP_IDLE_TIMEOUT", "2s"),
        ]);
        let c = DnsConfig::load(&env).expect("valid");
        assert_eq!(c.addr, Some("0.0.0.0:53".parse().expect("addr")));
        assert!(c.required);
        assert_eq!(c.domain, "consul");
        assert_eq!(c.ttl, 5);
        assert_eq!(
            c.recursors,
            vec![
                "127.0.0.53:53".parse().expect("a"),
                "127.0.0.1:5353".parse().expect("a"),
                "[::1]:53".parse().expect("a"),
            ]
        );
        assert_eq!(c.tcp_max_connections, 10);
        assert_eq!(c.tcp_idle_timeout, Duration::from_secs(2));
        assert_eq!(
            DnsConfig::load(&Env::from_pairs([("SIDECAR_DNS_TTL", "3")]))
                .expect("ttl")
                .ttl,
            3
        );
    }

    #[test]
    fn empty_address_turns_dns_off() {
        let c = DnsConfig::load(&Env::from_pairs([("SIDECAR_DNS_ADDR", "")])).expect("off");
        assert_eq!(c.addr, None);
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        for (name, value) in [
            ("SIDECAR_DNS_ADDR", "localhost:53"),
            ("SIDECAR_DNS_DOMAIN", "a..b"),
            ("SIDECAR_DNS_DOMAIN", "has space.local"),
            ("SIDECAR_DNS_TTL", "2h"),
            ("SIDECAR_DNS_TTL", "1.5s"),
            ("SIDECAR_DNS_RECURSORS", "dns.example"),
            ("SIDECAR_DNS_TCP_MAX_CONNECTIONS", "0"),
            ("SIDECAR_DNS_TCP_IDLE_TIMEOUT", "0s"),
        ] {
            let e = DnsConfig::load(&Env::from_pairs([(name, value)]))
                .expect_err(&format!("{name}={value}"));
            assert_eq!(e.name, name);
        }
    }
}
