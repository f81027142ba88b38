//! Indirect probes (SWIM's ping-req): when a direct ping goes unanswered, a few other
//! members ping the target for us, so one lossy path does not make a member suspect.
//! As a relay we nack if the target stays silent (Lifeguard), which tells the requester
//! its own network is fine and the target really is quiet.

use super::{Micros, Swim, us};
use crate::wire::{Msg, NodeAddr, NodeKey};

/// A ping we send on someone else's behalf, keyed by our own sequence number.
pub(super) struct Relay<A> {
    pub(super) requester: A,
    /// The requester's sequence number, which our ack or nack carries back.
    pub(super) seq: u32,
    pub(super) nack_at: Micros,
    pub(super) expires: Micros,
    pub(super) nacked: bool,
}

impl<K: NodeKey, A: NodeAddr> Swim<K, A> {
    /// Asks up to `indirect_checks` live members (not the target) to ping `target` for
    /// probe `seq`; each is expected to answer with an ack or a nack.
    pub(super) fn ask_relays(&mut self, seq: u32, target: &K, addr: &A) {
        let relays: Vec<A> = self
            .pick_live(self.cfg.indirect_checks, Some(addr), Some(target))
            .into_iter()
            .map(|i| self.members.at(i).addr.clone())
            .collect();
        if let Some(p) = self.probes.get_mut(&seq) {
            p.expected_nacks = relays.len() as u32;
        }
        for r in relays {
            self.send_msg(
                r,
                Msg::PingReq {
                    seq,
                    target: target.clone(),
                    addr: addr.clone(),
                },
            );
        }
    }

    /// `requester` asks us to ping `target` at `addr` for its probe `seq`.
    pub(super) fn relay_ping(&mut self, requester: A, seq: u32, target: K, addr: A, now: Micros) {
        let s2 = self.next_seq();
        self.relays.insert(
            s2,
            Relay {
                requester,
                seq,
                nack_at: now + us(self.cfg.probe_timeout) * 3 / 2,
                expires: now + us(self.cfg.probe_timeout) * 4,
                nacked: false,
            },
        );
        self.send_msg(
            addr,
            Msg::Ping {
                seq: s2,
                target,
                claim: None,
            },
        );
    }

    /// An ack for a ping we relayed: pass it on under the requester's sequence number.
    pub(super) fn relay_acked(&mut self, seq: u32) {
        if let Some(r) = self.relays.remove(&seq) {
            self.send_msg(r.requester, Msg::Ack { seq: r.seq });
        }
    }

    /// Nacks relayed pings still unanswered at `nack_at`; forgets them at `expires` (a
    /// later ack is no longer forwarded).
    pub(super) fn run_relays(&mut self, now: Micros) {
        let mut nacks = Vec::new();
        self.relays.retain(|&ours, r| {
            if !r.nacked && r.nack_at <= now {
                r.nacked = true;
                nacks.push((ours, r.requester.clone(), r.seq));
            }
            r.expires > now
        });
        // In our sequence order, not the map's: one seed, one run.
        nacks.sort_unstable_by_key(|n| n.0);
        for (_, to, seq) in nacks {
            self.send_msg(to, Msg::Nack { seq });
        }
    }
}
