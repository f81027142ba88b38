//! The daemon's one catalog, shared by the tasks that write it and the ones that read it.
//!
//! Writers (local discovery, the cluster, the drain route, the expiry ticker) go through
//! [`SharedCatalog`], which reads the clocks, applies the operation under a short lock
//! and routes the outcome: change events to subscribers, records that local operations
//! stored to the cluster for dissemination, and a fresh immutable [`Snapshot`] to
//! readers. Readers never take the lock: they hold an `Arc<Snapshot>`.

use bytes::Bytes;
use parking_lot::Mutex;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use sidecar_catalog::{
    Applied, Catalog, ChangeEvent, DrainError, Lifespans, Mono, Now, Record, Service,
    ServicesState, Status, Timestamp,
};
use sidecar_plugin_host::SidecarProxy;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tokio::sync::{Notify, broadcast, mpsc, watch};

/// An immutable view of the catalog at one generation.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases with every change that affects what readers see.
    pub generation: u64,
    pub state: ServicesState,
    /// This host's sidecar proxies (static.json `Connect.SidecarService`): local proxy
    /// configuration the emitters turn into listeners. Not part of the catalog (never
    /// gossiped); carried here so that a proxy driver sees records and proxies of one
    /// moment, and re-emits when either changes.
    pub sidecar_proxies: Arc<[SidecarProxy]>,
    state_json: OnceLock<Bytes>,
}

impl Snapshot {
    fn new(generation: u64, state: ServicesState, sidecar_proxies: Arc<[SidecarProxy]>) -> Self {
        Snapshot {
            generation,
            state,
            sidecar_proxies,
            state_json: OnceLock::new(),
        }
    }

    /// `/api/state.json`: compact JSON, rendered once per generation.
    pub fn state_json(&self) -> Bytes {
        self.state_json
            .get_or_init(|| Bytes::from(serde_json::to_vec(&self.state).unwrap_or_default()))
            .clone()
    }

    /// Every record sorted by `Updated` (oldest first): what emitters get.
    pub fn services_by_updated(&self) -> Vec<Service> {
        let mut all: Vec<Service> = self.state.services().cloned().collect();
        all.sort_by_key(|s| s.updated);
        all
    }
}

/// The `reason` label of refused records.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

/// Counters readers of `/metrics` want.
#[derive(Debug, Default)]
pub struct CatalogCounters {
    pub stale_dropped: Counter,
    pub change_events: Counter,
    /// Peers' records refused, by reason: `future` (stamped too far ahead), `foreign`
    /// (about a member, from another announcer), `over_limit` (the announcer's cap).
    pub refused: Family<ReasonLabel, Counter>,
    /// Copies of our records we did not write, answered by re-announcing ours.
    pub refuted: Counter,
}

pub struct SharedCatalog {
    catalog: Mutex<Catalog>,
    started: Instant,
    generation: AtomicU64,
    dirty: Notify,
    snapshots: watch::Sender<Arc<Snapshot>>,
    events: broadcast::Sender<Arc<ChangeEvent>>,
    outbound: mpsc::UnboundedSender<Vec<Record>>,
    /// Our member name: the announcer of our records.
    me: Arc<str>,
    /// The records each recent generation touched (see [`SharedCatalog::changed_between`]).
    journal: Mutex<Journal>,
    /// See [`Snapshot::sidecar_proxies`]; written under the catalog lock.
    sidecar_proxies: Mutex<Arc<[SidecarProxy]>>,
    pub counters: CatalogCounters,
}

/// How many touched records the journal remembers: readers further behind rebuild from
/// a snapshot.
const JOURNAL_CAP: usize = 16_384;

/// The keys (hostname, ID) of the records each generation stored or removed, newest
/// last, for readers that follow the catalog by difference instead of walking every
/// record of every snapshot (the DNS index: O(changes) per change at any size).
#[derive(Debug, Default)]
struct Journal {
    entries: std::collections::VecDeque<(u64, String, String)>,
    /// Entries up to this generation may have been dropped.
    forgotten_through: u64,
}

impl Journal {
    fn record(&mut self, generation: u64, applied: &Applied) {
        let keys = applied
            .stored
            .iter()
            .map(|r| (r.service.hostname.clone(), r.service.id.clone()))
            .chain(applied.removed.iter().cloned());
        for (host, id) in keys {
            if self.entries.len() == JOURNAL_CAP
                && let Some((g, _, _)) = self.entries.pop_front()
            {
                self.forgotten_through = g;
            }
            self.entries.push_back((generation, host, id));
        }
    }

