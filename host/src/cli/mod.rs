//! Command line: `sidecar agent` (the daemon; also what a bare `sidecar` runs, as in
//! Sidecar), `sidecar plugins ...` for plugin authors, the client commands that talk to a
//! running agent (`members`, `services`, `drain`, `undrain`, `maint`), `sidecar keygen`,
//! `sidecar dns lookup`, and what packaging needs (`completions`, `manpage`,
//! `config reference`).

mod agent;
mod api_client;
mod dns;
mod envoy_bootstrap;
mod members;
mod operate;
mod plugins;
mod table;

pub use crate::config::AgentArgs;
pub use crate::config::client::ClientArgs;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// What `-h` adds: the settings without a flag are in the long help.
const ENV_HINT: &str =
    "More settings are read from the environment only: --help lists them all with their defaults.";

#[derive(Debug, Parser)]
#[command(
    name = "sidecar",
    version,
    about = "Peer-to-peer service discovery with WebAssembly policy plugins"
)]
#[command(args_conflicts_with_subcommands = true)]
#[command(after_help = ENV_HINT, after_long_help = crate::config::settings::env_only_help())]
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
    #[command(after_help = ENV_HINT, after_long_help = crate::config::settings::env_only_help())]
    Agent(AgentArgs),
    /// Inspect and try out plugins without a cluster.
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// List the cluster members a running agent sees, and their states.
    Members(ClientArgs),
    /// List the services in a running agent's catalog.
    Services(ServicesArgs),
    /// Set one of this host's service instances to DRAINING.
    Drain(InstanceArgs),
    /// Take one of this host's service instances out of DRAINING.
    Undrain(InstanceArgs),
    /// Node maintenance: every local service DRAINING until it is turned off.
    #[command(subcommand)]
    Maint(MaintCommand),
    /// Print an Envoy bootstrap (YAML) that takes its config from this host's xDS server.
    EnvoyBootstrap(EnvoyBootstrapArgs),
    /// Print a fresh gossip encryption key (base64, 32 bytes) for SIDECAR_ENCRYPTION_KEYS.
    Keygen,
    /// Query the DNS interface.
    #[command(subcommand)]
    Dns(DnsCommand),
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Manpage,
    /// The configuration reference.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print every setting with its variable, flag and default (docs/configuration.md).
    Reference,
}

#[derive(Debug, Args)]
pub struct ServicesArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Only the instances of this service.
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct InstanceArgs {
    /// The instance's ID (the `ID` column of `sidecar services`).
    pub id: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum MaintCommand {
    /// Put this host in maintenance.
    On {
        /// Why (shown in the API and the console).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// End maintenance.
    Off {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Whether this host is in maintenance, since when and why.
    Status {
        #[command(flatten)]
        client: ClientArgs,
    },
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
    /// List the plugins as the agent loads them: name, kind, WIT version, source, grants,
    /// and what uses each (the proxy drivers' emitters included).
    List(PluginsFileArg),
    /// Run one health check and print the result.
    Check {
        #[command(flatten)]
        file: PluginsFileArg,
        /// The address `{{ host }}` and `{advertise_ip}` grants stand for
        /// [default: the agent's, configured or detected]
        #[arg(long = "advertise-ip", env = "SIDECAR_ADVERTISE_IP")]
        advertise_ip: Option<String>,
        /// Check type as in plugins.toml (`HttpGet`, `External`, `AlwaysSuccessful`, `Tcp`,
        /// `GrpcHealth`, ...; case-insensitive). An unknown type is an error (exit 2).
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
    #[arg(long = "plugins", env = "SIDECAR_PLUGINS_FILE", help = crate::config::settings::flag_help("SIDECAR_PLUGINS_FILE"))]
    pub plugins: Option<PathBuf>,
}

/// The agent's flags as given on the command line only. clap also fills flags from
/// their environment variables (for `--help`); the configuration reads those variables
/// itself, with `SIDECAR_CONFIG_FILE` laid over them, so only a real flag may override
/// the file (and a reload, which reads the file again, can change them).
fn agent_flags_only(parsed: AgentArgs) -> AgentArgs {
    use clap::{CommandFactory, FromArgMatches};
    fn strip_env(cmd: clap::Command) -> clap::Command {
        let names: Vec<String> = cmd
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .collect();
        let mut cmd = cmd.mut_args(|a| a.env(None));
        for n in names {
            cmd = cmd.mut_subcommand(n, strip_env);
        }
        cmd
    }
    let matches = strip_env(Cli::command()).try_get_matches_from(std::env::args_os());
    match matches.map(|m| Cli::from_arg_matches(&m)) {
        Ok(Ok(Cli {
            command: Some(Command::Agent(args)),
            ..
        })) => args,
        Ok(Ok(Cli {
            command: None,
            agent,
        })) => agent,
        _ => parsed,
    }
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        None => agent::run(agent_flags_only(cli.agent)),
        Some(Command::Agent(args)) => agent::run(agent_flags_only(args)),
        Some(Command::Plugins(cmd)) => plugins::run(cmd),
        Some(Command::Members(args)) => members::run(&args),
        Some(Command::Services(args)) => operate::services(&args),
        Some(Command::Drain(args)) => operate::drain(&args, true),
        Some(Command::Undrain(args)) => operate::drain(&args, false),
        Some(Command::Maint(cmd)) => operate::maint(&cmd),
        Some(Command::Completions { shell }) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "sidecar", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Manpage) => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut out)?;
            std::io::Write::write_all(&mut std::io::stdout(), &out)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Config(ConfigCommand::Reference)) => {
            print!("{}", crate::config::settings::reference_markdown());
            Ok(ExitCode::SUCCESS)
        }
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
