//! Records on broadcast trees: the eager push down the origin's tree, the lazy
//! announcements to members spread around the ranking, and grafts that repair what the
//! tree lost. One rule per test; a catalog that stores what is new to it.

use super::support::*;
use crate::swim::tree::item_id;
use crate::swim::{CatalogPort, Member, Swim, SwimConfig};
use crate::wire::records::tests::sample;
use crate::wire::{self, Item, Msg, State, WireRecord};
use sidecar_catalog::{Fingerprint, Record, Service};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Stores a record when it is new or differs from what it holds.
#[derive(Default)]
struct Recs(BTreeMap<(String, String), Service>);

impl CatalogPort for Recs {
    fn merge(&mut self, announcer: &str, records: Vec<Service>) -> Vec<Record> {
        let mut stored = Vec::new();
        for s in records {
            let key = (s.hostname.clone(), s.id.clone());
            if self.0.get(&key) != Some(&s) {
                self.0.insert(key, s.clone());
                stored.push(Record {
                    announcer: Arc::from(announcer),
                    service: s,
                });
            }
        }
        stored
    }
    fn fingerprints(&self) -> Vec<(String, Fingerprint)> {
        Vec::new()
    }
    fn host_records(&self, _: &str) -> Vec<Record> {
        Vec::new()
    }
}

fn record(host: Key, id: &str) -> WireRecord {
    WireRecord {
        announcer: format!("n{host}"),
        service: sample(&format!("n{host}"), id),
    }
}

fn item(r: &WireRecord) -> Vec<u8> {
    Item::<Key, Key>::Record(r.clone()).encode()
}

/// A core `me` that has every one of `0..n` alive in its table.
fn core(me: Key, n: u32, cfg: &SwimConfig) -> Swim<Key, Key> {
    let mut c = Swim::new(cfg.clone(), me, addr(me), GEN, 0, u64::from(me));
    c.preload_members(
        (0..n)
            .filter(|&k| k != me)
            .map(|k| Member {
                key: k,
                addr: addr(k),
                generation: PEER_GEN,
                inc: 0,
                state: State::Alive,
                since: 0,
            })
            .collect(),
    );
    c
}

/// Drains a core's datagrams as (to, packet).
fn sent(c: &mut Swim<Key, Key>) -> Vec<(u32, wire::Packet<Key, Key>)> {
    let mut out = Vec::new();
    while let Some(o) = c.poll_output() {
        if let crate::swim::Output::Datagram { to, payload } = o {
            out.push((to, wire::decode_packet(&payload).expect("valid")));
        }
    }
    out
}

fn tree_sends(out: &[(u32, wire::Packet<Key, Key>)]) -> Vec<(u32, Key)> {
    out.iter()
        .filter_map(|(to, p)| match &p.msg {
            Msg::Tree { root } if !p.items.is_empty() => Some((*to, *root)),
            _ => None,
        })
        .collect()
}

fn datagram(from: Key, msg: Msg<Key, Key>, items: &[WireRecord]) -> Vec<u8> {
    let mut p = wire::encode_head(&from, PEER_GEN, &msg);
    items.iter().for_each(|r| p.extend(item(r)));
    p
}

#[test]
fn the_tree_of_every_origin_reaches_every_member_exactly_once() {
    let cfg = SwimConfig::default();
    let n = 40;
    let mut cores: Vec<_> = (0..n).map(|k| core(k, n, &cfg)).collect();
    for root in 0..n {
        let mut parents: BTreeMap<u32, u32> = BTreeMap::new();
        for c in &mut cores {
            let me = *c.me();
            let children = c.tree_children(&root).expect("everyone is ranked");
            assert!(children.len() <= cfg.tree_fanout);
            for child in children {
                assert!(parents.insert(child, me).is_none(), "one parent each");
            }
        }
        let reached: BTreeSet<u32> = parents.keys().copied().collect();
        let others: BTreeSet<u32> = (0..n).filter(|&k| k != root).map(addr).collect();
        assert_eq!(reached, others, "root {root}");
    }
}

#[test]
fn a_local_change_goes_down_our_tree_and_not_into_the_retransmit_queue() {
    let cfg = SwimConfig::default();
    let mut c = core(ME, 40, &cfg);
    let r = record(ME, "a");
    c.local_records(
        vec![Record {
            announcer: Arc::from("n1"),
            service: r.service.clone(),
        }],
        0,
    );
    let out = sent(&mut c);
    let sends = tree_sends(&out);
    assert_eq!(sends.len(), cfg.tree_fanout, "one datagram to each child");
    assert!(sends.iter().all(|&(_, root)| root == ME));
    assert_eq!(c.queue_len(), 0);
    let expected = c.tree_children(&ME).expect("ranked");
    assert_eq!(sends.iter().map(|s| s.0).collect::<Vec<_>>(), expected);
}

