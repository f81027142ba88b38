//! Membership rules: which claim about a member wins ([`super::members::supersedes`]),
//! what a suspicion starts (a Lifeguard timer, confirmation probes), when a suspect is
//! declared dead, how we answer claims about ourselves (refute, or move to a newer
//! generation), and how long the dead are remembered.

use super::members::{member_hash, supersedes};
use super::probe::ProbeKind;
use super::suspicion::Suspicion;
use super::{Member, Micros, Output, Swim, us};
use crate::dissemination::Subject;
use crate::wire::{MemberUpdate, NodeAddr, NodeKey, State};
use std::sync::Arc;

/// Where a member update came from (it decides re-broadcast and who suspects).
#[derive(Clone)]
pub(super) enum Source<K> {
    /// Heard on gossip from this sender.
    Gossip(K),
    /// A full member list from anti-entropy; `join` lists are not re-broadcast.
    Sync { remote: Option<K>, join: bool },
}

impl<K: NodeKey, A: NodeAddr> Swim<K, A> {
    /// Our full table plus ourselves (what anti-entropy sends).
    pub(super) fn member_list(&self) -> Vec<MemberUpdate<K, A>> {
        let mut v: Vec<MemberUpdate<K, A>> = self.members.iter().map(|m| m.update(None)).collect();
        v.push(self.self_update());
        v
    }

    pub(super) fn apply_member_list(
        &mut self,
        list: Vec<MemberUpdate<K, A>>,
        remote: Option<K>,
        join: bool,
        limit: Option<&A>,
        now: Micros,
    ) {
        let mut fresh = Vec::new();
        for u in list {
            self.apply_update(
                u,
                Source::Sync {
                    remote: remote.clone(),
                    join,
                },
                limit,
                now,
                &mut fresh,
            );
        }
        self.enqueue(fresh, 0);
    }

    /// Suspects whose timer ran out are declared dead.
    pub(super) fn expire_suspicions(&mut self, now: Micros) {
        let mut expired: Vec<K> = self
            .suspicions
            .iter()
            .filter(|(_, s)| s.deadline <= now)
            .map(|(k, _)| k.clone())
            .collect();
        // In key order, not the map's (random per process): one seed, one run.
        expired.sort();
        for k in expired {
            self.declare_dead(k, now);
        }
    }

    fn declare_dead(&mut self, key: K, now: Micros) {
        self.suspicions.remove(&key);
        let Some(m) = self.members.get(&key) else {
            return;
        };
        if m.state != State::Suspect {
            return;
        }
        self.stats.deaths_declared += 1;
        let u = MemberUpdate {
            state: State::Dead,
            ..m.update(None)
        };
        let mut fresh = Vec::new();
        self.apply_update(u, Source::Gossip(self.me.clone()), None, now, &mut fresh);
        self.spread(fresh, None, self.cfg.eager_fanout);
    }

    /// Forgets dead and departed members after `dead_retention` (until then they stop a
    /// stale alive claim from resurrecting them, and are pinged for partition healing).
    pub(super) fn sweep(&mut self, now: Micros) {
        let retention = us(self.cfg.dead_retention);
        let gone = self
            .members
            .retain(|m| m.state.is_live() || now.saturating_sub(m.since) < retention);
        for m in gone {
            self.table_hash ^= member_hash(&m.key, m.generation, m.inc, m.state);
        }
        self.contact_syncs
            .retain(|_, t| now.saturating_sub(*t) < 60_000_000);
        self.intros.forget_full(now);
    }

    /// The newest generation a real member can have now (see `SwimConfig`).
    fn generation_ceiling(&self, now: Micros) -> u64 {
        let (start_gen, start_at) = self.start;
        let ran_ms = now.saturating_sub(start_at) / 1_000;
        let ahead_ms = self.cfg.max_generation_ahead.as_millis() as u64;
        start_gen
            .max(self.generation)
            .saturating_add(ran_ms)
            .saturating_add(ahead_ms)
    }

    /// A claim about ourselves: refute suspicion/death, move past older lives.
    pub(super) fn self_claim(
        &mut self,
        generation: u64,
        inc: u32,
        state: State,
        addr: Option<&A>,
        _now: Micros,
    ) {
        if self.leaving {
            return;
        }
        let before = (self.generation, self.inc);
        if generation > self.generation {
            // Peers remember a later life of ours (a wall clock that stepped back, or
            // another process using our name): start a newer one.
            if addr.is_some_and(|a| a != &self.addr) {
                self.stats.name_conflicts += 1;
            }
            self.generation = generation.saturating_add(1);
            self.inc = 0;
        } else if generation == self.generation && state == State::Left {
            // A previous life of ours with this very generation left (we learnt our
            // generation from peers, and that life had learnt the same): leaving is final
            // for a generation, so only a new one can come back.
            self.generation = self.generation.saturating_add(1);
            self.inc = 0;
        } else if generation == self.generation
            && inc >= self.inc
            && (state != State::Alive || inc > self.inc)
        {
            if state != State::Alive {
                self.stats.refutations += 1;
                self.awareness.apply(1);
            }
            match inc.checked_add(1) {
                Some(next) => self.inc = next,
                // No incarnation beats this claim: refute it with a new life.
                None => {
                    self.generation = self.generation.saturating_add(1);
                    self.inc = 0;
                }
            }
        }
        if (self.generation, self.inc) != before {
            let u = self.self_update();
            let item = self.member_item(&u);
            self.spread(vec![item], None, self.cfg.eager_fanout);
        }
    }

