//! The tokio driver: one UDP socket and one TCP listener on the gossip port, one task
//! owning the sans-IO core. Everything from the network passes the envelope check
//! ([`Framer`]) first; refused input is counted per reason and logged at most once per
//! reason every 10 s, never a panic. A stream's small header is authenticated before
//! its body is read (bounded by `SIDECAR_GOSSIP_MAX_STREAM`), connections are capped
//! (`SIDECAR_GOSSIP_MAX_CONNECTIONS`), and records replies are built off the driver
//! task so a large request cannot stall probing.

use super::handle::{ClusterCounters, ClusterHandle, Command};
use super::memberlist::{Echoes, MlExchange, MlSide, MlStream, MlWiring};
use crate::config::cluster::{GossipSecurity, GossipWire};
use crate::config::{ClusterConfig, JoinPolicy};
use crate::shared_catalog::SharedCatalog;
use prometheus_client::metrics::counter::Counter;
use sidecar_catalog::{Fingerprint, Record, Service, Timestamp};
use sidecar_cluster::memberlist::MlConfig;
use sidecar_cluster::swim::{CatalogPort, Micros, Output, StreamAnswer, Swim};
use sidecar_cluster::wire::frame::{Channel, Framer, Lead, Refusal, StreamHeader};
use sidecar_cluster::wire::{self, State};
use sidecar_cluster::{MemberInfo, MemberList};
use std::collections::{BTreeMap, HashMap};
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
/// An inbound connection must present its header this fast (it holds one of
/// `SIDECAR_GOSSIP_MAX_CONNECTIONS` slots meanwhile).
const HEADER_TIMEOUT: Duration = Duration::from_secs(3);
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The daemon's catalog as the core sees it.
/// (With the memberlist wire, our own records' rounds that come back on the native
/// wire are dropped as echoes first.)
struct Port<'a>(&'a SharedCatalog, Option<&'a Echoes>);

impl CatalogPort for Port<'_> {
    fn merge(&mut self, announcer: &str, mut records: Vec<Service>) -> Vec<Record> {
        if let Some(echoes) = self.1 {
            records.retain(|s| !echoes.is_echo(s));
        }
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
        Refusal::TooLarge => &c.dropped_too_large,
        Refusal::ConnectionLimit => &c.dropped_connection_limit,
    }
}

struct InboundStream {
    from: SocketAddr,
    payload: Vec<u8>,
    reply: oneshot::Sender<Option<Vec<u8>>>,
}

/// Why a stream exchange of ours failed (what a node that cannot join reports).
#[derive(Debug)]
enum StreamError {
    Connect(std::io::Error),
    Timeout,
    Io(std::io::Error),
    /// The peer refused our message and said why.
    RefusedBy(Refusal),
    /// We refused the peer's reply.
    RefusedReply(Refusal),
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamError::Connect(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                f.write_str("connection refused (nothing listens on its gossip port)")
            }
            StreamError::Connect(e) => write!(f, "unreachable: {e}"),
            StreamError::Timeout => f.write_str("timed out"),
            StreamError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => f.write_str(
                "it closed the connection without answering (an older sidecar refusing us?)",
            ),
            StreamError::Io(e) => write!(f, "connection failed: {e}"),
            StreamError::RefusedBy(r) => write!(f, "refused: {}", r.explain_remote()),
            StreamError::RefusedReply(r) => write!(f, "we refused its reply ({})", r.as_str()),
        }
    }
}

/// Why reading a stream message failed.
enum ReadError {
    Io(std::io::Error),
    /// The peer sent a refusal code.
    RefusedBy(Refusal),
    /// We refuse what the peer sent.
    Refused(Refusal),
}

/// Reads one stream message: the header first (authenticated, announcing at most
/// `max_body` bytes), only then the body.
async fn read_message(
    s: &mut TcpStream,
    framer: &Framer,
    max_body: usize,
    counters: &ClusterCounters,
) -> Result<Vec<u8>, ReadError> {
    let (h, n) = read_header(s, framer, max_body, None).await?;
    read_body(s, framer, h, n, counters).await
}

