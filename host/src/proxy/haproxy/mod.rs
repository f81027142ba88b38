//! The HAProxy driver: catalog snapshots -> emitter -> verified haproxy.cfg -> reload.
//!
//! Per change burst: the emitter renders the whole file; if it equals the running
//! config nothing happens. Otherwise the candidate is written next to the live file and
//! checked (`haproxy -c`); only a passing candidate is renamed over the live file, and
//! HAProxy is reloaded. A failed check leaves the live file and HAProxy untouched; a
//! reload HAProxy refuses restores the previous file. Reloads are at least
//! `HAPROXY_MIN_RELOAD_INTERVAL` apart; whatever changes meanwhile is coalesced.

pub mod command;
pub mod config;
pub mod master;
pub mod reload;
pub mod runtime;
pub mod socket;
pub mod status;
pub mod verify;
pub mod write;

pub use config::HaproxyConfig;
pub use status::HaproxyStatus;

use crate::proxy::feed::{self, Debounce, Readiness};
use crate::shared_catalog::{SharedCatalog, Snapshot};
use sidecar_plugin_host::{Emitted, ProxyEmitter};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;

/// 30 ms of quiet, 1 s at most: one render per discovery sweep or gossip burst.
pub const DEBOUNCE: Debounce = Debounce::new(Duration::from_millis(30), Duration::from_secs(1));

/// Content hash used as the config's version.
pub fn version_of(text: &str) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
}

pub struct HaproxyDriver {
    cfg: HaproxyConfig,
    emitter: Arc<dyn ProxyEmitter>,
    status: Arc<HaproxyStatus>,
    /// The config HAProxy runs (as far as we know): the live file at startup, then
    /// every delivered one.
    last_good: Option<String>,
    /// Whether we have applied anything since we started (a custom reload command
    /// gives us no way to tell whether HAProxy runs: reload once at startup, as Sidecar).
    applied_once: bool,
    last_reload: Option<Instant>,
    /// Servers removed through the runtime API but still present in maintenance.
    parked: std::collections::BTreeSet<String>,
}

impl HaproxyDriver {
    pub fn new(
        cfg: HaproxyConfig,
        emitter: Arc<dyn ProxyEmitter>,
        status: Arc<HaproxyStatus>,
    ) -> Self {
        let last_good = write::read_live(&cfg.config_file);
        HaproxyDriver {
            cfg,
            emitter,
            status,
            last_good,
            applied_once: false,
            last_reload: None,
            parked: Default::default(),
        }
    }

    /// Runs until the catalog goes away. Nothing is written before `ready`.
    pub async fn run(mut self, catalog: Arc<SharedCatalog>, mut ready: Readiness) {
        let mut snapshots = catalog.watch();
        if !feed::wait_ready(&mut ready).await {
            return;
        }
        tracing::info!(config = %self.cfg.config_file.display(), "HAProxy driver started");
        snapshots.borrow_and_update();
        let mut snap = catalog.snapshot();
        loop {
            if let Applied::Deferred(until) = self.deliver(&snap).await {
                // A reload is due but the last one was too recent: wait, then render
                // whatever the catalog holds by then (changes in between coalesce).
                tokio::time::sleep_until(until).await;
                snap = snapshots.borrow_and_update().clone();
                continue;
            }
            snap = match feed::next_change(&mut snapshots, DEBOUNCE).await {
                Some(s) => s,
                None => return,
            };
        }
    }

    /// Renders and applies one snapshot. Public for tests and tools.
    pub async fn deliver(&mut self, snap: &Snapshot) -> Applied {
        self.status.counters.renders.fetch_add(1, Ordering::Relaxed);
        let text = match self.emitter.emit(feed::emit_request(snap)).await {
            Ok(Emitted::ConfigFile(text)) => text,
            Ok(Emitted::Xds(_)) => {
                self.status.failed(
                    "emit",
                    "the emitter returned xDS resources, not a config file".into(),
                );
                return Applied::Done;
            }
            Err(e) => {
                self.status.failed("emit", e.to_string());
                return Applied::Done;
            }
        };
        self.apply(text).await
    }

