//! The daemon's flags (`sidecar agent`). Each overrides its environment variable when
//! given; [`super::agent`] and [`super::cluster`] merge the two.

use clap::Args;
use std::path::PathBuf;

/// Flags of the daemon. Each overrides its environment variable when given.
#[derive(Debug, Clone, Default, Args)]
pub struct AgentArgs {
    /// Seed to join (repeatable; replaces SIDECAR_SEEDS). `host` or `host:port`.
    #[arg(short = 'c', long = "cluster-ip")]
    pub cluster_ip: Vec<String>,
    /// Cluster name (SIDECAR_CLUSTER_NAME, default `default`).
    #[arg(short = 'n', long = "cluster-name")]
    pub cluster_name: Option<String>,
    /// IP advertised to peers and put on discovered ports (SIDECAR_ADVERTISE_IP).
    #[arg(short = 'a', long = "advertise-ip")]
    pub advertise_ip: Option<String>,
    /// Discovery method (repeatable; replaces SIDECAR_DISCOVERY): docker, static.
    #[arg(short = 'd', long = "discover")]
    pub discover: Vec<String>,
    /// Log level: debug, info, warn, error (SIDECAR_LOGGING_LEVEL).
    #[arg(short = 'l', long = "logging-level")]
    pub logging_level: Option<String>,
    /// Member name (SIDECAR_NODE_NAME, default: the host name).
    #[arg(long = "node-name")]
    pub node_name: Option<String>,
    /// Address the gossip sockets bind to (SIDECAR_BIND_IP, default 0.0.0.0).
    #[arg(long = "bind-ip")]
    pub bind_ip: Option<String>,
    /// Address of the HTTP API (SIDECAR_HTTP_ADDR, default 0.0.0.0:7777).
    #[arg(long = "http-addr")]
    pub http_addr: Option<String>,
    /// plugins.toml (SIDECAR_PLUGINS_FILE); without one the embedded defaults apply.
    #[arg(long = "plugins")]
    pub plugins: Option<PathBuf>,
    #[command(flatten)]
    pub cluster: super::ClusterArgs,
}
