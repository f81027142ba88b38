//! `http.get`: a GET on the plugin's behalf, within its `http` grant.
//!
//! Redirects are followed here (not by reqwest) so that every hop is checked against
//! the allow-list *before* connecting. The whole exchange, redirects included, is
//! bounded by the request's timeout and the call's I/O deadline; the body is cut at
//! [`BODY_CAP`]. Proxies from the environment are ignored: they would make the
//! allow-list meaningless.

use super::bindings::sidecar::plugin::http::{self, Error, Request, Response};
use crate::grants::Grants;
use crate::state::HostState;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, LOCATION};
use reqwest::{StatusCode, Url};
use std::error::Error as _;
use std::time::Duration;

/// Largest response body handed to a plugin.
pub const BODY_CAP: usize = 1 << 20;

impl http::Host for HostState {
    async fn get(&mut self, req: Request) -> Result<Response, Error> {
        let budget = self.io_budget(req.timeout_ms);
        let plugin = self.plugin.clone();
        let result = get(&plugin.http, &plugin.grants, &req, budget).await;
        if let Err(Error::Denied(why)) = &result {
            tracing::warn!(plugin = %plugin.name, url = %req.url, "http.get denied: {why}");
        }
        result
    }
}

/// The client the runtime shares between plugins.
pub(crate) fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("sidecar/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// Performs the request; public within the crate for tests and benchmarks.
pub(crate) async fn get(
    client: &reqwest::Client,
    grants: &Grants,
    req: &Request,
    budget: Duration,
) -> Result<Response, Error> {
    match tokio::time::timeout(budget, follow(client, grants, req)).await {
        Ok(result) => result,
        Err(_) => Err(Error::Timeout),
    }
}

async fn follow(
    client: &reqwest::Client,
    grants: &Grants,
    req: &Request,
) -> Result<Response, Error> {
    let headers = headers(&req.headers)?;
    let mut url = parse_url(&req.url)?;
    let mut hops = 0u8;
    loop {
        check_allowed(grants, &url)?;
        let resp = client
            .get(url.clone())
            .headers(headers.clone())
            .send()
            .await
            .map_err(|e| classify(&url, &e))?;
        let status = resp.status();
        if is_followed_redirect(status)
            && hops < req.max_redirects
            && let Some(next) = resp.headers().get(LOCATION).and_then(|l| l.to_str().ok())
        {
            url = url
                .join(next)
                .map_err(|e| Error::InvalidUrl(format!("redirect to {next:?}: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(Error::InvalidUrl(format!(
                    "redirect to unsupported scheme: {url}"
                )));
            }
            hops += 1;
            continue;
        }
        return read_response(url, resp).await;
    }
}

/// Go's client follows 301, 302, 303, 307 and 308.
fn is_followed_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// Parses `http(s)://` URLs; an empty host (`http://:8080/x`) means 127.0.0.1, as for
/// Go's client (which dials the local system).
pub(crate) fn parse_url(raw: &str) -> Result<Url, Error> {
    let raw = raw.trim();
    let fixed;
    let raw = match raw.split_once("://") {
        Some((scheme, rest)) if rest.starts_with(':') => {
            fixed = format!("{scheme}://127.0.0.1{rest}");
            fixed.as_str()
        }
        _ => raw,
    };
    let url = Url::parse(raw).map_err(|e| Error::InvalidUrl(format!("{raw:?}: {e}")))?;
    match url.scheme() {
        "http" | "https" if url.host_str().is_some_and(|h| !h.is_empty()) => Ok(url),
        "http" | "https" => Err(Error::InvalidUrl(format!("{raw:?}: no host"))),
        other => Err(Error::InvalidUrl(format!(
            "{raw:?}: unsupported scheme {other:?} (http, https)"
        ))),
    }
}

fn check_allowed(grants: &Grants, url: &Url) -> Result<(), Error> {
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(80);
    if grants.http.is_empty() {
        return Err(Error::Denied(format!(
            "no http grant: {host}:{port} not allowed (grant it in plugins.toml: grants.http)"
        )));
    }
    if grants.allows_http(host, port) {
        return Ok(());
    }
    let allowed: Vec<String> = grants.http.iter().map(ToString::to_string).collect();
    Err(Error::Denied(format!(
        "{host}:{port} is not in the http grant [{}]",
        allowed.join(", ")
    )))
}

fn headers(list: &[(String, String)]) -> Result<HeaderMap, Error> {
    let mut map = HeaderMap::new();
    for (k, v) in list {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| Error::Other(format!("bad header name {k:?}")))?;
        let value = HeaderValue::from_str(v)
            .map_err(|_| Error::Other(format!("bad value for header {k}")))?;
        map.append(name, value);
    }
    Ok(map)
}

async fn read_response(url: Url, mut resp: reqwest::Response) -> Result<Response, Error> {
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| classify(&url, &e))? {
        let room = BODY_CAP - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= BODY_CAP {
            break;
        }
    }
    Ok(Response {
        status,
        headers,
        body,
        final_url: url.to_string(),
    })
}

