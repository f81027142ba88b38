//! The HTTP API: Sidecar's routes (existing clients keep working) plus ours.

pub mod proxy;

use crate::shared_catalog::SharedCatalog;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

/// Binds the API and returns the server future (bind errors surface before startup ends).
pub async fn serve(
    addr: SocketAddr,
    catalog: Arc<SharedCatalog>,
) -> anyhow::Result<impl Future<Output = std::io::Result<()>>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} for the HTTP API: {e}"))?;
    tracing::info!(%addr, "HTTP API listening");
    let app = router(catalog);
    Ok(async move { axum::serve(listener, app).await })
}

pub fn router(catalog: Arc<SharedCatalog>) -> Router {
    Router::new()
        .route("/api/state.json", get(state_json))
        .route("/state.json", get(state_json))
        .route("/health", get(|| async { "ok" }))
        .merge(proxy::routes())
        .with_state(catalog)
}

async fn state_json(
    axum::extract::State(catalog): axum::extract::State<Arc<SharedCatalog>>,
) -> Response {
    let body = catalog.snapshot().state_json();
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
