//! What the check scheduler records: latency and results per check type.

use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Upper bounds (seconds) of the latency buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabel {
    r#type: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    r#type: String,
    result: &'static str,
}

/// A local service whose check names a type nobody registered.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UnknownTypeLabels {
    id: String,
    service: String,
    r#type: String,
}

/// Longest label value taken from a service (names and types come from labels anyone
/// starting a container writes).
const LABEL_MAX: usize = 128;

fn label(s: &str) -> String {
    s[..s.floor_char_boundary(LABEL_MAX)].to_string()
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// One check type's series, looked up by `&str` so that a check run allocates nothing
/// once its type and result have been seen.
struct Series {
    latency: Histogram,
    results: Vec<(&'static str, Counter)>,
}

pub struct HealthMetrics {
    latency: Family<TypeLabel, Histogram, fn() -> Histogram>,
    results: Family<ResultLabels, Counter>,
    series: Mutex<HashMap<String, Series>>,
    /// One series per local service with an unknown check type, while it has one.
    unknown_types: Family<UnknownTypeLabels, Gauge>,
    unknown_shown: Mutex<HashSet<UnknownTypeLabels>>,
}

impl Default for HealthMetrics {
    fn default() -> Self {
        HealthMetrics {
            latency: Family::new_with_constructor(latency_histogram),
            results: Family::default(),
            series: Mutex::default(),
            unknown_types: Family::default(),
            unknown_shown: Mutex::default(),
        }
    }
}

impl std::fmt::Debug for HealthMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthMetrics").finish_non_exhaustive()
    }
}

impl HealthMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register_with_unit(
            "sidecar_check_duration",
            "Health check latency by check type",
            Unit::Seconds,
            self.latency.clone(),
        );
        registry.register(
            "sidecar_checks",
            "Health check results by check type and result",
            self.results.clone(),
        );
        registry.register(
            "sidecar_check_unknown_type",
            "Local services whose check names an unknown check type (1 per service; they stay UNKNOWN)",
            self.unknown_types.clone(),
        );
    }

    /// The local services (ID, name, check type) whose check type is unknown, now; the
    /// series of the others disappear.
    pub fn set_unknown_types<'a>(&self, now: impl Iterator<Item = (&'a str, &'a str, &'a str)>) {
        let now: HashSet<UnknownTypeLabels> = now
            .map(|(id, service, t)| UnknownTypeLabels {
                id: label(id),
                service: label(service),
                r#type: label(t),
            })
            .collect();
        let mut shown = self.unknown_shown.lock();
        if *shown == now {
            return;
        }
        for gone in shown.difference(&now) {
            self.unknown_types.remove(gone);
        }
        for l in &now {
            self.unknown_types.get_or_create(l).set(1);
        }
        *shown = now;
    }

    /// Called for every check run (`result`: healthy, unhealthy, error, timeout).
    pub fn check_done(&self, check_type: &str, took: Duration, result: &'static str) {
        let mut series = self.series.lock();
        if !series.contains_key(check_type) {
            let latency = self.latency.get_or_create_owned(&TypeLabel {
                r#type: check_type.to_string(),
            });
            series.insert(
                check_type.to_string(),
                Series {
                    latency,
                    results: Vec::with_capacity(4),
                },
            );
        }
        let Some(s) = series.get_mut(check_type) else {
            return;
        };
        s.latency.observe(took.as_secs_f64());
        match s.results.iter().find(|(r, _)| *r == result) {
            Some((_, n)) => {
                n.inc();
            }
            None => {
                let n = self.results.get_or_create_owned(&ResultLabels {
                    r#type: check_type.to_string(),
                    result,
                });
                n.inc();
                s.results.push((result, n));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{assert_lines, scrape};

    #[test]
    fn unknown_check_types_are_shown_while_they_last() {
        let m = HealthMetrics::default();
        m.set_unknown_types([("a1", "web", "Bogus"), ("b2", "db", "Nope")].into_iter());
        m.set_unknown_types([("a1", "web", "Bogus")].into_iter());
        let out = scrape(|r| m.register(r));
        assert_lines(
            &out,
            &["sidecar_check_unknown_type{id=\"a1\",service=\"web\",type=\"Bogus\"} 1"],
        );
        assert!(!out.contains("Nope"), "{out}");
        m.set_unknown_types(std::iter::empty());
        let out = scrape(|r| m.register(r));
        assert!(!out.contains("Bogus"), "{out}");
    }

    #[test]
    fn latency_and_results_are_recorded_per_check_type() {
        let m = HealthMetrics::default();
        m.check_done("HttpGet", Duration::from_millis(3), "healthy");
        m.check_done("HttpGet", Duration::from_secs(10), "timeout");
        m.check_done("HttpGet", Duration::from_millis(1), "healthy");
        m.check_done("a\"b", Duration::from_millis(1), "error");
        let out = scrape(|r| m.register(r));
        assert_lines(
            &out,
            &[
                "# HELP sidecar_check_duration_seconds Health check latency by check type.",
                "# TYPE sidecar_check_duration_seconds histogram",
                "sidecar_check_duration_seconds_bucket{type=\"HttpGet\",le=\"0.001\"} 1",
                "sidecar_check_duration_seconds_bucket{type=\"HttpGet\",le=\"0.005\"} 2",
                "sidecar_check_duration_seconds_bucket{type=\"HttpGet\",le=\"5\"} 2",
                "sidecar_check_duration_seconds_bucket{type=\"HttpGet\",le=\"+Inf\"} 3",
                "sidecar_check_duration_seconds_sum{type=\"HttpGet\"} 10.004",
                "sidecar_check_duration_seconds_count{type=\"HttpGet\"} 3",
                "# TYPE sidecar_checks_total counter",
                "sidecar_checks_total{type=\"HttpGet\",result=\"healthy\"} 2",
                "sidecar_checks_total{type=\"HttpGet\",result=\"timeout\"} 1",
                "sidecar_checks_total{type=\"a\\\"b\",result=\"error\"} 1",
            ],
        );
    }
}
