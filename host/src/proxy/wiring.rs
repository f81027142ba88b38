//! What the agent calls: the proxy settings, the plugin settings the host adds for the
//! emitters, and one call that starts the enabled drivers.

use super::feed::Readiness;
use super::haproxy::{self, HaproxyConfig};
use super::status::ProxyStatus;
use super::xds::{self, EnvoyConfig};
use crate::shared_catalog::SharedCatalog;
use sidecar_plugin_host::ProxyEmitter;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::task::JoinSet;

/// A plugin name and the settings the host adds for it.
pub type EmitterSettings = (String, Vec<(String, String)>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    pub haproxy: HaproxyConfig,
    pub envoy: EnvoyConfig,
    /// `HAPROXY_EMITTER` (ours, default `proxy-haproxy`): the emitter plugin for HAProxy.
    pub haproxy_emitter: String,
    /// `ENVOY_EMITTER` (ours, default `proxy-envoy`): the emitter plugin for Envoy.
    pub envoy_emitter: String,
}

impl ProxyConfig {
    /// The emitter plugins the enabled drivers need, with the settings the host adds
    /// to each (they override same-named keys from plugins.toml). Reading
    /// `HAPROXY_TEMPLATE_FILE` happens here, so a missing template fails startup.
    pub fn emitters(&self) -> anyhow::Result<Vec<EmitterSettings>> {
        let mut out = Vec::new();
        if !self.haproxy.disabled {
            out.push((
                self.haproxy_emitter.clone(),
                self.haproxy.plugin_settings()?,
            ));
        }
        if self.envoy.enabled {
            out.push((self.envoy_emitter.clone(), self.envoy.plugin_settings()));
        }
        Ok(out)
    }
}

/// Starts the enabled drivers on `tasks` and registers their status for the API. The
/// tasks run for the daemon's lifetime; an enabled driver whose emitter is missing is
/// a startup error.
pub async fn start(
    cfg: &ProxyConfig,
    catalog: Arc<SharedCatalog>,
    ready: Readiness,
    emitters: &BTreeMap<String, Arc<dyn ProxyEmitter>>,
    tasks: &mut JoinSet<()>,
) -> anyhow::Result<Arc<ProxyStatus>> {
    let registry = Arc::new(ProxyStatus::default());
    let find = |name: &str| {
        emitters.get(name).cloned().ok_or_else(|| {
            anyhow::anyhow!("proxy emitter plugin `{name}` is not loaded (plugins.toml `emitters`)")
        })
    };
    if !cfg.haproxy.disabled {
        let emitter = find(&cfg.haproxy_emitter)?;
        let (status, handle) =
            haproxy::spawn(cfg.haproxy.clone(), emitter, catalog.clone(), ready.clone());
        registry.set_haproxy(status);
        tasks.spawn(forever("HAProxy driver", handle));
    }
    if cfg.envoy.enabled {
        let emitter = find(&cfg.envoy_emitter)?;
        let (status, handle) = xds::spawn(&cfg.envoy, emitter, catalog, ready).await?;
        registry.set_xds(status);
        tasks.spawn(forever("xDS server", handle));
    }
    Ok(registry)
}

/// A driver that stops is logged; the task then waits forever, so the agent does not
/// treat it as a reason to shut down.
async fn forever(what: &'static str, handle: tokio::task::JoinHandle<()>) {
    match handle.await {
        Ok(()) => tracing::info!("{what} stopped"),
        Err(e) => tracing::error!("{what} failed: {e}"),
    }
    std::future::pending::<()>().await
}
