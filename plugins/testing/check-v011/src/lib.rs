//! Test-only health check built against the archived contract `sidecar:plugin@0.1.1`
//! (`wit/archive/0.1.1`, whose `http` has only `get`). A test proves that a host built
//! for 0.1.2 still loads and runs it, `http@0.1.1` import included. It logs through
//! `log.log-fields` (new in 0.1.1); with arguments it GETs them as a URL and reports the
//! status, else it reports healthy with a message naming its version.
//!
//! Like `check-v010` it does not use `sidecar-plugin-sdk`, whose 0.1.2 world metadata
//! would make it import `@0.1.2` interfaces.

wit_bindgen::generate!({ world: "health-check", path: "../../../wit/archive/0.1.1" });

use exports::sidecar::plugin::health::{CheckRequest, CheckResult, CheckStatus};
use exports::sidecar::plugin::{health, lifecycle};
use sidecar::plugin::{http, log};

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
        if req.args.is_empty() {
            return Ok(CheckResult {
                status: CheckStatus::Healthy,
                message: "built against sidecar:plugin@0.1.1".to_string(),
            });
        }
        let resp = http::get(&http::Request {
            url: req.args.clone(),
            headers: Vec::new(),
            timeout_ms: 0,
            max_redirects: 0,
        })
        .map_err(|e| format!("{e:?}"))?;
        Ok(CheckResult {
            status: if resp.status == 200 {
                CheckStatus::Healthy
            } else {
                CheckStatus::Unhealthy
            },
            message: format!("HTTP {}", resp.status),
        })
    }
}

export!(V011);
