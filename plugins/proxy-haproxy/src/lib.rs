//! Proxy emitter for HAProxy: renders a complete haproxy.cfg from the catalog.
//!
//! The default template reproduces Sidecar's `views/haproxy.cfg` (one frontend and
//! backend per ServicePort, `<name>-<port>`, ALIVE instances only) for HAProxy 2.6 in
//! master-worker mode; `template` (the host passes `HAPROXY_TEMPLATE_FILE`'s contents)
//! replaces it. The template language is Jinja (minijinja), documented in
//! `docs/proxies.md`. This host's sidecar proxies (Consul-style `Connect.SidecarService`)
//! become `mode tcp` listeners after them. The host writes, verifies and reloads; this
//! plugin only renders.

pub mod model;
pub mod render;
pub mod sidecar;

#[cfg(target_arch = "wasm32")]
mod guest {
    use super::model::{Instance, PortSpec};
    use super::render::{Settings, render_with_proxies};
    use super::sidecar::{SidecarProxy, Upstream};
    use sidecar_plugin_sdk::local_services;
    use sidecar_plugin_sdk::log::{Level, log};
    use sidecar_plugin_sdk::proxy_emitter::{self, EmitRequest, Emitted, ProxyEmitter};
    use sidecar_plugin_sdk::types::{PortKind, Service, ServiceStatus, Timestamp};
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
            let instances: Vec<Instance> = req.services.iter().map(instance).collect();
            let proxies: Vec<SidecarProxy> = local_services::sidecar_proxies()
                .into_iter()
                .map(proxy)
                .collect();
            let (text, warnings) = SETTINGS.with(|s| {
                render_with_proxies(
                    &s.borrow(),
                    &instances,
                    &proxies,
                    &req.hostname,
                    &req.cluster_name,
                )
            })?;
            for w in warnings {
                log(Level::Warn, &w);
            }
            Ok(Emitted::ConfigFile(text))
        }
    }

    fn instance(s: &Service) -> Instance {
        Instance {
            id: s.id.clone(),
            name: s.name.clone(),
            image: s.image.clone(),
            hostname: s.hostname.clone(),
            ports: s
                .ports
                .iter()
                .map(|p| PortSpec {
                    kind: match p.kind {
                        PortKind::Tcp => "tcp",
                        PortKind::Udp => "udp",
                    }
                    .to_string(),
                    port: p.port,
                    service_port: p.service_port,
                    ip: p.ip.clone(),
                })
                .collect(),
            proxy_mode: s.proxy_mode.clone(),
            status: match s.status {
                ServiceStatus::Alive => "alive",
                ServiceStatus::Tombstone => "tombstone",
                ServiceStatus::Unhealthy => "unhealthy",
                ServiceStatus::Unknown => "unknown",
                ServiceStatus::Draining => "draining",
            }
            .to_string(),
            updated: rfc3339(&s.updated),
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

    /// `seconds.nanos` since the epoch as `YYYY-MM-DDTHH:MM:SS.fffffffffZ` (UTC).
    fn rfc3339(t: &Timestamp) -> String {
        let days = t.seconds.div_euclid(86_400);
        let secs = t.seconds.rem_euclid(86_400);
        // Civil-from-days (Howard Hinnant's algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60,
            t.nanoseconds
        )
    }

    proxy_emitter::export!(Plugin);
}