    /// Applies one claim about a member: updates the table when it supersedes what we
    /// hold, counts a repeated suspicion as a confirmation, starts or clears suspicion
    /// timers, reports state changes, and collects what is news into `fresh`. A member
    /// new to us is refused when the table is full or when `limit` (the sending host;
    /// `None` for our own conclusions and for answers to our own requests) has introduced
    /// too many new members lately.
    pub(super) fn apply_update(
        &mut self,
        mut u: MemberUpdate<K, A>,
        src: Source<K>,
        limit: Option<&A>,
        now: Micros,
        fresh: &mut Vec<(Subject, Arc<[u8]>)>,
    ) {
        if u.generation > self.generation_ceiling(now) {
            self.stats.refused_generations += 1;
            return;
        }
        if u.key == self.me {
            let addr = u.addr.clone();
            self.self_claim(u.generation, u.inc, u.state, Some(&addr), now);
            return;
        }
        let cur = self.members.get(&u.key).cloned();
        if cur.is_none()
            && (self.members.len() >= self.cfg.max_members
                || limit.is_some_and(|a| !self.intros.allow(a, now)))
        {
            self.stats.refused_members += 1;
            return;
        }
        let mut broadcast = match &src {
            Source::Gossip(_) => true,
            Source::Sync { join, .. } => !join && cur.is_some(),
        };
        let suspecter = match &src {
            Source::Gossip(s) => Some(s.clone()),
            Source::Sync { remote, .. } => remote.clone(),
        };
        if let Some(c) = &cur {
            // A full list from across a healed partition says a member we see alive is
            // dead: check for ourselves instead of believing it (no false deaths on heal).
            if matches!(src, Source::Sync { .. })
                && u.state == State::Dead
                && c.state.is_live()
                && u.generation == c.generation
            {
                u.state = State::Suspect;
                u.from = Some(suspecter.clone().unwrap_or_else(|| u.key.clone()));
            }
            if !supersedes(
                (u.generation, u.inc, u.state),
                (c.generation, c.inc, c.state),
            ) {
                // Same suspicion from another member: an independent confirmation.
                if u.state == State::Suspect
                    && c.state == State::Suspect
                    && (u.generation, u.inc) == (c.generation, c.inc)
                    && let Some(from) = u.from.clone().or(suspecter)
                    && let Some(s) = self.suspicions.get_mut(&u.key)
                    && s.confirm(from)
                    && matches!(src, Source::Gossip(_))
                {
                    fresh.push(self.member_item(&u));
                }
                return;
            }
        } else if u.state == State::Suspect {
            // Unknown member reported suspect: learn it (as suspect, with a timer).
            broadcast = matches!(src, Source::Gossip(_));
        }
        let was = cur.as_ref().map(|c| c.state);
        let addr = match &cur {
            Some(c) if u.state != State::Alive && u.generation == c.generation => c.addr.clone(),
            _ => u.addr.clone(),
        };
        let since = match &cur {
            Some(c) if c.state == u.state && c.generation == u.generation => c.since,
            _ => now,
        };
        let m = Member {
            key: u.key.clone(),
            addr,
            generation: u.generation,
            inc: u.inc,
            state: u.state,
            since,
        };
        if let Some(c) = &cur {
            self.table_hash ^= member_hash(&c.key, c.generation, c.inc, c.state);
        }
        self.table_hash ^= member_hash(&m.key, m.generation, m.inc, m.state);
        self.members.put(m);

        if u.state == State::Suspect {
            let from = u
                .from
                .clone()
                .or(suspecter)
                .unwrap_or_else(|| u.key.clone());
            let (min, max) = self.cfg.suspicion_bounds(self.n());
            let k = if self.n() < 2 + self.cfg.confirmations as usize {
                0
            } else {
                self.cfg.confirmations
            };
            let own = from == self.me;
            self.suspicions.insert(
                u.key.clone(),
                Suspicion::new(from, now, us(min), us(max), k),
            );
            self.stats.suspicions += 1;
            // A few members check a fresh suspect themselves: their failures are the
            // independent confirmations, their pings carry the suspicion to the suspect.
            let p = f64::from(self.cfg.active_probers) / self.n().max(1) as f64;
            if !own
                && !self.leaving
                && self.rng.chance(p)
                && let Some(i) = self.members.index(&u.key)
            {
                self.start_probe(i, ProbeKind::Confirm, now);
            }
        } else {
            self.suspicions.remove(&u.key);
        }
        if was.map(State::is_live) != Some(u.state.is_live()) {
            self.ranks_dirty = true;
        }
        if was != Some(u.state) || cur.as_ref().is_some_and(|c| c.generation != u.generation) {
            self.outputs.push_back(Output::Member {
                key: u.key.clone(),
                state: u.state,
                was,
            });
        }
        if broadcast {
            fresh.push(self.member_item(&u));
        }
    }
}