/// reqwest's top-level message is generic ("error sending request"); the cause chain
/// has the useful part ("Connection refused").
fn classify(url: &Url, e: &reqwest::Error) -> Error {
    if e.is_timeout() {
        return Error::Timeout;
    }
    let mut why = String::new();
    let mut source = e.source();
    while let Some(s) = source {
        why = s.to_string();
        source = s.source();
    }
    if why.is_empty() {
        why = e.to_string();
    }
    let target = format!(
        "{}:{}",
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or(80)
    );
    if e.is_connect() {
        Error::Connect(format!("connect to {target}: {why}"))
    } else {
        Error::Other(format!("{target}: {why}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grants::HostPattern;

    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// Serves one connection per entry of `responses`, in order, on 127.0.0.1.
    fn serve(responses: Vec<Vec<u8>>) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            for response in responses {
                let Ok((mut conn, _)) = listener.accept() else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(&response);
            }
        });
        port
    }

    fn request(url: String, max_redirects: u8) -> Request {
        Request {
            url,
            headers: vec![("X-Test".into(), "1".into())],
            timeout_ms: 0,
            max_redirects,
        }
    }

    fn loopback() -> Grants {
        Grants {
            http: vec![HostPattern::parse("127.0.0.1:*").expect("ok")],
            ..Grants::default()
        }
    }

    #[tokio::test]
    async fn redirect_targets_are_checked_before_connecting() {
        let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
        closed.set_nonblocking(true).expect("nonblocking");
        let target = closed.local_addr().expect("addr").port();
        let redirect = format!(
            "HTTP/1.1 302 Found\r\nLocation: http://localhost:{target}/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let port = serve(vec![redirect.into_bytes()]);
        let client = client().expect("client");
        let r = get(
            &client,
            &loopback(),
            &request(format!("http://127.0.0.1:{port}/"), 10),
            Duration::from_secs(5),
        )
        .await;
        assert!(
            matches!(&r, Err(Error::Denied(m)) if m.contains(&format!("localhost:{target}"))),
            "{r:?}"
        );
        assert!(
            closed.accept().is_err(),
            "the denied hop was never contacted"
        );
    }

    #[tokio::test]
    async fn bodies_are_capped_and_redirects_counted() {
        let big = vec![b'x'; BODY_CAP + 12345];
        let mut response = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            big.len()
        )
        .into_bytes();
        response.extend_from_slice(&big);
        let port = serve(vec![response]);
        let client = client().expect("client");
        let r = get(
            &client,
            &loopback(),
            &request(format!("http://127.0.0.1:{port}/big"), 0),
            Duration::from_secs(5),
        )
        .await;
        let r = r.map_err(|e| format!("{e:?}")).expect("GET");
        assert_eq!((r.status, r.body.len()), (200, BODY_CAP));

        // max_redirects = 0 returns the 3xx itself.
        let redirect =
            b"HTTP/1.1 301 Moved\r\nLocation: /x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_vec();
        let port = serve(vec![redirect]);
        let r = get(
            &client,
            &loopback(),
            &request(format!("http://127.0.0.1:{port}/"), 0),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(r.map(|r| r.status).ok(), Some(301));
    }

    #[tokio::test]
    async fn the_budget_bounds_the_whole_exchange() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        // Accepts (via the backlog) but never answers.
        let client = client().expect("client");
        let started = std::time::Instant::now();
        let r = get(
            &client,
            &loopback(),
            &request(format!("http://127.0.0.1:{port}/"), 0),
            Duration::from_millis(300),
        )
        .await;
        assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(listener);
    }

    #[test]
    fn empty_host_means_loopback() {
        assert_eq!(
            parse_url("http://:8080/x")
                .ok()
                .map(|u| u.to_string())
                .as_deref(),
            Some("http://127.0.0.1:8080/x")
        );
        assert!(matches!(parse_url("ftp://h/x"), Err(Error::InvalidUrl(_))));
        assert!(matches!(parse_url("not a url"), Err(Error::InvalidUrl(_))));
    }

    #[test]
    fn allow_list_is_checked_with_default_ports() {
        let grants = Grants {
            http: vec![HostPattern::parse("example.test:80").expect("ok")],
            ..Grants::default()
        };
        assert!(check_allowed(&grants, &parse_url("http://example.test/a").expect("url")).is_ok());
        let denied = check_allowed(&grants, &parse_url("https://example.test/a").expect("url"));
        assert!(matches!(denied, Err(Error::Denied(m)) if m.contains("example.test:443")));
        let none = check_allowed(
            &Grants::default(),
            &parse_url("http://127.0.0.1/").expect("url"),
        );
        assert!(matches!(none, Err(Error::Denied(m)) if m.contains("no http grant")));
    }
}