    fn between(&self, from: u64, to: u64) -> Option<Vec<(String, String)>> {
        if from < self.forgotten_through {
            return None;
        }
        // Generations only grow along the deque: skip to the first one after `from`.
        let start = self.entries.partition_point(|(g, _, _)| *g <= from);
        Some(
            self.entries
                .range(start..)
                .take_while(|(g, _, _)| *g <= to)
                .map(|(_, h, i)| (h.clone(), i.clone()))
                .collect(),
        )
    }
}

/// Capacity of the change-event channel; a subscriber that falls further behind sees
/// `Lagged` and should resynchronise from a snapshot.
const EVENT_CAPACITY: usize = 4096;

impl SharedCatalog {
    /// The shared catalog and the stream of records that local operations stored, which
    /// the cluster disseminates.
    pub fn new(catalog: Catalog) -> (Arc<Self>, mpsc::UnboundedReceiver<Vec<Record>>) {
        let first = Arc::new(Snapshot::new(0, catalog.state().clone(), Arc::new([])));
        let (snapshots, _) = watch::channel(first);
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let (outbound, rx) = mpsc::unbounded_channel();
        let me = Arc::from(catalog.hostname());
        let shared = Arc::new(SharedCatalog {
            me,
            catalog: Mutex::new(catalog),
            started: Instant::now(),
            generation: AtomicU64::new(0),
            dirty: Notify::new(),
            snapshots,
            events,
            outbound,
            journal: Mutex::new(Journal::default()),
            sidecar_proxies: Mutex::new(Arc::new([])),
            counters: CatalogCounters::default(),
        });
        (shared, rx)
    }

    pub fn with_defaults(
        hostname: &str,
        cluster_name: &str,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<Vec<Record>>) {
        Self::new(Catalog::with_lifespans(
            hostname,
            cluster_name,
            Lifespans::default(),
        ))
    }

    /// Both clocks, read now.
    pub fn now(&self) -> Now {
        Now::new(Timestamp::now(), Mono(self.started.elapsed()))
    }

    /// Reads the live catalog under the lock. Prefer [`Self::snapshot`] for anything slow.
    pub fn read<R>(&self, f: impl FnOnce(&Catalog) -> R) -> R {
        f(&self.catalog.lock())
    }

    /// The (hostname, ID) of every record stored or removed by the generations after
    /// `from` up to `to`, oldest first (with repeats); `None` when the journal no longer
    /// reaches back to `from` (the caller rebuilds from a snapshot).
    pub fn changed_between(&self, from: u64, to: u64) -> Option<Vec<(String, String)>> {
        self.journal.lock().between(from, to)
    }

