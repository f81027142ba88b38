//! Probing: one live member per interval in a shuffled round-robin (every member is
//! probed once per round, in an order peers cannot predict), several direct pings per
//! probe, and what a probe's outcome means for the target and for our own health.

use super::{CatalogPort, Micros, Source, Swim, us};
use crate::wire::{Claim, MemberUpdate, Msg, NodeAddr, NodeKey, State};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ProbeKind {
    /// The regular probe of the round-robin.
    RoundRobin,
    /// Our own check of a member somebody else suspects.
    Confirm,
    /// A ping to a dead member: if it answers, sync with it (partition healing).
    Reconnect,
}

/// A probe in flight, keyed by the sequence number its pings (and relays' acks) carry.
pub(super) struct Probe<K, A> {
    pub(super) target: K,
    pub(super) addr: A,
    /// What we believe of the target when it is not alive: the ping carries it so the
    /// target can refute at once (Lifeguard's buddy system).
    pub(super) claim: Option<Claim>,
    pub(super) attempts: u32,
    pub(super) next_retry: Micros,
    pub(super) deadline: Micros,
    /// Relays asked; each should nack if the target stays silent.
    pub(super) expected_nacks: u32,
    pub(super) nacks: u32,
    pub(super) kind: ProbeKind,
}

impl<K: NodeKey, A: NodeAddr> Swim<K, A> {
    /// The probe timer fired: probe the next member of the round (not once we leave),
    /// and schedule the next probe, stretched by local health.
    pub(super) fn probe_round(&mut self, now: Micros) {
        if !self.leaving
            && let Some(i) = self.next_round_robin()
        {
            self.start_probe(i, ProbeKind::RoundRobin, now);
        }
        self.next_probe = now + us(self.awareness.scale(self.cfg.probe_interval));
    }

    /// The next live member of a random permutation of the table (a random offset and a
    /// step coprime with its size), reshuffled each round and when the table changes.
    fn next_round_robin(&mut self) -> Option<usize> {
        let n = self.members.len();
        if n == 0 || self.members.live() == 0 {
            return None;
        }
        for _ in 0..n {
            if self.rr_n != n || self.rr_pos >= n {
                self.rr_n = n;
                self.rr_pos = 0;
                self.rr_off = self.rng.below(n);
                self.rr_step = 1 + self.rng.below(n);
                while gcd(self.rr_step, n) != 1 {
                    self.rr_step = 1 + self.rng.below(n);
                }
            }
            let i = (self.rr_off + self.rr_pos * self.rr_step) % n;
            self.rr_pos += 1;
            if self.members.at(i).state.is_live() {
                return Some(i);
            }
        }
        None
    }

    pub(super) fn start_probe(&mut self, i: usize, kind: ProbeKind, now: Micros) {
        let m = self.members.at(i);
        let (target, addr) = (m.key.clone(), m.addr.clone());
        let claim = (m.state != State::Alive).then_some(Claim {
            state: m.state,
            generation: m.generation,
            inc: m.inc,
        });
        if self.probes.values().any(|p| p.target == target) {
            return;
        }
        let seq = self.next_seq();
        self.stats.probes += 1;
        // Room for every direct attempt (and the indirect answers), at least 0.9 of a
        // probe interval; stretched by local health (Lifeguard).
        let base = (us(self.cfg.probe_interval) * 9 / 10)
            .max(us(self.cfg.probe_timeout) * u64::from(self.cfg.direct_attempts));
        let window = match kind {
            ProbeKind::Reconnect => base,
            _ => base * u64::from(self.awareness.score() + 1),
        };
        self.probes.insert(
            seq,
            Probe {
                target: target.clone(),
                addr: addr.clone(),
                claim,
                attempts: 1,
                next_retry: now + us(self.cfg.probe_timeout),
                deadline: now + window,
                expected_nacks: 0,
                nacks: 0,
                kind,
            },
        );
        self.send_msg(addr, Msg::Ping { seq, target, claim });
    }

    /// Retries unanswered pings every probe timeout (the first retry also goes through
    /// relays) and fails probes whose window is over.
    pub(super) fn run_probes(&mut self, now: Micros) {
        let mut due: Vec<u32> = self
            .probes
            .iter()
            .filter(|(_, p)| {
                p.deadline <= now || (p.attempts < self.cfg.direct_attempts && p.next_retry <= now)
            })
            .map(|(s, _)| *s)
            .collect();
        // In sequence order, not the map's (random per process): one seed, one run.
        due.sort_unstable();
        for seq in due {
            let Some(p) = self.probes.get(&seq) else {
                continue;
            };
            if p.deadline <= now {
                if let Some(p) = self.probes.remove(&seq) {
                    self.probe_failed(p, now);
                }
                continue;
            }
            let (target, addr, claim, attempts, kind) = (
                p.target.clone(),
                p.addr.clone(),
                p.claim,
                p.attempts,
                p.kind,
            );
            if let Some(p) = self.probes.get_mut(&seq) {
                p.attempts += 1;
                p.next_retry += us(self.cfg.probe_timeout);
            }
            self.send_msg(
                addr.clone(),
                Msg::Ping {
                    seq,
                    target: target.clone(),
                    claim,
                },
            );
            if attempts == 1 && kind != ProbeKind::Reconnect {
                self.ask_relays(seq, &target, &addr);
            }
        }
    }

    /// An ack (direct or relayed) arrived: our own health improves (Lifeguard), and a dead
    /// member that answers is synced with.
    pub(super) fn probe_succeeded(&mut self, p: Probe<K, A>, now: Micros, cat: &impl CatalogPort) {
        match p.kind {
            ProbeKind::RoundRobin => self.awareness.apply(-1),
            ProbeKind::Confirm => {}
            ProbeKind::Reconnect => {
                self.contact_sync(p.addr, now, cat);
            }
        }
    }

    /// No ack within the window: the target becomes suspect. Relays that did not even
    /// nack point at *us* being slow, so each missing nack raises our health score.
    fn probe_failed(&mut self, p: Probe<K, A>, now: Micros) {
        match p.kind {
            ProbeKind::Reconnect => return,
            ProbeKind::RoundRobin => {
                self.stats.probe_failures += 1;
                let delta = if p.expected_nacks > 0 {
                    p.expected_nacks.saturating_sub(p.nacks) as i32
                } else {
                    1
                };
                self.awareness.apply(delta);
            }
            ProbeKind::Confirm => self.stats.probe_failures += 1,
        }
        let Some(m) = self.members.get(&p.target) else {
            return;
        };
        if !m.state.is_live() {
            return;
        }
        let u = MemberUpdate {
            state: State::Suspect,
            from: Some(self.me.clone()),
            ..m.update(None)
        };
        let mut fresh = Vec::new();
        self.apply_update(u, Source::Gossip(self.me.clone()), None, now, &mut fresh);
        self.spread(fresh, None, self.cfg.eager_fanout);
    }
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}
