//! Proxy emitter for Envoy: the catalog as xDS v3 resources (state of the world).
//!
//! Per ServicePort of an ALIVE service: a Listener (HTTP connection manager with an
//! inline route, TcpProxy for `tcp`, websocket upgrades for `ws`), a Cluster (EDS over
//! ADS) and a ClusterLoadAssignment, named `<name>:<ServicePort>`. The host serves them
//! over ADS in a safe order; a user's emitter can return different resources (retries,
//! timeouts, TLS) without any change to the host.

pub mod resources;

#[cfg(target_arch = "wasm32")]
mod guest {
    use super::resources::{Instance, PortSpec, Settings, build};
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
            let (resources, warnings) = SETTINGS.with(|s| build(&instances, &s.borrow()));
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

    proxy_emitter::export!(Plugin);
}
