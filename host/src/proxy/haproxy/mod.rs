//! The HAProxy driver: catalog snapshots -> emitter -> verified haproxy.cfg -> reload.
//!
//! Per change burst: the emitter renders the whole file; if it equals the running
//! config nothing happens. Otherwise the candidate is written next to the live file and
//! checked (`haproxy -c`); only a passing candidate is renamed over the live file, and
//! HAProxy is reloaded. A failed check leaves the live file and HAProxy untouched; a
//! reload HAProxy refuses restores the previous file. Reloads are at least
//! `HAPROXY_MIN_RELOAD_INTERVAL` apart; whatever changes meanwhile is coalesced.
//!
//! One bad instance must not freeze HAProxy: records are checked one by one before the
//! emitter sees them, and when `haproxy -c` refuses a candidate anyway the instances to
//! blame are found by bisection, quarantined, and the config without them goes live.

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
use crate::proxy::validate::{Bisect, Quarantine, Rules};
use crate::shared_catalog::{SharedCatalog, Snapshot};
use sidecar_catalog::Timestamp;
use sidecar_plugin_host::{EmitRequest, Emitted, ProxyEmitter};
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
    /// Instances left out of the config, and why.
    quarantine: Quarantine,
    rules: Rules,
}

impl HaproxyDriver {
    pub fn new(
        cfg: HaproxyConfig,
        emitter: Arc<dyn ProxyEmitter>,
        status: Arc<HaproxyStatus>,
    ) -> Self {
        let last_good = write::read_live(&cfg.config_file);
        let rules = Rules {
            use_hostnames: cfg.use_hostnames,
        };
        HaproxyDriver {
            quarantine: Quarantine::default(),
            rules,
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
        self.deliver_request(feed::emit_request(snap)).await
    }

    /// Screens the records (invalid and rejected instances stay out, see
    /// [`validate`](crate::proxy::validate)), renders the rest and applies it.
    pub async fn deliver_request(&mut self, req: EmitRequest) -> Applied {
        let EmitRequest {
            services,
            hostname,
            cluster_name,
            sidecar_proxies,
        } = req;
        let now = Timestamp::now().to_rfc3339();
        let screened = self.quarantine.screen(services, &self.rules, &now);
        for q in &screened.newly {
            self.status.quarantined_now(q);
        }
        let req = EmitRequest {
            services: screened.admitted,
            hostname,
            cluster_name,
            sidecar_proxies,
        };
        let applied = match self.render(&req).await {
            Ok(text) => self.install(text, Some(&req)).await,
            Err(message) if req.services.is_empty() => {
                self.status.failed("emit", message);
                Applied::Done
            }
            // A template can fail on one record's data: search like a refused config.
            Err(message) => self.search(&req, "emit", message.clone(), message).await,
        };
        self.status.set_quarantined(self.quarantine.list());
        applied
    }

    /// One emitter call.
    async fn render(&self, req: &EmitRequest) -> Result<String, String> {
        self.status.counters.renders.fetch_add(1, Ordering::Relaxed);
        match self.emitter.emit(req.clone()).await {
            Ok(Emitted::ConfigFile(text)) => Ok(text),
            Ok(Emitted::Xds(_)) => {
                Err("the emitter returned xDS resources, not a config file".into())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Verifies and installs `text` unless it is what HAProxy already runs, then makes
    /// it live: through the runtime API when only servers changed, else by a reload
    /// (deferred while the last reload is more recent than the minimum interval).
    pub async fn apply(&mut self, text: String) -> Applied {
        self.install(text, None).await
    }

    /// [`apply`](Self::apply); when the candidate fails `haproxy -c` and `instances`
    /// (what it was rendered from) is given, the instances to blame are searched for,
    /// quarantined, and the config without them is applied instead.
    async fn install(&mut self, text: String, instances: Option<&EmitRequest>) -> Applied {
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
            return match instances {
                Some(req) if !req.services.is_empty() => {
                    self.search(req, "verify", e.to_string(), refusal(&e)).await
                }
                _ => {
                    self.status.failed("verify", e.to_string());
                    Applied::Done
                }
            };
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

impl HaproxyDriver {
    /// The render of `req` failed at `stage` (`emit` or `verify`): finds the instances
    /// to blame with at most `HAPROXY_MAX_VERIFY_RUNS` renders and checks
    /// ([`Bisect`]), quarantines them and applies the largest accepted set. When even
    /// a config without instances fails (a broken template), nobody is blamed and the
    /// last good config stays. Instances the budget did not reach are held back and the
    /// delivery is retried after `HAPROXY_MIN_RELOAD_INTERVAL`.
    /// `message` is the full error (for the status), `reason` its short form (for the
    /// quarantine).
    async fn search(
        &mut self,
        req: &EmitRequest,
        stage: &'static str,
        message: String,
        reason: String,
    ) -> Applied {
        tracing::warn!(
            stage,
            instances = req.services.len(),
            "HAProxy candidate refused, searching for the instances to blame: {message}"
        );
        self.status
            .counters
            .bisections
            .fetch_add(1, Ordering::Relaxed);
        let mut search = Bisect::new(req.services.len(), self.cfg.max_verify_runs, reason);
        while let Some(probe) = search.next_probe() {
            let subset = EmitRequest {
                services: probe.iter().map(|&i| req.services[i].clone()).collect(),
                hostname: req.hostname.clone(),
                cluster_name: req.cluster_name.clone(),
                // Every probe keeps the proxies: the search is over catalog records.
                sidecar_proxies: req.sidecar_proxies.clone(),
            };
            let outcome = self.probe(&subset).await;
            search.report(outcome);
        }
        self.status
            .counters
            .bisect_verify_runs
            .fetch_add(search.runs() as u64, Ordering::Relaxed);
        if let Some(base) = search.base_failure() {
            tracing::warn!("a config without any instance fails too: {base}");
            self.status.failed(stage, message);
            return Applied::Done;
        }
        let counter = match stage {
            "emit" => &self.status.counters.emit_errors,
            _ => &self.status.counters.verify_failures,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let now = Timestamp::now().to_rfc3339();
        for (i, reason) in search.culprits() {
            let q = self
                .quarantine
                .reject(&req.services[*i], reason.clone(), &now);
            self.status.quarantined_now(&q);
        }
        let held = search.untested().to_vec();
        for i in &held {
            let q = self.quarantine.hold_back(
                &req.services[*i],
                format!(
                    "not checked yet: HAPROXY_MAX_VERIFY_RUNS ({}) ran out on other refusals; retried shortly",
                    self.cfg.max_verify_runs
                ),
                &now,
            );
            self.status.quarantined_now(&q);
        }
        let (_, text) = search.accepted();
        let Some(text) = text else {
            return Applied::Done;
        };
        let applied = Box::pin(self.install(text, None)).await;
        if held.is_empty() || applied != Applied::Done {
            return applied;
        }
        Applied::Deferred(Instant::now() + self.cfg.min_reload_interval.max(RETRY_HELD_BACK))
    }

    /// Renders and checks one subset; `Ok` carries the accepted text.
    async fn probe(&self, req: &EmitRequest) -> Result<String, String> {
        let text = self.render(req).await?;
        let candidate = write::candidate_path(&self.cfg.config_file);
        write::write_synced(&candidate, &text)
            .map_err(|e| format!("{}: {e}", candidate.display()))?;
        let verdict = verify::verify(&self.cfg, &candidate).await;
        let _ = std::fs::remove_file(&candidate);
        verdict.map_err(|e| refusal(&e))?;
        Ok(text)
    }
}

/// The shortest wait before held-back instances are tried again.
const RETRY_HELD_BACK: Duration = Duration::from_millis(500);

/// A refusal as a quarantine reason: HAProxy's `[ALERT]` lines without their prefix
/// (the rest of its output is notices), else the whole message; at most 500 bytes.
fn refusal(e: &command::CommandError) -> String {
    let text = match e {
        command::CommandError::Failed { output, .. } if !output.trim().is_empty() => {
            let alerts: Vec<&str> = output
                .lines()
                .filter(|l| l.contains("[ALERT]"))
                .map(|l| l.split_once(") : ").map_or(l, |(_, rest)| rest).trim())
                .collect();
            if alerts.is_empty() {
                output.clone()
            } else {
                alerts.join("; ")
            }
        }
        other => other.to_string(),
    };
    sidecar_plugin_sdk::text::truncate_with(&text, 500, "...")
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
