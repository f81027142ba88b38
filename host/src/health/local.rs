//! What the plugins' `local-services` import answers (check types `Ttl` and `Alias`):
//! the TTL reports services send about themselves (`PUT /api/services/{id}/ttl/{state}`)
//! and the status this host announces for each of its services.
//!
//! Only this host's services can report, so the reports are bounded by the services
//! this host runs; reports of services that went away are dropped once there are many.

use crate::shared_catalog::SharedCatalog;
use dashmap::DashMap;
use sidecar_catalog::Status;
use sidecar_plugin_host::{LocalServices, TtlReport, TtlState};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// Longest note kept with a report, in bytes.
pub const NOTE_MAX: usize = 1024;

/// Reports kept before those of services no longer local are dropped.
const PRUNE_AT: usize = 4096;

#[derive(Debug)]
struct Stored {
    state: TtlState,
    note: String,
    at: Instant,
}

/// The daemon's [`LocalServices`]; created before the plugins load, attached to the
/// catalog once it exists.
#[derive(Default)]
pub struct LocalState {
    ttl: DashMap<String, Stored>,
    catalog: OnceLock<Arc<SharedCatalog>>,
}

impl LocalState {
    pub fn attach(&self, catalog: Arc<SharedCatalog>) {
        let _ = self.catalog.set(catalog);
    }

    /// Records a TTL report of the local service `id`; returns its name, or None when no
    /// local service has that ID (nothing is stored).
    pub fn report(&self, id: &str, state: TtlState, note: &str) -> Option<String> {
        let (name, _) = self.local(id)?;
        let note = note.trim();
        let note = note[..note.floor_char_boundary(NOTE_MAX)].to_string();
        let previous = self.ttl.insert(
            id.to_string(),
            Stored {
                state,
                note,
                at: Instant::now(),
            },
        );
        if previous.is_none_or(|p| p.state != state) {
            tracing::info!(%id, %name, state = state.as_str(), "TTL report");
        }
        if self.ttl.len() > PRUNE_AT {
            self.ttl.retain(|id, _| self.local(id).is_some());
        }
        Some(name)
    }

    /// (name, announced status) of this host's service with this ID.
    fn local(&self, id: &str) -> Option<(String, Status)> {
        let catalog = self.catalog.get()?;
        catalog.read(|c| {
            let me = c.hostname().to_string();
            c.state()
                .get(&me, id)
                .or_else(|| {
                    // A service this host announces under another host's name (static.json).
                    c.state().services().find(|s| {
                        s.id == id
                            && c.announcer_of(&s.hostname, &s.id)
                                .is_some_and(|a| **a == *me)
                    })
                })
                .map(|s| (s.name.clone(), s.status))
        })
    }
}

impl std::fmt::Debug for LocalState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalState")
            .field("ttl_reports", &self.ttl.len())
            .field("attached", &self.catalog.get().is_some())
            .finish()
    }
}

impl LocalServices for LocalState {
    fn ttl_report(&self, id: &str) -> Option<TtlReport> {
        self.ttl.get(id).map(|r| TtlReport {
            state: r.state,
            note: r.note.clone(),
            age: r.at.elapsed(),
        })
    }

    fn status(&self, id: &str) -> Option<Status> {
        self.local(id).map(|(_, status)| status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidecar_catalog::{Catalog, Service};

    #[test]
    fn only_local_services_report_and_statuses_come_from_the_catalog() {
        let (catalog, _outbound) = SharedCatalog::new(Catalog::new("me", "default"));
        let state = LocalState::default();
        assert_eq!(
            state.report("a1", TtlState::Pass, ""),
            None,
            "no catalog yet"
        );
        state.attach(catalog.clone());
        catalog.sync_local(vec![Service {
            id: "a1".into(),
            name: "web".into(),
            hostname: "me".into(),
            status: Status::Unhealthy,
            ..Service::default()
        }]);
        assert_eq!(state.status("a1"), Some(Status::Unhealthy));
        assert_eq!(state.status("zz"), None);
        assert_eq!(state.report("zz", TtlState::Pass, "x"), None);
        assert!(state.ttl_report("zz").is_none());
        let long = "n".repeat(NOTE_MAX * 2);
        assert_eq!(
            state.report("a1", TtlState::Warn, &long).as_deref(),
            Some("web")
        );
        let r = state.ttl_report("a1").expect("stored");
        assert_eq!((r.state, r.note.len()), (TtlState::Warn, NOTE_MAX));
    }
}
