//! `/api/proxy.json`: what the proxy drivers did last (HAProxy: last good config, last
//! error, counters; Envoy: published version, connected Envoys with their ACK/NACK
//! state, quarantined resources). `/api/proxy/metrics`: only the drivers' families
//! (`/metrics` has them too, with everything else).

use super::ApiContext;
use crate::metrics::{Exposition, Registry};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub fn routes() -> Router<ApiContext> {
    Router::new()
        .route("/api/proxy.json", get(proxy_json))
        .route("/api/proxy/metrics", get(proxy_metrics))
}

async fn proxy_json(State(ctx): State<ApiContext>) -> Response {
    let body = serde_json::to_vec(&ctx.proxy.to_json()).unwrap_or_default();
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

async fn proxy_metrics(State(ctx): State<ApiContext>, headers: HeaderMap) -> Response {
    let mut registry = Registry::default();
    ctx.proxy.register_metrics(&mut registry);
    super::metrics::render(&Exposition::new(registry), &headers)
}
