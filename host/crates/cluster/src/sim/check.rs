//! Invariants checked after every simulated event, and convergence checked after heal.
//!
//! * **Nobody invents a version** (no resurrection): every (generation, incarnation) any
//!   node holds for a member was issued by that member. A crashed member can therefore
//!   never come back alive: only the member itself can refute its death.
//! * **Versions are monotonic**: a node's view of a member's (generation, incarnation)
//!   never decreases; a node's copy of a record never moves to an older `Updated`.
//! * **Convergence after heal** ([`converged`]): every live node sees every other live
//!   node alive at its current generation, no down node as live, and exactly the live
//!   nodes' own records as visible services, at the same versions.

use super::{Sim, node_name};
use sidecar_catalog::Timestamp;
use std::collections::{BTreeMap, HashMap};

#[derive(Default, Debug)]
pub struct Checker {
    issued: HashMap<u32, (u64, u32)>,
    seen: HashMap<(u32, u32), (u64, u32)>,
    records: HashMap<(u32, String, String), Timestamp>,
    pub violations: Vec<String>,
    pub checks: u64,
}

impl Checker {
    pub fn booted(&mut self, id: u32, generation: u64) {
        let e = self.issued.entry(id).or_insert((generation, 0));
        *e = (*e).max((generation, 0));
        self.seen.retain(|(o, _), _| *o != id);
        self.records.retain(|(o, _, _), _| *o != id);
    }

    pub fn crashed(&mut self, _id: u32) {}

    fn violation(&mut self, s: String) {
        if self.violations.len() < 20 {
            self.violations.push(s);
        }
    }

    pub fn observe(&mut self, sim: &Sim, id: u32) {
        self.checks += 1;
        let node = &sim.nodes[id as usize];
        let Some(core) = &node.core else {
            return;
        };
        let own = (core.generation(), core.incarnation());
        let e = self.issued.entry(id).or_insert(own);
        *e = (*e).max(own);
        let mut found = Vec::new();
        for m in core.members().iter() {
            let v = (m.generation, m.inc);
            let issued = self.issued.get(&m.key).copied().unwrap_or((0, 0));
            if v > issued {
                found.push(format!(
                    "t={}us: n{id} holds n{} at {v:?} ({:?}) but it only issued {issued:?}",
                    sim.now, m.key, m.state
                ));
            }
            if let Some(prev) = self.seen.insert((id, m.key), v)
                && prev > v
            {
                found.push(format!(
                    "t={}us: n{id}'s view of n{} went back from {prev:?} to {v:?}",
                    sim.now, m.key
                ));
            }
        }
        for svc in node.catalog.state().services() {
            let key = (id, svc.hostname.clone(), svc.id.clone());
            if let Some(prev) = self.records.insert(key, svc.updated)
                && prev > svc.updated
            {
                found.push(format!(
                    "t={}us: n{id}'s record {}/{} went back in time",
                    sim.now, svc.hostname, svc.id
                ));
            }
        }
        for f in found {
            self.violation(f);
        }
    }
}

/// Checks that the live nodes agree (see the module docs).
pub fn converged(sim: &Sim) -> Result<(), String> {
    let live: Vec<u32> = sim.up_nodes().map(|n| n.id).collect();
    let expected: BTreeMap<(String, String), (Timestamp, u8)> = live
        .iter()
        .flat_map(|&b| {
            let host = node_name(b);
            sim.nodes[b as usize]
                .catalog
                .state()
                .servers
                .get(&host)
                .map(|s| {
                    s.services
                        .values()
                        .filter(|s| !s.is_tombstone())
                        .map(|s| {
                            (
                                (s.hostname.clone(), s.id.clone()),
                                (s.updated, s.status.code()),
                            )
                        })
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
        .collect();
    for &a in &live {
        let node = &sim.nodes[a as usize];
        let Some(core) = &node.core else { continue };
        for other in &sim.nodes {
            if other.id == a {
                continue;
            }
            let view = core.members().get(&other.id);
            match (&other.core, other.left) {
                (Some(oc), false) => {
                    let ok = view.is_some_and(|m| {
                        m.state == crate::wire::State::Alive && m.generation == oc.generation()
                    });
                    if !ok {
                        return Err(format!(
                            "n{a} sees live n{} as {:?} (its generation {})",
                            other.id,
                            view.map(|m| (m.state, m.generation, m.inc)),
                            oc.generation()
                        ));
                    }
                }
                _ => {
                    if view.is_some_and(|m| m.state.is_live()) {
                        return Err(format!("n{a} still sees down n{} as live", other.id));
                    }
                }
            }
        }
        let visible: BTreeMap<(String, String), (Timestamp, u8)> = node
            .catalog
            .state()
            .services()
            .filter(|s| !s.is_tombstone())
            .map(|s| {
                (
                    (s.hostname.clone(), s.id.clone()),
                    (s.updated, s.status.code()),
                )
            })
            .collect();
        if visible != expected {
            let missing: Vec<_> = expected
                .keys()
                .filter(|k| !visible.contains_key(*k))
                .collect();
            let extra: Vec<_> = visible
                .keys()
                .filter(|k| !expected.contains_key(*k))
                .collect();
            return Err(format!(
                "n{a}'s catalog differs: missing {missing:?}, extra {extra:?}, or versions differ"
            ));
        }
    }
    Ok(())
}
