//! Membership rules: which claim about a member wins, generations (lives) and
//! re-joins, claims about ourselves, leaving, and how long the dead are remembered.

use super::support::*;
use crate::swim::SwimConfig;
use crate::swim::members::supersedes;
use crate::wire::{MemberUpdate, Msg, State, Stream, SyncHosts};
use std::time::Duration;

fn states_after(n: &mut Node, from: Key, updates: &[Update], key: Key) -> Vec<State> {
    updates
        .iter()
        .map(|u| {
            n.gossip(from, std::slice::from_ref(u));
            n.member(key).state
        })
        .collect()
}

#[test]
fn an_unknown_member_is_learnt_from_its_own_alive_update() {
    let mut n = Node::with_peers(&[2]);
    n.gossip(3, &[alive(3)]);
    assert_eq!(n.take().member_events(), vec![(3, State::Alive, None)]);
    let m = n.member(3);
    assert_eq!((m.addr, m.generation, m.inc), (addr(3), PEER_GEN, 0));
}

#[test]
fn a_higher_incarnation_wins_within_a_generation() {
    let mut n = Node::with_peers(&[2, 3]);
    let updates = [
        update(2, PEER_GEN, 0, State::Dead),
        update(2, PEER_GEN, 1, State::Alive),
    ];
    assert_eq!(
        states_after(&mut n, 3, &updates, 2),
        vec![State::Dead, State::Alive]
    );
}

#[test]
fn at_equal_incarnation_the_graver_state_wins() {
    let mut n = Node::with_peers(&[2, 3]);
    let updates = [
        update(2, PEER_GEN, 2, State::Alive),
        suspect(2, 2, 3),
        update(2, PEER_GEN, 2, State::Alive),
        update(2, PEER_GEN, 2, State::Dead),
        suspect(2, 2, 3),
    ];
    use State::*;
    assert_eq!(
        states_after(&mut n, 3, &updates, 2),
        vec![Alive, Suspect, Suspect, Dead, Dead]
    );
}

#[test]
fn an_older_incarnation_is_ignored() {
    let mut n = Node::with_peers(&[2, 3]);
    n.gossip(2, &[update(2, PEER_GEN, 3, State::Alive)]);
    n.take();
    n.gossip(3, &[update(2, PEER_GEN, 2, State::Dead)]);
    assert_eq!(n.state(2), Some(State::Alive));
    assert_eq!(n.take().member_events(), vec![]);
}

#[test]
fn a_departure_is_final_within_its_generation() {
    let mut n = Node::with_peers(&[2, 3]);
    let updates = [
        update(2, PEER_GEN, 1, State::Left),
        update(2, PEER_GEN, 9, State::Alive),
        suspect(2, 9, 3),
        update(2, PEER_GEN, 9, State::Dead),
    ];
    assert!(
        states_after(&mut n, 3, &updates, 2)
            .iter()
            .all(|s| *s == State::Left)
    );
}

#[test]
fn a_new_generation_supersedes_a_dead_life_and_may_move_address() {
    let mut n = Node::with_peers(&[2, 3]);
    n.gossip(3, &[update(2, PEER_GEN, 4, State::Dead)]);
    n.take();
    let restarted = MemberUpdate {
        addr: 777,
        ..update(2, PEER_GEN + 1, 0, State::Alive)
    };
    n.gossip(2, &[restarted]);
    assert_eq!(
        n.take().member_events(),
        vec![(2, State::Alive, Some(State::Dead))]
    );
    let m = n.member(2);
    assert_eq!((m.generation, m.inc, m.addr), (PEER_GEN + 1, 0, 777));
}

#[test]
fn a_new_generation_supersedes_a_departed_life() {
    let mut n = Node::with_peers(&[2, 3]);
    n.gossip(2, &[update(2, PEER_GEN, 1, State::Left)]);
    n.gossip(2, &[update(2, PEER_GEN + 1, 0, State::Alive)]);
    assert_eq!(n.state(2), Some(State::Alive));
}

#[test]
fn an_update_about_an_older_generation_is_ignored() {
    let mut n = Node::with_peers(&[2, 3]);
    n.gossip(2, &[update(2, PEER_GEN + 1, 0, State::Alive)]);
    n.take();
    n.gossip(3, &[update(2, PEER_GEN, 9, State::Dead)]);
    n.gossip(3, &[update(2, PEER_GEN, 9, State::Alive)]);
    let m = n.member(2);
    assert_eq!((m.generation, m.state), (PEER_GEN + 1, State::Alive));
    assert_eq!(n.take().member_events(), vec![]);
}

