//! Capabilities granted to a plugin in plugins.toml. Nothing is granted by default.
//!
//! `http` is an allow-list of `host:port` patterns checked for the first URL and for
//! every redirect hop *before* connecting. A pattern is
//! * host: an exact name or IP (`127.0.0.1`, `api.internal`, `[::1]`), `*` for any host,
//!   `*.example.com` for any subdomain (not `example.com` itself), or a placeholder
//!   `{advertise_ip}` / `{hostname}` that the daemon fills in;
//! * port: a number or `*`. The port is required; `80`/`443` are what a URL without a
//!   port uses.
//!
//! Names are matched as written in the URL (case-insensitively, without resolving them),
//! so `localhost:*` does not allow `127.0.0.1`.
//!
//! `net` (TCP connects and gRPC health checks) is an allow-list of the same patterns,
//! checked against the `host:port` the plugin asks for.
//! `ca_file` adds trusted roots for that plugin's `https://` requests; `bearer_token_file`
//! is a secret the host sends for it (`http.get-with-bearer-token`, WIT 0.1.2). Both are
//! paths the host reads: the plugin gets no file access.

use std::fmt;
use std::path::PathBuf;

/// What a plugin may do besides computing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    pub http: Vec<HostPattern>,
    pub exec: bool,
    /// Destinations of `net.tcp-connect` and `net.grpc-health`.
    pub net: Vec<HostPattern>,
    /// PEM bundle of extra roots for HTTPS, besides the built-in public ones.
    pub ca_file: Option<PathBuf>,
    /// File holding the bearer token of `http.get-with-bearer-token`.
    pub bearer_token_file: Option<PathBuf>,
}

impl Grants {
    /// True when `host:port` matches some pattern.
    pub fn allows_http(&self, host: &str, port: u16) -> bool {
        self.http.iter().any(|p| p.matches(host, port))
    }

    /// True when `host:port` matches some `net` pattern.
    pub fn allows_net(&self, host: &str, port: u16) -> bool {
        self.net.iter().any(|p| p.matches(host, port))
    }
}

/// Values for the placeholders a pattern may use.
#[derive(Debug, Clone, Default)]
pub struct Placeholders {
    pub advertise_ip: Option<String>,
    pub hostname: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Any,
    Exact(String),
    /// `*.example.com`, stored as `.example.com`.
    Suffix(String),
    AdvertiseIp,
    Hostname,
}

/// One `host:port` allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: HostMatch,
    /// None = any port.
    port: Option<u16>,
}

impl HostPattern {
    /// Parses a pattern as written in plugins.toml.
    pub fn parse(s: &str) -> Result<HostPattern, String> {
        let bad = |why: &str| {
            format!(
                "bad http pattern {s:?}: {why} (examples: \"127.0.0.1:*\", \"*.internal:8080\", \"{{advertise_ip}}:*\")"
            )
        };
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| bad("missing `:port` (use `:*` for any port)"))?;
        let port = match port {
            "*" => None,
            p => Some(
                p.parse::<u16>()
                    .map_err(|_| bad("the port must be a number or *"))?,
            ),
        };
        if host.trim() == "*." {
            return Err(bad("a wildcard host is `*` or `*.domain`"));
        }
        let host = normalize(host);
        let host = match host.as_str() {
            "" => return Err(bad("empty host")),
            "*" => HostMatch::Any,
            "{advertise_ip}" => HostMatch::AdvertiseIp,
            "{hostname}" => HostMatch::Hostname,
            h if h.contains('{') || h.contains('}') => {
                return Err(bad(
                    "unknown placeholder (known: {advertise_ip}, {hostname})",
                ));
            }
            h if h.starts_with("*.") => {
                let rest = &h[2..];
                if rest.is_empty() || rest.contains('*') {
                    return Err(bad("a wildcard host is `*` or `*.domain`"));
                }
                HostMatch::Suffix(format!(".{rest}"))
            }
            h if h.contains('*') => return Err(bad("a wildcard host is `*` or `*.domain`")),
            h if h.contains(':') && !s.contains('[') => {
                return Err(bad("write IPv6 addresses in brackets, e.g. [::1]:8080"));
            }
            h => HostMatch::Exact(h.to_string()),
        };
        Ok(HostPattern { host, port })
    }

    /// Fills in placeholders. A placeholder without a value drops the pattern (None).
    pub fn expand(&self, values: &Placeholders) -> Option<HostPattern> {
        let host = match &self.host {
            HostMatch::AdvertiseIp => HostMatch::Exact(normalize(values.advertise_ip.as_deref()?)),
            HostMatch::Hostname => HostMatch::Exact(normalize(values.hostname.as_deref()?)),
            other => other.clone(),
        };
        Some(HostPattern {
            host,
            port: self.port,
        })
    }

    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        let host = normalize(host);
        match &self.host {
            HostMatch::Any => true,
            HostMatch::Exact(h) => *h == host,
            HostMatch::Suffix(suffix) => {
                host.len() > suffix.len() && host.ends_with(suffix.as_str())
            }
            HostMatch::AdvertiseIp | HostMatch::Hostname => false,
        }
    }
}

