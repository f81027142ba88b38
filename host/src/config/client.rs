//! What the client commands (`sidecar members`, `services`, `drain`, `undrain`, `maint`)
//! need to reach a running agent: its URL, the API token and the certificate to trust.
//! They read the agent's own settings, so on the agent's host they work without flags.

use super::agent::{ConfigError, CoreConfig};
use super::env::Env;
use super::settings::flag_help;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

/// Flags of the client commands.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClientArgs {
    #[arg(long = "http-addr", env = "SIDECAR_HTTP_ADDR", help = flag_help("SIDECAR_HTTP_ADDR"))]
    pub http_addr: Option<String>,
    #[arg(long = "api-url", env = "SIDECAR_API_URL", help = flag_help("SIDECAR_API_URL"))]
    pub api_url: Option<String>,
}

/// How to reach the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// `http://127.0.0.1:7777`, without a trailing slash.
    pub base_url: String,
    /// Sent as `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// PEM certificates to trust for HTTPS (instead of the system's roots).
    pub ca_file: Option<PathBuf>,
}

impl ClientConfig {
    pub fn from_process(args: &ClientArgs) -> Result<Self, ConfigError> {
        ClientConfig::load(&Env::from_process(), args)
    }

    /// `--api-url` wins; else the agent's `SIDECAR_HTTP_ADDR` (default `0.0.0.0:7777`)
    /// with an unspecified IP replaced by loopback, over HTTPS when the API has a
    /// certificate (`SIDECAR_API_TLS_CERT`) or the client one to trust
    /// (`SIDECAR_API_TLS_CA`).
    pub fn load(env: &Env, args: &ClientArgs) -> Result<Self, ConfigError> {
        let ca_file = env
            .non_empty("SIDECAR_API_TLS_CA", None)
            .or_else(|| env.non_empty("SIDECAR_API_TLS_CERT", None))
            .map(PathBuf::from);
        let base_url = match args
            .api_url
            .clone()
            .or_else(|| env.non_empty("SIDECAR_API_URL", None))
        {
            Some(url) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(ConfigError::Invalid(format!(
                        "API URL {url:?}: expected http://host:port or https://host:port"
                    )));
                }
                url.trim_end_matches('/').to_string()
            }
            None => {
                let addr = args
                    .http_addr
                    .clone()
                    .or_else(|| env.non_empty("SIDECAR_HTTP_ADDR", None))
                    .unwrap_or_else(|| "0.0.0.0:7777".to_string());
                let mut sock: SocketAddr = addr.parse().map_err(|_| {
                    ConfigError::Invalid(format!("HTTP address {addr:?} is not ip:port"))
                })?;
                if sock.ip().is_unspecified() {
                    sock.set_ip(match sock.ip() {
                        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
                    });
                }
                let scheme = if ca_file.is_some() { "https" } else { "http" };
                format!("{scheme}://{sock}")
            }
        };
        Ok(ClientConfig {
            base_url,
            token: CoreConfig::api_token(env)?,
            ca_file,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)], args: ClientArgs) -> ClientConfig {
        ClientConfig::load(&Env::from_pairs(pairs.iter().copied()), &args).expect("valid")
    }

    #[test]
    fn the_agent_address_with_loopback_for_an_unspecified_ip() {
        assert_eq!(
            load(&[], ClientArgs::default()).base_url,
            "http://127.0.0.1:7777"
        );
        assert_eq!(
            load(
                &[("SIDECAR_HTTP_ADDR", "0.0.0.0:8080")],
                ClientArgs::default()
            )
            .base_url,
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            load(&[("SIDECAR_HTTP_ADDR", "[::]:8080")], ClientArgs::default()).base_url,
            "http://[::1]:8080"
        );
        let args = ClientArgs {
            http_addr: Some("127.0.0.9:9".into()),
            ..ClientArgs::default()
        };
        assert_eq!(
            load(&[("SIDECAR_HTTP_ADDR", "0.0.0.0:8080")], args).base_url,
            "http://127.0.0.9:9"
        );
    }

    #[test]
    fn tls_token_and_url_override() {
        let dir = tempfile::tempdir().expect("tmp");
        let token = dir.path().join("token");
        std::fs::write(&token, "s3cret\n").expect("write");
        let c = load(
            &[
                ("SIDECAR_HTTP_ADDR", "127.0.0.1:7777"),
                ("SIDECAR_API_TLS_CERT", "/etc/sidecar/api.pem"),
                ("SIDECAR_API_TOKEN_FILE", &token.display().to_string()),
            ],
            ClientArgs::default(),
        );
        assert_eq!(c.base_url, "https://127.0.0.1:7777");
        assert_eq!(c.token.as_deref(), Some("s3cret"));
        assert_eq!(c.ca_file, Some(PathBuf::from("/etc/sidecar/api.pem")));
        let c = load(
            &[
                ("SIDECAR_API_TLS_CERT", "/etc/sidecar/api.pem"),
                ("SIDECAR_API_TLS_CA", "/etc/sidecar/ca.pem"),
                ("SIDECAR_API_URL", "https://sidecar.internal:7777/"),
            ],
            ClientArgs::default(),
        );
        assert_eq!(c.base_url, "https://sidecar.internal:7777");
        assert_eq!(c.ca_file, Some(PathBuf::from("/etc/sidecar/ca.pem")));
        for bad in [
            ("SIDECAR_API_URL", "127.0.0.1:7777"),
            ("SIDECAR_HTTP_ADDR", "7777"),
        ] {
            assert!(
                ClientConfig::load(&Env::from_pairs([bad]), &ClientArgs::default()).is_err(),
                "{bad:?}"
            );
        }
    }
}
