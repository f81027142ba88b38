//! `sidecar_discovery_source_healthy`: read from the combined view at scrape time.

use super::LocalView;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use tokio::sync::watch;

/// Registers the source-health family. It is absent until every source has reported
/// once (the view is `None` before).
pub fn register_metrics(view: watch::Receiver<Option<Arc<LocalView>>>, registry: &mut Registry) {
    registry.register_collector(Box::new(SourceHealth(view)));
}

struct SourceHealth(watch::Receiver<Option<Arc<LocalView>>>);

impl std::fmt::Debug for SourceHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SourceHealth")
    }
}

impl Collector for SourceHealth {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(view) = self.0.borrow().clone() else {
            return Ok(());
        };
        let mut family = encoder.encode_descriptor(
            "sidecar_discovery_source_healthy",
            "1 when a discovery source's last attempt worked.",
            None,
            MetricType::Gauge,
        )?;
        for (name, err) in &view.sources {
            let labels = [("source", name.as_str())];
            ConstGauge::new(i64::from(err.is_none())).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{assert_lines, scrape};

    #[test]
    fn source_health_follows_the_view() {
        let (tx, rx) = watch::channel(None);
        let out = scrape(|r| register_metrics(rx.clone(), r));
        assert!(!out.contains("sidecar_discovery_source_healthy"), "{out}");
        tx.send_replace(Some(Arc::new(LocalView {
            services: Arc::default(),
            sources: vec![
                ("static".into(), None),
                ("docker".into(), Some("unreachable".into())),
            ],
        })));
        let out = scrape(|r| register_metrics(rx, r));
        assert_lines(
            &out,
            &[
                "# HELP sidecar_discovery_source_healthy 1 when a discovery source's last attempt worked.",
                "# TYPE sidecar_discovery_source_healthy gauge",
                "sidecar_discovery_source_healthy{source=\"static\"} 1",
                "sidecar_discovery_source_healthy{source=\"docker\"} 0",
            ],
        );
    }
}
