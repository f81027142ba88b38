//! The answer index: every name the DNS interface answers for, with its records already
//! in wire form, rebuilt from each catalog snapshot and member list. A query is one hash
//! lookup and a few copies; nothing about the catalog is computed on the query path.
//!
//! Names (all under the domain, matched case-insensitively):
//!
//! * sidecar-dns's: `_<ServicePort>._<service>._<tcp|udp>` SRV (priority 0, weight 10)
//!   and TXT, and `<ServicePort>.<tcp|udp>.<service>.<ID>.a` A/AAAA, the SRV targets;
//! * Consul's: `<service>.service` A/AAAA and SRV, `<ServicePort>.<service>.service`
//!   (the ServicePort plays the part of a Consul tag) and RFC 2782
//!   `_<service>._<tcp|udp>.service` SRV (priority 1, weight 1, targets the `.a` names);
//! * `<member>.node` A/AAAA for live cluster members;
//! * the apex: SOA and NS (`ns.<domain>`, the advertise IP).
//!
//! Only ALIVE records are indexed. Every ancestor of a name between it and the apex
//! exists as an empty node, so those get NODATA rather than NXDOMAIN (RFC 8020).

use sidecar_catalog::{PortKind, ServicesState, Status};
use sidecar_cluster::MemberList;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use xxhash_rust::xxh3::Xxh3DefaultBuilder;

/// Record types we hold (wire codes).
pub const T_A: u16 = 1;
pub const T_NS: u16 = 2;
pub const T_SOA: u16 = 6;
pub const T_TXT: u16 = 16;
pub const T_AAAA: u16 = 28;
pub const T_SRV: u16 = 33;
const CLASS_IN: u16 = 1;

/// SOA timers (seconds): nobody transfers this zone, so they only need to be sane.
const SOA_REFRESH: u32 = 3600;
const SOA_RETRY: u32 = 600;
const SOA_EXPIRE: u32 = 86400;

/// What the index is built with (from the DNS settings).
#[derive(Debug, Clone)]
pub struct IndexConfig {
    /// Lowercase, no trailing dot: `sidecar.local`.
    pub domain: String,
    pub ttl: u32,
    /// Answered for `ns.<domain>`.
    pub advertise_ip: Option<IpAddr>,
}

/// Resource records of one type at one name, encoded without their owner name
/// (type, class, TTL, length, data): the owner is a pointer to the question.
#[derive(Debug, Default, Clone)]
pub struct RrSet {
    bytes: Vec<u8>,
    ends: Vec<u32>,
}

impl RrSet {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The `i`th record's bytes.
    pub fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.bytes[start..self.ends[i] as usize]
    }

    fn push(&mut self, rr: &[u8]) {
        self.bytes.extend_from_slice(rr);
        self.ends.push(self.bytes.len() as u32);
    }

    fn shrink(&mut self) {
        self.bytes.shrink_to_fit();
        self.ends.shrink_to_fit();
    }
}

/// Everything at one name.
#[derive(Debug, Default)]
pub struct Node {
    pub sets: Vec<(u16, RrSet)>,
    /// Complete records (owner included) for the additional section: the addresses of
    /// the SRV targets.
    pub glue: RrSet,
}

impl Node {
    pub fn set(&self, rtype: u16) -> Option<&RrSet> {
        self.sets.iter().find(|(t, _)| *t == rtype).map(|(_, s)| s)
    }

    fn set_mut(&mut self, rtype: u16) -> &mut RrSet {
        let i = match self.sets.iter().position(|(t, _)| *t == rtype) {
            Some(i) => i,
            None => {
                self.sets.push((rtype, RrSet::default()));
                self.sets.len() - 1
            }
        };
        &mut self.sets[i].1
    }

    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }
}

type NodeMap = HashMap<Box<[u8]>, Node, Xxh3DefaultBuilder>;

/// Lowercase service name -> the (hostname, ID) of its ALIVE instances in the state a
/// full build was made from: what an overlay needs to rebuild one name without walking
/// the catalog.
type ByName = HashMap<String, Vec<(String, String)>, Xxh3DefaultBuilder>;

/// More changed service names than this since the last full build: build in full
/// rather than overlay.
const MAX_OVERLAY_NAMES: usize = 512;

