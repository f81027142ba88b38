//! memberlist's protocol as a sans-IO state machine: the member table with
//! incarnations, the probe cycle (direct ping, indirect pings with nacks, suspicion with
//! Lifeguard's confirmation-shrunk timeout), the transmit-limited broadcast queue,
//! gossip ticks with Sidecar's `GossipMessages` packets per tick, and push/pull
//! scheduling. The transport feeds datagrams, parsed stream messages and the time, and
//! carries out what [`Output`] says. Timers and rules are those of memberlist's
//! `state.go` at the commit Sidecar vendors; where we differ it is said.

use super::codec::{
    self, Alive, Dead, IndirectPing, Message, Ping, PushNodeState, PushPull, Suspect,
};
use crate::swim::rng::Rng;
use crate::wire::State;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

pub type Micros = u64;

fn us(d: Duration) -> Micros {
    d.as_micros() as Micros
}

/// Sidecar's memberlist settings (LAN defaults plus Sidecar's overrides).
#[derive(Clone, Debug)]
pub struct MlConfig {
    pub cluster_name: String,
    pub probe_interval: Duration,
    pub probe_timeout: Duration,
    pub indirect_checks: usize,
    pub suspicion_mult: u32,
    pub suspicion_max_mult: u32,
    pub gossip_interval: Duration,
    pub gossip_nodes: usize,
    /// Sidecar's `SIDECAR_GOSSIP_MESSAGES` (15): packets per gossip tick.
    pub gossip_messages: usize,
    pub retransmit_mult: u32,
    pub push_pull_interval: Duration,
    pub gossip_to_the_dead: Duration,
    pub udp_buffer: usize,
    /// Most members in the table; further new names are refused.
    pub max_members: usize,
    /// Most user messages waiting to be gossiped; the oldest are dropped beyond it
    /// (Sidecar: 100).
    pub user_queue_limit: usize,
    /// New members one sending address may introduce per second by datagram (and the
    /// burst); push/pull exchanges, which carry a whole cluster at a join, are not
    /// limited (`SIDECAR_GOSSIP_NEW_MEMBERS_PER_SECOND`).
    pub new_members_per_sender: u32,
}

impl Default for MlConfig {
    fn default() -> Self {
        MlConfig {
            cluster_name: "default".into(),
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            indirect_checks: 3,
            suspicion_mult: 5,
            suspicion_max_mult: 6,
            gossip_interval: Duration::from_millis(200),
            gossip_nodes: 3,
            gossip_messages: 15,
            retransmit_mult: 4,
            push_pull_interval: Duration::from_secs(20),
            gossip_to_the_dead: Duration::from_secs(30),
            udp_buffer: 1400,
            max_members: 16_384,
            user_queue_limit: 1024,
            new_members_per_sender: 64,
        }
    }
}

/// One member as memberlist tracks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MlNode {
    pub name: String,
    pub addr: SocketAddr,
    pub meta: Vec<u8>,
    pub inc: u32,
    pub state: State,
    /// When the state last changed (our clock).
    pub since: Micros,
    pub vsn: [u8; 6],
}

impl MlNode {
    fn pmax(&self) -> u8 {
        self.vsn[1]
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// A finished datagram (compressed and CRC'd as the peer expects).
    Packet { to: SocketAddr, bytes: Vec<u8> },
    /// Start a push/pull exchange over TCP with this node (`join`: the first one).
    PushPull { to: SocketAddr, join: bool },
    /// A member changed state (`was` is `None` for a new member).
    Member {
        name: String,
        addr: SocketAddr,
        state: State,
        was: Option<State>,
    },
    /// A user message (Sidecar: one Service JSON) received.
    User(Vec<u8>),
}

struct Probe {
    seq: u32,
    target: String,
    /// Direct ack window end: then indirect pings go out.
    direct_until: Micros,
    /// Probe end: no ack by then means suspect.
    until: Micros,
    indirect_sent: bool,
    acked: bool,
}

struct Relay {
    orig_seq: u32,
    from: SocketAddr,
    nack: bool,
    until: Micros,
}

struct Suspicion {
    start: Micros,
    k: u32,
    min: Micros,
    max: Micros,
    confirmed: HashSet<String>,
}

impl Suspicion {
    /// memberlist's `remainingSuspicionTime` (without the elapsed part).
    fn timeout(&self) -> Micros {
        if self.k < 1 {
            return self.min;
        }
        let n = self.confirmed.len() as f64;
        let frac = (n + 1.0).ln() / (f64::from(self.k) + 1.0).ln();
        let raw = self.max as f64 - frac * (self.max - self.min) as f64;
        (raw.max(0.0) as Micros).max(self.min)
    }
}

struct Bcast {
    /// Named broadcasts: a newer one about the same node replaces it.
    node: String,
    msg: Vec<u8>,
    transmits: u32,
}

/// Protocol counters.
#[derive(Clone, Debug, Default)]
pub struct MlStats {
    pub probes: u64,
    pub suspicions: u64,
    pub deaths_declared: u64,
    pub refutations: u64,
    pub refused_members: u64,
    pub foreign_cluster: u64,
    pub user_dropped: u64,
}

pub struct Memberlist {
    cfg: MlConfig,
    me: String,
    inc: u32,
    meta: Vec<u8>,
    nodes: HashMap<String, MlNode>,
    /// Probe order (shuffled each round, like memberlist's `resetNodes`).
    order: Vec<String>,
    probe_index: usize,
    seq: u32,
    probe: Option<Probe>,
    relays: HashMap<u32, Relay>,
    suspicions: HashMap<String, Suspicion>,
    broadcasts: Vec<Bcast>,
    user: VecDeque<Vec<u8>>,
    next_probe: Micros,
    next_gossip: Micros,
    next_push_pull: Micros,
    out: VecDeque<Output>,
    rng: Rng,
    leaving: bool,
    /// Token buckets of new-member introductions, per sending IP: (tokens, last refill).
    intros: HashMap<std::net::IpAddr, (f64, Micros)>,
    /// The seeds of [`Memberlist::join`], asked again (see [`Memberlist::tick`]) while
    /// no other member is known: a seed that was not listening yet when we started
    /// would otherwise leave us invisible to every memberlist-only node.
    seeds: Vec<SocketAddr>,
    /// When to ask the seeds again (`None`: schedule from the next tick) and the wait.
    next_join: Option<Micros>,
    join_backoff: Duration,
    pub stats: MlStats,
}

/// The first retry of an unanswered join; each later one waits twice as long, to 60 s.
pub const FIRST_JOIN_RETRY: Duration = Duration::from_millis(125);

impl Memberlist {
    /// Our node, alive with incarnation `inc` (we start above any previous life's
    /// incarnation: the transport passes a time-derived value, so a restart is never
    /// ignored by peers that still remember the old one).
    pub fn new(
        cfg: MlConfig,
        name: &str,
        addr: SocketAddr,
        meta: Vec<u8>,
        inc: u32,
        seed: u64,
        now: Micros,
    ) -> Self {
        let mut rng = Rng::new(seed);
        let next_probe = now + rng.below(us(cfg.probe_interval) as usize + 1) as Micros;
        let next_gossip = now + rng.below(us(cfg.gossip_interval) as usize + 1) as Micros;
        let next_push_pull = now + rng.below(us(cfg.push_pull_interval) as usize + 1) as Micros;
        let mut m = Memberlist {
            me: name.to_string(),
            inc,
            meta,
            nodes: HashMap::new(),
            order: Vec::new(),
            probe_index: 0,
            seq: 0,
            probe: None,
            relays: HashMap::new(),
            suspicions: HashMap::new(),
            broadcasts: Vec::new(),
            user: VecDeque::new(),
            next_probe,
            next_gossip,
            next_push_pull,
            out: VecDeque::new(),
            rng,
            leaving: false,
            intros: HashMap::new(),
            seeds: Vec::new(),
            next_join: None,
            join_backoff: FIRST_JOIN_RETRY,
            stats: MlStats::default(),
            cfg,
        };
        m.nodes.insert(
            name.to_string(),
            MlNode {
                name: name.to_string(),
                addr,
                meta: m.meta.clone(),
                inc,
                state: State::Alive,
                since: now,
                vsn: codec::VSN,
            },
        );
        m.order.push(name.to_string());
        m
    }

