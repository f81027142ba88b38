//! Envoy over xDS v3: an ADS server (state of the world) fed by the emitter plugin.
//!
//! The publisher turns debounced catalog snapshots into a validated resource set
//! ([`resources::XdsSnapshot`]) and publishes it when its content changed; every ADS
//! stream ([`stream::Stream`]) converges its Envoy to it, clusters first. Every
//! connecting node gets the same resources: the set describes this host's local proxy,
//! and any number of Envoys (restarts, a second instance for an upgrade) can follow it.

pub mod bootstrap;
pub mod config;
pub mod resources;
pub mod server;
pub mod status;
pub mod stream;

pub use config::EnvoyConfig;
pub use status::XdsStatus;

use crate::proxy::feed::{self, Debounce, Readiness};
use crate::shared_catalog::{SharedCatalog, Snapshot};
use resources::XdsSnapshot;
use sidecar_plugin_host::{Emitted, ProxyEmitter};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::watch;

/// 20 ms of quiet, 1 s at most: Envoy applies a push in a few ms, so the quiet period
/// dominates the catalog-to-Envoy latency.
pub const DEBOUNCE: Debounce = Debounce::new(Duration::from_millis(20), Duration::from_secs(1));

/// Turns catalog snapshots into published resource sets.
pub struct Publisher {
    emitter: Arc<dyn ProxyEmitter>,
    status: Arc<XdsStatus>,
    tx: watch::Sender<Option<Arc<XdsSnapshot>>>,
}

impl Publisher {
    pub fn new(
        emitter: Arc<dyn ProxyEmitter>,
        status: Arc<XdsStatus>,
    ) -> (Self, server::SnapshotRx) {
        let (tx, rx) = watch::channel(None);
        (
            Publisher {
                emitter,
                status,
                tx,
            },
            rx,
        )
    }

    /// Emits and publishes one catalog snapshot; an emitter failure keeps what is
    /// published.
    pub async fn publish(&self, snap: &Snapshot) {
        self.status.counters.renders.fetch_add(1, Ordering::Relaxed);
        let list = match self.emitter.emit(feed::emit_request(snap)).await {
            Ok(Emitted::Xds(list)) => list,
            Ok(Emitted::ConfigFile(_)) => {
                self.status
                    .emit_failed("the emitter returned a config file, not xDS resources".into());
                return;
            }
            Err(e) => {
                self.status.emit_failed(e.to_string());
                return;
            }
        };
        let (built, quarantined) = XdsSnapshot::build(list);
        for q in &quarantined {
            tracing::error!(type_url = %q.type_url, name = %q.name, "xDS resource left out: {}", q.reason);
        }
        let unchanged = self
            .tx
            .borrow()
            .as_ref()
            .is_some_and(|cur| cur.version == built.version);
        self.status
            .published(&built.version, built.len(), quarantined);
        if unchanged {
            return;
        }
        tracing::debug!(version = %built.version, resources = built.len(), "xDS snapshot published");
        self.tx.send_replace(Some(Arc::new(built)));
    }

    /// Runs until the catalog goes away. Nothing is published before `ready`.
    pub async fn run(self, catalog: Arc<SharedCatalog>, mut ready: Readiness) {
        let mut snapshots = catalog.watch();
        if !feed::wait_ready(&mut ready).await {
            return;
        }
        snapshots.borrow_and_update();
        let mut snap = catalog.snapshot();
        loop {
            self.publish(&snap).await;
            snap = match feed::next_change(&mut snapshots, DEBOUNCE).await {
                Some(s) => s,
                None => return,
            };
        }
    }
}

/// Binds the ADS port and starts the publisher and the server. Bind errors are
/// returned (startup fails, as for the HTTP API).
pub async fn spawn(
    cfg: &EnvoyConfig,
    emitter: Arc<dyn ProxyEmitter>,
    catalog: Arc<SharedCatalog>,
    ready: Readiness,
) -> anyhow::Result<(Arc<XdsStatus>, tokio::task::JoinHandle<()>)> {
    let status = Arc::new(XdsStatus::default());
    *status.listen.lock() = cfg.grpc_addr().to_string();
    let (publisher, rx) = Publisher::new(emitter, status.clone());
    let serving =
        server::serve(cfg.grpc_addr(), server::AdsServer::new(rx, status.clone())).await?;
    let task = tokio::spawn(async move {
        tokio::select! {
            _ = publisher.run(catalog, ready) => {}
            res = serving => if let Err(e) = res {
                tracing::error!("xDS server stopped: {e}");
            }
        }
    });
    Ok((status, task))
}
