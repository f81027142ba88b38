//! Bounds on what one peer can make us hold or do: the member cap, the per-sender rate
//! of new members, and the wants of an anti-entropy request.

use super::support::*;
use crate::swim::{StreamAnswer, SwimConfig};
use crate::wire::{State, Stream, SyncHosts, SyncRecords};

fn cfg(max_members: usize, per_sender: u32) -> SwimConfig {
    SwimConfig {
        max_members,
        new_members_per_sender: per_sender,
        ..SwimConfig::default()
    }
}

fn news(keys: std::ops::Range<Key>) -> Vec<Update> {
    keys.map(alive).collect()
}

#[test]
fn the_member_table_is_capped() {
    let mut n = Node::with_config(cfg(5, 1000), &[2, 3]);
    n.gossip(2, &news(10..20));
    assert_eq!(n.core.members().len(), 5);
    assert_eq!(n.core.stats().refused_members, 7);
    assert_eq!(n.state(12), Some(State::Alive));
    assert_eq!(n.state(13), None);
}

#[test]
fn a_full_table_still_takes_updates_of_its_members() {
    let mut n = Node::with_config(cfg(2, 1000), &[2, 3]);
    n.gossip(2, &[update(3, PEER_GEN, 1, State::Dead)]);
    assert_eq!(n.state(3), Some(State::Dead));
    assert_eq!(n.core.stats().refused_members, 0);
}

#[test]
fn new_members_are_rate_limited_per_sender() {
    let mut n = Node::with_config(cfg(1000, 4), &[]);
    n.gossip(2, &news(10..20));
    n.gossip(3, &news(20..30));
    let known = |n: &Node, r: std::ops::Range<Key>| r.filter(|&k| n.state(k).is_some()).count();
    assert_eq!(known(&n, 10..20), 4, "a burst of 4 from sender 2");
    assert_eq!(known(&n, 20..30), 4, "sender 3 has its own bucket");
    assert_eq!(n.core.stats().refused_members, 12);
    n.advance(500 * MS);
    n.gossip(2, &news(10..20));
    assert_eq!(known(&n, 10..20), 6, "2 more after half a second");
}

#[test]
fn updates_of_known_members_are_not_rate_limited() {
    let mut n = Node::with_config(cfg(1000, 1), &[]);
    n.gossip(2, &[alive(10)]);
    for inc in 1..50 {
        n.gossip(2, &[update(10, PEER_GEN, inc, State::Alive)]);
    }
    assert_eq!(n.member(10).inc, 49);
    assert_eq!(n.core.stats().refused_members, 0);
}

#[test]
fn a_join_answer_is_not_rate_limited() {
    let mut n = Node::unjoined(cfg(1000, 1));
    n.join(&[2]);
    let req = n.take().digests()[0].2;
    n.reply(
        req,
        Some(Stream::Hosts(SyncHosts {
            members: Some(news(2..40)),
            buckets: Vec::new(),
            hosts: Vec::new(),
        })),
    );
    assert_eq!(n.core.members().len(), 38);
}

#[test]
fn a_member_list_pushed_to_us_is_rate_limited_per_sender() {
    let mut n = Node::with_config(cfg(1000, 4), &[]);
    n.stream(
        2,
        Stream::Records(SyncRecords {
            members: Some(news(10..30)),
            records: Vec::new(),
            want: Vec::new(),
        }),
    );
    assert_eq!(n.core.members().len(), 4);
    assert_eq!(n.core.stats().refused_members, 16);
}

fn wants(n: &mut Node, want: &[&str]) -> StreamAnswer {
    let req = Stream::<Key, Key>::Records(SyncRecords {
        members: None,
        records: Vec::new(),
        want: want.iter().map(|s| s.to_string()).collect(),
    });
    n.core
        .handle_stream_request(addr(2), &req.encode(), n.now, &mut NoRecords)
        .expect("a valid request")
}

#[test]
fn wants_are_deduplicated_and_left_to_the_driver() {
    let mut n = Node::with_config(cfg(3, 64), &[2]);
    assert_eq!(
        wants(&mut n, &["b", "a", "b", "a", "c"]),
        StreamAnswer::Records(vec!["a".into(), "b".into(), "c".into()])
    );
    assert_eq!(n.core.stats().refused_wants, 0);
}

#[test]
fn more_wants_than_the_member_cap_are_refused() {
    let mut n = Node::with_config(cfg(3, 64), &[2]);
    assert_eq!(
        wants(&mut n, &["a", "b", "c", "d"]),
        StreamAnswer::Records(Vec::new())
    );
    assert_eq!(n.core.stats().refused_wants, 1);
}
