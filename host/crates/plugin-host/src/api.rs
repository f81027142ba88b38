//! The plugin kinds as plain Rust traits.
//!
//! Discovery, health and the proxy drivers call policy through these traits and never
//! see wasmtime. The WebAssembly runtime implements them for components; tests may use a
//! native implementation where that is what they are about.

use async_trait::async_trait;
use sidecar_catalog::{PortKind, Service};
use std::sync::Arc;
use std::time::Duration;

/// A failed plugin call. Every variant names the plugin, so a log line or an API error
/// always says which plugin misbehaved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// The plugin returned `err(..)`: it ran, and reports a failure of its own.
    #[error("plugin {plugin}: {message}")]
    Failed { plugin: String, message: String },
    /// The plugin trapped (panic, out of memory, bad memory access). Its instance was
    /// discarded; the next call gets a fresh one.
    #[error("plugin {plugin} crashed: {detail}")]
    Trap { plugin: String, detail: String },
    /// The call ran past its deadline and was interrupted.
    #[error("plugin {plugin} timed out after {after:?}")]
    Timeout { plugin: String, after: Duration },
    /// The plugin cannot be used (failed to load, rejected its settings, or was disabled
    /// after crashing repeatedly).
    #[error("plugin {plugin} is unavailable: {reason}")]
    Unavailable { plugin: String, reason: String },
}

impl PluginError {
    pub fn plugin(&self) -> &str {
        match self {
            PluginError::Failed { plugin, .. }
            | PluginError::Trap { plugin, .. }
            | PluginError::Timeout { plugin, .. }
            | PluginError::Unavailable { plugin, .. } => plugin,
        }
    }
}

/// A published port of a container, as Docker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPort {
    pub kind: PortKind,
    pub private_port: u16,
    /// 0 when exposed but not published.
    pub public_port: u16,
    pub ip: String,
}

/// What a namer sees of a container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerInfo {
    /// Full container ID.
    pub id: String,
    /// First name, with Docker's leading slash.
    pub name: String,
    pub image: String,
    pub labels: Vec<(String, String)>,
    pub ports: Vec<ContainerPort>,
}

/// Turns a container into a service name.
#[async_trait]
pub trait Namer: Send + Sync {
    async fn name(&self, container: &ContainerInfo) -> Result<String, PluginError>;
}

/// One health-check invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRequest {
    pub service: Service,
    /// Arguments after templating (`{{ host }}` etc. already rendered by the host).
    pub args: String,
    pub timeout: Duration,
    /// This host's advertised IP.
    pub host_ip: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    Healthy,
    Unhealthy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    pub status: CheckStatus,
    pub message: String,
}

/// A health-check type (`HttpGet`, `External`, `AlwaysSuccessful`, custom names).
#[async_trait]
pub trait HealthChecker: Send + Sync {
    async fn check(&self, req: CheckRequest) -> Result<CheckOutcome, PluginError>;
}

/// Check type and arguments as discovery found them (labels, static file, plugin).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckSpec {
    pub check_type: String,
    pub args: String,
}

/// One service a discovery source reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    /// Empty hostname = this host; the host stamps times and sets the status.
    pub service: Service,
    /// None = Sidecar's default check.
    pub check: Option<CheckSpec>,
    /// A local port that wants change events POSTed to it.
    pub listen_port: Option<u16>,
}

/// A discovery-source plugin: returns the complete current set of local services.
#[async_trait]
pub trait DiscoverySource: Send + Sync {
    async fn discover(&self) -> Result<Vec<Discovered>, PluginError>;
}

/// Input of a proxy config emitter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EmitRequest {
    /// Every record, any status, sorted by `Updated` ascending.
    pub services: Vec<Service>,
    pub hostname: String,
    pub cluster_name: String,
    /// This host's sidecar proxies, which the emitter reads through the
    /// `local-services.sidecar-proxies` import during this call (WIT 0.1.3).
    pub sidecar_proxies: Arc<[SidecarProxy]>,
}

/// A Consul-style sidecar proxy this host runs (static.json `Connect.SidecarService`):
/// a public listener forwarding to the parent service, and upstream listeners. Local
/// configuration, never gossiped: only this host's proxy needs it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SidecarProxy {
    /// The proxy service's ID (`<parent ID>-sidecar-proxy`) and name.
    pub id: String,
    pub name: String,
    /// The public listener: this host's advertised IP and the proxy's port.
    pub address: String,
    pub port: u16,
    pub destination_service_name: String,
    pub destination_service_id: String,
    /// Where the parent service listens.
    pub local_service_address: String,
    pub local_service_port: u16,
    pub upstreams: Vec<Upstream>,
}

/// A local listener that forwards to a service of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Upstream {
    pub destination_name: String,
    /// The destination's ServicePort; 0 = its only (or lowest) one.
    pub destination_port: u16,
    pub local_bind_address: String,
    pub local_bind_port: u16,
}

/// One xDS resource, protobuf-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdsResource {
    pub type_url: String,
    pub name: String,
    pub value: Vec<u8>,
}

/// What an emitter produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Emitted {
    ConfigFile(String),
    Xds(Vec<XdsResource>),
}

/// A proxy config emitter (`proxy-haproxy`, `proxy-envoy`, or a user's own).
#[async_trait]
pub trait ProxyEmitter: Send + Sync {
    async fn emit(&self, req: EmitRequest) -> Result<Emitted, PluginError>;
}

/// What a service said about itself (`PUT /api/services/{id}/ttl/{state}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlState {
    Pass,
    Warn,
    Fail,
}

impl TtlState {
    /// `pass`, `warn`, `fail` as in the API path.
    pub fn parse(s: &str) -> Option<TtlState> {
        match s {
            "pass" => Some(TtlState::Pass),
            "warn" => Some(TtlState::Warn),
            "fail" => Some(TtlState::Fail),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TtlState::Pass => "pass",
            TtlState::Warn => "warn",
            TtlState::Fail => "fail",
        }
    }
}

/// The latest TTL report of a local service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TtlReport {
    pub state: TtlState,
    pub note: String,
    /// How long ago it arrived.
    pub age: Duration,
}

/// The daemon's knowledge of its own local services, behind the plugins'
/// `local-services` import (check types `Ttl` and `Alias`). Implemented by the daemon;
/// called from plugin calls, so it must answer from memory, without blocking.
pub trait LocalServices: Send + Sync + std::fmt::Debug {
    /// The latest TTL report of the local service with this ID.
    fn ttl_report(&self, id: &str) -> Option<TtlReport>;
    /// The announced status of the local service with this ID.
    fn status(&self, id: &str) -> Option<sidecar_catalog::Status>;
}
