//! The API's connection loop: what a client can make the daemon spend is bounded.
//!
//! `axum::serve` runs hyper without a timer, so a client that sends half a request holds
//! its socket forever, and enough of them exhaust the process's file descriptors (the
//! gossip listener included). Here every connection is served by hyper's HTTP/1 builder
//! under a watchdog that closes it when
//!
//! * a request's head has not arrived within the header timeout (counted from the
//!   accept, or from the first byte of a later request on a kept-alive connection),
//! * a kept-alive connection carries no request for the idle timeout,
//! * the socket has accepted none of the bytes we are writing for the write timeout
//!   (a watcher that does not read),
//!
//! and the number of open connections is capped: past the cap a connection is answered
//! `503` and closed at once instead of waiting for a slot, so descriptors stay free for
//! the rest of the daemon.

use super::ApiMetrics;
use axum::Router;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::Service;

/// How often a repeated refusal (connection or watcher over its cap, accept errors) is
/// logged; the metrics count every one.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// What the API lets clients hold (`SIDECAR_HTTP_*`, parsed in `config/http.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLimits {
    /// A request's head must arrive within this.
    pub header_timeout: Duration,
    /// A kept-alive connection with no request in progress is closed after this.
    pub idle_timeout: Duration,
    /// A response the client does not read is abandoned (connection closed) after the
    /// socket accepted none of it for this long.
    pub write_timeout: Duration,
    /// Open connections; more are answered 503 and closed. Lowered at start to stay
    /// under the open-files limit.
    pub max_connections: usize,
    /// Concurrent `/api/watch` streams; more are answered 503.
    pub max_watchers: usize,
    /// Largest request head (request line and headers) accepted.
    pub max_header_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            max_connections: 4096,
            max_watchers: 1024,
            max_header_bytes: 64 * 1024,
        }
    }
}

impl HttpLimits {
    /// hyper refuses a read buffer smaller than this (it asserts).
    pub const MIN_HEADER_BYTES: usize = 8192;

    fn shortest_timeout(&self) -> Duration {
        self.header_timeout
            .min(self.idle_timeout)
            .min(self.write_timeout)
            .max(Duration::from_millis(10))
    }
}

/// Logs a repeated event at most once per [`LOG_EVERY`], with how many happened since.
#[derive(Default)]
pub struct LogEvery {
    state: Mutex<(Option<Instant>, u64)>,
}

impl LogEvery {
    /// Counts one event; returns how many to report when it is time to log.
    pub fn note(&self) -> Option<u64> {
        let mut s = self.state.lock();
        s.1 += 1;
        let now = Instant::now();
        if s.0.is_some_and(|last| now.duration_since(last) < LOG_EVERY) {
            return None;
        }
        let n = s.1;
        *s = (Some(now), 0);
        Some(n)
    }
}

/// Why the watchdog closed a connection (the `reason` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    HeaderTimeout,
    IdleTimeout,
    WriteTimeout,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::HeaderTimeout => "header_timeout",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::WriteTimeout => "write_timeout",
        }
    }
}

/// The connection cap after the open-files limit: a quarter of the descriptors (at most
/// 1,024) stay for gossip, plugins, proxies and the log.
pub fn effective_max_connections(configured: usize, nofile: Option<libc::rlim_t>) -> usize {
    let Some(nofile) = nofile else {
        return configured;
    };
    let nofile = usize::try_from(nofile).unwrap_or(usize::MAX);
    let headroom = (nofile / 4).min(1024);
    configured.min(nofile.saturating_sub(headroom)).max(1)
}

