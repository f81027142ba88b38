//! `net.tcp-connect` and `net.grpc-health`: connections on a plugin's behalf, within its
//! `net` grant.
//!
//! The destination is checked against the allow-list as written (before resolving a
//! name, before any packet), then the whole exchange is bounded by the request's
//! timeout and the call's I/O deadline. gRPC answers are capped at [`GRPC_MESSAGE_CAP`]
//! bytes: a health answer is a few bytes, a hostile server's is not.

use super::bindings::sidecar::plugin::net::{self, Error, ServingStatus};
use crate::grants::Grants;
use crate::state::HostState;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as PbStatus;
use tonic_health::pb::health_client::HealthClient;

/// Largest gRPC message accepted from a health server.
pub const GRPC_MESSAGE_CAP: usize = 64 * 1024;

impl net::Host for HostState {
    async fn tcp_connect(&mut self, address: String, timeout_ms: u32) -> Result<u64, Error> {
        let budget = self.io_budget(timeout_ms);
        let plugin = self.plugin.clone();
        let result = tcp_connect(&plugin.grants, &address, budget).await;
        log_denied(&plugin.name, "net.tcp-connect", &address, &result);
        result.map(|took| u64::try_from(took.as_micros()).unwrap_or(u64::MAX))
    }

    async fn grpc_health(
        &mut self,
        address: String,
        service: String,
        timeout_ms: u32,
    ) -> Result<ServingStatus, Error> {
        let budget = self.io_budget(timeout_ms);
        let plugin = self.plugin.clone();
        let result = grpc_health(&plugin.grants, &address, &service, budget).await;
        log_denied(&plugin.name, "net.grpc-health", &address, &result);
        result
    }
}

fn log_denied<T>(plugin: &str, call: &str, address: &str, result: &Result<T, Error>) {
    if let Err(Error::Denied(why)) = result {
        tracing::warn!(plugin, address, "{call} denied: {why}");
    }
}

/// `host:port`, `[v6]:port`, `:port` (127.0.0.1), as written (a name is not resolved).
pub(crate) fn parse_address(raw: &str) -> Result<(String, u16), Error> {
    let raw = raw.trim();
    let bad = |why: &str| Error::InvalidAddress(format!("{raw:?}: {why} (expected host:port)"));
    let (host, port) = raw.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| bad("the port must be 1-65535"))?;
    let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) if v6.parse::<std::net::Ipv6Addr>().is_ok() => v6.to_string(),
        Some(_) => return Err(bad("bad IPv6 address")),
        None if host.contains(':') => return Err(bad("write IPv6 addresses in brackets")),
        None if host.is_empty() => "127.0.0.1".to_string(),
        None if host.chars().any(|c| c.is_whitespace() || c == '/') => {
            return Err(bad("bad host"));
        }
        None => host.to_string(),
    };
    Ok((host, port))
}

fn check_allowed(grants: &Grants, host: &str, port: u16) -> Result<(), Error> {
    let shown = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    if grants.net.is_empty() {
        return Err(Error::Denied(format!(
            "no net grant: {shown} not allowed (grant it in plugins.toml: grants.net)"
        )));
    }
    if grants.allows_net(host, port) {
        return Ok(());
    }
    let allowed: Vec<String> = grants.net.iter().map(ToString::to_string).collect();
    Err(Error::Denied(format!(
        "{shown} is not in the net grant [{}]",
        allowed.join(", ")
    )))
}

/// Resolves the (allowed) destination; an IP literal is used as is.
async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, Error> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| Error::Connect(format!("resolve {host}: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(Error::Connect(format!("resolve {host}: no addresses")));
    }
    Ok(addrs)
}

/// Connects (each resolved address in turn) and closes; returns how long it took.
pub(crate) async fn tcp_connect(
    grants: &Grants,
    address: &str,
    budget: Duration,
) -> Result<Duration, Error> {
    let (host, port) = parse_address(address)?;
    check_allowed(grants, &host, port)?;
    let started = Instant::now();
    let attempt = async {
        let mut last = String::new();
        for addr in resolve(&host, port).await? {
            match tokio::net::TcpStream::connect(addr).await {
                Ok(stream) => {
                    drop(stream);
                    return Ok(started.elapsed());
                }
                Err(e) => last = format!("connect to {addr}: {e}"),
            }
        }
        Err(Error::Connect(last))
    };
    match tokio::time::timeout(budget, attempt).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout),
    }
}

