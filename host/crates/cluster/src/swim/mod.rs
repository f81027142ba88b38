//! The sans-IO membership and dissemination core: a state machine fed datagrams, stream
//! messages and the time, which answers with datagrams and stream messages to send and
//! member changes to act on. The tokio transport and the simulator drive the same code.
//!
//! * SWIM probing in a shuffled round-robin, several direct attempts, indirect probes
//!   through relays that nack when the target stays silent (Lifeguard);
//! * local-health awareness stretching our own timers;
//! * suspicion timeouts that scale with `log10 N` and shrink with independent
//!   confirmations, gathered fast by a few members probing a fresh suspect themselves,
//!   whose pings carry the suspicion so a live suspect refutes at once (buddy system);
//! * generation (a new life per start) and incarnation (per refutation) per member;
//! * eager push of new member updates plus a bounded retransmit queue piggybacked on
//!   all traffic; records down a broadcast tree with lazy repair (`tree`);
//! * digest-first anti-entropy ([`crate::antientropy`]) with members and
//!   records, on join, periodically, with seeds and with dead members that answer.
//!
//! This file holds the state, the public entry points and the dispatch of messages and
//! timers; each job lives in its own file as another `impl Swim` block:
//!
//! * `probe`: the round-robin, direct pings and their retries, probe outcomes;
//! * `relay`: indirect probes, both asking relays and being one;
//! * `gossip`: piggybacking, eager push and the retransmit queue;
//! * `tree`: records' broadcast trees, announcements and grafts;
//! * `membership`: the rules applying member updates, suspicion timeouts, refutation,
//!   generations, forgetting the dead;
//! * `sync`: when and with whom anti-entropy runs, and its stream exchange.

mod awareness;
pub mod config;
mod gossip;
mod intros;
pub mod members;
mod membership;
mod probe;
mod relay;
pub mod rng;
mod suspicion;
mod sync;
#[cfg(test)]
mod tests;
mod tree;

pub use config::SwimConfig;
pub use members::{Member, MemberTable};

use crate::dissemination::TransmitQueue;
use crate::wire::{
    self, Item, MemberUpdate, Msg, NodeAddr, NodeKey, State, Stream, WireError, WireRecord, Writer,
};
use awareness::Awareness;
use intros::Intros;
use members::member_hash;
use membership::Source;
use probe::Probe;
use relay::Relay;
use rng::Rng;
use sidecar_catalog::{Fingerprint, Record, Service};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;
use suspicion::Suspicion;
use sync::Pending;
use tree::Recent;

/// Time in microseconds on the driver's monotonic (or virtual) clock.
pub type Micros = u64;

fn us(d: Duration) -> Micros {
    d.as_micros() as Micros
}

/// What the core needs from the catalog.
pub trait CatalogPort {
    /// Merges records announced by `announcer`; returns what was stored (new to us).
    fn merge(&mut self, announcer: &str, records: Vec<Service>) -> Vec<Record>;
    fn fingerprints(&self) -> Vec<(String, Fingerprint)>;
    fn host_records(&self, host: &str) -> Vec<Record>;
}

/// Work for the driver.
#[derive(Debug)]
pub enum Output<K, A> {
    /// One datagram payload (the driver adds the envelope).
    Datagram { to: A, payload: Vec<u8> },
    /// A request on the reliable channel; answer with [`Swim::handle_stream_reply`].
    Stream { to: A, req: u64, payload: Vec<u8> },
    /// A member's state changed. `was` is `None` for a member new to us. When a live
    /// member (alive/suspect) stops being live its records must be tombstoned.
    Member {
        key: K,
        state: State,
        was: Option<State>,
    },
}