/// The lead byte and the header; returns the header and its length.
async fn read_header(
    s: &mut TcpStream,
    framer: &Framer,
    max_body: usize,
    lead: Option<u8>,
) -> Result<(StreamHeader, usize), ReadError> {
    let lead = match lead {
        Some(b) => b,
        None => s.read_u8().await.map_err(ReadError::Io)?,
    };
    let n = match Lead::parse(lead) {
        Lead::Header(n) => n,
        Lead::Refused(r) => return Err(ReadError::RefusedBy(r)),
        Lead::Malformed => return Err(ReadError::Refused(Refusal::Malformed)),
    };
    let mut header = [0u8; wire::frame::MAX_HEADER];
    s.read_exact(&mut header[..n])
        .await
        .map_err(ReadError::Io)?;
    let h = framer
        .open_header(&header[..n], max_body)
        .map_err(ReadError::Refused)?;
    Ok((h, n))
}

async fn read_body(
    s: &mut TcpStream,
    framer: &Framer,
    h: StreamHeader,
    n: usize,
    counters: &ClusterCounters,
) -> Result<Vec<u8>, ReadError> {
    let mut body = vec![0u8; h.body_len];
    s.read_exact(&mut body).await.map_err(ReadError::Io)?;
    counters.stream_bytes_in.inc_by((1 + n + body.len()) as u64);
    framer.open_body(&h, &body).map_err(ReadError::Refused)
}

async fn write_message(s: &mut TcpStream, msg: &[u8]) -> std::io::Result<()> {
    s.write_all(msg).await?;
    s.flush().await
}

