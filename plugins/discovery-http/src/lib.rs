//! Discovery source `discovery-http`: GETs a URL (through the host's `http` import, so
//! plugins.toml must grant it) whose body lists this host's services in Sidecar's
//! static.json format:
//!
//! ```json
//! [ { "Service": { "Name": "db", "Ports": [ { "Type": "tcp", "Port": 5432, "ServicePort": 5432 } ] },
//!     "Check": { "Type": "HttpGet", "Args": "http://:8080/health" }, "ListenPort": 9999 } ]
//! ```
//!
//! Keys match case-insensitively and unknown keys are ignored (Go's leniency). A target
//! without `ID` gets a stable one: 12 hex digits of a hash of hostname, name, ports and
//! its rank among identical targets. A non-2xx answer or a body that does not parse is
//! an error, so the host keeps the previous result.
//!
//! Settings: `url` (required), `timeout_ms` (default 2000).
//!
//! ```toml
//! [[discovery]]
//! plugin = "discovery-http"
//! interval = "5s"
//!
//! [plugins.discovery-http]
//! settings = { url = "http://127.0.0.1:8500/services.json" }
//! grants = { http = ["127.0.0.1:8500"] }
//! ```

wit_bindgen::generate!({ world: "discovery-source", path: "../../wit" });

mod parse;

use exports::sidecar::plugin::discovery::Discovered;
use exports::sidecar::plugin::{discovery, lifecycle};
use sidecar::plugin::http;
use std::cell::RefCell;

struct Settings {
    url: String,
    timeout_ms: u32,
}

thread_local! {
    static SETTINGS: RefCell<Option<Settings>> = const { RefCell::new(None) };
}

struct DiscoveryHttp;

impl lifecycle::Guest for DiscoveryHttp {
    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        let mut url = None;
        let mut timeout_ms = 2000;
        for (key, value) in settings {
            match key.as_str() {
                "url" if value.starts_with("http://") || value.starts_with("https://") => {
                    url = Some(value)
                }
                "url" => {
                    return Err(format!(
                        "`url` must be an http:// or https:// URL, got {value:?}"
                    ));
                }
                "timeout_ms" => {
                    timeout_ms = value.parse().map_err(|_| {
                        format!("`timeout_ms` must be a number of milliseconds, got {value:?}")
                    })?
                }
                other => {
                    return Err(format!(
                        "unknown setting `{other}` (known: url, timeout_ms)"
                    ));
                }
            }
        }
        let url = url.ok_or("the `url` setting is required")?;
        SETTINGS.with(|s| *s.borrow_mut() = Some(Settings { url, timeout_ms }));
        Ok(())
    }
}

impl discovery::Guest for DiscoveryHttp {
    fn discover() -> Result<Vec<Discovered>, String> {
        let (url, timeout_ms) = SETTINGS.with(|s| {
            s.borrow()
                .as_ref()
                .map(|s| (s.url.clone(), s.timeout_ms))
                .ok_or_else(|| "not configured".to_string())
        })?;
        let resp = http::get(&http::Request {
            url: url.clone(),
            headers: vec![("Accept".into(), "application/json".into())],
            timeout_ms,
            max_redirects: 3,
        })
        .map_err(|e| match e {
            http::Error::Denied(why) => format!("GET {url} denied: {why}"),
            http::Error::Timeout => format!("GET {url}: no answer within {timeout_ms} ms"),
            http::Error::Connect(why) | http::Error::InvalidUrl(why) | http::Error::Other(why) => {
                format!("GET {url}: {why}")
            }
        })?;
        if !(200..300).contains(&resp.status) {
            return Err(format!("GET {url}: HTTP {}", resp.status));
        }
        let text =
            String::from_utf8(resp.body).map_err(|_| format!("GET {url}: body is not UTF-8"))?;
        parse::targets(&text).map_err(|e| format!("GET {url}: {e}"))
    }
}

export!(DiscoveryHttp);
