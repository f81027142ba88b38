//! Configuration: the one place that reads the process environment, the command line
//! and plugins.toml. Everything else receives typed configuration from here.

pub mod agent;
pub mod args;
pub mod cluster;
pub mod env;
pub mod plugins;

pub use args::AgentArgs;
pub use cluster::{ClusterArgs, ClusterConfig};
pub use env::{Env, EnvError};
pub use plugins::PluginsSetup;
pub use sidecar_plugin_host::{NamerVars, PluginsConfig, PluginsConfigError};
