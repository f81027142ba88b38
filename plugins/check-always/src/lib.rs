//! Health-check type `AlwaysSuccessful`: always healthy (Sidecar's check for services
//! without a TCP port, and for Kubernetes-discovered ones). Ignores its arguments.
//!
//! No settings.

use sidecar_plugin_sdk::Settings;
use sidecar_plugin_sdk::health_check::{self, CheckRequest, CheckResult, HealthCheck};

struct Always;

impl HealthCheck for Always {
    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        Settings::none(&settings, "AlwaysSuccessful")
    }

    fn check(_req: CheckRequest) -> Result<CheckResult, String> {
        Ok(CheckResult::healthy("always successful"))
    }
}

health_check::export!(Always);
