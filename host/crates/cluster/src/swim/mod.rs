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
//! * eager push of new items plus a bounded retransmit queue piggybacked on all traffic;
//! * digest-first anti-entropy ([`crate::antientropy`]) with members and
//!   records, on join, periodically, with seeds and with dead members that answer.

mod awareness;
pub mod config;
pub mod members;
pub mod rng;
mod suspicion;

pub use config::SwimConfig;
pub use members::{Member, MemberTable};

use crate::antientropy;
use crate::dissemination::{self, Subject, TransmitQueue};
use crate::wire::{
    self, Claim, Item, MemberUpdate, Msg, NodeAddr, NodeKey, State, Stream, SyncDigest, SyncHosts,
    SyncRecords, WireError, WireRecord, Writer,
};
use awareness::Awareness;
use members::{member_hash, supersedes};
use rng::Rng;
use sidecar_catalog::{Fingerprint, Record, Service};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use suspicion::Suspicion;

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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ProbeKind {
    /// The regular probe of the round-robin.
    RoundRobin,
    /// Our own check of a member somebody else suspects.
    Confirm,
    /// A ping to a dead member: if it answers, sync with it (partition healing).
    Reconnect,
}

struct Probe<K, A> {
    target: K,
    addr: A,
    claim: Option<Claim>,
    attempts: u32,
    next_retry: Micros,
    deadline: Micros,
    expected_nacks: u32,
    nacks: u32,
    kind: ProbeKind,
}

struct Relay<A> {
    requester: A,
    seq: u32,
    nack_at: Micros,
    expires: Micros,
    nacked: bool,
}

enum Pending<A> {
    Digest { to: A, join: bool, bits: u8 },
    Records,
    Push,
}

#[derive(Clone)]
enum Source<K> {
    /// Heard on gossip from this sender.
    Gossip(K),
    /// A full member list from anti-entropy; `join` lists are not re-broadcast.
    Sync { remote: Option<K>, join: bool },
}