/// The immutable answer index of one catalog generation: the nodes of the last full
/// build, and an overlay with the nodes of the service names that changed since (a full
/// build of 10,000 services takes long enough that a drain would wait for it; the
/// overlay is built in well under a millisecond and the next full build absorbs it).
#[derive(Debug)]
pub struct Index {
    /// The domain in wire form, lowercase (`\x07sidecar\x05local\x00`).
    pub apex: Vec<u8>,
    pub apex_labels: usize,
    /// Relative name (wire labels, lowercase, no root) -> node. The apex is the empty key.
    nodes: Arc<NodeMap>,
    /// Nodes that replace `nodes`' (an empty node hides a name that went away).
    overlay: NodeMap,
    /// The instances behind `nodes`, by service name.
    by_name: Arc<ByName>,
    /// The apex SOA without its owner, for the authority section of negative answers.
    pub soa: Vec<u8>,
    /// Catalog generation (the SOA serial).
    pub generation: u64,
    /// Names the catalog had that can't be DNS names (label over 63 bytes, name over
    /// 255), left out.
    pub skipped: usize,
}

impl Index {
    /// An index with only the apex: before the first snapshot, and in tests.
    pub fn empty(cfg: &IndexConfig) -> Index {
        Builder::new(cfg, 0).finish()
    }

    /// Builds the index of a catalog snapshot and member list.
    pub fn build(
        cfg: &IndexConfig,
        generation: u64,
        state: &ServicesState,
        members: &MemberList,
    ) -> Index {
        let mut b = Builder::new(cfg, generation);
        let mut by_name = ByName::default();
        for svc in state.services().filter(|s| s.status == Status::Alive) {
            b.service(svc);
            by_name
                .entry(svc.name.to_ascii_lowercase())
                .or_default()
                .push((svc.hostname.clone(), svc.id.clone()));
        }
        for m in members.live() {
            b.address(&format!("{}.node", m.name), m.address.ip());
        }
        let mut index = b.finish();
        index.by_name = Arc::new(by_name);
        index
    }

    /// This index, built from `base_state`, brought up to `state` (same members), given
    /// the (hostname, ID) of every record stored or removed in between (the catalog's
    /// journal): the service names those records had or have are rebuilt into the
    /// overlay. The cost follows the changes, not the catalog. `None` when too many
    /// names changed for an overlay to pay.
    pub fn with_changes(
        &self,
        cfg: &IndexConfig,
        base_state: &ServicesState,
        generation: u64,
        state: &ServicesState,
        touched: &[(String, String)],
    ) -> Option<Index> {
        let alive = |st: &'_ ServicesState, (h, id): &(String, String)| {
            st.get(h, id)
                .filter(|s| s.status == Status::Alive)
                .map(|s| s.name.to_ascii_lowercase())
        };
        let mut changed: HashSet<String, Xxh3DefaultBuilder> = HashSet::default();
        for key in touched {
            changed.extend(alive(base_state, key));
            changed.extend(alive(state, key));
            if changed.len() > MAX_OVERLAY_NAMES {
                return None;
            }
        }
        // The touched records that are ALIVE now, by name.
        let mut touched_now: HashMap<String, Vec<&(String, String)>, Xxh3DefaultBuilder> =
            HashMap::default();
        for key in touched {
            if let Some(name) = alive(state, key) {
                touched_now.entry(name).or_default().push(key);
            }
        }
        let mut now = Builder::new(cfg, generation);
        let mut before = Builder::new(cfg, self.generation);
        let mut keys: Vec<&(String, String)> = Vec::new();
        for name in &changed {
            let base_keys = self.by_name.get(name).map_or(&[][..], Vec::as_slice);
            // Then: the full build's instances. Now: those still ALIVE under this name
            // and the touched records that are, in catalog order (as a full build).
            for s in base_keys.iter().filter_map(|(h, id)| base_state.get(h, id)) {
                before.service(s);
            }
            keys.clear();
            keys.extend(base_keys);
            keys.extend(touched_now.get(name).into_iter().flatten());
            keys.sort_unstable();
            keys.dedup();
            for (h, id) in &keys {
                if let Some(s) = state.get(h, id)
                    && s.status == Status::Alive
                    && s.name.eq_ignore_ascii_case(name)
                {
                    now.service(s);
                }
            }
        }
        let soa = now.soa.clone();
        let now = now.nodes;
        let mut overlay = NodeMap::default();
        for (key, node) in now {
            // An empty ancestor must not hide what other names put there.
            if !node.is_empty() || !self.nodes.contains_key(&key) {
                overlay.insert(key, node);
            }
        }
        for (key, node) in before.nodes {
            if !node.is_empty() && !overlay.contains_key(&key) {
                // Gone: NODATA rather than NXDOMAIN, as it may still be an ancestor of
                // another name until the next full build.
                overlay.insert(key, Node::default());
            }
        }
        Some(Index {
            apex: self.apex.clone(),
            apex_labels: self.apex_labels,
            nodes: self.nodes.clone(),
            overlay,
            by_name: self.by_name.clone(),
            soa,
            generation,
            skipped: self.skipped,
        })
    }

    pub fn get(&self, key: &[u8]) -> Option<&Node> {
        if !self.overlay.is_empty()
            && let Some(n) = self.overlay.get(key)
        {
            return Some(n);
        }
        self.nodes.get(key)
    }

    /// Names held by the full build (empty non-terminals included).
    pub fn names(&self) -> usize {
        self.nodes.len()
    }

    /// Names in the overlay.
    pub fn overlay_names(&self) -> usize {
        self.overlay.len()
    }
}

