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

mod parse;

use sidecar_plugin_sdk::discovery_source::{self, Discovered, DiscoverySource};
use sidecar_plugin_sdk::{Settings, http};
use std::cell::RefCell;

struct Config {
    url: String,
    timeout_ms: u32,
}

thread_local! {
    static CONFIG: RefCell<Option<Config>> = const { RefCell::new(None) };
}

struct DiscoveryHttp;

impl DiscoverySource for DiscoveryHttp {
    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        let s = Settings::new(&settings, &["url", "timeout_ms"])?;
        let url = s
            .map("url", |v| {
                if v.starts_with("http://") || v.starts_with("https://") {
                    Ok(v.to_string())
                } else {
                    Err(format!(
                        "`url` must be an http:// or https:// URL, got {v:?}"
                    ))
                }
            })?
            .ok_or("the `url` setting is required")?;
        let timeout_ms = s
            .map("timeout_ms", |v| {
                v.parse().map_err(|_| {
                    format!("`timeout_ms` must be a number of milliseconds, got {v:?}")
                })
            })?
            .unwrap_or(2000);
        CONFIG.with(|c| *c.borrow_mut() = Some(Config { url, timeout_ms }));
        Ok(())
    }

    fn discover() -> Result<Vec<Discovered>, String> {
        let (url, timeout_ms) = CONFIG.with(|c| {
            c.borrow()
                .as_ref()
                .map(|c| (c.url.clone(), c.timeout_ms))
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

discovery_source::export!(DiscoveryHttp);
