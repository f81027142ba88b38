//! The serving loops. UDP: one task reads a datagram, answers it inline and sends the
//! answer (forwards get a task of their own). TCP: connections up to a cap (past it a
//! connection is closed at once), each with an idle timeout, carrying any number of
//! length-prefixed queries answered in order; a read never buffers more than one
//! message (at most 64 KiB, the format's limit).

use super::DnsConfig;
use super::answer::{self, AnswerConfig, Outcome, Transport};
use super::forward::Forwarder;
use super::index::Index;
use super::metrics::DnsMetrics;
use crate::api::server::LogEvery;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// A client that does not take our answer within this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Sockets {
    pub udp: UdpSocket,
    pub tcp: TcpListener,
    pub addr: SocketAddr,
}

/// Binds UDP and TCP on `addr` (port 0: one free port for both).
pub async fn bind(addr: SocketAddr) -> io::Result<Sockets> {
    let mut last = None;
    for _ in 0..10 {
        let udp = UdpSocket::bind(addr).await?;
        let bound = udp.local_addr()?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => {
                return Ok(Sockets {
                    udp,
                    tcp,
                    addr: bound,
                });
            }
            // With port 0 the TCP side of the UDP port may be taken: try another.
            Err(e) if addr.port() == 0 => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no port free for both UDP and TCP")))
}

/// What every serving loop shares.
#[derive(Clone)]
struct Shared {
    answer: AnswerConfig,
    index: watch::Receiver<Arc<Index>>,
    metrics: Arc<DnsMetrics>,
    forwarder: Forwarder,
}

impl Shared {
    fn count(&self, outcome: Outcome, transport: Transport) {
        match outcome {
            Outcome::Reply {
                rcode,
                bad,
                truncated,
            } => {
                self.metrics.response(transport, rcode);
                if let Some(b) = bad {
                    self.metrics.bad(b);
                }
                if truncated {
                    self.metrics.truncated.inc();
                }
            }
            Outcome::Drop(b) => self.metrics.bad(b),
            Outcome::Forward => {}
        }
    }
}

pub fn spawn(
    sockets: Sockets,
    cfg: &DnsConfig,
    index: watch::Receiver<Arc<Index>>,
    metrics: Arc<DnsMetrics>,
    tasks: &mut JoinSet<()>,
) {
    let shared = Shared {
        answer: AnswerConfig {
            recursion: !cfg.recursors.is_empty(),
        },
        index,
        forwarder: Forwarder::new(&cfg.recursors, metrics.clone()),
        metrics,
    };
    tasks.spawn(serve_udp(Arc::new(sockets.udp), shared.clone()));
    tasks.spawn(serve_tcp(
        sockets.tcp,
        shared,
        cfg.tcp_max_connections,
        cfg.tcp_idle_timeout,
    ));
}

async fn serve_udp(sock: Arc<UdpSocket>, mut shared: Shared) {
    let mut buf = vec![0u8; u16::MAX as usize];
    let mut out = Vec::with_capacity(answer::UDP_MAX as usize);
    let mut index = shared.index.borrow_and_update().clone();
    let mut rotor = 0usize;
    let errors = LogEvery::default();
    loop {
        let (n, peer) = match sock.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                // ICMP errors surface here on some systems; the socket stays usable.
                if let Some(count) = errors.note() {
                    tracing::debug!(count, "DNS UDP receive error: {e}");
                }
                continue;
            }
        };
        if shared.index.has_changed().unwrap_or(false) {
            let fresh = shared.index.borrow_and_update().clone();
            super::retire(std::mem::replace(&mut index, fresh));
        }
        rotor = rotor.wrapping_add(1);
        let query = &buf[..n];
        let outcome = answer::respond(
            &index,
            shared.answer,
            query,
            Transport::Udp,
            rotor,
            &mut out,
        );
        shared.count(outcome, Transport::Udp);
        match outcome {
            Outcome::Reply { .. } => {
                if let Err(e) = sock.send_to(&out, peer).await
                    && let Some(count) = errors.note()
                {
                    tracing::debug!(count, %peer, "DNS UDP send error: {e}");
                }
            }
            Outcome::Forward => {
                let query = query.to_vec();
                let (sock, shared) = (sock.clone(), shared.clone());
                match shared.forwarder.slot() {
                    Some(permit) => {
                        tokio::spawn(async move {
                            let reply = forward_or_servfail(&shared, &query, false).await;
                            drop(permit);
                            if let Some(reply) = reply {
                                let _ = sock.send_to(&reply, peer).await;
                            }
                        });
                    }
                    None => {
                        let mut fail = Vec::new();
                        if answer::servfail(&query, &mut fail) {
                            shared
                                .metrics
                                .response(Transport::Udp, answer::Rcode::ServFail);
                            let _ = sock.send_to(&fail, peer).await;
                        }
                    }
                }
            }
            Outcome::Drop(_) => {}
        }
    }
}