#[test]
fn a_record_new_to_us_goes_on_to_our_children_in_its_origins_tree_once() {
    let cfg = SwimConfig::default();
    let mut c = core(ME, 40, &cfg);
    let mut cat = Recs::default();
    let r = record(7, "a");
    let children = c.tree_children(&7).expect("ranked");
    let d = datagram(3, Msg::Tree { root: 7 }, std::slice::from_ref(&r));
    c.handle_datagram(addr(3), &d, 0, &mut cat).expect("valid");
    let sends = tree_sends(&sent(&mut c));
    assert_eq!(
        sends,
        children.iter().map(|&a| (a, 7)).collect::<Vec<_>>(),
        "forwarded in the origin's tree"
    );
    c.handle_datagram(addr(4), &d, 0, &mut cat).expect("valid");
    assert!(
        tree_sends(&sent(&mut c)).is_empty(),
        "a duplicate stops here"
    );
}

#[test]
fn received_records_are_announced_to_the_lazy_targets_in_one_batch() {
    let cfg = SwimConfig::default();
    let mut c = core(ME, 40, &cfg);
    let mut cat = Recs::default();
    let (a, b) = (record(7, "a"), record(8, "b"));
    for (from, root, r) in [(3, 7, &a), (4, 8, &b)] {
        let d = datagram(from, Msg::Tree { root }, std::slice::from_ref(r));
        c.handle_datagram(addr(from), &d, 0, &mut cat)
            .expect("valid");
    }
    sent(&mut c);
    let delay = micros(cfg.announce_delay);
    c.tick(delay - 1, &NoRecords);
    assert!(
        sent(&mut c)
            .iter()
            .all(|(_, p)| !matches!(p.msg, Msg::IHave { .. }))
    );
    c.tick(delay, &NoRecords);
    let ihaves: Vec<(u32, Vec<u64>)> = sent(&mut c)
        .into_iter()
        .filter_map(|(to, p)| match p.msg {
            Msg::IHave { ids } => Some((to, ids)),
            _ => None,
        })
        .collect();
    assert_eq!(
        ihaves.len(),
        cfg.lazy_fanout,
        "one datagram per lazy target"
    );
    let ids = vec![item_id(&item(&a)), item_id(&item(&b))];
    assert!(ihaves.iter().all(|(_, got)| *got == ids));
    let tree_peers: BTreeSet<u32> = ihaves.iter().map(|i| i.0).collect();
    assert_eq!(tree_peers.len(), cfg.lazy_fanout, "distinct members");
}

#[test]
fn announcements_go_around_the_ranking_not_to_our_siblings() {
    let cfg = SwimConfig::default();
    for n in [2u32, 3, 4, 40, 200] {
        let mut c = core(ME, n, &cfg);
        let ranks: Vec<Key> = c.ranks().iter().map(|(_, k)| *k).collect();
        let me = ranks.iter().position(|k| *k == ME).expect("we are ranked");
        let len = ranks.len();
        let offsets: Vec<usize> = c
            .lazy_targets()
            .iter()
            .map(|a| {
                let at = ranks.iter().position(|k| addr(*k) == *a).expect("ranked");
                (at + len - me) % len
            })
            .collect();
        let want = cfg.lazy_fanout.min(len - 1);
        assert_eq!(offsets.len(), want, "n={n}: {offsets:?}");
        assert!(
            offsets.iter().all(|d| *d != 0),
            "n={n}: never ourselves: {offsets:?}"
        );
        if len > 2 * cfg.tree_fanout {
            // Siblings in a tree are within `tree_fanout` ranks of each other.
            assert!(
                offsets
                    .iter()
                    .all(|d| *d > cfg.tree_fanout && len - d > cfg.tree_fanout),
                "n={n}: {offsets:?}"
            );
        }
    }
}

#[test]
fn an_announced_record_we_lack_is_grafted_from_the_announcer_after_the_wait() {
    let cfg = SwimConfig::default();
    let mut c = core(ME, 40, &cfg);
    let id = item_id(&item(&record(7, "a")));
    let d = wire::encode_head(&3, PEER_GEN, &Msg::<Key, Key>::IHave { ids: vec![id] });
    c.handle_datagram(addr(3), &d, 0, &mut Recs::default())
        .expect("valid");
    let wait = micros(cfg.graft_wait);
    c.tick(wait - 1, &NoRecords);
    let grafts = |out: Vec<(u32, wire::Packet<Key, Key>)>| -> Vec<(u32, Vec<u64>)> {
        out.into_iter()
            .filter_map(|(to, p)| match p.msg {
                Msg::Graft { ids } => Some((to, ids)),
                _ => None,
            })
            .collect()
    };
    assert!(
        grafts(sent(&mut c)).is_empty(),
        "the tree may still bring it"
    );
    c.tick(wait, &NoRecords);
    assert_eq!(grafts(sent(&mut c)), vec![(addr(3), vec![id])]);
    assert_eq!(c.stats().grafts, 1);
}

