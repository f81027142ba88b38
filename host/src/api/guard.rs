//! Who may call the write endpoints (drain and the ones to come).
//!
//! A discovery API that any web page can drive is a remote control for every proxy in
//! the cluster, so writes refuse what a browser sends cross-site: a request whose
//! `Origin` is not the API's own (or that `Sec-Fetch-Site` marks cross-site), and form
//! or `text/plain` bodies, which a page can send without a CORS preflight. A plain
//! `curl -X POST .../drain` with no body, as Sidecar's clients and scripts send it,
//! passes. With an API token configured, writes need `Authorization: Bearer <token>`
//! from anywhere; without one they are accepted from loopback only. Reads stay open,
//! as Sidecar's clients need.

use super::ApiContext;
use super::routes::error;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use std::net::SocketAddr;

pub async fn writes(
    State(ctx): State<ApiContext>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    if let Err((status, why)) = check(ctx.write_token.as_deref(), peer, req.headers()) {
        tracing::warn!(%peer, path = %req.uri().path(), "write refused: {why}");
        return error(status, why);
    }
    next.run(req).await
}

fn check(
    token: Option<&str>,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<(), (StatusCode, &'static str)> {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if text("sec-fetch-site").is_some_and(|s| s == "cross-site" || s == "same-site") {
        return Err((StatusCode::FORBIDDEN, "cross-site requests may not write"));
    }
    if let Some(origin) = text(header::ORIGIN.as_str()) {
        let host = text(header::HOST.as_str()).unwrap_or_default();
        let origin_host = origin
            .split_once("://")
            .map_or(origin, |(_, rest)| rest)
            .trim_end_matches('/');
        if host.is_empty() || !origin_host.eq_ignore_ascii_case(host) {
            return Err((StatusCode::FORBIDDEN, "cross-origin requests may not write"));
        }
    }
    if let Some(ct) = text(header::CONTENT_TYPE.as_str()) {
        let mime = ct
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if matches!(
            mime.as_str(),
            "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain"
        ) {
            return Err((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "form and text/plain bodies may not write",
            ));
        }
    }
    match token {
        Some(expected) => {
            let given = text(header::AUTHORIZATION.as_str())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or_default();
            if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
                return Err((StatusCode::UNAUTHORIZED, "a valid API token is required"));
            }
        }
        None if !peer.ip().is_loopback() => {
            return Err((
                StatusCode::FORBIDDEN,
                "writes are accepted from loopback only (configure SIDECAR_API_TOKEN to allow others)",
            ));
        }
        None => {}
    }
    Ok(())
}

/// With `SIDECAR_API_AUTH_READS`, every request but the liveness probe and the
/// console's static page needs the token: as `Authorization: Bearer`, or, for the
/// console's event stream (a browser's `EventSource` cannot set headers), the
/// `sidecar_token` cookie. Writes still need the header (a cookie rides along on
/// cross-site requests; the header does not).
pub async fn reads(State(ctx): State<ApiContext>, req: Request, next: Next) -> Response {
    if let Some(token) = ctx.read_token.as_deref()
        && !is_public(req.uri().path())
        && !presents(token, req.headers())
    {
        return error(StatusCode::UNAUTHORIZED, "a valid API token is required");
    }
    next.run(req).await
}

/// What stays open: `/health` (probes) and the console page, which holds no data.
fn is_public(path: &str) -> bool {
    matches!(path, "/health" | "/" | "/ui" | "/ui/" | "/ui/index.html")
}

fn presents(token: &str, headers: &HeaderMap) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer.is_some_and(|t| constant_time_eq(t.as_bytes(), token.as_bytes())) {
        return true;
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix("sidecar_token="))
        .any(|t| constant_time_eq(t.as_bytes(), token.as_bytes()))
}

/// Compares without an early exit, so response time says nothing about the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    const LOOPBACK: &str = "127.0.0.1:5000";
    const REMOTE: &str = "10.1.2.3:5000";

    fn peer(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    #[test]
    fn a_plain_curl_post_from_loopback_passes() {
        assert!(
            check(
                None,
                peer(LOOPBACK),
                &headers(&[("host", "127.0.0.1:7777")])
            )
            .is_ok()
        );
    }

    #[test]
    fn without_a_token_only_loopback_writes() {
        let e = check(None, peer(REMOTE), &HeaderMap::new()).expect_err("refused");
        assert_eq!(e.0, StatusCode::FORBIDDEN);
    }

    #[test]
    fn what_a_browser_sends_cross_site_is_refused() {
        for h in [
            headers(&[
                ("host", "127.0.0.1:7777"),
                ("origin", "http://evil.example"),
            ]),
            headers(&[("host", "127.0.0.1:7777"), ("sec-fetch-site", "cross-site")]),
            headers(&[("host", "127.0.0.1:7777"), ("content-type", "text/plain")]),
            headers(&[
                ("host", "127.0.0.1:7777"),
                ("content-type", "application/x-www-form-urlencoded"),
            ]),
            headers(&[("origin", "null")]),
        ] {
            assert!(check(None, peer(LOOPBACK), &h).is_err(), "{h:?}");
        }
        // The API's own page (same origin) may write.
        let own = headers(&[
            ("host", "127.0.0.1:7777"),
            ("origin", "http://127.0.0.1:7777"),
        ]);
        assert!(check(None, peer(LOOPBACK), &own).is_ok());
    }

    #[test]
    fn reads_accept_the_header_or_the_console_cookie() {
        assert!(!presents("s3cret", &HeaderMap::new()));
        assert!(presents(
            "s3cret",
            &headers(&[("authorization", "Bearer s3cret")])
        ));
        assert!(presents(
            "s3cret",
            &headers(&[("cookie", "a=b; sidecar_token=s3cret")])
        ));
        assert!(!presents(
            "s3cret",
            &headers(&[("cookie", "sidecar_token=s3cre")])
        ));
        assert!(is_public("/health") && is_public("/ui/") && !is_public("/api/services.json"));
    }

    #[test]
    fn with_a_token_every_writer_must_present_it() {
        let t = Some("s3cret");
        assert_eq!(
            check(t, peer(LOOPBACK), &HeaderMap::new())
                .expect_err("no token")
                .0,
            StatusCode::UNAUTHORIZED
        );
        let wrong = headers(&[("authorization", "Bearer nope")]);
        assert!(check(t, peer(REMOTE), &wrong).is_err());
        let right = headers(&[("authorization", "Bearer s3cret")]);
        assert!(check(t, peer(REMOTE), &right).is_ok());
    }
}
