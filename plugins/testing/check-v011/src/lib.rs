//! Test-only health check built against the archived contract `sidecar:plugin@0.1.1`
//! (`wit/archive/0.1.1`, which has `log.log-fields` but no `net` or `local-services`).
//! A test proves that a host built for 0.1.2 still loads and runs it. It logs through
//! `log.log-fields` (the 0.1.1 addition) and reports healthy with a message naming its
//! version.
//!
//! It does not use `sidecar-plugin-sdk`, for the reason `check-v010` gives.

wit_bindgen::generate!({ world: "health-check", path: "../../../wit/archive/0.1.1" });

use exports::sidecar::plugin::health::{CheckRequest, CheckResult, CheckStatus};
use exports::sidecar::plugin::{health, lifecycle};
use sidecar::plugin::log;

struct V011;

impl lifecycle::Guest for V011 {
    fn configure(_settings: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }
}

impl health::Guest for V011 {
    fn check(req: CheckRequest) -> Result<CheckResult, String> {
        log::log_fields(
            log::Level::Info,
            "v0.1.1 plugin checking",
            &[("service".to_string(), req.service.name.clone())],
        );
        Ok(CheckResult {
            status: CheckStatus::Healthy,
            message: "built against sidecar:plugin@0.1.1".to_string(),
        })
    }
}

export!(V011);
