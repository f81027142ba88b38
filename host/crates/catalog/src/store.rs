//! The catalog: every record in the cluster with the bookkeeping the rules need.
//!
//! `Catalog` is plain data plus rules. It performs no I/O and reads no clock: every
//! operation is handed a [`Now`], so a simulator and the unit tests drive it exactly as
//! the daemon does.

use super::clock::{Mono, Now, OriginClock};
use super::events::ChangeEvent;
use super::model::{Service, ServicesState};
use super::time::Timestamp;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// Sidecar's lifespans (package `catalog` constants), configurable for tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lifespans {
    /// ALIVE/UNHEALTHY/UNKNOWN records not refreshed for this long become tombstones.
    pub alive: Duration,
    /// Same for DRAINING records.
    pub draining: Duration,
    /// Tombstones are deleted after this long; incoming records older than
    /// `tombstone + stale_fudge` are dropped.
    pub tombstone: Duration,
    /// Sidecar's clock-drift allowance on the stale-record check.
    pub stale_fudge: Duration,
    /// Our own records are re-stamped at least this often, so that peers never see them
    /// as older than `tombstone` (records carry their last change time, not a heartbeat).
    pub restamp: Duration,
    /// Incoming records stamped further than this ahead of our wall clock are refused:
    /// a stamp from the far future would win every merge until then.
    pub max_future: Duration,
    /// Most records (tombstones included) one peer may announce; further new records
    /// from it are refused. Ours are bounded where discovery reads them.
    pub max_records_per_announcer: usize,
    /// Most distinct peers whose records we hold; records from a further new announcer
    /// are refused, so forged announcer names cannot grow the per-announcer tables.
    pub max_announcers: usize,
}

impl Default for Lifespans {
    fn default() -> Self {
        Lifespans {
            alive: Duration::from_secs(80),
            draining: Duration::from_secs(600),
            tombstone: Duration::from_secs(3 * 3600),
            stale_fudge: Duration::from_secs(60),
            restamp: Duration::from_secs(3600),
            max_future: Duration::from_secs(2 * 3600),
            max_records_per_announcer: 20_000,
            max_announcers: 16_384,
        }
    }
}

/// A record together with the cluster member that announces it.
///
/// Usually `announcer == service.hostname`; a static file may announce services for a
/// third-party host, and those records live and die with the member that announces them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub announcer: Arc<str>,
    pub service: Service,
}

/// What one catalog operation did: the records it stored (to be disseminated) and the
/// change events it fired (for listeners, watchers and proxies).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub stored: Vec<Record>,
    pub events: Vec<ChangeEvent>,
    /// Records removed outright (purged tombstones, stale drops), as (hostname, ID): no
    /// event, but a snapshot that shows the catalog must be refreshed.
    pub removed: Vec<(String, String)>,
    /// Incoming records dropped for being older than the tombstone lifespan.
    pub stale: usize,
    /// Incoming records refused: stamped too far in the future, or about a host that
    /// announces its own records, sent by another announcer.
    pub refused_future: usize,
    pub refused_foreign: usize,
    /// New records refused because their announcer is at its record limit.
    pub refused_over_limit: usize,
    /// Copies of our own records that we did not write, answered by re-announcing ours.
    pub refuted: usize,
}

impl Applied {
    pub fn is_empty(&self) -> bool {
        self.stored.is_empty() && self.events.is_empty() && self.removed.is_empty()
    }

    pub fn extend(&mut self, other: Applied) {
        self.stored.extend(other.stored);
        self.events.extend(other.events);
        self.removed.extend(other.removed);
        self.stale += other.stale;
        self.refused_future += other.refused_future;
        self.refused_foreign += other.refused_foreign;
        self.refused_over_limit += other.refused_over_limit;
        self.refuted += other.refuted;
    }
}

/// Per-record bookkeeping that is not part of the wire format.
#[derive(Clone, Debug)]
pub(super) struct Meta {
    pub announcer: Arc<str>,
    /// When this host last stored a newer version of the record (receiver's clock).
    pub heard: Mono,
}

