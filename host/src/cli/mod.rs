//! Command line: `sidecar agent` (the daemon; also what a bare `sidecar` runs, as in
//! Sidecar), `sidecar plugins ...` for plugin authors, `sidecar members`, `sidecar
//! keygen`, `sidecar dns lookup`.

mod agent;
mod dns;
mod envoy_bootstrap;
mod members;
mod plugins;

pub use crate::config::AgentArgs;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "sidecar",
    version,
    about = "Peer-to-peer service discovery with WebAssembly policy plugins"
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Without a subcommand, `sidecar` runs the agent with these flags (Sidecar's CLI).
    #[command(flatten)]
    pub agent: AgentArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Agent(AgentArgs),
    /// Inspect and try out plugins without a cluster.
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// List the cluster members a running agent sees, and their states.
    Members(MembersArgs),
    /// Print an Envoy bootstrap (YAML) that takes its config from this host's xDS server.
    EnvoyBootstrap(EnvoyBootstrapArgs),
    /// Print a fresh gossip encryption key (base64, 32 bytes) for SIDECAR_ENCRYPTION_KEYS.
    Keygen,
    /// Query the DNS interface.
    #[command(subcommand)]
    Dns(DnsCommand),
}

#[derive(Debug, Subcommand)]
pub enum DnsCommand {
    /// Look a name up (over UDP, then TCP when truncated) and print the answer.
    Lookup(DnsLookupArgs),
}

#[derive(Debug, Clone, Args)]
pub struct DnsLookupArgs {
    /// The name, e.g. web.service.sidecar.local.
    pub name: String,
    /// Record type: A, AAAA, SRV, TXT, SOA, NS, ANY ...
    #[arg(default_value = "A")]
    pub rtype: String,
    /// The DNS server, ip:port (default: SIDECAR_DNS_ADDR, else 127.0.0.1:8600).
    #[arg(long)]
    pub server: Option<String>,
    /// Ask over TCP.
    #[arg(long)]
    pub tcp: bool,
}

#[derive(Debug, Clone, Args)]
pub struct EnvoyBootstrapArgs {
    /// Envoy's node id (default: SIDECAR_NODE_NAME, else the host name). Every node
    /// gets the same resources.
    #[arg(long = "node-id")]
    pub node_id: Option<String>,
    /// Envoy's node cluster.
    #[arg(long = "cluster", default_value = "sidecar")]
    pub cluster: String,
    /// The ADS server, `ip:port` (default: ENVOY_GRPC_BIND_IP:ENVOY_GRPC_PORT).
    #[arg(long = "ads")]
    pub ads: Option<String>,
    /// Envoy's admin address, `ip:port`; `none` leaves it out.
    #[arg(long = "admin", default_value = "127.0.0.1:9901")]
    pub admin: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// List the configured plugins: name, kind, WIT version, source, grants.
    List(PluginsFileArg),
    /// Run one health check and print the result.
    Check {
        #[command(flatten)]
        file: PluginsFileArg,
        /// Check type as in plugins.toml (`HttpGet`, `External`, `AlwaysSuccessful`, ...).
        check_type: String,
        /// The check's arguments, as a `HealthCheckArgs` label would give them.
        #[arg(default_value = "")]
        args: String,
        /// Deadline for the check.
        #[arg(long, default_value = "3s", value_parser = sidecar_catalog::parse_go_duration)]
        timeout: std::time::Duration,
    },
    /// Run the configured namer on a container description.
    Name {
        #[command(flatten)]
        file: PluginsFileArg,
        /// A container label (repeatable), `KEY=VALUE`.
        #[arg(long = "label")]
        labels: Vec<String>,
        /// Container name as Docker reports it (leading slash optional).
        #[arg(long = "container-name")]
        container_name: String,
        #[arg(long)]
        image: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct PluginsFileArg {
    /// plugins.toml to use (SIDECAR_PLUGINS_FILE); the embedded defaults without one.
    #[arg(long = "plugins")]
    pub plugins: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MembersArgs {
    /// HTTP address of the agent to ask.
    #[arg(long = "http-addr", default_value = "127.0.0.1:7777")]
    pub http_addr: String,
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        None => agent::run(cli.agent),
        Some(Command::Agent(args)) => agent::run(args),
        Some(Command::Plugins(cmd)) => plugins::run(cmd),
        Some(Command::Members(args)) => members::run(args),
        Some(Command::EnvoyBootstrap(args)) => envoy_bootstrap::run(args),
        Some(Command::Dns(DnsCommand::Lookup(args))) => dns::run(args),
        Some(Command::Keygen) => {
            let key = sidecar_cluster::crypto::Keyring::generate_base64()
                .map_err(|e| anyhow::anyhow!("cannot read the system's random generator: {e}"))?;
            println!("{key}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