#[test]
fn only_an_alive_claim_can_move_a_member_to_another_address() {
    let mut n = Node::with_peers(&[2, 3]);
    let moved = MemberUpdate {
        addr: 999,
        ..suspect(2, 0, 3)
    };
    n.gossip(3, &[moved]);
    assert_eq!(n.member(2).state, State::Suspect);
    assert_eq!(n.member(2).addr, addr(2));
}

#[test]
fn peers_remembering_a_later_life_of_ours_move_us_past_it() {
    let mut n = Node::with_peers(&[2]);
    n.gossip(2, &[update(ME, GEN + 10, 3, State::Alive)]);
    assert_eq!((n.core.generation(), n.core.incarnation()), (GEN + 11, 0));
    let announced = update(ME, GEN + 11, 0, State::Alive);
    assert!(n.take().items_about(ME).contains(&(addr(2), announced)));
    assert_eq!(n.core.stats().name_conflicts, 0);
}

#[test]
fn a_later_life_of_ours_at_another_address_is_a_name_conflict() {
    let mut n = Node::with_peers(&[2]);
    let other = MemberUpdate {
        addr: 999,
        ..update(ME, GEN + 10, 0, State::Alive)
    };
    n.gossip(2, &[other]);
    assert_eq!(n.core.stats().name_conflicts, 1);
    assert_eq!(n.core.generation(), GEN + 11);
}

#[test]
fn claims_about_an_older_life_of_ours_are_ignored() {
    let mut n = Node::with_peers(&[2]);
    n.gossip(2, &[update(ME, GEN - 1, 5, State::Dead)]);
    n.gossip(2, &[update(ME, GEN - 1, 5, State::Left)]);
    assert_eq!((n.core.generation(), n.core.incarnation()), (GEN, 0));
    assert!(n.take().items_about(ME).is_empty());
}

#[test]
fn a_departure_in_our_own_generation_moves_us_to_the_next() {
    let mut n = Node::with_peers(&[2]);
    n.gossip(2, &[update(ME, GEN, 1, State::Left)]);
    assert_eq!((n.core.generation(), n.core.incarnation()), (GEN + 1, 0));
    assert_eq!(n.core.self_update().state, State::Alive);
}

/// Campaign seed 5561 (`sim::scenario`, `docs/cluster.md` "Testing"): n2's first life
/// (generation G) left while n0 was cut off; n2 restarted with its clock 10 min behind,
/// learnt G from peers and became G + 1; that life left too, n0 missing it again. At
/// the next restart n0, which still holds G alive, moved n2 to G + 1, the generation the
/// others hold as left, which no alive claim can supersede: n2 stayed "left" forever.
#[test]
fn seed_5561_a_restart_handed_a_departed_generation_comes_back_under_the_next_one() {
    let g = GEN + 600_000;
    // Restarted with the clock behind: our generation is older than both past lives.
    let mut n = Node::unjoined(SwimConfig::default());
    n.join(&[3, 4]);
    let reqs: Vec<(u32, u64)> = n.take().digests().iter().map(|d| (d.1, d.2)).collect();
    let hosts = |members| {
        Some(Stream::Hosts(SyncHosts {
            members: Some(members),
            buckets: Vec::new(),
            hosts: Vec::new(),
        }))
    };
    // 3 missed both departures: it holds the first life alive.
    n.reply(
        reqs[0].1,
        hosts(vec![alive(3), update(ME, g, 0, State::Alive)]),
    );
    assert_eq!(reqs[0].0, addr(3));
    assert_eq!(n.core.generation(), g + 1, "the life 4 saw leave");
    // 4 holds the second life as departed.
    let departed = update(ME, g + 1, 1, State::Left);
    n.reply(reqs[1].1, hosts(vec![alive(4), departed.clone()]));
    assert_eq!(n.core.generation(), g + 2);
    let me = n.core.self_update();
    assert_eq!(me.state, State::Alive);
    assert!(
        supersedes(
            (me.generation, me.inc, me.state),
            (departed.generation, departed.inc, departed.state)
        ),
        "what 4 holds gives way to the new life"
    );
}

fn with_retention(secs: u64) -> Node {
    let cfg = SwimConfig {
        dead_retention: Duration::from_secs(secs),
        ..SwimConfig::default()
    };
    let mut n = Node::with_config(cfg, &[2, 3]);
    n.answer_pings(&[3]);
    n.gossip(3, &[update(2, PEER_GEN, 0, State::Dead)]);
    n
}

