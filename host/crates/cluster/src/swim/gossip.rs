//! Dissemination: a new item (member update or record) is pushed at once to a few peers
//! and queued; queued items ride on every datagram we send (probes included) and on
//! gossip rounds until each has been sent `retransmit_limit(N)` times (memberlist's
//! `λ·log N`), after which anti-entropy is what repairs a member that missed it.

use super::sync::Pending;
use super::{Micros, Output, PutInto, Swim, us};
use crate::dissemination::{self, Subject};
use crate::wire::{self, Item, MemberUpdate, Msg, NodeAddr, NodeKey, Stream, WireRecord, Writer};
use sidecar_catalog::Record;
use std::sync::Arc;

impl<K: NodeKey, A: NodeAddr> Swim<K, A> {
    /// Sends `msg` to `to` with as many queued items as fit piggybacked.
    pub(super) fn send_msg(&mut self, to: A, msg: Msg<K, A>) {
        let mut payload = wire::encode_head(&self.me, self.generation, &msg);
        let budget = self.cfg.max_payload.saturating_sub(payload.len());
        let limit = self.limit();
        for item in self.queue.fill(budget, limit) {
            payload.extend_from_slice(&item);
        }
        self.outputs.push_back(Output::Datagram { to, payload });
    }

    /// Sends new items at once to a few random peers and queues them for piggybacking.
    pub(super) fn spread(
        &mut self,
        items: Vec<(Subject, Arc<[u8]>)>,
        exclude: Option<&A>,
        fanout: usize,
    ) {
        if items.is_empty() {
            return;
        }
        let head = wire::encode_head::<K, A>(&self.me, self.generation, &Msg::Gossip);
        let targets: Vec<A> = self
            .pick_live(fanout, exclude, None)
            .into_iter()
            .map(|i| self.members.at(i).addr.clone())
            .collect();
        let mut batches = Vec::new();
        let mut cur = head.clone();
        for (_, b) in &items {
            if cur.len() + b.len() > self.cfg.max_payload && cur.len() > head.len() {
                batches.push(std::mem::replace(&mut cur, head.clone()));
            }
            cur.extend_from_slice(b);
        }
        if cur.len() > head.len() {
            batches.push(cur);
        }
        for to in &targets {
            for b in &batches {
                self.outputs.push_back(Output::Datagram {
                    to: to.clone(),
                    payload: b.clone(),
                });
            }
        }
        self.enqueue(items, targets.len() as u32);
    }

    /// Queues items already sent `sent` times (the eager push counts towards the limit).
    pub(super) fn enqueue(&mut self, items: Vec<(Subject, Arc<[u8]>)>, sent: u32) {
        let limit = self.limit();
        let cap = self.cfg.queue_limit.max(2 * self.n());
        let was_empty = self.queue.is_empty();
        let mut added = false;
        for (s, b) in items {
            if sent < limit {
                self.queue.push(s, b, sent, cap);
                added = true;
            }
        }
        if added {
            // New items went out eagerly to a few peers; a quick follow-up round (a
            // quarter tick later) reaches the few the eager flood missed, then the
            // regular ticks carry on.
            let follow_up = self.last_now + us(self.cfg.gossip_interval) / 4;
            self.next_gossip = if was_empty {
                follow_up
            } else {
                self.next_gossip.min(follow_up)
            };
        }
    }

    /// A member update as a queue item: a newer one about the same member replaces it.
    pub(super) fn member_item(&self, u: &MemberUpdate<K, A>) -> (Subject, Arc<[u8]>) {
        let mut w = Writer::new();
        u.key.put_into(&mut w);
        (
            dissemination::member_subject(&w.buf),
            Item::<K, A>::Member(u.clone()).encode().into(),
        )
    }

    pub(super) fn record_items(&self, records: &[Record]) -> Vec<(Subject, Arc<[u8]>)> {
        records
            .iter()
            .map(|r| {
                let item = Item::<K, A>::Record(WireRecord {
                    announcer: r.announcer.to_string(),
                    service: r.service.clone(),
                });
                (
                    dissemination::record_subject(&r.service.hostname, &r.service.id),
                    item.encode().into(),
                )
            })
            .collect()
    }

    /// Records too large for one datagram travel on the reliable channel.
    pub(super) fn split_oversize(
        &mut self,
        items: Vec<(Subject, Arc<[u8]>)>,
        records: &[Record],
        exclude: Option<&A>,
    ) -> Vec<(Subject, Arc<[u8]>)> {
        let room = self
            .cfg
            .max_payload
            .saturating_sub(64 + self.me_encoded.len());
        let mut keep = Vec::with_capacity(items.len());
        let mut big = Vec::new();
        for ((s, b), r) in items.into_iter().zip(records) {
            if b.len() > room {
                big.push(WireRecord {
                    announcer: r.announcer.to_string(),
                    service: r.service.clone(),
                });
            } else {
                keep.push((s, b));
            }
        }
        if !big.is_empty() {
            let payload = Stream::<K, A>::Push(big).encode();
            let targets: Vec<A> = self
                .pick_live(self.cfg.eager_fanout, exclude, None)
                .into_iter()
                .map(|i| self.members.at(i).addr.clone())
                .collect();
            for to in targets {
                let req = self.next_req;
                self.next_req += 1;
                self.pending.insert(req, Pending::Push);
                self.stats.pushes += 1;
                self.outputs.push_back(Output::Stream {
                    to,
                    req,
                    payload: payload.clone(),
                });
            }
        }
        keep
    }

    /// The gossip timer fired: a round if anything is queued, then the next one a quarter
    /// tick away while items are still fresh (the same number of sends, sooner).
    pub(super) fn gossip_round(&mut self, now: Micros) {
        if !self.queue.is_empty() {
            self.gossip();
        }
        // Fresh items (sent fewer than eager + two rounds) go out at a quarter tick:
        // the same number of sends, sooner.
        let fresh = (self.cfg.eager_fanout + 2 * self.cfg.gossip_nodes) as u32;
        let interval = us(self.cfg.gossip_interval);
        self.next_gossip = now
            + match self.queue.min_transmits() {
                Some(t) if t < fresh => interval / 4,
                _ => interval,
            };
    }

    /// One round: up to `gossip_messages` datagrams of queued items to each of
    /// `gossip_nodes` random live members, no item twice to the same member.
    fn gossip(&mut self) {
        let limit = self.limit();
        let targets: Vec<A> = self
            .pick_live(self.cfg.gossip_nodes, None, None)
            .into_iter()
            .map(|i| self.members.at(i).addr.clone())
            .collect();
        let head = wire::encode_head::<K, A>(&self.me, self.generation, &Msg::Gossip);
        let budget = self.cfg.max_payload.saturating_sub(head.len());
        for to in targets {
            let mut sent = std::collections::HashSet::new();
            for _ in 0..self.cfg.gossip_messages.max(1) {
                let items = self.queue.fill_except(budget, limit, &mut sent);
                if items.is_empty() {
                    break;
                }
                let mut payload = head.clone();
                items.iter().for_each(|i| payload.extend_from_slice(i));
                self.outputs.push_back(Output::Datagram {
                    to: to.clone(),
                    payload,
                });
            }
        }
    }
}
