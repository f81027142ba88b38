//! Anti-entropy scheduling: join exchanges, the periodic exchange, exchanges with dead
//! members that turn out to be alive and with seeds that are not members.

use super::support::*;
use crate::swim::SwimConfig;
use crate::wire::{Msg, State, Stream, SyncDigest, SyncHosts, SyncRecords};

fn hosts(members: Option<Vec<Update>>) -> Option<Stream<Key, Key>> {
    Some(Stream::Hosts(SyncHosts {
        members,
        buckets: Vec::new(),
        hosts: Vec::new(),
    }))
}

#[test]
fn join_opens_a_join_exchange_with_every_seed() {
    let mut n = Node::unjoined(SwimConfig::default());
    n.join(&[2, 3]);
    let digests = n.take().digests();
    let to: Vec<u32> = digests.iter().map(|d| d.1).collect();
    assert_eq!(to, vec![addr(2), addr(3)]);
    for (_, _, _, d) in digests {
        assert!(d.join);
        assert_eq!(d.sender, n.core.self_update());
    }
    assert!(!n.core.is_joined());
}

#[test]
fn an_unanswered_join_is_retried_with_doubling_backoff() {
    let mut n = Node::unjoined(SwimConfig::default());
    n.join(&[2]);
    n.run_until(40 * S);
    let times: Vec<u64> = n
        .take()
        .digests()
        .iter()
        .filter(|d| d.3.join)
        .map(|d| d.0 / 1000)
        .collect();
    // 125 ms, then doubling (the cap, 60 s, is further out).
    assert_eq!(
        times,
        vec![0, 125, 375, 875, 1875, 3875, 7875, 15875, 31875]
    );
}

#[test]
fn a_join_answer_makes_us_joined_and_teaches_us_its_members() {
    let mut n = Node::unjoined(SwimConfig::default());
    n.join(&[2]);
    let req = n.take().digests()[0].2;
    n.reply(req, hosts(Some(vec![alive(2), alive(3)])));
    assert!(n.core.is_joined());
    assert_eq!(
        (n.state(2), n.state(3)),
        (Some(State::Alive), Some(State::Alive))
    );
}

#[test]
fn members_learnt_from_a_join_answer_are_not_gossiped() {
    let mut n = Node::unjoined(SwimConfig::default());
    n.join(&[2]);
    let req = n.take().digests()[0].2;
    n.reply(req, hosts(Some(vec![alive(2), alive(3)])));
    n.advance(100 * MS);
    let sent = n.take();
    assert!(sent.items_about(2).is_empty() && sent.items_about(3).is_empty());
    assert_eq!(n.core.queue_len(), 0);
}

#[test]
fn a_failed_join_exchange_leaves_us_unjoined() {
    let mut n = Node::unjoined(SwimConfig::default());
    n.join(&[2]);
    let req = n.take().digests()[0].2;
    n.reply(req, None);
    assert!(!n.core.is_joined());
    assert_eq!(n.core.stats().syncs_failed, 1);
}

#[test]
fn a_periodic_exchange_goes_to_a_live_member_every_half_to_one_and_a_half_periods() {
    let mut n = Node::with_peers(&[2, 3, 4]);
    n.answer_pings(&[2, 3]);
    n.gossip(3, &[update(4, PEER_GEN, 0, State::Dead)]);
    n.run_until(600 * S);
    let digests = n.take().digests();
    assert!(digests.len() >= 20, "{} exchanges", digests.len());
    let period = micros(n.cfg().push_pull_interval);
    for pair in digests.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(gap >= period / 2 && gap < period * 3 / 2, "gap {gap}");
    }
    for (_, to, _, d) in &digests {
        assert!(*to == addr(2) || *to == addr(3), "not the dead member");
        assert!(!d.join);
    }
}

#[test]
fn no_periodic_exchange_without_a_live_member() {
    let mut n = Node::with_peers(&[]);
    n.run_until(120 * S);
    assert!(n.take().digests().is_empty());
}

