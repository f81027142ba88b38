//! `GET /health`: liveness of the HTTP server, and whether this node has joined its
//! cluster. Always 200 (a node that cannot join is alive and serves its own catalog);
//! monitoring reads `joined`.

use super::ApiContext;
use axum::Json;
use axum::extract::State;
use serde::Serialize;

#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Health {
    status: &'static str,
    /// Another member is alive, or there are no seeds to join.
    joined: bool,
    /// Alive or suspect members, ourselves included.
    members: usize,
}

/// `{"status":"ok","joined":true,"members":N}`.
pub async fn health(State(ctx): State<ApiContext>) -> Json<Health> {
    let list = ctx.membership.borrow().clone();
    Json(Health {
        status: "ok",
        joined: list.joined,
        members: list.live().count(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidecar_cluster::MemberList;
    use std::net::SocketAddr;
    use std::sync::Arc;

    #[tokio::test]
    async fn health_reports_joined_and_live_members() {
        let mut list = MemberList::just("a", SocketAddr::from(([127, 0, 0, 1], 7946)));
        list.joined = false;
        let (_tx, rx) = tokio::sync::watch::channel(Arc::new(list));
        let (catalog, _out) = crate::shared_catalog::SharedCatalog::with_defaults("a", "default");
        let Json(h) = health(State(ApiContext::new(catalog, rx))).await;
        assert_eq!(
            serde_json::to_string(&h).expect("json"),
            r#"{"status":"ok","joined":false,"members":1}"#
        );
    }
}
