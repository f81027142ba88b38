//! Health-check type `Alias`: the status follows another local service's, read through
//! the host's `local-services.status` import (Consul's alias check).
//!
//! Arguments: the other service's ID (on this host).
//!
//! * The other service is ALIVE: healthy.
//! * It is UNHEALTHY, UNKNOWN, DRAINING or TOMBSTONE, or no local service has that ID:
//!   unhealthy, saying which.
//!
//! No settings.

use sidecar_plugin_sdk::health_check::{self, CheckRequest, CheckResult, HealthCheck};
use sidecar_plugin_sdk::types::ServiceStatus;
use sidecar_plugin_sdk::{Settings, local_services};

struct Alias;

impl HealthCheck for Alias {
    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        Settings::none(&settings, "Alias")
    }

    fn check(req: CheckRequest) -> Result<CheckResult, String> {
        let target = req.args.trim();
        if target.is_empty() {
            return Err("Alias needs the ID of another local service as its argument".into());
        }
        if target == req.service.id {
            return Err("an Alias check cannot follow its own service".into());
        }
        Ok(judge(target, local_services::status(target)))
    }
}

fn judge(target: &str, status: Option<ServiceStatus>) -> CheckResult {
    let name = match status {
        None => {
            return CheckResult::unhealthy(format!("no local service has the ID {target:?}"));
        }
        Some(ServiceStatus::Alive) => return CheckResult::healthy(format!("{target} is ALIVE")),
        Some(ServiceStatus::Unhealthy) => "UNHEALTHY",
        Some(ServiceStatus::Unknown) => "UNKNOWN",
        Some(ServiceStatus::Draining) => "DRAINING",
        Some(ServiceStatus::Tombstone) => "TOMBSTONE",
    };
    CheckResult::unhealthy(format!("{target} is {name}"))
}

health_check::export!(Alias);

#[cfg(test)]
mod tests {
    use super::*;
    use sidecar_plugin_sdk::health_check::CheckStatus;

    #[test]
    fn follows_the_target() {
        assert_eq!(
            judge("a", Some(ServiceStatus::Alive)).status,
            CheckStatus::Healthy
        );
        for s in [
            ServiceStatus::Unhealthy,
            ServiceStatus::Unknown,
            ServiceStatus::Draining,
            ServiceStatus::Tombstone,
        ] {
            assert_eq!(judge("a", Some(s)).status, CheckStatus::Unhealthy);
        }
        assert_eq!(
            judge("a", Some(ServiceStatus::Draining)).message,
            "a is DRAINING"
        );
        assert!(judge("a", None).message.contains("\"a\""));
    }
}