/// Tells the peer why we refuse it (one byte), then discards what it already sent
/// (at most 1 MiB, 1 s) until it closes: closing with unread input would reset the
/// connection and could destroy the byte before the peer reads it.
async fn refuse(s: &mut TcpStream, r: Refusal) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        s.write_all(&[r.code()]).await?;
        s.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut left = 1usize << 20;
        while left > 0 {
            let n = s.read(&mut sink).await?;
            if n == 0 {
                break;
            }
            left = left.saturating_sub(n);
        }
        Ok::<(), std::io::Error>(())
    })
    .await;
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
    match cfg.security {
        GossipSecurity::Encrypted | GossipSecurity::Loopback => {}
        GossipSecurity::LoopbackOnly => tracing::warn!(
            "no SIDECAR_ENCRYPTION_KEYS and no seeds: gossip listens on 127.0.0.1 only, a \
             cluster of one. To form a cluster, give every node the same key (create one with \
             `sidecar keygen`, set SIDECAR_ENCRYPTION_KEYS) and SIDECAR_SEEDS, or opt into \
             unauthenticated gossip with SIDECAR_GOSSIP_INSECURE=true"
        ),
        GossipSecurity::Insecure => tracing::warn!(
            bind = %cfg.bind,
            "SIDECAR_GOSSIP_INSECURE: gossip is neither authenticated nor encrypted; anyone who \
             can reach the gossip port can inject members and routes into every proxy of the \
             cluster. Use SIDECAR_ENCRYPTION_KEYS (`sidecar keygen`) instead"
        ),
    }
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
    let (join_tx, join_rx) = watch::channel(None);
    let (cmd_tx, cmd_rx) = mpsc::channel(4);
    let (stream_tx, stream_rx) = mpsc::channel::<InboundStream>(64);
    let (ml_tx, ml_rx) = mpsc::channel::<MlStream>(64);
    let (ml_x_tx, ml_x_rx) = mpsc::unbounded_channel::<MlExchange>();
    let ml = (cfg.wire == GossipWire::Memberlist).then(|| {
        tracing::warn!(
            bind = %cfg.bind,
            "SIDECAR_GOSSIP_WIRE=memberlist: speaking the Go Sidecar's memberlist protocol, \
             which is neither authenticated nor encrypted (the native wire is accepted on the \
             same port too, for the rolling migration)"
        );
        let mlc = MlConfig {
            cluster_name: cfg.cluster_name.clone(),
            gossip_interval: cfg.swim.gossip_interval,
            gossip_messages: cfg.swim.gossip_messages,
            push_pull_interval: cfg.swim.push_pull_interval,
            max_members: cfg.swim.max_members,
            new_members_per_sender: cfg.swim.new_members_per_sender,
            ..MlConfig::default()
        };
        MlSide::new(
            mlc,
            &cfg.node_name,
            cfg.advertise,
            MlWiring {
                catalog: catalog.clone(),
                max_stream: cfg.max_stream,
                counters: counters.clone(),
                started,
                exchanges: ml_x_tx,
            },
        )
    });
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
        Limits {
            max_stream: cfg.max_stream,
            max_connections: cfg.max_connections,
        },
        framer.clone(),
        counters.clone(),
        stream_tx,
        ml.is_some().then_some(ml_tx),
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
        max_stream: cfg.max_stream,
        seeds: None,
        joined: false,
        seen: (0, 0),
        join: StartupJoin {
            policy: cfg.join,
            outcome: join_tx,
            failures: BTreeMap::new(),
        },
        echoes: ml.as_ref().map(MlSide::echoes),
        ml,
    };
    tokio::spawn(driver.run(cfg, outbound, cmd_rx, stream_rx, ml_rx, ml_x_rx));
    Ok(ClusterHandle {
        members: members_rx,
        counters,
        commands: cmd_tx,
        joined: join_rx,
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
    replies: (
        mpsc::UnboundedSender<StreamReply>,
        mpsc::UnboundedReceiver<StreamReply>,
    ),
    members_dirty: bool,
    max_stream: usize,
    /// Resolved seeds other than ourselves -> how they were configured (`None` until
    /// they resolve).
    seeds: Option<HashMap<SocketAddr, String>>,
    /// At least one other member is live (or there is nobody to join).
    joined: bool,
    /// The core's (refused_members, refused_wants) last seen, to log what is new.
    seen: (u64, u64),
    join: StartupJoin,
    /// The memberlist wire, on `SIDECAR_GOSSIP_WIRE=memberlist`.
    ml: Option<MlSide>,
    echoes: Option<Arc<Echoes>>,
}

/// The start-up join's bookkeeping: each seed's first failure, until one seed answers
/// (joined) or every seed has failed (the outcome Sidecar exits on).
struct StartupJoin {
    policy: JoinPolicy,
    /// Set once the outcome is known.
    outcome: watch::Sender<Option<Result<(), JoinError>>>,
    /// Seed as configured -> why it failed.
    failures: BTreeMap<String, String>,
}

impl StartupJoin {
    fn fail(&mut self, seed: &str, reason: String) {
        self.failures.entry(seed.to_string()).or_insert(reason);
    }

    fn settle(&mut self, outcome: Result<(), JoinError>) {
        self.outcome.send_if_modified(|cur| {
            if cur.is_some() {
                return false;
            }
            *cur = Some(outcome);
            true
        });
    }

    fn settled(&self) -> bool {
        self.outcome.borrow().is_some()
    }
}

/// No seed could be joined at start-up: each seed as configured with why it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinError(pub Vec<(String, String)>);

impl std::fmt::Display for JoinError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("failed to join the cluster: no seed could be joined (")?;
        for (i, (seed, why)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{seed}: {why}")?;
        }
        f.write_str("). Set SIDECAR_JOIN_RETRY=true to keep retrying instead")
    }
}

impl std::error::Error for JoinError {}

/// The outcome of one of our stream requests.
struct StreamReply {
    req: u64,
    to: SocketAddr,
    reply: Result<Vec<u8>, StreamError>,
}

