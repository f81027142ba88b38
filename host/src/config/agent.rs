//! Settings every part of the agent shares: who we are, where we listen, how we log.
//!
//! The other modules of `config` parse each subsystem's group of variables; this is
//! the common core. Flags override the environment, as in Sidecar.

use super::env::{Env, EnvError};
use crate::config::AgentArgs;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreConfig {
    /// Cluster member name; also `Hostname` of our records. Default: the host name.
    pub node_name: String,
    pub cluster_name: String,
    /// The IP peers and proxies reach us on (Sidecar's "published IP").
    pub advertise_ip: IpAddr,
    pub http_addr: SocketAddr,
    /// `SIDECAR_API_TOKEN`, or the first line of `SIDECAR_API_TOKEN_FILE`: the bearer
    /// token writes must carry. Without one, writes are accepted from loopback only.
    pub api_token: Option<String>,
    /// How the advertise IP was detected (`None` when it was configured), for the log.
    pub advertise_detected: Option<super::advertise::Detected>,
    /// `SIDECAR_API_AUTH_READS`: reads need the token too (Sidecar's clients then need
    /// it, so it is off by default).
    pub api_auth_reads: bool,
    /// `SIDECAR_API_TLS_CERT` and `SIDECAR_API_TLS_KEY`: serve the API over HTTPS.
    pub api_tls: Option<ApiTls>,
    /// Where the daemon keeps state across restarts (maintenance mode):
    /// `SIDECAR_STATE_DIR`, else the XDG state directory, else `/var/lib/sidecar` for
    /// root. `None`: nothing is kept.
    pub state_dir: Option<PathBuf>,
}

/// PEM files of the API's certificate chain and private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CoreConfig {
    /// Also what the client commands send.
    pub fn api_token(env: &Env) -> Result<Option<String>, ConfigError> {
        if let Some(t) = env.non_empty("SIDECAR_API_TOKEN", None) {
            return Ok(Some(t.trim().to_string()));
        }
        let Some(path) = env.non_empty("SIDECAR_API_TOKEN_FILE", None) else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| ConfigError::Invalid(format!("SIDECAR_API_TOKEN_FILE {path}: {e}")))?;
        match text.lines().next().map(str::trim) {
            Some(t) if !t.is_empty() => Ok(Some(t.to_string())),
            _ => Err(ConfigError::Invalid(format!(
                "SIDECAR_API_TOKEN_FILE {path}: the file is empty"
            ))),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error("{0}")]
    Invalid(String),
}

impl CoreConfig {
    pub fn load(env: &Env, args: &AgentArgs) -> Result<Self, ConfigError> {
        let node_name = args
            .node_name
            .clone()
            .or_else(|| env.non_empty("SIDECAR_NODE_NAME", None))
            .unwrap_or_else(system_hostname);
        let cluster_name = args
            .cluster_name
            .clone()
            .or_else(|| env.string("SIDECAR_CLUSTER_NAME", Some("CLUSTER_NAME")))
            .unwrap_or_else(|| "default".to_string());
        let (advertise_ip, advertise_detected) =
            super::advertise::resolve(env, args.advertise_ip.clone())?;
        let http_addr_str = args
            .http_addr
            .clone()
            .or_else(|| env.non_empty("SIDECAR_HTTP_ADDR", None))
            .unwrap_or_else(|| "0.0.0.0:7777".to_string());
        let http_addr = http_addr_str.parse().map_err(|_| {
            ConfigError::Invalid(format!("HTTP address {http_addr_str:?} is not ip:port"))
        })?;
        Ok(CoreConfig {
            node_name,
            cluster_name,
            advertise_ip,
            http_addr,
            api_token: Self::api_token(env)?,
            api_auth_reads: env.bool("SIDECAR_API_AUTH_READS", None)?.unwrap_or(false),
            api_tls: Self::api_tls(env)?,
            state_dir: state_dir(env),
            advertise_detected,
        })
    }

    fn api_tls(env: &Env) -> Result<Option<ApiTls>, ConfigError> {
        match (
            env.non_empty("SIDECAR_API_TLS_CERT", None),
            env.non_empty("SIDECAR_API_TLS_KEY", None),
        ) {
            (Some(cert), Some(key)) => Ok(Some(ApiTls {
                cert: cert.into(),
                key: key.into(),
            })),
            (None, None) => Ok(None),
            _ => Err(ConfigError::Invalid(
                "SIDECAR_API_TLS_CERT and SIDECAR_API_TLS_KEY go together: set both or neither"
                    .into(),
            )),
        }
    }
}

fn state_dir(env: &Env) -> Option<PathBuf> {
    if let Some(d) = env.non_empty("SIDECAR_STATE_DIR", None) {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = env.non_empty("XDG_STATE_HOME", None) {
        return Some(PathBuf::from(d).join("sidecar"));
    }
    if nix::unistd::geteuid().is_root() {
        return Some(PathBuf::from("/var/lib/sidecar"));
    }
    env.non_empty("HOME", None)
        .map(|h| PathBuf::from(h).join(".local/state/sidecar"))
}

/// The host name, as Sidecar uses it for the member name.
pub fn system_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_environment() {
        let env = Env::from_pairs([
            ("SIDECAR_CLUSTER_NAME", "env-cluster"),
            ("SIDECAR_ADVERTISE_IP", "10.0.0.9"),
            ("SIDECAR_NODE_NAME", "env-node"),
        ]);
        let args = AgentArgs {
            cluster_name: Some("flag-cluster".into()),
            ..AgentArgs::default()
        };
        let cfg = CoreConfig::load(&env, &args).expect("valid");
        assert_eq!(cfg.cluster_name, "flag-cluster");
        assert_eq!(cfg.node_name, "env-node");
        assert_eq!(cfg.advertise_ip.to_string(), "10.0.0.9");
        assert_eq!(cfg.http_addr.to_string(), "0.0.0.0:7777");
    }

    #[test]
    fn bad_values_are_reported() {
        let env = Env::from_pairs([("SIDECAR_ADVERTISE_IP", "nope")]);
        assert!(CoreConfig::load(&env, &AgentArgs::default()).is_err());
        let env = Env::from_pairs([
            ("SIDECAR_ADVERTISE_IP", "10.0.0.1"),
            ("SIDECAR_HTTP_ADDR", "7777"),
        ]);
        assert!(CoreConfig::load(&env, &AgentArgs::default()).is_err());
    }
}
