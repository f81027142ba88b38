//! The tokio driver: one UDP socket and one TCP listener on the gossip port, one task
//! owning the sans-IO core. Everything from the network passes the envelope check
//! ([`Framer`]) first; refused input is counted per reason and logged at most once per
//! reason every 10 s, never a panic.

use super::handle::{ClusterCounters, ClusterHandle, Command};
use crate::config::ClusterConfig;
use crate::shared_catalog::SharedCatalog;
use prometheus_client::metrics::counter::Counter;
use sidecar_catalog::{Fingerprint, Record, Service, Timestamp};
use sidecar_cluster::swim::{CatalogPort, Micros, Output, Swim};
use sidecar_cluster::wire::frame::{Channel, Framer, Refusal};
use sidecar_cluster::wire::{MAX_STREAM, State};
use sidecar_cluster::{MemberInfo, MemberList};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot, watch};

type Key = Arc<str>;
type Core = Swim<Key, SocketAddr>;

const STREAM_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const MAX_FRAME: usize = MAX_STREAM + 64;
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The daemon's catalog as the core sees it.
struct Port<'a>(&'a SharedCatalog);

impl CatalogPort for Port<'_> {
    fn merge(&mut self, announcer: &str, records: Vec<Service>) -> Vec<Record> {
        self.0.merge_remote(announcer, records).stored
    }
    fn fingerprints(&self) -> Vec<(String, Fingerprint)> {
        self.0.read(|c| c.fingerprints())
    }
    fn host_records(&self, host: &str) -> Vec<Record> {
        self.0.read(|c| c.host_records(host))
    }
}

/// Rate-limited warnings about refused input.
#[derive(Default)]
struct DropLog {
    last: HashMap<&'static str, (Instant, u64)>,
}

impl DropLog {
    fn note(&mut self, reason: &'static str, from: SocketAddr) {
        let now = Instant::now();
        let e = self.last.entry(reason).or_insert((now - LOG_EVERY, 0));
        e.1 += 1;
        if now.duration_since(e.0) >= LOG_EVERY {
            tracing::warn!(reason, %from, count = e.1, "dropped gossip input");
            *e = (now, 0);
        }
    }
}

fn refusal_counter(c: &ClusterCounters, r: Refusal) -> &Counter {
    match r {
        Refusal::Malformed => &c.dropped_malformed,
        Refusal::ForeignCluster => &c.dropped_foreign_cluster,
        Refusal::Unencrypted => &c.dropped_unencrypted,
        Refusal::UnexpectedEncryption => &c.dropped_unexpected_encryption,
        Refusal::Unauthenticated => &c.dropped_unauthenticated,
    }
}

struct InboundStream {
    from: SocketAddr,
    payload: Vec<u8>,
    reply: oneshot::Sender<Option<Vec<u8>>>,
}

