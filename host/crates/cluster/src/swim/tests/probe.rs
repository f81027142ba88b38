//! Probing: the round-robin, direct pings, their retries and acks.

use super::support::*;
use crate::wire::{Claim, Msg, State};
use std::collections::BTreeSet;

#[test]
fn a_probe_pings_its_target_without_a_claim_when_it_is_alive() {
    let mut n = Node::with_peers(&[2]);
    let (seq, target) = n.run_to_probe();
    assert_eq!(target, 2);
    assert_eq!(n.take().pings(), vec![(addr(2), seq, 2, None)]);
}

#[test]
fn the_round_robin_probes_every_live_member_once_per_round() {
    let mut n = Node::with_peers(&[2, 3, 4]);
    n.answer_pings(&[2, 3, 4]);
    let round: Vec<_> = (0..3).map(|_| n.run_to_probe().1).collect();
    let distinct: BTreeSet<_> = round.iter().copied().collect();
    assert_eq!(distinct, BTreeSet::from([2, 3, 4]), "round {round:?}");
}

#[test]
fn probes_start_one_probe_interval_apart() {
    let mut n = Node::with_peers(&[2, 3]);
    n.answer_pings(&[2, 3]);
    n.run_to_probe();
    let first = n.now;
    n.run_to_probe();
    assert_eq!(n.now - first, micros(n.cfg().probe_interval));
}

#[test]
fn an_unanswered_ping_is_retried_every_probe_timeout_up_to_direct_attempts() {
    let mut n = Node::with_peers(&[2]);
    let (seq, _) = n.run_to_probe();
    let t0 = n.now;
    let timeout = micros(n.cfg().probe_timeout);
    let mut times = Vec::new();
    n.run_until(t0 + 3 * timeout - 1);
    for (at, to, p) in n.take().datagrams() {
        if p.msg == ping(seq, 2) {
            assert_eq!(to, addr(2));
            times.push(at - t0);
        }
    }
    assert_eq!(times, vec![0, timeout, 2 * timeout]);
    assert_eq!(n.cfg().direct_attempts, 3);
}

#[test]
fn an_acked_probe_is_over() {
    let mut n = Node::with_peers(&[2]);
    let (seq, _) = n.run_to_probe();
    n.ack(2, seq);
    n.take();
    // Past the retries and the window of this probe (later probes are new ones).
    n.advance(900 * MS);
    let again = n.take().pings().into_iter().filter(|p| p.1 == seq).count();
    assert_eq!(again, 0, "no retry of an acked ping");
    assert_eq!(n.core.stats().probe_failures, 0);
}

#[test]
fn a_ping_for_us_is_acked_with_its_seq() {
    let mut n = Node::with_peers(&[2]);
    n.recv(2, ping(77, ME), &[]);
    assert_eq!(n.take().msgs(), vec![(addr(2), Msg::Ack { seq: 77 })]);
}

#[test]
fn a_ping_for_another_member_is_not_acked() {
    let mut n = Node::with_peers(&[2]);
    n.recv(2, ping(77, 9), &[]);
    assert_eq!(n.take().msgs(), vec![]);
    assert_eq!(n.core.stats().misdirected, 1);
}

#[test]
fn a_member_that_misses_its_whole_probe_window_becomes_suspect() {
    let mut n = Node::with_peers(&[2]);
    n.run_to_probe();
    let t0 = n.now;
    // The window leaves room for every direct attempt: 3 × 200 ms (> 0.9 × 500 ms is
    // 450 ms).
    let window = 600 * MS;
    n.run_until(t0 + window - 1);
    assert_eq!(n.state(2), Some(State::Alive));
    n.take();
    n.run_until(t0 + window);
    assert_eq!(n.state(2), Some(State::Suspect));
    let sent = n.take();
    assert_eq!(
        sent.member_events(),
        vec![(2, State::Suspect, Some(State::Alive))]
    );
    let spread = sent.items_about(2);
    assert!(!spread.is_empty(), "the suspicion is gossiped");
    assert!(spread.iter().all(|(_, u)| *u == suspect(2, 0, ME)));
}

#[test]
fn a_suspect_is_probed_with_the_suspicion_attached() {
    let mut n = Node::with_peers(&[2]);
    n.run_to_probe();
    n.advance(900 * MS);
    assert_eq!(n.state(2), Some(State::Suspect));
    n.take();
    let (seq, _) = n.run_to_probe();
    let claim = Claim {
        state: State::Suspect,
        generation: PEER_GEN,
        inc: 0,
    };
    assert_eq!(n.take().pings(), vec![(addr(2), seq, 2, Some(claim))]);
}