    /// Verifies and installs `text` unless it is what HAProxy already runs, then makes
    /// it live: through the runtime API when only servers changed, else by a reload
    /// (deferred while the last reload is more recent than the minimum interval).
    pub async fn apply(&mut self, text: String) -> Applied {
        let version = version_of(&text);
        let running = self.cfg.reload_command.is_some() && self.applied_once
            || self.cfg.reload_command.is_none()
                && reload::running_master(&self.cfg.pid_file).is_some();
        if running && self.last_good.as_deref() == Some(text.as_str()) {
            self.status
                .counters
                .unchanged
                .fetch_add(1, Ordering::Relaxed);
            return Applied::Done;
        }
        let plan = match &self.last_good {
            Some(old) if running && self.cfg.runtime_api && self.cfg.stats_socket.exists() => {
                runtime::plan(old, &text, &self.parked)
            }
            _ => None,
        };
        if plan.is_none()
            && let Some(last) = self.last_reload
        {
            let earliest = last + self.cfg.min_reload_interval;
            if Instant::now() < earliest {
                return Applied::Deferred(earliest);
            }
        }
        let live = &self.cfg.config_file;
        let candidate = write::candidate_path(live);
        if let Err(e) = write::write_synced(&candidate, &text) {
            self.status
                .failed("write", format!("{}: {e}", candidate.display()));
            return Applied::Done;
        }
        if let Err(e) = verify::verify(&self.cfg, &candidate).await {
            let _ = std::fs::remove_file(&candidate);
            self.status.failed("verify", e.to_string());
            return Applied::Done;
        }
        if let Err(e) = write::install(&candidate, live) {
            let _ = std::fs::remove_file(&candidate);
            self.status
                .failed("write", format!("{}: {e}", live.display()));
            return Applied::Done;
        }
        if let Some(commands) = plan {
            match runtime::apply(&self.cfg.stats_socket, &commands, &mut self.parked).await {
                Ok(()) => {
                    self.status
                        .counters
                        .runtime_updates
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%version, commands = commands.len(), "HAProxy servers updated through the runtime API");
                    self.status.delivered(version, "runtime", None);
                    self.last_good = Some(text);
                    return Applied::Done;
                }
                Err(e) => {
                    tracing::warn!("runtime API update failed, reloading instead: {e}");
                }
            }
        }
        self.last_reload = Some(Instant::now());
        match reload::reload(&self.cfg).await {
            Ok(done) => {
                self.parked.clear();
                self.status.counters.reloads.fetch_add(1, Ordering::Relaxed);
                let (how, pid) = match &done {
                    reload::Reloaded::Started { master_pid } => ("started", Some(*master_pid)),
                    reload::Reloaded::Reloaded { master_pid, .. } => {
                        ("reloaded", Some(*master_pid))
                    }
                    reload::Reloaded::Command => ("command", None),
                };
                tracing::info!(%version, how, "HAProxy config applied");
                self.status.delivered(version, how, pid);
                self.last_good = Some(text);
                self.applied_once = true;
            }
            Err(e) => {
                // Keep the file HAProxy actually runs on disk, so the next reload by
                // anyone does not pick up a config HAProxy refused.
                if let Some(good) = &self.last_good
                    && write::replace(live, good).is_ok()
                {
                    self.status
                        .counters
                        .rollbacks
                        .fetch_add(1, Ordering::Relaxed);
                }
                self.status.failed("reload", e.to_string());
            }
        }
        Applied::Done
    }
}

/// What became of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Applied, refused or failed (see the status): wait for the next change.
    Done,
    /// A reload is needed but not before this instant.
    Deferred(Instant),
}

/// Starts the driver on its own task.
pub fn spawn(
    cfg: HaproxyConfig,
    emitter: Arc<dyn ProxyEmitter>,
    catalog: Arc<SharedCatalog>,
    ready: Readiness,
) -> (Arc<HaproxyStatus>, tokio::task::JoinHandle<()>) {
    let status = Arc::new(HaproxyStatus::new(&cfg.config_file.display().to_string()));
    let driver = HaproxyDriver::new(cfg, emitter, status.clone());
    let task = tokio::spawn(driver.run(catalog, ready));
    (status, task)
}

#[cfg(test)]
mod tests;