/// Lowercase, no IPv6 brackets, no trailing dot.
fn normalize(host: &str) -> String {
    let h = host.trim();
    let h = h
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(h);
    h.strip_suffix('.').unwrap_or(h).to_ascii_lowercase()
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostMatch::Any => f.write_str("*")?,
            HostMatch::Exact(h) if h.contains(':') => write!(f, "[{h}]")?,
            HostMatch::Exact(h) => f.write_str(h)?,
            HostMatch::Suffix(s) => write!(f, "*{s}")?,
            HostMatch::AdvertiseIp => f.write_str("{advertise_ip}")?,
            HostMatch::Hostname => f.write_str("{hostname}")?,
        }
        match self.port {
            Some(p) => write!(f, ":{p}"),
            None => f.write_str(":*"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> HostPattern {
        HostPattern::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn exact_wildcards_and_ports() {
        assert!(p("127.0.0.1:*").matches("127.0.0.1", 8080));
        assert!(!p("127.0.0.1:*").matches("127.0.0.2", 8080));
        assert!(p("api.internal:8080").matches("API.internal.", 8080));
        assert!(!p("api.internal:8080").matches("api.internal", 8081));
        assert!(p("*:443").matches("anything.example", 443));
        assert!(!p("*:443").matches("anything.example", 80));
        assert!(p("*.example.com:*").matches("a.b.example.com", 1));
        assert!(!p("*.example.com:*").matches("example.com", 1));
        assert!(!p("*.example.com:*").matches("badexample.com", 1));
        assert!(p("[::1]:*").matches("[::1]", 9));
        assert!(p("[::1]:*").matches("::1", 9));
        assert!(
            !p("localhost:*").matches("127.0.0.1", 80),
            "names are not resolved"
        );
    }

    #[test]
    fn placeholders_expand_or_drop() {
        let values = Placeholders {
            advertise_ip: Some("10.1.2.3".into()),
            hostname: None,
        };
        let adv = p("{advertise_ip}:*").expand(&values).expect("has a value");
        assert!(adv.matches("10.1.2.3", 80));
        assert!(
            !p("{advertise_ip}:*").matches("10.1.2.3", 80),
            "unexpanded matches nothing"
        );
        assert_eq!(p("{hostname}:80").expand(&values), None);
    }

    #[test]
    fn bad_patterns() {
        for bad in [
            "127.0.0.1",
            "host:port",
            ":80",
            "a*b:80",
            "*.:80",
            "{nope}:80",
            "::1:80",
            "host:70000",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "127.0.0.1:*",
            "*:443",
            "*.example.com:8080",
            "{advertise_ip}:*",
            "[::1]:80",
        ] {
            assert_eq!(p(s).to_string(), s);
        }
    }
}
