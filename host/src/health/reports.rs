//! The last result of each local check, for `/api/checks.json` and the console: what
//! the log said about a failing check, where an operator looks first. Sidecar's
//! nine-key Service JSON stays as it is; this is a separate document.

use crate::discovery::ServiceKey;
use dashmap::DashMap;
use serde::Serialize;
use sidecar_catalog::{Status, Timestamp};
use std::sync::Arc;
use std::time::Duration;

/// What the last run of a check returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Scheduled, not run yet.
    Pending,
    Healthy,
    Unhealthy,
    /// The check could not run (plugin error, refused, unknown type).
    Error,
    /// It did not finish within `SIDECAR_HEALTH_TIMEOUT`.
    Timeout,
}

/// One local instance's check and its last result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    pub id: Arc<str>,
    pub name: String,
    #[serde(rename = "type")]
    pub check_type: String,
    pub args: String,
    pub result: Outcome,
    /// The status the results give the instance (`Alive`, `Unhealthy`, `Unknown`).
    #[serde(serialize_with = "status_name")]
    pub status: Status,
    pub message: String,
    /// When the last run finished (RFC 3339); `null` while pending.
    #[serde(serialize_with = "time_or_null")]
    pub time: Option<Timestamp>,
    /// How long the last run took, in milliseconds.
    pub duration_ms: f64,
}

fn status_name<S: serde::Serializer>(s: &Status, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.as_str())
}

fn time_or_null<S: serde::Serializer>(t: &Option<Timestamp>, ser: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => ser.serialize_str(&t.to_rfc3339()),
        None => ser.serialize_none(),
    }
}

/// Reports by service, written by the scheduler as results arrive and read by the API
/// on request (no copy per result).
#[derive(Debug, Default, Clone)]
pub struct CheckReports(Arc<DashMap<ServiceKey, CheckReport>>);

impl CheckReports {
    pub fn set(&self, key: ServiceKey, report: CheckReport) {
        self.0.insert(key, report);
    }

    /// Updates the report of `key`, if it has one.
    pub fn update(&self, key: &ServiceKey, f: impl FnOnce(&mut CheckReport)) {
        if let Some(mut r) = self.0.get_mut(key) {
            f(&mut r);
        }
    }

    pub fn retain(&self, keep: impl Fn(&ServiceKey) -> bool) {
        self.0.retain(|k, _| keep(k));
    }

    /// Every report, by name then ID.
    pub fn list(&self) -> Vec<CheckReport> {
        let mut out: Vec<CheckReport> = self.0.iter().map(|e| e.value().clone()).collect();
        out.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        out
    }

    /// The report of the instance with this ID, if it is local.
    pub fn get(&self, id: &str) -> Option<CheckReport> {
        self.0
            .iter()
            .find(|e| &*e.key().id == id)
            .map(|e| e.value().clone())
    }
}

/// Milliseconds with microsecond precision.
pub fn millis(d: Duration) -> f64 {
    (d.as_micros() as f64) / 1000.0
}
