//! Forwarding names outside the domain to the recursors (`SIDECAR_DNS_RECURSORS`).
//!
//! The client's query goes out unchanged, over UDP from a fresh socket connected to the
//! recursor (so only that recursor's answers are accepted), and over TCP when the
//! client came over TCP and the UDP answer was truncated. Recursors are tried in order;
//! when none answers in time the client gets SERVFAIL. In-flight forwards are capped.

use super::metrics::DnsMetrics;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long one recursor gets to answer.
const RECURSOR_TIMEOUT: Duration = Duration::from_secs(2);
/// Forwards in flight at once; more get SERVFAIL at once.
pub const MAX_IN_FLIGHT: usize = 256;

#[derive(Debug, Clone)]
pub struct Forwarder {
    recursors: Arc<[SocketAddr]>,
    slots: Arc<Semaphore>,
    metrics: Arc<DnsMetrics>,
}

impl Forwarder {
    pub fn new(recursors: &[SocketAddr], metrics: Arc<DnsMetrics>) -> Self {
        Forwarder {
            recursors: recursors.into(),
            slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            metrics,
        }
    }

    /// A slot for one forward, or `None` (counted) when all are taken.
    pub fn slot(&self) -> Option<OwnedSemaphorePermit> {
        let permit = self.slots.clone().try_acquire_owned().ok();
        if permit.is_none() {
            self.metrics.forward_refused.inc();
        }
        permit
    }

    /// The first recursor's answer to `query`, or `None` when none answered.
    pub async fn forward(&self, query: &[u8], tcp: bool) -> Option<Vec<u8>> {
        for &r in self.recursors.iter() {
            match exchange(r, query, tcp).await {
                Ok(answer) => {
                    self.metrics.forward_ok.inc();
                    return Some(answer);
                }
                Err(e) => tracing::debug!(recursor = %r, "DNS forward failed: {e}"),
            }
        }
        self.metrics.forward_failed.inc();
        None
    }
}

async fn exchange(recursor: SocketAddr, query: &[u8], tcp: bool) -> std::io::Result<Vec<u8>> {
    let answer = tokio::time::timeout(RECURSOR_TIMEOUT, udp(recursor, query))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer"))??;
    let truncated = answer.get(2).is_some_and(|b| b & 0x02 != 0);
    if tcp && truncated {
        return tokio::time::timeout(RECURSOR_TIMEOUT, over_tcp(recursor, query))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer"))?;
    }
    Ok(answer)
}

fn is_answer_to(answer: &[u8], query: &[u8]) -> bool {
    answer.len() >= 12 && answer[..2] == query[..2] && answer[2] & 0x80 != 0
}

async fn udp(recursor: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr = if recursor.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(local).await?;
    sock.connect(recursor).await?;
    sock.send(query).await?;
    let mut buf = vec![0u8; u16::MAX as usize];
    loop {
        let n = sock.recv(&mut buf).await?;
        if is_answer_to(&buf[..n], query) {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn over_tcp(recursor: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(recursor).await?;
    let len = u16::try_from(query.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "query too long"))?;
    let mut msg = Vec::with_capacity(query.len() + 2);
    msg.extend_from_slice(&len.to_be_bytes());
    msg.extend_from_slice(query);
    s.write_all(&msg).await?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).await?;
    if !is_answer_to(&buf, query) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not an answer to the query",
        ));
    }
    Ok(buf)
}
