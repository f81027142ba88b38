//! `local-services`: the daemon's own local services for `Ttl` and `Alias` checks.
//! Read-only and answered from memory; without the daemon (CLI tools) there is nothing.

use super::bindings::sidecar::plugin::local_services::{self, TtlReport, TtlState};
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
}
