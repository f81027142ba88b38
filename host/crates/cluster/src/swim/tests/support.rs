//! Test support: one core under test (`ME`) with a manual clock, fake peers that speak
//! the wire format to it, and readers for what it sends. Peers are silent unless a test
//! makes them answer pings, so every probe outcome is the test's choice.

use super::super::{CatalogPort, Member, Micros, Output, Swim, SwimConfig};
use crate::wire::{self, Claim, Item, MemberUpdate, Msg, Packet, State, Stream, SyncDigest};
use sidecar_catalog::{Fingerprint, Record, Service};
use std::collections::BTreeSet;
use std::time::Duration;

/// Keys and addresses are integers, as in the simulator; a peer `k` lives at `addr(k)`.
pub type Key = u32;
pub type Update = MemberUpdate<Key, Key>;

pub const ME: Key = 1;
/// Our generation (the start of this life).
pub const GEN: u64 = 1_000;
/// Every fake peer's generation.
pub const PEER_GEN: u64 = 500;
pub const MS: Micros = 1_000;
pub const S: Micros = 1_000_000;

pub fn addr(k: Key) -> u32 {
    100 + k
}

pub fn micros(d: Duration) -> Micros {
    d.as_micros() as Micros
}

pub fn update(key: Key, generation: u64, inc: u32, state: State) -> Update {
    MemberUpdate {
        key,
        addr: addr(key),
        generation,
        inc,
        state,
        from: None,
    }
}

pub fn alive(key: Key) -> Update {
    update(key, PEER_GEN, 0, State::Alive)
}

/// `by` suspects `key` (at `PEER_GEN`, incarnation `inc`).
pub fn suspect(key: Key, inc: u32, by: Key) -> Update {
    MemberUpdate {
        from: Some(by),
        ..update(key, PEER_GEN, inc, State::Suspect)
    }
}

/// A ping for `target` without a claim.
pub fn ping(seq: u32, target: Key) -> Msg<Key, Key> {
    Msg::Ping {
        seq,
        target,
        claim: None,
    }
}

/// A request to ping `target` (at its address) for probe `seq`.
pub fn ping_req(seq: u32, target: Key) -> Msg<Key, Key> {
    Msg::PingReq {
        seq,
        target,
        addr: addr(target),
    }
}

/// A claim about us, in our current generation.
pub fn about_me(inc: u32, state: State) -> Update {
    update(ME, GEN, inc, state)
}

/// These tests are about membership: no records.
pub struct NoRecords;

impl CatalogPort for NoRecords {
    fn merge(&mut self, _: &str, _: Vec<Service>) -> Vec<Record> {
        Vec::new()
    }
    fn fingerprints(&self) -> Vec<(String, Fingerprint)> {
        Vec::new()
    }
    fn host_records(&self, _: &str) -> Vec<Record> {
        Vec::new()
    }
}

/// The core under test, the clock, and everything it sent since the last [`Node::take`].
pub struct Node {
    pub core: Swim<Key, Key>,
    pub now: Micros,
    /// Peers that ack pings addressed to them; the others never answer.
    answering: BTreeSet<Key>,
    log: Vec<(Micros, Output<Key, Key>)>,
}

impl Node {
    /// A core at time 0 that knows nobody and is not joined.
    pub fn unjoined(cfg: SwimConfig) -> Self {
        Node {
            core: Swim::new(cfg, ME, addr(ME), GEN, 0, 7),
            now: 0,
            answering: BTreeSet::new(),
            log: Vec::new(),
        }
    }

    /// A core (joined, no seeds) that learnt `peers` alive from their own gossip.
    pub fn with_config(cfg: SwimConfig, peers: &[Key]) -> Self {
        let mut n = Self::unjoined(cfg);
        n.core.join(Vec::new(), 0, &NoRecords);
        for &p in peers {
            n.gossip(p, &[alive(p)]);
        }
        n.take();
        n
    }

    pub fn with_peers(peers: &[Key]) -> Self {
        Self::with_config(SwimConfig::default(), peers)
    }

