//! The memberlist side of a node on `SIDECAR_GOSSIP_WIRE=memberlist`: the protocol
//! core of `sidecar_cluster::memberlist` on the gossip port's UDP socket and TCP
//! listener (shared with the native wire, told apart by their first bytes), and
//! Sidecar's catalog behaviour at that boundary:
//!
//! * each user message is one compact Service JSON; a record merged from one is
//!   re-gossiped once (Sidecar's retransmit), unless it is about us;
//! * our own changes go out in rounds, one a second, stamped `Updated + r × 50 ns`:
//!   5 rounds for new or changed records, 10 for tombstones, 1 for a refresh (the
//!   catalog re-stamps our records every 30 s on this wire; Go peers expire a record
//!   80 s after its stamp);
//! * push/pull carries the node list and the catalog as `/api/state.json` renders it;
//! * a member that dies or leaves has its records tombstoned (10 rounds), as Sidecar's
//!   `ExpireServer`.
//!
//! Our rounds come back to us from peers that merged them (their retransmit): a copy of
//! our own record no newer than the last round we sent is our echo, not a forgery, and
//! is dropped before the catalog (which would answer a forged copy by re-announcing).

use super::handle::ClusterCounters;
use crate::shared_catalog::SharedCatalog;
use sidecar_catalog::{Record, Service, ServicesState, Status, Timestamp, check_record};
use sidecar_cluster::State;
use sidecar_cluster::memberlist::codec::{self, PushPull, StreamMsg};
use sidecar_cluster::memberlist::{Memberlist, MlConfig, Output};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};

/// Sidecar's `ALIVE_COUNT` and `TOMBSTONE_COUNT`.
const ALIVE_COUNT: u32 = 5;
const TOMBSTONE_COUNT: u32 = 10;
/// Each round is stamped this much newer than the previous one.
const ROUND_BUMP_NANOS: i128 = 50;
const ROUND_EVERY: Duration = Duration::from_secs(1);
/// memberlist's `TCPTimeout`.
pub const STREAM_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest user message accepted (one Service JSON; UDP ones are under 1400 bytes).
const MAX_USER_MSG: usize = 64 * 1024;

/// The newest round stamp we sent of each of our own records: a copy of one of them no
/// newer than that, coming back on either wire, is our own round echoed by a peer that
/// merged it, not a copy we did not write.
#[derive(Debug)]
pub struct Echoes {
    me: String,
    newest: parking_lot::Mutex<HashMap<String, Timestamp>>,
}

impl Echoes {
    fn note(&self, s: &Service) {
        if s.hostname == self.me {
            let mut m = self.newest.lock();
            let e = m.entry(s.id.clone()).or_insert(s.updated);
            *e = (*e).max(s.updated);
        }
    }

    pub fn is_echo(&self, s: &Service) -> bool {
        s.hostname == self.me
            && self
                .newest
                .lock()
                .get(&s.id)
                .is_some_and(|newest| s.updated <= *newest)
    }

    fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.newest.lock().retain(|id, _| keep(id));
    }
}

/// A record batch being sent in rounds.
struct Rounds {
    services: Vec<Service>,
    next: Instant,
    round: u32,
    count: u32,
}

/// An inbound memberlist stream message waiting for the driver.
pub struct MlStream {
    pub from: SocketAddr,
    pub msg: StreamMsg,
    /// The reply to write (push/pull), or nothing (close).
    pub reply: oneshot::Sender<Option<Vec<u8>>>,
}

/// The outcome of one of our push/pulls.
pub struct MlExchange {
    pub to: SocketAddr,
    pub join: bool,
    pub result: Result<PushPull, String>,
}

pub struct MlSide {
    pub core: Memberlist,
    catalog: Arc<SharedCatalog>,
    me: String,
    started: Instant,
    rounds: Vec<Rounds>,
    /// (hostname, id) -> the status last sent and the newest stamp of its rounds.
    sent: HashMap<(String, String), (Status, Timestamp)>,
    max_stream: usize,
    exchanges: mpsc::UnboundedSender<MlExchange>,
    /// Seeds of the pending join, as configured.
    pub seeds: HashMap<SocketAddr, String>,
    pub joined: bool,
    pub counters: Arc<ClusterCounters>,
    echoes: Arc<Echoes>,
}