/// Protocol counters (the transport adds bytes and drops).
#[derive(Clone, Debug, Default)]
pub struct CoreStats {
    pub probes: u64,
    pub probe_failures: u64,
    pub suspicions: u64,
    pub deaths_declared: u64,
    pub refutations: u64,
    pub misdirected: u64,
    pub items_received: u64,
    pub items_new: u64,
    pub syncs_started: u64,
    pub syncs_failed: u64,
    pub pushes: u64,
    pub name_conflicts: u64,
    /// Claims refused for a generation too far in the future.
    pub refused_generations: u64,
    /// Members new to us refused: the table is full, or their sender introduced too
    /// many new members lately.
    pub refused_members: u64,
    /// Anti-entropy requests refused for wanting more hosts than `max_members`.
    pub refused_wants: u64,
    /// Graft requests sent (records announced to us that the tree did not bring).
    pub grafts: u64,
}

/// The first retry of an unanswered join; each later one waits twice as long, to 60 s.
pub const FIRST_JOIN_RETRY: Duration = Duration::from_millis(125);

/// What to answer a stream request with.
#[derive(Debug, PartialEq, Eq)]
pub enum StreamAnswer {
    /// The encoded reply.
    Reply(Vec<u8>),
    /// A records reply with these hosts' records (de-duplicated, at most `max_members`):
    /// the driver reads and encodes them off its loop with [`wire::encode_records_reply`],
    /// so a large request cannot stall probing.
    Records(Vec<String>),
}

pub struct Swim<K: NodeKey, A: NodeAddr> {
    cfg: SwimConfig,
    me: K,
    me_encoded: Vec<u8>,
    addr: A,
    generation: u64,
    /// Our generation and clock at start: generations are wall-clock milliseconds, so
    /// `start.0 + ms since start.1` estimates the newest generation anyone can have.
    start: (u64, Micros),
    inc: u32,
    leaving: bool,
    members: MemberTable<K, A>,
    /// New members introduced per sending host (rate limit).
    intros: Intros<A>,
    /// XOR of [`member_hash`] over the table (ourselves added on demand).
    table_hash: u64,
    awareness: Awareness,
    suspicions: HashMap<K, Suspicion<K>>,
    queue: TransmitQueue,
    rng: Rng,
    seq: u32,
    probes: HashMap<u32, Probe<K, A>>,
    relays: HashMap<u32, Relay<A>>,
    rr_n: usize,
    rr_pos: usize,
    rr_step: usize,
    rr_off: usize,
    next_probe: Micros,
    next_gossip: Micros,
    next_sync: Micros,
    next_reconnect: Micros,
    next_rejoin: Micros,
    next_sweep: Micros,
    seeds: Vec<A>,
    joined: bool,
    join_backoff: Duration,
    pending: HashMap<u64, Pending<A>>,
    next_req: u64,
    contact_syncs: HashMap<A, Micros>,
    outputs: VecDeque<Output<K, A>>,
    stats: CoreStats,
    /// The latest time the driver handed us.
    last_now: Micros,
    /// Live members and ourselves by rank hash (broadcast trees), rebuilt when dirty.
    ranks: Vec<(u64, K)>,
    ranks_dirty: bool,
    /// Items received lately by id, and their arrival order (for expiry).
    recent: HashMap<u64, Recent<K>>,
    recent_order: VecDeque<(Micros, u64)>,
    /// Ids to announce at `next_announce`.
    announce: Vec<u64>,
    next_announce: Micros,
    /// Announced ids we lack: who announced them last, when to graft, grafts sent.
    missing: BTreeMap<u64, (A, Micros, u8)>,
}

