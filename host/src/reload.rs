//! Reload on SIGHUP: the log level, static.json and plugins.toml change without a
//! restart (no gossip rejoin, no proxy reload storm).
//!
//! Plugins are replaced only whole and only when the new set is good: the new
//! plugins.toml is loaded, compiled and instantiated beside the running set, and if any
//! plugin in it fails, the running set stays and the log says why. Running consumers
//! hold [`Swap`] handles, so a replacement takes effect at their next call; calls in
//! flight finish on the old instance. Adding or removing a discovery plugin or a proxy
//! emitter changes which tasks run, which takes a restart (the log says so).

use crate::agent::{Policy, Reloader};
use crate::config::AgentConfig;
use crate::health::CheckRegistry;
use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};
use sidecar_plugin_host::{
    ContainerInfo, Discovered, DiscoverySource, EmitRequest, Emitted, LoadedDiscovery,
    LoadedPlugins, Namer, PluginError, ProxyEmitter, Runtime,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::watch;

/// A plugin handle whose target can be replaced while it is in use.
pub struct Swap<T: ?Sized>(RwLock<Arc<T>>);

impl<T: ?Sized> Swap<T> {
    pub fn new(v: Arc<T>) -> Arc<Self> {
        Arc::new(Swap(RwLock::new(v)))
    }

    pub fn current(&self) -> Arc<T> {
        self.0.read().clone()
    }

    pub fn set(&self, v: Arc<T>) {
        *self.0.write() = v;
    }
}

#[async_trait]
impl Namer for Swap<dyn Namer> {
    async fn name(&self, container: &ContainerInfo) -> Result<String, PluginError> {
        self.current().name(container).await
    }
}

#[async_trait]
impl DiscoverySource for Swap<dyn DiscoverySource> {
    async fn discover(&self) -> Result<Vec<Discovered>, PluginError> {
        self.current().discover().await
    }
}

#[async_trait]
impl ProxyEmitter for Swap<dyn ProxyEmitter> {
    async fn emit(&self, req: EmitRequest) -> Result<Emitted, PluginError> {
        self.current().emit(req).await
    }
}

/// The running plugin set, behind swap points.
pub struct LivePlugins {
    namer: Arc<Swap<dyn Namer>>,
    checks: watch::Sender<CheckRegistry>,
    discovery: Vec<(LoadedDiscovery, Arc<Swap<dyn DiscoverySource>>)>,
    emitters: BTreeMap<String, Arc<Swap<dyn ProxyEmitter>>>,
    /// Keeps the running set's instances and pools alive.
    current: Mutex<LoadedPlugins>,
    /// What `Ttl` and `Alias` checks read; every reloaded set gets the same one.
    local: Option<Arc<dyn sidecar_plugin_host::LocalServices>>,
}

impl LivePlugins {
    pub fn new(loaded: LoadedPlugins) -> Self {
        let discovery = loaded
            .discovery
            .iter()
            .map(|d| {
                let swap = Swap::new(d.source.clone());
                let handle = LoadedDiscovery {
                    name: d.name.clone(),
                    interval: d.interval,
                    source: swap.clone(),
                };
                (handle, swap)
            })
            .collect();
        let emitters = loaded
            .emitters
            .iter()
            .map(|(name, e)| (name.clone(), Swap::new(e.clone())))
            .collect();
        LivePlugins {
            namer: Swap::new(loaded.namer.clone()),
            checks: watch::Sender::new(registry(&loaded)),
            discovery,
            emitters,
            current: Mutex::new(loaded),
            local: None,
        }
    }

    /// The daemon's local services, handed to every plugin set loaded on reload.
    pub fn with_local(mut self, local: Arc<dyn sidecar_plugin_host::LocalServices>) -> Self {
        self.local = Some(local);
        self
    }

    /// What the local side runs with; the check registry follows replacements through
    /// [`LivePlugins::check_updates`].
    pub fn policy(&self) -> Policy {
        Policy {
            namer: self.namer.clone(),
            checks: self.checks.borrow().clone(),
            discovery: self.discovery.iter().map(|(h, _)| h.clone()).collect(),
            check_updates: Some(self.checks.subscribe()),
        }
    }

    /// Every replacement's check registry.
    pub fn check_updates(&self) -> watch::Receiver<CheckRegistry> {
        self.checks.subscribe()
    }

    /// The proxy drivers' emitters, by plugin name.
    pub fn emitters(&self) -> BTreeMap<String, Arc<dyn ProxyEmitter>> {
        self.emitters
            .iter()
            .map(|(n, s)| (n.clone(), s.clone() as Arc<dyn ProxyEmitter>))
            .collect()
    }

    /// Puts `new` in place of the running set. It must have loaded without problems
    /// (the caller checks). Returns what could not change without a restart.
    pub fn replace(&self, new: LoadedPlugins) -> Vec<String> {
        let mut notes = Vec::new();
        self.namer.set(new.namer.clone());
        self.checks.send_replace(registry(&new));
        for (handle, swap) in &self.discovery {
            match new.discovery.iter().find(|d| d.name == handle.name) {
                Some(d) => swap.set(d.source.clone()),
                None => notes.push(format!(
                    "discovery plugin {} is no longer configured: it keeps running until a restart",
                    handle.name
                )),
            }
        }
        for d in &new.discovery {
            if !self.discovery.iter().any(|(h, _)| h.name == d.name) {
                notes.push(format!(
                    "discovery plugin {} is new: it starts at the next restart",
                    d.name
                ));
            }
        }
        for (name, swap) in &self.emitters {
            if let Some(e) = new.emitters.get(name) {
                swap.set(e.clone());
            }
        }
        for name in new.emitters.keys() {
            if !self.emitters.contains_key(name) {
                notes.push(format!(
                    "emitter {name} is new: the proxy drivers pick emitters at start"
                ));
            }
        }
        *self.current.lock() = new;
        notes
    }
}

/// Waits for SIGHUP and reloads, for as long as the daemon runs. `running` is the
/// configuration in effect; settings that only a restart applies are reported when
/// they differ from it.
pub async fn on_sighup(
    reloader: Reloader,
    mut running: AgentConfig,
    live: Arc<LivePlugins>,
    rescan: watch::Sender<u64>,
    notifier: Arc<crate::service_manager::Notifier>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot watch SIGHUP (no reload): {e}");
            return;
        }
    };
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading the log level, static.json and plugins.toml");
        // systemd shows the unit as reloading until READY=1 comes back.
        notifier.notify("RELOADING=1");
        let new = match (reloader.load)() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("reload refused, the running configuration stays: {e:#}");
                notifier
                    .notify("READY=1\nSTATUS=reload refused; running the previous configuration");
                continue;
            }
        };
        if new.log.filter != running.log.filter {
            match (reloader.set_log_filter)(&new.log.filter) {
                Ok(()) => {
                    tracing::info!(filter = %new.log.filter, "log level reloaded");
                    running.log = new.log.clone();
                }
                Err(e) => tracing::error!(filter = %new.log.filter, "log level not changed: {e}"),
            }
        }
        rescan.send_modify(|n| *n += 1);
        if reload_plugins(&live, &new).await {
            running.plugins = new.plugins.clone();
        }
        for what in restart_only_changes(&running, &new) {
            tracing::warn!("{what} settings changed; they apply at the next restart");
        }
        notifier.notify("READY=1");
    }
}