/// Binds the gossip sockets, joins the seeds and runs the member until the process ends.
pub async fn start(
    cfg: ClusterConfig,
    catalog: Arc<SharedCatalog>,
    outbound: mpsc::UnboundedReceiver<Vec<Record>>,
) -> anyhow::Result<ClusterHandle> {
    let udp = UdpSocket::bind(cfg.bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot bind gossip UDP {}: {e}", cfg.bind))?;
    let tcp = TcpListener::bind(cfg.bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot bind gossip TCP {}: {e}", cfg.bind))?;
    let framer = Arc::new(Framer::new(&cfg.cluster_name, cfg.keyring.clone()));
    let counters = Arc::new(ClusterCounters::default());
    let started = Instant::now();
    let generation = (Timestamp::now().unix_nanos() / 1_000_000).max(1) as u64;
    let core = Core::new(
        cfg.swim.clone(),
        Arc::from(cfg.node_name.as_str()),
        cfg.advertise,
        generation,
        0,
        rand::random(),
    );
    let (members_tx, members_rx) = watch::channel(Arc::new(MemberList::default()));
    let (cmd_tx, cmd_rx) = mpsc::channel(4);
    let (stream_tx, stream_rx) = mpsc::channel::<InboundStream>(64);
    tracing::info!(
        bind = %cfg.bind,
        advertise = %cfg.advertise,
        encrypted = framer.encrypted(),
        seeds = ?cfg.seeds,
        generation,
        "gossip listening"
    );
    tokio::spawn(accept_loop(
        tcp,
        framer.clone(),
        counters.clone(),
        stream_tx,
    ));
    let driver = Driver {
        core,
        udp: Arc::new(udp),
        framer,
        counters: counters.clone(),
        catalog,
        started,
        members_tx,
        cluster_name: cfg.cluster_name.clone(),
        drops: DropLog::default(),
        replies: mpsc::unbounded_channel(),
        members_dirty: true,
    };
    tokio::spawn(driver.run(cfg, outbound, cmd_rx, stream_rx));
    Ok(ClusterHandle {
        members: members_rx,
        counters,
        commands: cmd_tx,
    })
}

struct Driver {
    core: Core,
    udp: Arc<UdpSocket>,
    framer: Arc<Framer>,
    counters: Arc<ClusterCounters>,
    catalog: Arc<SharedCatalog>,
    started: Instant,
    members_tx: watch::Sender<Arc<MemberList>>,
    cluster_name: String,
    drops: DropLog,
    #[allow(clippy::type_complexity)]
    replies: (
        mpsc::UnboundedSender<(u64, Option<Vec<u8>>)>,
        mpsc::UnboundedReceiver<(u64, Option<Vec<u8>>)>,
    ),
    members_dirty: bool,
}

impl Driver {
    fn now(&self) -> Micros {
        self.started.elapsed().as_micros() as Micros
    }

    async fn run(
        mut self,
        cfg: ClusterConfig,
        mut outbound: mpsc::UnboundedReceiver<Vec<Record>>,
        mut commands: mpsc::Receiver<Command>,
        mut streams: mpsc::Receiver<InboundStream>,
    ) {
        let seeds = cfg.seed_targets();
        let (seed_tx, mut seed_rx) = mpsc::channel(1);
        tokio::spawn(resolve_seeds(seeds, seed_tx));
        let mut buf = vec![0u8; 65_536];
        let mut refresh = tokio::time::interval(Duration::from_secs(1));
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut leaving: Option<(oneshot::Sender<()>, tokio::time::Instant)> = None;
        loop {
            let wait = Duration::from_micros(self.core.next_deadline().saturating_sub(self.now()));
            let sleep = tokio::time::sleep(wait.min(Duration::from_millis(500)));
            tokio::select! {
                r = self.udp.recv_from(&mut buf) => match r {
                    Ok((n, from)) => self.datagram(from, &buf[..n]),
                    Err(e) => tracing::debug!("gossip UDP receive: {e}"),
                },
                Some(records) = outbound.recv() => {
                    let now = self.now();
                    self.core.local_records(records, now);
                }
                Some(s) = streams.recv() => {
                    let now = self.now();
                    let reply = self.core.handle_stream(s.from, &s.payload, now, &mut Port(&self.catalog));
                    if let Err(e) = &reply {
                        self.counters.dropped_decode.inc();
                        tracing::debug!(from = %s.from, "bad stream request: {e}");
                        self.drops.note("decode", s.from);
                    }
                    let _ = s.reply.send(reply.ok());
                }
                Some((req, reply)) = self.replies.1.recv() => {
                    let now = self.now();
                    if let Err(e) = self.core.handle_stream_reply(req, reply.as_deref(), now, &mut Port(&self.catalog)) {
                        self.counters.dropped_decode.inc();
                        tracing::debug!("bad stream reply: {e}");
                    }
                }
                Some(addrs) = seed_rx.recv() => {
                    let now = self.now();
                    self.core.join(addrs, now, &Port(&self.catalog));
                }
                _ = refresh.tick() => self.refresh(),
                Some(cmd) = commands.recv() => match cmd {
                    Command::Leave(done) => {
                        let now = self.now();
                        self.core.leave(now);
                        // Keep gossiping the departure for a moment.
                        leaving = Some((done, tokio::time::Instant::now() + Duration::from_millis(600)));
                    }
                },
                _ = sleep => {
                    let now = self.now();
                    self.core.tick(now, &Port(&self.catalog));
                }
            }
            self.flush();
            if let Some((_, until)) = &leaving
                && tokio::time::Instant::now() >= *until
                && let Some((done, _)) = leaving.take()
            {
                let _ = done.send(());
                return;
            }
        }
    }

    fn datagram(&mut self, from: SocketAddr, frame: &[u8]) {
        self.counters.datagrams_in.inc();
        self.counters.bytes_in.inc_by(frame.len() as u64);
        let payload = match self.framer.open(Channel::Datagram, frame) {
            Ok(p) => p,
            Err(r) => {
                refusal_counter(&self.counters, r).inc();
                self.drops.note(r.as_str(), from);
                return;
            }
        };
        let now = self.now();
        if let Err(e) = self
            .core
            .handle_datagram(from, &payload, now, &mut Port(&self.catalog))
        {
            self.counters.dropped_decode.inc();
            tracing::debug!(%from, "undecodable datagram: {e}");
            self.drops.note("decode", from);
        }
    }

    /// Sends what the core produced and acts on member changes.
    fn flush(&mut self) {
        while let Some(out) = self.core.poll_output() {
            match out {
                Output::Datagram { to, payload } => {
                    let frame = self.framer.seal(Channel::Datagram, &payload);
                    self.counters.datagrams_out.inc();
                    self.counters.bytes_out.inc_by(frame.len() as u64);
                    if self.udp.try_send_to(&frame, to).is_err() {
                        self.counters.dropped_send.inc();
                    }
                }
                Output::Stream { to, req, payload } => {
                    let frame = self.framer.seal(Channel::Stream, &payload);
                    self.counters.streams_out.inc();
                    self.counters.stream_bytes_out.inc_by(frame.len() as u64);
                    let replies = self.replies.0.clone();
                    let framer = self.framer.clone();
                    let counters = self.counters.clone();
                    tokio::spawn(async move {
                        let reply = request(to, &frame, &framer, &counters).await;
                        if reply.is_none() {
                            counters.stream_failures.inc();
                            tracing::debug!(%to, "gossip stream failed");
                        }
                        let _ = replies.send((req, reply));
                    });
                }
                Output::Member { key, state, was } => {
                    self.members_dirty = true;
                    if !state.is_live() {
                        let applied = self.catalog.tombstone_announcer(&key);
                        if was.is_some_and(State::is_live) {
                            tracing::info!(member = %key, state = state.as_str(), tombstoned = applied.events.len(), "member down");
                        }
                    } else if was.is_none_or(|w| !w.is_live()) {
                        tracing::info!(member = %key, "member up");
                    }
                }
            }
        }
        if self.members_dirty {
            self.publish();
        }
    }

    /// Every second: members we consider alive vouch for their records; counters.
    fn refresh(&mut self) {
        for m in self.core.members().iter().filter(|m| m.state.is_live()) {
            self.catalog.refresh_announcer(&m.key);
        }
        let s = self.core.stats();
        let set = ClusterCounters::set;
        set(&self.counters.probes, s.probes);
        set(&self.counters.suspicions, s.suspicions);
        set(&self.counters.deaths_declared, s.deaths_declared);
        set(&self.counters.refutations, s.refutations);
        if s.refused_generations > self.counters.refused_generations.get() {
            tracing::warn!(
                total = s.refused_generations,
                "refused member claims with a generation too far in the future (forged, or a clock hours ahead)"
            );
        }
        set(&self.counters.refused_generations, s.refused_generations);
        set(&self.counters.queue_dropped, self.core.queue_dropped());
        self.publish();
    }

    fn publish(&mut self) {
        self.members_dirty = false;
        let me = self.core.me().clone();
        let mut members: Vec<MemberInfo> = self
            .core
            .member_updates()
            .into_iter()
            .map(|u| MemberInfo {
                local: u.key == me,
                name: u.key.to_string(),
                address: u.addr,
                state: u.state,
                incarnation: u.inc,
                generation: u.generation,
            })
            .collect();
        members.sort_by(|a, b| a.name.cmp(&b.name));
        let list = MemberList {
            cluster_name: self.cluster_name.clone(),
            members,
        };
        self.members_tx.send_if_modified(|cur| {
            if **cur == list {
                false
            } else {
                *cur = Arc::new(list);
                true
            }
        });
    }
}

/// Resolves the seeds, retrying every 5 s while none resolves (Sidecar exited instead;
/// a host that boots before DNS or its seeds should not crash-loop).
async fn resolve_seeds(seeds: Vec<String>, tx: mpsc::Sender<Vec<SocketAddr>>) {
    if seeds.is_empty() {
        let _ = tx.send(Vec::new()).await;
        return;
    }
    loop {
        let mut addrs = Vec::new();
        for s in &seeds {
            match tokio::net::lookup_host(s.as_str()).await {
                Ok(found) => addrs.extend(found.filter(|a| a.is_ipv4()).take(1)),
                Err(e) => tracing::warn!(seed = %s, "cannot resolve seed: {e}"),
            }
        }
        if !addrs.is_empty() {
            let _ = tx.send(addrs).await;
            return;
        }
        tracing::warn!("no seed resolves; retrying in 5 s");
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

async fn write_frame(s: &mut TcpStream, frame: &[u8]) -> std::io::Result<()> {
    s.write_all(&(frame.len() as u32).to_be_bytes()).await?;
    s.write_all(frame).await?;
    s.flush().await
}

async fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::other("frame too large"));
    }
    let mut buf = vec![0u8; len];
    s.read_exact(&mut buf).await?;
    Ok(buf)
}

/// One request/reply exchange on a fresh connection.
async fn request(
    to: SocketAddr,
    frame: &[u8],
    framer: &Framer,
    counters: &ClusterCounters,
) -> Option<Vec<u8>> {
    let mut s = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(to))
        .await
        .ok()?
        .ok()?;
    let reply = tokio::time::timeout(STREAM_TIMEOUT, async {
        write_frame(&mut s, frame).await?;
        read_frame(&mut s).await
    })
    .await
    .ok()?
    .ok()?;
    counters.stream_bytes_in.inc_by(reply.len() as u64);
    match framer.open(Channel::Stream, &reply) {
        Ok(p) => Some(p),
        Err(r) => {
            refusal_counter(counters, r).inc();
            tracing::warn!(%to, reason = r.as_str(), "refused gossip stream reply");
            None
        }
    }
}

