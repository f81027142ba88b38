//! `local-services`: the daemon's own local services for `Ttl` and `Alias` checks, and
//! the sidecar proxies for emitters. Read-only and answered from memory; without the
//! daemon (CLI tools) there is nothing.

use super::bindings::sidecar::plugin::local_services::{
    self, SidecarProxy, TtlReport, TtlState, Upstream,
};
use super::types::ServiceStatus;
use crate::api;
use crate::state::HostState;

impl local_services::Host for HostState {
    fn last_ttl_report(&mut self, service_id: String) -> Option<TtlReport> {
        let r = self.plugin.local.as_ref()?.ttl_report(&service_id)?;
        Some(TtlReport {
            state: match r.state {
                api::TtlState::Pass => TtlState::Pass,
                api::TtlState::Warn => TtlState::Warn,
                api::TtlState::Fail => TtlState::Fail,
            },
            note: r.note,
            age_ms: u64::try_from(r.age.as_millis()).unwrap_or(u64::MAX),
        })
    }

    fn status(&mut self, service_id: String) -> Option<ServiceStatus> {
        let s = self.plugin.local.as_ref()?.status(&service_id)?;
        Some(crate::convert::status(s))
    }

    fn sidecar_proxies(&mut self) -> Vec<SidecarProxy> {
        self.sidecar_proxies
            .iter()
            .map(|p| SidecarProxy {
                id: p.id.clone(),
                name: p.name.clone(),
                address: p.address.clone(),
                port: p.port,
                destination_service_name: p.destination_service_name.clone(),
                destination_service_id: p.destination_service_id.clone(),
                local_service_address: p.local_service_address.clone(),
                local_service_port: p.local_service_port,
                upstreams: p
                    .upstreams
                    .iter()
                    .map(|u| Upstream {
                        destination_name: u.destination_name.clone(),
                        destination_port: u.destination_port,
                        local_bind_address: u.local_bind_address.clone(),
                        local_bind_port: u.local_bind_port,
                    })
                    .collect(),
            })
            .collect()
    }
}
