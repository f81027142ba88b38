//! Native check types with Sidecar's semantics. The plugin runtime ships the same types
//! as WebAssembly plugins; these run when no plugin provides a type (and in tests).

use crate::plugins::{CheckOutcome, CheckRequest, CheckStatus, HealthChecker, PluginError};
use async_trait::async_trait;

fn outcome(status: CheckStatus, message: impl Into<String>) -> CheckOutcome {
    CheckOutcome {
        status,
        message: message.into(),
    }
}

/// `HttpGet`: 2xx after at most 10 redirects is healthy. `http://:port/` means
/// 127.0.0.1, as it did for Go's client. Unlike Sidecar the request has a deadline.
pub struct HttpGet {
    client: Option<reqwest::Client>,
}

impl HttpGet {
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::limited(10))
            .no_proxy()
            .build()
            .map_err(|e| tracing::error!("cannot build the HttpGet client: {e}"))
            .ok();
        HttpGet { client }
    }
}

impl Default for HttpGet {
    fn default() -> Self {
        Self::new()
    }
}

/// `http://:8080/x` -> `http://127.0.0.1:8080/x`.
pub fn fill_empty_host(url: &str) -> String {
    for scheme in ["http://", "https://"] {
        if let Some(rest) = url.strip_prefix(scheme)
            && rest.starts_with(':')
        {
            return format!("{scheme}127.0.0.1{rest}");
        }
    }
    url.to_string()
}

#[async_trait]
impl HealthChecker for HttpGet {
    async fn check(&self, req: CheckRequest) -> Result<CheckOutcome, PluginError> {
        let Some(client) = &self.client else {
            return Err(PluginError::Unavailable {
                plugin: "HttpGet".into(),
                reason: "no HTTP client".into(),
            });
        };
        let url = fill_empty_host(req.args.trim());
        match client.get(&url).timeout(req.timeout).send().await {
            Ok(resp) if resp.status().is_success() => Ok(outcome(
                CheckStatus::Healthy,
                format!("{} {url}", resp.status()),
            )),
            Ok(resp) => Ok(outcome(
                CheckStatus::Unhealthy,
                format!("{} {url}", resp.status()),
            )),
            Err(e) => Ok(outcome(CheckStatus::Unhealthy, format!("GET {url}: {e}"))),
        }
    }
}

/// `External`: the arguments split on whitespace (no shell, as Sidecar's code does);
/// exit code 0 is healthy.
pub struct External;

#[async_trait]
impl HealthChecker for External {
    async fn check(&self, req: CheckRequest) -> Result<CheckOutcome, PluginError> {
        let mut words = req.args.split_whitespace();
        let Some(program) = words.next() else {
            return Err(PluginError::Failed {
                plugin: "External".into(),
                message: "no command given".into(),
            });
        };
        let run = tokio::process::Command::new(program)
            .args(words)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .status();
        match tokio::time::timeout(req.timeout, run).await {
            Ok(Ok(st)) if st.success() => Ok(outcome(CheckStatus::Healthy, "exit status 0")),
            Ok(Ok(st)) => Ok(outcome(CheckStatus::Unhealthy, st.to_string())),
            Ok(Err(e)) => Ok(outcome(
                CheckStatus::Unhealthy,
                format!("cannot run {program}: {e}"),
            )),
            Err(_) => Ok(outcome(CheckStatus::Unhealthy, "Timed out!")),
        }
    }
}

/// `AlwaysSuccessful`.
pub struct AlwaysSuccessful;

#[async_trait]
impl HealthChecker for AlwaysSuccessful {
    async fn check(&self, _req: CheckRequest) -> Result<CheckOutcome, PluginError> {
        Ok(outcome(CheckStatus::Healthy, "always successful"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Service;
    use std::time::Duration;

    fn req(args: &str) -> CheckRequest {
        CheckRequest {
            service: Service::default(),
            args: args.into(),
            timeout: Duration::from_secs(2),
            host_ip: "127.0.0.1".into(),
        }
    }

    #[test]
    fn empty_hosts_mean_loopback() {
        assert_eq!(
            fill_empty_host("http://:9090/status"),
            "http://127.0.0.1:9090/status"
        );
        assert_eq!(fill_empty_host("http://a:1/"), "http://a:1/");
    }

    #[tokio::test]
    async fn external_uses_the_exit_code() {
        let ok = External.check(req("true")).await.expect("ran");
        assert_eq!(ok.status, CheckStatus::Healthy);
        let bad = External.check(req("false")).await.expect("ran");
        assert_eq!(bad.status, CheckStatus::Unhealthy);
        let missing = External.check(req("/nonexistent/x")).await.expect("ran");
        assert_eq!(missing.status, CheckStatus::Unhealthy);
    }

    #[tokio::test]
    async fn http_get_needs_a_2xx() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]);
                let status = if req.starts_with("GET /ok") {
                    "200 OK"
                } else {
                    "503 Nope"
                };
                let _ = s
                    .write_all(
                        format!(
                            "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
            }
        });
        let c = HttpGet::new();
        let ok = c
            .check(req(&format!("http://:{port}/ok")))
            .await
            .expect("ran");
        assert_eq!(ok.status, CheckStatus::Healthy, "{}", ok.message);
        let bad = c
            .check(req(&format!("http://127.0.0.1:{port}/bad")))
            .await
            .expect("ran");
        assert_eq!(bad.status, CheckStatus::Unhealthy);
    }
}