#[test]
fn a_dead_member_is_pinged_for_reconnection_with_its_death_attached() {
    let mut n = Node::with_peers(&[2, 3]);
    n.answer_pings(&[3]);
    n.gossip(3, &[update(2, PEER_GEN, 0, State::Dead)]);
    n.take();
    n.advance(micros(n.cfg().reconnect_interval));
    let to_2: Vec<_> = n
        .take()
        .pings()
        .into_iter()
        .filter(|p| p.0 == addr(2))
        .collect();
    assert!(!to_2.is_empty());
    for (_, _, _, claim) in to_2 {
        let claim = claim.expect("a claim");
        assert_eq!((claim.state, claim.generation), (State::Dead, PEER_GEN));
    }
}

#[test]
fn a_dead_member_that_answers_a_reconnect_ping_is_synced_with() {
    let mut n = Node::with_peers(&[2, 3]);
    n.gossip(3, &[update(2, PEER_GEN, 0, State::Dead)]);
    n.take();
    n.answer_pings(&[2, 3]);
    n.advance(micros(n.cfg().reconnect_interval));
    let sent = n.take();
    let pinged = sent.pings().iter().find(|p| p.0 == addr(2)).map(|p| p.1);
    let synced = sent.digests().iter().filter(|d| d.1 == addr(2)).count();
    assert!(pinged.is_some());
    assert_eq!(synced, 1);
}

#[test]
fn a_dead_member_that_pings_us_is_synced_with_at_most_every_10_s() {
    let mut n = Node::with_peers(&[2, 3]);
    n.gossip(3, &[update(2, PEER_GEN, 0, State::Dead)]);
    let mut synced_at = Vec::new();
    for t in [1, 5, 10, 11, 21] {
        n.run_until(t * S);
        n.take();
        n.recv(2, ping(9, ME), &[]);
        let sent = n.take();
        assert!(sent.msgs().contains(&(addr(2), Msg::Ack { seq: 9 })));
        if sent.digests().iter().any(|d| d.1 == addr(2)) {
            synced_at.push(t);
        }
    }
    assert_eq!(synced_at, vec![1, 11, 21]);
}

#[test]
fn a_seed_that_is_not_a_live_member_is_synced_with_every_rejoin_interval() {
    let mut n = Node::unjoined(SwimConfig::default());
    n.join(&[2, 9]);
    let req = n.take().digests()[0].2;
    n.reply(req, hosts(Some(vec![alive(2)])));
    n.answer_pings(&[2]);
    n.run_until(100 * S);
    let times: Vec<u64> = n
        .take()
        .digests()
        .iter()
        .filter(|d| d.1 == addr(9))
        .map(|d| d.0 / 1000)
        .collect();
    // The first rejoin check comes a join backoff (125 ms) after joining, then every 30 s.
    assert_eq!(times, vec![125, 30_125, 60_125, 90_125]);
}

fn digest_from_2(members_hash: u64) -> Stream<Key, Key> {
    Stream::Digest(SyncDigest {
        sender: alive(2),
        join: false,
        members_hash,
        bucket_bits: 0,
        buckets: vec![0],
    })
}

#[test]
fn a_digest_with_our_members_hash_is_answered_without_members() {
    let mut n = Node::with_peers(&[2]);
    let same = n.core.members_hash();
    let Stream::Hosts(h) = n.stream(2, digest_from_2(same)) else {
        panic!("hosts expected");
    };
    assert_eq!(h.members, None);
}

#[test]
fn a_digest_with_another_members_hash_is_answered_with_our_members() {
    let mut n = Node::with_peers(&[2]);
    let other = n.core.members_hash() ^ 1;
    let Stream::Hosts(h) = n.stream(2, digest_from_2(other)) else {
        panic!("hosts expected");
    };
    assert_eq!(h.members, Some(n.core.member_updates()));
}

#[test]
fn a_synced_death_of_a_member_we_see_alive_is_only_a_suspicion() {
    let mut n = Node::with_peers(&[2, 3]);
    let records = Stream::Records(SyncRecords {
        members: Some(vec![update(3, PEER_GEN, 0, State::Dead)]),
        records: Vec::new(),
        want: Vec::new(),
    });
    n.stream(2, records);
    assert_eq!(n.state(3), Some(State::Suspect));
}
