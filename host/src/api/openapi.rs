//! The OpenAPI 3.1 document of the API (`/api/openapi.json`), kept by hand in
//! `openapi.json` next to this file.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

pub const DOCUMENT: &str = include_str!("openapi.json");

pub async fn document() -> Response {
    let mut resp = DOCUMENT.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    #[test]
    fn document_is_valid_json_and_lists_the_routes() {
        let v: serde_json::Value = serde_json::from_str(super::DOCUMENT).expect("valid JSON");
        for p in [
            "/api/services.json",
            "/api/services/{name}.json",
            "/api/state.json",
            "/api/watch",
            "/api/services/{id}/drain",
            "/api/services/{id}/ttl/{state}",
            "/metrics",
        ] {
            assert!(v["paths"].get(p).is_some(), "{p} documented");
        }
    }
}
