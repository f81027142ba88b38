//! Configuration: the one place that reads the process environment, the command line
//! and plugins.toml. Everything else receives typed configuration from here.

pub mod agent;
pub mod args;
pub mod catalog;
pub mod cluster;
pub mod discovery;
pub mod dns;
pub mod env;
pub mod health;
pub mod http;
pub mod listeners;
pub mod log;
pub mod plugins;
pub mod proxy;

pub use args::AgentArgs;
pub use catalog::CatalogConfig;
pub use cluster::{ClusterArgs, ClusterConfig};
pub use env::{Env, EnvError};
pub use log::LogSettings;
pub use plugins::PluginsSetup;
pub use sidecar_plugin_host::{NamerVars, PluginsConfig, PluginsConfigError};

use crate::api::HttpLimits;
use crate::discovery::DiscoveryConfig;
use crate::discovery::docker::DockerConfig;
use crate::dns::DnsConfig;
use crate::health::HealthConfig;
use crate::listeners::ListenersConfig;
use crate::proxy::ProxyConfig;
use agent::CoreConfig;

/// Everything `sidecar agent` runs with, read once at start (and on reload) from the
/// environment, the flags and plugins.toml, then handed down typed.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub core: CoreConfig,
    /// The HTTP API's timeouts and caps.
    pub http: HttpLimits,
    pub log: LogSettings,
    pub catalog: CatalogConfig,
    pub discovery: DiscoveryConfig,
    pub docker: DockerConfig,
    pub health: HealthConfig,
    pub listeners: ListenersConfig,
    pub proxy: ProxyConfig,
    pub cluster: ClusterConfig,
    pub plugins: PluginsSetup,
    /// The DNS interface.
    pub dns: DnsConfig,
}

impl AgentConfig {
    /// From the process environment and `args`.
    pub fn from_process(args: &AgentArgs) -> anyhow::Result<Self> {
        AgentConfig::load(&Env::from_process(), args)
    }

    pub fn load(env: &Env, args: &AgentArgs) -> anyhow::Result<Self> {
        let core = CoreConfig::load(env, args)?;
        let proxy = ProxyConfig::load(env)?;
        let mut plugins = PluginsSetup::load(
            env,
            args.plugins.as_deref(),
            Some(core.advertise_ip.to_string()),
            core.node_name.clone(),
        )?;
        // The proxy drivers' emitters are plugins too: one load serves both.
        for (name, settings) in proxy.emitters()? {
            plugins.config.require_emitter(&name, settings);
        }
        Ok(AgentConfig {
            http: HttpLimits::load(env)?,
            log: LogSettings::load(env, args.logging_level.as_deref(), "info"),
            catalog: CatalogConfig::load(env)?,
            discovery: DiscoveryConfig::load(env, &args.discover)?,
            docker: DockerConfig::load(env),
            health: HealthConfig::load(env)?,
            listeners: ListenersConfig::load(env),
            cluster: ClusterConfig::load(env, args, &core)?,
            dns: DnsConfig::load(env)?,
            proxy,
            plugins,
            core,
        })
    }
}
