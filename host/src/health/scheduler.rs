//! Runs every local service's check on an interval, concurrently but bounded, and
//! publishes the resulting statuses for the announcer.
//!
//! Each check runs on its own schedule: a new service is checked as soon as discovery
//! reports it (Sidecar waited up to 3 s), then every `interval` after its previous run
//! finished. At most `concurrency` checks run at once and a check is never started
//! twice in parallel, so thousands of services (or a hung check) cannot pile up work.

use super::HealthMetrics;
use super::reports::{CheckReport, CheckReports, Outcome, millis};
use super::state::CheckState;
use super::{CheckRegistry, HealthConfig, ResolvedCheck, resolve};
use crate::discovery::{LocalView, ServiceKey};
use crate::metrics::PluginMetrics;
use sidecar_catalog::Status;
use sidecar_plugin_host::{CheckOutcome, CheckRequest, CheckStatus, HealthChecker, PluginError};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

/// Longest delay between a status change and its publication.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// How often freed heap pages are returned to the OS.
const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Current check status of every local service that has a result.
pub type Statuses = Arc<HashMap<ServiceKey, Status>>;

/// The checker a check runs on, resolved once per check (not per run).
type Runner = Option<(Arc<str>, Arc<dyn HealthChecker>)>;

struct Entry {
    check: ResolvedCheck,
    /// None: no check type of that name (the instance stays UNKNOWN).
    runner: Runner,
    /// A check that runs programs, asked for by a container without consent.
    denied: bool,
    name: String,
    /// Bumped when the check changes, so a late result of the old check is ignored.
    version: u64,
    state: CheckState,
    running: bool,
    due: Instant,
}

struct Done {
    key: ServiceKey,
    version: u64,
    /// The check type is unknown: nothing ran, the status goes back to UNKNOWN.
    unknown_type: bool,
    healthy: bool,
    message: String,
    outcome: Outcome,
    took: Duration,
}

pub struct Scheduler {
    pub config: HealthConfig,
    pub registry: CheckRegistry,
    pub host_ip: String,
    pub metrics: Arc<HealthMetrics>,
    /// Failed calls into check plugins.
    pub plugins: Arc<PluginMetrics>,
    /// Each check's last result, for the API.
    pub reports: CheckReports,
    /// Replacement check registries (a plugins.toml reload); `None`: fixed.
    pub updates: Option<watch::Receiver<CheckRegistry>>,
}

