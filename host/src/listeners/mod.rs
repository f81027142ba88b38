//! Listeners: HTTP endpoints that get every change event POSTed to them.
//!
//! Sources: `LISTENERS_URLS` (never removed) and discovery (`SidecarListener` label,
//! static `ListenPort`; added and removed with their service). [`stage`] sits between
//! discovery and the announcer and reconciles the discovered ones *before* the view
//! reaches the announcer, so a new service's listener already gets the service's own
//! first events. One dispatcher fans the catalog's change events out
//! to a bounded queue per listener (20 events, overflow dropped), so a slow listener
//! never blocks the catalog or the other listeners.

pub mod url_listener;

use crate::discovery::LocalView;
use crate::shared_catalog::SharedCatalog;
use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use sidecar_catalog::ChangeEvent;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinSet;

/// Sidecar's `LISTENER_EVENT_BUFFER_SIZE`.
pub const QUEUE: usize = 20;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenersConfig {
    /// `LISTENERS_URLS`, comma-separated.
    pub urls: Vec<String>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

/// What the listeners record: POSTs by outcome, events dropped on full queues.
#[derive(Debug)]
pub struct ListenerMetrics {
    posts: Family<OutcomeLabel, Counter>,
    /// The `ok` and `failed` series of `posts`, present from the start.
    pub posts_ok: Counter,
    pub posts_failed: Counter,
    pub events_dropped: Counter,
}

impl Default for ListenerMetrics {
    fn default() -> Self {
        let posts = Family::<OutcomeLabel, Counter>::default();
        ListenerMetrics {
            posts_ok: posts.get_or_create_owned(&OutcomeLabel { outcome: "ok" }),
            posts_failed: posts.get_or_create_owned(&OutcomeLabel { outcome: "failed" }),
            posts,
            events_dropped: Counter::default(),
        }
    }
}

impl ListenerMetrics {
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register(
            "sidecar_listener_posts",
            "Listener POSTs by outcome",
            self.posts.clone(),
        );
        registry.register(
            "sidecar_listener_events_dropped",
            "Events dropped on full listener queues",
            self.events_dropped.clone(),
        );
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
    metrics: Arc<ListenerMetrics>,
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
                self.metrics.events_dropped.inc();
                tracing::warn!(listener = %name, "listener queue full: event dropped");
            }
        }
    }
}

/// Reconciles the discovered listeners with each new discovery view, then passes the
/// view on. The announcer reads the forwarded view, so a new service's listener runs
/// before the service's own first events are published.
pub fn stage(
    registry: Arc<Registry>,
    mut view: watch::Receiver<Option<Arc<LocalView>>>,
) -> (
    watch::Receiver<Option<Arc<LocalView>>>,
    impl std::future::Future<Output = ()>,
) {
    let (tx, rx) = watch::channel(None);
    let task = async move {
        loop {
            let current = view.borrow_and_update().clone();
            if let Some(v) = &current {
                registry.reconcile(v);
            }
            tx.send_replace(current);
            if view.changed().await.is_err() {
                return;
            }
        }
    };
    (rx, task)
}

/// Starts the `LISTENERS_URLS` listeners and the dispatcher; returns the registry
/// [`stage`] reconciles discovered listeners with.
pub fn start(
    cfg: &ListenersConfig,
    catalog: Arc<SharedCatalog>,
    hostname: String,
    metrics: Arc<ListenerMetrics>,
    tasks: &mut JoinSet<()>,
) -> anyhow::Result<Arc<Registry>> {
    let client = url_listener::client()
        .map_err(|e| anyhow::anyhow!("cannot build the listeners' HTTP client: {e}"))?;
    let events = catalog.subscribe();
    let registry = Arc::new(Registry {
        running: Mutex::new(HashMap::new()),
        catalog,
        client,
        hostname,
        metrics,
    });
    for url in &cfg.urls {
        let name = format!("UrlListener({url})");
        let r = registry.start_one(&name, url, false);
        registry.running.lock().insert(name, r);
    }
    tasks.spawn(dispatch(registry.clone(), events));
    Ok(registry)
}

async fn dispatch(registry: Arc<Registry>, mut events: broadcast::Receiver<Arc<ChangeEvent>>) {
    loop {
        match events.recv().await {
            Ok(ev) => registry.fan_out(&ev),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                if !registry.running.lock().is_empty() {
                    registry.metrics.events_dropped.inc_by(n);
                    tracing::warn!("listeners fell {n} events behind; they were dropped");
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidecar_catalog::{Service, Status};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Answers each request with 200 and forwards the request text.
    async fn fast_server() -> (String, mpsc::UnboundedReceiver<String>) {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/update", l.local_addr().expect("addr"));
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 1 << 20];
                    let mut got = Vec::new();
                    loop {
                        let Ok(n) = s.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        got.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&got).to_string();
                        if let Some((head, body)) = text.split_once("\r\n\r\n") {
                            let len = head
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length:")
                                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                                })
                                .unwrap_or(0);
                            if body.len() >= len {
                                let _ = tx.send(body.to_string());
                                let _ = s
                                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                                    .await;
                                got.clear();
                            }
                        }
                    }
                });
            }
        });
        (url, rx)
    }

    #[tokio::test]
    async fn a_listener_that_never_answers_does_not_hold_up_the_others() {
        // Accepts connections and never answers.
        let stuck = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let stuck_url = format!("http://{}/update", stuck.local_addr().expect("addr"));
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = stuck.accept().await {
                held.push(s);
            }
        });
        let (fast_url, mut received) = fast_server().await;
        let (catalog, _out) = SharedCatalog::with_defaults("me", "default");
        tokio::spawn(catalog.clone().run_publisher());
        let metrics = Arc::new(ListenerMetrics::default());
        let mut tasks = JoinSet::new();
        start(
            &ListenersConfig {
                urls: vec![stuck_url, fast_url],
            },
            catalog.clone(),
            "me".into(),
            metrics.clone(),
            &mut tasks,
        )
        .expect("client");
        // One new service per step; the fast listener gets each event before the next.
        let mut desired = Vec::new();
        let mut bodies = Vec::new();
        for i in 0..30 {
            desired.push(Service {
                id: format!("s{i}"),
                name: "web".into(),
                status: Status::Alive,
                ..Service::default()
            });
            catalog.sync_local(desired.clone());
            bodies.push(received.recv().await.expect("body"));
        }
        assert!(bodies.iter().all(|b| b.starts_with("{\"State\":")));
        assert!(
            metrics.events_dropped.get() > 0,
            "the stuck listener's queue overflowed and dropped events"
        );
    }

    #[test]
    fn posts_by_outcome_are_exposed_from_the_start() {
        let m = ListenerMetrics::default();
        m.posts_ok.inc();
        m.events_dropped.inc_by(3);
        let out = crate::metrics::scrape(|r| m.register(r));
        crate::metrics::assert_lines(
            &out,
            &[
                "# HELP sidecar_listener_posts_total Listener POSTs by outcome.",
                "# TYPE sidecar_listener_posts_total counter",
                "sidecar_listener_posts_total{outcome=\"ok\"} 1",
                "sidecar_listener_posts_total{outcome=\"failed\"} 0",
                "# TYPE sidecar_listener_events_dropped_total counter",
                "sidecar_listener_events_dropped_total 3",
            ],
        );
    }
}