    /// The latest published snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshots.borrow().clone()
    }

    /// Wakes on every published snapshot.
    pub fn watch(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshots.subscribe()
    }

    /// Registers the catalog's families: records by status (all hosts and this one) and
    /// the generation, read from the latest snapshot at scrape time, and the counters.
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register(
            "sidecar_change_events",
            "Change events fired",
            self.counters.change_events.clone(),
        );
        registry.register(
            "sidecar_stale_records_dropped",
            "Incoming records older than the tombstone lifespan",
            self.counters.stale_dropped.clone(),
        );
        registry.register(
            "sidecar_gossip_records_refused",
            "Peers' records refused: stamped too far ahead, about another member, or over the announcer's record limit",
            self.counters.refused.clone(),
        );
        registry.register(
            "sidecar_gossip_records_refuted",
            "Copies of our records that we did not write, answered by re-announcing ours",
            self.counters.refuted.clone(),
        );
        registry.register_collector(Box::new(CatalogCollector(self.watch())));
    }

    /// Every change event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<ChangeEvent>> {
        self.events.subscribe()
    }

    /// Merges records received from a peer. The caller (the cluster) disseminates what
    /// was stored; nothing is queued on the outbound stream.
    pub fn merge_remote(&self, announcer: &str, records: Vec<Service>) -> Applied {
        let applied = self.apply(false, |c, now| c.merge_all(announcer, records, now));
        let refusals = [
            (
                "future",
                applied.refused_future,
                "refused records stamped more than the allowed clock skew in the future",
            ),
            (
                "foreign",
                applied.refused_foreign,
                "refused records about another member (only a member writes its own records)",
            ),
            (
                "over_limit",
                applied.refused_over_limit,
                "refused new records: the announcer is at its record limit",
            ),
        ];
        for (reason, n, why) in refusals.into_iter().filter(|(_, n, _)| *n > 0) {
            let counter = self.counters.refused.get_or_create(&ReasonLabel { reason });
            counter.inc_by(n as u64);
            tracing::warn!(%announcer, count = n, "{why}");
        }
        if applied.refuted > 0 {
            self.counters.refuted.inc_by(applied.refuted as u64);
            tracing::warn!(
                %announcer,
                count = applied.refuted,
                "received copies of our records that we did not write: re-announced ours"
            );
        }
        applied
    }

    /// Reconciles our own records with discovery's complete current view.
    pub fn sync_local(&self, desired: Vec<Service>) -> Applied {
        self.apply(true, |c, now| c.sync_local(desired, now))
    }

    /// Sets one of our records to DRAINING.
    pub fn drain(&self, id: &str) -> Result<Applied, DrainError> {
        self.apply_fallible(|c, now| c.drain(id, now))
    }

    /// Ends a drain of one of our records.
    pub fn undrain(&self, id: &str) -> Result<Applied, DrainError> {
        self.apply_fallible(|c, now| c.undrain(id, now))
    }

    /// A local operation that may be refused: applied like any other when it succeeds.
    fn apply_fallible(
        &self,
        op: impl FnOnce(&mut Catalog, Now) -> Result<Applied, DrainError>,
    ) -> Result<Applied, DrainError> {
        let mut result = None;
        self.apply(true, |c, now| match op(c, now) {
            Ok(applied) => {
                result = Some(Ok(applied.clone()));
                applied
            }
            Err(e) => {
                result = Some(Err(e));
                Applied::default()
            }
        });
        result.unwrap_or_else(|| Ok(Applied::default()))
    }

    /// Node maintenance on or off (every local ALIVE record DRAINING while on).
    pub fn set_maintenance(&self, on: bool) -> Applied {
        self.apply(true, |c, now| c.set_maintenance(on, now))
    }

    /// Whether node maintenance is on.
    pub fn maintenance(&self) -> bool {
        self.read(|c| c.maintenance())
    }

    /// Expires unrefreshed records and purges old tombstones.
    pub fn expire(&self) -> Applied {
        self.apply(true, |c, now| c.expire(now))
    }

    /// A member left or died: tombstone everything it announced.
    pub fn tombstone_announcer(&self, announcer: &str) -> Applied {
        self.apply(true, |c, now| c.tombstone_announcer(announcer, now))
    }

    /// Replaces this host's sidecar proxies; a new set is a new generation, so proxy
    /// drivers emit again even when no record changed (an upstream's port edited).
    pub fn set_sidecar_proxies(&self, proxies: Vec<SidecarProxy>) {
        let _catalog = self.catalog.lock();
        let mut current = self.sidecar_proxies.lock();
        if **current == *proxies {
            return;
        }
        *current = proxies.into();
        self.generation.fetch_add(1, Ordering::Relaxed);
        self.dirty.notify_one();
    }

    /// Evidence that `announcer` is alive and still asserts its records.
    pub fn refresh_announcer(&self, announcer: &str) {
        let now = self.now();
        self.catalog.lock().refresh_announcer(announcer, now.mono);
    }

    fn apply(&self, local: bool, op: impl FnOnce(&mut Catalog, Now) -> Applied) -> Applied {
        let applied = {
            let mut catalog = self.catalog.lock();
            let now = self.now();
            let applied = op(&mut catalog, now);
            // The generation moves, and the journal learns what it touched, under the
            // catalog lock, so a snapshot's generation and state always agree.
            if !applied.stored.is_empty() || !applied.removed.is_empty() {
                let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
                self.journal.lock().record(generation, &applied);
                self.dirty.notify_one();
            }
            applied
        };
        if applied.stale > 0 {
            self.counters.stale_dropped.inc_by(applied.stale as u64);
            tracing::debug!(
                count = applied.stale,
                "Dropping stale service received on gossip"
            );
        }
        for event in &applied.events {
            self.counters.change_events.inc();
            // No subscribers is fine: nobody is listening yet.
            let _ = self.events.send(Arc::new(event.clone()));
        }
        // Our records go out: local changes, and refutations of copies we did not write.
        let ours: Vec<Record> = if local {
            applied.stored.clone()
        } else {
            applied
                .stored
                .iter()
                .filter(|r| *r.announcer == *self.me)
                .cloned()
                .collect()
        };
        if !ours.is_empty() {
            let _ = self.outbound.send(ours);
        }
        applied
    }

    /// Publishes a snapshot whenever the catalog changed. Bursts of changes coalesce into
    /// one copy of the catalog, taken off the writers' path.
    pub async fn run_publisher(self: Arc<Self>) {
        loop {
            self.dirty.notified().await;
            if self.generation.load(Ordering::Relaxed) == self.snapshots.borrow().generation {
                continue;
            }
            // O(1): the state's maps are persistent and share their nodes with the
            // catalog's until either side changes.
            let (generation, state, proxies) = {
                let catalog = self.catalog.lock();
                (
                    self.generation.load(Ordering::Relaxed),
                    catalog.state().clone(),
                    self.sidecar_proxies.lock().clone(),
                )
            };
            self.snapshots
                .send_replace(Arc::new(Snapshot::new(generation, state, proxies)));
        }
    }
}