impl Scheduler {
    /// Runs until the discovery channel closes. Statuses go to `out`.
    pub async fn run(
        mut self,
        mut view: watch::Receiver<Option<Arc<LocalView>>>,
        out: watch::Sender<Statuses>,
    ) {
        let sem = Arc::new(Semaphore::new(self.config.concurrency));
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
        let mut entries: HashMap<ServiceKey, Entry> = HashMap::new();
        // Where each service is in the current view (no copy of the services).
        let mut current: Arc<LocalView> = Arc::default();
        let mut index: HashMap<ServiceKey, usize> = HashMap::new();
        // Checks by due time; an item is stale unless it matches its entry's `due`.
        let mut timers: BinaryHeap<Reverse<(Instant, ServiceKey)>> = BinaryHeap::new();
        // Due checks waiting for a concurrency permit, oldest first.
        let mut ready: VecDeque<ServiceKey> = VecDeque::new();
        let mut version = 0u64;
        let granularity =
            (self.config.interval / 10).clamp(Duration::from_millis(20), PUBLISH_EVERY);
        // Status changes are published in batches: a first round over thousands of
        // services must not copy the status map once per service.
        let mut dirty = false;
        let mut last_publish = Instant::now();
        let mut last_trim = Instant::now();
        let mut tick = tokio::time::interval(granularity);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut view_open = true;
        let mut updates = self.updates.take();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                Some(registry) = next_registry(&mut updates) => {
                    // Every check runs on the new set at once; results of runs on the
                    // old set that are still in flight are ignored (version bump).
                    self.registry = registry;
                    let now = Instant::now();
                    for (key, e) in entries.iter_mut() {
                        version += 1;
                        e.runner = self.runner_for(&e.check.check_type, e.denied, key, &e.name);
                        e.version = version;
                        e.running = false;
                        e.due = now;
                        timers.push(Reverse((now, key.clone())));
                    }
                    tracing::info!(checks = ?self.registry.names(), "health checks now run on the reloaded plugins");
                    self.count_unknown_types(&entries);
                }
                changed = view.changed(), if view_open => {
                    if changed.is_err() {
                        view_open = false;
                        continue;
                    }
                    let latest = view.borrow_and_update().clone();
                    let Some(latest) = latest else { continue };
                    let now = Instant::now();
                    index.clear();
                    for (i, l) in latest.services.iter().enumerate() {
                        let key = l.key();
                        let check = resolve(l.check.as_ref(), &l.service, &self.host_ip, &self.config.default_endpoint);
                        let denied = l.check_from_container
                            && !self.config.container_exec_checks
                            && self.registry.check_runs_programs(&check);
                        match entries.get_mut(&key) {
                            Some(e) if e.check == check => {}
                            Some(e) => {
                                self.reports.set(key.clone(), pending(&key, &l.service.name, &check, e.state.status));
                                version += 1;
                                e.runner = self.runner_for(&check.check_type, denied, &key, &l.service.name);
                                e.denied = denied;
                                e.name.clone_from(&l.service.name);
                                e.check = check;
                                e.version = version;
                                e.running = false;
                                e.due = now;
                                timers.push(Reverse((now, key.clone())));
                            }
                            None => {
                                version += 1;
                                self.reports.set(key.clone(), pending(&key, &l.service.name, &check, Status::Unknown));
                                entries.insert(key.clone(), Entry {
                                    runner: self.runner_for(&check.check_type, denied, &key, &l.service.name),
                                    denied,
                                    name: l.service.name.clone(),
                                    check,
                                    version,
                                    state: CheckState::default(),
                                    running: false,
                                    due: now,
                                });
                                timers.push(Reverse((now, key.clone())));
                            }
                        }
                        index.insert(key, i);
                    }
                    current = latest;
                    let before = entries.len();
                    entries.retain(|k, _| index.contains_key(k));
                    self.reports.retain(|k| index.contains_key(k));
                    dirty |= entries.len() != before;
                    self.count_unknown_types(&entries);
                }
                Some(done) = done_rx.recv() => {
                    if let Some(e) = entries.get_mut(&done.key)
                        && e.version == done.version
                    {
                        e.running = false;
                        e.due = Instant::now() + self.config.interval;
                        timers.push(Reverse((e.due, done.key.clone())));
                        let was = e.state.status;
                        let changed = if done.unknown_type {
                            e.state = CheckState::unknown(done.message);
                            was != Status::Unknown
                        } else {
                            e.state.record(done.healthy, done.message, self.config.rise, self.config.fall)
                        };
                        let state = &e.state;
                        self.reports.update(&done.key, |r| {
                            r.result = done.outcome;
                            r.status = state.status;
                            r.message.clone_from(&state.message);
                            r.time = Some(sidecar_catalog::Timestamp::now());
                            r.duration_ms = millis(done.took);
                        });
                        if changed {
                            tracing::info!(id = %done.key.id, check = %e.check.check_type, from = %was, to = %e.state.status, reason = %e.state.message, "health status changed");
                            dirty = true;
                        }
                    }
                }
            }
            let now = Instant::now();
            if now.duration_since(last_trim) >= TRIM_EVERY {
                // Thousands of short-lived check calls fragment the heap; give the
                // freed pages back so RSS tracks live data.
                crate::memory::trim_heap();
                last_trim = now;
            }
            if dirty && now.duration_since(last_publish) >= PUBLISH_EVERY {
                publish(&entries, &out);
                dirty = false;
                last_publish = now;
            }
            while let Some(Reverse((due, _))) = timers.peek() {
                if *due > now {
                    break;
                }
                let Some(Reverse((due, key))) = timers.pop() else {
                    break;
                };
                if entries
                    .get(&key)
                    .is_some_and(|e| e.due == due && !e.running)
                {
                    ready.push_back(key);
                }
            }
            while let Some(key) = ready.front() {
                let Some(e) = entries.get_mut(key) else {
                    ready.pop_front();
                    continue;
                };
                let Some(svc) = index.get(key).and_then(|i| current.services.get(*i)) else {
                    ready.pop_front();
                    continue;
                };
                let Ok(permit) = sem.clone().try_acquire_owned() else {
                    break;
                };
                e.running = true;
                self.spawn_check(key.clone(), e, svc.service.clone(), permit, done_tx.clone());
                ready.pop_front();
            }
        }
    }

    /// The runner; None (logged as an error naming the type and the service) for a type
    /// nobody registered.
    fn runner(&self, check_type: &str, key: &ServiceKey, name: &str) -> Runner {
        let runner = self
            .registry
            .get(check_type)
            .map(|(name, checker)| (Arc::from(name), checker));
        if runner.is_none() {
            tracing::error!(id = %key.id, name, check = check_type, known = ?self.registry.names(), "unknown health check type; the service stays UNKNOWN until its check names a known type");
        }
        runner
    }

    /// Publishes which services ask for an unknown check type (`/metrics`).
    fn count_unknown_types(&self, entries: &HashMap<ServiceKey, Entry>) {
        self.metrics.set_unknown_types(
            entries
                .iter()
                .filter(|(_, e)| e.runner.is_none())
                .map(|(k, e)| (&*k.id, e.name.as_str(), e.check.check_type.as_str())),
        );
    }

    /// The runner, or for a check that runs programs and came from a container's
    /// labels without the operator's consent, one that fails saying why.
    fn runner_for(&self, check_type: &str, denied: bool, key: &ServiceKey, name: &str) -> Runner {
        if !denied {
            return self.runner(check_type, key, name);
        }
        tracing::warn!(id = %key.id, name, check = check_type, "a container label asks for a check that runs programs; refused (set SIDECAR_CONTAINER_EXEC_CHECKS=true to allow it)");
        Some((Arc::from(check_type), Arc::new(DeniedCheck)))
    }

    fn spawn_check(
        &self,
        key: ServiceKey,
        e: &Entry,
        service: sidecar_catalog::Service,
        permit: OwnedSemaphorePermit,
        done: mpsc::UnboundedSender<Done>,
    ) {
        let check_type = e.check.check_type.clone();
        let name = e.name.clone();
        let known = if e.runner.is_none() {
            self.registry.names()
        } else {
            Vec::new()
        };
        let args = e.check.args.clone();
        let runner = e.runner.clone();
        let version = e.version;
        let timeout = self.config.timeout;
        let host_ip = self.host_ip.clone();
        let metrics = self.metrics.clone();
        let plugins = self.plugins.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let started = Instant::now();
            let unknown_type = runner.is_none();
            let (healthy, message, outcome) = match runner {
                None => (
                    false,
                    format!(
                        "unknown check type {check_type:?} for service {name:?} (known: {}); \
                         the service stays UNKNOWN",
                        known.join(", ")
                    ),
                    Outcome::Error,
                ),
                Some((type_name, checker)) => {
                    let req = CheckRequest {
                        service,
                        args,
                        timeout,
                        host_ip,
                    };
                    let res = tokio::time::timeout(timeout, checker.check(req)).await;
                    let took = started.elapsed();
                    match res {
                        Ok(Ok(o)) => {
                            let healthy = o.status == CheckStatus::Healthy;
                            metrics.check_done(
                                &type_name,
                                took,
                                if healthy { "healthy" } else { "unhealthy" },
                            );
                            let outcome = if healthy {
                                Outcome::Healthy
                            } else {
                                Outcome::Unhealthy
                            };
                            (healthy, o.message, outcome)
                        }
                        Ok(Err(err)) => {
                            metrics.check_done(&type_name, took, "error");
                            if !matches!(err, PluginError::Failed { .. }) {
                                plugins.error(err.plugin());
                            }
                            (false, err.to_string(), Outcome::Error)
                        }
                        Err(_) => {
                            metrics.check_done(&type_name, took, "timeout");
                            (false, "Timed out!".to_string(), Outcome::Timeout)
                        }
                    }
                }
            };
            let _ = done.send(Done {
                key,
                version,
                unknown_type,
                healthy,
                message,
                outcome,
                took: started.elapsed(),
            });
        });
    }
}

