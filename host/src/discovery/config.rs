//! Discovery settings as the configuration module hands them down
//! (`crate::config::discovery` reads them).

use std::path::PathBuf;

/// A built-in discovery method. Plugin sources come from plugins.toml instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Docker,
    Static,
}

/// Where to reach Docker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerEndpoint {
    /// `DOCKER_URL`: `unix:///path`, `tcp://host:port` or `http://host:port`.
    Url(String),
    /// `DOCKER_URL` unset or empty: the standard `DOCKER_HOST` variables, which default
    /// to `/var/run/docker.sock`.
    Defaults,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// In configuration order; duplicates removed.
    pub methods: Vec<Method>,
    pub static_file: PathBuf,
    /// A larger static file is refused whole (the last good set stays).
    pub static_max_bytes: u64,
    pub docker: DockerEndpoint,
    /// Values of `SIDECAR_DISCOVERY` that name no method (warned at startup).
    pub unknown: Vec<String>,
}

impl DiscoveryConfig {
    pub fn uses(&self, m: Method) -> bool {
        self.methods.contains(&m)
    }
}
