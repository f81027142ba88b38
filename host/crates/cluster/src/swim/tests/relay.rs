//! Indirect probes: asking relays when a direct ping goes unanswered, and being a relay.

use super::support::*;
use crate::wire::{Msg, State};

/// Peers 2–6 and a probe of one of them whose first ping went unanswered.
struct Unanswered {
    n: Node,
    seq: u32,
    target: Key,
    /// The relay requests sent: (to, message).
    reqs: Vec<(u32, Msg<Key, Key>)>,
    /// When the probe started.
    t0: u64,
}

fn unanswered_probe() -> Unanswered {
    let mut n = Node::with_peers(&[2, 3, 4, 5, 6]);
    let (seq, target) = n.run_to_probe();
    let t0 = n.now;
    n.take();
    n.run_until(t0 + micros(n.cfg().probe_timeout));
    let mut reqs: Vec<_> = n
        .take()
        .msgs()
        .into_iter()
        .filter(|(_, m)| matches!(m, Msg::PingReq { seq: s, .. } if *s == seq))
        .collect();
    reqs.sort_by_key(|r| r.0);
    Unanswered {
        n,
        seq,
        target,
        reqs,
        t0,
    }
}

#[test]
fn an_unanswered_ping_asks_indirect_checks_relays_to_ping_the_target() {
    let Unanswered {
        n,
        seq,
        target,
        reqs,
        ..
    } = unanswered_probe();
    assert_eq!(reqs.len(), n.cfg().indirect_checks);
    let asked = ping_req(seq, target);
    for (to, m) in reqs {
        assert_ne!(to, addr(target), "the target is not its own relay");
        assert_eq!(m, asked);
    }
}

#[test]
fn relays_are_asked_once_per_probe() {
    let Unanswered { mut n, seq, t0, .. } = unanswered_probe();
    n.run_until(t0 + 600 * MS - 1);
    let again = n
        .take()
        .msgs()
        .into_iter()
        .filter(|(_, m)| matches!(m, Msg::PingReq { seq: s, .. } if *s == seq))
        .count();
    assert_eq!(again, 0);
}

#[test]
fn an_ack_relayed_for_the_target_completes_the_probe() {
    let Unanswered {
        mut n,
        seq,
        target,
        reqs,
        t0,
    } = unanswered_probe();
    let relay = reqs[0].0 - 100;
    n.ack(relay, seq);
    n.run_until(t0 + 600 * MS);
    assert_eq!(n.state(target), Some(State::Alive));
    assert_eq!(n.core.stats().probe_failures, 0);
}

#[test]
fn a_relay_pings_the_target_for_the_requester() {
    let mut n = Node::with_peers(&[2, 3]);
    n.recv(2, ping_req(40, 3), &[]);
    let pings = n.take().pings();
    assert_eq!(pings.len(), 1);
    let (to, _, target, claim) = pings[0];
    assert_eq!((to, target, claim), (addr(3), 3, None));
}

#[test]
fn a_relay_passes_the_targets_ack_back_under_the_requesters_seq() {
    let mut n = Node::with_peers(&[2, 3]);
    n.recv(2, ping_req(40, 3), &[]);
    let relayed = n.take().pings()[0].1;
    n.ack(3, relayed);
    assert_eq!(n.take().msgs(), vec![(addr(2), Msg::Ack { seq: 40 })]);
}

#[test]
fn a_relay_nacks_once_when_the_target_stays_silent() {
    let mut n = Node::with_peers(&[2, 3]);
    n.recv(2, ping_req(40, 3), &[]);
    let t0 = n.now;
    let timeout = micros(n.cfg().probe_timeout);
    n.take();
    n.run_until(t0 + timeout * 3 / 2 - 1);
    let nack = (addr(2), Msg::Nack { seq: 40 });
    assert!(
        !n.take().msgs().contains(&nack),
        "not before 1.5 probe timeouts"
    );
    n.run_until(t0 + timeout * 3 / 2);
    assert!(n.take().msgs().contains(&nack));
    n.run_until(t0 + 10 * timeout);
    assert!(!n.take().msgs().contains(&nack), "only once");
}

#[test]
fn a_relay_forgets_the_request_after_four_probe_timeouts() {
    let mut n = Node::with_peers(&[2, 3]);
    n.recv(2, ping_req(40, 3), &[]);
    let relayed = n.take().pings()[0].1;
    n.advance(4 * micros(n.cfg().probe_timeout));
    n.take();
    n.ack(3, relayed);
    assert!(!n.take().msgs().contains(&(addr(2), Msg::Ack { seq: 40 })));
}