    pub fn cfg(&self) -> &SwimConfig {
        &self.core.cfg
    }

    /// From now on `peers` ack every ping addressed to them, at once.
    pub fn answer_pings(&mut self, peers: &[Key]) {
        self.answering.extend(peers);
    }

    /// A datagram from peer `from` (at `PEER_GEN`) carrying `msg` and member `items`.
    pub fn recv(&mut self, from: Key, msg: Msg<Key, Key>, items: &[Update]) {
        let mut payload = wire::encode_head(&from, PEER_GEN, &msg);
        for u in items {
            payload.extend(Item::<Key, Key>::Member(u.clone()).encode());
        }
        self.core
            .handle_datagram(addr(from), &payload, self.now, &mut NoRecords)
            .expect("a well-formed datagram");
        self.collect();
    }

    pub fn gossip(&mut self, from: Key, items: &[Update]) {
        self.recv(from, Msg::Gossip, items);
    }

    pub fn ack(&mut self, from: Key, seq: u32) {
        self.recv(from, Msg::Ack { seq }, &[]);
    }

    pub fn leave(&mut self) {
        self.core.leave(self.now);
        self.collect();
    }

    pub fn join(&mut self, seeds: &[Key]) {
        let seeds = seeds.iter().map(|&k| addr(k)).collect();
        self.core.join(seeds, self.now, &NoRecords);
        self.collect();
    }

    /// A stream request from peer `from`; returns our reply.
    pub fn stream(&mut self, from: Key, req: Stream<Key, Key>) -> Stream<Key, Key> {
        let reply = self
            .core
            .handle_stream(addr(from), &req.encode(), self.now, &mut NoRecords)
            .expect("a valid request");
        self.collect();
        Stream::decode(&reply).expect("a valid reply")
    }

    /// The reply to our stream request `req` (`None`: it failed).
    pub fn reply(&mut self, req: u64, reply: Option<Stream<Key, Key>>) {
        let bytes = reply.map(|r| r.encode());
        self.core
            .handle_stream_reply(req, bytes.as_deref(), self.now, &mut NoRecords)
            .expect("a valid reply");
        self.collect();
    }

    /// The driver loop: ticks at every deadline the core asks for up to `t`.
    pub fn run_until(&mut self, t: Micros) {
        assert!(t >= self.now, "the clock does not go back");
        for _ in 0..1_000_000 {
            let d = self.core.next_deadline().max(self.now);
            if d > t {
                self.now = t;
                return;
            }
            self.now = d;
            self.core.tick(d, &NoRecords);
            self.collect();
        }
        panic!("the core keeps asking for a tick at {}", self.now);
    }

    pub fn advance(&mut self, d: Micros) {
        self.run_until(self.now + d);
    }

    /// Runs to the next round-robin probe; returns the sequence number and target of
    /// its ping.
    pub fn run_to_probe(&mut self) -> (u32, Key) {
        let at = self.core.next_probe;
        self.run_until(at.saturating_sub(1).max(self.now));
        let in_flight: BTreeSet<u32> = self.core.probes.keys().copied().collect();
        let before = self.log.len();
        let started = self.core.stats().probes;
        self.run_until(at);
        assert!(self.core.stats().probes > started, "a probe started");
        // The round-robin ping is the first new one of the tick (a reconnect ping of the
        // same tick comes after it).
        let sent = Sent(self.log[before..].iter().map(copy).collect());
        let (_, seq, target, _) = *sent
            .pings()
            .iter()
            .find(|p| !in_flight.contains(&p.1))
            .expect("a round-robin ping");
        (seq, target)
    }

    /// Everything sent since the last call.
    pub fn take(&mut self) -> Sent {
        Sent(std::mem::take(&mut self.log))
    }

    pub fn state(&self, k: Key) -> Option<State> {
        self.core.members().get(&k).map(|m| m.state)
    }

    pub fn member(&self, k: Key) -> &Member<Key, Key> {
        self.core.members().get(&k).expect("a known member")
    }