#[test]
fn a_graft_that_brings_nothing_is_asked_again_of_the_latest_announcer_three_times_in_all() {
    let cfg = SwimConfig::default();
    let mut c = core(ME, 40, &cfg);
    let id = item_id(&item(&record(7, "a")));
    let ihave =
        |from: Key| wire::encode_head(&from, PEER_GEN, &Msg::<Key, Key>::IHave { ids: vec![id] });
    c.handle_datagram(addr(3), &ihave(3), 0, &mut Recs::default())
        .expect("valid");
    let wait = micros(cfg.graft_wait);
    c.tick(wait, &NoRecords);
    sent(&mut c);
    c.handle_datagram(addr(4), &ihave(4), wait, &mut Recs::default())
        .expect("valid");
    let grafted_by = |c: &mut Swim<Key, Key>| -> Vec<u32> {
        sent(c)
            .into_iter()
            .filter(|(_, p)| matches!(p.msg, Msg::Graft { .. }))
            .map(|(to, _)| to)
            .collect()
    };
    c.tick(3 * wait - 1, &NoRecords);
    assert!(
        grafted_by(&mut c).is_empty(),
        "twice the wait between tries"
    );
    c.tick(3 * wait, &NoRecords);
    assert_eq!(grafted_by(&mut c), vec![addr(4)]);
    c.tick(5 * wait, &NoRecords);
    assert_eq!(grafted_by(&mut c), vec![addr(4)]);
    c.tick(100 * wait, &NoRecords);
    assert!(grafted_by(&mut c).is_empty(), "three grafts in all");
    assert_eq!(c.stats().grafts, 3);
}

#[test]
fn an_announced_record_the_tree_brings_in_time_is_not_grafted() {
    let cfg = SwimConfig::default();
    let mut c = core(ME, 40, &cfg);
    let mut cat = Recs::default();
    let r = record(7, "a");
    let ihave = wire::encode_head(
        &3,
        PEER_GEN,
        &Msg::<Key, Key>::IHave {
            ids: vec![item_id(&item(&r))],
        },
    );
    c.handle_datagram(addr(3), &ihave, 0, &mut cat)
        .expect("valid");
    let d = datagram(4, Msg::Tree { root: 7 }, std::slice::from_ref(&r));
    c.handle_datagram(addr(4), &d, MS, &mut cat).expect("valid");
    c.tick(micros(cfg.graft_wait) * 2, &NoRecords);
    assert!(
        sent(&mut c)
            .iter()
            .all(|(_, p)| !matches!(p.msg, Msg::Graft { .. }))
    );
    assert_eq!(c.stats().grafts, 0);
}

#[test]
fn a_graft_is_answered_with_the_records_on_their_origins_tree() {
    let cfg = SwimConfig::default();
    let mut c = core(ME, 40, &cfg);
    let mut cat = Recs::default();
    let r = record(7, "a");
    let d = datagram(3, Msg::Tree { root: 7 }, std::slice::from_ref(&r));
    c.handle_datagram(addr(3), &d, 0, &mut cat).expect("valid");
    sent(&mut c);
    let graft = wire::encode_head(
        &9,
        PEER_GEN,
        &Msg::<Key, Key>::Graft {
            ids: vec![item_id(&item(&r)), 12345],
        },
    );
    c.handle_datagram(addr(9), &graft, MS, &mut cat)
        .expect("valid");
    let out = sent(&mut c);
    let answers: Vec<_> = out
        .iter()
        .filter(|(_, p)| matches!(p.msg, Msg::Tree { .. }))
        .collect();
    assert_eq!(answers.len(), 1);
    let (to, p) = answers[0];
    assert_eq!(*to, addr(9));
    assert_eq!(
        p.msg,
        Msg::Tree { root: 7 },
        "the asker forwards to its children"
    );
    assert_eq!(p.items, vec![Item::Record(r)], "unknown ids are ignored");
}

#[test]
fn with_tree_fanout_0_records_are_retransmitted_like_member_updates() {
    let cfg = SwimConfig {
        tree_fanout: 0,
        ..SwimConfig::default()
    };
    let mut c = core(ME, 40, &cfg);
    let r = record(7, "a");
    let d = datagram(3, Msg::Gossip, std::slice::from_ref(&r));
    c.handle_datagram(addr(3), &d, 0, &mut Recs::default())
        .expect("valid");
    let out = sent(&mut c);
    assert!(tree_sends(&out).is_empty());
    assert_eq!(out.len(), cfg.eager_fanout, "eager push");
    assert_eq!(c.queue_len(), 1, "then retransmissions");
}
