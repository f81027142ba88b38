//! Configuration: Sidecar-compatible environment variables and plugins.toml.

pub mod agent;
pub mod env;
pub mod plugins_toml;

pub use env::{Env, EnvError};
pub use plugins_toml::{PluginsConfig, PluginsConfigError};
