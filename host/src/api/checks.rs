//! `GET /api/checks.json`: each local instance's check and its last result (type,
//! arguments, outcome, message, time, duration), sorted by service name and ID.
//! `sidecar checks` and the console read it.

use super::ApiContext;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;

pub fn routes() -> Router<ApiContext> {
    Router::new().route("/api/checks.json", get(checks_json))
}

async fn checks_json(State(ctx): State<ApiContext>) -> Response {
    #[derive(serde::Serialize)]
    struct Doc {
        checks: Vec<crate::health::CheckReport>,
    }
    Json(Doc {
        checks: ctx.checks.list(),
    })
    .into_response()
}