async fn accept_loop(
    tcp: TcpListener,
    framer: Arc<Framer>,
    counters: Arc<ClusterCounters>,
    to_core: mpsc::Sender<InboundStream>,
) {
    let drops = Arc::new(parking_lot::Mutex::new(DropLog::default()));
    loop {
        let (mut s, from) = match tcp.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!("gossip TCP accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (framer, counters, to_core, drops) = (
            framer.clone(),
            counters.clone(),
            to_core.clone(),
            drops.clone(),
        );
        tokio::spawn(async move {
            let _ = tokio::time::timeout(STREAM_TIMEOUT, async {
                let frame = read_frame(&mut s).await.ok()?;
                counters.streams_in.inc();
                counters.stream_bytes_in.inc_by(frame.len() as u64);
                let payload = match framer.open(Channel::Stream, &frame) {
                    Ok(p) => p,
                    Err(r) => {
                        refusal_counter(&counters, r).inc();
                        drops.lock().note(r.as_str(), from);
                        return None;
                    }
                };
                let (tx, rx) = oneshot::channel();
                to_core
                    .send(InboundStream {
                        from,
                        payload,
                        reply: tx,
                    })
                    .await
                    .ok()?;
                let reply = rx.await.ok()??;
                let frame = framer.seal(Channel::Stream, &reply);
                counters.stream_bytes_out.inc_by(frame.len() as u64);
                write_frame(&mut s, &frame).await.ok()
            })
            .await;
        });
    }
}
