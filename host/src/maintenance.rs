//! Node maintenance mode: while it is on, every local service is announced DRAINING
//! (proxies everywhere stop sending new traffic here) and it stays on across a restart
//! of the daemon, kept in `maintenance.json` in the state directory, so a host being
//! worked on does not rejoin routing because the daemon was restarted.

use crate::shared_catalog::SharedCatalog;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sidecar_catalog::Timestamp;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What `GET /api/maintenance` returns and the state file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceState {
    pub enabled: bool,
    #[serde(default)]
    pub reason: String,
    /// When it was turned on (RFC 3339).
    #[serde(default)]
    pub since: Option<String>,
}

/// The switch: the catalog's maintenance flag plus the state file.
pub struct Maintenance {
    file: Option<PathBuf>,
    state: Mutex<MaintenanceState>,
    catalog: Arc<SharedCatalog>,
}

/// The longest reason kept (a reason is for people; a megabyte of it is an attack).
pub const MAX_REASON: usize = 1024;

impl Maintenance {
    /// Restores the state kept in `state_dir` (a broken file is reported and ignored)
    /// and applies it to the catalog, before local services are first announced.
    pub fn restore(state_dir: Option<&Path>, catalog: Arc<SharedCatalog>) -> Arc<Self> {
        let file = state_dir.map(|d| d.join("maintenance.json"));
        let state = file.as_deref().map(read).unwrap_or_default();
        if state.enabled {
            tracing::warn!(reason = %state.reason, since = ?state.since, "node maintenance is on (kept from before the restart): local services are DRAINING");
            catalog.set_maintenance(true);
        }
        Arc::new(Maintenance {
            file,
            state: Mutex::new(state),
            catalog,
        })
    }

    pub fn state(&self) -> MaintenanceState {
        self.state.lock().clone()
    }

    /// Turns maintenance on (with a reason) or off. The state file is written first: a
    /// switch that could not be kept is refused rather than silently lost at the next
    /// restart.
    pub fn set(&self, enabled: bool, reason: &str) -> Result<MaintenanceState, String> {
        let mut reason: String = reason.chars().filter(|c| !c.is_control()).collect();
        if reason.len() > MAX_REASON {
            let mut end = MAX_REASON;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
        }
        let mut guard = self.state.lock();
        let next = if enabled {
            MaintenanceState {
                enabled: true,
                reason,
                since: if guard.enabled {
                    guard.since.clone()
                } else {
                    Some(Timestamp::now().to_rfc3339())
                },
            }
        } else {
            MaintenanceState::default()
        };
        if let Some(file) = &self.file {
            write(file, &next).map_err(|e| {
                format!(
                    "cannot keep the maintenance state in {}: {e}",
                    file.display()
                )
            })?;
        }
        if next.enabled != guard.enabled {
            tracing::warn!(enabled = next.enabled, reason = %next.reason, "node maintenance {}", if next.enabled { "on: local services are DRAINING" } else { "off" });
        }
        self.catalog.set_maintenance(next.enabled);
        *guard = next.clone();
        Ok(next)
    }
}

fn read(file: &Path) -> MaintenanceState {
    match std::fs::read(file) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::error!(file = %file.display(), "ignoring a broken maintenance state file: {e}");
            MaintenanceState::default()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => MaintenanceState::default(),
        Err(e) => {
            tracing::error!(file = %file.display(), "cannot read the maintenance state file: {e}");
            MaintenanceState::default()
        }
    }
}

/// Writes through a temporary file and a rename, so a crash leaves the old or the new
/// state, never half of one.
fn write(file: &Path, state: &MaintenanceState) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = file.with_extension("json.tmp");
    let body = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, body)?;
    std::fs::rename(&tmp, file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_switch_survives_a_restart_and_a_broken_file_is_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (catalog, _rx) = SharedCatalog::with_defaults("me", "default");
        let m = Maintenance::restore(Some(dir.path()), catalog.clone());
        assert!(!m.state().enabled);
        let on = m.set(true, "kernel upgrade\n").expect("on");
        assert_eq!(on.reason, "kernel upgrade");
        assert!(on.since.is_some());
        assert!(catalog.maintenance());

        let (catalog2, _rx2) = SharedCatalog::with_defaults("me", "default");
        let again = Maintenance::restore(Some(dir.path()), catalog2.clone());
        assert_eq!(again.state(), on, "kept across a restart");
        assert!(
            catalog2.maintenance(),
            "applied before anything is announced"
        );

        again.set(false, "").expect("off");
        let (catalog3, _rx3) = SharedCatalog::with_defaults("me", "default");
        assert!(
            !Maintenance::restore(Some(dir.path()), catalog3)
                .state()
                .enabled
        );

        std::fs::write(dir.path().join("maintenance.json"), "{not json").expect("write");
        let (catalog4, _rx4) = SharedCatalog::with_defaults("me", "default");
        assert!(
            !Maintenance::restore(Some(dir.path()), catalog4)
                .state()
                .enabled
        );
    }

    #[test]
    fn an_unwritable_state_dir_refuses_the_switch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").expect("write");
        let (catalog, _rx) = SharedCatalog::with_defaults("me", "default");
        let m = Maintenance::restore(Some(&blocker.join("sub")), catalog.clone());
        assert!(m.set(true, "x").is_err());
        assert!(!catalog.maintenance(), "nothing changed");
    }
}
