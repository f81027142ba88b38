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
