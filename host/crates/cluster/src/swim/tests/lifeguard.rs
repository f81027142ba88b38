//! Lifeguard's local health: signs that *we* are slow raise a score that stretches our
//! probe timers; successful probes lower it.

use super::support::*;
use crate::wire::{MemberUpdate, Msg, State};

/// Makes us refute `times` suspicions (each raises the score by one).
fn refute(n: &mut Node, times: u32) {
    for _ in 0..times {
        let u = MemberUpdate {
            from: Some(2),
            ..about_me(n.core.incarnation(), State::Suspect)
        };
        n.gossip(2, &[u]);
    }
}

/// Peers 2–6 all silent: a probe whose first ping went unanswered, with `nacking` of
/// its relays answering with a nack. Returns the score once the probe has failed.
fn score_after_failed_probe_with_nacks(nacking: usize) -> u32 {
    let mut n = Node::with_peers(&[2, 3, 4, 5, 6]);
    let (seq, _) = n.run_to_probe();
    let t0 = n.now;
    n.take();
    n.run_until(t0 + 200 * MS);
    let relays: Vec<u32> = n
        .take()
        .msgs()
        .into_iter()
        .filter(|(_, m)| matches!(m, Msg::PingReq { .. }))
        .map(|(to, _)| to - 100)
        .collect();
    assert_eq!(relays.len(), 4);
    for &r in relays.iter().take(nacking) {
        n.recv(r, Msg::Nack { seq }, &[]);
    }
    n.run_until(t0 + 600 * MS);
    assert_eq!(n.core.stats().probe_failures, 1);
    n.core.awareness()
}

#[test]
fn a_failed_probe_without_relays_raises_the_score_by_one() {
    let mut n = Node::with_peers(&[2]);
    n.run_to_probe();
    n.advance(900 * MS);
    assert_eq!(n.core.awareness(), 1);
}

#[test]
fn each_relay_that_did_not_nack_a_failed_probe_raises_the_score() {
    // Four relays, one nacked: three missing nacks.
    assert_eq!(score_after_failed_probe_with_nacks(1), 3);
}

#[test]
fn a_failed_probe_every_relay_nacked_leaves_the_score_alone() {
    assert_eq!(score_after_failed_probe_with_nacks(4), 0);
}

#[test]
fn having_to_refute_a_suspicion_raises_the_score() {
    let mut n = Node::with_peers(&[2]);
    refute(&mut n, 1);
    assert_eq!(n.core.awareness(), 1);
}

#[test]
fn a_successful_probe_lowers_the_score() {
    let mut n = Node::with_peers(&[2]);
    refute(&mut n, 2);
    n.answer_pings(&[2]);
    n.run_to_probe();
    assert_eq!(n.core.awareness(), 1);
}

#[test]
fn the_score_is_capped_at_awareness_max() {
    let mut n = Node::with_peers(&[2]);
    refute(&mut n, 20);
    assert_eq!(n.core.awareness(), n.cfg().awareness_max);
}

#[test]
fn local_health_stretches_the_probe_window() {
    let mut n = Node::with_peers(&[2]);
    refute(&mut n, 2);
    n.run_to_probe();
    let t0 = n.now;
    // 600 ms × (score + 1).
    n.run_until(t0 + 1800 * MS - 1);
    assert_eq!(n.state(2), Some(State::Alive));
    n.run_until(t0 + 1800 * MS);
    assert_eq!(n.state(2), Some(State::Suspect));
}

#[test]
fn local_health_stretches_the_probe_interval() {
    let mut n = Node::with_peers(&[2, 3]);
    refute(&mut n, 2);
    let (first, _) = n.run_to_probe();
    let t0 = n.now;
    let new_pings = |n: &mut Node| {
        let sent = n.take();
        sent.pings().into_iter().filter(|p| p.1 != first).count()
    };
    // 500 ms × (score + 1).
    n.run_until(t0 + 1500 * MS - 1);
    assert_eq!(new_pings(&mut n), 0);
    n.run_until(t0 + 1500 * MS);
    assert_eq!(new_pings(&mut n), 1);
}