pub struct Swim<K: NodeKey, A: NodeAddr> {
    cfg: SwimConfig,
    me: K,
    me_encoded: Vec<u8>,
    addr: A,
    generation: u64,
    inc: u32,
    leaving: bool,
    members: MemberTable<K, A>,
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
            inc: 0,
            leaving: false,
            members: MemberTable::default(),
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
            join_backoff: Duration::from_secs(1),
            pending: HashMap::new(),
            next_req: 1,
            contact_syncs: HashMap::new(),
            outputs: VecDeque::new(),
            stats: CoreStats::default(),
            last_now: now,
            rng,
            cfg,
        }
    }

    /// Loads a member table without gossip (simulator start-up at large N). `members`
    /// must be sorted by key, without duplicates and without ourselves.
    pub fn preload_members(&mut self, members: Vec<Member<K, A>>) {
        self.table_hash = members.iter().fold(0, |h, m| {
            h ^ member_hash(&m.key, m.generation, m.inc, m.state)
        });
        self.members.load_sorted(members);
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
        d
    }

    fn n(&self) -> usize {
        self.members.live() + 1
    }

    fn limit(&self) -> u32 {
        self.cfg.retransmit_limit(self.n())
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    // ----- sending -------------------------------------------------------------------

    fn send_msg(&mut self, to: A, msg: Msg<K, A>) {
        let mut payload = wire::encode_head(&self.me, self.generation, &msg);
        let budget = self.cfg.max_payload.saturating_sub(payload.len());
        let limit = self.limit();
        for item in self.queue.fill(budget, limit) {
            payload.extend_from_slice(&item);
        }
        self.outputs.push_back(Output::Datagram { to, payload });
    }

    /// Up to `k` random live members (indices), none with `exclude`'s address or key.
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

    /// Sends new items at once to a few random peers and queues them for piggybacking.
    fn spread(&mut self, items: Vec<(Subject, Arc<[u8]>)>, exclude: Option<&A>, fanout: usize) {
        if items.is_empty() {
            return;
        }
        let head = wire::encode_head::<K, A>(&self.me, self.generation, &Msg::Gossip);
        let targets: Vec<A> = self
            .pick_live(fanout, exclude, None)
            .into_iter()
            .map(|i| self.members.at(i).addr.clone())
            .collect();
        let mut batches = Vec::new();
        let mut cur = head.clone();
        for (_, b) in &items {
            if cur.len() + b.len() > self.cfg.max_payload && cur.len() > head.len() {
                batches.push(std::mem::replace(&mut cur, head.clone()));
            }
            cur.extend_from_slice(b);
        }
        if cur.len() > head.len() {
            batches.push(cur);
        }
        for to in &targets {
            for b in &batches {
                self.outputs.push_back(Output::Datagram {
                    to: to.clone(),
                    payload: b.clone(),
                });
            }
        }
        self.enqueue(items, targets.len() as u32);
    }

    fn enqueue(&mut self, items: Vec<(Subject, Arc<[u8]>)>, sent: u32) {
        let limit = self.limit();
        let cap = self.cfg.queue_limit.max(2 * self.n());
        let was_empty = self.queue.is_empty();
        let mut added = false;
        for (s, b) in items {
            if sent < limit {
                self.queue.push(s, b, sent, cap);
                added = true;
            }
        }
        if added {
            // New items went out eagerly to a few peers; a quick follow-up round (a
            // quarter tick later) reaches the few the eager flood missed, then the
            // regular ticks carry on.
            let follow_up = self.last_now + us(self.cfg.gossip_interval) / 4;
            self.next_gossip = if was_empty {
                follow_up
            } else {
                self.next_gossip.min(follow_up)
            };
        }
    }

    fn member_item(&self, u: &MemberUpdate<K, A>) -> (Subject, Arc<[u8]>) {
        let mut w = Writer::new();
        u.key.put_into(&mut w);
        (
            dissemination::member_subject(&w.buf),
            Item::<K, A>::Member(u.clone()).encode().into(),
        )
    }

    fn record_items(&self, records: &[Record]) -> Vec<(Subject, Arc<[u8]>)> {
        records
            .iter()
            .map(|r| {
                let item = Item::<K, A>::Record(WireRecord {
                    announcer: r.announcer.to_string(),
                    service: r.service.clone(),
                });
                (
                    dissemination::record_subject(&r.service.hostname, &r.service.id),
                    item.encode().into(),
                )
            })
            .collect()
    }

    /// Records too large for one datagram travel on the reliable channel.
    fn split_oversize(
        &mut self,
        items: Vec<(Subject, Arc<[u8]>)>,
        records: &[Record],
        exclude: Option<&A>,
    ) -> Vec<(Subject, Arc<[u8]>)> {
        let room = self
            .cfg
            .max_payload
            .saturating_sub(64 + self.me_encoded.len());
        let mut keep = Vec::with_capacity(items.len());
        let mut big = Vec::new();
        for ((s, b), r) in items.into_iter().zip(records) {
            if b.len() > room {
                big.push(WireRecord {
                    announcer: r.announcer.to_string(),
                    service: r.service.clone(),
                });
            } else {
                keep.push((s, b));
            }
        }
        if !big.is_empty() {
            let payload = Stream::<K, A>::Push(big).encode();
            let targets: Vec<A> = self
                .pick_live(self.cfg.eager_fanout, exclude, None)
                .into_iter()
                .map(|i| self.members.at(i).addr.clone())
                .collect();
            for to in targets {
                let req = self.next_req;
                self.next_req += 1;
                self.pending.insert(req, Pending::Push);
                self.stats.pushes += 1;
                self.outputs.push_back(Output::Stream {
                    to,
                    req,
                    payload: payload.clone(),
                });
            }
        }
        keep
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
        self.inc += 1;
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
        self.spread(items, None, self.cfg.eager_fanout);
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
        let mut fresh = Vec::new();
        let mut records = Vec::new();
        for item in p.items {
            match item {
                Item::Member(u) => {
                    self.apply_update(u, Source::Gossip(p.sender.clone()), now, &mut fresh)
                }
                Item::Record(r) => records.push(r),
            }
        }
        let stored = merge_records(cat, records);
        if !stored.is_empty() {
            let items = self.record_items(&stored);
            let items = self.split_oversize(items, &stored, Some(&from));
            fresh.extend(items);
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
                } else if let Some(r) = self.relays.remove(&seq) {
                    self.send_msg(r.requester, Msg::Ack { seq: r.seq });
                }
            }
            Msg::Nack { seq } => {
                if let Some(p) = self.probes.get_mut(&seq) {
                    p.nacks += 1;
                }
            }
            Msg::PingReq { seq, target, addr } => {
                let s2 = self.next_seq();
                self.relays.insert(
                    s2,
                    Relay {
                        requester: from,
                        seq,
                        nack_at: now + us(self.cfg.probe_timeout) * 3 / 2,
                        expires: now + us(self.cfg.probe_timeout) * 4,
                        nacked: false,
                    },
                );
                self.send_msg(
                    addr,
                    Msg::Ping {
                        seq: s2,
                        target,
                        claim: None,
                    },
                );
            }
        }
        Ok(())
    }

    /// A request on the reliable channel; returns the reply to send back.
    pub fn handle_stream(
        &mut self,
        from: A,
        payload: &[u8],
        now: Micros,
        cat: &mut impl CatalogPort,
    ) -> Result<Vec<u8>, WireError> {
        self.last_now = now;
        let reply = match Stream::<K, A>::decode(payload)? {
            Stream::Digest(d) => {
                let remote = d.sender.key.clone();
                let mut fresh = Vec::new();
                self.apply_update(d.sender, Source::Gossip(remote), now, &mut fresh);
                // A joining member is news: push it like any other.
                self.spread(fresh, Some(&from), self.cfg.eager_fanout);
                let fps = cat.fingerprints();
                let mine = antientropy::buckets(&fps, d.bucket_bits);
                let diff = if mine.len() == d.buckets.len() {
                    antientropy::differing(&mine, &d.buckets)
                } else {
                    (0..mine.len() as u32).collect()
                };
                let hosts = antientropy::hosts_in(fps, d.bucket_bits, &diff);
                let members =
                    (d.join || d.members_hash != self.members_hash()).then(|| self.member_list());
                Stream::Hosts(SyncHosts {
                    members,
                    buckets: diff,
                    hosts,
                })
            }
            Stream::Records(s) => {
                if let Some(list) = s.members {
                    self.apply_member_list(list, None, false, now);
                }
                let stored = merge_records(cat, s.records);
                let items = self.record_items(&stored);
                self.enqueue(items, 0);
                let mut out = Vec::new();
                for host in s.want.iter().take(1 << 20) {
                    out.extend(cat.host_records(host).into_iter().map(to_wire));
                }
                Stream::RecordsReply(out)
            }
            Stream::Push(recs) => {
                let stored = merge_records(cat, recs);
                let items = self.record_items(&stored);
                let items = self.split_oversize(items, &stored, Some(&from));
                self.spread(items, Some(&from), self.cfg.eager_fanout);
                Stream::Done
            }
            Stream::Hosts(_) | Stream::RecordsReply(_) | Stream::Done => {
                return Err(WireError::Invalid);
            }
        };
        Ok(reply.encode())
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
                self.joined = true;
                let sent_members = h.members.is_some();
                if let Some(list) = h.members {
                    self.apply_member_list(list, None, join, now);
                }
                let mine = antientropy::hosts_in(cat.fingerprints(), bits, &h.buckets);
                let (send, want) = antientropy::plan(&mine, &h.hosts);
                let records: Vec<WireRecord> = send
                    .iter()
                    .flat_map(|host| cat.host_records(host))
                    .map(to_wire)
                    .collect();
                let members = sent_members.then(|| self.member_list());
                if records.is_empty() && want.is_empty() && members.is_none() {
                    return Ok(());
                }
                let payload = Stream::Records(SyncRecords {
                    members,
                    records,
                    want,
                })
                .encode();
                let req = self.next_req;
                self.next_req += 1;
                self.pending.insert(req, Pending::Records);
                self.outputs.push_back(Output::Stream { to, req, payload });
            }
            (Pending::Records, Stream::RecordsReply(recs)) => {
                let stored = merge_records(cat, recs);
                let items = self.record_items(&stored);
                self.enqueue(items, 0);
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
        let expired: Vec<K> = self
            .suspicions
            .iter()
            .filter(|(_, s)| s.deadline <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in expired {
            self.declare_dead(k, now);
        }
        if now >= self.next_probe {
            if !self.leaving
                && let Some(i) = self.next_round_robin()
            {
                self.start_probe(i, ProbeKind::RoundRobin, now);
            }
            self.next_probe = now + us(self.awareness.scale(self.cfg.probe_interval));
        }
        if now >= self.next_gossip {
            if !self.queue.is_empty() {
                self.gossip();
            }
            // Fresh items (sent fewer than eager + two rounds) go out at a quarter tick:
            // the same number of sends, sooner.
            let fresh = (self.cfg.eager_fanout + 2 * self.cfg.gossip_nodes) as u32;
            let interval = us(self.cfg.gossip_interval);
            self.next_gossip = now
                + match self.queue.min_transmits() {
                    Some(t) if t < fresh => interval / 4,
                    _ => interval,
                };
        }
        if now >= self.next_sync {
            let n = self.n();
            if let Some(&i) = self.pick_live(1, None, None).first() {
                let to = self.members.at(i).addr.clone();
                self.start_sync(to, false, cat);
            }
            let period = us(self.cfg.push_pull_for(n));
            self.next_sync = now + period / 2 + self.rng.below(period as usize) as u64;
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

    // ----- probing ---------------------------------------------------------------------

    fn next_round_robin(&mut self) -> Option<usize> {
        let n = self.members.len();
        if n == 0 || self.members.live() == 0 {
            return None;
        }
        for _ in 0..n {
            if self.rr_n != n || self.rr_pos >= n {
                self.rr_n = n;
                self.rr_pos = 0;
                self.rr_off = self.rng.below(n);
                self.rr_step = 1 + self.rng.below(n);
                while gcd(self.rr_step, n) != 1 {
                    self.rr_step = 1 + self.rng.below(n);
                }
            }
            let i = (self.rr_off + self.rr_pos * self.rr_step) % n;
            self.rr_pos += 1;
            if self.members.at(i).state.is_live() {
                return Some(i);
            }
        }
        None
    }

    fn start_probe(&mut self, i: usize, kind: ProbeKind, now: Micros) {
        let m = self.members.at(i);
        let (target, addr) = (m.key.clone(), m.addr.clone());
        let claim = (m.state != State::Alive).then_some(Claim {
            state: m.state,
            generation: m.generation,
            inc: m.inc,
        });
        if self.probes.values().any(|p| p.target == target) {
            return;
        }
        let seq = self.next_seq();
        self.stats.probes += 1;
        // Room for every direct attempt (and the indirect answers), at least 0.9 of a
        // probe interval; stretched by local health (Lifeguard).
        let base = (us(self.cfg.probe_interval) * 9 / 10)
            .max(us(self.cfg.probe_timeout) * u64::from(self.cfg.direct_attempts));
        let window = match kind {
            ProbeKind::Reconnect => base,
            _ => base * u64::from(self.awareness.score() + 1),
        };
        self.probes.insert(
            seq,
            Probe {
                target: target.clone(),
                addr: addr.clone(),
                claim,
                attempts: 1,
                next_retry: now + us(self.cfg.probe_timeout),
                deadline: now + window,
                expected_nacks: 0,
                nacks: 0,
                kind,
            },
        );
        self.send_msg(addr, Msg::Ping { seq, target, claim });
    }

    fn run_probes(&mut self, now: Micros) {
        let due: Vec<u32> = self
            .probes
            .iter()
            .filter(|(_, p)| {
                p.deadline <= now || (p.attempts < self.cfg.direct_attempts && p.next_retry <= now)
            })
            .map(|(s, _)| *s)
            .collect();
        for seq in due {
            let Some(p) = self.probes.get(&seq) else {
                continue;
            };
            if p.deadline <= now {
                if let Some(p) = self.probes.remove(&seq) {
                    self.probe_failed(p, now);
                }
                continue;
            }
            let (target, addr, claim, attempts, kind) = (
                p.target.clone(),
                p.addr.clone(),
                p.claim,
                p.attempts,
                p.kind,
            );
            if let Some(p) = self.probes.get_mut(&seq) {
                p.attempts += 1;
                p.next_retry += us(self.cfg.probe_timeout);
            }
            self.send_msg(
                addr.clone(),
                Msg::Ping {
                    seq,
                    target: target.clone(),
                    claim,
                },
            );
            if attempts == 1 && kind != ProbeKind::Reconnect {
                let relays: Vec<A> = self
                    .pick_live(self.cfg.indirect_checks, Some(&addr), Some(&target))
                    .into_iter()
                    .map(|i| self.members.at(i).addr.clone())
                    .collect();
                if let Some(p) = self.probes.get_mut(&seq) {
                    p.expected_nacks = relays.len() as u32;
                }
                for r in relays {
                    self.send_msg(
                        r,
                        Msg::PingReq {
                            seq,
                            target: target.clone(),
                            addr: addr.clone(),
                        },
                    );
                }
            }
        }
    }

    fn run_relays(&mut self, now: Micros) {
        let mut nacks = Vec::new();
        self.relays.retain(|_, r| {
            if !r.nacked && r.nack_at <= now {
                r.nacked = true;
                nacks.push((r.requester.clone(), r.seq));
            }
            r.expires > now
        });
        for (to, seq) in nacks {
            self.send_msg(to, Msg::Nack { seq });
        }
    }

    fn probe_succeeded(&mut self, p: Probe<K, A>, now: Micros, cat: &impl CatalogPort) {
        match p.kind {
            ProbeKind::RoundRobin => self.awareness.apply(-1),
            ProbeKind::Confirm => {}
            ProbeKind::Reconnect => {
                self.contact_sync(p.addr, now, cat);
            }
        }
    }

    fn probe_failed(&mut self, p: Probe<K, A>, now: Micros) {
        match p.kind {
            ProbeKind::Reconnect => return,
            ProbeKind::RoundRobin => {
                self.stats.probe_failures += 1;
                let delta = if p.expected_nacks > 0 {
                    p.expected_nacks.saturating_sub(p.nacks) as i32
                } else {
                    1
                };
                self.awareness.apply(delta);
            }
            ProbeKind::Confirm => self.stats.probe_failures += 1,
        }
        let Some(m) = self.members.get(&p.target) else {
            return;
        };
        if !m.state.is_live() {
            return;
        }
        let u = MemberUpdate {
            state: State::Suspect,
            from: Some(self.me.clone()),
            ..m.update(None)
        };
        let mut fresh = Vec::new();
        self.apply_update(u, Source::Gossip(self.me.clone()), now, &mut fresh);
        self.spread(fresh, None, self.cfg.eager_fanout);
    }

    fn declare_dead(&mut self, key: K, now: Micros) {
        self.suspicions.remove(&key);
        let Some(m) = self.members.get(&key) else {
            return;
        };
        if m.state != State::Suspect {
            return;
        }
        self.stats.deaths_declared += 1;
        let u = MemberUpdate {
            state: State::Dead,
            ..m.update(None)
        };
        let mut fresh = Vec::new();
        self.apply_update(u, Source::Gossip(self.me.clone()), now, &mut fresh);
        self.spread(fresh, None, self.cfg.eager_fanout);
    }

    fn gossip(&mut self) {
        let limit = self.limit();
        let targets: Vec<A> = self
            .pick_live(self.cfg.gossip_nodes, None, None)
            .into_iter()
            .map(|i| self.members.at(i).addr.clone())
            .collect();
        let head = wire::encode_head::<K, A>(&self.me, self.generation, &Msg::Gossip);
        let budget = self.cfg.max_payload.saturating_sub(head.len());
        for to in targets {
            let mut sent = std::collections::HashSet::new();
            for _ in 0..self.cfg.gossip_messages.max(1) {
                let items = self.queue.fill_except(budget, limit, &mut sent);
                if items.is_empty() {
                    break;
                }
                let mut payload = head.clone();
                items.iter().for_each(|i| payload.extend_from_slice(i));
                self.outputs.push_back(Output::Datagram {
                    to: to.clone(),
                    payload,
                });
            }
        }
    }

    // ----- anti-entropy and healing ----------------------------------------------------

    fn start_sync(&mut self, to: A, join: bool, cat: &impl CatalogPort) {
        let fps = cat.fingerprints();
        let bits = antientropy::bucket_bits_for(fps.len());
        let digest = SyncDigest {
            sender: self.self_update(),
            join,
            members_hash: self.members_hash(),
            bucket_bits: bits,
            buckets: antientropy::buckets(&fps, bits),
        };
        let req = self.next_req;
        self.next_req += 1;
        self.pending.insert(
            req,
            Pending::Digest {
                to: to.clone(),
                join,
                bits,
            },
        );
        self.stats.syncs_started += 1;
        self.outputs.push_back(Output::Stream {
            to,
            req,
            payload: Stream::<K, A>::Digest(digest).encode(),
        });
    }

    /// A member we hold as dead talks to us (or answers): exchange state so both sides
    /// learn what the other believes and refute (rate-limited per address).
    fn contact_sync(&mut self, to: A, now: Micros, cat: &impl CatalogPort) {
        let last = self.contact_syncs.get(&to).copied();
        if last.is_some_and(|t| now < t + 10_000_000) {
            return;
        }
        self.contact_syncs.insert(to.clone(), now);
        self.start_sync(to, false, cat);
    }

    fn reconnect(&mut self, now: Micros) {
        let retention = us(self.cfg.dead_retention);
        let n = self.members.len();
        if n == 0 || self.members.live() == n {
            return;
        }
        for _ in 0..16 {
            let i = self.rng.below(n);
            let m = self.members.at(i);
            if m.state == State::Dead && now.saturating_sub(m.since) < retention {
                self.start_probe(i, ProbeKind::Reconnect, now);
                return;
            }
        }
    }

    fn rejoin(&mut self, now: Micros, cat: &impl CatalogPort) {
        if self.seeds.is_empty() {
            self.next_rejoin = now + us(self.cfg.rejoin_interval);
            return;
        }
        if !self.joined {
            // Nobody answered yet: keep trying every seed, backing off to 30 s.
            for s in self.seeds.clone() {
                self.start_sync(s, true, cat);
            }
            self.join_backoff = (self.join_backoff * 2).min(Duration::from_secs(30));
            self.next_rejoin = now + us(self.join_backoff);
            return;
        }
        // A seed that is not a live member may be on the other side of a healed
        // partition (or restarted under a new name): exchange with it.
        let candidates: Vec<A> = self
            .seeds
            .iter()
            .filter(|s| **s != self.addr)
            .filter(|s| {
                !self
                    .members
                    .iter()
                    .any(|m| m.state.is_live() && &m.addr == *s)
            })
            .cloned()
            .collect();
        if !candidates.is_empty() {
            let s = candidates[self.rng.below(candidates.len())].clone();
            self.start_sync(s, false, cat);
        }
        self.next_rejoin = now + us(self.cfg.rejoin_interval);
    }

    fn sweep(&mut self, now: Micros) {
        let retention = us(self.cfg.dead_retention);
        let gone = self
            .members
            .retain(|m| m.state.is_live() || now.saturating_sub(m.since) < retention);
        for m in gone {
            self.table_hash ^= member_hash(&m.key, m.generation, m.inc, m.state);
        }
        self.contact_syncs
            .retain(|_, t| now.saturating_sub(*t) < 60_000_000);
    }

    // ----- membership rules --------------------------------------------------------------

    fn member_list(&self) -> Vec<MemberUpdate<K, A>> {
        let mut v: Vec<MemberUpdate<K, A>> = self.members.iter().map(|m| m.update(None)).collect();
        v.push(self.self_update());
        v
    }

    fn apply_member_list(
        &mut self,
        list: Vec<MemberUpdate<K, A>>,
        remote: Option<K>,
        join: bool,
        now: Micros,
    ) {
        let mut fresh = Vec::new();
        for u in list {
            self.apply_update(
                u,
                Source::Sync {
                    remote: remote.clone(),
                    join,
                },
                now,
                &mut fresh,
            );
        }
        self.enqueue(fresh, 0);
    }

    /// A claim about ourselves: refute suspicion/death, move past older lives.
    fn self_claim(
        &mut self,
        generation: u64,
        inc: u32,
        state: State,
        addr: Option<&A>,
        _now: Micros,
    ) {
        if self.leaving {
            return;
        }
        let before = (self.generation, self.inc);
        if generation > self.generation {
            // Peers remember a later life of ours (a wall clock that stepped back, or
            // another process using our name): start a newer one.
            if addr.is_some_and(|a| a != &self.addr) {
                self.stats.name_conflicts += 1;
            }
            self.generation = generation + 1;
            self.inc = 0;
        } else if generation == self.generation && state == State::Left {
            // A previous life of ours with this very generation left (we learnt our
            // generation from peers, and that life had learnt the same): leaving is final
            // for a generation, so only a new one can come back.
            self.generation += 1;
            self.inc = 0;
        } else if generation == self.generation
            && inc >= self.inc
            && (state != State::Alive || inc > self.inc)
        {
            if state != State::Alive {
                self.stats.refutations += 1;
                self.awareness.apply(1);
            }
            self.inc = inc + 1;
        }
        if (self.generation, self.inc) != before {
            let u = self.self_update();
            let item = self.member_item(&u);
            self.spread(vec![item], None, self.cfg.eager_fanout);
        }
    }

    fn apply_update(
        &mut self,
        mut u: MemberUpdate<K, A>,
        src: Source<K>,
        now: Micros,
        fresh: &mut Vec<(Subject, Arc<[u8]>)>,
    ) {
        if u.key == self.me {
            let addr = u.addr.clone();
            self.self_claim(u.generation, u.inc, u.state, Some(&addr), now);
            return;
        }
        let cur = self.members.get(&u.key).cloned();
        let mut broadcast = match &src {
            Source::Gossip(_) => true,
            Source::Sync { join, .. } => !join && cur.is_some(),
        };
        let suspecter = match &src {
            Source::Gossip(s) => Some(s.clone()),
            Source::Sync { remote, .. } => remote.clone(),
        };
        if let Some(c) = &cur {
            // A full list from across a healed partition says a member we see alive is
            // dead: check for ourselves instead of believing it (no false deaths on heal).
            if matches!(src, Source::Sync { .. })
                && u.state == State::Dead
                && c.state.is_live()
                && u.generation == c.generation
            {
                u.state = State::Suspect;
                u.from = Some(suspecter.clone().unwrap_or_else(|| u.key.clone()));
            }
            if !supersedes(
                (u.generation, u.inc, u.state),
                (c.generation, c.inc, c.state),
            ) {
                // Same suspicion from another member: an independent confirmation.
                if u.state == State::Suspect
                    && c.state == State::Suspect
                    && (u.generation, u.inc) == (c.generation, c.inc)
                    && let Some(from) = u.from.clone().or(suspecter)
                    && let Some(s) = self.suspicions.get_mut(&u.key)
                    && s.confirm(from)
                    && matches!(src, Source::Gossip(_))
                {
                    fresh.push(self.member_item(&u));
                }
                return;
            }
        } else if u.state == State::Suspect {
            // Unknown member reported suspect: learn it (as suspect, with a timer).
            broadcast = matches!(src, Source::Gossip(_));
        }
        let was = cur.as_ref().map(|c| c.state);
        let addr = match &cur {
            Some(c) if u.state != State::Alive && u.generation == c.generation => c.addr.clone(),
            _ => u.addr.clone(),
        };
        let since = match &cur {
            Some(c) if c.state == u.state && c.generation == u.generation => c.since,
            _ => now,
        };
        let m = Member {
            key: u.key.clone(),
            addr,
            generation: u.generation,
            inc: u.inc,
            state: u.state,
            since,
        };
        if let Some(c) = &cur {
            self.table_hash ^= member_hash(&c.key, c.generation, c.inc, c.state);
        }
        self.table_hash ^= member_hash(&m.key, m.generation, m.inc, m.state);
        self.members.put(m);

        if u.state == State::Suspect {
            let from = u
                .from
                .clone()
                .or(suspecter)
                .unwrap_or_else(|| u.key.clone());
            let (min, max) = self.cfg.suspicion_bounds(self.n());
            let k = if self.n() < 2 + self.cfg.confirmations as usize {
                0
            } else {
                self.cfg.confirmations
            };
            let own = from == self.me;
            self.suspicions.insert(
                u.key.clone(),
                Suspicion::new(from, now, us(min), us(max), k),
            );
            self.stats.suspicions += 1;
            // A few members check a fresh suspect themselves: their failures are the
            // independent confirmations, their pings carry the suspicion to the suspect.
            let p = f64::from(self.cfg.active_probers) / self.n().max(1) as f64;
            if !own
                && !self.leaving
                && self.rng.chance(p)
                && let Some(i) = self.members.index(&u.key)
            {
                self.start_probe(i, ProbeKind::Confirm, now);
            }
        } else {
            self.suspicions.remove(&u.key);
        }
        if was != Some(u.state) || cur.as_ref().is_some_and(|c| c.generation != u.generation) {
            self.outputs.push_back(Output::Member {
                key: u.key.clone(),
                state: u.state,
                was,
            });
        }
        if broadcast {
            fresh.push(self.member_item(&u));
        }
    }
}

impl<K: NodeKey, A: NodeAddr> Swim<K, A> {
    /// Members as the API shows them: everyone we know, ourselves included.
    pub fn member_updates(&self) -> Vec<MemberUpdate<K, A>> {
        self.member_list()
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

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

trait PutInto {
    fn put_into(&self, w: &mut Writer);
}

impl<T: wire::Wire> PutInto for T {
    fn put_into(&self, w: &mut Writer) {
        self.put(w);
    }
}
