//! Shared pieces of the proxy driver tests: the emitter plugins compiled natively and
//! Envoy started from the library's bootstrap; backends, clients and process helpers
//! come from the end-to-end crate (`sidecar_e2e`). The tests run the real `haproxy`
//! and `envoy` binaries (`scripts/setup.sh` installs both).

#![allow(dead_code, unused_imports)]

use async_trait::async_trait;
use sidecar_catalog::{Port, PortKind, Service, Status};
pub use sidecar_e2e::envoy::{self, admin_get, envoy_stat};
pub use sidecar_e2e::net::{Backend, http_get, seen, tcp_line};
pub use sidecar_e2e::{KillOnDrop, free_port, wait_for};
use sidecar_plugin_host::{EmitRequest, Emitted, PluginError, ProxyEmitter, XdsResource};
use std::sync::Arc;

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Alive => "alive",
        Status::Tombstone => "tombstone",
        Status::Unhealthy => "unhealthy",
        Status::Unknown => "unknown",
        Status::Draining => "draining",
    }
}

/// `proxy-envoy`, natively.
pub struct NativeEnvoy(pub proxy_envoy::resources::Settings);

#[async_trait]
impl ProxyEmitter for NativeEnvoy {
    async fn emit(&self, req: EmitRequest) -> Result<Emitted, PluginError> {
        let instances: Vec<_> = req
            .services
            .iter()
            .map(|s| proxy_envoy::resources::Instance {
                id: s.id.clone(),
                name: s.name.clone(),
                hostname: s.hostname.clone(),
                ports: s
                    .ports
                    .iter()
                    .map(|p| proxy_envoy::resources::PortSpec {
                        port: p.port,
                        service_port: p.service_port,
                        ip: p.ip.clone(),
                    })
                    .collect(),
                proxy_mode: s.proxy_mode.clone(),
                alive: s.status == Status::Alive,
            })
            .collect();
        let (rs, _) = proxy_envoy::resources::build(&instances, &self.0);
        Ok(Emitted::Xds(
            rs.into_iter()
                .map(|r| XdsResource {
                    type_url: r.type_url,
                    name: r.name,
                    value: r.value,
                })
                .collect(),
        ))
    }
}

/// `proxy-haproxy`, natively.
pub struct NativeHaproxy(pub proxy_haproxy::render::Settings);

#[async_trait]
impl ProxyEmitter for NativeHaproxy {
    async fn emit(&self, req: EmitRequest) -> Result<Emitted, PluginError> {
        let instances: Vec<_> = req
            .services
            .iter()
            .map(|s| proxy_haproxy::model::Instance {
                id: s.id.clone(),
                name: s.name.clone(),
                image: s.image.clone(),
                hostname: s.hostname.clone(),
                ports: s
                    .ports
                    .iter()
                    .map(|p| proxy_haproxy::model::PortSpec {
                        kind: p.kind.as_str().to_string(),
                        port: p.port,
                        service_port: p.service_port,
                        ip: p.ip.clone(),
                    })
                    .collect(),
                proxy_mode: s.proxy_mode.clone(),
                status: status_name(s.status).to_string(),
                updated: s.updated.to_rfc3339(),
            })
            .collect();
        proxy_haproxy::render::render(&self.0, &instances, &req.hostname, &req.cluster_name)
            .map(|(text, _)| Emitted::ConfigFile(text))
            .map_err(|message| PluginError::Failed {
                plugin: "proxy-haproxy".into(),
                message,
            })
    }
}

/// An emitter that wraps another and can be switched to produce extra resources.
pub struct Tamper {
    pub inner: Arc<dyn ProxyEmitter>,
    pub extra: parking_lot::Mutex<Vec<XdsResource>>,
}

#[async_trait]
impl ProxyEmitter for Tamper {
    async fn emit(&self, req: EmitRequest) -> Result<Emitted, PluginError> {
        match self.inner.emit(req).await? {
            Emitted::Xds(mut list) => {
                list.extend(self.extra.lock().iter().cloned());
                Ok(Emitted::Xds(list))
            }
            other => Ok(other),
        }
    }
}

pub fn service(id: &str, name: &str, mode: &str, port: u16, service_port: u16) -> Service {
    Service {
        id: id.into(),
        name: name.into(),
        image: format!("{name}:1"),
        ports: vec![Port {
            kind: PortKind::Tcp,
            port,
            service_port,
            ip: "127.0.0.1".into(),
        }],
        proxy_mode: mode.into(),
        status: Status::Alive,
        ..Service::default()
    }
}

/// Envoy with a bootstrap pointing at `ads_port`; its admin port.
pub fn start_envoy(dir: &std::path::Path, ads_port: u16, node: &str) -> (KillOnDrop, u16) {
    let admin = free_port("127.0.0.1");
    let yaml = sidecar::proxy::xds::bootstrap::bootstrap_yaml(
        &sidecar::proxy::xds::bootstrap::BootstrapOptions {
            node_id: node.into(),
            node_cluster: "test".into(),
            ads: format!("127.0.0.1:{ads_port}").parse().expect("addr"),
            admin: Some(format!("127.0.0.1:{admin}").parse().expect("addr")),
        },
    );
    (envoy::spawn(dir, node, yaml.as_bytes()), admin)
}
