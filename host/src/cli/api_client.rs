//! The client commands' HTTP: the agent's URL, token and certificate from the
//! configuration, Sidecar's error shape (`{"message":..,"status":"error"}`) turned into a
//! message, and errors that say what to check.

use crate::config::client::{ClientArgs, ClientConfig};
use serde::de::DeserializeOwned;
use std::time::Duration;

/// Longest answer read: the largest catalogs render to a few MB.
const MAX_BODY: usize = 256 << 20;

pub struct Api {
    cfg: ClientConfig,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl Api {
    pub fn new(args: &ClientArgs) -> anyhow::Result<Self> {
        let cfg = ClientConfig::from_process(args)?;
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5));
        if let Some(ca) = &cfg.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| anyhow::anyhow!("certificate to trust {}: {e}", ca.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| anyhow::anyhow!("certificate to trust {}: {e}", ca.display()))?;
            if certs.is_empty() {
                anyhow::bail!(
                    "certificate to trust {}: no PEM certificate in it",
                    ca.display()
                );
            }
            builder = builder.tls_built_in_root_certs(false);
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        Ok(Api {
            http: builder.build()?,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
            cfg,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.cfg.base_url)
    }

    /// `GET path`, decoded.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let body = self.send(self.http.get(self.url(path)), path)?;
        serde_json::from_slice(&body)
            .map_err(|e| anyhow::anyhow!("unexpected answer from {}: {e}", self.url(path)))
    }

    /// `POST path` with an optional JSON body; the answer's bytes.
    pub fn post(&self, path: &str, body: Option<&serde_json::Value>) -> anyhow::Result<Vec<u8>> {
        let mut req = self.http.post(self.url(path));
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(b)?);
        }
        self.send(req, path)
    }

    fn send(&self, mut req: reqwest::RequestBuilder, path: &str) -> anyhow::Result<Vec<u8>> {
        if let Some(t) = &self.cfg.token {
            req = req.bearer_auth(t);
        }
        let url = self.url(path);
        self.runtime.block_on(async {
            let resp = req.send().await.map_err(|e| {
                anyhow::anyhow!(
                    "cannot reach the agent at {url}: {} (is it running? its address comes from \
                     SIDECAR_HTTP_ADDR, --http-addr or --api-url)",
                    chain(&e)
                )
            })?;
            let status = resp.status();
            let mut resp = resp;
            let mut body = Vec::new();
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| anyhow::anyhow!("reading the answer of {url}: {}", chain(&e)))?
            {
                if body.len() + chunk.len() > MAX_BODY {
                    anyhow::bail!("the answer of {url} is larger than {MAX_BODY} bytes");
                }
                body.extend_from_slice(&chunk);
            }
            if status.is_success() {
                return Ok(body);
            }
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(String::from))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
            let hint = match status.as_u16() {
                401 | 403 => {
                    " (writes need the agent's token: set SIDECAR_API_TOKEN or SIDECAR_API_TOKEN_FILE)"
                }
                _ => "",
            };
            anyhow::bail!("{status} from {url}: {message}{hint}")
        })
    }
}

/// An error and its sources on one line: reqwest's own text alone ("error sending
/// request") does not say what went wrong.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}