/// Stands in for a check a container may not have: always failing, saying why.
struct DeniedCheck;

#[async_trait::async_trait]
impl HealthChecker for DeniedCheck {
    async fn check(&self, _req: CheckRequest) -> Result<CheckOutcome, PluginError> {
        Ok(CheckOutcome {
            status: CheckStatus::Unhealthy,
            message: "check type runs programs and came from container labels; refused \
                      (SIDECAR_CONTAINER_EXEC_CHECKS=true allows it)"
                .into(),
        })
    }
}

/// The next registry from `updates`; pending forever without one (or once closed).
async fn next_registry(
    updates: &mut Option<watch::Receiver<CheckRegistry>>,
) -> Option<CheckRegistry> {
    let Some(rx) = updates else {
        return std::future::pending().await;
    };
    if rx.changed().await.is_err() {
        *updates = None;
        return std::future::pending().await;
    }
    Some(rx.borrow_and_update().clone())
}

/// The report of a check that has not run yet.
fn pending(key: &ServiceKey, name: &str, check: &ResolvedCheck, status: Status) -> CheckReport {
    CheckReport {
        id: key.id.clone(),
        name: name.to_string(),
        check_type: check.check_type.clone(),
        args: check.args.clone(),
        result: Outcome::Pending,
        status,
        message: String::new(),
        time: None,
        duration_ms: 0.0,
    }
}

