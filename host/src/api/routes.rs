//! Sidecar's read routes, drain, errors and CORS, byte-compatible with the Go server.

use super::ApiContext;
use super::render::{one_service as render_one, pretty};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use sidecar_catalog::DrainError;

const JSON: &str = "application/json";

pub fn json(status: StatusCode, body: Bytes) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    resp
}

/// `{"message":..,"status":"error"}`.
pub fn error(status: StatusCode, message: &str) -> Response {
    #[derive(Serialize)]
    struct E<'a> {
        message: &'a str,
        status: &'static str,
    }
    let body = serde_json::to_vec(&E {
        message,
        status: "error",
    })
    .unwrap_or_default();
    json(status, Bytes::from(body))
}

/// The CORS headers of the services, one-service and state handlers.
pub fn cors(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET"),
    );
    resp
}

/// Go's `http.NotFound`.
pub async fn not_found() -> Response {
    let mut resp = (StatusCode::NOT_FOUND, "404 page not found\n").into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

fn bad_extension() -> Response {
    cors(error(
        StatusCode::NOT_FOUND,
        "Not Found - Invalid content type extension",
    ))
}

/// `name.ext` split at the last dot (gorilla's `{name}.{extension}`, name greedy).
fn split_ext(file: &str) -> Option<(&str, &str)> {
    file.rsplit_once('.')
        .filter(|(n, e)| !n.is_empty() && !e.is_empty())
}

pub async fn root() -> Response {
    (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, "/ui/")]).into_response()
}

/// `/api/services.{ext}`, `/api/state.{ext}`.
pub async fn api_file(State(ctx): State<ApiContext>, Path(file): Path<String>) -> Response {
    file_route(&ctx, &file).await
}

/// The deprecated `/services.{ext}`, `/state.{ext}` (defaults of haproxy-api,
/// sidecar-executor and sidecar-dns).
pub async fn top_file(State(ctx): State<ApiContext>, Path(file): Path<String>) -> Response {
    file_route(&ctx, &file).await
}

async fn file_route(ctx: &ApiContext, file: &str) -> Response {
    match split_ext(file) {
        Some(("services", ext)) => {
            if ext != "json" {
                return bad_extension();
            }
            let members = ctx.membership.borrow().clone();
            let rendered = ctx.rendered();
            let body = rendered.services(&members);
            cors(json(StatusCode::OK, body))
        }
        Some(("state", ext)) => {
            if ext != "json" {
                return bad_extension();
            }
            let rendered = ctx.rendered();
            let body = rendered.state();
            cors(json(StatusCode::OK, body))
        }
        _ => not_found().await,
    }
}

/// `/api/services/{name}.json`.
pub async fn one_service(State(ctx): State<ApiContext>, Path(key): Path<String>) -> Response {
    let Some((name, ext)) = split_ext(&key) else {
        return not_found().await;
    };
    if ext != "json" {
        return bad_extension();
    }
    let snap = ctx.catalog.snapshot();
    match render_one(&snap.state, name) {
        Some(body) => cors(json(StatusCode::OK, body)),
        None => cors(error(
            StatusCode::NOT_FOUND,
            &format!("no instances of {name} found"),
        )),
    }
}

/// `POST /api/services/{id}/drain`: 202 and DRAINING, or 404 for an ID not ours.
pub async fn drain(State(ctx): State<ApiContext>, Path(id): Path<String>) -> Response {
    let name = ctx.catalog.read(|c| {
        let me = c.hostname().to_string();
        c.state().get(&me, &id).map(|s| s.name.clone()).or_else(|| {
            c.state()
                .services()
                .find(|s| {
                    s.id == id
                        && c.announcer_of(&s.hostname, &s.id)
                            .is_some_and(|a| **a == *me)
                })
                .map(|s| s.name.clone())
        })
    });
    match ctx.catalog.drain(&id) {
        Ok(_) => {
            #[derive(Serialize)]
            struct Doc {
                #[serde(rename = "Message")]
                message: String,
            }
            let name = name.unwrap_or_default();
            tracing::info!(%id, %name, "drain requested");
            json(
                StatusCode::ACCEPTED,
                pretty(&Doc {
                    message: format!("Service {name:?} instance {id:?} set to DRAINING"),
                }),
            )
        }
        Err(e @ DrainError::NotFound(_)) => {
            error(StatusCode::NOT_FOUND, &format!("Not Found - {e}"))
        }
    }
}

/// `POST /api/services/{id}/undrain`: 202 and the drain ended (ALIVE again unless the
/// node is in maintenance), or 404 for an ID not ours. Sidecar had no undrain.
pub async fn undrain(State(ctx): State<ApiContext>, Path(id): Path<String>) -> Response {
    match ctx.catalog.undrain(&id) {
        Ok(_) => {
            #[derive(Serialize)]
            struct Doc {
                #[serde(rename = "Message")]
                message: String,
            }
            tracing::info!(%id, "undrain requested");
            let note = if ctx.catalog.maintenance() {
                " (the node is in maintenance: it stays DRAINING until maintenance is off)"
            } else {
                ""
            };
            json(
                StatusCode::ACCEPTED,
                pretty(&Doc {
                    message: format!("Service instance {id:?} is no longer drained{note}"),
                }),
            )
        }
        Err(e @ DrainError::NotFound(_)) => {
            error(StatusCode::NOT_FOUND, &format!("Not Found - {e}"))
        }
    }
}

/// `GET /api/maintenance`: `{"enabled":..,"reason":..,"since":..}`.
pub async fn maintenance_get(State(ctx): State<ApiContext>) -> Response {
    match &ctx.maintenance {
        Some(m) => json(StatusCode::OK, pretty(&m.state())),
        None => error(StatusCode::NOT_FOUND, "Not Found - no maintenance switch"),
    }
}

/// `POST /api/maintenance` with `{"enabled":true,"reason":".."}`: turns node
/// maintenance on or off and answers the new state.
pub async fn maintenance_set(State(ctx): State<ApiContext>, body: Bytes) -> Response {
    #[derive(serde::Deserialize)]
    struct Req {
        enabled: bool,
        #[serde(default)]
        reason: String,
    }
    let Some(m) = &ctx.maintenance else {
        return error(StatusCode::NOT_FOUND, "Not Found - no maintenance switch");
    };
    let req: Req = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("expected {{\"enabled\": true|false, \"reason\": \"...\"}}: {e}"),
            );
        }
    };
    match m.set(req.enabled, &req.reason) {
        Ok(state) => json(StatusCode::OK, pretty(&state)),
        Err(why) => {
            tracing::error!("{why}");
            error(StatusCode::INTERNAL_SERVER_ERROR, &why)
        }
    }
}

/// `OPTIONS /api/{path}`: 200, empty body, CORS headers.
pub async fn options() -> Response {
    cors(Body::empty().into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_split_is_greedy_on_the_name() {
        assert_eq!(split_ext("a.b.json"), Some(("a.b", "json")));
        assert_eq!(split_ext("services.xml"), Some(("services", "xml")));
        assert_eq!(split_ext("services"), None);
        assert_eq!(split_ext(".json"), None);
    }
}
