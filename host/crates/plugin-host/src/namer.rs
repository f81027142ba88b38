//! World `namer`: the [`Namer`] trait for a namer component. One instance, calls in
//! sequence (discovery names containers one at a time).

use super::api::{ContainerInfo, Namer, PluginError};
use super::convert;
use super::pool::Pool;
use async_trait::async_trait;
use std::sync::Arc;

super::world::plugin_world!("namer", Namer, NamerPre);

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