struct Builder<'c> {
    cfg: &'c IndexConfig,
    apex: Vec<u8>,
    apex_labels: usize,
    generation: u64,
    nodes: NodeMap,
    soa: Vec<u8>,
    skipped: usize,
    /// Records already at a node (addresses, texts, glue): each goes in once.
    seen: HashSet<Box<[u8]>, Xxh3DefaultBuilder>,
}

impl<'c> Builder<'c> {
    fn new(cfg: &'c IndexConfig, generation: u64) -> Self {
        let apex = name_wire(&cfg.domain, &[]).unwrap_or_else(|| vec![0]);
        let apex_labels = cfg.domain.split('.').filter(|l| !l.is_empty()).count();
        let mut b = Builder {
            cfg,
            apex: apex.clone(),
            apex_labels,
            generation,
            nodes: NodeMap::default(),
            soa: Vec::new(),
            skipped: 0,
            seen: HashSet::default(),
        };
        let ns = name_wire("ns", &apex).unwrap_or_default();
        let hostmaster = name_wire("hostmaster", &apex).unwrap_or_default();
        let mut soa = Vec::with_capacity(ns.len() + hostmaster.len() + 20);
        soa.extend_from_slice(&ns);
        soa.extend_from_slice(&hostmaster);
        for v in [
            generation as u32,
            SOA_REFRESH,
            SOA_RETRY,
            SOA_EXPIRE,
            cfg.ttl,
        ] {
            soa.extend_from_slice(&v.to_be_bytes());
        }
        let soa_rr = rr(T_SOA, cfg.ttl, &soa);
        b.node(Vec::new()).set_mut(T_SOA).push(&soa_rr);
        b.soa = soa_rr;
        let ns_rr = rr(T_NS, cfg.ttl, &ns);
        b.node(Vec::new()).set_mut(T_NS).push(&ns_rr);
        if let Some(ip) = cfg.advertise_ip {
            b.address("ns", ip);
        }
        b
    }

    fn finish(mut self) -> Index {
        for node in self.nodes.values_mut() {
            for (_, set) in &mut node.sets {
                set.shrink();
            }
            node.glue.shrink();
        }
        Index {
            apex: self.apex,
            apex_labels: self.apex_labels,
            nodes: Arc::new(self.nodes),
            overlay: NodeMap::default(),
            by_name: Arc::default(),
            soa: self.soa,
            generation: self.generation,
            skipped: self.skipped,
        }
    }

    /// True the first time `data` of `kind` is added at `key`.
    fn first_time(&mut self, key: &[u8], kind: u16, data: &[u8]) -> bool {
        let mut k = Vec::with_capacity(key.len() + data.len() + 3);
        k.push(key.len() as u8);
        k.extend_from_slice(key);
        k.extend_from_slice(&kind.to_be_bytes());
        k.extend_from_slice(data);
        self.seen.insert(k.into_boxed_slice())
    }

    /// The node at a relative key, created with its empty ancestors.
    fn node(&mut self, key: Vec<u8>) -> &mut Node {
        if !self.nodes.contains_key(key.as_slice()) {
            // Ancestors: drop labels from the front until the apex.
            let mut at = 0;
            while at < key.len() {
                at += 1 + key[at] as usize;
                let parent = &key[at.min(key.len())..];
                if self.nodes.contains_key(parent) {
                    break;
                }
                self.nodes
                    .insert(parent.to_vec().into_boxed_slice(), Node::default());
            }
        }
        self.nodes.entry(key.into_boxed_slice()).or_default()
    }

