//! Listeners: HTTP endpoints that get every change event POSTed to them.
//!
//! Sources: `LISTENERS_URLS` (never removed) and discovery (`SidecarListener` label,
//! static `ListenPort`; added and removed with their service). The announcer reconciles
//! the discovered ones *before* it announces, so a new service's listener already gets
//! the service's own first events. One dispatcher fans the catalog's change events out
//! to a bounded queue per listener (20 events, overflow dropped), so a slow listener
//! never blocks the catalog or the other listeners.

pub mod url_listener;

use crate::catalog::ChangeEvent;
use crate::config::Env;
use crate::discovery::LocalView;
use crate::metrics::DaemonMetrics;
use crate::shared_catalog::SharedCatalog;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;

/// Sidecar's `LISTENER_EVENT_BUFFER_SIZE`.
pub const QUEUE: usize = 20;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenersConfig {
    /// `LISTENERS_URLS`, comma-separated.
    pub urls: Vec<String>,
}

impl ListenersConfig {
    pub fn load(env: &Env) -> Self {
        ListenersConfig {
            urls: env.list("LISTENERS_URLS", None).unwrap_or_default(),
        }
    }
}

struct Running {
    url: String,
    managed: bool,
    tx: mpsc::Sender<Arc<ChangeEvent>>,
    task: tokio::task::JoinHandle<()>,
}

/// The running listeners.
pub struct Registry {
    running: Mutex<HashMap<String, Running>>,
    catalog: Arc<SharedCatalog>,
    client: reqwest::Client,
    hostname: String,
    metrics: Arc<DaemonMetrics>,
}

impl Registry {
    fn start_one(&self, name: &str, url: &str, managed: bool) -> Running {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(url_listener::run(
            url_listener::Target {
                name: name.to_string(),
                url: url.to_string(),
            },
            rx,
            self.catalog.clone(),
            self.client.clone(),
            self.hostname.clone(),
            self.metrics.clone(),
        ));
        tracing::info!(listener = %name, %url, "listener added");
        Running {
            url: url.to_string(),
            managed,
            tx,
            task,
        }
    }

    /// Makes the discovered listeners exactly those of `view`.
    pub fn reconcile(&self, view: &LocalView) {
        let wanted: HashMap<String, &String> = view
            .services
            .iter()
            .filter_map(|l| l.listener.as_ref().map(|u| (l.service.listener_name(), u)))
            .collect();
        let mut running = self.running.lock();
        running.retain(|name, r| {
            if !r.managed || wanted.get(name).is_some_and(|u| **u == r.url) {
                return true;
            }
            r.task.abort();
            tracing::info!(listener = %name, url = %r.url, "listener removed");
            false
        });
        for (name, url) in wanted {
            if let std::collections::hash_map::Entry::Vacant(slot) = running.entry(name) {
                let r = self.start_one(slot.key(), url, true);
                slot.insert(r);
            }
        }
    }

    fn fan_out(&self, ev: &Arc<ChangeEvent>) {
        for (name, r) in self.running.lock().iter() {
            if r.tx.try_send(ev.clone()).is_err() {
                self.metrics
                    .listener_events_dropped
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(listener = %name, "listener queue full: event dropped");
            }
        }
    }
}

/// Starts the `LISTENERS_URLS` listeners and the dispatcher; returns the registry the
/// announcer reconciles discovered listeners with.
pub fn start(
    cfg: &ListenersConfig,
    catalog: Arc<SharedCatalog>,
    hostname: String,
    metrics: Arc<DaemonMetrics>,
    tasks: &mut JoinSet<()>,
) -> Arc<Registry> {
    let events = catalog.subscribe();
    let registry = Arc::new(Registry {
        running: Mutex::new(HashMap::new()),
        catalog,
        client: url_listener::client(),
        hostname,
        metrics,
    });
    for url in &cfg.urls {
        let name = format!("UrlListener({url})");
        let r = registry.start_one(&name, url, false);
        registry.running.lock().insert(name, r);
    }
    tasks.spawn(dispatch(registry.clone(), events));
    registry
}

async fn dispatch(registry: Arc<Registry>, mut events: broadcast::Receiver<Arc<ChangeEvent>>) {
    loop {
        match events.recv().await {
            Ok(ev) => registry.fan_out(&ev),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                if !registry.running.lock().is_empty() {
                    registry
                        .metrics
                        .listener_events_dropped
                        .fetch_add(n, Ordering::Relaxed);
                    tracing::warn!("listeners fell {n} events behind; they were dropped");
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
