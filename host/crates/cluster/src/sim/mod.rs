//! Deterministic simulator: many nodes, each the real sans-IO core plus a real
//! [`Catalog`], over a simulated network, in virtual time (no tokio, no threads).
//! One seed gives one exact run: loss, latency, partitions, crashes, restarts and clock
//! skew included. Used by the campaign tests (invariants every step) and the benchmarks.

#[cfg(test)]
mod attacks;
pub mod check;
pub mod network;
pub mod scenario;

use crate::swim::rng::Rng;
use crate::swim::{CatalogPort, Member, Micros, Output, Swim, SwimConfig};
use crate::wire::{NodeKey, State};
use network::Network;
use sidecar_catalog::{Catalog, Fingerprint, Mono, Now, Record, Service, Timestamp};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

/// Bytes the encrypted envelope adds to each datagram (counted in bandwidth figures).
pub const ENVELOPE: usize = 29;
/// How long a stream request to an unreachable node takes to fail.
const CONNECT_TIMEOUT: Micros = 1_000_000;
/// Virtual wall clock at time zero (2026-01-01).
const WALL_BASE_SECS: i64 = 1_767_225_600;

pub fn node_name(id: u32) -> String {
    format!("n{id}")
}

pub fn parse_node(name: &str) -> Option<u32> {
    name.strip_prefix('n')?.parse().ok()
}

/// A catalog seen through the port the core uses, at one instant of one node.
struct SimCatalog<'a> {
    cat: &'a mut Catalog,
    now: Now,
    stored: &'a mut Vec<Record>,
}

impl CatalogPort for SimCatalog<'_> {
    fn merge(&mut self, announcer: &str, records: Vec<Service>) -> Vec<Record> {
        let applied = self.cat.merge_all(announcer, records, self.now);
        self.stored.extend(applied.stored.iter().cloned());
        applied.stored
    }
    fn fingerprints(&self) -> Vec<(String, Fingerprint)> {
        self.cat.fingerprints()
    }
    fn host_records(&self, host: &str) -> Vec<Record> {
        self.cat.host_records(host)
    }
}

pub struct SimNode {
    pub id: u32,
    pub core: Option<Swim<u32, u32>>,
    pub catalog: Catalog,
    /// Desired local services (what discovery would report).
    pub local: Vec<Service>,
    local_dirty: bool,
    /// Wall clock offset of this host, nanoseconds (clock skew and jumps).
    pub skew_ns: i64,
    /// Virtual time this life started (its monotonic clock's zero).
    pub started: Micros,
    /// Incremented on every restart; stale events for an older life are dropped.
    pub life: u32,
    wake_at: Micros,
    next_app: Micros,
    app_ticks: u64,
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub packets_out: u64,
    pub left: bool,
}

impl SimNode {
    pub fn is_up(&self) -> bool {
        self.core.is_some()
    }
}

#[derive(Debug)]
enum Event {
    Wake {
        node: u32,
    },
    Datagram {
        to: u32,
        from: u32,
        payload: Vec<u8>,
    },
    StreamReq {
        to: u32,
        from: u32,
        from_life: u32,
        req: u64,
        payload: Vec<u8>,
    },
    StreamResp {
        to: u32,
        life: u32,
        req: u64,
        payload: Option<Vec<u8>>,
    },
}

/// Arrival times of one tracked record version (propagation measurements).
#[derive(Debug, Default, Clone)]
pub struct Tracked {
    pub since: Micros,
    pub arrivals: Vec<Micros>,
}

#[derive(Clone, Debug)]
pub struct SimConfig {
    pub n: usize,
    pub seed: u64,
    pub swim: SwimConfig,
    pub network: Network,
    /// Start with everyone already a member of everyone (large N).
    pub preload: bool,
    /// Addresses new and restarted nodes join through.
    pub seeds: Vec<u32>,
    /// Check invariants after every event.
    pub check: bool,
}

impl SimConfig {
    pub fn new(n: usize, seed: u64) -> Self {
        SimConfig {
            n,
            seed,
            swim: SwimConfig::default(),
            network: Network::default(),
            preload: false,
            seeds: vec![0, 1, 2],
            check: false,
        }
    }
}