    /// The relative key of `name` (dot-separated, under the domain), if it is a valid
    /// DNS name.
    fn key(&mut self, name: &str) -> Option<Vec<u8>> {
        let key = relative_wire(name);
        match key {
            Some(k) if k.len() + self.apex.len() <= 255 => Some(k),
            _ => {
                self.skipped += 1;
                None
            }
        }
    }

    /// An A or AAAA record at `name`, once per address.
    fn address(&mut self, name: &str, ip: IpAddr) {
        let Some(key) = self.key(name) else { return };
        let (rtype, data) = address_rdata(ip);
        if !self.first_time(&key, rtype, &data) {
            return;
        }
        let rr = rr(rtype, self.cfg.ttl, &data);
        self.node(key).set_mut(rtype).push(&rr);
    }

    /// An SRV record at `name` pointing at `target` (relative), with the target's
    /// address as glue.
    fn srv(&mut self, name: &str, prio_weight: (u16, u16), port: u16, target: &[u8], ip: IpAddr) {
        let Some(key) = self.key(name) else { return };
        let mut data = Vec::with_capacity(6 + target.len() + self.apex.len());
        data.extend_from_slice(&prio_weight.0.to_be_bytes());
        data.extend_from_slice(&prio_weight.1.to_be_bytes());
        data.extend_from_slice(&port.to_be_bytes());
        data.extend_from_slice(target);
        data.extend_from_slice(&self.apex);
        let srv = rr(T_SRV, self.cfg.ttl, &data);
        // The target's address record, owner included.
        let (rtype, addr) = address_rdata(ip);
        let mut glue = Vec::with_capacity(target.len() + self.apex.len() + 10 + addr.len());
        glue.extend_from_slice(target);
        glue.extend_from_slice(&self.apex);
        glue.extend_from_slice(&rr(rtype, self.cfg.ttl, &addr));
        let glue_new = self.first_time(&key, 0, &glue);
        let node = self.node(key);
        node.set_mut(T_SRV).push(&srv);
        if glue_new {
            node.glue.push(&glue);
        }
    }

    fn txt(&mut self, name: &str, text: &str) {
        let Some(key) = self.key(name) else { return };
        let bytes = text.as_bytes();
        let bytes = &bytes[..bytes.len().min(255)];
        if !self.first_time(&key, T_TXT, bytes) {
            return;
        }
        let mut data = Vec::with_capacity(1 + bytes.len());
        data.push(bytes.len() as u8);
        data.extend_from_slice(bytes);
        let rr = rr(T_TXT, self.cfg.ttl, &data);
        self.node(key).set_mut(T_TXT).push(&rr);
    }

    fn service(&mut self, svc: &sidecar_catalog::Service) {
        let name = &svc.name;
        for p in &svc.ports {
            let Ok(ip) = p.ip.parse::<IpAddr>() else {
                continue;
            };
            let proto = match p.kind {
                PortKind::Tcp => "tcp",
                PortKind::Udp => "udp",
            };
            let sp = p.service_port;
            let target_name = format!("{sp}.{proto}.{name}.{}.a", svc.id);
            let Some(target) = self.key(&target_name) else {
                continue;
            };
            self.address(&target_name, ip);
            // sidecar-dns.
            let sdns = format!("_{sp}._{name}._{proto}");
            self.srv(&sdns, (0, 10), p.port, &target, ip);
            self.txt(&sdns, &format!("Sidecar service {name} port {sp}"));
            // Consul.
            for consul in [format!("{name}.service"), format!("{sp}.{name}.service")] {
                self.address(&consul, ip);
                self.srv(&consul, (1, 1), p.port, &target, ip);
            }
            self.srv(
                &format!("_{name}._{proto}.service"),
                (1, 1),
                p.port,
                &target,
                ip,
            );
        }
    }
}

/// One record without its owner: type, class IN, TTL, length, data.
fn rr(rtype: u16, ttl: u32, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(10 + data.len());
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
    out
}

