//! The HTTP API: Sidecar's routes (existing clients decode them unchanged) plus ours
//! (SSE watch, `/metrics`, the UI, an OpenAPI document). See `docs/api.md`.

mod cluster_members;
mod guard;
mod health;
pub mod metrics;
pub mod openapi;
pub mod proxy;
pub mod render;
pub mod routes;
pub mod ui;
pub mod watch;

use crate::metrics::Exposition;
use crate::shared_catalog::SharedCatalog;
use axum::Router;
use axum::middleware;
use axum::routing::{get, post};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sidecar_cluster::MemberList;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch as tokio_watch;

/// Everything the handlers read.
#[derive(Clone)]
pub struct ApiContext {
    pub catalog: Arc<SharedCatalog>,
    /// The cluster's membership view (`ClusterMembers`, the UI, `/api/members.json`).
    pub membership: tokio_watch::Receiver<Arc<MemberList>>,
    /// The API's own families (registered by the agent with everyone else's).
    pub metrics: Arc<ApiMetrics>,
    /// What `/metrics` renders: the registry every subsystem registered into.
    pub exposition: Arc<Exposition>,
    /// `SIDECAR_API_TOKEN`: required for writes when set (else writes are loopback-only).
    pub write_token: Option<Arc<str>>,
    /// The proxy drivers' status (empty when none runs).
    pub proxy: Arc<crate::proxy::ProxyStatus>,
    renders: Arc<render::Renders>,
}

impl ApiContext {
    pub fn new(
        catalog: Arc<SharedCatalog>,
        membership: tokio_watch::Receiver<Arc<MemberList>>,
    ) -> Self {
        ApiContext {
            catalog,
            membership,
            metrics: Arc::default(),
            exposition: Arc::default(),
            write_token: None,
            proxy: Arc::default(),
            renders: Arc::default(),
        }
    }

    /// The API's families (already registered into the registry behind `exposition`)
    /// and the exposition `/metrics` renders.
    pub fn with_metrics(mut self, metrics: Arc<ApiMetrics>, exposition: Arc<Exposition>) -> Self {
        self.metrics = metrics;
        self.exposition = exposition;
        self
    }

    /// The renders of the newest snapshot.
    pub fn with_proxy(mut self, proxy: Arc<crate::proxy::ProxyStatus>) -> Self {
        self.proxy = proxy;
        self
    }

    pub fn rendered(&self) -> Arc<render::Rendered> {
        self.renders.get(self.catalog.snapshot())
    }
}

/// What the API itself records.
#[derive(Debug, Default)]
pub struct ApiMetrics {
    /// Clients currently streaming `/api/watch`.
    pub watchers: Gauge,
}

impl ApiMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "sidecar_watchers",
            "Clients streaming /api/watch",
            self.watchers.clone(),
        );
    }
}

/// Binds the API and returns the server future (bind errors surface before startup ends).
pub async fn serve(
    addr: SocketAddr,
    ctx: ApiContext,
) -> anyhow::Result<impl Future<Output = std::io::Result<()>>> {
    let listener =
        bind(addr).map_err(|e| anyhow::anyhow!("cannot listen on {addr} for the HTTP API: {e}"))?;
    tracing::info!(%addr, "HTTP API listening");
    let app = router(ctx);
    Ok(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    })
}

/// A listener with a deep accept queue: a thousand watchers reconnecting at once (after
/// a restart, say) must not overflow it while the workers are busy writing documents.
fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

pub fn router(ctx: ApiContext) -> Router {
    Router::new()
        .route("/", get(routes::root))
        .route("/api/services/{key}", get(routes::one_service))
        .route(
            "/api/services/{key}/drain",
            post(routes::drain)
                .route_layer(middleware::from_fn_with_state(ctx.clone(), guard::writes)),
        )
        .route("/api/watch", get(watch::watch))
        .route("/watch", get(watch::watch))
        .route("/api/openapi.json", get(openapi::document))
        .route(
            "/api/{file}",
            get(routes::api_file).options(routes::options),
        )
        .route("/{file}", get(routes::top_file))
        .route("/metrics", get(metrics::metrics))
        .route("/health", get(health::health))
        .route("/ui", get(ui::redirect))
        .route("/ui/", get(ui::page))
        .route("/ui/index.html", get(ui::page))
        .merge(proxy::routes())
        .merge(cluster_members::routes())
        .fallback(routes::not_found)
        .with_state(ctx)
}
