//! World `discovery-source`: the [`DiscoverySource`] trait for a discovery component.
//! One long-lived instance (it may keep cursors or ETags between calls).

use super::api::{CheckSpec, Discovered, DiscoverySource, PluginError};
use super::convert;
use super::pool::Pool;
use async_trait::async_trait;
use std::sync::Arc;

super::world::plugin_world!("discovery-source", DiscoverySource, DiscoverySourcePre);

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
