//! `/metrics`: renders the registry the agent built (each subsystem registered its own
//! families into it; see `crate::metrics`). Prometheus text 0.0.4 by default,
//! OpenMetrics when the `Accept` header asks for it.

use super::ApiContext;
use crate::metrics::{Exposition, Format};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

pub async fn metrics(State(ctx): State<ApiContext>, headers: HeaderMap) -> Response {
    render(&ctx.exposition, &headers)
}

/// The exposition in the format the request asks for, with its content type.
pub fn render(exposition: &Exposition, headers: &HeaderMap) -> Response {
    let format = Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let mut resp = exposition.render(format).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ApiMetrics, router};
    use crate::metrics::Registry;
    use crate::shared_catalog::SharedCatalog;
    use axum::body::Body;
    use axum::http::Request;
    use std::sync::Arc;
    use tower::ServiceExt;

    async fn get(app: axum::Router, accept: Option<&str>) -> (String, String) {
        let mut req = Request::get("/metrics");
        if let Some(a) = accept {
            req = req.header(header::ACCEPT, a);
        }
        let resp = app
            .oneshot(req.body(Body::empty()).expect("request"))
            .await
            .expect("response");
        let ct = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body");
        (ct, String::from_utf8(body.to_vec()).expect("utf-8"))
    }

    #[tokio::test]
    async fn the_route_renders_the_registry_it_was_given() {
        let (catalog, _out) = SharedCatalog::with_defaults("me", "default");
        let (_tx, members) = tokio::sync::watch::channel(Arc::default());
        let api = Arc::new(ApiMetrics::default());
        let mut registry = Registry::default();
        api.register(&mut registry);
        catalog.register_metrics(&mut registry);
        let ctx = super::super::ApiContext::new(catalog, members)
            .with_metrics(api.clone(), Arc::new(Exposition::new(registry)));
        api.watchers.inc();

        let (ct, body) = get(router(ctx.clone()), None).await;
        assert_eq!(ct, "text/plain; version=0.0.4; charset=utf-8");
        crate::metrics::assert_lines(
            &body,
            &[
                "# HELP sidecar_watchers Clients streaming /api/watch.",
                "# TYPE sidecar_watchers gauge",
                "sidecar_watchers 1",
                "sidecar_services{status=\"alive\"} 0",
            ],
        );

        let (ct, body) = get(
            router(ctx),
            Some("application/openmetrics-text;version=1.0.0;q=0.6,text/plain;q=0.5"),
        )
        .await;
        assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
        assert!(body.ends_with("# EOF\n"), "{body}");
    }
}
