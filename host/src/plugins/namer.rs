//! World `namer`: the [`Namer`] trait for a namer component. One instance, calls in
//! sequence (discovery names containers one at a time).

use super::api::{ContainerInfo, Namer, PluginError};
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
        world: "namer",
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

use bindings::{Namer as Bindings, NamerPre as BindingsPre};

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

pub(crate) type NamerPool = Pool<Bindings>;

pub(crate) struct WasmNamer(pub Arc<NamerPool>);

#[async_trait]
impl Namer for WasmNamer {
    async fn name(&self, container: &ContainerInfo) -> Result<String, PluginError> {
        let c = convert::container(container);
        let budget = self.0.limits().timeout;
        self.0
            .call(budget, move |w, store| {
                Box::pin(async move { w.sidecar_plugin_naming().call_name(store, &c).await })
            })
            .await
    }
}
