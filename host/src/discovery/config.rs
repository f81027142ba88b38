//! Discovery settings as the configuration module hands them down
//! (`crate::config::discovery` reads them).

use std::path::PathBuf;
use std::time::Duration;

/// A discovery method `SIDECAR_DISCOVERY` names. Plugin sources come from plugins.toml
/// instead, except `kubernetes_api`, which is the `discovery-kubernetes` plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Docker,
    Static,
    /// Runs as the plugin source [`KUBERNETES_PLUGIN`], configured from [`KubernetesApi`].
    KubernetesApi,
}

/// The embedded plugin behind `kubernetes_api`.
pub const KUBERNETES_PLUGIN: &str = "discovery-kubernetes";

/// Sidecar's `K8S_*` variables: where the Kubernetes API is and the service account's
/// credentials (`<creds_path>/token`, `<creds_path>/ca.crt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesApi {
    pub api_ip: String,
    /// 443 means `https` (Sidecar's rule), anything else `http`.
    pub api_port: u16,
    /// Where pods are listed.
    pub namespace: String,
    /// Per request.
    pub timeout: Duration,
    pub creds_path: PathBuf,
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
    /// Ports for static sidecar proxies that name none (`SIDECAR_CONNECT_PORT_RANGE`).
    pub connect_ports: std::ops::RangeInclusive<u16>,
    pub docker: DockerEndpoint,
    /// Values of `SIDECAR_DISCOVERY` that name no method (warned at startup).
    pub unknown: Vec<String>,
    /// Read whether or not `kubernetes_api` is selected: plugins.toml may run the
    /// plugin too, and these fill what it leaves unset.
    pub kubernetes: KubernetesApi,
}

impl DiscoveryConfig {
    pub fn uses(&self, m: Method) -> bool {
        self.methods.contains(&m)
    }
}
