//! World `health-check`: the [`HealthChecker`] trait for a health-check component.
//! Checks run concurrently, each on its own instance from the plugin's pool.

use super::api::{CheckOutcome, CheckRequest, CheckStatus, HealthChecker, PluginError};
use super::convert;
use super::pool::Pool;
use async_trait::async_trait;
use std::sync::Arc;

super::world::plugin_world!("health-check", HealthCheck, HealthCheckPre);

use bindings::exports::sidecar::plugin::health;

pub(crate) type CheckPool = Pool<Bindings>;

pub(crate) struct WasmChecker(pub Arc<CheckPool>);

#[async_trait]
impl HealthChecker for WasmChecker {
    async fn check(&self, req: CheckRequest) -> Result<CheckOutcome, PluginError> {
        // The check's own timeout, unless the plugin's limit is shorter.
        let budget = req.timeout.min(self.0.limits().timeout);
        let wit_req = health::CheckRequest {
            service: convert::service(&req.service),
            args: req.args,
            timeout_ms: u32::try_from(budget.as_millis()).unwrap_or(u32::MAX),
            host_ip: req.host_ip,
        };
        let result = self
            .0
            .call(budget, move |w, store| {
                Box::pin(async move { w.sidecar_plugin_health().call_check(store, &wit_req).await })
            })
            .await?;
        let status = match result.status {
            health::CheckStatus::Healthy => CheckStatus::Healthy,
            health::CheckStatus::Unhealthy => CheckStatus::Unhealthy,
        };
        Ok(CheckOutcome {
            status,
            message: result.message,
        })
    }
}
