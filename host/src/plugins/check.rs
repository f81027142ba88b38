//! World `health-check`: the [`HealthChecker`] trait for a health-check component.
//! Checks run concurrently, each on its own instance from the plugin's pool.

use super::api::{CheckOutcome, CheckRequest, CheckStatus, HealthChecker, PluginError};
use super::convert;
use super::pool::{Pool, World};
use super::state::HostState;
use async_trait::async_trait;
use futures::future::BoxFuture;
use std::sync::Arc;
use wasmtime::Store;
use wasmtime::component::InstancePre;

mod bindings {
    wasmtime::component::bindgen!({
        world: "health-check",
        path: "../wit",
        exports: { default: async },
        with: {
            "sidecar:plugin/types": crate::plugins::host_imports::bindings::sidecar::plugin::types,
            "sidecar:plugin/log": crate::plugins::host_imports::bindings::sidecar::plugin::log,
            "sidecar:plugin/clock": crate::plugins::host_imports::bindings::sidecar::plugin::clock,
            "sidecar:plugin/http": crate::plugins::host_imports::bindings::sidecar::plugin::http,
            "sidecar:plugin/process": crate::plugins::host_imports::bindings::sidecar::plugin::process,
        },
    });
}

use bindings::{HealthCheck as Bindings, HealthCheckPre as BindingsPre};

impl World for Bindings {
    type Pre = BindingsPre<HostState>;

    fn new_pre(pre: InstancePre<HostState>) -> wasmtime::Result<Self::Pre> {
        BindingsPre::new(pre)
    }

    fn instantiate<'a>(
        pre: &'a Self::Pre,
        store: &'a mut Store<HostState>,
    ) -> BoxFuture<'a, wasmtime::Result<Self>> {
        Box::pin(pre.instantiate_async(store))
    }

    fn configure<'a>(
        &'a self,
        store: &'a mut Store<HostState>,
        settings: &'a Vec<(String, String)>,
    ) -> BoxFuture<'a, wasmtime::Result<Result<(), String>>> {
        Box::pin(
            self.sidecar_plugin_lifecycle()
                .call_configure(store, settings),
        )
    }
}

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
