//! `/metrics` in the Prometheus text format.

use super::ApiContext;
use crate::catalog::Status;
use crate::metrics::label;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
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

    let members = ctx.membership.members();
    let mut by_state: BTreeMap<&str, usize> = BTreeMap::new();
    for m in &members {
        *by_state.entry(m.state.as_str()).or_default() += 1;
    }
    out.push_str(
        "# HELP sidecar_members Cluster members by state.\n# TYPE sidecar_members gauge\n",
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
    out.push_str("# HELP sidecar_services Catalog records by status (all hosts).\n# TYPE sidecar_services gauge\n");
    for st in Status::ALL {
        let _ = writeln!(
            out,
            "sidecar_services{{status=\"{}\"}} {}",
            st.as_str().to_ascii_lowercase(),
            by_status[st.code() as usize]
        );
    }
    out.push_str("# HELP sidecar_local_services Records of this host by status.\n# TYPE sidecar_local_services gauge\n");
    for st in Status::ALL {
        let _ = writeln!(
            out,
            "sidecar_local_services{{status=\"{}\"}} {}",
            st.as_str().to_ascii_lowercase(),
            local[st.code() as usize]
        );
    }
    let _ = writeln!(
        out,
        "# HELP sidecar_catalog_generation Catalog snapshot generation.\n# TYPE sidecar_catalog_generation counter\nsidecar_catalog_generation {}",
        snap.generation
    );
    let c = &ctx.catalog.counters;
    let _ = writeln!(
        out,
        "# HELP sidecar_change_events_total Change events fired.\n# TYPE sidecar_change_events_total counter\nsidecar_change_events_total {}",
        c.change_events.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP sidecar_stale_records_dropped_total Incoming records older than the tombstone lifespan.\n# TYPE sidecar_stale_records_dropped_total counter\nsidecar_stale_records_dropped_total {}",
        c.stale_dropped.load(Ordering::Relaxed)
    );

    let m = &ctx.metrics;
    out.push_str("# HELP sidecar_check_duration_seconds Health check latency by check type.\n# TYPE sidecar_check_duration_seconds histogram\n");
    for (ty, h) in m.check_latency.lock().iter() {
        h.render(
            &mut out,
            "sidecar_check_duration_seconds",
            &format!("type=\"{}\"", label(ty)),
        );
    }
    out.push_str("# HELP sidecar_checks_total Health check results by check type and result.\n# TYPE sidecar_checks_total counter\n");
    for ((ty, result), n) in m.check_results.lock().iter() {
        let _ = writeln!(
            out,
            "sidecar_checks_total{{type=\"{}\",result=\"{result}\"}} {n}",
            label(ty)
        );
    }
    out.push_str("# HELP sidecar_plugin_errors_total Failed plugin calls (traps, timeouts, unavailable) by plugin.\n# TYPE sidecar_plugin_errors_total counter\n");
    for (p, n) in m.plugin_errors.lock().iter() {
        let _ = writeln!(
            out,
            "sidecar_plugin_errors_total{{plugin=\"{}\"}} {n}",
            label(p)
        );
    }
    let _ = writeln!(
        out,
        "# HELP sidecar_listener_posts_total Listener POSTs by outcome.\n# TYPE sidecar_listener_posts_total counter\nsidecar_listener_posts_total{{outcome=\"ok\"}} {}\nsidecar_listener_posts_total{{outcome=\"failed\"}} {}",
        m.listener_posts_ok.load(Ordering::Relaxed),
        m.listener_posts_failed.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP sidecar_listener_events_dropped_total Events dropped on full listener queues.\n# TYPE sidecar_listener_events_dropped_total counter\nsidecar_listener_events_dropped_total {}",
        m.listener_events_dropped.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP sidecar_watchers Clients streaming /api/watch.\n# TYPE sidecar_watchers gauge\nsidecar_watchers {}",
        m.watchers.load(Ordering::Relaxed)
    );

    if let Some(view) = ctx.local.as_ref().and_then(|rx| rx.borrow().clone()) {
        out.push_str("# HELP sidecar_discovery_source_healthy 1 when a discovery source's last attempt worked.\n# TYPE sidecar_discovery_source_healthy gauge\n");
        for (name, err) in &view.sources {
            let _ = writeln!(
                out,
                "sidecar_discovery_source_healthy{{source=\"{}\"}} {}",
                label(name),
                u8::from(err.is_none())
            );
        }
    }
    ctx.membership.render_metrics(&mut out);
    out.push_str(&ctx.proxy.metrics());
    out
}
