//! Envoy settings: Sidecar's `ENVOY_*` variables (§9.1) plus the gRPC bind address.

use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvoyConfig {
    /// `ENVOY_USE_GRPC_API` (default true): run the xDS server.
    pub enabled: bool,
    /// `ENVOY_BIND_IP` (bare `BIND_IP`, default `192.168.168.168`): listener address.
    pub bind_ip: String,
    /// `ENVOY_USE_HOSTNAMES`: endpoints by hostname (Envoy resolves them).
    pub use_hostnames: bool,
    /// `ENVOY_GRPC_PORT` (default 7776).
    pub grpc_port: u16,
    /// `ENVOY_GRPC_BIND_IP` (ours, default 127.0.0.1, Sidecar's fixed choice).
    pub grpc_bind_ip: IpAddr,
}

impl EnvoyConfig {
    pub fn grpc_addr(&self) -> SocketAddr {
        SocketAddr::new(self.grpc_bind_ip, self.grpc_port)
    }

    /// The settings the host passes to the emitter plugin (`proxy-envoy` keys).
    pub fn plugin_settings(&self) -> Vec<(String, String)> {
        vec![
            ("bind-ip".to_string(), self.bind_ip.clone()),
            ("use-hostnames".to_string(), self.use_hostnames.to_string()),
        ]
    }
}