fn micros(started: Instant) -> u64 {
    started.elapsed().as_micros() as u64
}

/// Node meta as Sidecar's delegate sets it.
pub fn node_meta(cluster: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"ClusterName": cluster, "State": "Running"}))
        .unwrap_or_default()
}

/// Starting incarnation: seconds since 2020, so a restarted node always outranks what
/// peers remember of its previous life (Go starts at 1 and relies on refutation).
fn initial_incarnation() -> u32 {
    let secs = Timestamp::now().unix_nanos() / 1_000_000_000 - 1_577_836_800;
    secs.clamp(1, i128::from(u32::MAX / 2)) as u32
}

/// What the memberlist side shares with the transport.
pub struct MlWiring {
    pub catalog: Arc<SharedCatalog>,
    pub max_stream: usize,
    pub counters: Arc<ClusterCounters>,
    /// The transport's clock origin.
    pub started: Instant,
    /// Where our push/pull exchanges report.
    pub exchanges: mpsc::UnboundedSender<MlExchange>,
}

impl MlSide {
    pub fn new(cfg: MlConfig, node_name: &str, advertise: SocketAddr, w: MlWiring) -> Self {
        let MlWiring {
            catalog,
            max_stream,
            counters,
            started,
            exchanges,
        } = w;
        let meta = node_meta(&cfg.cluster_name);
        let core = Memberlist::new(
            cfg,
            node_name,
            advertise,
            meta,
            initial_incarnation(),
            rand::random(),
            micros(started),
        );
        MlSide {
            core,
            catalog,
            me: node_name.to_string(),
            started,
            rounds: Vec::new(),
            sent: HashMap::new(),
            max_stream,
            exchanges,
            seeds: HashMap::new(),
            joined: false,
            counters,
            echoes: Arc::new(Echoes {
                me: node_name.to_string(),
                newest: parking_lot::Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn echoes(&self) -> Arc<Echoes> {
        self.echoes.clone()
    }

    pub fn now(&self) -> u64 {
        micros(self.started)
    }

    pub fn next_deadline(&self) -> u64 {
        let rounds = self
            .rounds
            .iter()
            .map(|r| r.next.saturating_duration_since(self.started).as_micros() as u64)
            .min()
            .unwrap_or(u64::MAX);
        self.core.next_deadline().min(rounds)
    }

    /// A datagram that is not the native wire's.
    pub fn datagram(&mut self, from: SocketAddr, buf: &[u8]) -> Result<(), codec::CodecError> {
        let now = self.now();
        self.core.handle_packet(from, buf, now)
    }

    /// Records our local operations stored: sent in rounds.
    pub fn local_records(&mut self, records: &[Record]) {
        let mut batch = Vec::new();
        for r in records {
            let s = &r.service;
            let key = (s.hostname.clone(), s.id.clone());
            let count = match self.sent.get(&key) {
                _ if s.is_tombstone() => TOMBSTONE_COUNT,
                Some((status, _)) if *status == s.status => 1,
                _ => ALIVE_COUNT,
            };
            batch.push((count, s.clone()));
        }
        for count in [1, ALIVE_COUNT, TOMBSTONE_COUNT] {
            let services: Vec<Service> = batch
                .iter()
                .filter(|(c, _)| *c == count)
                .map(|(_, s)| s.clone())
                .collect();
            if !services.is_empty() {
                self.rounds.push(Rounds {
                    services,
                    next: Instant::now(),
                    round: 0,
                    count,
                });
            }
        }
        self.run_rounds();
    }

    fn run_rounds(&mut self) {
        let now = Instant::now();
        let mut msgs = Vec::new();
        for r in self.rounds.iter_mut().filter(|r| r.next <= now) {
            for s in &r.services {
                let mut copy = s.clone();
                copy.updated = s.updated.add_nanos(i128::from(r.round) * ROUND_BUMP_NANOS);
                let key = (s.hostname.clone(), s.id.clone());
                let e = self.sent.entry(key).or_insert((s.status, copy.updated));
                e.0 = s.status;
                e.1 = e.1.max(copy.updated);
                self.echoes.note(&copy);
                if let Ok(json) = serde_json::to_vec(&copy) {
                    msgs.push(json);
                }
            }
            r.round += 1;
            r.next = now + ROUND_EVERY;
        }
        self.rounds.retain(|r| r.round < r.count);
        // Forget what we no longer hold (bounded by the catalog).
        if self.sent.len() > 4 * self.catalog.snapshot().state.len() + 1024 {
            let snap = self.catalog.snapshot();
            self.sent
                .retain(|(h, id), _| snap.state.get(h, id).is_some());
            let me = self.me.clone();
            self.echoes.retain(|id| snap.state.get(&me, id).is_some());
        }
        if !msgs.is_empty() {
            self.core.queue_user(msgs);
        }
    }

    /// One user message: a Service JSON.
    fn user_message(&mut self, bytes: &[u8]) {
        if bytes.len() > MAX_USER_MSG {
            self.counters.dropped_too_large.inc();
            return;
        }
        let svc: Service = match serde_json::from_slice(bytes) {
            Ok(s) => s,
            Err(e) => {
                self.counters.dropped_decode.inc();
                tracing::debug!("undecodable Service in a memberlist user message: {e}");
                return;
            }
        };
        self.merge(vec![svc], true);
    }

    /// Merges records from memberlist (each announced by its own host, as in Sidecar),
    /// and re-gossips once what was stored (`retransmit`).
    fn merge(&mut self, services: Vec<Service>, retransmit: bool) {
        let mut by_host: HashMap<String, Vec<Service>> = HashMap::new();
        for s in services {
            if let Err(e) = check_record(&s) {
                self.counters.dropped_decode.inc();
                tracing::debug!("refused a record from memberlist: {e}");
                continue;
            }
            if self.echoes.is_echo(&s) {
                continue; // our own round, echoed back
            }
            by_host.entry(s.hostname.clone()).or_default().push(s);
        }
        for (host, list) in by_host {
            let applied = self.catalog.merge_remote(&host, list);
            let again: Vec<Vec<u8>> = applied
                .stored
                .iter()
                .filter(|r| r.service.hostname != self.me)
                .filter_map(|r| serde_json::to_vec(&r.service).ok())
                .collect();
            if retransmit && !again.is_empty() {
                self.core.queue_user(again);
            }
        }
    }

    fn merge_user_state(&mut self, state: &[u8]) {
        if state.is_empty() {
            return;
        }
        let st: ServicesState = match serde_json::from_slice(state) {
            Ok(s) => s,
            Err(e) => {
                self.counters.dropped_decode.inc();
                tracing::warn!("undecodable catalog in a memberlist push/pull: {e}");
                return;
            }
        };
        let all: Vec<Service> = st
            .servers
            .into_iter()
            .flat_map(|(_, s)| s.services.into_iter().map(|(_, svc)| svc))
            .collect();
        self.merge(all, true);
    }

    /// An inbound stream message (already bounded and parsed by the connection task).
    pub fn stream(&mut self, s: MlStream) {
        match s.msg {
            StreamMsg::PushPull(pp) => {
                if pp.cluster != self.core.cluster_name() {
                    self.counters.dropped_foreign_cluster.inc();
                    tracing::warn!(from = %s.from, theirs = %pp.cluster, "Cluster names do not match: refused a memberlist push/pull");
                    let _ = s.reply.send(None);
                    return;
                }
                let state = self.catalog.snapshot().state_json().to_vec();
                let reply = self.core.local_state(pp.join, state);
                let _ = s.reply.send(Some(reply));
                let now = self.now();
                self.core.merge_remote(pp.nodes, s.from, now);
                self.merge_user_state(&pp.user_state);
            }
            StreamMsg::User(u) => {
                let _ = s.reply.send(None);
                self.user_message(&u);
            }
            StreamMsg::Ping(p) => {
                let ok = p.node.is_empty() || p.node == self.me;
                let _ = s.reply.send(ok.then(|| codec::encode_ack(p.seq)));
            }
            StreamMsg::Ack { .. } => {
                let _ = s.reply.send(None);
            }
        }
    }

    /// The outcome of one of our push/pulls; for a join with a seed, the seed as
    /// configured and whether it worked (what the start-up join counts).
    pub fn exchange(&mut self, x: MlExchange) -> Option<(String, Result<(), String>)> {
        let seed = self.seeds.get(&x.to).filter(|_| x.join).cloned();
        let result = match x.result {
            Ok(pp) if pp.cluster != self.core.cluster_name() => {
                self.counters.dropped_foreign_cluster.inc();
                let why = format!(
                    "Cluster names do not match: {:?} <-> {:?}",
                    pp.cluster,
                    self.core.cluster_name()
                );
                self.exchange_failed(x.to, x.join, &why);
                Err(why)
            }
            Ok(pp) => {
                if let Some(seed) = &seed {
                    tracing::info!(%seed, address = %x.to, "joined through this seed (memberlist)");
                }
                let now = self.now();
                self.core.merge_remote(pp.nodes, x.to, now);
                self.merge_user_state(&pp.user_state);
                Ok(())
            }
            Err(e) => {
                self.counters.stream_failures.inc();
                self.exchange_failed(x.to, x.join, &e);
                Err(e)
            }
        };
        seed.map(|s| (s, result))
    }

    fn exchange_failed(&mut self, to: SocketAddr, join: bool, why: &str) {
        match self.seeds.get(&to) {
            Some(seed) if join => tracing::warn!(
                %seed, address = %to, reason = %why,
                "cannot join the cluster through this seed (memberlist push/pull)"
            ),
            _ => tracing::debug!(%to, "memberlist push/pull failed: {why}"),
        }
    }

    pub fn tick(&mut self) {
        let now = self.now();
        self.run_rounds();
        self.core.tick(now);
    }

    /// Carries out what the core decided. Returns member changes `(name, addr, state,
    /// was)` for the caller to combine with the native wire's view.
    pub fn flush(&mut self, udp: &UdpSocket) -> Vec<(String, SocketAddr, State, Option<State>)> {
        let mut changes = Vec::new();
        while let Some(out) = self.core.poll_output() {
            match out {
                Output::Packet { to, bytes } => {
                    self.counters.datagrams_out.inc();
                    self.counters.bytes_out.inc_by(bytes.len() as u64);
                    if udp.try_send_to(&bytes, to).is_err() {
                        self.counters.dropped_send.inc();
                    }
                }
                Output::PushPull { to, join } => {
                    let state = self.catalog.snapshot().state_json().to_vec();
                    let msg = self.core.local_state(join, state);
                    let tx = self.exchanges.clone();
                    let max = self.max_stream;
                    let counters = self.counters.clone();
                    counters.streams_out.inc();
                    counters.stream_bytes_out.inc_by(msg.len() as u64);
                    tokio::spawn(async move {
                        let result = push_pull(to, &msg, max, &counters).await;
                        let _ = tx.send(MlExchange { to, join, result });
                    });
                }
                Output::Member {
                    name,
                    addr,
                    state,
                    was,
                } => changes.push((name, addr, state, was)),
                Output::User(u) => self.user_message(&u),
            }
        }
        changes
    }
}

/// One push/pull: our state out, theirs back (Go closes after answering).
async fn push_pull(
    to: SocketAddr,
    msg: &[u8],
    max: usize,
    counters: &ClusterCounters,
) -> Result<PushPull, String> {
    let mut s = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(to))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                "connection refused (nothing listens on its gossip port)".to_string()
            }
            _ => format!("unreachable: {e}"),
        })?;
    tokio::time::timeout(STREAM_TIMEOUT, async {
        s.write_all(msg).await.map_err(|e| format!("send: {e}"))?;
        match read_stream(&mut s, max, counters).await? {
            StreamMsg::PushPull(pp) => Ok(pp),
            other => Err(format!("expected a push/pull reply, got {other:?}")),
        }
    })
    .await
    .map_err(|_| "timed out".to_string())?
}

