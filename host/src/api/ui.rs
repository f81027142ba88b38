//! The operator console at `/ui/`: one HTML page with the current catalog embedded,
//! rendered by plain JavaScript and kept live by the SSE watch stream: search and
//! filters, instance detail with the last check, members, proxies, drain, undrain and
//! maintenance. No front-end toolchain.

use super::ApiContext;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const PAGE: &str = include_str!("ui.html");

pub async fn redirect() -> Response {
    (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, "/ui/")]).into_response()
}

/// The page, with the catalog embedded so it shows at once, unless reads need the
/// token (the page itself is public then and fetches everything with the token).
pub async fn page(State(ctx): State<ApiContext>) -> Response {
    let initial = if ctx.read_token.is_some() {
        "{}".to_string()
    } else {
        let members = ctx.membership.borrow().clone();
        let doc = ctx.rendered().services(&members);
        // JSON inside <script>: only `</` can end the element early.
        String::from_utf8_lossy(&doc).replace("</", "<\\/")
    };
    let html = PAGE.replace("__INITIAL__", &initial);
    let mut resp = html.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}