fn publish(entries: &HashMap<ServiceKey, Entry>, out: &watch::Sender<Statuses>) {
    let map: HashMap<ServiceKey, Status> = entries
        .iter()
        .filter(|(_, e)| e.state.status != Status::Unknown)
        .map(|(k, e)| (k.clone(), e.state.status))
        .collect();
    out.send_replace(Arc::new(map));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::LocalService;
    use async_trait::async_trait;
    use sidecar_catalog::Service;
    use sidecar_plugin_host::{CheckOutcome, CheckSpec};
    use std::sync::atomic::{AtomicBool, Ordering};

    struct Switch(Arc<AtomicBool>);

    #[async_trait]
    impl HealthChecker for Switch {
        async fn check(&self, _req: CheckRequest) -> Result<CheckOutcome, PluginError> {
            Ok(CheckOutcome {
                status: if self.0.load(Ordering::SeqCst) {
                    CheckStatus::Healthy
                } else {
                    CheckStatus::Unhealthy
                },
                message: String::new(),
            })
        }
    }

    /// A scheduler checking every 50 ms: the view to feed it and the statuses it publishes.
    fn start(
        registry: CheckRegistry,
        container_exec_checks: bool,
    ) -> (
        watch::Sender<Option<Arc<LocalView>>>,
        watch::Receiver<Statuses>,
    ) {
        let sched = Scheduler {
            config: HealthConfig {
                interval: Duration::from_millis(50),
                timeout: Duration::from_millis(50),
                container_exec_checks,
                ..HealthConfig::default()
            },
            registry,
            host_ip: "127.0.0.1".into(),
            metrics: Arc::default(),
            plugins: Arc::default(),
            reports: CheckReports::default(),
            updates: None,
        };
        let (view_tx, view_rx) = watch::channel(None);
        let (out_tx, out_rx) = watch::channel(Statuses::default());
        tokio::spawn(sched.run(view_rx, out_tx));
        (view_tx, out_rx)
    }

    #[tokio::test]
    async fn statuses_follow_check_results() {
        let healthy = Arc::new(AtomicBool::new(true));
        let mut registry = CheckRegistry::default();
        registry.insert("Switch", Arc::new(Switch(healthy.clone())));
        let (view_tx, mut out_rx) = start(registry, false);
        let local = LocalService {
            service: Service {
                id: "a".into(),
                hostname: "me".into(),
                ..Service::default()
            },
            check: Some(CheckSpec {
                check_type: "Switch".into(),
                args: String::new(),
            }),
            check_from_container: false,
            listener: None,
            sidecar_proxy: None,
        };
        let key = local.key();
        view_tx.send_replace(Some(Arc::new(LocalView {
            services: Arc::new(vec![local]),
            sources: vec![],
        })));
        out_rx
            .wait_for(|s| s.get(&key) == Some(&Status::Alive))
            .await
            .expect("alive");
        healthy.store(false, Ordering::SeqCst);
        out_rx
            .wait_for(|s| s.get(&key) == Some(&Status::Unhealthy))
            .await
            .expect("unhealthy");
        view_tx.send_replace(Some(Arc::new(LocalView::default())));
        out_rx.wait_for(|s| s.is_empty()).await.expect("forgotten");
    }

    /// A check type nobody registered: never run as anything else, the service stays
    /// UNKNOWN (no status published), the report says why and the metric names it.
    #[tokio::test]
    async fn unknown_check_types_leave_the_service_unknown() {
        let mut registry = CheckRegistry::default();
        registry.insert("Switch", Arc::new(Switch(Arc::new(AtomicBool::new(true)))));
        let reports = CheckReports::default();
        let metrics = Arc::new(HealthMetrics::default());
        let sched = Scheduler {
            config: HealthConfig {
                interval: Duration::from_millis(50),
                timeout: Duration::from_millis(50),
                ..HealthConfig::default()
            },
            registry,
            host_ip: "127.0.0.1".into(),
            metrics: metrics.clone(),
            plugins: Arc::default(),
            reports: reports.clone(),
            updates: None,
        };
        let (view_tx, view_rx) = watch::channel(None);
        let (out_tx, mut out_rx) = watch::channel(Statuses::default());
        tokio::spawn(sched.run(view_rx, out_tx));
        let local = |id: &str, check_type: &str| LocalService {
            service: Service {
                id: id.into(),
                name: format!("{id}-svc"),
                hostname: "me".into(),
                ..Service::default()
            },
            check: Some(CheckSpec {
                check_type: check_type.into(),
                args: "x".into(),
            }),
            check_from_container: false,
            listener: None,
            sidecar_proxy: None,
        };
        let (odd, fine) = (local("odd", "Bogus"), local("fine", "switch"));
        let (ok, fk) = (odd.key(), fine.key());
        view_tx.send_replace(Some(Arc::new(LocalView {
            services: Arc::new(vec![odd, fine]),
            sources: vec![],
        })));
        out_rx
            .wait_for(|s| s.get(&fk) == Some(&Status::Alive))
            .await
            .expect("the known type (any case) runs");
        loop {
            if let Some(r) = reports.get("odd")
                && r.result == Outcome::Error
            {
                assert_eq!(r.status, Status::Unknown);
                assert!(
                    r.message.contains("unknown check type \"Bogus\"")
                        && r.message.contains("odd-svc")
                        && r.message.contains("Switch"),
                    "{}",
                    r.message
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!out_rx.borrow().contains_key(&ok), "never published");
        let scraped = crate::metrics::scrape(|r| metrics.register(r));
        assert!(
            scraped.contains(
                "sidecar_check_unknown_type{id=\"odd\",service=\"odd-svc\",type=\"Bogus\"} 1"
            ),
            "{scraped}"
        );
    }

    /// A check that runs programs, asked for by a container's labels: refused unless
    /// the operator allows it; the same check from the operator's own file runs.
    #[tokio::test]
    async fn container_labels_get_no_exec_check_unless_allowed() {
        for allowed in [false, true] {
            let mut registry = CheckRegistry::default();
            registry.insert(
                "External",
                Arc::new(Switch(Arc::new(AtomicBool::new(true)))),
            );
            let registry = registry.with_exec_types(["External".to_string()]);
            let (view_tx, mut out_rx) = start(registry, allowed);
            let local = |id: &str, from_container: bool| LocalService {
                service: Service {
                    id: id.into(),
                    hostname: "me".into(),
                    ..Service::default()
                },
                check: Some(CheckSpec {
                    check_type: "external".into(),
                    args: "true".into(),
                }),
                check_from_container: from_container,
                listener: None,
                sidecar_proxy: None,
            };
            let (labels, file) = (local("labels", true), local("file", false));
            let (lk, fk) = (labels.key(), file.key());
            view_tx.send_replace(Some(Arc::new(LocalView {
                services: Arc::new(vec![labels, file]),
                sources: vec![],
            })));
            let s = out_rx
                .wait_for(|s| s.len() == 2)
                .await
                .expect("both checked")
                .clone();
            assert_eq!(
                s.get(&fk),
                Some(&Status::Alive),
                "the operator's check runs"
            );
            let want = if allowed {
                Status::Alive
            } else {
                Status::Unhealthy
            };
            assert_eq!(s.get(&lk), Some(&want), "allowed: {allowed}");
        }
    }
}