fn address_rdata(ip: IpAddr) -> (u16, Vec<u8>) {
    match ip {
        IpAddr::V4(v4) => (T_A, v4.octets().to_vec()),
        IpAddr::V6(v6) => (T_AAAA, v6.octets().to_vec()),
    }
}

/// `a.b` -> `\x01a\x01b` (lowercase, no root), or `None` for an empty label or one over
/// 63 bytes.
pub fn relative_wire(name: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(name.len() + 1);
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return None;
        }
        out.push(label.len() as u8);
        out.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
    }
    Some(out)
}

/// A full name in wire form: `name`'s labels followed by `suffix` (itself ending in the
/// root), or just the root when `suffix` is empty.
pub fn name_wire(name: &str, suffix: &[u8]) -> Option<Vec<u8>> {
    let mut out = relative_wire(name)?;
    if suffix.is_empty() {
        out.push(0);
    } else {
        out.extend_from_slice(suffix);
    }
    (out.len() <= 255).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidecar_catalog::{Port, Service};

    pub(crate) fn cfg() -> IndexConfig {
        IndexConfig {
            domain: "sidecar.local".into(),
            ttl: 0,
            advertise_ip: Some("127.0.0.1".parse().expect("ip")),
        }
    }

    fn svc(id: &str, name: &str, ip: &str, status: Status) -> Service {
        Service {
            id: id.into(),
            name: name.into(),
            hostname: "host1".into(),
            status,
            ports: vec![Port {
                kind: PortKind::Tcp,
                port: 32768,
                service_port: 8080,
                ip: ip.into(),
            }],
            ..Service::default()
        }
    }

    fn state(services: Vec<Service>) -> ServicesState {
        let mut s = ServicesState::new("host1", "default");
        let server = s
            .servers
            .entry("host1".into())
            .or_insert_with(|| sidecar_catalog::Server::new("host1"));
        for svc in services {
            server.services.insert(svc.id.clone(), svc);
        }
        s
    }

    fn key(name: &str) -> Vec<u8> {
        relative_wire(name).expect("valid")
    }

    #[test]
    fn alive_instances_get_every_name_shape_and_others_none() {
        let st = state(vec![
            svc("abc", "Web", "10.0.0.1", Status::Alive),
            svc("def", "Web", "10.0.0.2", Status::Draining),
        ]);
        let idx = Index::build(&cfg(), 7, &st, &MemberList::default());
        for name in [
            "_8080._web._tcp",
            "web.service",
            "8080.web.service",
            "_web._tcp.service",
        ] {
            let node = idx.get(&key(name)).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(node.set(T_SRV).map(RrSet::len), Some(1), "{name}");
            assert_eq!(node.glue.len(), 1, "{name}");
        }
        assert_eq!(
            idx.get(&key("8080.tcp.web.abc.a"))
                .and_then(|n| n.set(T_A))
                .map(|s| s.get(0)[10..].to_vec()),
            Some(vec![10, 0, 0, 1])
        );
        assert!(idx.get(&key("8080.tcp.web.def.a")).is_none(), "draining");
        // Empty non-terminals exist, without records.
        for name in ["tcp.web.abc.a", "abc.a", "a", "service", "_tcp.service"] {
            assert!(idx.get(&key(name)).is_some_and(Node::is_empty), "{name}");
        }
        assert!(idx.get(&[]).and_then(|n| n.set(T_SOA)).is_some());
    }

    #[test]
    fn an_overlay_follows_changes_until_the_next_full_build() {
        let before = state(vec![
            svc("abc", "web", "10.0.0.1", Status::Alive),
            svc("def", "web", "10.0.0.2", Status::Alive),
            svc("ghi", "db", "10.0.0.3", Status::Alive),
        ]);
        let base = Index::build(&cfg(), 1, &before, &MemberList::default());
        // A change re-stamps the record (same `Updated`, same record).
        let mut drained = svc("abc", "web", "10.0.0.1", Status::Draining);
        drained.updated = drained.updated.add_nanos(1);
        let after = state(vec![
            drained,
            svc("def", "web", "10.0.0.2", Status::Alive),
            svc("jkl", "cache", "10.0.0.4", Status::Alive),
        ]);
        let idx = base
            .with_changes(&cfg(), &before, 2, &after, &touched(&before, &after))
            .expect("few changes");
        let a_of = |name: &str| {
            idx.get(&key(name))
                .and_then(|n| n.set(T_A))
                .map_or(0, RrSet::len)
        };
        assert_eq!(a_of("web.service"), 1, "the drained instance is gone");
        assert_eq!(a_of("cache.service"), 1, "a new service is there");
        assert_eq!(a_of("db.service"), 0, "a removed service is gone");
        assert!(idx.get(&key("db.service")).is_some_and(Node::is_empty));
        assert!(
            idx.get(&key("8080.tcp.web.abc.a"))
                .is_some_and(Node::is_empty)
        );
        assert_eq!(a_of("8080.tcp.web.def.a"), 1);
        // Untouched ancestors keep what the full build put there.
        assert!(idx.get(&key("a")).is_some());
        // A full build of the new state agrees on every name the overlay answers.
        let full = Index::build(&cfg(), 2, &after, &MemberList::default());
        for name in [
            "web.service",
            "cache.service",
            "_8080._web._tcp",
            "8080.tcp.web.def.a",
        ] {
            let count = |i: &Index| i.get(&key(name)).map(|n| n.sets.len());
            assert_eq!(count(&idx), count(&full), "{name}");
        }
        // Many changed names: a full build instead.
        let many: Vec<Service> = (0..=MAX_OVERLAY_NAMES)
            .map(|i| {
                svc(
                    &format!("s{i}"),
                    &format!("n{i}"),
                    "10.0.0.9",
                    Status::Alive,
                )
            })
            .collect();
        let many = state(many);
        assert!(
            base.with_changes(&cfg(), &before, 3, &many, &touched(&before, &many))
                .is_none()
        );
    }

    /// What the catalog's journal would list between two states: every record that
    /// differs or exists on one side only.
    fn touched(a: &ServicesState, b: &ServicesState) -> Vec<(String, String)> {
        let mut keys: Vec<(String, String)> = a
            .services()
            .chain(b.services())
            .filter(|s| a.get(&s.hostname, &s.id) != b.get(&s.hostname, &s.id))
            .map(|s| (s.hostname.clone(), s.id.clone()))
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    #[test]
    fn an_overlay_costs_the_changed_names_not_the_catalog() {
        // 2,000 instances of 500 names; one drained: only its name is rebuilt.
        let all: Vec<Service> = (0..2000)
            .map(|i| {
                svc(
                    &format!("id{i}"),
                    &format!("name{}", i % 500),
                    &format!("10.0.{}.{}", i / 250, i % 250 + 1),
                    Status::Alive,
                )
            })
            .collect();
        let before = state(all.clone());
        let base = Index::build(&cfg(), 1, &before, &MemberList::default());
        let mut after_all = all;
        after_all[7].status = Status::Draining;
        after_all[7].updated = after_all[7].updated.add_nanos(1);
        let after = state(after_all);
        let keys = touched(&before, &after);
        assert_eq!(keys.len(), 1);
        let idx = base
            .with_changes(&cfg(), &before, 2, &after, &keys)
            .expect("overlay");
        let a_of = |i: &Index, name: &str| {
            i.get(&key(name))
                .and_then(|n| n.set(T_A))
                .map_or(0, RrSet::len)
        };
        assert_eq!(a_of(&idx, "name7.service"), 3);
        assert_eq!(a_of(&base, "name7.service"), 4);
        assert_eq!(a_of(&idx, "name8.service"), 4);
        // Only name7's names are in the overlay (its .service, SRV and .a names).
        assert!(idx.overlay_names() < 20, "{}", idx.overlay_names());
    }

    #[test]
    fn names_that_cannot_be_dns_names_are_skipped() {
        let long = "x".repeat(64);
        let st = state(vec![svc("abc", &long, "10.0.0.1", Status::Alive)]);
        let idx = Index::build(&cfg(), 1, &st, &MemberList::default());
        assert!(idx.skipped > 0);
        assert!(idx.get(&key("abc.a")).is_none());
    }

    #[test]
    fn one_address_per_name_even_with_many_instances_on_it() {
        let st = state(vec![
            svc("a1", "web", "10.0.0.1", Status::Alive),
            svc("a2", "web", "10.0.0.1", Status::Alive),
        ]);
        let idx = Index::build(&cfg(), 1, &st, &MemberList::default());
        let node = idx.get(&key("web.service")).expect("node");
        assert_eq!(node.set(T_A).map(RrSet::len), Some(1));
        assert_eq!(node.set(T_SRV).map(RrSet::len), Some(2));
    }
}
