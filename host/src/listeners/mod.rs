//! Listeners: HTTP endpoints that get every change event POSTed to them.
//!
//! Sources: `LISTENERS_URLS` (never removed) and discovery (`SidecarListener` label,
//! static `ListenPort`; added and removed with their service). One dispatcher fans the
//! catalog's change events out to a bounded queue per listener (20 events, overflow
//! dropped), so a slow listener never blocks the catalog or the other listeners.

pub mod url_listener;

use crate::catalog::ChangeEvent;
use crate::config::Env;
use crate::discovery::LocalView;
use crate::metrics::DaemonMetrics;
use crate::shared_catalog::SharedCatalog;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::{broadcast, mpsc, watch};
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
    tx: mpsc::Sender<Arc<ChangeEvent>>,
    task: tokio::task::AbortHandle,
}

/// Starts the dispatcher (and with it every listener worker) on `tasks`.
pub fn start(
    cfg: &ListenersConfig,
    catalog: Arc<SharedCatalog>,
    view: watch::Receiver<Option<Arc<LocalView>>>,
    hostname: String,
    metrics: Arc<DaemonMetrics>,
    tasks: &mut JoinSet<()>,
) {
    let statics: Vec<(String, String)> = cfg
        .urls
        .iter()
        .map(|u| (format!("UrlListener({u})"), u.clone()))
        .collect();
    let events = catalog.subscribe();
    tasks.spawn(dispatch(statics, catalog, view, events, hostname, metrics));
}

async fn dispatch(
    statics: Vec<(String, String)>,
    catalog: Arc<SharedCatalog>,
    mut view: watch::Receiver<Option<Arc<LocalView>>>,
    mut events: broadcast::Receiver<Arc<ChangeEvent>>,
    hostname: String,
    metrics: Arc<DaemonMetrics>,
) {
    let client = url_listener::client();
    let mut workers: JoinSet<()> = JoinSet::new();
    let mut running: HashMap<String, Running> = HashMap::new();
    let start = |name: &str, url: &str, workers: &mut JoinSet<()>| {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = workers.spawn(url_listener::run(
            url_listener::Target {
                name: name.to_string(),
                url: url.to_string(),
            },
            rx,
            catalog.clone(),
            client.clone(),
            hostname.clone(),
            metrics.clone(),
        ));
        tracing::info!(listener = %name, %url, "listener added");
        Running {
            url: url.to_string(),
            tx,
            task,
        }
    };
    for (name, url) in &statics {
        let r = start(name, url, &mut workers);
        running.insert(name.clone(), r);
    }
    let mut managed: HashMap<String, String> = HashMap::new();
    let mut view_open = true;
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(ev) => {
                    for (name, r) in &running {
                        if r.tx.try_send(ev.clone()).is_err() {
                            metrics.listener_events_dropped.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(listener = %name, "listener queue full: event dropped");
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    metrics.listener_events_dropped.fetch_add(n, Ordering::Relaxed);
                    tracing::warn!("listeners fell {n} events behind; they were dropped");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            r = view.changed(), if view_open => {
                if r.is_err() {
                    view_open = false;
                    continue;
                }
                let Some(v) = view.borrow_and_update().clone() else { continue };
                let wanted: HashMap<String, String> = v
                    .services
                    .iter()
                    .filter_map(|l| l.listener.as_ref().map(|u| (l.service.listener_name(), u.clone())))
                    .collect();
                managed.retain(|name, url| {
                    if wanted.get(name) == Some(url) {
                        return true;
                    }
                    if let Some(r) = running.remove(name) {
                        r.task.abort();
                        tracing::info!(listener = %name, url = %r.url, "listener removed");
                    }
                    false
                });
                for (name, url) in wanted {
                    if !managed.contains_key(&name) && !running.contains_key(&name) {
                        let r = start(&name, &url, &mut workers);
                        running.insert(name.clone(), r);
                        managed.insert(name, url);
                    }
                }
            }
            Some(_) = workers.join_next() => {}
        }
    }
}
