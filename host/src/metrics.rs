//! Counters and histograms the daemon's parts record and `/metrics` renders in the
//! Prometheus text format. Hand-rolled: a few atomics and maps, no registry crate.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the latency buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// A latency histogram with fixed buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// Appends `name_bucket`, `name_sum`, `name_count` lines with `labels` (`k="v"`).
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {}",
                self.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(
            out,
            "{name}_sum{braces} {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// What the local side of the daemon records.
#[derive(Debug, Default)]
pub struct DaemonMetrics {
    /// Check latency by check type.
    pub check_latency: Mutex<BTreeMap<String, std::sync::Arc<Histogram>>>,
    /// Check results by (check type, result): healthy, unhealthy, error, timeout.
    pub check_results: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// Failed plugin calls by plugin name.
    pub plugin_errors: Mutex<BTreeMap<String, u64>>,
    /// Listener POSTs by outcome (`ok`, `failed`), and events dropped on full queues.
    pub listener_posts_ok: AtomicU64,
    pub listener_posts_failed: AtomicU64,
    pub listener_events_dropped: AtomicU64,
    /// Clients currently streaming `/api/watch`.
    pub watchers: AtomicU64,
}

impl DaemonMetrics {
    /// Called for every check run: allocates only the first time a type/result is seen.
    pub fn check_done(&self, check_type: &str, took: Duration, result: &'static str) {
        let h = {
            let mut map = self.check_latency.lock();
            match map.get(check_type) {
                Some(h) => h.clone(),
                None => map.entry(check_type.to_string()).or_default().clone(),
            }
        };
        h.observe(took);
        let mut results = self.check_results.lock();
        match results
            .iter_mut()
            .find(|((t, r), _)| t == check_type && *r == result)
        {
            Some((_, n)) => *n += 1,
            None => {
                results.insert((check_type.to_string(), result), 1);
            }
        }
    }

    pub fn plugin_error(&self, plugin: &str) {
        *self
            .plugin_errors
            .lock()
            .entry(plugin.to_string())
            .or_default() += 1;
    }
}

/// Starts a metric family in the Prometheus text format: its `# HELP` and `# TYPE`
/// lines (`kind`: `counter`, `gauge`, `histogram`).
pub fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    use std::fmt::Write;
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A family with one unlabelled sample.
pub fn single(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    use std::fmt::Write;
    family(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// Escapes a label value.
pub fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_sample_family_is_help_type_and_value() {
        let mut out = String::new();
        single(&mut out, "sidecar_x_total", "counter", "Things.", 3);
        assert_eq!(
            out,
            "# HELP sidecar_x_total Things.\n# TYPE sidecar_x_total counter\nsidecar_x_total 3\n"
        );
    }

    #[test]
    fn histogram_renders_cumulative_buckets() {
        let h = Histogram::default();
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(10));
        let mut out = String::new();
        h.render(&mut out, "x", "t=\"a\"");
        assert!(out.contains("x_bucket{t=\"a\",le=\"0.005\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{t=\"a\",le=\"+Inf\"} 2\n"), "{out}");
        assert!(out.contains("x_count{t=\"a\"} 2\n"), "{out}");
    }
}