#[derive(Debug)]
pub struct Catalog {
    pub(super) state: ServicesState,
    /// hostname -> id -> meta, parallel to `state.servers`.
    pub(super) meta: HashMap<String, HashMap<String, Meta>>,
    /// announcer -> last time we had evidence it is alive and still asserts its records.
    pub(super) announcer_heard: HashMap<Arc<str>, Mono>,
    /// announcer -> the newest stamp we stored from it and when (our clock): an estimate
    /// of its clock, so that staleness never compares its stamps with our wall clock.
    pub(super) announcer_clock: HashMap<Arc<str>, (Timestamp, Mono)>,
    /// Our records drained through the API (DRAINING is ours to set, nobody else's).
    pub(super) drained: HashSet<(String, String)>,
    /// Node maintenance: every local ALIVE record is announced DRAINING.
    pub(super) maintenance: bool,
    /// announcer -> how many records it announces (the limit's count).
    pub(super) per_announcer: HashMap<Arc<str>, usize>,
    /// Whether local discovery has reported once (before that, copies of our records
    /// from a previous life are kept for it to confirm or tombstone).
    pub(super) local_synced: bool,
    pub(super) lifespans: Lifespans,
    pub(super) clock: OriginClock,
    pub(super) me: Arc<str>,
}

impl Catalog {
    /// An empty catalog for this host (`hostname` is also our cluster member name).
    pub fn new(hostname: &str, cluster_name: &str) -> Self {
        Self::with_lifespans(hostname, cluster_name, Lifespans::default())
    }

    pub fn with_lifespans(hostname: &str, cluster_name: &str, lifespans: Lifespans) -> Self {
        Catalog {
            state: ServicesState::new(hostname, cluster_name),
            meta: HashMap::new(),
            announcer_heard: HashMap::new(),
            announcer_clock: HashMap::new(),
            drained: HashSet::new(),
            maintenance: false,
            per_announcer: HashMap::new(),
            local_synced: false,
            lifespans,
            clock: OriginClock::new(),
            me: Arc::from(hostname),
        }
    }

    /// The catalog as `/api/state.json` shows it.
    pub fn state(&self) -> &ServicesState {
        &self.state
    }

    pub fn hostname(&self) -> &str {
        &self.me
    }

    pub fn lifespans(&self) -> &Lifespans {
        &self.lifespans
    }

    pub fn origin_clock(&self) -> &OriginClock {
        &self.clock
    }

    /// The member that announces the record at (`hostname`, `id`).
    pub fn announcer_of(&self, hostname: &str, id: &str) -> Option<&Arc<str>> {
        self.meta.get(hostname)?.get(id).map(|m| &m.announcer)
    }

    /// Every record with its announcer.
    pub fn records(&self) -> impl Iterator<Item = Record> + '_ {
        self.state.services().map(|svc| Record {
            announcer: self
                .announcer_of(&svc.hostname, &svc.id)
                .cloned()
                .unwrap_or_else(|| Arc::from(svc.hostname.as_str())),
            service: svc.clone(),
        })
    }

    /// Records evidence that `announcer` is alive and still asserts its records (for us
    /// that is discovery working; for peers, membership). Lifespans restart from here.
    pub fn refresh_announcer(&mut self, announcer: &str, at: Mono) {
        match self.announcer_heard.get_mut(announcer) {
            Some(heard) => *heard = (*heard).max(at),
            None => {
                self.announcer_heard.insert(Arc::from(announcer), at);
            }
        }
    }

    /// Our estimate of `announcer`'s clock now: its newest stamp we stored, plus the time
    /// since on our own monotonic clock. `None` for an announcer we never stored from.
    pub(super) fn origin_now(&self, announcer: &str, now: Now) -> Option<Timestamp> {
        self.announcer_clock
            .get(announcer)
            .map(|(stamp, at)| stamp.saturating_add(now.mono.since(*at)))
    }

    /// Notes that a record stamped `stamp` from `announcer` was stored at `now`.
    pub(super) fn note_stamp(&mut self, announcer: &Arc<str>, stamp: Timestamp, now: Now) {
        let estimate = self.origin_now(announcer, now);
        if estimate.is_none_or(|e| stamp > e) {
            self.announcer_clock
                .insert(announcer.clone(), (stamp, now.mono));
        }
    }

    pub(super) fn intern(&self, announcer: &str) -> Arc<str> {
        if announcer == &*self.me {
            return self.me.clone();
        }
        self.announcer_heard
            .get_key_value(announcer)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| Arc::from(announcer))
    }
}
