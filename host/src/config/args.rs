//! The daemon's flags (`sidecar agent`). Each overrides its environment variable when
//! given; [`super::agent`] and [`super::cluster`] merge the two. Each flag's text and
//! default come from the table in [`super::settings`], and clap shows its variable.

use super::settings::flag_help;
use clap::Args;
use std::path::PathBuf;

/// Flags of the daemon. Each overrides its environment variable when given.
#[derive(Debug, Clone, Default, Args)]
pub struct AgentArgs {
    #[arg(short = 'c', long = "cluster-ip", env = "SIDECAR_SEEDS", help = flag_help("SIDECAR_SEEDS"))]
    pub cluster_ip: Vec<String>,
    #[arg(short = 'n', long = "cluster-name", env = "SIDECAR_CLUSTER_NAME", help = flag_help("SIDECAR_CLUSTER_NAME"))]
    pub cluster_name: Option<String>,
    #[arg(short = 'a', long = "advertise-ip", env = "SIDECAR_ADVERTISE_IP", help = flag_help("SIDECAR_ADVERTISE_IP"))]
    pub advertise_ip: Option<String>,
    #[arg(short = 'd', long = "discover", env = "SIDECAR_DISCOVERY", help = flag_help("SIDECAR_DISCOVERY"))]
    pub discover: Vec<String>,
    #[arg(short = 'l', long = "logging-level", env = "SIDECAR_LOGGING_LEVEL", help = flag_help("SIDECAR_LOGGING_LEVEL"))]
    pub logging_level: Option<String>,
    #[arg(long = "node-name", env = "SIDECAR_NODE_NAME", help = flag_help("SIDECAR_NODE_NAME"))]
    pub node_name: Option<String>,
    #[arg(long = "bind-ip", env = "SIDECAR_BIND_IP", help = flag_help("SIDECAR_BIND_IP"))]
    pub bind_ip: Option<String>,
    #[arg(long = "http-addr", env = "SIDECAR_HTTP_ADDR", help = flag_help("SIDECAR_HTTP_ADDR"))]
    pub http_addr: Option<String>,
    #[arg(long = "plugins", env = "SIDECAR_PLUGINS_FILE", help = flag_help("SIDECAR_PLUGINS_FILE"))]
    pub plugins: Option<PathBuf>,
    #[command(flatten)]
    pub cluster: super::ClusterArgs,
}
