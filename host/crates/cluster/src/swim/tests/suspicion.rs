//! Suspicion: how long it lasts (Lifeguard's dynamic timeout), what confirms it, and how
//! a member refutes it.

use super::support::*;
use crate::swim::SwimConfig;
use crate::wire::{Claim, MemberUpdate, Msg, State};

/// Peers 2–6 answer pings and we start no confirmation probes of our own, so the
/// suspicion of 2 that 3 gossips at time 0 runs on the confirmations a test feeds it.
/// With N = 6 its timeout runs from 9 s down to 1.5 s after k = 3 confirmations.
fn suspected_by_3() -> Node {
    let cfg = SwimConfig {
        active_probers: 0,
        ..SwimConfig::default()
    };
    let mut n = Node::with_config(cfg, &[2, 3, 4, 5, 6]);
    n.answer_pings(&[2, 3, 4, 5, 6]);
    n.gossip(3, &[suspect(2, 0, 3)]);
    assert_eq!(n.state(2), Some(State::Suspect));
    assert_eq!(n.now, 0);
    n
}

fn suspicion_of_me(by: Key, inc: u32) -> MemberUpdate<Key, Key> {
    MemberUpdate {
        from: Some(by),
        ..about_me(inc, State::Suspect)
    }
}

#[test]
fn a_suspect_is_declared_dead_when_its_suspicion_times_out() {
    let mut n = Node::with_peers(&[2, 3]);
    n.answer_pings(&[3]);
    while n.run_to_probe().1 != 2 {}
    n.advance(600 * MS);
    assert_eq!(n.state(2), Some(State::Suspect));
    let since = n.now;
    // N = 3: too small for confirmations, so the minimum: 1.5 s × max(1, log10 N).
    n.run_until(since + 1500 * MS - 1);
    assert_eq!(n.state(2), Some(State::Suspect));
    n.take();
    n.run_until(since + 1500 * MS);
    assert_eq!(n.state(2), Some(State::Dead));
    let sent = n.take();
    assert_eq!(
        sent.member_events(),
        vec![(2, State::Dead, Some(State::Suspect))]
    );
    let death = update(2, PEER_GEN, 0, State::Dead);
    assert!(sent.items_about(2).contains(&(addr(3), death)), "gossiped");
}

#[test]
fn an_unconfirmed_suspicion_lasts_the_maximum_timeout() {
    let mut n = suspected_by_3();
    n.run_until(9 * S - 1);
    assert_eq!(n.state(2), Some(State::Suspect));
    n.run_until(9 * S);
    assert_eq!(n.state(2), Some(State::Dead));
}

#[test]
fn one_independent_confirmation_shortens_the_suspicion() {
    let mut n = suspected_by_3();
    n.gossip(4, &[suspect(2, 0, 4)]);
    // 9 s − 7.5 s · ln 2 / ln 4 = 5.25 s.
    n.run_until(5 * S);
    assert_eq!(n.state(2), Some(State::Suspect));
    n.run_until(5500 * MS);
    assert_eq!(n.state(2), Some(State::Dead));
}

#[test]
fn k_independent_confirmations_shrink_the_suspicion_to_the_minimum() {
    let mut n = suspected_by_3();
    for by in [4, 5, 6] {
        n.gossip(by, &[suspect(2, 0, by)]);
    }
    n.run_until(1500 * MS - 1);
    assert_eq!(n.state(2), Some(State::Suspect));
    n.run_until(1500 * MS);
    assert_eq!(n.state(2), Some(State::Dead));
}

#[test]
fn the_same_suspecter_twice_is_not_a_confirmation() {
    let mut n = suspected_by_3();
    for from in [3, 4, 5] {
        // 3's suspicion again, relayed by others.
        n.gossip(from, &[suspect(2, 0, 3)]);
    }
    n.run_until(9 * S - 1);
    assert_eq!(n.state(2), Some(State::Suspect));
}

