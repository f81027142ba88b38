//! World `proxy-emitter`: the [`ProxyEmitter`] trait for an emitter component. One
//! long-lived instance, called on each (debounced) catalog change.

use super::api::{EmitRequest, Emitted, PluginError, ProxyEmitter, XdsResource};
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
        world: "proxy-emitter",
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

use bindings::{ProxyEmitter as Bindings, ProxyEmitterPre as BindingsPre};

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

use bindings::exports::sidecar::plugin::emitter;

pub(crate) type EmitterPool = Pool<Bindings>;

pub(crate) struct WasmEmitter(pub Arc<EmitterPool>);

#[async_trait]
impl ProxyEmitter for WasmEmitter {
    async fn emit(&self, req: EmitRequest) -> Result<Emitted, PluginError> {
        let budget = self.0.limits().timeout;
        let wit_req = emitter::EmitRequest {
            services: req.services.iter().map(convert::service).collect(),
            hostname: req.hostname,
            cluster_name: req.cluster_name,
        };
        let emitted = self
            .0
            .call(budget, move |w, store| {
                Box::pin(async move { w.sidecar_plugin_emitter().call_emit(store, &wit_req).await })
            })
            .await?;
        Ok(match emitted {
            emitter::Emitted::ConfigFile(text) => Emitted::ConfigFile(text),
            emitter::Emitted::Xds(resources) => Emitted::Xds(
                resources
                    .into_iter()
                    .map(|r| XdsResource {
                        type_url: r.type_url,
                        name: r.name,
                        value: r.value,
                    })
                    .collect(),
            ),
        })
    }
}