pub struct Sim {
    pub now: Micros,
    pub nodes: Vec<SimNode>,
    pub net: Network,
    pub cfg: SimConfig,
    rng: Rng,
    events: BinaryHeap<Reverse<(Micros, u64)>>,
    payloads: HashMap<u64, Event>,
    next_event: u64,
    pub checker: Option<check::Checker>,
    /// Record versions being timed: (hostname, id) -> arrivals at other nodes.
    pub tracked: HashMap<(String, String), Tracked>,
    /// Members being timed as they go down: key -> (since, times observers saw it dead).
    pub downs: HashMap<u32, Tracked>,
    pub events_processed: u64,
}

impl Sim {
    pub fn new(cfg: SimConfig) -> Self {
        let mut rng = Rng::new(cfg.seed);
        let mut nodes = Vec::with_capacity(cfg.n);
        for id in 0..cfg.n as u32 {
            nodes.push(SimNode {
                id,
                core: None,
                catalog: Catalog::new(&node_name(id), "sim"),
                local: Vec::new(),
                local_dirty: false,
                skew_ns: 0,
                started: 0,
                life: 0,
                wake_at: Micros::MAX,
                next_app: rng.below(1_000_000) as u64,
                app_ticks: 0,
                bytes_out: 0,
                bytes_in: 0,
                packets_out: 0,
                left: false,
            });
        }
        let mut sim = Sim {
            now: 0,
            nodes,
            net: cfg.network.clone(),
            rng,
            events: BinaryHeap::new(),
            payloads: HashMap::new(),
            next_event: 0,
            checker: cfg.check.then(check::Checker::default),
            tracked: HashMap::new(),
            downs: HashMap::new(),
            events_processed: 0,
            cfg,
        };
        for id in 0..sim.cfg.n as u32 {
            sim.boot(id, !sim.cfg.preload);
        }
        if sim.cfg.preload {
            sim.preload();
        }
        sim
    }

    fn wall(&self, id: u32) -> Timestamp {
        let n = &self.nodes[id as usize];
        Timestamp::from_unix_secs(WALL_BASE_SECS)
            .add_nanos(i128::from(self.now) * 1_000 + i128::from(n.skew_ns))
    }

    fn now_of(&self, id: u32) -> Now {
        let n = &self.nodes[id as usize];
        Now::new(
            self.wall(id),
            Mono(Duration::from_micros(self.now - n.started)),
        )
    }

    fn boot(&mut self, id: u32, join: bool) {
        let generation = (self.wall(id).unix_nanos() / 1_000_000).max(1) as u64;
        let seed = self.rng.next_u64();
        let node = &mut self.nodes[id as usize];
        node.life += 1;
        node.started = self.now;
        node.left = false;
        node.catalog = Catalog::new(&node_name(id), "sim");
        node.local_dirty = !node.local.is_empty();
        node.core = Some(Swim::new(
            self.cfg.swim.clone(),
            id,
            id,
            generation,
            self.now,
            seed,
        ));
        if let Some(c) = &mut self.checker {
            c.booted(id, generation);
        }
        if join {
            let seeds: Vec<u32> = self.cfg.seeds.clone();
            self.with_node(id, |core, cat| core.join(seeds, cat.now_us, cat));
        }
        self.schedule_wake(id);
    }

    fn preload(&mut self) {
        let all: Vec<(u32, u64)> = self
            .nodes
            .iter()
            .map(|n| (n.id, n.core.as_ref().map_or(1, |c| c.generation())))
            .collect();
        for id in 0..self.nodes.len() {
            let members: Vec<Member<u32, u32>> = all
                .iter()
                .filter(|(k, _)| *k as usize != id)
                .map(|&(k, generation)| Member {
                    key: k,
                    addr: k,
                    generation,
                    inc: 0,
                    state: State::Alive,
                    since: 0,
                })
                .collect();
            if let Some(core) = &mut self.nodes[id].core {
                core.preload_members(members);
            }
        }
    }

