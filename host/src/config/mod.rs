//! Configuration: the one place that reads the process environment, the command line
//! and plugins.toml. Everything else receives typed configuration from here.

pub mod advertise;
pub mod agent;
pub mod args;
pub mod catalog;
pub mod client;
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
pub mod service_manager;
pub mod settings;

pub use args::AgentArgs;
pub use catalog::CatalogConfig;
pub use cluster::{ClusterArgs, ClusterConfig, JoinPolicy};
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
    /// systemd's readiness socket and watchdog.
    pub service_manager: service_manager::ServiceManagerConfig,
    /// The DNS interface.
    pub dns: DnsConfig,
}

impl AgentConfig {
    /// From the process environment, the file named by `SIDECAR_CONFIG_FILE` (its
    /// values win: SIGHUP reads it again) and `args`.
    pub fn from_process(args: &AgentArgs) -> anyhow::Result<Self> {
        let env = Env::from_process();
        let env = match env.non_empty("SIDECAR_CONFIG_FILE", None) {
            Some(path) => env.overlay_file(std::path::Path::new(&path))?,
            None => env,
        };
        AgentConfig::load(&env, args)
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
        plugins.require_emitters(&proxy)?;
        let discovery = DiscoveryConfig::load(env, &args.discover)?;
        plugins.apply_discovery(&discovery, &core.node_name)?;
        let cluster = ClusterConfig::load(env, args, &core)?;
        let mut catalog = CatalogConfig::load(env)?;
        if cluster.wire == cluster::GossipWire::Memberlist {
            // Go peers expire a record 80 s after its last stamp: re-stamp ours within a
            // minute, as Sidecar's refresh broadcast does.
            catalog.lifespans.restamp = catalog.lifespans.restamp.min(cluster::MEMBERLIST_RESTAMP);
        }
        Ok(AgentConfig {
            http: HttpLimits::load(env)?,
            log: LogSettings::load(env, args.logging_level.as_deref(), "info"),
            catalog,
            discovery,
            docker: DockerConfig::load(env),
            health: HealthConfig::load(env)?,
            listeners: ListenersConfig::load(env),
            cluster,
            dns: DnsConfig::load(env)?,
            proxy,
            plugins,
            core,
            service_manager: service_manager::ServiceManagerConfig::load(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use settings::{DefaultIs, SETTINGS};

    /// What the settings decide, as text (everything but plugins.toml's config, whose
    /// maps have no fixed order).
    fn fingerprint(env: &Env) -> String {
        let cfg = AgentConfig::load(env, &AgentArgs::default()).expect("valid");
        let mut core = cfg.core.clone();
        core.advertise_detected = None;
        format!(
            "{core:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}",
            cfg.http,
            cfg.log,
            cfg.catalog,
            cfg.discovery,
            cfg.docker,
            cfg.health,
            cfg.listeners,
            cfg.proxy,
            cfg.cluster,
            cfg.plugins.options,
            cfg.service_manager,
        )
    }

    /// Each default in the reference is the one the code uses: giving it explicitly
    /// changes nothing.
    #[test]
    fn the_documented_defaults_are_the_defaults() {
        let base = [
            ("SIDECAR_ADVERTISE_IP", "127.0.0.1"),
            ("SIDECAR_NODE_NAME", "n1"),
        ];
        let reference = fingerprint(&Env::from_pairs(base));
        for s in SETTINGS {
            let DefaultIs::Value(v) = s.default else {
                continue;
            };
            let env = Env::from_pairs(base.iter().copied().chain([(s.name, v)]));
            assert_eq!(
                fingerprint(&env),
                reference,
                "{}={v:?} is documented as the default but changes the configuration",
                s.name
            );
        }
    }
}