/// Serves `app` on `listener` until the process ends; over TLS when `tls` is given.
pub async fn run(
    listener: TcpListener,
    app: Router,
    limits: Arc<HttpLimits>,
    metrics: Arc<ApiMetrics>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let refused_log = LogEvery::default();
    let error_log = LogEvery::default();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                if let Some(n) = error_log.note() {
                    tracing::warn!(count = n, "HTTP API cannot accept connections: {e}");
                }
                // Out of descriptors or memory: retrying at once would spin.
                if is_resource_error(&e) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            metrics.connections_refused.inc();
            if let Some(n) = refused_log.note() {
                tracing::warn!(
                    %peer,
                    count = n,
                    max = limits.max_connections,
                    "HTTP connection refused: too many open connections (SIDECAR_HTTP_MAX_CONNECTIONS)"
                );
            }
            refuse(&stream);
            continue;
        };
        let (app, limits, metrics) = (app.clone(), limits.clone(), metrics.clone());
        let tls = tls.clone();
        tokio::spawn(async move {
            metrics.connections.inc();
            match tls {
                None => serve_connection(stream, peer, app, &limits, &metrics).await,
                // The handshake counts against the header timeout: a client that opens
                // a connection and says nothing is cut off there too.
                Some(tls) => match tokio::time::timeout(limits.header_timeout, tls.accept(stream))
                    .await
                {
                    Ok(Ok(stream)) => serve_connection(stream, peer, app, &limits, &metrics).await,
                    Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                    Err(_) => {
                        metrics.closed(CloseReason::HeaderTimeout).inc();
                        tracing::debug!(%peer, "TLS handshake timed out");
                    }
                },
            }
            metrics.connections.dec();
            drop(permit);
        });
    }
}

fn is_resource_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Over the cap: one non-blocking write of a 503 (a client that already sent its
/// request may see a reset instead), then the socket is closed.
fn refuse(stream: &TcpStream) {
    const BODY: &str = r#"{"message":"too many connections","status":"error"}"#;
    let resp = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = stream.try_write(resp.as_bytes());
}

async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    app: Router,
    limits: &HttpLimits,
    metrics: &ApiMetrics,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let tracked = activity.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let in_flight = InFlight::start(tracked.clone());
        // Router is always ready; `call` on a clone is what axum's own server does.
        let response = app.clone().call(req);
        async move {
            let resp = response.await?;
            Ok::<_, Infallible>(resp.map(|body| TrackedBody {
                inner: body,
                _in_flight: in_flight,
            }))
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        // The watchdog keeps time; hyper's own header timer would also cut idle
        // keep-alive connections at the header timeout.
        .header_read_timeout(None)
        .max_buf_size(limits.max_header_bytes.max(HttpLimits::MIN_HEADER_BYTES))
        .serve_connection(io, service);
    tokio::select! {
        r = conn => {
            if let Err(e) = r {
                tracing::debug!(%peer, "HTTP connection ended: {e}");
            }
        }
        reason = watchdog(&activity, limits) => {
            metrics.closed(reason).inc();
            tracing::debug!(%peer, reason = reason.as_str(), "HTTP connection closed");
        }
    }
}

/// Resolves when the connection has overstayed one of its timeouts. It sleeps at most
/// the shortest timeout at a time, so a deadline that starts while it sleeps (which is
/// at least that far away) is never overslept.
async fn watchdog(activity: &Activity, limits: &HttpLimits) -> CloseReason {
    let step = limits.shortest_timeout();
    loop {
        let now = activity.now_ms();
        match activity.deadline(limits) {
            Some((at, reason)) if at <= now => return reason,
            Some((at, _)) => {
                tokio::time::sleep(Duration::from_millis(at - now).min(step)).await;
            }
            None => tokio::time::sleep(step).await,
        }
    }
}

const PHASE_HEAD: u32 = 0;
const PHASE_IDLE: u32 = 1;

/// What the watchdog reads: updated by the socket wrapper and the request hooks, all on
/// the connection's task (atomics only because the task may move between threads).
struct Activity {
    epoch: Instant,
    /// Requests whose response body has not finished.
    in_flight: AtomicU32,
    /// With no request in flight: waiting for a head (`PHASE_HEAD`) or idle.
    phase: AtomicU32,
    /// Milliseconds since `epoch` when the phase began.
    phase_since: AtomicU64,
    /// 1 + milliseconds since `epoch` when a write first found the socket full; 0 while
    /// writes go through.
    write_blocked: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            epoch: Instant::now(),
            in_flight: AtomicU32::new(0),
            phase: AtomicU32::new(PHASE_HEAD),
            phase_since: AtomicU64::new(0),
            write_blocked: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn deadline(&self, limits: &HttpLimits) -> Option<(u64, CloseReason)> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let mut best: Option<(u64, CloseReason)> = None;
        let mut consider = |at: u64, reason| {
            if best.is_none_or(|(b, _)| at < b) {
                best = Some((at, reason));
            }
        };
        let blocked = self.write_blocked.load(Ordering::Relaxed);
        if blocked != 0 {
            consider(
                (blocked - 1).saturating_add(ms(limits.write_timeout)),
                CloseReason::WriteTimeout,
            );
        }
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            let since = self.phase_since.load(Ordering::Relaxed);
            if self.phase.load(Ordering::Relaxed) == PHASE_HEAD {
                consider(
                    since.saturating_add(ms(limits.header_timeout)),
                    CloseReason::HeaderTimeout,
                );
            } else {
                consider(
                    since.saturating_add(ms(limits.idle_timeout)),
                    CloseReason::IdleTimeout,
                );
            }
        }
        best
    }

    /// Bytes arrived: on an idle connection they start the next request's head.
    fn on_read(&self) {
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.phase.load(Ordering::Relaxed) == PHASE_IDLE
        {
            self.phase_since.store(self.now_ms(), Ordering::Relaxed);
            self.phase.store(PHASE_HEAD, Ordering::Relaxed);
        }
    }

    fn on_write(&self, progressed: bool) {
        if progressed {
            self.write_blocked.store(0, Ordering::Relaxed);
        } else if self.write_blocked.load(Ordering::Relaxed) == 0 {
            self.write_blocked
                .store(self.now_ms() + 1, Ordering::Relaxed);
        }
    }
}

