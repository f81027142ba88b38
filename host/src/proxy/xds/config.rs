//! Envoy settings: Sidecar's `ENVOY_*` variables (§9.1) plus the gRPC bind address.

use crate::config::Env;
use crate::config::env::EnvError;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

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
    pub fn load(env: &Env) -> Result<Self, EnvError> {
        let grpc_bind_ip = match env.non_empty("ENVOY_GRPC_BIND_IP", None) {
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some(v) => v.parse().map_err(|_| EnvError {
                name: "ENVOY_GRPC_BIND_IP".into(),
                value: v.clone(),
                reason: "not an IP address".into(),
            })?,
        };
        Ok(EnvoyConfig {
            enabled: env.bool("ENVOY_USE_GRPC_API", None)?.unwrap_or(true),
            bind_ip: env
                .string("ENVOY_BIND_IP", Some("BIND_IP"))
                .unwrap_or_else(|| "192.168.168.168".into()),
            use_hostnames: env.bool("ENVOY_USE_HOSTNAMES", None)?.unwrap_or(false),
            grpc_port: env.int("ENVOY_GRPC_PORT", None)?.unwrap_or(7776),
            grpc_bind_ip,
        })
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = EnvoyConfig::load(&Env::default()).expect("defaults");
        assert!(c.enabled);
        assert_eq!(c.grpc_addr().to_string(), "127.0.0.1:7776");
        assert_eq!(c.bind_ip, "192.168.168.168");
        let env = Env::from_pairs([
            ("ENVOY_USE_GRPC_API", "false"),
            ("BIND_IP", "127.0.0.2"),
            ("ENVOY_GRPC_PORT", "17776"),
            ("ENVOY_GRPC_BIND_IP", "0.0.0.0"),
        ]);
        let c = EnvoyConfig::load(&env).expect("valid");
        assert!(!c.enabled);
        assert_eq!(c.bind_ip, "127.0.0.2");
        assert_eq!(c.grpc_addr().to_string(), "0.0.0.0:17776");
        assert!(EnvoyConfig::load(&Env::from_pairs([("ENVOY_GRPC_PORT", "x")])).is_err());
    }
}
