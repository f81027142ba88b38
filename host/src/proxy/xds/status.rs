//! What the xDS server reports: connected Envoys, per-type ACK/NACK state, counters.

use super::resources::Quarantined;
use super::stream::TypeReport;
use crate::metrics::{encode_counter, encode_gauge};
use parking_lot::Mutex;
use prometheus_client::encoding::DescriptorEncoder;
use serde::Serialize;
use serde_json::{Value, json};
use sidecar_catalog::Timestamp;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone, Serialize)]
pub struct StreamInfo {
    pub node_id: String,
    pub node_cluster: String,
    pub peer: String,
    pub connected_at: String,
    pub types: Vec<TypeReport>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Published {
    pub version: String,
    pub resources: usize,
    pub at: String,
}

#[derive(Debug, Default)]
pub struct XdsCounters {
    pub renders: AtomicU64,
    pub emit_errors: AtomicU64,
    pub quarantined: AtomicU64,
    pub snapshots: AtomicU64,
    pub streams_total: AtomicU64,
    pub pushes: AtomicU64,
    pub acks: AtomicU64,
    pub nacks: AtomicU64,
    pub stale_nonces: AtomicU64,
    pub phase_timeouts: AtomicU64,
    /// Sum of push->ACK latencies in microseconds (with `acks`: the mean).
    pub ack_latency_us_sum: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    published: Option<Published>,
    last_error: Option<(String, String)>,
    quarantined: Vec<Quarantined>,
    last_nack: Option<(String, String, String)>,
    streams: BTreeMap<u64, StreamInfo>,
}

#[derive(Debug, Default)]
pub struct XdsStatus {
    inner: Mutex<Inner>,
    pub counters: XdsCounters,
    pub listen: Mutex<String>,
}

impl XdsStatus {
    pub fn published(&self, version: &str, resources: usize, quarantined: Vec<Quarantined>) {
        self.counters.snapshots.fetch_add(1, Ordering::Relaxed);
        self.counters
            .quarantined
            .fetch_add(quarantined.len() as u64, Ordering::Relaxed);
        let mut i = self.inner.lock();
        i.published = Some(Published {
            version: version.to_string(),
            resources,
            at: Timestamp::now().to_rfc3339(),
        });
        i.quarantined = quarantined;
        i.last_error = None;
    }

    pub fn emit_failed(&self, message: String) {
        self.counters.emit_errors.fetch_add(1, Ordering::Relaxed);
        tracing::error!("xDS emitter failed, Envoy keeps the last good config: {message}");
        self.inner.lock().last_error = Some((Timestamp::now().to_rfc3339(), message));
    }

    pub fn nacked(&self, node: &str, type_url: &str, message: &str) {
        self.counters.nacks.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            node,
            type_url,
            "Envoy rejected a response (NACK), it keeps its last good version: {message}"
        );
        self.inner.lock().last_nack =
            Some((node.to_string(), type_url.to_string(), message.to_string()));
    }

    pub fn stream_update(&self, id: u64, info: StreamInfo) {
        self.inner.lock().streams.insert(id, info);
    }

    pub fn stream_closed(&self, id: u64) {
        self.inner.lock().streams.remove(&id);
    }

    pub fn connected(&self) -> usize {
        self.inner.lock().streams.len()
    }

    pub fn to_json(&self) -> Value {
        let i = self.inner.lock();
        let c = &self.counters;
        let acks = c.acks.load(Ordering::Relaxed);
        let mean_ack_ms = if acks == 0 {
            0.0
        } else {
            c.ack_latency_us_sum.load(Ordering::Relaxed) as f64 / acks as f64 / 1000.0
        };
        json!({
            "listen": *self.listen.lock(),
            "published": i.published,
            "last_error": i.last_error.as_ref().map(|(at, m)| json!({"at": at, "message": m})),
            "quarantined": i.quarantined,
            "last_nack": i.last_nack.as_ref().map(|(n, t, m)| json!({"node": n, "type_url": t, "message": m})),
            "streams": i.streams.values().collect::<Vec<_>>(),
            "counters": {
                "renders": c.renders.load(Ordering::Relaxed),
                "emit_errors": c.emit_errors.load(Ordering::Relaxed),
                "quarantined": c.quarantined.load(Ordering::Relaxed),
                "snapshots": c.snapshots.load(Ordering::Relaxed),
                "streams_total": c.streams_total.load(Ordering::Relaxed),
                "pushes": c.pushes.load(Ordering::Relaxed),
                "acks": acks,
                "nacks": c.nacks.load(Ordering::Relaxed),
                "stale_nonces": c.stale_nonces.load(Ordering::Relaxed),
                "phase_timeouts": c.phase_timeouts.load(Ordering::Relaxed),
                "mean_ack_latency_ms": mean_ack_ms,
            }
        })
    }

    /// The `sidecar_xds_*` families (the proxy status collector calls this at scrape
    /// time).
    pub fn encode_metrics(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let c = &self.counters;
        for (name, help, v) in [
            ("renders", "Emitter calls for Envoy.", &c.renders),
            (
                "emit_errors",
                "Emitter failures (last good resources kept).",
                &c.emit_errors,
            ),
            (
                "quarantined",
                "Resources left out because they failed validation.",
                &c.quarantined,
            ),
            ("snapshots", "Resource sets published.", &c.snapshots),
            ("streams", "ADS streams opened.", &c.streams_total),
            ("pushes", "Discovery responses sent.", &c.pushes),
            ("acks", "Responses Envoy accepted.", &c.acks),
            ("nacks", "Responses Envoy rejected.", &c.nacks),
            (
                "stale_nonces",
                "Requests ignored for a stale nonce.",
                &c.stale_nonces,
            ),
            (
                "phase_timeouts",
                "Publish phases that moved on without an ACK.",
                &c.phase_timeouts,
            ),
        ] {
            encode_counter(
                encoder,
                &format!("sidecar_xds_{name}"),
                help,
                v.load(Ordering::Relaxed),
            )?;
        }
        encode_gauge(
            encoder,
            "sidecar_xds_connected_streams",
            "Envoys connected now.",
            i64::try_from(self.connected()).unwrap_or(i64::MAX),
        )
    }
}
