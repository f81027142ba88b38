//! World `discovery-source`: the [`DiscoverySource`] trait for a discovery component.
//! One long-lived instance (it may keep cursors or ETags between calls).

use super::api::{CheckSpec, Discovered, DiscoverySource, PluginError};
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
        world: "discovery-source",
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

use bindings::{DiscoverySource as Bindings, DiscoverySourcePre as BindingsPre};

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

pub(crate) type DiscoveryPool = Pool<Bindings>;

pub(crate) struct WasmDiscovery(pub Arc<DiscoveryPool>);

#[async_trait]
impl DiscoverySource for WasmDiscovery {
    async fn discover(&self) -> Result<Vec<Discovered>, PluginError> {
        let budget = self.0.limits().timeout;
        let found = self
            .0
            .call(budget, |w, store| {
                Box::pin(async move { w.sidecar_plugin_discovery().call_discover(store).await })
            })
            .await?;
        Ok(found
            .into_iter()
            .map(|d| Discovered {
                service: convert::service_from(d.service),
                check: d.check.map(|c| CheckSpec {
                    check_type: c.check_type,
                    args: c.args,
                }),
                listen_port: d.listen_port,
            })
            .collect())
    }
}