    fn collect(&mut self) {
        let mut acks = Vec::new();
        while let Some(o) = self.core.poll_output() {
            if let Output::Datagram { to, payload } = &o
                && let Some(k) = to.checked_sub(100)
                && self.answering.contains(&k)
                && let Ok(p) = wire::decode_packet::<Key, Key>(payload)
                && let Msg::Ping { seq, target, .. } = p.msg
                && target == k
            {
                acks.push((k, seq));
            }
            self.log.push((self.now, o));
        }
        for (k, seq) in acks {
            self.ack(k, seq);
        }
    }
}

fn copy((at, o): &(Micros, Output<Key, Key>)) -> (Micros, Output<Key, Key>) {
    let o = match o {
        Output::Datagram { to, payload } => Output::Datagram {
            to: *to,
            payload: payload.clone(),
        },
        Output::Stream { to, req, payload } => Output::Stream {
            to: *to,
            req: *req,
            payload: payload.clone(),
        },
        Output::Member { key, state, was } => Output::Member {
            key: *key,
            state: *state,
            was: *was,
        },
    };
    (*at, o)
}

/// What the core sent, with the time it sent it.
pub struct Sent(pub Vec<(Micros, Output<Key, Key>)>);

/// A ping: (to, seq, target, claim).
pub type Ping = (u32, u32, Key, Option<Claim>);

impl Sent {
    /// Datagrams as (time, to, decoded packet).
    pub fn datagrams(&self) -> Vec<(Micros, u32, Packet<Key, Key>)> {
        self.0
            .iter()
            .filter_map(|(at, o)| match o {
                Output::Datagram { to, payload } => Some((
                    *at,
                    *to,
                    wire::decode_packet(payload).expect("the core sends valid datagrams"),
                )),
                _ => None,
            })
            .collect()
    }

    /// Primary messages other than plain gossip, as (to, message).
    pub fn msgs(&self) -> Vec<(u32, Msg<Key, Key>)> {
        self.datagrams()
            .into_iter()
            .filter(|(_, _, p)| p.msg != Msg::Gossip)
            .map(|(_, to, p)| (to, p.msg))
            .collect()
    }

    pub fn pings(&self) -> Vec<Ping> {
        self.msgs()
            .into_iter()
            .filter_map(|(to, m)| match m {
                Msg::Ping { seq, target, claim } => Some((to, seq, target, claim)),
                _ => None,
            })
            .collect()
    }

    /// Member updates about `key` carried by datagrams (eager, piggybacked or gossip),
    /// with the address each went to.
    pub fn items_about(&self, key: Key) -> Vec<(u32, Update)> {
        self.datagrams()
            .into_iter()
            .flat_map(|(_, to, p)| p.items.into_iter().map(move |i| (to, i)))
            .filter_map(|(to, i)| match i {
                Item::Member(u) if u.key == key => Some((to, u)),
                _ => None,
            })
            .collect()
    }

    /// `Output::Member` events as (key, state, was).
    pub fn member_events(&self) -> Vec<(Key, State, Option<State>)> {
        self.0
            .iter()
            .filter_map(|(_, o)| match o {
                Output::Member { key, state, was } => Some((*key, *state, *was)),
                _ => None,
            })
            .collect()
    }

    /// Stream requests as (time, to, req, decoded message).
    pub fn streams(&self) -> Vec<(Micros, u32, u64, Stream<Key, Key>)> {
        self.0
            .iter()
            .filter_map(|(at, o)| match o {
                Output::Stream { to, req, payload } => Some((
                    *at,
                    *to,
                    *req,
                    Stream::decode(payload).expect("the core sends valid streams"),
                )),
                _ => None,
            })
            .collect()
    }

    /// Anti-entropy openings as (time, to, req, digest).
    pub fn digests(&self) -> Vec<(Micros, u32, u64, SyncDigest<Key, Key>)> {
        self.streams()
            .into_iter()
            .filter_map(|(at, to, req, s)| match s {
                Stream::Digest(d) => Some((at, to, req, d)),
                _ => None,
            })
            .collect()
    }
}