/// Records by status and the generation, from the latest snapshot.
struct CatalogCollector(watch::Receiver<Arc<Snapshot>>);

impl std::fmt::Debug for CatalogCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CatalogCollector")
    }
}

impl Collector for CatalogCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snap = self.0.borrow().clone();
        let mut all = [0i64; Status::ALL.len()];
        let mut local = [0i64; Status::ALL.len()];
        let me = &snap.state.hostname;
        for s in snap.state.services() {
            all[s.status.code() as usize] += 1;
            if &s.hostname == me {
                local[s.status.code() as usize] += 1;
            }
        }
        for (name, help, counts) in [
            (
                "sidecar_services",
                "Catalog records by status (all hosts).",
                &all,
            ),
            (
                "sidecar_local_services",
                "Records of this host by status.",
                &local,
            ),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for st in Status::ALL {
                let status = st.as_str().to_ascii_lowercase();
                let labels = [("status", status.as_str())];
                ConstGauge::new(counts[st.code() as usize])
                    .encode(family.encode_family(&labels)?)?;
            }
        }
        // A gauge, not a counter: a counter's name would have to end in `_total`.
        crate::metrics::encode_gauge(
            &mut encoder,
            "sidecar_catalog_generation",
            "Catalog snapshot generation.",
            i64::try_from(snap.generation).unwrap_or(i64::MAX),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidecar_catalog::Status;
    use std::time::Duration;

    fn local(id: &str) -> Service {
        Service {
            id: id.into(),
            name: "web".into(),
            status: Status::Alive,
            ..Service::default()
        }
    }

    #[test]
    fn the_journal_names_what_each_generation_touched() {
        let (shared, _rx) = SharedCatalog::with_defaults("me", "default");
        shared.sync_local(vec![local("a"), local("b")]);
        let g1 = shared.generation.load(Ordering::Relaxed);
        assert!(shared.drain("b").is_ok());
        let g2 = shared.generation.load(Ordering::Relaxed);
        assert_eq!(g2, g1 + 1);
        let key = |id: &str| ("me".to_string(), id.to_string());
        assert_eq!(shared.changed_between(g1, g2), Some(vec![key("b")]));
        let mut all = shared.changed_between(0, g2).expect("within the journal");
        all.sort();
        all.dedup();
        assert_eq!(all, vec![key("a"), key("b")]);
        assert_eq!(shared.changed_between(g2, g2), Some(vec![]));
    }

    #[test]
    fn a_reader_behind_the_journal_is_told_to_rebuild() {
        let (shared, _rx) = SharedCatalog::with_defaults("me", "default");
        let many: Vec<Service> = (0..JOURNAL_CAP + 10)
            .map(|i| local(&format!("s{i}")))
            .collect();
        shared.sync_local(many);
        let g = shared.generation.load(Ordering::Relaxed);
        assert!(shared.drain("s1").is_ok());
        // The first generation's keys no longer all fit: from before it, rebuild.
        assert_eq!(shared.changed_between(0, g + 1), None);
        assert_eq!(
            shared.changed_between(g, g + 1),
            Some(vec![("me".to_string(), "s1".to_string())])
        );
    }

    #[tokio::test]
    async fn local_changes_reach_events_outbound_and_snapshots() {
        let (shared, mut outbound) = SharedCatalog::with_defaults("me", "default");
        let mut events = shared.subscribe();
        let mut snaps = shared.watch();
        tokio::spawn(shared.clone().run_publisher());

        shared.sync_local(vec![local("a")]);
        let ev = events.recv().await.expect("event");
        assert_eq!(ev.service.id, "a");
        let out = outbound.recv().await.expect("outbound");
        assert_eq!(out[0].service.id, "a");
        tokio::time::timeout(Duration::from_secs(5), snaps.changed())
            .await
            .expect("published")
            .expect("open");
        let snap = shared.snapshot();
        assert!(snap.state.get("me", "a").is_some());
        let json: serde_json::Value =
            serde_json::from_slice(&snap.state_json()).expect("valid json");
        assert_eq!(json["Servers"]["me"]["Services"]["a"]["Name"], "web");
    }

    #[tokio::test]
    async fn remote_merges_are_not_queued_for_dissemination() {
        let (shared, mut outbound) = SharedCatalog::with_defaults("me", "default");
        let mut svc = local("b");
        svc.hostname = "peer".into();
        svc.updated = Timestamp::now();
        let applied = shared.merge_remote("peer", vec![svc]);
        assert_eq!(applied.stored.len(), 1);
        assert!(outbound.try_recv().is_err());
    }

    #[tokio::test]
    async fn a_forged_copy_of_our_record_sends_ours_out_again() {
        let (shared, mut outbound) = SharedCatalog::with_defaults("me", "default");
        shared.sync_local(vec![local("a")]);
        let first = outbound.try_recv().expect("announced");
        let mut forged = first[0].service.clone();
        forged.status = Status::Draining;
        forged.updated = forged.updated.add_nanos(1_000_000);
        shared.merge_remote("evil", vec![forged.clone()]);
        let again = outbound.try_recv().expect("refuted");
        assert_eq!(again[0].service.status, Status::Alive);
        assert!(again[0].service.updated > forged.updated);
        assert_eq!(shared.counters.refuted.get(), 1);
    }

    #[test]
    fn drain_reports_unknown_ids() {
        let (shared, _rx) = SharedCatalog::with_defaults("me", "default");
        assert!(matches!(shared.drain("nope"), Err(DrainError::NotFound(_))));
        shared.sync_local(vec![local("a")]);
        assert!(shared.drain("a").is_ok());
        assert_eq!(
            shared.read(|c| c.state().get("me", "a").map(|s| s.status)),
            Some(Status::Draining)
        );
    }

    #[tokio::test]
    async fn metrics_count_records_by_status_from_the_latest_snapshot() {
        let (shared, _outbound) = SharedCatalog::with_defaults("me", "default");
        let mut snaps = shared.watch();
        tokio::spawn(shared.clone().run_publisher());
        shared.sync_local(vec![local("a"), local("b")]);
        let mut peer = local("c");
        peer.hostname = "peer".into();
        peer.updated = Timestamp::now();
        shared.merge_remote("peer", vec![peer]);
        tokio::time::timeout(
            Duration::from_secs(5),
            snaps.wait_for(|s| s.state.services().count() == 3),
        )
        .await
        .expect("published")
        .expect("open");
        let out = crate::metrics::scrape(|r| shared.register_metrics(r));
        crate::metrics::assert_lines(
            &out,
            &[
                "# HELP sidecar_services Catalog records by status (all hosts).",
                "# TYPE sidecar_services gauge",
                "sidecar_services{status=\"alive\"} 3",
                "sidecar_services{status=\"tombstone\"} 0",
                "sidecar_services{status=\"draining\"} 0",
                "# TYPE sidecar_local_services gauge",
                "sidecar_local_services{status=\"alive\"} 2",
                "# TYPE sidecar_change_events_total counter",
                "sidecar_change_events_total 3",
                "# TYPE sidecar_stale_records_dropped_total counter",
                "sidecar_stale_records_dropped_total 0",
                "# TYPE sidecar_catalog_generation gauge",
                &format!(
                    "sidecar_catalog_generation {}",
                    shared.snapshot().generation
                ),
            ],
        );
    }
}
