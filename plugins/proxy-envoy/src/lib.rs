//! Proxy emitter for Envoy: the catalog as xDS v3 resources (state of the world).
//!
//! Per ServicePort of an ALIVE service: a Listener (HTTP connection manager with an
//! inline route, TcpProxy for `tcp`, websocket upgrades for `ws`), a Cluster (EDS over
//! ADS) and a ClusterLoadAssignment, named `<name>:<ServicePort>`. Per sidecar proxy of
//! this host (Consul-style `Connect.SidecarService`): TcpProxy listeners ([`sidecar`]).
//! The host serves them over ADS in a safe order; a user's emitter can return different
//! resources (retries, timeouts, TLS) without any change to the host.

pub mod resources;
pub mod sidecar;

#[cfg(target_arch = "wasm32")]
mod guest {
    use super::resources::{Instance, PortSpec, Settings, build_with_proxies};
    use super::sidecar::{SidecarProxy, Upstream};
    use sidecar_plugin_sdk::local_services;
    use sidecar_plugin_sdk::log::{Level, log};
    use sidecar_plugin_sdk::proxy_emitter::{
        self, EmitRequest, Emitted, ProxyEmitter, XdsResource,
    };
    use sidecar_plugin_sdk::types::ServiceStatus;
    use std::cell::RefCell;

    thread_local! {
        static SETTINGS: RefCell<Settings> = RefCell::new(Settings::default());
    }

    struct Plugin;

    impl ProxyEmitter for Plugin {
        fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
            let parsed = Settings::parse(&settings)?;
            SETTINGS.with(|s| *s.borrow_mut() = parsed);
            Ok(())
        }

        fn emit(req: EmitRequest) -> Result<Emitted, String> {
            let instances: Vec<Instance> = req
                .services
                .into_iter()
                .map(|s| Instance {
                    alive: s.status == ServiceStatus::Alive,
                    id: s.id,
                    name: s.name,
                    hostname: s.hostname,
                    ports: s
                        .ports
                        .into_iter()
                        .map(|p| PortSpec {
                            port: p.port,
                            service_port: p.service_port,
                            ip: p.ip,
                        })
                        .collect(),
                    proxy_mode: s.proxy_mode,
                })
                .collect();
            let proxies: Vec<SidecarProxy> = local_services::sidecar_proxies()
                .into_iter()
                .map(proxy)
                .collect();
            let (resources, warnings) =
                SETTINGS.with(|s| build_with_proxies(&instances, &proxies, &s.borrow()));
            for w in warnings {
                log(Level::Warn, &w);
            }
            Ok(Emitted::Xds(
                resources
                    .into_iter()
                    .map(|r| XdsResource {
                        type_url: r.type_url,
                        name: r.name,
                        value: r.value,
                    })
                    .collect(),
            ))
        }
    }

    fn proxy(p: local_services::SidecarProxy) -> SidecarProxy {
        SidecarProxy {
            id: p.id,
            name: p.name,
            address: p.address,
            port: p.port,
            destination_service_name: p.destination_service_name,
            destination_service_id: p.destination_service_id,
            local_service_address: p.local_service_address,
            local_service_port: p.local_service_port,
            upstreams: p
                .upstreams
                .into_iter()
                .map(|u| Upstream {
                    destination_name: u.destination_name,
                    destination_port: u.destination_port,
                    local_bind_address: u.local_bind_address,
                    local_bind_port: u.local_bind_port,
                })
                .collect(),
        }
    }

    proxy_emitter::export!(Plugin);
}
