//! `http.get` and `http.get-with-bearer-token`: a GET on the plugin's behalf, within its
//! `http` grant.
//!
//! Redirects are followed here (not by reqwest) so that every hop is checked against
//! the allow-list *before* connecting. The whole exchange, redirects included, is
//! bounded by the request's timeout and the call's I/O deadline; the body is cut at
//! [`BODY_CAP`]. Proxies from the environment are ignored: they would make the
//! allow-list meaningless.
//!
//! Secrets stay on this side: the bearer token is read from the granted file for every
//! request (a stat-and-read of a small file, cheaper than the request, and a rotated
//! token is never stale), marked sensitive, and sent to the first URL's origin only. A
//! `ca_file` grant gives the plugin its own client trusting that bundle too, rebuilt
//! when the file changes.

use super::bindings::sidecar::plugin::http::{self, Error, Request, Response};
use crate::grants::Grants;
use crate::state::HostState;
use parking_lot::Mutex;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, LOCATION};
use reqwest::{StatusCode, Url};
use std::error::Error as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tokio::io::AsyncReadExt;

/// Largest response body handed to a plugin.
pub const BODY_CAP: usize = 1 << 20;
/// Largest bearer token file read (service-account JWTs are about 1 KiB).
const TOKEN_CAP: u64 = 64 << 10;
/// Largest CA bundle read.
const CA_CAP: u64 = 4 << 20;

impl http::Host for HostState {
    async fn get(&mut self, req: Request) -> Result<Response, Error> {
        self.http_get(req, false).await
    }

    async fn get_with_bearer_token(&mut self, req: Request) -> Result<Response, Error> {
        self.http_get(req, true).await
    }
}

impl HostState {
    async fn http_get(&mut self, req: Request, bearer: bool) -> Result<Response, Error> {
        let budget = self.io_budget(req.timeout_ms);
        let plugin = self.plugin.clone();
        let result = get(&plugin.http, &plugin.grants, &req, budget, bearer).await;
        if let Err(Error::Denied(why)) = &result {
            tracing::warn!(plugin = %plugin.name, url = %req.url, "http.get denied: {why}");
        }
        result
    }
}

/// The runtime's shared client: no redirects (we follow them), no proxies.
pub(crate) fn client() -> anyhow::Result<reqwest::Client> {
    Ok(builder().build()?)
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("sidecar/", env!("CARGO_PKG_VERSION")))
}

/// The HTTP clients of one plugin: the shared one, and with a `ca_file` grant, one of its
/// own for `https://` that also trusts that bundle.
pub(crate) struct PluginHttp {
    shared: reqwest::Client,
    ca: Option<CaClient>,
}

struct CaClient {
    path: PathBuf,
    /// The client built from the bundle as it was when `FileStamp` was taken.
    cached: Mutex<Option<(FileStamp, reqwest::Client)>>,
}

/// What tells a changed file (a Kubernetes secret update swaps a symlink: new inode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl PluginHttp {
    pub fn new(shared: reqwest::Client, ca_file: Option<PathBuf>) -> PluginHttp {
        PluginHttp {
            shared,
            ca: ca_file.map(|path| CaClient {
                path,
                cached: Mutex::new(None),
            }),
        }
    }

    /// The client for `url`: the CA client for `https://` when there is a bundle.
    async fn for_url(&self, url: &Url) -> Result<reqwest::Client, Error> {
        match &self.ca {
            Some(ca) if url.scheme() == "https" => ca.client().await,
            _ => Ok(self.shared.clone()),
        }
    }
}

impl CaClient {
    async fn client(&self) -> Result<reqwest::Client, Error> {
        let fail = |why: String| Error::Other(format!("CA bundle {}: {why}", self.path.display()));
        let meta = tokio::fs::metadata(&self.path)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let stamp = FileStamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            inode: std::os::unix::fs::MetadataExt::ino(&meta),
        };
        if let Some((cached, client)) = self.cached.lock().as_ref()
            && *cached == stamp
        {
            return Ok(client.clone());
        }
        let pem = read_capped(&self.path, CA_CAP).await.map_err(fail)?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| fail(format!("not a PEM bundle: {e}")))?;
        if certs.is_empty() {
            return Err(fail("no certificate in the file".into()));
        }
        let client = certs
            .into_iter()
            .fold(builder(), reqwest::ClientBuilder::add_root_certificate)
            .build()
            .map_err(|e| fail(e.to_string()))?;
        tracing::debug!(file = %self.path.display(), "CA bundle loaded");
        *self.cached.lock() = Some((stamp, client.clone()));
        Ok(client)
    }
}

/// The whole file, refused when larger than `cap`.
async fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, String> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > cap {
        return Err(format!("larger than {} KiB", cap >> 10));
    }
    Ok(bytes)
}

/// `Bearer <token>` from the granted file, marked sensitive (never logged).
async fn bearer_header(grants: &Grants) -> Result<HeaderValue, Error> {
    let path = grants.bearer_token_file.as_ref().ok_or_else(|| {
        Error::Denied(
            "no bearer token grant (grant it in plugins.toml: grants.bearer_token_file)".into(),
        )
    })?;
    let fail = |why: &str| Error::Other(format!("bearer token file {}: {why}", path.display()));
    let bytes = read_capped(path, TOKEN_CAP).await.map_err(|e| fail(&e))?;
    let token = std::str::from_utf8(&bytes)
        .map_err(|_| fail("not UTF-8"))?
        .trim();
    if token.is_empty() {
        return Err(fail("empty"));
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| fail("not a valid header value"))?;
    value.set_sensitive(true);
    Ok(value)
}

