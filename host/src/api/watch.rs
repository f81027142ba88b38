//! `/api/watch` (and `/watch`): one document on connect, then one per catalog change.
//!
//! Documents are the by-service map (or the full state with `?by_service=false`),
//! concatenated with no separator as Sidecar streams them, or Server-Sent Events
//! (`data: <json>`) when the client asks for `text/event-stream`. Changes coalesce: a
//! burst of changes yields one document showing the newest catalog, rendered once and
//! shared by every watcher.

use super::ApiContext;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use prometheus_client::metrics::gauge::Gauge;
use std::collections::HashMap;

/// SSE streams send a comment after this much silence, so that proxies and browsers do
/// not drop an idle stream. (The JSON stream stays byte-exact: no keepalives.)
const SSE_KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// Counts a watcher in the gauge until the stream is dropped (client gone).
struct WatcherGuard(Gauge);

impl WatcherGuard {
    fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        WatcherGuard(gauge.clone())
    }
}

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

pub async fn watch(
    State(ctx): State<ApiContext>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let by_service = q.get("by_service").map(String::as_str) != Some("false");
    let sse = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"));
    let guard = WatcherGuard::new(&ctx.metrics.watchers);
    let rx = ctx.catalog.watch();
    let state = (ctx, rx, guard, true);
    let stream = futures::stream::unfold(state, move |(ctx, mut rx, guard, first)| async move {
        if !first {
            if sse {
                tokio::select! {
                    r = rx.changed() => r.ok()?,
                    _ = tokio::time::sleep(SSE_KEEPALIVE) => {
                        let ping = Bytes::from_static(b": keepalive\n\n");
                        return Some((Ok(ping), (ctx, rx, guard, false)));
                    }
                }
            } else {
                rx.changed().await.ok()?;
            }
        }
        rx.borrow_and_update();
        let rendered = ctx.rendered();
        let doc = if by_service {
            rendered.by_service()
        } else {
            rendered.state()
        };
        let chunk = if sse { sse_event(&doc) } else { doc };
        Some((
            Ok::<Bytes, std::convert::Infallible>(chunk),
            (ctx, rx, guard, false),
        ))
    });
    let mut resp = (StatusCode::OK, Body::from_stream(stream)).into_response();
    let h = resp.headers_mut();
    if sse {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    } else {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    resp
}

/// One SSE event; compact JSON has no newlines, so one `data:` line carries it.
fn sse_event(doc: &Bytes) -> Bytes {
    let mut out = Vec::with_capacity(doc.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(doc);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}
