//! Health-check type `AlwaysSuccessful`: always healthy (Sidecar's check for services
//! without a TCP port, and for Kubernetes-discovered ones). Ignores its arguments.
//!
//! No settings.

wit_bindgen::generate!({ world: "health-check", path: "../../wit" });

use exports::sidecar::plugin::health::{CheckRequest, CheckResult, CheckStatus};
use exports::sidecar::plugin::{health, lifecycle};

struct Always;

impl lifecycle::Guest for Always {
    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        match settings.first() {
            None => Ok(()),
            Some((key, _)) => Err(format!(
                "unknown setting `{key}` (AlwaysSuccessful has no settings)"
            )),
        }
    }
}

impl health::Guest for Always {
    fn check(_req: CheckRequest) -> Result<CheckResult, String> {
        Ok(CheckResult {
            status: CheckStatus::Healthy,
            message: "always successful".to_string(),
        })
    }
}

export!(Always);
