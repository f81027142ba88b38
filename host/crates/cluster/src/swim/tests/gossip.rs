//! Dissemination: eager push of news, piggybacking on every datagram, and the bounded
//! number of times each update is sent.

use super::support::*;
use crate::swim::SwimConfig;
use crate::wire::State;
use std::time::Duration;

/// How many datagrams carry `alive(new)` in the 10 s after `from` first tells us, with
/// all peers answering pings.
fn sends_of_news(n: &mut Node, from: Key, new: Key) -> usize {
    let mut all: Vec<Key> = n.core.members().iter().map(|m| m.key).collect();
    all.push(new);
    n.answer_pings(&all);
    n.take();
    n.gossip(from, &[alive(new)]);
    n.advance(10 * S);
    let sent = n.take();
    sent.items_about(new)
        .iter()
        .filter(|(_, u)| *u == alive(new))
        .count()
}

#[test]
fn news_is_pushed_at_once_to_peers_other_than_its_sender() {
    let mut n = Node::with_peers(&[2, 3, 4]);
    n.gossip(2, &[alive(5)]);
    let mut to: Vec<u32> = n.take().items_about(5).iter().map(|(to, _)| *to).collect();
    to.sort();
    assert_eq!(to, vec![addr(3), addr(4), addr(5)]);
}

#[test]
fn old_news_is_not_pushed_again() {
    let mut n = Node::with_peers(&[2, 3, 4]);
    n.gossip(2, &[alive(5)]);
    n.take();
    n.gossip(3, &[alive(5)]);
    assert!(n.take().items_about(5).is_empty());
}

#[test]
fn an_update_is_sent_retransmit_mult_times_log_n_in_all() {
    let mut small = Node::with_peers(&[2, 3, 4]);
    // N = 5: 4 × ⌈log10 6⌉ = 4 (three eager pushes and one more).
    assert_eq!(sends_of_news(&mut small, 2, 5), 4);
    assert_eq!(small.core.queue_len(), 0, "then it leaves the queue");
    let mut larger = Node::with_peers(&(2..14).collect::<Vec<_>>());
    // N = 14: 4 × ⌈log10 15⌉ = 8.
    assert_eq!(sends_of_news(&mut larger, 2, 20), 8);
}

#[test]
fn queued_updates_ride_on_probes() {
    let cfg = SwimConfig {
        // No gossip rounds and a high limit: only piggybacking sends the update on.
        gossip_interval: Duration::from_secs(3600),
        retransmit_mult: 10,
        ..SwimConfig::default()
    };
    let mut n = Node::with_config(cfg, &[2, 3]);
    n.gossip(2, &[alive(5)]);
    let (seq, _) = n.run_to_probe();
    let ping = n
        .take()
        .datagrams()
        .into_iter()
        .find(|(_, _, p)| matches!(p.msg, crate::wire::Msg::Ping { seq: s, .. } if s == seq))
        .expect("the probe's ping");
    assert!(ping.2.items.contains(&crate::wire::Item::Member(alive(5))));
}

#[test]
fn a_newer_update_replaces_the_queued_one_about_the_same_member() {
    let cfg = SwimConfig {
        retransmit_mult: 10,
        active_probers: 0,
        ..SwimConfig::default()
    };
    let mut n = Node::with_config(cfg, &[2, 3, 4]);
    n.answer_pings(&[2, 3, 4, 5]);
    n.gossip(2, &[alive(5)]);
    n.gossip(2, &[suspect(5, 0, 2)]);
    n.take();
    n.advance(10 * S);
    let states: Vec<State> = n
        .take()
        .items_about(5)
        .iter()
        .map(|(_, u)| u.state)
        .collect();
    assert!(!states.is_empty());
    // (Later it is declared dead: 5 acks but never refutes.)
    assert!(!states.contains(&State::Alive), "{states:?}");
}
