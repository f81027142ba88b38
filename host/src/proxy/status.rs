//! The proxy drivers' status as the HTTP API shows it, and their `/metrics` families.
//!
//! `proxy::start` returns it with the drivers it started registered; the agent hands it
//! to the API.

use super::haproxy::HaproxyStatus;
use super::xds::XdsStatus;
use parking_lot::RwLock;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Default)]
pub struct ProxyStatus {
    haproxy: RwLock<Option<Arc<HaproxyStatus>>>,
    xds: RwLock<Option<Arc<XdsStatus>>>,
}

impl ProxyStatus {
    pub fn set_haproxy(&self, s: Arc<HaproxyStatus>) {
        *self.haproxy.write() = Some(s);
    }

    pub fn set_xds(&self, s: Arc<XdsStatus>) {
        *self.xds.write() = Some(s);
    }

    /// `/api/proxy.json`: `null` for a driver that is not running.
    pub fn to_json(&self) -> Value {
        let haproxy = self.haproxy.read().as_ref().map(|h| {
            let c = &h.counters;
            use std::sync::atomic::Ordering::Relaxed;
            json!({
                "state": h.state(),
                "quarantined": h.quarantined(),
                "counters": {
                    "renders": c.renders.load(Relaxed),
                    "emit_errors": c.emit_errors.load(Relaxed),
                    "verify_failures": c.verify_failures.load(Relaxed),
                    "write_failures": c.write_failures.load(Relaxed),
                    "reloads": c.reloads.load(Relaxed),
                    "reload_failures": c.reload_failures.load(Relaxed),
                    "runtime_updates": c.runtime_updates.load(Relaxed),
                    "unchanged": c.unchanged.load(Relaxed),
                    "rollbacks": c.rollbacks.load(Relaxed),
                    "bisections": c.bisections.load(Relaxed),
                    "bisect_verify_runs": c.bisect_verify_runs.load(Relaxed),
                    "quarantines": crate::proxy::validate::Kind::ALL
                        .iter()
                        .map(|k| (k.as_str(), c.quarantine(*k).load(Relaxed)))
                        .collect::<std::collections::BTreeMap<_, _>>(),
                }
            })
        });
        let xds = self.xds.read().as_ref().map(|x| x.to_json());
        json!({ "haproxy": haproxy, "envoy": xds })
    }

    /// Registers the drivers' families (`sidecar_haproxy_*`, `sidecar_xds_*`), read at
    /// scrape time from the drivers running then.
    pub fn register_metrics(self: &Arc<Self>, registry: &mut Registry) {
        registry.register_collector(Box::new(ProxyCollector(self.clone())));
    }
}

struct ProxyCollector(Arc<ProxyStatus>);

impl std::fmt::Debug for ProxyCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProxyCollector")
    }
}

impl Collector for ProxyCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let haproxy = self.0.haproxy.read().clone();
        if let Some(h) = haproxy {
            h.encode_metrics(&mut encoder)?;
        }
        let xds = self.0.xds.read().clone();
        if let Some(x) = xds {
            x.encode_metrics(&mut encoder)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{assert_lines, scrape};
    use std::sync::atomic::Ordering;

    #[test]
    fn only_running_drivers_have_families() {
        let status = Arc::new(ProxyStatus::default());
        let out = scrape(|r| status.register_metrics(r));
        assert!(
            !out.contains("sidecar_haproxy_") && !out.contains("sidecar_xds_"),
            "{out}"
        );

        let haproxy = Arc::new(HaproxyStatus::new("/etc/haproxy.cfg"));
        haproxy.counters.reloads.fetch_add(2, Ordering::Relaxed);
        haproxy.failed("verify", "bad config".into());
        status.set_haproxy(haproxy);
        let xds = Arc::new(XdsStatus::default());
        xds.counters.acks.fetch_add(5, Ordering::Relaxed);
        status.set_xds(xds);
        let out = scrape(|r| status.register_metrics(r));
        assert_lines(
            &out,
            &[
                "# HELP sidecar_haproxy_reloads_total Successful HAProxy starts and reloads.",
                "# TYPE sidecar_haproxy_reloads_total counter",
                "sidecar_haproxy_reloads_total 2",
                "sidecar_haproxy_verify_failures_total 1",
                "sidecar_haproxy_rollbacks_total 0",
                "# TYPE sidecar_haproxy_config_ok gauge",
                "sidecar_haproxy_config_ok 0",
                "# TYPE sidecar_xds_acks_total counter",
                "sidecar_xds_acks_total 5",
                "sidecar_xds_streams_total 0",
                "# TYPE sidecar_xds_connected_streams gauge",
                "sidecar_xds_connected_streams 0",
            ],
        );
    }
}
