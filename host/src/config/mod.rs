//! Configuration: Sidecar-compatible environment variables and plugins.toml.

pub mod agent;
pub mod env;

pub use env::{Env, EnvError};
