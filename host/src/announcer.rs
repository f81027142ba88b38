//! The local announcer: discovery's complete view plus health statuses become our
//! catalog records, every second and at once on any change (Sidecar's
//! `TrackNewServices`). A service without a check result yet is UNKNOWN. While
//! discovery, health and the catalog all stand still the sync is skipped (at most
//! every 30 s it runs anyway), which keeps an idle daemon with thousands of services idle.

use crate::discovery::LocalView;
use crate::health::scheduler::Statuses;
use crate::shared_catalog::SharedCatalog;
use sidecar_catalog::Status;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// A sync runs at least this often even when nothing seems to have changed.
pub const FULL_SYNC: Duration = Duration::from_secs(30);

/// Runs until both inputs close. `ready` turns true after the first complete discovery
/// result was announced (the proxies wait for it before publishing any configuration).
pub async fn run(
    catalog: Arc<SharedCatalog>,
    mut view: watch::Receiver<Option<Arc<LocalView>>>,
    mut health: watch::Receiver<Statuses>,
    ready: watch::Sender<bool>,
) {
    let mut tick = tokio::time::interval(SYNC_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut view_open, mut health_open) = (true, true);
    // Inputs of the last sync: nothing to do while they and the catalog stand still.
    let mut last: Option<(Arc<LocalView>, Statuses, u64, Instant)> = None;
    // systemd's watchdog is fed only while this loop turns (at least every tick).
    let heartbeat = crate::service_manager::Heartbeat::register("announcer");
    loop {
        heartbeat.beat().await;
        tokio::select! {
            _ = tick.tick() => {}
            r = view.changed(), if view_open => view_open = r.is_ok(),
            r = health.changed(), if health_open => health_open = r.is_ok(),
        }
        let Some(current) = view.borrow_and_update().clone() else {
            continue;
        };
        let statuses = health.borrow_and_update().clone();
        if last
            .as_ref()
            .is_none_or(|(v, ..)| !Arc::ptr_eq(v, &current))
        {
            // Before the records, so the snapshot that first holds a proxy's record
            // also holds its listeners.
            let mut proxies: Vec<_> = current
                .services
                .iter()
                .filter_map(|l| l.sidecar_proxy.clone())
                .collect();
            proxies.sort_by(|a, b| a.id.cmp(&b.id));
            catalog.set_sidecar_proxies(proxies);
        }
        let generation = catalog.snapshot().generation;
        if let Some((v, h, g, at)) = &last
            && Arc::ptr_eq(v, &current)
            && Arc::ptr_eq(h, &statuses)
            && *g == generation
            && at.elapsed() < FULL_SYNC
        {
            continue;
        }
        last = Some((
            current.clone(),
            statuses.clone(),
            generation,
            Instant::now(),
        ));
        let desired = current
            .services
            .iter()
            .map(|l| {
                let mut svc = l.service.clone();
                svc.status = statuses.get(&l.key()).copied().unwrap_or(Status::Unknown);
                svc
            })
            .collect();
        let applied = catalog.sync_local(desired);
        for ev in &applied.events {
            tracing::info!(id = %ev.service.id, name = %ev.service.name, from = %ev.previous_status, to = %ev.service.status, "local service changed");
        }
        ready.send_if_modified(|r| !std::mem::replace(r, true));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::LocalService;
    use sidecar_catalog::Service;
    use std::collections::HashMap;

    #[tokio::test]
    async fn announces_unknown_until_checked_then_the_check_status() {
        let (catalog, _out) = SharedCatalog::with_defaults("me", "default");
        let (view_tx, view_rx) = watch::channel(None);
        let (health_tx, health_rx) = watch::channel(Statuses::default());
        let (ready_tx, mut ready_rx) = watch::channel(false);
        tokio::spawn(run(catalog.clone(), view_rx, health_rx, ready_tx));
        let local = LocalService {
            service: Service {
                id: "a".into(),
                name: "web".into(),
                hostname: "me".into(),
                ..Service::default()
            },
            check: None,
            check_from_container: false,
            listener: None,
            sidecar_proxy: None,
        };
        let key = local.key();
        let mut events = catalog.subscribe();
        assert!(!*ready_rx.borrow());
        view_tx.send_replace(Some(Arc::new(LocalView {
            services: Arc::new(vec![local]),
            sources: vec![],
        })));
        ready_rx.wait_for(|r| *r).await.expect("ready");
        let ev = events.recv().await.expect("new record");
        assert_eq!(ev.service.status, Status::Unknown);
        health_tx.send_replace(Arc::new(HashMap::from([(key, Status::Alive)])));
        let ev = events.recv().await.expect("status change");
        assert_eq!(ev.service.status, Status::Alive);
        assert_eq!(ev.previous_status, Status::Unknown);
    }
}
