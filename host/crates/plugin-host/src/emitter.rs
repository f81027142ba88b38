//! World `proxy-emitter`: the [`ProxyEmitter`] trait for an emitter component. One
//! long-lived instance, called on each (debounced) catalog change.

use super::api::{EmitRequest, Emitted, PluginError, ProxyEmitter, XdsResource};
use super::convert;
use super::pool::Pool;
use async_trait::async_trait;
use std::sync::Arc;

super::world::plugin_world!("proxy-emitter", ProxyEmitter, ProxyEmitterPre);

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
        let proxies = req.sidecar_proxies;
        let emitted = self
            .0
            .call(budget, move |w, store| {
                Box::pin(async move {
                    // The import answers from the store, so the emitter sees the proxies
                    // of this request; a long-lived instance must not keep them after.
                    store.data_mut().sidecar_proxies = proxies;
                    let out = w
                        .sidecar_plugin_emitter()
                        .call_emit(&mut *store, &wit_req)
                        .await;
                    store.data_mut().sidecar_proxies = std::sync::Arc::new([]);
                    out
                })
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