#[test]
fn a_dead_member_is_remembered_within_dead_retention() {
    let mut n = with_retention(90);
    // Swept every 60 s: at 60 s, 2 has been dead 60 s < 90 s.
    n.run_until(119 * S);
    assert_eq!(n.state(2), Some(State::Dead));
}

#[test]
fn a_dead_member_is_forgotten_at_the_first_sweep_after_dead_retention() {
    let mut n = with_retention(90);
    n.run_until(120 * S);
    assert_eq!(n.state(2), None);
}

#[test]
fn a_live_member_is_never_forgotten() {
    let mut n = with_retention(90);
    n.run_until(200 * S);
    assert_eq!(n.state(3), Some(State::Alive));
    assert_eq!(n.member(3).since, 0);
}

#[test]
fn a_forgotten_member_leaves_the_members_hash() {
    let mut n = with_retention(90);
    n.run_until(120 * S);
    let never_knew_2 = Node::with_peers(&[3]);
    assert_eq!(n.core.members_hash(), never_knew_2.core.members_hash());
}

#[test]
fn a_departed_member_is_never_pinged() {
    let mut n = Node::with_peers(&[2, 3]);
    n.answer_pings(&[3]);
    n.gossip(2, &[update(2, PEER_GEN, 1, State::Left)]);
    n.run_until(30 * S);
    let sent = n.take();
    assert!(!sent.pings().is_empty());
    assert!(sent.pings().iter().all(|p| p.0 != addr(2)));
}

#[test]
fn leaving_announces_left_at_a_higher_incarnation_to_every_peer() {
    let mut n = Node::with_peers(&[2, 3, 4]);
    n.leave();
    let left = update(ME, GEN, 1, State::Left);
    let mut to: Vec<u32> = n
        .take()
        .items_about(ME)
        .into_iter()
        .filter(|(_, u)| *u == left)
        .map(|(to, _)| to)
        .collect();
    to.sort();
    assert_eq!(to, vec![addr(2), addr(3), addr(4)]);
    assert_eq!(n.core.self_update(), left);
}

#[test]
fn a_leaving_member_stops_probing() {
    let mut n = Node::with_peers(&[2, 3]);
    n.answer_pings(&[2, 3]);
    n.leave();
    n.run_until(30 * S);
    assert_eq!(n.take().pings(), vec![]);
}

#[test]
fn a_leaving_member_does_not_refute() {
    let mut n = Node::with_peers(&[2]);
    n.leave();
    let suspicion = MemberUpdate {
        from: Some(2),
        ..about_me(1, State::Suspect)
    };
    n.gossip(2, &[suspicion]);
    n.recv(2, Msg::Gossip, &[update(ME, GEN + 5, 0, State::Alive)]);
    assert_eq!((n.core.generation(), n.core.incarnation()), (GEN, 1));
    assert_eq!(n.core.self_update().state, State::Left);
}

#[test]
fn a_generation_further_ahead_than_max_generation_ahead_is_refused() {
    let mut n = Node::with_peers(&[2, 3]);
    let ahead = n.cfg().max_generation_ahead.as_millis() as u64;
    // A forged "member 2 is dead in generation u64::MAX" changes nothing...
    n.gossip(3, &[update(2, u64::MAX, 0, State::Dead)]);
    assert_eq!(n.member(2).state, State::Alive);
    assert_eq!(n.member(2).generation, PEER_GEN);
    // ...nor a claim about us far ahead: we stay in our life.
    n.gossip(3, &[update(ME, u64::MAX, 0, State::Dead)]);
    assert_eq!(n.core.stats().refused_generations, 2);
    assert_eq!(n.core.generation(), GEN);
    // Within the bound (our start plus the time we ran plus the allowance) is a claim.
    n.advance(10 * S);
    n.gossip(3, &[update(2, GEN + 10_000 + ahead, 0, State::Alive)]);
    assert_eq!(n.member(2).generation, GEN + 10_000 + ahead);
}

#[test]
fn a_suspicion_at_the_last_incarnation_is_refuted_with_a_new_generation() {
    let mut n = Node::with_peers(&[2]);
    n.gossip(2, &[about_me(u32::MAX, State::Suspect)]);
    assert_eq!(
        n.core.generation(),
        GEN + 1,
        "no wrap to incarnation 0 of this life"
    );
    let refutation = n.take().items_about(ME);
    assert!(
        refutation
            .iter()
            .any(|(_, u)| u.generation == GEN + 1 && u.state == State::Alive),
        "{refutation:?}"
    );
}
