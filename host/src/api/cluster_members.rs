//! `GET /api/members.json`: the cluster members this agent knows and their states
//! (what `sidecar members` prints).

use super::ApiContext;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;

pub fn routes() -> Router<ApiContext> {
    Router::new().route("/api/members.json", get(members_json))
}

async fn members_json(State(ctx): State<ApiContext>) -> Response {
    let members = ctx.membership.borrow().clone();
    Json(members).into_response()
}
