//! The HTTP API: Sidecar's routes (existing clients decode them unchanged) plus ours
//! (SSE watch, `/metrics`, the UI, an OpenAPI document). See `docs/api.md`.

mod checks;
mod cluster_members;
pub mod envoy_v1;
mod guard;
mod health;
pub mod metrics;
pub mod openapi;
pub mod proxy;
pub mod render;
pub mod routes;
pub mod server;
mod tls;
pub mod ui;
pub mod watch;

use crate::metrics::Exposition;
use crate::shared_catalog::SharedCatalog;
use axum::Router;
use axum::handler::Handler;
use axum::middleware;
use axum::routing::{get, post, put};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sidecar_cluster::MemberList;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch as tokio_watch;

pub use server::HttpLimits;

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
    /// The token reads need too (`SIDECAR_API_AUTH_READS`); `None`: reads are open.
    pub read_token: Option<Arc<str>>,
    /// The proxy drivers' status (empty when none runs).
    pub proxy: Arc<crate::proxy::ProxyStatus>,
    /// Node maintenance mode (`/api/maintenance`); `None` in tests without one.
    pub maintenance: Option<Arc<crate::maintenance::Maintenance>>,
    /// Each local check's last result (`/api/checks.json`).
    pub checks: crate::health::CheckReports,
    /// Where TTL reports go (`PUT /api/services/{id}/ttl/{state}`); `None` in tests
    /// without one.
    pub local: Option<Arc<crate::health::LocalState>>,
    /// What Envoy's v1 REST API reads besides the catalog.
    pub envoy_v1: Arc<envoy_v1::EnvoyV1>,
    renders: Arc<render::Renders>,
    /// `/api/watch` streams: a slot each, at most `SIDECAR_HTTP_MAX_WATCHERS`.
    watch_slots: Arc<watch::Slots>,
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
            read_token: None,
            proxy: Arc::default(),
            envoy_v1: Arc::default(),
            checks: Default::default(),
            local: None,
            maintenance: None,
            renders: Arc::default(),
            watch_slots: Arc::new(watch::Slots::new(HttpLimits::default().max_watchers)),
        }
    }

    /// At most `max` concurrent watch streams.
    pub fn with_max_watchers(mut self, max: usize) -> Self {
        self.watch_slots = Arc::new(watch::Slots::new(max));
        self
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

/// The `reason` label of connections the API closed.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CloseLabel {
    pub reason: &'static str,
}

/// What the API itself records.
#[derive(Debug, Default)]
pub struct ApiMetrics {
    /// Clients currently streaming `/api/watch`.
    pub watchers: Gauge,
    /// Watch requests answered 503 because every watcher slot was taken.
    pub watchers_refused: Counter,
    /// Open HTTP connections.
    pub connections: Gauge,
    /// Connections answered 503 and closed because every connection slot was taken.
    pub connections_refused: Counter,
    /// Connections closed for overstaying a timeout, by `reason`.
    pub connections_closed: Family<CloseLabel, Counter>,
}

impl ApiMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "sidecar_watchers",
            "Clients streaming /api/watch",
            self.watchers.clone(),
        );
        registry.register(
            "sidecar_watchers_refused",
            "Watch requests refused (503) at SIDECAR_HTTP_MAX_WATCHERS",
            self.watchers_refused.clone(),
        );
        registry.register(
            "sidecar_http_connections",
            "Open HTTP API connections",
            self.connections.clone(),
        );
        registry.register(
            "sidecar_http_connections_refused",
            "HTTP API connections refused (503, closed) at SIDECAR_HTTP_MAX_CONNECTIONS",
            self.connections_refused.clone(),
        );
        registry.register(
            "sidecar_http_connections_closed",
            "HTTP API connections closed by a timeout (header, idle, write)",
            self.connections_closed.clone(),
        );
    }

    fn closed(&self, reason: server::CloseReason) -> Counter {
        self.connections_closed
            .get_or_create(&CloseLabel {
                reason: reason.as_str(),
            })
            .clone()
    }
}

/// Binds the API and returns the server future (bind errors surface before startup ends).
/// `ctx` gets the watcher cap of `limits`; the connection cap is lowered to stay under
/// the process's open-files limit.
pub async fn serve(
    addr: SocketAddr,
    limits: HttpLimits,
    tls: Option<crate::config::agent::ApiTls>,
    ctx: ApiContext,
) -> anyhow::Result<impl Future<Output = std::io::Result<()>> + use<>> {
    let tls = tls.as_ref().map(tls::acceptor).transpose()?;
    let listener =
        bind(addr).map_err(|e| anyhow::anyhow!("cannot listen on {addr} for the HTTP API: {e}"))?;
    let mut limits = limits;
    let nofile = crate::limits::open_files();
    let max = server::effective_max_connections(limits.max_connections, nofile);
    if max < limits.max_connections {
        tracing::info!(
            configured = limits.max_connections,
            max,
            open_files_limit = nofile,
            "HTTP connection cap lowered to stay under the open-files limit"
        );
        limits.max_connections = max;
    }
    tracing::info!(
        %addr,
        tls = tls.is_some(),
        reads_need_token = ctx.read_token.is_some(),
        max_connections = limits.max_connections,
        max_watchers = limits.max_watchers,
        header_timeout = ?limits.header_timeout,
        idle_timeout = ?limits.idle_timeout,
        write_timeout = ?limits.write_timeout,
        "HTTP API listening"
    );
    let metrics = ctx.metrics.clone();
    let app = router(ctx.with_max_watchers(limits.max_watchers));
    Ok(server::run(listener, app, Arc::new(limits), metrics, tls))
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
        .route(
            "/api/services/{key}/undrain",
            post(routes::undrain)
                .route_layer(middleware::from_fn_with_state(ctx.clone(), guard::writes)),
        )
        .route(
            "/api/maintenance",
            get(routes::maintenance_get).post(
                routes::maintenance_set
                    .layer(middleware::from_fn_with_state(ctx.clone(), guard::writes)),
            ),
        )
        .route(
            "/api/services/{key}/ttl/{state}",
            put(checks::ttl_report)
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
        .merge(envoy_v1::routes())
        .merge(checks::routes())
        .merge(cluster_members::routes())
        .fallback(routes::not_found)
        .layer(middleware::from_fn_with_state(ctx.clone(), guard::reads))
        .with_state(ctx)
}
