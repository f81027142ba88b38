//! `/api/watch` (and `/watch`): one document on connect, then one per catalog change.
//!
//! Documents are the by-service map (or the full state with `?by_service=false`),
//! concatenated with no separator as Sidecar streams them, or Server-Sent Events
//! (`data: <json>`) when the client asks for `text/event-stream`. Changes coalesce: a
//! burst of changes yields one document showing the newest catalog, rendered once and
//! shared by every watcher.
//!
//! What a watcher costs is bounded: the document goes out as the shared `Bytes` (the SSE
//! framing is separate static chunks, never a per-client copy); the next document is
//! taken only when hyper has room for it, so a client that reads slowly skips to the
//! newest catalog instead of queueing old ones, and one that stops reading is cut off
//! by the server's write timeout (`api/server.rs`). Streams are capped
//! (`SIDECAR_HTTP_MAX_WATCHERS`); past the cap the answer is 503.

use super::ApiContext;
use super::routes::error;
use super::server::LogEvery;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use prometheus_client::metrics::gauge::Gauge;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// SSE streams send a comment after this much silence, so that proxies and browsers do
/// not drop an idle stream. (The JSON stream stays byte-exact: no keepalives.)
const SSE_KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// The watcher slots (`SIDECAR_HTTP_MAX_WATCHERS`).
pub struct Slots {
    sem: Arc<Semaphore>,
    max: usize,
    refusals: LogEvery,
}

impl Slots {
    pub fn new(max: usize) -> Self {
        Slots {
            sem: Arc::new(Semaphore::new(max)),
            max,
            refusals: LogEvery::default(),
        }
    }
}

/// Holds a watcher's slot and counts it in the gauge until the stream is dropped
/// (client gone).
struct WatcherGuard {
    gauge: Gauge,
    _slot: OwnedSemaphorePermit,
}

impl WatcherGuard {
    fn new(gauge: &Gauge, slot: OwnedSemaphorePermit) -> Self {
        gauge.inc();
        WatcherGuard {
            gauge: gauge.clone(),
            _slot: slot,
        }
    }
}

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        self.gauge.dec();
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
    let Ok(slot) = ctx.watch_slots.sem.clone().try_acquire_owned() else {
        ctx.metrics.watchers_refused.inc();
        let max = ctx.watch_slots.max;
        if let Some(n) = ctx.watch_slots.refusals.note() {
            tracing::warn!(
                count = n,
                max,
                "watch refused: too many watchers (SIDECAR_HTTP_MAX_WATCHERS)"
            );
        }
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("too many watchers (the limit is {max}), try again later"),
        );
    };
    let guard = WatcherGuard::new(&ctx.metrics.watchers, slot);
    let rx = ctx.catalog.watch();
    let state = Stream {
        ctx,
        rx,
        _guard: guard,
        first: true,
        pending: VecDeque::new(),
    };
    let stream = futures::stream::unfold(state, move |mut st| async move {
        if let Some(chunk) = st.pending.pop_front() {
            return Some((Ok(chunk), st));
        }
        if !st.first {
            if sse {
                tokio::select! {
                    r = st.rx.changed() => r.ok()?,
                    _ = tokio::time::sleep(SSE_KEEPALIVE) => {
                        let ping = Bytes::from_static(b": keepalive\n\n");
                        return Some((Ok(ping), st));
                    }
                }
            } else {
                st.rx.changed().await.ok()?;
            }
        }
        st.first = false;
        st.rx.borrow_and_update();
        let rendered = st.ctx.rendered();
        let doc = if by_service {
            rendered.by_service()
        } else {
            rendered.state()
        };
        let chunk = if sse {
            // Compact JSON has no newlines, so one `data:` line carries the document.
            st.pending.push_back(doc);
            st.pending.push_back(Bytes::from_static(b"\n\n"));
            Bytes::from_static(b"data: ")
        } else {
            doc
        };
        Some((Ok::<Bytes, std::convert::Infallible>(chunk), st))
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

/// One watch stream's state between chunks.
struct Stream {
    ctx: ApiContext,
    rx: tokio::sync::watch::Receiver<Arc<crate::shared_catalog::Snapshot>>,
    _guard: WatcherGuard,
    first: bool,
    /// The rest of an SSE event: the shared document, then its terminator.
    pending: VecDeque<Bytes>,
}