/// One request from head to the end of its response body.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        if a.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            a.phase_since.store(a.now_ms(), Ordering::Relaxed);
            a.phase.store(PHASE_IDLE, Ordering::Relaxed);
        }
    }
}

/// A response body that ends its request's [`InFlight`] when hyper drops it.
struct TrackedBody {
    inner: axum::body::Body,
    _in_flight: InFlight,
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The socket, reporting reads and write progress to the watchdog. Vectored writes are
/// passed through: without them hyper would copy every response body into a
/// per-connection buffer instead of queueing the shared `Bytes`.
struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.on_read();
        }
        r
    }
}

impl<S> Watched<S> {
    fn note<T>(&self, r: &Poll<io::Result<T>>) {
        match r {
            Poll::Pending => self.activity.on_write(false),
            Poll::Ready(_) => self.activity.on_write(true),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note(&r);
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.note(&r);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> HttpLimits {
        HttpLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            ..HttpLimits::default()
        }
    }

    #[test]
    fn phases_pick_their_deadline() {
        let a = Activity::new();
        let l = limits();
        // Fresh connection: the head is due.
        assert_eq!(a.deadline(&l), Some((10_000, CloseReason::HeaderTimeout)));
        // A request in flight with writes going through: nothing is due.
        let r = InFlight::start(Arc::new(Activity::new()));
        assert_eq!(r.0.deadline(&l), None);
        r.0.on_write(false);
        let (at, reason) = r.0.deadline(&l).expect("write deadline");
        assert_eq!(reason, CloseReason::WriteTimeout);
        assert!((30_000..31_000).contains(&at), "{at}");
        r.0.on_write(true);
        assert_eq!(r.0.deadline(&l), None);
        // The response ended: idle until bytes of the next request arrive.
        let a = r.0.clone();
        drop(r);
        let (_, reason) = a.deadline(&l).expect("idle deadline");
        assert_eq!(reason, CloseReason::IdleTimeout);
        a.on_read();
        let (_, reason) = a.deadline(&l).expect("head deadline");
        assert_eq!(reason, CloseReason::HeaderTimeout);
    }

    #[test]
    fn the_cap_leaves_descriptors_for_the_rest_of_the_daemon() {
        assert_eq!(effective_max_connections(4096, None), 4096);
        assert_eq!(effective_max_connections(4096, Some(1024)), 768);
        assert_eq!(effective_max_connections(4096, Some(1 << 20)), 4096);
        assert_eq!(effective_max_connections(100, Some(1024)), 100);
        assert_eq!(effective_max_connections(10, Some(0)), 1);
    }

    #[test]
    fn repeated_events_are_logged_once_per_period() {
        let log = LogEvery::default();
        assert_eq!(log.note(), Some(1));
        assert_eq!(log.note(), None);
        assert_eq!(log.note(), None);
    }
}
