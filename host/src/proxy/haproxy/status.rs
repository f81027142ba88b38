//! What the HAProxy driver reports: the last good config, the last error, counters.
//! Shared with the HTTP API (`/api/proxy.json`) and `/metrics`.

use crate::metrics::{encode_counter, encode_gauge};
use crate::proxy::validate::{Kind, Quarantined};
use parking_lot::Mutex;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use serde::Serialize;
use sidecar_catalog::Timestamp;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Delivered {
    /// Content hash of the config file (xxh3, hex).
    pub version: String,
    /// RFC 3339.
    pub at: String,
    /// How it was applied: `started`, `reloaded`, `command`, `unchanged`.
    pub how: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Failure {
    /// `emit`, `verify`, `write` or `reload`.
    pub stage: String,
    pub message: String,
    pub at: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct HaproxyState {
    pub config_file: String,
    /// The config HAProxy is running (last verified and reloaded).
    pub last_good: Option<Delivered>,
    /// The last failure; cleared by the next successful delivery.
    pub last_error: Option<Failure>,
    pub master_pid: Option<u32>,
}

#[derive(Debug, Default)]
pub struct HaproxyCounters {
    /// Emitter calls.
    pub renders: AtomicU64,
    pub emit_errors: AtomicU64,
    pub verify_failures: AtomicU64,
    pub write_failures: AtomicU64,
    pub reloads: AtomicU64,
    pub reload_failures: AtomicU64,
    /// Server changes applied through the runtime API (no reload).
    pub runtime_updates: AtomicU64,
    /// Renders identical to the running config (nothing to do).
    pub unchanged: AtomicU64,
    /// Live files restored after a reload failed.
    pub rollbacks: AtomicU64,
    /// Changes whose candidate failed and were searched for the instances to blame.
    pub bisections: AtomicU64,
    /// `haproxy -c` runs of those searches.
    pub bisect_verify_runs: AtomicU64,
    /// Instances put in quarantine, by [`Kind`] (in `Kind::ALL` order).
    pub quarantines: [AtomicU64; 3],
}

impl HaproxyCounters {
    pub fn quarantine(&self, kind: Kind) -> &AtomicU64 {
        &self.quarantines[kind as usize]
    }
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Default)]
pub struct HaproxyStatus {
    state: Mutex<HaproxyState>,
    quarantined: Mutex<Vec<Quarantined>>,
    pub counters: HaproxyCounters,
}

impl HaproxyStatus {
    pub fn new(config_file: &str) -> Self {
        HaproxyStatus {
            state: Mutex::new(HaproxyState {
                config_file: config_file.to_string(),
                ..HaproxyState::default()
            }),
            quarantined: Mutex::default(),
            counters: HaproxyCounters::default(),
        }
    }

    pub fn state(&self) -> HaproxyState {
        self.state.lock().clone()
    }

    /// The instances out of the config now, with their reasons.
    pub fn quarantined(&self) -> Vec<Quarantined> {
        self.quarantined.lock().clone()
    }

    pub fn set_quarantined(&self, list: Vec<Quarantined>) {
        *self.quarantined.lock() = list;
    }

    /// Logs and counts an instance that just entered quarantine.
    pub fn quarantined_now(&self, q: &Quarantined) {
        self.counters
            .quarantine(q.kind)
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            id = %q.id,
            service = %q.service,
            host = %q.host,
            kind = q.kind.as_str(),
            "instance left out of haproxy.cfg: {}",
            q.reason
        );
    }

    pub fn delivered(&self, version: String, how: &str, master_pid: Option<u32>) {
        let mut s = self.state.lock();
        s.last_good = Some(Delivered {
            version,
            at: Timestamp::now().to_rfc3339(),
            how: how.to_string(),
        });
        s.last_error = None;
        if master_pid.is_some() {
            s.master_pid = master_pid;
        }
    }

    pub fn failed(&self, stage: &str, message: String) {
        let counter = match stage {
            "emit" => &self.counters.emit_errors,
            "verify" => &self.counters.verify_failures,
            "write" => &self.counters.write_failures,
            _ => &self.counters.reload_failures,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            stage,
            "HAProxy config not applied, the last good one keeps serving: {message}"
        );
        self.state.lock().last_error = Some(Failure {
            stage: stage.to_string(),
            message,
            at: Timestamp::now().to_rfc3339(),
        });
    }

    /// The `sidecar_haproxy_*` families (the proxy status collector calls this at
    /// scrape time).
    pub fn encode_metrics(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let c = &self.counters;
        for (name, help, v) in [
            ("renders", "Emitter calls for HAProxy.", &c.renders),
            (
                "emit_errors",
                "Emitter failures (last good config kept).",
                &c.emit_errors,
            ),
            (
                "verify_failures",
                "Candidate configs that failed haproxy -c.",
                &c.verify_failures,
            ),
            (
                "write_failures",
                "Config files that could not be written.",
                &c.write_failures,
            ),
            (
                "reloads",
                "Successful HAProxy starts and reloads.",
                &c.reloads,
            ),
            (
                "reload_failures",
                "Failed HAProxy reloads.",
                &c.reload_failures,
            ),
            (
                "unchanged",
                "Renders identical to the running config.",
                &c.unchanged,
            ),
            (
                "rollbacks",
                "Live config files restored after a failed reload.",
                &c.rollbacks,
            ),
            (
                "bisections",
                "Failed candidates searched for the instances to blame.",
                &c.bisections,
            ),
            (
                "bisect_verify_runs",
                "haproxy -c runs made by those searches.",
                &c.bisect_verify_runs,
            ),
        ] {
            encode_counter(
                encoder,
                &format!("sidecar_haproxy_{name}"),
                help,
                v.load(Ordering::Relaxed),
            )?;
        }
        {
            let mut family = encoder.encode_descriptor(
                "sidecar_haproxy_quarantines",
                "Instances put in quarantine (left out of haproxy.cfg), by reason: invalid record, rejected by haproxy -c, held back for lack of check budget.",
                None,
                MetricType::Counter,
            )?;
            for kind in Kind::ALL {
                let labels = ReasonLabel {
                    reason: kind.as_str(),
                };
                ConstCounter::new(c.quarantine(kind).load(Ordering::Relaxed))
                    .encode(family.encode_family(&labels)?)?;
            }
        }
        encode_gauge(
            encoder,
            "sidecar_haproxy_quarantined_instances",
            "Instances left out of haproxy.cfg now.",
            i64::try_from(self.quarantined.lock().len()).unwrap_or(i64::MAX),
        )?;
        let ok = self.state.lock().last_error.is_none();
        encode_gauge(
            encoder,
            "sidecar_haproxy_config_ok",
            "1 when the last delivery succeeded.",
            i64::from(ok),
        )
    }
}