/// Reads one memberlist stream message, `first` already read; bounded by `max` bytes.
pub async fn read_stream_after(
    s: &mut TcpStream,
    first: Vec<u8>,
    max: usize,
    counters: &ClusterCounters,
) -> Result<StreamMsg, String> {
    let mut buf = first;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match codec::parse_stream(&buf, max) {
            Ok(Some(m)) => {
                counters.stream_bytes_in.inc_by(buf.len() as u64);
                return Ok(m);
            }
            Ok(None) => {}
            Err(e) => return Err(e.to_string()),
        }
        let n = s.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(if buf.is_empty() {
                "closed without answering (another cluster's name, or not a memberlist node?)"
                    .to_string()
            } else {
                "closed in the middle of a message".to_string()
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn read_stream(
    s: &mut TcpStream,
    max: usize,
    counters: &ClusterCounters,
) -> Result<StreamMsg, String> {
    read_stream_after(s, Vec::new(), max, counters).await
}

/// Serves one inbound memberlist connection whose first byte was `first`.
pub async fn serve_stream(
    mut s: TcpStream,
    from: SocketAddr,
    first: u8,
    max: usize,
    counters: Arc<ClusterCounters>,
    to_driver: mpsc::Sender<MlStream>,
) {
    let _ = tokio::time::timeout(STREAM_TIMEOUT, async {
        let msg = match read_stream_after(&mut s, vec![first], max, &counters).await {
            Ok(m) => m,
            Err(e) => {
                counters.dropped_decode.inc();
                tracing::debug!(%from, "bad memberlist stream: {e}");
                return;
            }
        };
        counters.streams_in.inc();
        let (tx, rx) = oneshot::channel();
        if to_driver
            .send(MlStream {
                from,
                msg,
                reply: tx,
            })
            .await
            .is_err()
        {
            return;
        }
        if let Ok(Some(reply)) = rx.await {
            counters.stream_bytes_out.inc_by(reply.len() as u64);
            let _ = s.write_all(&reply).await;
            let _ = s.flush().await;
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidecar_catalog::Port;
    use sidecar_cluster::memberlist::codec::Message;

    fn side(name: &str) -> (MlSide, Arc<SharedCatalog>) {
        let (catalog, _out) = SharedCatalog::with_defaults(name, "default");
        let (tx, _rx) = mpsc::unbounded_channel();
        let side = MlSide::new(
            MlConfig::default(),
            name,
            SocketAddr::from(([10, 0, 0, 1], 7946)),
            MlWiring {
                catalog: catalog.clone(),
                max_stream: 1 << 20,
                counters: Arc::default(),
                started: Instant::now(),
                exchanges: tx,
            },
        );
        (side, catalog)
    }

    fn svc(host: &str, id: &str, status: Status) -> Service {
        Service {
            id: id.into(),
            name: "web".into(),
            hostname: host.into(),
            ports: vec![Port {
                port: 8080,
                service_port: 10100,
                ip: "10.0.0.2".into(),
                ..Port::default()
            }],
            updated: Timestamp::now(),
            proxy_mode: "http".into(),
            status,
            ..Service::default()
        }
    }

    /// Adds a peer so that gossip has somewhere to go, and returns the user messages
    /// the next gossip tick sends.
    fn gossiped(side: &mut MlSide) -> Vec<Service> {
        let peer = codec::encode_alive(&codec::Alive {
            inc: 1,
            node: "peer".into(),
            cluster: "default".into(),
            addr: vec![10, 0, 0, 9],
            port: 7946,
            meta: vec![],
            vsn: codec::VSN.to_vec(),
        });
        let from = SocketAddr::from(([10, 0, 0, 9], 7946));
        side.core
            .handle_packet(from, &peer, side.now())
            .expect("alive");
        side.core.tick(side.now() + 1_000_000);
        let mut out = Vec::new();
        while let Some(o) = side.core.poll_output() {
            if let Output::Packet { bytes, .. } = o {
                for m in codec::decode_packet(&bytes).unwrap_or_default() {
                    if let Message::User(u) = m
                        && let Ok(s) = serde_json::from_slice::<Service>(&u)
                    {
                        out.push(s);
                    }
                }
            }
        }
        out
    }

    #[tokio::test]
    async fn a_peer_record_is_merged_and_regossiped_once_and_bad_ones_are_refused() {
        let (mut side, catalog) = side("me");
        let s = svc("go1", "abc", Status::Alive);
        side.user_message(&serde_json::to_vec(&s).expect("json"));
        assert_eq!(
            catalog.read(|c| c.state().get("go1", "abc").map(|x| x.status)),
            Some(Status::Alive)
        );
        let again = gossiped(&mut side);
        assert_eq!(again.iter().filter(|x| x.id == "abc").count(), 1);
        // Not again: the same stamp is not newer.
        side.user_message(&serde_json::to_vec(&s).expect("json"));
        assert!(gossiped(&mut side).iter().all(|x| x.id != "abc"));
        // A record with a newline in its ID is refused before the catalog.
        let mut bad = svc("go1", "x\ny", Status::Alive);
        bad.updated = Timestamp::now();
        side.user_message(&serde_json::to_vec(&bad).expect("json"));
        side.user_message(b"{not json");
        assert_eq!(side.counters.dropped_decode.get(), 2);
        assert_eq!(catalog.read(|c| c.state().len()), 1);
    }

    #[tokio::test]
    async fn our_changes_go_out_in_rounds_and_their_echoes_are_not_forgeries() {
        let (mut side, catalog) = side("me");
        let applied = catalog.sync_local(vec![svc("me", "a1", Status::Alive)]);
        side.local_records(&applied.stored);
        let sent = gossiped(&mut side);
        let first = sent.iter().find(|x| x.id == "a1").expect("round 0").clone();
        let stored = catalog
            .read(|c| c.state().get("me", "a1").cloned())
            .expect("ours");
        assert_eq!(first.updated, stored.updated, "round 0 carries our stamp");
        // Round 3 of it, as a peer would echo it back: ours, not a forgery.
        let mut echo = first.clone();
        echo.updated = first.updated.add_nanos(3 * ROUND_BUMP_NANOS);
        side.echoes.note(&echo);
        side.user_message(&serde_json::to_vec(&echo).expect("json"));
        assert_eq!(catalog.counters.refuted.get(), 0);
        assert!(side.echoes().is_echo(&echo));
        // A newer copy we never sent is still answered by re-announcing ours.
        let mut forged = first;
        forged.status = Status::Draining;
        forged.updated = forged.updated.add_nanos(1_000_000);
        side.user_message(&serde_json::to_vec(&forged).expect("json"));
        assert_eq!(catalog.counters.refuted.get(), 1);
    }

    #[tokio::test]
    async fn a_push_pull_from_another_cluster_is_refused() {
        let (mut side, _catalog) = side("me");
        let (tx, rx) = oneshot::channel();
        side.stream(MlStream {
            from: SocketAddr::from(([10, 0, 0, 9], 7946)),
            msg: StreamMsg::PushPull(PushPull {
                join: true,
                cluster: "other".into(),
                nodes: vec![],
                user_state: b"{}".to_vec(),
            }),
            reply: tx,
        });
        assert_eq!(rx.await.ok(), Some(None));
        assert_eq!(side.counters.dropped_foreign_cluster.get(), 1);
    }
}