impl<K: NodeKey, A: NodeAddr> Swim<K, A> {
    /// A member named `me`, reachable at `addr`, starting life `generation` (the daemon uses
    /// its wall clock in milliseconds; peers that remember a later life make it move on).
    pub fn new(cfg: SwimConfig, me: K, addr: A, generation: u64, now: Micros, seed: u64) -> Self {
        let mut w = Writer::new();
        me.put_into(&mut w);
        let mut rng = Rng::new(seed);
        let jitter = |rng: &mut Rng, d: Duration| now + rng.below(us(d).max(1) as usize) as u64;
        let next_probe = jitter(&mut rng, cfg.probe_interval);
        let next_sync = jitter(&mut rng, cfg.push_pull_interval);
        let next_reconnect = jitter(&mut rng, cfg.reconnect_interval);
        let seq = rng.next_u64() as u32;
        Swim {
            awareness: Awareness::new(cfg.awareness_max),
            me_encoded: w.into_inner(),
            me,
            addr,
            generation,
            start: (generation, now),
            inc: 0,
            leaving: false,
            members: MemberTable::default(),
            intros: Intros::new(cfg.new_members_per_sender, cfg.max_members),
            table_hash: 0,
            suspicions: HashMap::new(),
            queue: TransmitQueue::default(),
            seq,
            probes: HashMap::new(),
            relays: HashMap::new(),
            rr_n: 0,
            rr_pos: 0,
            rr_step: 1,
            rr_off: 0,
            next_probe,
            next_gossip: now,
            next_sync,
            next_reconnect,
            next_rejoin: now + us(cfg.rejoin_interval),
            next_sweep: now + 60_000_000,
            seeds: Vec::new(),
            joined: false,
            // Seeds started together race each other's listeners: retry soon, then
            // back off (a refused connect costs nothing).
            join_backoff: FIRST_JOIN_RETRY,
            pending: HashMap::new(),
            next_req: 1,
            contact_syncs: HashMap::new(),
            outputs: VecDeque::new(),
            stats: CoreStats::default(),
            last_now: now,
            ranks: Vec::new(),
            ranks_dirty: true,
            recent: HashMap::new(),
            recent_order: VecDeque::new(),
            announce: Vec::new(),
            next_announce: now,
            missing: BTreeMap::new(),
            rng,
            cfg,
        }
    }

    /// Loads a member table without gossip (simulator start-up at large N). `members`
    /// must be without duplicates and without ourselves.
    pub fn preload_members(&mut self, members: Vec<Member<K, A>>) {
        self.table_hash = members.iter().fold(0, |h, m| {
            h ^ member_hash(&m.key, m.generation, m.inc, m.state)
        });
        self.members.load(members);
        self.ranks_dirty = true;
        self.joined = true;
    }

    pub fn me(&self) -> &K {
        &self.me
    }