/// One `grpc.health.v1.Health/Check` over plaintext HTTP/2.
pub(crate) async fn grpc_health(
    grants: &Grants,
    address: &str,
    service: &str,
    budget: Duration,
) -> Result<ServingStatus, Error> {
    let (host, port) = parse_address(address)?;
    check_allowed(grants, &host, port)?;
    let exchange = async {
        // Resolved here (not by tonic) so that the address dialled is the one allowed.
        let addrs = resolve(&host, port).await?;
        let mut last = String::new();
        for addr in addrs {
            let uri = format!("http://{addr}");
            let endpoint = tonic::transport::Endpoint::from_shared(uri)
                .map_err(|e| Error::InvalidAddress(format!("{address:?}: {e}")))?
                .connect_timeout(budget)
                .timeout(budget);
            let channel = match endpoint.connect().await {
                Ok(c) => c,
                Err(e) => {
                    last = format!("connect to {addr}: {}", cause(&e));
                    continue;
                }
            };
            let mut client = HealthClient::new(channel).max_decoding_message_size(GRPC_MESSAGE_CAP);
            let answer = client
                .check(HealthCheckRequest {
                    service: service.to_string(),
                })
                .await;
            return match answer {
                Ok(resp) => Ok(match resp.into_inner().status() {
                    PbStatus::Serving => ServingStatus::Serving,
                    PbStatus::NotServing => ServingStatus::NotServing,
                    PbStatus::ServiceUnknown => ServingStatus::ServiceUnknown,
                    PbStatus::Unknown => ServingStatus::Unknown,
                }),
                Err(status) if status.code() == tonic::Code::NotFound => {
                    Ok(ServingStatus::ServiceUnknown)
                }
                // tonic reports its own request timeout as `Cancelled`.
                Err(status)
                    if matches!(
                        status.code(),
                        tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
                    ) =>
                {
                    Err(Error::Timeout)
                }
                Err(status) if status.code() == tonic::Code::Unavailable => Err(Error::Connect(
                    format!("{addr}: unavailable: {}", status.message()),
                )),
                Err(status) => Err(Error::Other(format!(
                    "{addr}: gRPC status {:?}: {}",
                    status.code(),
                    status.message()
                ))),
            };
        }
        Err(Error::Connect(last))
    };
    match tokio::time::timeout(budget, exchange).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout),
    }
}

/// The innermost cause ("Connection refused"), not tonic's "transport error".
fn cause(e: &dyn std::error::Error) -> String {
    let mut why = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        why = s.to_string();
        source = s.source();
    }
    why
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grants::HostPattern;
    use std::net::TcpListener;

    fn loopback() -> Grants {
        Grants {
            net: vec![HostPattern::parse("127.0.0.1:*").expect("ok")],
            ..Grants::default()
        }
    }

    fn closed_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port()
    }

    #[test]
    fn addresses() {
        let ok = |s: &str| parse_address(s).map_err(|e| format!("{e:?}")).expect(s);
        assert_eq!(ok("127.0.0.1:80"), ("127.0.0.1".into(), 80));
        assert_eq!(ok(" :8080 "), ("127.0.0.1".into(), 8080));
        assert_eq!(ok("[::1]:9"), ("::1".into(), 9));
        assert_eq!(ok("db.internal:5432"), ("db.internal".into(), 5432));
        for bad in [
            "127.0.0.1",
            "h:0",
            "h:x",
            "::1:80",
            "[zz]:80",
            "a b:1",
            "h:70000",
        ] {
            assert!(
                matches!(parse_address(bad), Err(Error::InvalidAddress(_))),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn connects_refusals_and_denials() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let budget = Duration::from_secs(5);
        let ok = tcp_connect(&loopback(), &format!("127.0.0.1:{port}"), budget).await;
        assert!(ok.is_ok(), "{ok:?}");
        let closed = closed_port();
        let refused = tcp_connect(&loopback(), &format!("127.0.0.1:{closed}"), budget).await;
        assert!(
            matches!(&refused, Err(Error::Connect(m)) if m.contains("refused")),
            "{refused:?}"
        );
        let denied = tcp_connect(&loopback(), &format!("localhost:{port}"), budget).await;
        assert!(
            matches!(&denied, Err(Error::Denied(m)) if m.contains("localhost")),
            "{denied:?}"
        );
        let none = tcp_connect(&Grants::default(), &format!("127.0.0.1:{port}"), budget).await;
        assert!(
            matches!(&none, Err(Error::Denied(m)) if m.contains("no net grant")),
            "{none:?}"
        );
    }

    /// A real tonic-health server on 127.0.0.1: SERVING, NOT_SERVING, an unknown
    /// service, a port that speaks no gRPC, and nothing listening.
    #[tokio::test]
    async fn grpc_health_against_tonic_health() {
        let (mut reporter, service) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
        reporter
            .set_service_status("db", tonic_health::ServingStatus::NotServing)
            .await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let budget = Duration::from_secs(5);
        let addr = format!("127.0.0.1:{port}");
        let g = loopback();
        assert_eq!(
            grpc_health(&g, &addr, "", budget).await.ok(),
            Some(ServingStatus::Serving)
        );
        assert_eq!(
            grpc_health(&g, &addr, "db", budget).await.ok(),
            Some(ServingStatus::NotServing)
        );
        assert_eq!(
            grpc_health(&g, &addr, "nope", budget).await.ok(),
            Some(ServingStatus::ServiceUnknown)
        );
        let closed = format!("127.0.0.1:{}", closed_port());
        let r = grpc_health(&g, &closed, "", budget).await;
        assert!(matches!(&r, Err(Error::Connect(_))), "{r:?}");
        // A listener that accepts and never answers: the budget bounds the call.
        let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
        let silent_addr = format!("127.0.0.1:{}", silent.local_addr().expect("a").port());
        let r = grpc_health(&g, &silent_addr, "", Duration::from_millis(300)).await;
        assert!(matches!(&r, Err(Error::Timeout)), "{r:?}");
    }
}
