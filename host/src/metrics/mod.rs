//! `/metrics`: one prometheus-client [`Registry`] that every subsystem registers its own
//! families into (`agent::run` hands it around at start-up), rendered by
//! [`Exposition`].
//!
//! Who registers what:
//! * the catalog (`SharedCatalog::register_metrics`): records by status, generation,
//!   change events, stale records;
//! * the cluster (`ClusterHandle::register_metrics`): members by state, gossip and SWIM
//!   counters;
//! * discovery (`discovery::register_metrics`): source health;
//! * health checks (`HealthMetrics`), plugin calls ([`PluginMetrics`]), listeners
//!   (`ListenerMetrics`), the API (`ApiMetrics`), the proxy drivers
//!   (`ProxyStatus::register_metrics`);
//! * this module: build information and the process ([`register_process_and_build`]).
//!
//! Counters incremented on hot paths are prometheus-client atomics ([`Counter`],
//! [`Family`]); values that exist elsewhere (the catalog, the member list, driver
//! status) are read at scrape time by a [`Collector`](prometheus_client::collector::Collector)
//! of the subsystem that owns them.

pub mod process;

use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
pub use prometheus_client::registry::Registry;

/// The two text formats `/metrics` speaks. Same registry, same names: OpenMetrics adds
/// `# UNIT` lines, names counter families without `_total` in `# TYPE` and ends with
/// `# EOF`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4 (the default: curl, browsers, older scrapers).
    Prometheus,
    /// OpenMetrics 1.0 text, when the scraper asks for it (Prometheus does).
    OpenMetrics,
}

impl Format {
    /// Picks the format from an `Accept` header.
    pub fn negotiate(accept: Option<&str>) -> Self {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Renders the registry every subsystem registered into. Built once at start-up; the
/// values move through the metrics' atomics and the collectors' reads.
#[derive(Debug, Default)]
pub struct Exposition {
    registry: Registry,
}

impl Exposition {
    pub fn new(registry: Registry) -> Self {
        Exposition { registry }
    }

    pub fn render(&self, format: Format) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let res = match format {
            Format::Prometheus => {
                prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            }
            Format::OpenMetrics => {
                prometheus_client::encoding::text::encode(&mut out, &self.registry)
            }
        };
        // Writing into a String does not fail; a collector could, and then the scrape
        // still gets what was written before it.
        if res.is_err() {
            tracing::warn!("a metrics collector failed; /metrics is incomplete");
        }
        out
    }
}

/// Writes one counter family with a single sample, for collectors that read a value
/// kept elsewhere. `name` is without `_total`: the encoder appends it.
pub fn encode_counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(value);
    c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)
}

/// Writes one gauge family with a single sample.
pub fn encode_gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(value);
    g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    wit_version: &'static str,
}

/// `sidecar_build_info` and the `process_*` families.
pub fn register_process_and_build(registry: &mut Registry) {
    registry.register(
        "sidecar_build",
        "Version of this daemon and of the plugin interface (WIT) it implements",
        Info::new(BuildLabels {
            version: env!("CARGO_PKG_VERSION"),
            wit_version: sidecar_plugin_host::HOST_WIT_VERSION,
        }),
    );
    registry.register_collector(Box::new(process::ProcessCollector::new()));
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabel {
    plugin: String,
}

/// Failed calls into plugins, counted by the host parts that call them (health checks,
/// discovery sources).
#[derive(Debug, Default)]
pub struct PluginMetrics {
    errors: Family<PluginLabel, Counter>,
}

impl PluginMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "sidecar_plugin_errors",
            "Failed plugin calls (traps, timeouts, unavailable) by plugin",
            self.errors.clone(),
        );
    }

    /// A failed call (rare: allocates the label).
    pub fn error(&self, plugin: &str) {
        self.errors
            .get_or_create(&PluginLabel {
                plugin: plugin.to_string(),
            })
            .inc();
    }

    /// Failed calls of `plugin` so far.
    pub fn errors(&self, plugin: &str) -> u64 {
        self.errors
            .get(&PluginLabel {
                plugin: plugin.to_string(),
            })
            .map_or(0, |c| c.get())
    }
}

/// Test helper: what a scrape of a registry filled by `register` shows (text 0.0.4).
#[cfg(test)]
pub fn scrape(register: impl FnOnce(&mut Registry)) -> String {
    let mut registry = Registry::default();
    register(&mut registry);
    Exposition::new(registry).render(Format::Prometheus)
}

/// Test helper: asserts that each of `lines` is a line of `scraped`.
#[cfg(test)]
#[track_caller]
pub fn assert_lines(scraped: &str, lines: &[&str]) {
    for line in lines {
        assert!(
            scraped.lines().any(|l| l == *line),
            "{line:?} missing from:\n{scraped}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_errors_are_counted_per_plugin() {
        let m = PluginMetrics::default();
        m.error("chaos");
        m.error("chaos");
        m.error("namer");
        assert_eq!(m.errors("chaos"), 2);
        let out = scrape(|r| m.register(r));
        assert_lines(
            &out,
            &[
                "# HELP sidecar_plugin_errors_total Failed plugin calls (traps, timeouts, unavailable) by plugin.",
                "# TYPE sidecar_plugin_errors_total counter",
                "sidecar_plugin_errors_total{plugin=\"chaos\"} 2",
                "sidecar_plugin_errors_total{plugin=\"namer\"} 1",
            ],
        );
    }

    #[test]
    fn build_info_names_the_version_and_the_wit_version() {
        let out = scrape(register_process_and_build);
        assert_lines(
            &out,
            &[
                "# TYPE sidecar_build_info gauge",
                &format!(
                    "sidecar_build_info{{version=\"{}\",wit_version=\"{}\"}} 1",
                    env!("CARGO_PKG_VERSION"),
                    sidecar_plugin_host::HOST_WIT_VERSION
                ),
            ],
        );
    }

    #[test]
    fn openmetrics_is_served_when_asked_for() {
        let m = PluginMetrics::default();
        m.error("a\"b");
        let mut registry = Registry::default();
        m.register(&mut registry);
        let exp = Exposition::new(registry);
        let prom = Format::negotiate(Some("*/*"));
        assert_eq!(prom, Format::Prometheus);
        assert!(prom.content_type().starts_with("text/plain; version=0.0.4"));
        let om = Format::negotiate(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        ));
        assert_eq!(om, Format::OpenMetrics);
        let text = exp.render(om);
        assert_lines(
            &text,
            &[
                "# TYPE sidecar_plugin_errors counter",
                "sidecar_plugin_errors_total{plugin=\"a\\\"b\"} 1",
                "# EOF",
            ],
        );
    }
}
