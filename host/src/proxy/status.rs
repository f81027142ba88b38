//! The proxy drivers' status as the HTTP API and `/metrics` show it.
//!
//! `proxy::start` returns it with the drivers it started registered; the agent hands it
//! to the API.

use super::haproxy::HaproxyStatus;
use super::xds::XdsStatus;
use parking_lot::RwLock;
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
                }
            })
        });
        let xds = self.xds.read().as_ref().map(|x| x.to_json());
        json!({ "haproxy": haproxy, "envoy": xds })
    }

    /// Prometheus text for `/metrics`.
    pub fn metrics(&self) -> String {
        let mut out = String::new();
        if let Some(h) = self.haproxy.read().as_ref() {
            out.push_str(&h.metrics());
        }
        if let Some(x) = self.xds.read().as_ref() {
            out.push_str(&x.metrics());
        }
        out
    }
}