    /// Runs `f` with node `id`'s core and a catalog port, then routes its outputs.
    fn with_node<R>(
        &mut self,
        id: u32,
        f: impl FnOnce(&mut Swim<u32, u32>, &mut PortNow<'_>) -> R,
    ) -> Option<R> {
        let now = self.now_of(id);
        let now_us = self.now;
        let mut stored = Vec::new();
        let node = &mut self.nodes[id as usize];
        let core = node.core.as_mut()?;
        let mut port = PortNow {
            inner: SimCatalog {
                cat: &mut node.catalog,
                now,
                stored: &mut stored,
            },
            now_us,
        };
        let r = f(core, &mut port);
        self.note_stored(id, &stored);
        self.route(id);
        Some(r)
    }

    fn note_stored(&mut self, id: u32, stored: &[Record]) {
        if self.tracked.is_empty() {
            return;
        }
        for r in stored {
            let key = (r.service.hostname.clone(), r.service.id.clone());
            if let Some(t) = self.tracked.get_mut(&key)
                && parse_node(&r.service.hostname) != Some(id)
            {
                t.arrivals.push(self.now - t.since);
            }
        }
    }

    fn push_event(&mut self, at: Micros, ev: Event) {
        let seq = self.next_event;
        self.next_event += 1;
        self.events.push(Reverse((at, seq)));
        self.payloads.insert(seq, ev);
    }

    fn schedule_wake(&mut self, id: u32) {
        let node = &self.nodes[id as usize];
        let Some(core) = &node.core else {
            return;
        };
        let at = core.next_deadline().min(node.next_app).max(self.now);
        if at < node.wake_at || node.wake_at < self.now {
            self.nodes[id as usize].wake_at = at;
            self.push_event(at, Event::Wake { node: id });
        }
    }

    /// Moves a node's outputs onto the network and acts on member changes.
    fn route(&mut self, id: u32) {
        while let Some(out) = self.nodes[id as usize]
            .core
            .as_mut()
            .and_then(|c| c.poll_output())
        {
            match out {
                Output::Datagram { to, payload } => {
                    let node = &mut self.nodes[id as usize];
                    node.bytes_out += (payload.len() + ENVELOPE) as u64;
                    node.packets_out += 1;
                    let up = self.nodes.get(to as usize).is_some_and(SimNode::is_up);
                    if let Some(d) = self.net.datagram(&mut self.rng, id, to)
                        && up
                    {
                        self.push_event(
                            self.now + d,
                            Event::Datagram {
                                to,
                                from: id,
                                payload,
                            },
                        );
                    }
                }
                Output::Stream { to, req, payload } => {
                    self.nodes[id as usize].bytes_out += (payload.len() + ENVELOPE) as u64;
                    let life = self.nodes[id as usize].life;
                    let reachable = self.nodes.get(to as usize).is_some_and(SimNode::is_up)
                        && self.net.connected(id, to);
                    if reachable {
                        let d = self.net.delay(&mut self.rng);
                        self.push_event(
                            self.now + d,
                            Event::StreamReq {
                                to,
                                from: id,
                                from_life: life,
                                req,
                                payload,
                            },
                        );
                    } else {
                        self.push_event(
                            self.now + CONNECT_TIMEOUT,
                            Event::StreamResp {
                                to: id,
                                life,
                                req,
                                payload: None,
                            },
                        );
                    }
                }
                Output::Member { key, state, was } => {
                    // Also for members first learned as already down: a peer may hand
                    // us their records before it hands us their death.
                    if !state.is_live() {
                        let now = self.now_of(id);
                        let node = &mut self.nodes[id as usize];
                        node.catalog.tombstone_announcer(&key.announcer(), now);
                        if let Some(t) = self.downs.get_mut(&key)
                            && was.is_some_and(State::is_live)
                        {
                            t.arrivals.push(self.now - t.since);
                        }
                    }
                }
            }
        }
        self.schedule_wake(id);
    }

    /// Runs until virtual time `until` (microseconds).
    pub fn run_until(&mut self, until: Micros) {
        while let Some(&Reverse((at, seq))) = self.events.peek() {
            if at > until {
                break;
            }
            self.events.pop();
            let Some(ev) = self.payloads.remove(&seq) else {
                continue;
            };
            self.now = at;
            self.events_processed += 1;
            let touched = self.dispatch(ev);
            if let (Some(id), true) = (touched, self.checker.is_some()) {
                self.check_node(id);
            }
        }
        self.now = self.now.max(until);
    }

    fn dispatch(&mut self, ev: Event) -> Option<u32> {
        match ev {
            Event::Wake { node } => {
                let n = &self.nodes[node as usize];
                if n.wake_at != self.now || !n.is_up() {
                    return None;
                }
                self.nodes[node as usize].wake_at = Micros::MAX;
                if self.now >= self.nodes[node as usize].next_app {
                    self.app_tick(node);
                }
                self.with_node(node, |core, cat| core.tick(cat.now_us, cat));
                Some(node)
            }
            Event::Datagram { to, from, payload } => {
                if !self.nodes[to as usize].is_up() {
                    return None;
                }
                self.nodes[to as usize].bytes_in += (payload.len() + ENVELOPE) as u64;
                let r = self.with_node(to, |core, cat| {
                    core.handle_datagram(from, &payload, cat.now_us, cat)
                });
                if let Some(Err(e)) = r {
                    panic!("node {to} refused a datagram from {from}: {e}");
                }
                Some(to)
            }
            Event::StreamReq {
                to,
                from,
                from_life,
                req,
                payload,
            } => {
                self.nodes[to as usize].bytes_in += (payload.len() + ENVELOPE) as u64;
                let reply = self
                    .with_node(to, |core, cat| {
                        core.handle_stream(from, &payload, cat.now_us, cat)
                    })
                    .and_then(Result::ok);
                let ok = reply.is_some() && self.net.connected(to, from);
                if let Some(r) = &reply {
                    self.nodes[to as usize].bytes_out += (r.len() + ENVELOPE) as u64;
                }
                let d = if ok {
                    self.net.delay(&mut self.rng)
                } else {
                    CONNECT_TIMEOUT
                };
                self.push_event(
                    self.now + d,
                    Event::StreamResp {
                        to: from,
                        life: from_life,
                        req,
                        payload: reply.filter(|_| ok),
                    },
                );
                Some(to)
            }
            Event::StreamResp {
                to,
                life,
                req,
                payload,
            } => {
                let n = &self.nodes[to as usize];
                if n.life != life || !n.is_up() {
                    return None;
                }
                if let Some(p) = &payload {
                    self.nodes[to as usize].bytes_in += (p.len() + ENVELOPE) as u64;
                }
                let r = self.with_node(to, |core, cat| {
                    core.handle_stream_reply(req, payload.as_deref(), cat.now_us, cat)
                });
                if let Some(Err(e)) = r {
                    panic!("node {to} refused a stream reply: {e}");
                }
                Some(to)
            }
        }
    }

    /// What the daemon's other tasks do each second: discovery sync, member refresh,
    /// expiry every other second.
    fn app_tick(&mut self, id: u32) {
        let now = self.now_of(id);
        let node = &mut self.nodes[id as usize];
        node.next_app = self.now + 1_000_000;
        node.app_ticks += 1;
        let Some(core) = &node.core else {
            return;
        };
        let mut stored = Vec::new();
        if node.local_dirty || !node.local.is_empty() {
            node.local_dirty = false;
            let applied = node.catalog.sync_local(node.local.clone(), now);
            stored = applied.stored;
        }
        if !node.catalog.state().servers.is_empty() {
            let live: Vec<String> = node
                .catalog
                .state()
                .servers
                .keys()
                .filter(|h| {
                    parse_node(h)
                        .is_some_and(|k| core.members().get(&k).is_some_and(|m| m.state.is_live()))
                })
                .cloned()
                .collect();
            for h in live {
                node.catalog.refresh_announcer(&h, now.mono);
            }
            if node.app_ticks.is_multiple_of(2) {
                node.catalog.expire(now);
            }
        }
        if !stored.is_empty() {
            for r in &stored {
                let key = (r.service.hostname.clone(), r.service.id.clone());
                if let Some(t) = self.tracked.get_mut(&key) {
                    t.since = self.now;
                    t.arrivals.clear();
                }
            }
            let now_us = self.now;
            if let Some(core) = self.nodes[id as usize].core.as_mut() {
                core.local_records(stored, now_us);
            }
            self.route(id);
        }
    }

    fn check_node(&mut self, id: u32) {
        let Some(mut checker) = self.checker.take() else {
            return;
        };
        checker.observe(self, id);
        self.checker = Some(checker);
    }

    // ----- faults and workload ---------------------------------------------------------

    /// Replaces a node's local services (applied at its next application tick).
    pub fn set_local(&mut self, id: u32, services: Vec<Service>) {
        let node = &mut self.nodes[id as usize];
        node.local = services;
        node.local_dirty = true;
        node.next_app = node.next_app.min(self.now);
        self.schedule_wake(id);
    }

    /// Times how long the next local version of (host, id) takes to reach other nodes.
    pub fn track(&mut self, hostname: &str, id: &str) {
        self.tracked.insert(
            (hostname.to_string(), id.to_string()),
            Tracked {
                since: self.now,
                arrivals: Vec::new(),
            },
        );
    }

    pub fn crash(&mut self, id: u32) {
        let node = &mut self.nodes[id as usize];
        node.core = None;
        node.wake_at = Micros::MAX;
        if let Some(c) = &mut self.checker {
            c.crashed(id);
        }
    }

    pub fn track_down(&mut self, id: u32) {
        self.downs.insert(
            id,
            Tracked {
                since: self.now,
                arrivals: Vec::new(),
            },
        );
    }

    pub fn leave(&mut self, id: u32) {
        self.nodes[id as usize].left = true;
        let now = self.now;
        if let Some(core) = self.nodes[id as usize].core.as_mut() {
            core.leave(now);
        }
        self.route(id);
        self.check_node(id);
        // The process exits once its departure is out.
        self.nodes[id as usize].core = None;
        self.nodes[id as usize].wake_at = Micros::MAX;
    }

    /// Restarts a crashed (or departed) node with a fresh memory, joining via the seeds.
    pub fn restart(&mut self, id: u32) {
        let node = &mut self.nodes[id as usize];
        node.core = None;
        node.next_app = self.now;
        node.wake_at = Micros::MAX;
        self.boot(id, true);
    }

    /// Delivers a datagram payload (after the envelope) to `to` now, as if from the node
    /// at address `from`: forged input for the attack scenarios.
    pub fn inject(&mut self, to: u32, from: u32, payload: Vec<u8>) {
        let now = self.now;
        self.push_event(now, Event::Datagram { to, from, payload });
    }

    pub fn set_skew(&mut self, id: u32, skew: Duration, ahead: bool) {
        let ns = skew.as_nanos() as i64;
        self.nodes[id as usize].skew_ns = if ahead { ns } else { -ns };
    }

    pub fn up_nodes(&self) -> impl Iterator<Item = &SimNode> {
        self.nodes.iter().filter(|n| n.is_up() && !n.left)
    }

    pub fn total_bytes(&self) -> u64 {
        self.nodes.iter().map(|n| n.bytes_out + n.bytes_in).sum()
    }
}

/// The catalog port plus the node's virtual time, handed to core calls.
pub struct PortNow<'a> {
    inner: SimCatalog<'a>,
    pub now_us: Micros,
}

impl CatalogPort for PortNow<'_> {
    fn merge(&mut self, announcer: &str, records: Vec<Service>) -> Vec<Record> {
        self.inner.merge(announcer, records)
    }
    fn fingerprints(&self) -> Vec<(String, Fingerprint)> {
        self.inner.fingerprints()
    }
    fn host_records(&self, host: &str) -> Vec<Record> {
        self.inner.host_records(host)
    }
}