#[test]
fn a_member_suspected_by_a_peer_is_pinged_by_us_with_the_suspicion_attached() {
    let mut n = Node::with_peers(&[2, 3]);
    n.gossip(3, &[suspect(2, 0, 3)]);
    let claim = Claim {
        state: State::Suspect,
        generation: PEER_GEN,
        inc: 0,
    };
    let to_2: Vec<_> = n.take().pings().into_iter().filter(|p| p.2 == 2).collect();
    assert_eq!(to_2.len(), 1);
    assert_eq!((to_2[0].0, to_2[0].3), (addr(2), Some(claim)));
}

#[test]
fn our_failed_check_of_a_suspect_is_an_independent_confirmation() {
    // As in `suspected_by_3`, but we do check 2 ourselves, and 2 is silent.
    let mut n = Node::with_peers(&[2, 3, 4, 5, 6]);
    n.answer_pings(&[3, 4, 5, 6]);
    n.gossip(3, &[suspect(2, 0, 3)]);
    assert_eq!(n.core.stats().probes, 1, "a confirmation probe");
    // The check fails at 0.9 s: one confirmation, death at 5.25 s instead of 9 s.
    n.run_until(5 * S);
    assert_eq!(n.state(2), Some(State::Suspect));
    n.run_until(5500 * MS);
    assert_eq!(n.state(2), Some(State::Dead));
}

#[test]
fn a_suspicion_of_us_is_refuted_with_a_higher_incarnation() {
    let mut n = Node::with_peers(&[2, 3]);
    n.gossip(2, &[suspicion_of_me(2, 0)]);
    assert_eq!(n.core.incarnation(), 1);
    let refutation = about_me(1, State::Alive);
    let spread = n.take().items_about(ME);
    assert!(!spread.is_empty());
    assert!(spread.iter().all(|(_, u)| *u == refutation));
    assert_eq!(n.core.stats().refutations, 1);
}

#[test]
fn a_ping_carrying_a_suspicion_of_us_is_answered_with_the_refutation() {
    let mut n = Node::with_peers(&[2, 3]);
    let claim = Claim {
        state: State::Suspect,
        generation: GEN,
        inc: 0,
    };
    n.recv(
        2,
        Msg::Ping {
            seq: 5,
            target: ME,
            claim: Some(claim),
        },
        &[],
    );
    let ack = n
        .take()
        .datagrams()
        .into_iter()
        .find(|(_, _, p)| p.msg == Msg::Ack { seq: 5 })
        .expect("an ack");
    assert_eq!(ack.1, addr(2));
    assert!(
        ack.2
            .items
            .contains(&crate::wire::Item::Member(about_me(1, State::Alive)))
    );
}

#[test]
fn a_death_claim_about_us_is_refuted_too() {
    let mut n = Node::with_peers(&[2]);
    n.gossip(2, &[about_me(0, State::Dead)]);
    assert_eq!(n.core.incarnation(), 1);
    assert_eq!(n.core.self_update().state, State::Alive);
}

#[test]
fn an_alive_claim_about_us_at_our_incarnation_is_no_news() {
    let mut n = Node::with_peers(&[2]);
    n.gossip(2, &[about_me(0, State::Alive)]);
    assert_eq!(n.core.incarnation(), 0);
    assert!(n.take().items_about(ME).is_empty());
}

#[test]
fn a_suspicion_of_an_older_incarnation_of_us_is_not_refuted_again() {
    let mut n = Node::with_peers(&[2]);
    n.gossip(2, &[suspicion_of_me(2, 0)]);
    n.gossip(2, &[suspicion_of_me(2, 0)]);
    assert_eq!(n.core.incarnation(), 1);
    assert_eq!(n.core.stats().refutations, 1);
}

#[test]
fn a_refuted_suspect_is_alive_again_and_its_timer_is_cancelled() {
    let mut n = suspected_by_3();
    n.take();
    n.gossip(2, &[update(2, PEER_GEN, 1, State::Alive)]);
    assert_eq!(
        n.take().member_events(),
        vec![(2, State::Alive, Some(State::Suspect))]
    );
    n.run_until(20 * S);
    assert_eq!(n.state(2), Some(State::Alive));
}
