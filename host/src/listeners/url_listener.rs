//! One URL listener: POSTs `{"State":..,"ChangeEvent":..}` for each queued event, with
//! Sidecar's client settings (3 s timeout, `sidecar-session-host` cookie for
//! load balancers with affinity) and retry schedule (6 attempts, sleeping 0, 0, 100,
//! 200, 300, 400 ms). Unlike Sidecar, retries resend the full body.

use super::ListenerMetrics;
use crate::shared_catalog::{SharedCatalog, Snapshot};
use bytes::Bytes;
use sidecar_catalog::{ChangeEvent, Timestamp};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

pub const TIMEOUT: Duration = Duration::from_secs(3);
pub const RETRY_SLEEPS_MS: [u64; 6] = [0, 0, 100, 200, 300, 400];

pub struct Target {
    pub name: String,
    pub url: String,
}

/// The listeners' client. No fallback to a default client when it can't be built: that
/// one would follow redirects.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .no_proxy()
        // A listener that answers with a redirect must not get the whole catalog sent
        // wherever it points: a redirect is a failed POST.
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// The POST body: the catalog as of the event, and the event.
pub fn body(snap: &Snapshot, ev: &ChangeEvent) -> Bytes {
    let state = snap.state_json();
    let event = serde_json::to_vec(ev).unwrap_or_default();
    let mut out = Vec::with_capacity(state.len() + event.len() + 32);
    out.extend_from_slice(b"{\"State\":");
    out.extend_from_slice(&state);
    out.extend_from_slice(b",\"ChangeEvent\":");
    out.extend_from_slice(&event);
    out.push(b'}');
    Bytes::from(out)
}

/// A snapshot that already shows `ev` (snapshots are published just after the change).
async fn snapshot_with(catalog: &SharedCatalog, ev: &ChangeEvent) -> Arc<Snapshot> {
    let shows = |s: &Snapshot| {
        s.state
            .get(&ev.service.hostname, &ev.service.id)
            .is_none_or(|r| r.updated >= ev.service.updated)
    };
    let mut rx = catalog.watch();
    let wait = rx.wait_for(|s| shows(s));
    match tokio::time::timeout(Duration::from_secs(1), wait).await {
        Ok(Ok(s)) => s.clone(),
        _ => catalog.snapshot(),
    }
}

pub async fn run(
    target: Target,
    mut rx: mpsc::Receiver<Arc<ChangeEvent>>,
    catalog: Arc<SharedCatalog>,
    client: reqwest::Client,
    hostname: String,
    metrics: Arc<ListenerMetrics>,
) {
    // Go's cookie jar quotes values containing spaces.
    let cookie = format!(
        "sidecar-session-host=\"{hostname}-{}\"",
        Timestamp::now().to_go_string()
    );
    while let Some(ev) = rx.recv().await {
        let snap = snapshot_with(&catalog, &ev).await;
        let body = body(&snap, &ev);
        drop(snap);
        let mut last_err = String::new();
        let mut ok = false;
        for sleep in RETRY_SLEEPS_MS {
            let res = client
                .post(&target.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(reqwest::header::COOKIE, &cookie)
                .body(body.clone())
                .send()
                .await;
            match res {
                Ok(r) if r.status().is_success() => {
                    ok = true;
                    break;
                }
                Ok(r) => last_err = format!("HTTP {}", r.status()),
                Err(e) => last_err = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(sleep)).await;
        }
        if ok {
            metrics.posts_ok.inc();
        } else {
            metrics.posts_failed.inc();
            tracing::warn!(listener = %target.name, url = %target.url, "POST failed after {} attempts: {last_err}", RETRY_SLEEPS_MS.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn a_redirect_is_not_followed() {
        // The target a hostile listener redirects to: it must see no request.
        let target = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let target_addr = target.local_addr().expect("addr");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            if let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let reply = format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{target_addr}/\r\nContent-Length: 0\r\n\r\n"
                );
                let _ = s.write_all(reply.as_bytes()).await;
            }
        });
        let resp = client()
            .expect("client")
            .post(&url)
            .body("catalog")
            .send()
            .await
            .expect("answered");
        assert_eq!(resp.status(), reqwest::StatusCode::TEMPORARY_REDIRECT);
        let followed =
            tokio::time::timeout(std::time::Duration::from_millis(300), target.accept()).await;
        assert!(followed.is_err(), "the redirect target was contacted");
    }
}
