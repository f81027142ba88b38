//! The DNS interface: the catalog and the member list as DNS names, served over UDP and
//! TCP on `SIDECAR_DNS_ADDR` (see `docs/dns.md`).
//!
//! It is a reader of the catalog, like the HTTP API: an indexer task turns every
//! published snapshot (and every member-list change) into an immutable [`Index`] of
//! pre-encoded answers, and the serving loops pick up the newest one before each query.
//! Queries are parsed with hickory-proto; answering one is a hash lookup and a few
//! copies. Names outside the domain go to the recursors when there are any.

pub mod answer;
pub mod forward;
pub mod index;
pub mod metrics;
pub mod server;

pub use answer::{AnswerConfig, Outcome, Rcode, Transport};
pub use index::{Index, IndexConfig};
pub use metrics::DnsMetrics;

use crate::shared_catalog::{SharedCatalog, Snapshot};
use sidecar_cluster::MemberList;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The DNS settings (`SIDECAR_DNS_*`, parsed in `config/dns.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// Where to listen (UDP and TCP); `None` turns the DNS interface off.
    pub addr: Option<SocketAddr>,
    /// The address was set explicitly: failing to bind it stops the daemon. The default
    /// address only warns, so that several agents on one host keep starting.
    pub required: bool,
    /// Lowercase, without the trailing dot.
    pub domain: String,
    /// TTL of every record, and of negative answers (the SOA minimum).
    pub ttl: u32,
    /// Resolvers for names outside the domain; none means those are refused.
    pub recursors: Vec<SocketAddr>,
    /// Open TCP connections; more are closed at once.
    pub tcp_max_connections: usize,
    /// A TCP connection with no complete query for this long is closed.
    pub tcp_idle_timeout: Duration,
}

impl DnsConfig {
    pub const DEFAULT_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8600);
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            addr: Some(Self::DEFAULT_ADDR),
            required: false,
            domain: "sidecar.local".into(),
            ttl: 0,
            recursors: Vec::new(),
            tcp_max_connections: 512,
            tcp_idle_timeout: Duration::from_secs(10),
        }
    }
}

/// The running DNS interface.
#[derive(Debug, Clone, Copy)]
pub struct DnsHandle {
    pub addr: SocketAddr,
}

/// Binds the sockets, starts the indexer and the serving loops on `tasks`. `Ok(None)`
/// when the interface is off, or the default address is taken (logged).
pub async fn start(
    cfg: &DnsConfig,
    advertise_ip: IpAddr,
    catalog: Arc<SharedCatalog>,
    members: watch::Receiver<Arc<MemberList>>,
    metrics: Arc<DnsMetrics>,
    tasks: &mut JoinSet<()>,
) -> anyhow::Result<Option<DnsHandle>> {
    let Some(addr) = cfg.addr else {
        tracing::info!("DNS interface off (SIDECAR_DNS_ADDR is empty)");
        return Ok(None);
    };
    let sockets = match server::bind(addr).await {
        Ok(s) => s,
        Err(e) if !cfg.required => {
            tracing::warn!(
                %addr,
                "DNS interface off: cannot listen on the default address ({e}); set SIDECAR_DNS_ADDR"
            );
            return Ok(None);
        }
        Err(e) => {
            return Err(anyhow::anyhow!(
                "cannot listen on {addr} for DNS (SIDECAR_DNS_ADDR): {e}"
            ));
        }
    };
    let index_cfg = IndexConfig {
        domain: cfg.domain.clone(),
        ttl: cfg.ttl,
        advertise_ip: Some(advertise_ip),
    };
    let (index_tx, index_rx) = watch::channel(Arc::new(Index::empty(&index_cfg)));
    tasks.spawn(run_indexer(
        index_cfg,
        catalog,
        members,
        index_tx,
        metrics.clone(),
    ));
    let bound = sockets.addr;
    server::spawn(sockets, cfg, index_rx, metrics, tasks);
    tracing::info!(
        addr = %bound,
        domain = %cfg.domain,
        ttl = cfg.ttl,
        recursors = ?cfg.recursors,
        "DNS interface listening (UDP and TCP)"
    );
    Ok(Some(DnsHandle { addr: bound }))
}

/// While the catalog keeps changing, a full build (which folds the overlay in) starts at
/// most this often, or sooner once the overlay holds [`OVERLAY_FOLD_NAMES`] names.
const FULL_BUILD_EVERY: Duration = Duration::from_secs(10);

/// An overlay this large is folded into a full build (it is rebuilt on every change
/// until then, so its size bounds the cost of each change).
const OVERLAY_FOLD_NAMES: usize = 1024;

/// Drops an index that was replaced off the async threads: freeing the last reference
/// to a full build of 10,000 services takes milliseconds.
pub fn retire(index: Arc<Index>) {
    if Arc::strong_count(&index) == 1 && index.names() > 1024 {
        tokio::task::spawn_blocking(move || drop(index));
    }
}

/// Keeps the published index up to date with the catalog and the member list.
///
/// Every snapshot is published at once as the last full build plus an overlay of the
/// service names whose records changed since (the catalog's journal names them), so a
/// change costs what it touched, whatever the catalog's size. Full builds (10,000
/// services take tens of milliseconds) run off the async threads, seldom: when the
/// member list changed, when the overlay could not be made or grew large, and at most
/// every [`FULL_BUILD_EVERY`] while the catalog keeps changing. Bursts coalesce: the
/// watch channels hold only the newest value.
pub async fn run_indexer(
    cfg: IndexConfig,
    catalog: Arc<SharedCatalog>,
    mut members: watch::Receiver<Arc<MemberList>>,
    out: watch::Sender<Arc<Index>>,
    metrics: Arc<DnsMetrics>,
) {
    type Built = (Index, Arc<Snapshot>);
    let cfg = Arc::new(cfg);
    let mut snapshots = catalog.watch();
    // The last full build and the snapshot it was built from.
    let mut base: Option<(Arc<Index>, Arc<Snapshot>)> = None;
    let mut building: Option<tokio::task::JoinHandle<Built>> = None;
    // The member list changed since the last full build was started.
    let mut members_dirty = true;
    let mut published_generation = None;
    let mut last_build: Option<Instant> = None;
    let mut overlay_names = 0;
    // Wakes the loop when a spaced-out full build becomes due.
    let mut tick = tokio::time::interval(FULL_BUILD_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let snap = snapshots.borrow_and_update().clone();
        if let Some((index, from)) = &base
            && published_generation != Some(snap.generation)
        {
            let started = Instant::now();
            let fresh = if from.generation == snap.generation {
                Some(index.clone())
            } else {
                catalog
                    .changed_between(from.generation, snap.generation)
                    .and_then(|touched| {
                        index.with_changes(
                            &cfg,
                            &from.state,
                            snap.generation,
                            &snap.state,
                            &touched,
                        )
                    })
                    .map(Arc::new)
            };
            // Too many changes for an overlay: the full build being made will do.
            if let Some(fresh) = fresh {
                metrics.overlaid(&fresh, started.elapsed());
                overlay_names = fresh.overlay_names();
                retire(out.send_replace(fresh));
                published_generation = Some(snap.generation);
            }
        }
        let behind = base
            .as_ref()
            .is_none_or(|(_, from)| from.generation != snap.generation);
        // The overlay carries the changes in the meantime, so full builds (the CPU) are
        // spaced out; one is due at once when the overlay could not be made.
        let overlay_failed = published_generation != Some(snap.generation);
        let spaced = last_build.is_none_or(|t: Instant| t.elapsed() >= FULL_BUILD_EVERY);
        let large = overlay_names >= OVERLAY_FOLD_NAMES;
        if building.is_none() && (members_dirty || (behind && (overlay_failed || spaced || large)))
        {
            last_build = Some(Instant::now());
            members_dirty = false;
            let list = members.borrow_and_update().clone();
            let (c, s) = (cfg.clone(), snap.clone());
            building = Some(tokio::task::spawn_blocking(move || {
                let started = Instant::now();
                let index = Index::build(&c, s.generation, &s.state, &list);
                tracing::debug!(
                    elapsed_us = started.elapsed().as_micros() as u64,
                    names = index.names(),
                    "DNS index built"
                );
                (index, s)
            }));
        }
        tokio::select! {
            _ = tick.tick() => {}
            r = snapshots.changed() => if r.is_err() { return },
            r = members.changed() => {
                if r.is_err() { return }
                members_dirty = true;
            }
            done = async {
                match building.as_mut() {
                    Some(b) => b.await,
                    None => std::future::pending().await,
                }
            } => {
                building = None;
                match done {
                    Ok((index, from)) => {
                        metrics.indexed(&index);
                        if let Some((old, _)) = base.replace((Arc::new(index), from)) {
                            retire(old);
                        }
                        // Published (as is, or under an overlay) on the next turn.
                        published_generation = None;
                    }
                    Err(e) => tracing::error!("DNS index build failed: {e}"),
                }
            }
        }
    }
}