/// The recursors' answer, else SERVFAIL (counted either way).
async fn forward_or_servfail(shared: &Shared, query: &[u8], tcp: bool) -> Option<Vec<u8>> {
    let transport = if tcp { Transport::Tcp } else { Transport::Udp };
    if let Some(reply) = shared.forwarder.forward(query, tcp).await {
        return Some(reply);
    }
    let mut fail = Vec::new();
    if answer::servfail(query, &mut fail) {
        shared.metrics.response(transport, answer::Rcode::ServFail);
        return Some(fail);
    }
    None
}

async fn serve_tcp(listener: TcpListener, shared: Shared, max: usize, idle: Duration) {
    let slots = Arc::new(Semaphore::new(max.max(1)));
    let refusals = LogEvery::default();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors, typically: back off instead of spinning.
                if let Some(count) = refusals.note() {
                    tracing::warn!(count, "DNS TCP accept failed: {e}");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            shared.metrics.tcp_refused.inc();
            if let Some(count) = refusals.note() {
                tracing::warn!(
                    count, max, %peer,
                    "DNS TCP connection refused: too many open (SIDECAR_DNS_TCP_MAX_CONNECTIONS)"
                );
            }
            drop(stream);
            continue;
        };
        let shared = shared.clone();
        shared.metrics.tcp_connections.inc();
        tokio::spawn(async move {
            serve_conn(stream, &shared, idle).await;
            shared.metrics.tcp_connections.dec();
            drop(permit);
        });
    }
}

async fn serve_conn(mut stream: TcpStream, shared: &Shared, idle: Duration) {
    let _ = stream.set_nodelay(true);
    let mut index_rx = shared.index.clone();
    let mut index = index_rx.borrow_and_update().clone();
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut rotor = 0usize;
    loop {
        // One message: its length, then that many bytes, all within the idle timeout.
        let read = tokio::time::timeout(idle, async {
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).await?;
            buf.resize(u16::from_be_bytes(len) as usize, 0);
            stream.read_exact(&mut buf).await?;
            io::Result::Ok(())
        })
        .await;
        match read {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return,
            Err(_) => {
                shared.metrics.tcp_idle_closed.inc();
                return;
            }
        }
        if index_rx.has_changed().unwrap_or(false) {
            let fresh = index_rx.borrow_and_update().clone();
            super::retire(std::mem::replace(&mut index, fresh));
        }
        rotor = rotor.wrapping_add(1);
        let outcome = answer::respond(&index, shared.answer, &buf, Transport::Tcp, rotor, &mut out);
        shared.count(outcome, Transport::Tcp);
        let reply = match outcome {
            Outcome::Reply { .. } => std::mem::take(&mut out),
            Outcome::Forward => {
                let Some(_permit) = shared.forwarder.slot() else {
                    return;
                };
                match forward_or_servfail(shared, &buf, true).await {
                    Some(r) => r,
                    None => return,
                }
            }
            // Not a query: nothing sensible follows on this stream.
            Outcome::Drop(_) => return,
        };
        let Ok(len) = u16::try_from(reply.len()) else {
            return;
        };
        let mut msg = Vec::with_capacity(reply.len() + 2);
        msg.extend_from_slice(&len.to_be_bytes());
        msg.extend_from_slice(&reply);
        out = reply;
        match tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&msg)).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
}