/// Bounds on inbound streams.
#[derive(Clone, Copy)]
struct Limits {
    max_stream: usize,
    max_connections: usize,
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
        mut ml_streams: mpsc::Receiver<MlStream>,
        mut ml_exchanges: mpsc::UnboundedReceiver<MlExchange>,
    ) {
        let seeds = cfg.seed_targets();
        let (seed_tx, mut seed_rx) = mpsc::channel(1);
        tokio::spawn(resolve_seeds(seeds, cfg.join, seed_tx));
        let mut buf = vec![0u8; 65_536];
        let mut refresh = tokio::time::interval(Duration::from_secs(1));
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut leaving: Option<(oneshot::Sender<()>, tokio::time::Instant)> = None;
        // systemd's watchdog is fed only while this loop turns (at least every 500 ms).
        let heartbeat = crate::service_manager::Heartbeat::register("gossip");
        loop {
            heartbeat.beat().await;
            let deadline = self
                .core
                .next_deadline()
                .min(self.ml.as_ref().map_or(u64::MAX, MlSide::next_deadline));
            let wait = Duration::from_micros(deadline.saturating_sub(self.now()));
            let sleep = tokio::time::sleep(wait.min(Duration::from_millis(500)));
            tokio::select! {
                r = self.udp.recv_from(&mut buf) => match r {
                    Ok((n, from)) => self.datagram(from, &buf[..n]),
                    Err(e) => tracing::debug!("gossip UDP receive: {e}"),
                },
                Some(records) = outbound.recv() => {
                    // Once our departure is announced, nothing of ours goes out: a
                    // refutation of a peer's tombstone of our records would bring them
                    // back to life everywhere just as we leave.
                    if leaving.is_none() {
                        let now = self.now();
                        if let Some(ml) = self.ml.as_mut() {
                            ml.local_records(&records);
                        }
                        self.core.local_records(records, now);
                    }
                }
                Some(s) = streams.recv() => self.stream_request(s),
                Some(s) = ml_streams.recv() => {
                    if let Some(ml) = self.ml.as_mut() {
                        ml.stream(s);
                    }
                }
                Some(x) = ml_exchanges.recv() => {
                    let outcome = self.ml.as_mut().and_then(|ml| ml.exchange(x));
                    match outcome {
                        Some((_, Ok(()))) => self.join.settle(Ok(())),
                        Some((seed, Err(why))) if !self.joined => {
                            self.join.fail(&seed, format!("memberlist: {why}"));
                            self.check_join_failed();
                        }
                        _ => {}
                    }
                }
                Some(r) = self.replies.1.recv() => self.stream_reply(r),
                Some((resolved, unresolved)) = seed_rx.recv() => {
                    for (seed, why) in unresolved {
                        self.join.fail(&seed, format!("cannot resolve: {why}"));
                    }
                    let now = self.now();
                    let me = self.core.addr().to_owned();
                    self.seeds = Some(
                        resolved
                            .iter()
                            .filter(|(_, a)| *a != me)
                            .map(|(s, a)| (*a, s.clone()))
                            .collect(),
                    );
                    let nothing_resolved = resolved.is_empty();
                    // Sidecar: joining yourself is a successful join.
                    if resolved.iter().any(|(_, a)| *a == me) {
                        self.join.settle(Ok(()));
                    }
                    let addrs: Vec<SocketAddr> = resolved.iter().map(|(_, a)| *a).collect();
                    if let Some(ml) = self.ml.as_mut() {
                        ml.seeds = resolved.iter().filter(|(_, a)| *a != me).map(|(s, a)| (*a, s.clone())).collect();
                        let others: Vec<SocketAddr> = addrs.iter().copied().filter(|a| *a != me).collect();
                        ml.core.join(&others);
                    }
                    self.core.join(addrs, now, &Port(&self.catalog, self.echoes.as_deref()));
                    self.members_dirty = true;
                    if nothing_resolved {
                        self.check_join_failed();
                    }
                }
                _ = refresh.tick() => self.refresh(),
                Some(cmd) = commands.recv() => match cmd {
                    Command::Leave(done) => {
                        let now = self.now();
                        self.core.leave(now);
                        if let Some(ml) = self.ml.as_mut() {
                            let t = ml.now();
                            ml.core.leave(t);
                            ml.tick();
                        }
                        // Keep gossiping the departure for a moment.
                        leaving = Some((done, tokio::time::Instant::now() + Duration::from_millis(600)));
                    }
                },
                _ = sleep => {
                    let now = self.now();
                    self.core.tick(now, &Port(&self.catalog, self.echoes.as_deref()));
                    if let Some(ml) = self.ml.as_mut() {
                        ml.tick();
                    }
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
            Err(_) if self.ml.is_some() => {
                // Not the native wire: memberlist's.
                if let Some(ml) = self.ml.as_mut()
                    && let Err(e) = ml.datagram(from, frame)
                {
                    self.counters.dropped_decode.inc();
                    tracing::debug!(%from, "undecodable memberlist datagram: {e}");
                    self.drops.note("memberlist_decode", from);
                }
                return;
            }
            Err(r) => {
                refusal_counter(&self.counters, r).inc();
                self.drops.note(r.as_str(), from);
                return;
            }
        };
        let now = self.now();
        if let Err(e) = self.core.handle_datagram(
            from,
            &payload,
            now,
            &mut Port(&self.catalog, self.echoes.as_deref()),
        ) {
            self.counters.dropped_decode.inc();
            tracing::debug!(%from, "undecodable datagram: {e}");
            self.drops.note("decode", from);
        }
        self.note_refusals(from);
    }

    /// Logs (rate-limited, with the sender) what the core refused since the last call.
    fn note_refusals(&mut self, from: SocketAddr) {
        let s = self.core.stats();
        let (members, wants) = (s.refused_members, s.refused_wants);
        if members > self.seen.0 {
            self.drops.note("refused_members", from);
        }
        if wants > self.seen.1 {
            self.drops.note("refused_wants", from);
        }
        self.seen = (members, wants);
    }

    /// A stream request: answered at once, or, for records, by a blocking task that
    /// reads and encodes them while this loop goes on probing.
    fn stream_request(&mut self, s: InboundStream) {
        let now = self.now();
        let answer = self.core.handle_stream_request(
            s.from,
            &s.payload,
            now,
            &mut Port(&self.catalog, self.echoes.as_deref()),
        );
        self.note_refusals(s.from);
        match answer {
            Ok(StreamAnswer::Reply(r)) => {
                let _ = s.reply.send(Some(r));
            }
            Ok(StreamAnswer::Records(want)) => {
                let catalog = self.catalog.clone();
                let max = self.max_stream;
                let from = s.from;
                tokio::task::spawn_blocking(move || {
                    let (reply, cut) = wire::encode_records_reply(&want, max, |h| {
                        catalog.read(|c| c.host_records(h))
                    });
                    if cut {
                        tracing::warn!(%from, wanted = want.len(), max_bytes = max,
                            "anti-entropy reply cut at SIDECAR_GOSSIP_MAX_STREAM; the rest follows in later exchanges");
                    }
                    let _ = s.reply.send(Some(reply));
                });
            }
            Err(e) => {
                self.counters.dropped_decode.inc();
                tracing::debug!(from = %s.from, "bad stream request: {e}");
                self.drops.note("decode", s.from);
                let _ = s.reply.send(None);
            }
        }
    }

    /// The outcome of one of our requests; a failed exchange with a seed while we have
    /// not joined is reported with its reason (the core retries with backoff, 1 s to
    /// 60 s, so the warnings back off too).
    fn stream_reply(&mut self, r: StreamReply) {
        let now = self.now();
        let reply = match r.reply {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                self.counters.stream_failures.inc();
                self.seed_failed(r.to, e.to_string());
                None
            }
        };
        if let Err(e) = self.core.handle_stream_reply(
            r.req,
            reply.as_deref(),
            now,
            &mut Port(&self.catalog, self.echoes.as_deref()),
        ) {
            self.counters.dropped_decode.inc();
            tracing::debug!("bad stream reply: {e}");
            self.seed_failed(r.to, format!("its answer could not be read: {e}"));
        }
    }

    /// A request to `to` failed: while we have not joined and `to` is a seed, that is
    /// reported, and counted towards the start-up join failing.
    fn seed_failed(&mut self, to: SocketAddr, why: String) {
        let seed = match self.seeds.as_ref().and_then(|s| s.get(&to)) {
            Some(seed) if !self.joined => seed.clone(),
            _ => {
                tracing::debug!(%to, "gossip stream failed: {why}");
                return;
            }
        };
        // On the memberlist wire the join that counts is memberlist's push/pull (Go
        // seeds refuse the native wire, harmlessly).
        if self.ml.is_some() {
            tracing::debug!(%seed, address = %to, "native-wire join through this seed failed: {why}");
            return;
        }
        let retrying = self.join.policy == JoinPolicy::Retry || self.join.settled();
        tracing::warn!(
            seed = %seed,
            address = %to,
            reason = %why,
            "cannot join the cluster through this seed{}",
            if retrying { "; retrying" } else { "" }
        );
        self.join.fail(&seed, why);
        self.check_join_failed();
    }

    /// Settles the start-up join as failed once every seed has failed (Sidecar exits
    /// then); with `SIDECAR_JOIN_RETRY` the core keeps retrying instead.
    fn check_join_failed(&mut self) {
        if self.joined || self.join.settled() || self.join.policy == JoinPolicy::Retry {
            return;
        }
        let Some(seeds) = &self.seeds else { return };
        if seeds.is_empty() && self.join.failures.is_empty() {
            return;
        }
        if seeds.values().all(|s| self.join.failures.contains_key(s)) {
            let failures = self
                .join
                .failures
                .iter()
                .map(|(s, w)| (s.clone(), w.clone()))
                .collect();
            self.join.settle(Err(JoinError(failures)));
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
                    let msg = self.framer.seal_stream(&payload);
                    self.counters.streams_out.inc();
                    self.counters.stream_bytes_out.inc_by(msg.len() as u64);
                    let replies = self.replies.0.clone();
                    let framer = self.framer.clone();
                    let counters = self.counters.clone();
                    let max = self.max_stream;
                    tokio::spawn(async move {
                        let reply = request(to, &msg, max, &framer, &counters).await;
                        let _ = replies.send(StreamReply { req, to, reply });
                    });
                }
                Output::Member { key, state, was } => {
                    self.members_dirty = true;
                    let live_elsewhere = self.ml.as_ref().is_some_and(|ml| {
                        ml.core
                            .nodes()
                            .any(|n| *n.name == *key && n.state.is_live())
                    });
                    if !state.is_live() && live_elsewhere {
                        tracing::info!(member = %key, state = state.as_str(), "member down on the native wire, still alive on memberlist");
                    } else if !state.is_live() {
                        let applied = self.catalog.tombstone_announcer(&key);
                        if was.is_some_and(State::is_live) {
                            tracing::info!(member = %key, state = state.as_str(), tombstoned = applied.events.len(), "member down");
                        }
                    } else if was.is_none_or(|w| !w.is_live()) {
                        // Vouch for it now, not at the next refresh: from here on, only it
                        // may write its records.
                        self.catalog.refresh_announcer(&key);
                        tracing::info!(member = %key, "member up");
                    }
                }
            }
        }
        if let Some(ml) = self.ml.as_mut() {
            let changes = ml.flush(&self.udp);
            let me = ml.core.name().to_string();
            for (name, _addr, state, was) in changes {
                self.members_dirty = true;
                // Our own departure: peers tombstone our records; tombstoning them here
                // would only make the announcer re-announce them, newer than the peers'
                // tombstones, on the way out.
                if name == me {
                    continue;
                }
                let native_live = self
                    .core
                    .members()
                    .iter()
                    .any(|m| *m.key == *name && m.state.is_live());
                if !state.is_live() {
                    if native_live {
                        continue;
                    }
                    let applied = self.catalog.tombstone_announcer(&name);
                    tracing::info!(member = %name, state = state.as_str(), tombstoned = applied.events.len(), "member down (memberlist)");
                } else if was.is_none_or(|w| !w.is_live()) {
                    self.catalog.refresh_announcer(&name);
                    tracing::info!(member = %name, "member up (memberlist)");
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
        if let Some(ml) = self.ml.as_ref() {
            for n in ml.core.nodes().filter(|n| n.state.is_live()) {
                self.catalog.refresh_announcer(&n.name);
            }
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
        set(&self.counters.refused_members, s.refused_members);
        set(&self.counters.refused_wants, s.refused_wants);
        set(&self.counters.queue_dropped, self.core.queue_dropped());
        set(&self.counters.grafts, s.grafts);
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
        if let Some(ml) = self.ml.as_ref() {
            for n in ml.core.nodes() {
                let info = MemberInfo {
                    local: n.name == ml.core.name(),
                    name: n.name.clone(),
                    address: n.addr,
                    state: n.state,
                    incarnation: n.inc,
                    generation: 0,
                };
                match members.iter_mut().find(|m| m.name == n.name) {
                    // Both wires know it: the livelier view stands.
                    Some(m) => {
                        if !m.state.is_live() && n.state.is_live() {
                            *m = info;
                        }
                    }
                    None => members.push(info),
                }
            }
        }
        members.sort_by(|a, b| a.name.cmp(&b.name));
        let no_seeds = self.seeds.as_ref().is_some_and(HashMap::is_empty);
        let ml_live = self.ml.as_ref().is_some_and(|ml| ml.core.live_others() > 0);
        let joined = no_seeds || self.core.members().live() > 0 || ml_live;
        if joined {
            self.join.settle(Ok(()));
        }
        if joined != self.joined {
            if joined && !no_seeds {
                tracing::info!(members = self.core.cluster_size(), "joined the cluster");
            } else {
                tracing::warn!("no other member is alive: not joined to any cluster");
            }
            self.joined = joined;
        }
        let list = MemberList {
            cluster_name: self.cluster_name.clone(),
            members,
            joined,
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

/// Resolves the seeds, retrying every 5 s while none resolves when `policy` is
/// [`JoinPolicy::Retry`] (a host that boots before DNS or its seeds need not
/// crash-loop). Sends each seed as configured with its address, and the seeds that did
/// not resolve with why.
async fn resolve_seeds(seeds: Vec<String>, policy: JoinPolicy, tx: mpsc::Sender<Resolved>) {
    if seeds.is_empty() {
        let _ = tx.send((Vec::new(), Vec::new())).await;
        return;
    }
    loop {
        let mut addrs = Vec::new();
        let mut failed = Vec::new();
        for s in &seeds {
            match tokio::net::lookup_host(s.as_str()).await {
                Ok(found) => {
                    let before = addrs.len();
                    addrs.extend(
                        found
                            .filter(|a| a.is_ipv4())
                            .take(1)
                            .map(|a| (s.clone(), a)),
                    );
                    if addrs.len() == before {
                        failed.push((s.clone(), "no IPv4 address".to_string()));
                    }
                }
                Err(e) => {
                    tracing::warn!(seed = %s, "cannot resolve seed: {e}");
                    failed.push((s.clone(), e.to_string()));
                }
            }
        }
        if !addrs.is_empty() || policy == JoinPolicy::ExitOnFailure {
            let _ = tx.send((addrs, failed)).await;
            return;
        }
        tracing::warn!("no seed resolves; retrying in 5 s");
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// Seeds that resolved (as configured, address) and those that did not (why).
type Resolved = (Vec<(String, SocketAddr)>, Vec<(String, String)>);

/// One request/reply exchange on a fresh connection.
async fn request(
    to: SocketAddr,
    msg: &[u8],
    max_stream: usize,
    framer: &Framer,
    counters: &ClusterCounters,
) -> Result<Vec<u8>, StreamError> {
    let mut s = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(to))
        .await
        .map_err(|_| StreamError::Timeout)?
        .map_err(StreamError::Connect)?;
    let reply = tokio::time::timeout(STREAM_TIMEOUT, async {
        let written = write_message(&mut s, msg).await;
        // A refusing peer may stop reading and answer its refusal byte: prefer the byte.
        match (
            written,
            read_message(&mut s, framer, max_stream, counters).await,
        ) {
            (_, Err(ReadError::RefusedBy(r))) => Err(ReadError::RefusedBy(r)),
            (Err(e), _) => Err(ReadError::Io(e)),
            (Ok(()), r) => r,
        }
    })
    .await
    .map_err(|_| StreamError::Timeout)?;
    match reply {
        Ok(p) => Ok(p),
        Err(ReadError::Io(e)) => Err(StreamError::Io(e)),
        Err(ReadError::RefusedBy(r)) => Err(StreamError::RefusedBy(r)),
        Err(ReadError::Refused(r)) => {
            refusal_counter(counters, r).inc();
            tracing::warn!(%to, reason = r.as_str(), "refused gossip stream reply");
            Err(StreamError::RefusedReply(r))
        }
    }
}

async fn accept_loop(
    tcp: TcpListener,
    limits: Limits,
    framer: Arc<Framer>,
    counters: Arc<ClusterCounters>,
    to_core: mpsc::Sender<InboundStream>,
    to_ml: Option<mpsc::Sender<MlStream>>,
) {
    let drops = Arc::new(parking_lot::Mutex::new(DropLog::default()));
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    loop {
        let (mut s, from) = match tcp.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!("gossip TCP accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            counters.dropped_connection_limit.inc();
            drops.lock().note(Refusal::ConnectionLimit.as_str(), from);
            // Best effort, never waiting: the accept loop must not block.
            let _ = s.try_write(&[Refusal::ConnectionLimit.code()]);
            drop(s);
            continue;
        };
        let (framer, counters, to_core, drops, to_ml) = (
            framer.clone(),
            counters.clone(),
            to_core.clone(),
            drops.clone(),
            to_ml.clone(),
        );
        tokio::spawn(async move {
            let _slot = slot;
            // Which wire: memberlist's first byte is a message type (0-12); ours is a
            // header length (30 or 50) or a refusal code.
            let lead = match tokio::time::timeout(HEADER_TIMEOUT, s.read_u8()).await {
                Ok(Ok(b)) => b,
                _ => return,
            };
            if let Some(to_ml) = to_ml
                && lead <= sidecar_cluster::memberlist::codec::HAS_CRC
            {
                super::memberlist::serve_stream(s, from, lead, limits.max_stream, counters, to_ml)
                    .await;
                return;
            }
            let _ = tokio::time::timeout(STREAM_TIMEOUT, async {
                let read = async {
                    let header = tokio::time::timeout(
                        HEADER_TIMEOUT,
                        read_header(&mut s, &framer, limits.max_stream, Some(lead)),
                    )
                    .await
                    .map_err(|_| ReadError::Io(std::io::ErrorKind::TimedOut.into()))??;
                    read_body(&mut s, &framer, header.0, header.1, &counters).await
                };
                let payload = match read.await {
                    Ok(p) => p,
                    Err(ReadError::Refused(r)) => {
                        refusal_counter(&counters, r).inc();
                        drops.lock().note(r.as_str(), from);
                        refuse(&mut s, r).await;
                        return None;
                    }
                    Err(_) => return None,
                };
                counters.streams_in.inc();
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
                let msg = framer.seal_stream(&reply);
                counters.stream_bytes_out.inc_by(msg.len() as u64);
                write_message(&mut s, &msg).await.ok()
            })
            .await;
        });
    }
}
