//! `GET /api/checks.json`: each local instance's check and its last result (type,
//! arguments, outcome, message, time, duration), sorted by service name and ID.
//! `sidecar checks` and the console read it.
//!
//! `PUT /api/services/{id}/ttl/{pass|warn|fail}`: a service's report about itself, for
//! its `Ttl` check (a write: [`super::guard::writes`] applies).

use super::ApiContext;
use super::render::pretty;
use super::routes::{error, json};
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use bytes::Bytes;
use sidecar_plugin_host::TtlState;

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

/// The note of a TTL report: `?note=` in the query, else a JSON body's `note` (or
/// Consul's `Output`), else none.
fn note(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Result<String, String> {
    if let Some(v) = query.and_then(|q| q.split('&').find_map(|p| p.strip_prefix("note="))) {
        return percent_decode(v);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(String::new());
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| ct.trim_start().starts_with("application/json"));
    if !is_json {
        return Err("send the note as JSON ({\"note\": \"...\"}) or as ?note=".into());
    }
    let doc: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| format!("body: expected {{\"note\": \"...\"}}: {e}"))?;
    let field = ["note", "Note", "output", "Output"]
        .iter()
        .find_map(|k| doc.get(*k));
    match field {
        None => Ok(String::new()),
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(_) => Err("body: `note` must be a string".into()),
    }
}

/// `a%20b` and `a+b` -> `a b`.
fn percent_decode(v: &str) -> Result<String, String> {
    let bad = || "?note=: bad percent-encoding".to_string();
    let mut out = Vec::with_capacity(v.len());
    let mut bytes = v.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = [bytes.next().ok_or_else(bad)?, bytes.next().ok_or_else(bad)?];
                let hex = std::str::from_utf8(&hex).map_err(|_| bad())?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            }
            b => out.push(b),
        }
    }
    String::from_utf8(out).map_err(|_| "?note=: not UTF-8".to_string())
}

/// `PUT /api/services/{id}/ttl/{state}`: 200 and the report recorded; 400 for a state
/// other than pass, warn, fail or a bad note; 404 for an ID that is not a local service.
pub async fn ttl_report(
    State(ctx): State<ApiContext>,
    Path((id, state)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(parsed) = TtlState::parse(&state) else {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("Bad Request - TTL state {state:?}: expected pass, warn or fail"),
        );
    };
    let note = match note(query.as_deref(), &headers, &body) {
        Ok(n) => n,
        Err(why) => return error(StatusCode::BAD_REQUEST, &format!("Bad Request - {why}")),
    };
    let Some(local) = &ctx.local else {
        return error(StatusCode::NOT_FOUND, "Not Found - no local services");
    };
    match local.report(&id, parsed, &note) {
        Some(name) => {
            #[derive(serde::Serialize)]
            struct Doc {
                #[serde(rename = "Message")]
                message: String,
            }
            json(
                StatusCode::OK,
                pretty(&Doc {
                    message: format!(
                        "TTL report {state} recorded for service {name:?} instance {id:?}"
                    ),
                }),
            )
        }
        None => error(
            StatusCode::NOT_FOUND,
            &format!("Not Found - no local service has the ID {id:?}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_from_the_query_or_a_json_body() {
        let none = HeaderMap::new();
        assert_eq!(
            note(Some("note=disk%2080%25+used"), &none, b""),
            Ok("disk 80% used".into())
        );
        assert!(note(Some("note=%zz"), &none, b"").is_err());
        assert_eq!(note(Some("x=1&note=a"), &none, b""), Ok("a".into()));
        assert_eq!(note(None, &none, b""), Ok(String::new()));
        assert_eq!(note(None, &none, br#"{"note":"ok"}"#), Ok("ok".into()));
        assert_eq!(
            note(None, &none, br#"{"Output":"consul"}"#),
            Ok("consul".into())
        );
        assert!(note(None, &none, br#"{"note":1}"#).is_err());
        assert!(note(None, &none, b"not json").is_err());
        let mut octets = HeaderMap::new();
        octets.insert(
            header::CONTENT_TYPE,
            "application/octet-stream".parse().expect("v"),
        );
        assert!(note(None, &octets, b"x").is_err());
    }
}