/// Loads the new plugin set beside the running one and puts it in place if none of
/// its plugins fails where the running set's did not. Returns whether it did.
async fn reload_plugins(live: &LivePlugins, new: &AgentConfig) -> bool {
    let mut options = new.plugins.options.clone();
    options.local = live.local.clone();
    let loaded = match Runtime::load(&new.plugins.config, &options).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("plugins.toml reload refused, the running plugins stay: {e:#}");
            return false;
        }
    };
    let before = live.current.lock().problems();
    let fresh: Vec<_> = loaded
        .problems()
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    if !fresh.is_empty() {
        for (plugin, reason) in &fresh {
            tracing::error!(%plugin, "plugins.toml reload refused: {reason}");
        }
        tracing::error!(
            failed = fresh.len(),
            "plugins.toml reload refused, the running plugins stay"
        );
        return false;
    }
    let plugins = loaded.describe().len();
    for note in live.replace(loaded) {
        tracing::warn!("{note}");
    }
    tracing::info!(plugins, "plugins reloaded");
    true
}

/// Groups of settings that differ between `running` and `new` and that only a restart
/// applies (everything but the log level, plugins and the static file's contents).
fn restart_only_changes(running: &AgentConfig, new: &AgentConfig) -> Vec<&'static str> {
    let d = |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") != format!("{b:?}");
    let mut out = Vec::new();
    let groups: [(&'static str, bool); 11] = [
        ("core (node, addresses, API)", d(&running.core, &new.core)),
        ("HTTP limits", d(&running.http, &new.http)),
        ("catalog", d(&running.catalog, &new.catalog)),
        ("discovery", d(&running.discovery, &new.discovery)),
        ("Docker", d(&running.docker, &new.docker)),
        ("health", d(&running.health, &new.health)),
        ("listeners", d(&running.listeners, &new.listeners)),
        ("proxy", d(&running.proxy, &new.proxy)),
        ("cluster", d(&running.cluster, &new.cluster)),
        (
            "service manager",
            d(&running.service_manager, &new.service_manager),
        ),
        ("DNS", d(&running.dns, &new.dns)),
    ];
    for (name, changed) in groups {
        if changed {
            out.push(name);
        }
    }
    out
}

fn registry(loaded: &LoadedPlugins) -> CheckRegistry {
    CheckRegistry::new(
        loaded
            .checks
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
    .with_exec_types(loaded.exec_check_types())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(&'static str);

    #[async_trait]
    impl Namer for Fixed {
        async fn name(&self, _c: &ContainerInfo) -> Result<String, PluginError> {
            Ok(self.0.to_string())
        }
    }

    #[tokio::test]
    async fn a_swap_handle_calls_whatever_it_holds_now() {
        let swap: Arc<Swap<dyn Namer>> = Swap::new(Arc::new(Fixed("old")));
        let handle: Arc<dyn Namer> = swap.clone();
        let c = ContainerInfo::default();
        assert_eq!(handle.name(&c).await.ok().as_deref(), Some("old"));
        swap.set(Arc::new(Fixed("new")));
        assert_eq!(handle.name(&c).await.ok().as_deref(), Some("new"));
    }
}