    pub fn name(&self) -> &str {
        &self.me
    }

    pub fn cluster_name(&self) -> &str {
        &self.cfg.cluster_name
    }

    pub fn incarnation(&self) -> u32 {
        self.inc
    }

    pub fn nodes(&self) -> impl Iterator<Item = &MlNode> {
        self.nodes.values()
    }

    /// Live members other than us.
    pub fn live_others(&self) -> usize {
        self.nodes
            .values()
            .filter(|n| n.name != self.me && n.state.is_live())
            .count()
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    pub fn next_deadline(&self) -> Micros {
        let mut d = self
            .next_probe
            .min(self.next_gossip)
            .min(self.next_push_pull);
        if let Some(p) = &self.probe {
            d = d.min(if p.indirect_sent {
                p.until
            } else {
                p.direct_until
            });
        }
        if let Some(j) = self.next_join {
            d = d.min(j);
        }
        d
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn alive_msg(&self) -> Alive {
        let addr = self.nodes.get(&self.me).map(|n| n.addr);
        Alive {
            inc: self.inc,
            node: self.me.clone(),
            cluster: self.cfg.cluster_name.clone(),
            addr: addr.map(|a| codec::ip_bytes(a.ip())).unwrap_or_default(),
            port: addr.map_or(0, |a| a.port()),
            meta: self.meta.clone(),
            vsn: codec::VSN.to_vec(),
        }
    }

    /// Sends a join push/pull to each seed.
    pub fn join(&mut self, seeds: &[SocketAddr]) {
        self.seeds = seeds.to_vec();
        self.next_join = None;
        self.join_backoff = FIRST_JOIN_RETRY;
        for s in seeds {
            self.out.push_back(Output::PushPull { to: *s, join: true });
        }
    }

    /// Whether another member is known alive (then push/pull rounds keep us joined).
    fn has_live_peer(&self) -> bool {
        self.nodes
            .values()
            .any(|n| n.name != self.me && n.state == State::Alive)
    }

    /// Asks the seeds again, backing off, while nobody else is known.
    fn retry_join(&mut self, now: Micros) {
        if self.seeds.is_empty() || self.leaving || self.has_live_peer() {
            self.next_join = None;
            self.join_backoff = FIRST_JOIN_RETRY;
            return;
        }
        match self.next_join {
            None => self.next_join = Some(now + us(self.join_backoff)),
            Some(at) if now >= at => {
                for s in self.seeds.clone() {
                    self.out.push_back(Output::PushPull { to: s, join: true });
                }
                self.join_backoff = (self.join_backoff * 2).min(Duration::from_secs(60));
                self.next_join = Some(now + us(self.join_backoff));
            }
            Some(_) => {}
        }
    }

    /// Queues user messages (Sidecar's broadcast batches); each is gossiped once.
    pub fn queue_user(&mut self, msgs: impl IntoIterator<Item = Vec<u8>>) {
        for m in msgs {
            // Too long to ever fit a packet: it would block the queue (Sidecar's
            // quirk); push/pull carries it instead.
            if m.len() + 4 > self.cfg.udp_buffer {
                self.stats.user_dropped += 1;
                continue;
            }
            self.user.push_back(m);
        }
        while self.user.len() > self.cfg.user_queue_limit {
            self.user.pop_front();
            self.stats.user_dropped += 1;
        }
    }

    /// Graceful leave: broadcast our own death (memberlist's `Leave`).
    pub fn leave(&mut self, now: Micros) {
        self.leaving = true;
        let d = Dead {
            inc: self.inc,
            node: self.me.clone(),
            cluster: self.cfg.cluster_name.clone(),
            from: self.me.clone(),
        };
        self.dead_node(&d, now);
        // memberlist leaves it to gossip; a stopping process has well under a second
        // left, so every live member is told directly too (one small datagram each).
        let msg = codec::encode_dead(&d);
        let live: Vec<(SocketAddr, bool)> = self
            .nodes
            .values()
            .filter(|n| n.name != self.me && n.state.is_live())
            .map(|n| (n.addr, n.pmax() >= 5))
            .collect();
        for (to, crc) in live {
            self.out.push_back(Output::Packet {
                to,
                bytes: codec::finish_packet(msg.clone(), crc),
            });
        }
        self.next_gossip = now;
    }

    // -----------------------------------------------------------------------------------
    // Input
    // -----------------------------------------------------------------------------------

    /// One datagram.
    pub fn handle_packet(
        &mut self,
        from: SocketAddr,
        buf: &[u8],
        now: Micros,
    ) -> Result<(), codec::CodecError> {
        for msg in codec::decode_packet(buf)? {
            self.handle_message(from, msg, now);
        }
        Ok(())
    }

    fn handle_message(&mut self, from: SocketAddr, msg: Message, now: Micros) {
        match msg {
            Message::Ping(p) => {
                if !p.node.is_empty() && p.node != self.me {
                    return;
                }
                let ack = codec::encode_ack(p.seq);
                self.send_msg(from, ack);
            }
            Message::IndirectPing(ind) => {
                let Some(ip) = codec::ip_of(&ind.target) else {
                    return;
                };
                let port = if ind.port == 0 { from.port() } else { ind.port };
                let target = SocketAddr::new(ip, port);
                let seq = self.next_seq();
                self.relays.insert(
                    seq,
                    Relay {
                        orig_seq: ind.seq,
                        from,
                        nack: ind.nack,
                        until: now + us(self.cfg.probe_timeout),
                    },
                );
                // Bounded: relays expire after one probe timeout.
                if self.relays.len() > 4096 {
                    self.expire_relays(u64::MAX);
                }
                let ping = codec::encode_ping(&Ping {
                    seq,
                    node: ind.node,
                });
                self.send_msg(target, ping);
            }
            Message::Ack { seq } => self.ack(seq),
            Message::Nack { .. } => {}
            Message::Suspect(s) => {
                if self.same_cluster(&s.cluster) {
                    self.suspect_node(&s, now);
                }
            }
            Message::Alive(a) => {
                if self.same_cluster(&a.cluster) {
                    if !self.nodes.contains_key(&a.node) && !self.may_introduce(from, now) {
                        self.stats.refused_members += 1;
                        return;
                    }
                    let port_default = from.port();
                    self.alive_node(a, port_default, now);
                }
            }
            Message::Dead(d) => {
                if self.same_cluster(&d.cluster) {
                    self.dead_node(&d, now);
                }
            }
            Message::User(u) => {
                if !u.is_empty() {
                    self.out.push_back(Output::User(u));
                }
            }
        }
    }

    /// Takes one token from `from`'s bucket of new-member introductions.
    fn may_introduce(&mut self, from: SocketAddr, now: Micros) -> bool {
        let rate = f64::from(self.cfg.new_members_per_sender.max(1));
        if self.intros.len() > 4096 {
            // Full buckets are the default: forgetting them loses nothing.
            self.intros
                .retain(|_, (t, at)| *t + (now.saturating_sub(*at) as f64 / 1e6) * rate < rate);
        }
        let (tokens, at) = self.intros.entry(from.ip()).or_insert((rate, now));
        *tokens = (*tokens + (now.saturating_sub(*at) as f64 / 1e6) * rate).min(rate);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn same_cluster(&mut self, name: &str) -> bool {
        if name == self.cfg.cluster_name {
            true
        } else {
            self.stats.foreign_cluster += 1;
            false
        }
    }

    fn ack(&mut self, seq: u32) {
        if let Some(p) = self.probe.as_mut()
            && p.seq == seq
        {
            p.acked = true;
            return;
        }
        if let Some(r) = self.relays.remove(&seq) {
            let ack = codec::encode_ack(r.orig_seq);
            self.send_msg(r.from, ack);
        }
    }

    /// Our push/pull message: every node we know (ourselves included) and the user
    /// state (Sidecar: the JSON catalog).
    pub fn local_state(&self, join: bool, user_state: Vec<u8>) -> Vec<u8> {
        let nodes = self
            .nodes
            .values()
            .map(|n| PushNodeState {
                name: n.name.clone(),
                addr: codec::ip_bytes(n.addr.ip()),
                port: n.addr.port(),
                meta: n.meta.clone(),
                inc: n.inc,
                state: match n.state {
                    State::Alive => codec::STATE_ALIVE,
                    State::Suspect => codec::STATE_SUSPECT,
                    State::Dead | State::Left => codec::STATE_DEAD,
                },
                vsn: n.vsn.to_vec(),
            })
            .collect();
        codec::encode_push_pull(&PushPull {
            join,
            cluster: self.cfg.cluster_name.clone(),
            nodes,
            user_state,
        })
    }

    /// Merges a peer's node list (memberlist's `mergeState`). The caller checked the
    /// cluster name and merges the user state.
    pub fn merge_remote(&mut self, nodes: Vec<PushNodeState>, from: SocketAddr, now: Micros) {
        for n in nodes {
            match n.state {
                codec::STATE_ALIVE => {
                    let a = Alive {
                        inc: n.inc,
                        node: n.name,
                        cluster: self.cfg.cluster_name.clone(),
                        addr: n.addr,
                        port: n.port,
                        meta: n.meta,
                        vsn: n.vsn,
                    };
                    self.alive_node(a, from.port(), now);
                }
                _ => {
                    let s = Suspect {
                        inc: n.inc,
                        node: n.name,
                        cluster: self.cfg.cluster_name.clone(),
                        from: self.me.clone(),
                    };
                    self.suspect_node(&s, now);
                }
            }
        }
    }

    // -----------------------------------------------------------------------------------
    // State changes (memberlist's aliveNode / suspectNode / deadNode)
    // -----------------------------------------------------------------------------------

    fn set_state(&mut self, name: &str, state: State, now: Micros) {
        let Some(n) = self.nodes.get_mut(name) else {
            return;
        };
        let was = n.state;
        if was == state {
            return;
        }
        n.state = state;
        n.since = now;
        let addr = n.addr;
        self.out.push_back(Output::Member {
            name: name.to_string(),
            addr,
            state,
            was: Some(was),
        });
    }

    fn refute(&mut self, accused: u32) {
        self.inc = self.inc.max(accused).wrapping_add(1);
        if let Some(n) = self.nodes.get_mut(&self.me) {
            n.inc = self.inc;
        }
        self.stats.refutations += 1;
        let a = self.alive_msg();
        self.queue_broadcast(&a.node.clone(), codec::encode_alive(&a));
    }

    fn alive_node(&mut self, a: Alive, default_port: u16, now: Micros) {
        if self.leaving && a.node == self.me {
            return;
        }
        if a.node.is_empty() {
            return;
        }
        let Some(ip) = codec::ip_of(&a.addr) else {
            return;
        };
        let addr = SocketAddr::new(ip, if a.port == 0 { default_port } else { a.port });
        let mut vsn = codec::VSN;
        if a.vsn.len() >= 6 {
            vsn.copy_from_slice(&a.vsn[..6]);
        }
        let is_me = a.node == self.me;
        let new = !self.nodes.contains_key(&a.node);
        if new {
            if self.nodes.len() >= self.cfg.max_members {
                self.stats.refused_members += 1;
                return;
            }
            self.nodes.insert(
                a.node.clone(),
                MlNode {
                    name: a.node.clone(),
                    addr,
                    meta: a.meta.clone(),
                    inc: 0,
                    state: State::Dead,
                    since: now,
                    vsn,
                },
            );
            let at = self.rng.below(self.order.len() + 1);
            self.order.insert(at, a.node.clone());
        }
        let Some(node) = self.nodes.get(&a.node) else {
            return;
        };
        if node.addr != addr {
            // memberlist refuses a live node's address change (a name conflict); a
            // dead or departed one may come back elsewhere.
            if node.state.is_live() || is_me {
                return;
            }
        }
        if !new && a.inc <= node.inc && !is_me {
            return;
        }
        if is_me {
            if a.inc < self.inc {
                return;
            }
            if a.inc == self.inc && a.meta == self.meta && vsn == codec::VSN {
                return;
            }
            self.refute(a.inc);
            return;
        }
        let was = node.state;
        self.suspicions.remove(&a.node);
        self.queue_broadcast(&a.node, codec::encode_alive(&a));
        if let Some(n) = self.nodes.get_mut(&a.node) {
            n.inc = a.inc;
            n.meta = a.meta;
            n.vsn = vsn;
            n.addr = addr;
        }
        if new {
            if let Some(n) = self.nodes.get_mut(&a.node) {
                n.state = State::Alive;
                n.since = now;
            }
            self.out.push_back(Output::Member {
                name: a.node,
                addr,
                state: State::Alive,
                was: None,
            });
        } else if was != State::Alive {
            self.set_state(&a.node, State::Alive, now);
        }
    }

    fn suspect_node(&mut self, s: &Suspect, now: Micros) {
        let Some(node) = self.nodes.get(&s.node) else {
            return;
        };
        if s.inc < node.inc {
            return;
        }
        if let Some(susp) = self.suspicions.get_mut(&s.node) {
            if susp.confirmed.len() < 64
                && s.from != self.me
                && susp.confirmed.insert(s.from.clone())
            {
                self.queue_broadcast(&s.node, codec::encode_suspect(s));
            }
            return;
        }
        if node.state != State::Alive {
            return;
        }
        if s.node == self.me {
            self.refute(s.inc);
            return;
        }
        self.queue_broadcast(&s.node, codec::encode_suspect(s));
        if let Some(n) = self.nodes.get_mut(&s.node) {
            n.inc = s.inc;
        }
        self.set_state(&s.node, State::Suspect, now);
        self.stats.suspicions += 1;
        let n = self.nodes.len();
        let mut k = self.cfg.suspicion_mult.saturating_sub(2);
        if (n as u32).saturating_sub(2) < k {
            k = 0;
        }
        let scale = (n.max(1) as f64).log10().max(1.0);
        let min = (f64::from(self.cfg.suspicion_mult) * scale * us(self.cfg.probe_interval) as f64)
            as Micros;
        let max = min * Micros::from(self.cfg.suspicion_max_mult);
        self.suspicions.insert(
            s.node.clone(),
            Suspicion {
                start: now,
                k,
                min,
                max,
                confirmed: HashSet::new(),
            },
        );
    }

    fn dead_node(&mut self, d: &Dead, now: Micros) {
        let Some(node) = self.nodes.get(&d.node) else {
            return;
        };
        if d.inc < node.inc {
            return;
        }
        self.suspicions.remove(&d.node);
        if matches!(node.state, State::Dead | State::Left) {
            return;
        }
        if d.node == self.me && !self.leaving {
            self.refute(d.inc);
            return;
        }
        self.queue_broadcast(&d.node, codec::encode_dead(d));
        if let Some(n) = self.nodes.get_mut(&d.node) {
            n.inc = d.inc;
        }
        // memberlist has no "left" state; a node that declares itself dead has left.
        let state = if d.from == d.node {
            State::Left
        } else {
            State::Dead
        };
        self.set_state(&d.node, state, now);
    }

    // -----------------------------------------------------------------------------------
    // Broadcasts and sending
    // -----------------------------------------------------------------------------------

    fn queue_broadcast(&mut self, node: &str, msg: Vec<u8>) {
        self.broadcasts.retain(|b| b.node != node);
        self.broadcasts.push(Bcast {
            node: node.to_string(),
            msg,
            transmits: 0,
        });
    }

    fn retransmit_limit(&self) -> u32 {
        let n = self.nodes.len() as f64;
        self.cfg.retransmit_mult * ((n + 1.0).log10().ceil() as u32).max(1)
    }

    /// memberlist's `getBroadcasts`: its own broadcasts (fewest transmits first), then
    /// user messages, while they fit in `limit`.
    fn get_broadcasts(&mut self, overhead: usize, limit: usize) -> Vec<Vec<u8>> {
        let mut used = 0;
        let mut out = Vec::new();
        let max_tx = self.retransmit_limit();
        // Fewest transmits first.
        self.broadcasts
            .sort_by_key(|b| std::cmp::Reverse(b.transmits));
        let mut i = self.broadcasts.len();
        while i > 0 {
            i -= 1;
            let len = self.broadcasts[i].msg.len();
            if used + overhead + len > limit {
                continue;
            }
            used += overhead + len;
            out.push(self.broadcasts[i].msg.clone());
            self.broadcasts[i].transmits += 1;
            if self.broadcasts[i].transmits >= max_tx {
                self.broadcasts.swap_remove(i);
            }
        }
        while let Some(m) = self.user.front() {
            if used + overhead + 1 + m.len() > limit {
                break;
            }
            used += overhead + 1 + m.len();
            if let Some(m) = self.user.pop_front() {
                out.push(codec::encode_user(&m));
            }
        }
        out
    }

    fn crc_for(&self, to: SocketAddr) -> bool {
        self.nodes
            .values()
            .find(|n| n.addr == to)
            .is_some_and(|n| n.pmax() >= 5)
    }

    /// memberlist's `sendMsg`: piggybacks broadcasts on the message when they fit.
    fn send_msg(&mut self, to: SocketAddr, msg: Vec<u8>) {
        let avail = self.cfg.udp_buffer.saturating_sub(msg.len() + 2);
        let extra = self.get_broadcasts(2, avail);
        let body = if extra.is_empty() {
            msg
        } else {
            let mut all = Vec::with_capacity(extra.len() + 1);
            all.push(msg);
            all.extend(extra);
            codec::compound(&all)
        };
        let crc = self.crc_for(to);
        self.out.push_back(Output::Packet {
            to,
            bytes: codec::finish_packet(body, crc),
        });
    }

    // -----------------------------------------------------------------------------------
    // Timers
    // -----------------------------------------------------------------------------------

    pub fn tick(&mut self, now: Micros) {
        self.retry_join(now);
        self.probe_step(now);
        self.expire_relays(now);
        let expired: Vec<(String, u32)> = self
            .suspicions
            .iter()
            .filter(|(_, s)| now >= s.start + s.timeout())
            .map(|(n, _)| (n.clone(), self.nodes.get(n).map_or(0, |x| x.inc)))
            .collect();
        for (name, inc) in expired {
            self.suspicions.remove(&name);
            if self
                .nodes
                .get(&name)
                .is_some_and(|n| n.state == State::Suspect)
            {
                self.stats.deaths_declared += 1;
                let d = Dead {
                    inc,
                    node: name,
                    cluster: self.cfg.cluster_name.clone(),
                    from: self.me.clone(),
                };
                self.dead_node(&d, now);
            }
        }
        if now >= self.next_gossip {
            self.next_gossip = now + us(self.cfg.gossip_interval);
            self.gossip(now);
        }
        if now >= self.next_push_pull {
            let n = self.nodes.len();
            let scale = if n <= 32 {
                1.0
            } else {
                ((n as f64).log2() - 32f64.log2()).ceil() + 1.0
            };
            self.next_push_pull = now + (us(self.cfg.push_pull_interval) as f64 * scale) as Micros;
            let live: Vec<SocketAddr> = self
                .nodes
                .values()
                .filter(|n| n.name != self.me && n.state == State::Alive)
                .map(|n| n.addr)
                .collect();
            if !live.is_empty() {
                let to = live[self.rng.below(live.len())];
                self.out.push_back(Output::PushPull { to, join: false });
            }
        }
    }

    fn expire_relays(&mut self, now: Micros) {
        let due: Vec<u32> = self
            .relays
            .iter()
            .filter(|(_, r)| now >= r.until)
            .map(|(s, _)| *s)
            .collect();
        for s in due {
            if let Some(r) = self.relays.remove(&s)
                && r.nack
                && now != u64::MAX
            {
                let nack = codec::encode_nack(r.orig_seq);
                self.send_msg(r.from, nack);
            }
        }
    }

    fn probe_step(&mut self, now: Micros) {
        if let Some(p) = &self.probe {
            if p.acked {
                self.probe = None;
            } else if !p.indirect_sent && now >= p.direct_until {
                self.send_indirect(now);
            } else if p.indirect_sent && now >= p.until {
                let target = p.target.clone();
                self.probe = None;
                if let Some(n) = self.nodes.get(&target) {
                    let s = Suspect {
                        inc: n.inc,
                        node: target,
                        cluster: self.cfg.cluster_name.clone(),
                        from: self.me.clone(),
                    };
                    self.suspect_node(&s, now);
                }
            }
        }
        if now < self.next_probe || self.probe.is_some() {
            return;
        }
        self.next_probe = now + us(self.cfg.probe_interval);
        // memberlist's probe(): the next node in the shuffled list that is not us and
        // not dead; the list is reshuffled (and long-dead nodes reaped) at each wrap.
        let mut checked = 0;
        let target = loop {
            if checked > self.order.len() {
                return;
            }
            if self.probe_index >= self.order.len() {
                self.reset_nodes(now);
                self.probe_index = 0;
                checked += 1;
                continue;
            }
            let name = self.order[self.probe_index].clone();
            self.probe_index += 1;
            checked += 1;
            match self.nodes.get(&name) {
                Some(n) if n.name != self.me && n.state.is_live() => break n.clone(),
                _ => continue,
            }
        };
        self.stats.probes += 1;
        let seq = self.next_seq();
        let ping = codec::encode_ping(&Ping {
            seq,
            node: target.name.clone(),
        });
        if target.state == State::Alive {
            self.send_msg(target.addr, ping);
        } else {
            // The buddy system: tell a suspect it is suspected, so it refutes at once.
            let s = codec::encode_suspect(&Suspect {
                inc: target.inc,
                node: target.name.clone(),
                cluster: self.cfg.cluster_name.clone(),
                from: self.me.clone(),
            });
            let body = codec::compound(&[ping, s]);
            self.out.push_back(Output::Packet {
                to: target.addr,
                bytes: codec::finish_packet(body, target.pmax() >= 5),
            });
        }
        self.probe = Some(Probe {
            seq,
            target: target.name,
            direct_until: now + us(self.cfg.probe_timeout),
            until: now + us(self.cfg.probe_interval),
            indirect_sent: false,
            acked: false,
        });
    }

    fn send_indirect(&mut self, _now: Micros) {
        let Some(p) = self.probe.as_mut() else {
            return;
        };
        p.indirect_sent = true;
        let (seq, target) = (p.seq, p.target.clone());
        let Some(t) = self.nodes.get(&target).cloned() else {
            return;
        };
        let peers: Vec<MlNode> = self
            .nodes
            .values()
            .filter(|n| n.name != self.me && n.name != target && n.state == State::Alive)
            .cloned()
            .collect();
        let k = self.cfg.indirect_checks.min(peers.len());
        let mut chosen: Vec<usize> = Vec::new();
        while chosen.len() < k {
            let i = self.rng.below(peers.len());
            if !chosen.contains(&i) {
                chosen.push(i);
            }
        }
        for i in chosen {
            let peer = &peers[i];
            let msg = codec::encode_indirect_ping(&IndirectPing {
                seq,
                target: codec::ip_bytes(t.addr.ip()),
                port: t.addr.port(),
                node: t.name.clone(),
                nack: peer.pmax() >= 4,
            });
            self.send_msg(peer.addr, msg);
        }
    }

    /// Reaps nodes dead longer than `gossip_to_the_dead` and reshuffles the probe order.
    fn reset_nodes(&mut self, now: Micros) {
        let ttl = us(self.cfg.gossip_to_the_dead);
        let me = self.me.clone();
        let gone: Vec<String> = self
            .nodes
            .values()
            .filter(|n| n.name != me && !n.state.is_live() && now.saturating_sub(n.since) > ttl)
            .map(|n| n.name.clone())
            .collect();
        for g in &gone {
            self.nodes.remove(g);
        }
        self.order.retain(|n| self.nodes.contains_key(n));
        for i in (1..self.order.len()).rev() {
            let j = self.rng.below(i + 1);
            self.order.swap(i, j);
        }
    }

    fn gossip(&mut self, now: Micros) {
        let ttl = us(self.cfg.gossip_to_the_dead);
        let candidates: Vec<(SocketAddr, bool)> = self
            .nodes
            .values()
            .filter(|n| n.name != self.me)
            .filter(|n| n.state.is_live() || now.saturating_sub(n.since) <= ttl)
            .map(|n| (n.addr, n.pmax() >= 5))
            .collect();
        if candidates.is_empty() {
            return;
        }
        let k = self.cfg.gossip_nodes.min(candidates.len());
        let mut chosen: Vec<usize> = Vec::new();
        while chosen.len() < k {
            let i = self.rng.below(candidates.len());
            if !chosen.contains(&i) {
                chosen.push(i);
            }
        }
        let avail = self.cfg.udp_buffer - 2;
        for _ in 0..self.cfg.gossip_messages.max(1) {
            let msgs = self.get_broadcasts(2, avail);
            if msgs.is_empty() {
                return;
            }
            let body = if msgs.len() == 1 {
                msgs.into_iter().next().unwrap_or_default()
            } else {
                codec::compound(&msgs)
            };
            for &i in &chosen {
                let (to, crc) = candidates[i];
                self.out.push_back(Output::Packet {
                    to,
                    bytes: codec::finish_packet(body.clone(), crc),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Micros = 1_000_000;

    fn addr(n: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, n], 7946))
    }

    fn node(name: &str, n: u8) -> Memberlist {
        Memberlist::new(
            MlConfig::default(),
            name,
            addr(n),
            b"{}".to_vec(),
            1,
            u64::from(n),
            0,
        )
    }

    fn alive(name: &str, n: u8, inc: u32) -> Vec<u8> {
        codec::encode_alive(&Alive {
            inc,
            node: name.into(),
            cluster: "default".into(),
            addr: vec![10, 0, 0, n],
            port: 7946,
            meta: vec![],
            vsn: codec::VSN.to_vec(),
        })
    }

    fn drain(m: &mut Memberlist) -> Vec<Output> {
        std::iter::from_fn(|| m.poll_output()).collect()
    }

    fn packets_to(out: &[Output], to: SocketAddr) -> Vec<Message> {
        out.iter()
            .filter_map(|o| match o {
                Output::Packet { to: t, bytes } if *t == to => codec::decode_packet(bytes).ok(),
                _ => None,
            })
            .flatten()
            .collect()
    }

    fn join_pushes(out: &[Output]) -> usize {
        out.iter()
            .filter(|o| matches!(o, Output::PushPull { join: true, .. }))
            .count()
    }

    #[test]
    fn a_join_nobody_answered_is_retried_until_a_member_is_known() {
        let mut a = node("a", 1);
        a.join(&[addr(2)]);
        assert_eq!(join_pushes(&drain(&mut a)), 1, "the join itself");
        // Nobody answers (the seed was not listening yet): asked again, backing off.
        let mut at = Vec::new();
        for ms in (0..4_000).step_by(5) {
            a.tick(ms * 1_000);
            if join_pushes(&drain(&mut a)) > 0 {
                at.push(ms);
            }
        }
        assert_eq!(at, [125, 375, 875, 1875, 3875], "125 ms, then doubling");
        // Once another member is known, push/pull rounds keep us joined instead (until
        // it is declared dead: b answers no probe here).
        a.handle_packet(addr(2), &alive("b", 2, 1), 4 * SEC)
            .expect("decodes");
        drain(&mut a);
        for ms in (4_000..6_000).step_by(5) {
            a.tick(ms * 1_000);
            assert_eq!(join_pushes(&drain(&mut a)), 0, "at {ms} ms");
        }
    }

    #[test]
    fn alive_adds_a_member_and_is_gossiped_on() {
        let mut a = node("a", 1);
        a.handle_packet(addr(2), &alive("b", 2, 5), 0)
            .expect("decodes");
        let out = drain(&mut a);
        assert!(out.contains(&Output::Member {
            name: "b".into(),
            addr: addr(2),
            state: State::Alive,
            was: None
        }));
        a.tick(SEC);
        let sent = packets_to(&drain(&mut a), addr(2));
        assert!(
            sent.iter()
                .any(|m| matches!(m, Message::Alive(x) if x.node == "b" && x.inc == 5)),
            "{sent:?}"
        );
        // An older or equal incarnation changes nothing.
        a.handle_packet(addr(2), &alive("b", 2, 5), 2 * SEC)
            .expect("decodes");
        assert!(
            !drain(&mut a)
                .iter()
                .any(|o| matches!(o, Output::Member { .. }))
        );
    }

    #[test]
    fn another_clusters_messages_are_dropped() {
        let mut a = node("a", 1);
        let mut msg = Alive {
            inc: 1,
            node: "x".into(),
            cluster: "other".into(),
            addr: vec![10, 0, 0, 9],
            port: 7946,
            meta: vec![],
            vsn: codec::VSN.to_vec(),
        };
        a.handle_packet(addr(9), &codec::encode_alive(&msg), 0)
            .expect("decodes");
        assert_eq!(a.nodes().count(), 1);
        assert_eq!(a.stats.foreign_cluster, 1);
        msg.cluster = "default".into();
        a.handle_packet(addr(9), &codec::encode_alive(&msg), 0)
            .expect("decodes");
        assert_eq!(a.nodes().count(), 2);
    }

    #[test]
    fn ping_is_acked_and_unanswered_probe_leads_to_suspect_then_dead() {
        let mut a = node("a", 1);
        a.handle_packet(
            addr(2),
            &codec::encode_ping(&Ping {
                seq: 7,
                node: "a".into(),
            }),
            0,
        )
        .expect("decodes");
        let out = drain(&mut a);
        assert!(packets_to(&out, addr(2)).contains(&Message::Ack { seq: 7 }));
        a.handle_packet(addr(2), &alive("b", 2, 1), 0)
            .expect("decodes");
        drain(&mut a);
        let mut states = Vec::new();
        let mut t = 0;
        while t < 40 * SEC {
            t += 100_000;
            a.tick(t);
            for o in drain(&mut a) {
                if let Output::Member { state, .. } = o {
                    states.push((t / SEC, state));
                }
            }
        }
        assert_eq!(
            states.first().map(|s| s.1),
            Some(State::Suspect),
            "{states:?}"
        );
        assert_eq!(states.get(1).map(|s| s.1), Some(State::Dead), "{states:?}");
        // 3 nodes or fewer: no confirmations expected, suspicion lasts its minimum (5 s).
        let (s, d) = (states[0].0, states[1].0);
        assert!((4..=6).contains(&(d - s)), "{states:?}");
    }

    #[test]
    fn acks_keep_a_member_alive_and_indirect_pings_are_relayed() {
        let mut a = node("a", 1);
        a.handle_packet(addr(2), &alive("b", 2, 1), 0)
            .expect("decodes");
        drain(&mut a);
        for step in 1..200u64 {
            let t = step * 100_000;
            a.tick(t);
            for m in packets_to(&drain(&mut a), addr(2)) {
                if let Message::Ping(p) = m {
                    a.handle_packet(addr(2), &codec::encode_ack(p.seq), t)
                        .expect("ack");
                }
            }
        }
        assert_eq!(
            a.nodes().find(|n| n.name == "b").map(|n| n.state),
            Some(State::Alive)
        );
        // Relay: ping the target, forward its ack to the requester.
        let req = codec::encode_indirect_ping(&IndirectPing {
            seq: 99,
            target: vec![10, 0, 0, 3],
            port: 7946,
            node: "c".into(),
            nack: true,
        });
        a.handle_packet(addr(2), &req, 30 * SEC).expect("decodes");
        let out = drain(&mut a);
        let Some(Message::Ping(p)) = packets_to(&out, addr(3)).into_iter().next() else {
            panic!("no relayed ping: {out:?}");
        };
        a.handle_packet(addr(3), &codec::encode_ack(p.seq), 30 * SEC)
            .expect("ack");
        assert!(packets_to(&drain(&mut a), addr(2)).contains(&Message::Ack { seq: 99 }));
        // No answer: a nack after the probe timeout.
        a.handle_packet(addr(2), &req, 31 * SEC).expect("decodes");
        drain(&mut a);
        a.tick(32 * SEC);
        assert!(packets_to(&drain(&mut a), addr(2)).contains(&Message::Nack { seq: 99 }));
    }

    #[test]
    fn suspicion_and_death_of_ourselves_are_refuted_with_a_higher_incarnation() {
        let mut a = node("a", 1);
        a.handle_packet(addr(2), &alive("b", 2, 1), 0)
            .expect("decodes");
        drain(&mut a);
        let s = Suspect {
            inc: 7,
            node: "a".into(),
            cluster: "default".into(),
            from: "b".into(),
        };
        a.handle_packet(addr(2), &codec::encode_suspect(&s), 0)
            .expect("decodes");
        assert_eq!(a.incarnation(), 8);
        a.handle_packet(addr(2), &codec::encode_dead(&Suspect { inc: 8, ..s }), 0)
            .expect("decodes");
        assert_eq!(a.incarnation(), 9);
        a.tick(SEC);
        let sent = packets_to(&drain(&mut a), addr(2));
        assert!(
            sent.iter()
                .any(|m| matches!(m, Message::Alive(x) if x.node == "a" && x.inc == 9)),
            "{sent:?}"
        );
    }

    #[test]
    fn leave_is_a_dead_message_from_ourselves_and_peers_mark_us_left() {
        let mut a = node("a", 1);
        let mut b = node("b", 2);
        a.handle_packet(addr(2), &alive("b", 2, 1), 0)
            .expect("decodes");
        b.handle_packet(addr(1), &alive("a", 1, 1), 0)
            .expect("decodes");
        drain(&mut a);
        drain(&mut b);
        a.leave(SEC);
        a.tick(SEC);
        for o in drain(&mut a) {
            if let Output::Packet { to, bytes } = o
                && to == addr(2)
            {
                b.handle_packet(addr(1), &bytes, SEC).expect("decodes");
            }
        }
        let out = drain(&mut b);
        assert!(
            out.contains(&Output::Member {
                name: "a".into(),
                addr: addr(1),
                state: State::Left,
                was: Some(State::Alive)
            }),
            "{out:?}"
        );
    }

    #[test]
    fn user_messages_ride_gossip_once_and_push_pull_carries_nodes() {
        let mut a = node("a", 1);
        let mut b = node("b", 2);
        a.handle_packet(addr(2), &alive("b", 2, 1), 0)
            .expect("decodes");
        drain(&mut a);
        a.queue_user([b"{\"ID\":\"x\"}".to_vec()]);
        a.tick(SEC);
        let mut got = Vec::new();
        for o in drain(&mut a) {
            if let Output::Packet { to, bytes } = o
                && to == addr(2)
            {
                b.handle_packet(addr(1), &bytes, SEC).expect("decodes");
            }
        }
        for o in drain(&mut b) {
            if let Output::User(u) = o {
                got.push(u);
            }
        }
        assert_eq!(got, vec![b"{\"ID\":\"x\"}".to_vec()]);
        // push/pull: b learns a (and itself, which it ignores) from a's node list.
        let state = a.local_state(true, b"{}".to_vec());
        let Ok(Some(codec::StreamMsg::PushPull(pp))) = codec::parse_stream(&state, 1 << 20) else {
            panic!("push/pull");
        };
        assert!(pp.join);
        let mut c = node("c", 3);
        c.merge_remote(pp.nodes, addr(1), 2 * SEC);
        let mut names: Vec<_> = c.nodes().map(|n| n.name.clone()).collect();
        names.sort();
        assert_eq!(names, vec!["a", "b", "c"]);
    }

    #[test]
    fn one_sender_introduces_new_members_at_a_bounded_rate() {
        let cfg = MlConfig {
            new_members_per_sender: 5,
            ..MlConfig::default()
        };
        let mut a = Memberlist::new(cfg, "a", addr(1), vec![], 1, 1, 0);
        for i in 0..50u8 {
            a.handle_packet(addr(2), &alive(&format!("x{i}"), 100 + i, 1), 0)
                .expect("decodes");
        }
        assert_eq!(a.nodes().count(), 1 + 5, "the burst");
        assert_eq!(a.stats.refused_members, 45);
        // A second later, five more; another sender has its own bucket.
        for i in 50..60u8 {
            a.handle_packet(addr(2), &alive(&format!("x{i}"), 100 + i, 1), SEC)
                .expect("decodes");
        }
        a.handle_packet(addr(3), &alive("y", 3, 1), SEC)
            .expect("decodes");
        assert_eq!(a.nodes().count(), 1 + 5 + 5 + 1);
        // Updates of known members are not limited.
        for inc in 2..40 {
            a.handle_packet(addr(2), &alive("x0", 100, inc), SEC)
                .expect("decodes");
        }
        assert_eq!(a.nodes().find(|n| n.name == "x0").map(|n| n.inc), Some(39));
    }

    #[test]
    fn member_table_is_capped() {
        let cfg = MlConfig {
            max_members: 3,
            ..MlConfig::default()
        };
        let mut a = Memberlist::new(cfg, "a", addr(1), vec![], 1, 1, 0);
        for i in 2..10u8 {
            a.handle_packet(addr(i), &alive(&format!("n{i}"), i, 1), 0)
                .expect("decodes");
        }
        assert_eq!(a.nodes().count(), 3);
        assert_eq!(a.stats.refused_members, 6);
    }
}
