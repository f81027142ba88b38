//! `/metrics` in the Prometheus text format.

use super::ApiContext;
use crate::metrics::{family, label, single};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sidecar_catalog::Status;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;

pub async fn metrics(State(ctx): State<ApiContext>) -> Response {
    let mut resp = render(&ctx).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

pub fn render(ctx: &ApiContext) -> String {
    let mut out = String::with_capacity(4096);
    let snap = ctx.catalog.snapshot();

    let members = ctx.membership.borrow().clone();
    let mut by_state: BTreeMap<&str, usize> = BTreeMap::new();
    for m in &members.members {
        *by_state.entry(m.state.as_str()).or_default() += 1;
    }
    family(
        &mut out,
        "sidecar_members",
        "gauge",
        "Cluster members by state.",
    );
    for st in ["alive", "suspect", "dead", "left"] {
        let _ = writeln!(
            out,
            "sidecar_members{{state=\"{st}\"}} {}",
            by_state.get(st).copied().unwrap_or(0)
        );
    }

    let mut by_status = [0usize; 5];
    let mut local = [0usize; 5];
    let me = &snap.state.hostname;
    for s in snap.state.services() {
        by_status[s.status.code() as usize] += 1;
        if &s.hostname == me {
            local[s.status.code() as usize] += 1;
        }
    }
    family(
        &mut out,
        "sidecar_services",
        "gauge",
        "Catalog records by status (all hosts).",
    );
    for st in Status::ALL {
        let _ = writeln!(
            out,
            "sidecar_services{{status=\"{}\"}} {}",
            st.as_str().to_ascii_lowercase(),
            by_status[st.code() as usize]
        );
    }
    family(
        &mut out,
        "sidecar_local_services",
        "gauge",
        "Records of this host by status.",
    );
    for st in Status::ALL {
        let _ = writeln!(
            out,
            "sidecar_local_services{{status=\"{}\"}} {}",
            st.as_str().to_ascii_lowercase(),
            local[st.code() as usize]
        );
    }
    single(
        &mut out,
        "sidecar_catalog_generation",
        "counter",
        "Catalog snapshot generation.",
        snap.generation,
    );
    let c = &ctx.catalog.counters;
    single(
        &mut out,
        "sidecar_change_events_total",
        "counter",
        "Change events fired.",
        c.change_events.load(Ordering::Relaxed),
    );
    single(
        &mut out,
        "sidecar_stale_records_dropped_total",
        "counter",
        "Incoming records older than the tombstone lifespan.",
        c.stale_dropped.load(Ordering::Relaxed),
    );

    let m = &ctx.metrics;
    family(
        &mut out,
        "sidecar_check_duration_seconds",
        "histogram",
        "Health check latency by check type.",
    );
    for (ty, h) in m.check_latency.lock().iter() {
        h.render(
            &mut out,
            "sidecar_check_duration_seconds",
            &format!("type=\"{}\"", label(ty)),
        );
    }
    family(
        &mut out,
        "sidecar_checks_total",
        "counter",
        "Health check results by check type and result.",
    );
    for ((ty, result), n) in m.check_results.lock().iter() {
        let _ = writeln!(
            out,
            "sidecar_checks_total{{type=\"{}\",result=\"{result}\"}} {n}",
            label(ty)
        );
    }
    family(
        &mut out,
        "sidecar_plugin_errors_total",
        "counter",
        "Failed plugin calls (traps, timeouts, unavailable) by plugin.",
    );
    for (p, n) in m.plugin_errors.lock().iter() {
        let _ = writeln!(
            out,
            "sidecar_plugin_errors_total{{plugin=\"{}\"}} {n}",
            label(p)
        );
    }
    family(
        &mut out,
        "sidecar_listener_posts_total",
        "counter",
        "Listener POSTs by outcome.",
    );
    let _ = writeln!(
        out,
        "sidecar_listener_posts_total{{outcome=\"ok\"}} {}\nsidecar_listener_posts_total{{outcome=\"failed\"}} {}",
        m.listener_posts_ok.load(Ordering::Relaxed),
        m.listener_posts_failed.load(Ordering::Relaxed)
    );
    single(
        &mut out,
        "sidecar_listener_events_dropped_total",
        "counter",
        "Events dropped on full listener queues.",
        m.listener_events_dropped.load(Ordering::Relaxed),
    );
    single(
        &mut out,
        "sidecar_watchers",
        "gauge",
        "Clients streaming /api/watch.",
        m.watchers.load(Ordering::Relaxed),
    );

    if let Some(view) = ctx.local.as_ref().and_then(|rx| rx.borrow().clone()) {
        family(
            &mut out,
            "sidecar_discovery_source_healthy",
            "gauge",
            "1 when a discovery source's last attempt worked.",
        );
        for (name, err) in &view.sources {
            let _ = writeln!(
                out,
                "sidecar_discovery_source_healthy{{source=\"{}\"}} {}",
                label(name),
                u8::from(err.is_none())
            );
        }
    }
    for extra in &ctx.extra_metrics {
        extra(&mut out);
    }
    out.push_str(&ctx.proxy.metrics());
    out
}