/// Performs the request; public within the crate for tests and benchmarks. With
/// `bearer`, the granted token is sent.
pub(crate) async fn get(
    http: &PluginHttp,
    grants: &Grants,
    req: &Request,
    budget: Duration,
    bearer: bool,
) -> Result<Response, Error> {
    match tokio::time::timeout(budget, follow(http, grants, req, bearer)).await {
        Ok(result) => result,
        Err(_) => Err(Error::Timeout),
    }
}

async fn follow(
    http: &PluginHttp,
    grants: &Grants,
    req: &Request,
    bearer: bool,
) -> Result<Response, Error> {
    let mut headers = headers(&req.headers)?;
    let mut url = parse_url(&req.url)?;
    let token = if bearer {
        check_allowed(grants, &url)?;
        headers.remove(AUTHORIZATION);
        Some((url.origin(), bearer_header(grants).await?))
    } else {
        None
    };
    let mut hops = 0u8;
    loop {
        check_allowed(grants, &url)?;
        let mut hop_headers = headers.clone();
        if let Some((origin, value)) = &token
            && url.origin() == *origin
        {
            hop_headers.insert(AUTHORIZATION, value.clone());
        }
        let resp = http
            .for_url(&url)
            .await?
            .get(url.clone())
            .headers(hop_headers)
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

    /// Like `serve`, and hands back the head of each request it answered.
    fn serve_recording(responses: Vec<Vec<u8>>) -> (u16, std::sync::mpsc::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for response in responses {
                let Ok((mut conn, _)) = listener.accept() else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let n = conn.read(&mut buf).unwrap_or(0);
                let _ = tx.send(String::from_utf8_lossy(&buf[..n]).to_lowercase());
                let _ = conn.write_all(&response);
            }
        });
        (port, rx)
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

    #[tokio::test]
    async fn the_bearer_token_is_read_per_request_and_stays_on_its_origin() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token = dir.path().join("token");
        std::fs::write(&token, "tok-1\n").expect("write");
        let grants = Grants {
            bearer_token_file: Some(token.clone()),
            ..loopback()
        };
        let (other, other_seen) = serve_recording(vec![OK.to_vec()]);
        let redirect = format!(
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{other}/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let (port, seen) = serve_recording(vec![redirect.into_bytes(), OK.to_vec()]);
        let client = PluginHttp::new(client().expect("client"), None);
        let mut req = request(format!("http://127.0.0.1:{port}/"), 1);
        req.headers
            .push(("Authorization".into(), "Bearer from-the-plugin".into()));
        let r = get(&client, &grants, &req, Duration::from_secs(5), true).await;
        assert_eq!(r.map(|r| r.status).ok(), Some(200));
        let first = seen.recv().expect("first request");
        assert!(first.contains("authorization: bearer tok-1\r\n"), "{first}");
        assert!(!first.contains("from-the-plugin"), "{first}");
        let hop = other_seen.recv().expect("redirected request");
        assert!(!hop.contains("authorization"), "another origin: {hop}");

        // Rotated: the next request carries the new token.
        std::fs::write(&token, "tok-2").expect("write");
        let req = request(format!("http://127.0.0.1:{port}/"), 0);
        let r = get(&client, &grants, &req, Duration::from_secs(5), true).await;
        assert_eq!(r.map(|r| r.status).ok(), Some(200));
        let second = seen.recv().expect("second request");
        assert!(
            second.contains("authorization: bearer tok-2\r\n"),
            "{second}"
        );

        // Gone: an error naming the file, and no request made.
        std::fs::remove_file(&token).expect("rm");
        let r = get(&client, &grants, &req, Duration::from_secs(5), true).await;
        assert!(
            matches!(&r, Err(Error::Other(m)) if m.contains(&token.display().to_string())),
            "{r:?}"
        );
        let r = get(&client, &loopback(), &req, Duration::from_secs(5), true).await;
        assert!(
            matches!(&r, Err(Error::Denied(m)) if m.contains("bearer_token_file")),
            "{r:?}"
        );
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
        let client = PluginHttp::new(client().expect("client"), None);
        let r = get(
            &client,
            &loopback(),
            &request(format!("http://127.0.0.1:{port}/"), 10),
            Duration::from_secs(5),
            false,
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
        let client = PluginHttp::new(client().expect("client"), None);
        let r = get(
            &client,
            &loopback(),
            &request(format!("http://127.0.0.1:{port}/big"), 0),
            Duration::from_secs(5),
            false,
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
            false,
        )
        .await;
        assert_eq!(r.map(|r| r.status).ok(), Some(301));
    }

    #[tokio::test]
    async fn the_budget_bounds_the_whole_exchange() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        // Accepts (via the backlog) but never answers.
        let client = PluginHttp::new(client().expect("client"), None);
        let started = std::time::Instant::now();
        let r = get(
            &client,
            &loopback(),
            &request(format!("http://127.0.0.1:{port}/"), 0),
            Duration::from_millis(300),
            false,
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
