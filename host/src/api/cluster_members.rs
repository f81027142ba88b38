//! `GET /api/members.json`: the cluster members this agent knows and their states
//! (what `sidecar members` prints).

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/api/members.json", get(members_json))
}

async fn members_json() -> Response {
    match crate::cluster::handle::current() {
        Some(cluster) => Json(cluster.members().as_ref().clone()).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "cluster not started").into_response(),
    }
}
