//! Health-check type `HttpGet`, Sidecar's default check: GET the URL in the check's
//! arguments through the host's `http.get` import.
//!
//! * Final status 200–299, after following up to 10 redirects (Go's client), is healthy.
//! * Any other final status, a connection failure (refused, reset, DNS, TLS) or no
//!   answer within the check's timeout is unhealthy, with the reason as the message.
//! * An empty host (`http://:8080/health`) means 127.0.0.1, as Go's client dials it.
//! * A destination outside the plugin's `http` grant, or a URL that does not parse, is
//!   an error (the check could not be carried out), reported with the host's reason.
//!
//! No settings.

use sidecar_plugin_sdk::health_check::{self, CheckRequest, CheckResult, HealthCheck};
use sidecar_plugin_sdk::{Settings, http};

/// Go's `http.Client` default.
const MAX_REDIRECTS: u8 = 10;

struct HttpGet;

impl HealthCheck for HttpGet {
    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        Settings::none(&settings, "HttpGet")
    }

    fn check(req: CheckRequest) -> Result<CheckResult, String> {
        let url = req.args.trim();
        if url.is_empty() {
            return Err("HttpGet needs a URL as its argument".to_string());
        }
        let request = http::Request {
            url: url.to_string(),
            headers: vec![("User-Agent".to_string(), "sidecar-healthcheck".to_string())],
            timeout_ms: req.timeout_ms,
            max_redirects: MAX_REDIRECTS,
        };
        match http::get(&request) {
            Ok(resp) => Ok(judge(resp.status, &resp.final_url)),
            Err(http::Error::Timeout) => Ok(CheckResult::unhealthy(format!(
                "GET {url}: no answer within {} ms",
                req.timeout_ms
            ))),
            Err(http::Error::Connect(why)) => {
                Ok(CheckResult::unhealthy(format!("GET {url}: {why}")))
            }
            Err(http::Error::Other(why)) => Ok(CheckResult::unhealthy(format!("GET {url}: {why}"))),
            Err(http::Error::Denied(why)) => Err(format!("GET {url} denied: {why}")),
            Err(http::Error::InvalidUrl(why)) => Err(format!("bad URL {url:?}: {why}")),
        }
    }
}

fn judge(status: u16, final_url: &str) -> CheckResult {
    match status {
        200..=299 => CheckResult::healthy(format!("HTTP {status}")),
        300..=399 => CheckResult::unhealthy(format!(
            "HTTP {status} from {final_url}: redirect not followed (more than {MAX_REDIRECTS} redirects, or no Location)"
        )),
        _ => CheckResult::unhealthy(format!("HTTP {status} from {final_url}")),
    }
}

health_check::export!(HttpGet);

#[cfg(test)]
mod tests {
    use super::*;
    use sidecar_plugin_sdk::health_check::CheckStatus;

    #[test]
    fn only_2xx_is_healthy() {
        assert_eq!(judge(200, "u").status, CheckStatus::Healthy);
        assert_eq!(judge(299, "u").status, CheckStatus::Healthy);
        for status in [100, 302, 404, 500, 503] {
            assert_eq!(
                judge(status, "u").status,
                CheckStatus::Unhealthy,
                "{status}"
            );
        }
        assert_eq!(judge(500, "http://x/").message, "HTTP 500 from http://x/");
    }
}