    pub fn addr(&self) -> &A {
        &self.addr
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn incarnation(&self) -> u32 {
        self.inc
    }

    pub fn members(&self) -> &MemberTable<K, A> {
        &self.members
    }

    pub fn stats(&self) -> &CoreStats {
        &self.stats
    }

    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    pub fn queue_dropped(&self) -> u64 {
        self.queue.dropped
    }

    pub fn awareness(&self) -> u32 {
        self.awareness.score()
    }

    /// True once an exchange with a seed (or any member) has completed.
    pub fn is_joined(&self) -> bool {
        self.joined
    }

    /// Members alive or suspect, ourselves included.
    pub fn cluster_size(&self) -> usize {
        self.members.live() + 1
    }

    pub fn self_update(&self) -> MemberUpdate<K, A> {
        MemberUpdate {
            key: self.me.clone(),
            addr: self.addr.clone(),
            generation: self.generation,
            inc: self.inc,
            state: if self.leaving {
                State::Left
            } else {
                State::Alive
            },
            from: None,
        }
    }

    /// Hash of everyone's (name, generation, incarnation, down) as we see it.
    pub fn members_hash(&self) -> u64 {
        let s = self.self_update();
        self.table_hash ^ member_hash(&self.me, s.generation, s.inc, s.state)
    }

    /// Members as the API shows them: everyone we know, ourselves included.
    pub fn member_updates(&self) -> Vec<MemberUpdate<K, A>> {
        self.member_list()
    }

    pub fn poll_output(&mut self) -> Option<Output<K, A>> {
        self.outputs.pop_front()
    }

    /// The earliest time [`Self::tick`] has work.
    pub fn next_deadline(&self) -> Micros {
        let mut d = self
            .next_probe
            .min(self.next_sync)
            .min(self.next_reconnect)
            .min(self.next_rejoin)
            .min(self.next_sweep);
        if !self.queue.is_empty() {
            d = d.min(self.next_gossip);
        }
        for p in self.probes.values() {
            d = d.min(p.deadline);
            if p.attempts < self.cfg.direct_attempts {
                d = d.min(p.next_retry);
            }
        }
        for r in self.relays.values() {
            d = d.min(if r.nacked { r.expires } else { r.nack_at });
        }
        for s in self.suspicions.values() {
            d = d.min(s.deadline);
        }
        d.min(self.tree_deadline())
    }

    /// Cluster size as the formulas see it (live members and ourselves).
    fn n(&self) -> usize {
        self.members.live() + 1
    }

    /// How many times each item is sent, for the current cluster size.
    fn limit(&self) -> u32 {
        self.cfg.retransmit_limit(self.n())
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Up to `k` random live members (indices), none with `exclude`'s address or key:
    /// gossip targets, relays and sync partners all come from here.
    fn pick_live(&mut self, k: usize, exclude: Option<&A>, exclude_key: Option<&K>) -> Vec<usize> {
        let ok = |m: &Member<K, A>| {
            m.state.is_live()
                && exclude.is_none_or(|a| &m.addr != a)
                && exclude_key.is_none_or(|key| &m.key != key)
        };
        let live = self.members.live();
        if live == 0 || k == 0 {
            return Vec::new();
        }
        if live <= k + 2 {
            let mut all: Vec<usize> = (0..self.members.len())
                .filter(|&i| ok(self.members.at(i)))
                .collect();
            while all.len() > k {
                let i = self.rng.below(all.len());
                all.swap_remove(i);
            }
            return all;
        }
        let mut out = Vec::with_capacity(k);
        for _ in 0..k * 8 {
            let i = self.rng.below(self.members.len());
            if ok(self.members.at(i)) && !out.contains(&i) {
                out.push(i);
                if out.len() == k {
                    break;
                }
            }
        }
        out
    }

    // ----- API for the driver -----------------------------------------------------------

    /// Joins through `seeds` (addresses; our own is fine): a full exchange with each.
    /// Until one succeeds, retries with backoff.
    pub fn join(&mut self, seeds: Vec<A>, now: Micros, cat: &impl CatalogPort) {
        self.last_now = now;
        self.seeds = seeds;
        if self.seeds.is_empty() {
            self.joined = true;
            return;
        }
        for s in self.seeds.clone() {
            self.start_sync(s, true, cat);
        }
        self.next_rejoin = now + us(self.join_backoff);
    }

    /// Announces our departure: final for this generation.
    pub fn leave(&mut self, now: Micros) {
        self.last_now = now;
        if self.leaving {
            return;
        }
        self.leaving = true;
        self.ranks_dirty = true;
        // At the last incarnation, LEFT still beats ALIVE (graver state at equal inc).
        self.inc = self.inc.saturating_add(1);
        let u = self.self_update();
        let item = self.member_item(&u);
        let fanout = (self.cfg.eager_fanout * 2).max(4);
        self.spread(vec![item], None, fanout);
    }

    /// Records our catalog stored from local operations: ours are disseminated; others'
    /// (expiry and departure tombstones) every member derives itself.
    pub fn local_records(&mut self, records: Vec<Record>, now: Micros) {
        self.last_now = now;
        let mine: Vec<Record> = records
            .into_iter()
            .filter(|r| *r.announcer == *self.me.announcer())
            .collect();
        if mine.is_empty() {
            return;
        }
        let items = self.record_items(&mine);
        let items = self.split_oversize(items, &mine, None);
        if self.tree_on() {
            let me = self.me.clone();
            self.tree_send(items, Some(me), None, now);
        } else {
            self.spread(items, None, self.cfg.eager_fanout);
        }
    }

    /// A datagram payload from `from` (envelope already removed).
    pub fn handle_datagram(
        &mut self,
        from: A,
        payload: &[u8],
        now: Micros,
        cat: &mut impl CatalogPort,
    ) -> Result<(), WireError> {
        self.last_now = now;
        let p = wire::decode_packet::<K, A>(payload)?;
        if p.sender == self.me && p.sender_generation == self.generation {
            return Ok(());
        }
        self.stats.items_received += p.items.len() as u64;
        let limit = from.source();
        let mut fresh = Vec::new();
        let mut records = Vec::new();
        for item in p.items {
            match item {
                Item::Member(u) => self.apply_update(
                    u,
                    Source::Gossip(p.sender.clone()),
                    Some(&limit),
                    now,
                    &mut fresh,
                ),
                Item::Record(r) => records.push(r),
            }
        }
        let stored = merge_records(cat, records);
        if !stored.is_empty() {
            let items = self.record_items(&stored);
            let items = self.split_oversize(items, &stored, Some(&from));
            if self.tree_on() {
                self.stats.items_new += items.len() as u64;
                let root = match &p.msg {
                    Msg::Tree { root } => Some(root.clone()),
                    // Piggybacked by a peer without trees: down our own.
                    _ => Some(self.me.clone()),
                };
                self.tree_send(items, root, Some(&from), now);
            } else {
                fresh.extend(items);
            }
        }
        self.stats.items_new += fresh.len() as u64;
        self.spread(fresh, Some(&from), self.cfg.eager_fanout);

        match p.msg {
            Msg::Gossip => {}
            Msg::Ping { seq, target, claim } => {
                if target != self.me {
                    self.stats.misdirected += 1;
                    return Ok(());
                }
                if let Some(c) = claim {
                    self.self_claim(c.generation, c.inc, c.state, None, now);
                }
                self.send_msg(from.clone(), Msg::Ack { seq });
                let dead_to_us = self
                    .members
                    .get(&p.sender)
                    .is_some_and(|m| m.state == State::Dead && p.sender_generation >= m.generation);
                if dead_to_us {
                    self.contact_sync(from, now, cat);
                }
            }
            Msg::Ack { seq } => {
                if let Some(probe) = self.probes.remove(&seq) {
                    self.probe_succeeded(probe, now, cat);
                } else {
                    self.relay_acked(seq);
                }
            }
            Msg::Nack { seq } => {
                if let Some(p) = self.probes.get_mut(&seq) {
                    p.nacks += 1;
                }
            }
            Msg::PingReq { seq, target, addr } => self.relay_ping(from, seq, target, addr, now),
            Msg::Tree { .. } => {}
            Msg::IHave { ids } => self.ihave(from, ids, now),
            Msg::Graft { ids } => self.graft(from, ids),
        }
        Ok(())
    }

    /// A request on the reliable channel; returns the reply to send back, its records
    /// read from `cat` (at most `wire::MAX_STREAM` bytes of them). The daemon uses
    /// [`Self::handle_stream_request`] and builds records replies off its loop.
    pub fn handle_stream(
        &mut self,
        from: A,
        payload: &[u8],
        now: Micros,
        cat: &mut impl CatalogPort,
    ) -> Result<Vec<u8>, WireError> {
        Ok(match self.handle_stream_request(from, payload, now, cat)? {
            StreamAnswer::Reply(r) => r,
            StreamAnswer::Records(want) => {
                wire::encode_records_reply(&want, wire::MAX_STREAM, |h| cat.host_records(h)).0
            }
        })
    }

    /// A request on the reliable channel; returns what to answer.
    pub fn handle_stream_request(
        &mut self,
        from: A,
        payload: &[u8],
        now: Micros,
        cat: &mut impl CatalogPort,
    ) -> Result<StreamAnswer, WireError> {
        self.last_now = now;
        let reply = match Stream::<K, A>::decode(payload)? {
            Stream::Digest(d) => self.answer_digest(from, d, now, cat),
            Stream::Records(s) => {
                return Ok(StreamAnswer::Records(
                    self.answer_records(&from, s, now, cat),
                ));
            }
            Stream::Push(recs) => {
                let stored = merge_records(cat, recs);
                let items = self.record_items(&stored);
                let items = self.split_oversize(items, &stored, Some(&from));
                if self.tree_on() {
                    self.tree_send(items, None, None, now);
                } else {
                    self.spread(items, Some(&from), self.cfg.eager_fanout);
                }
                Stream::Done
            }
            Stream::Hosts(_) | Stream::RecordsReply(_) | Stream::Done => {
                return Err(WireError::Invalid);
            }
        };
        Ok(StreamAnswer::Reply(reply.encode()))
    }

    /// The reply to one of our stream requests (`None`: it failed).
    pub fn handle_stream_reply(
        &mut self,
        req: u64,
        reply: Option<&[u8]>,
        now: Micros,
        cat: &mut impl CatalogPort,
    ) -> Result<(), WireError> {
        self.last_now = now;
        let Some(pending) = self.pending.remove(&req) else {
            return Ok(());
        };
        let Some(bytes) = reply else {
            self.stats.syncs_failed += u64::from(!matches!(pending, Pending::Push));
            return Ok(());
        };
        match (pending, Stream::<K, A>::decode(bytes)?) {
            (Pending::Digest { to, join, bits }, Stream::Hosts(h)) => {
                self.digest_answered(to, join, bits, h, now, cat)
            }
            (Pending::Records, Stream::RecordsReply(recs)) => {
                let stored = merge_records(cat, recs);
                let items = self.record_items(&stored);
                if self.tree_on() {
                    self.tree_send(items, None, None, now);
                } else {
                    self.enqueue(items, 0);
                }
            }
            (Pending::Push, Stream::Done) => {}
            _ => return Err(WireError::Invalid),
        }
        Ok(())
    }

    /// Runs due timers.
    pub fn tick(&mut self, now: Micros, cat: &impl CatalogPort) {
        self.last_now = now;
        self.run_probes(now);
        self.run_relays(now);
        self.run_tree(now);
        self.expire_suspicions(now);
        if now >= self.next_probe {
            self.probe_round(now);
        }
        if now >= self.next_gossip {
            self.gossip_round(now);
        }
        if now >= self.next_sync {
            self.sync_round(now, cat);
        }
        if now >= self.next_reconnect {
            self.reconnect(now);
            self.next_reconnect = now + us(self.cfg.reconnect_interval);
        }
        if now >= self.next_rejoin {
            self.rejoin(now, cat);
        }
        if now >= self.next_sweep {
            self.sweep(now);
            self.next_sweep = now + 60_000_000;
        }
    }
}

fn to_wire(r: Record) -> WireRecord {
    WireRecord {
        announcer: r.announcer.to_string(),
        service: r.service,
    }
}

/// Merges records grouped by announcer (in order of first appearance).
fn merge_records(cat: &mut impl CatalogPort, records: Vec<WireRecord>) -> Vec<Record> {
    if records.is_empty() {
        return Vec::new();
    }
    let mut groups: BTreeMap<String, Vec<Service>> = BTreeMap::new();
    for r in records {
        groups.entry(r.announcer).or_default().push(r.service);
    }
    let mut stored = Vec::new();
    for (announcer, services) in groups {
        stored.extend(cat.merge(&announcer, services));
    }
    stored
}

trait PutInto {
    fn put_into(&self, w: &mut Writer);
}

impl<T: wire::Wire> PutInto for T {
    fn put_into(&self, w: &mut Writer) {
        self.put(w);
    }
}
