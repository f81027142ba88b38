//! Test-only health check built against the archived contract `sidecar:plugin@0.1.0`
//! (`wit/archive/0.1.0`, which has no `log.log-fields`). A test proves that the current host
//! (0.1.2) still loads and runs it. It logs through `log.log` and reports healthy with
//! a message naming its version.
//!
//! It does not use `sidecar-plugin-sdk`: linking the SDK would merge the SDK's 0.1.1
//! world metadata into this component and make it import `@0.1.1` interfaces, which is
//! exactly what this plugin must not do. (It has no settings logic to share anyway.)

wit_bindgen::generate!({ world: "health-check", path: "../../../wit/archive/0.1.0" });

use exports::sidecar::plugin::health::{CheckRequest, CheckResult, CheckStatus};
use exports::sidecar::plugin::{health, lifecycle};
use sidecar::plugin::log;

struct V010;

impl lifecycle::Guest for V010 {
    fn configure(_settings: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }
}

impl health::Guest for V010 {
    fn check(req: CheckRequest) -> Result<CheckResult, String> {
        log::log(
            log::Level::Info,
            &format!("v0.1.0 plugin checking {}", req.service.name),
        );
        Ok(CheckResult {
            status: CheckStatus::Healthy,
            message: "built against sidecar:plugin@0.1.0".to_string(),
        })
    }
}

export!(V010);
