//! Records travel on broadcast trees (Plumtree's idea, with the tree derived instead of
//! negotiated): every member ranks the live members, itself included, by a hash of their
//! names; the tree of an origin is the `tree_fanout`-ary heap laid over that ranking
//! starting at the origin, so a member's children in it are a pure function of the
//! member table and every member sends and receives each record once. No PRUNE traffic
//! is needed to shape the tree, and it heals with membership.
//!
//! What the tree loses (a dropped datagram, a crashed inner member, views that differ
//! while membership changes) is repaired lazily: each member announces the ids of the
//! records it received to `lazy_fanout` members spread around the ranking (one batched
//! datagram per `announce_delay`); a member that is told of an id it has not seen within
//! `graft_wait` asks the announcer for it (GRAFT; again, of the latest announcer, while
//! it does not come, 3 times in all) and, once it has it, forwards it to its own
//! children, which repairs its whole subtree. Anti-entropy remains the last resort.

use super::{Micros, Output, PutInto, Swim, us};
use crate::dissemination::Subject;
use crate::wire::{self, Msg, NodeAddr, NodeKey, Writer};
use std::collections::BTreeMap;
use std::sync::Arc;

/// An item we received lately: what grafts are answered with.
pub(super) struct Recent<K> {
    root: Option<K>,
    bytes: Arc<[u8]>,
}

/// Most announced-but-unseen ids we track (the rest are left to anti-entropy).
const MAX_MISSING: usize = 4096;
/// Grafts per missing id: a lost graft or answer is asked again (of the latest
/// announcer) after twice the wait, this many times in all.
const GRAFT_TRIES: u8 = 3;
/// Most recent items kept, whatever their age.
const MAX_RECENT: usize = 65_536;

pub(super) fn item_id(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

impl<K: NodeKey, A: NodeAddr> Swim<K, A> {
    pub(super) fn tree_on(&self) -> bool {
        self.cfg.tree_fanout > 0
    }

    fn rank_hash(key: &K) -> u64 {
        let mut w = Writer::new();
        key.put_into(&mut w);
        xxhash_rust::xxh3::xxh3_64(&w.buf)
    }

    /// The ranking, rebuilt when liveness changed since the last use.
    pub(super) fn ranks(&mut self) -> &[(u64, K)] {
        if self.ranks_dirty {
            self.ranks_dirty = false;
            let mut v: Vec<(u64, K)> = self
                .members
                .iter()
                .filter(|m| m.state.is_live())
                .map(|m| (Self::rank_hash(&m.key), m.key.clone()))
                .collect();
            if !self.leaving {
                v.push((Self::rank_hash(&self.me), self.me.clone()));
            }
            v.sort_unstable();
            self.ranks = v;
        }
        &self.ranks
    }

    fn rank_of(&mut self, key: &K) -> Option<usize> {
        let h = Self::rank_hash(key);
        self.ranks()
            .binary_search_by(|(rh, rk)| (rh, rk).cmp(&(&h, key)))
            .ok()
    }

    fn addr_of_rank(&self, i: usize) -> Option<A> {
        let key = &self.ranks.get(i)?.1;
        self.members.get(key).map(|m| m.addr.clone())
    }

    /// Our children in `root`'s tree; `None` when `root` or we are not in our ranking.
    pub(super) fn tree_children(&mut self, root: &K) -> Option<Vec<A>> {
        let r = self.rank_of(root)?;
        let me = self.me.clone();
        let m = self.rank_of(&me)?;
        let n = self.ranks.len();
        let k = self.cfg.tree_fanout;
        let rel = (m + n - r) % n;
        let first = rel.saturating_mul(k).saturating_add(1);
        Some(
            (first..first.saturating_add(k).min(n))
                .filter_map(|c| self.addr_of_rank((r + c) % n))
                .collect(),
        )
    }

    /// Who hears our announcements: members spread evenly around the ranking from us
    /// (`n / (lazy_fanout + 1)` apart), not our neighbours. In an origin's tree,
    /// neighbouring ranks are siblings under one parent and lose a record together when
    /// that parent does; an announcer from elsewhere in the ranking most likely has it,
    /// so a lost subtree is repaired in one round instead of a chain of them.
    pub(super) fn lazy_targets(&mut self) -> Vec<A> {
        let me = self.me.clone();
        let Some(m) = self.rank_of(&me) else {
            return Vec::new();
        };
        let n = self.ranks.len();
        let k = self.cfg.lazy_fanout.min(n.saturating_sub(1));
        let mut offsets: Vec<usize> = Vec::with_capacity(k);
        for j in 1..=k {
            // Distinct offsets in 1..n, also in clusters smaller than the fan-out needs.
            let mut d = (j * n / (k + 1)).max(1);
            while offsets.contains(&d) {
                d += 1;
            }
            if d < n {
                offsets.push(d);
            }
        }
        offsets
            .into_iter()
            .filter_map(|d| self.addr_of_rank((m + d) % n))
            .collect()
    }

    /// Records new to us: remembered, announced lazily, and pushed down `root`'s tree
    /// (`Some(me)` for our own changes). Records learnt off the tree (anti-entropy)
    /// are only announced.
    pub(super) fn tree_send(
        &mut self,
        items: Vec<(Subject, Arc<[u8]>)>,
        root: Option<K>,
        exclude: Option<&A>,
        now: Micros,
    ) {
        if items.is_empty() {
            return;
        }
        for (_, b) in &items {
            self.remember(b.clone(), root.clone(), now);
        }
        let Some(root) = root else {
            return;
        };
        let targets = match self.tree_children(&root) {
            Some(c) => c,
            // The origin is not (yet) live to us: a random fan-out instead.
            None => self
                .pick_live(self.cfg.tree_fanout, exclude, Some(&root))
                .into_iter()
                .map(|i| self.members.at(i).addr.clone())
                .collect(),
        };
        let head = wire::encode_head::<K, A>(&self.me, self.generation, &Msg::Tree { root });
        let batches = batch(&head, items.iter().map(|(_, b)| b), self.cfg.max_payload);
        for to in targets {
            for b in &batches {
                self.outputs.push_back(Output::Datagram {
                    to: to.clone(),
                    payload: b.clone(),
                });
            }
        }
    }

    fn remember(&mut self, bytes: Arc<[u8]>, root: Option<K>, now: Micros) {
        let id = item_id(&bytes);
        self.missing.remove(&id);
        if self.recent.insert(id, Recent { root, bytes }).is_none() {
            self.recent_order.push_back((now, id));
            if self.announce.is_empty() {
                self.next_announce = now + us(self.cfg.announce_delay);
            }
            self.announce.push(id);
        }
        self.forget_old(now);
    }

    fn forget_old(&mut self, now: Micros) {
        let ttl = us(self.cfg.recent_ttl);
        while let Some(&(at, id)) = self.recent_order.front() {
            if now.saturating_sub(at) < ttl && self.recent_order.len() <= MAX_RECENT {
                break;
            }
            self.recent_order.pop_front();
            self.recent.remove(&id);
        }
    }

    /// An announcement: ids we have not seen are grafted from `from` after `graft_wait`.
    pub(super) fn ihave(&mut self, from: A, ids: Vec<u64>, now: Micros) {
        let due = now + us(self.cfg.graft_wait);
        for id in ids {
            if self.recent.contains_key(&id) {
                continue;
            }
            if let Some(m) = self.missing.get_mut(&id) {
                // A later announcer is who a retry asks.
                m.0 = from.clone();
            } else if self.missing.len() < MAX_MISSING {
                self.missing.insert(id, (from.clone(), due, 0));
            }
        }
    }

    /// A graft: the items we still hold go back on their trees (the asker forwards them
    /// to its children).
    pub(super) fn graft(&mut self, from: A, ids: Vec<u64>) {
        let mut by_root: BTreeMap<Option<K>, Vec<Arc<[u8]>>> = BTreeMap::new();
        for id in ids {
            if let Some(r) = self.recent.get(&id) {
                by_root
                    .entry(r.root.clone())
                    .or_default()
                    .push(r.bytes.clone());
            }
        }
        for (root, items) in by_root {
            // Items learnt off the tree go back on the asker's own tree.
            let root = root.unwrap_or_else(|| self.me.clone());
            let head = wire::encode_head::<K, A>(&self.me, self.generation, &Msg::Tree { root });
            for payload in batch(&head, items.iter(), self.cfg.max_payload) {
                self.outputs.push_back(Output::Datagram {
                    to: from.clone(),
                    payload,
                });
            }
        }
    }

    /// Sends due announcements and grafts.
    pub(super) fn run_tree(&mut self, now: Micros) {
        if !self.announce.is_empty() && now >= self.next_announce {
            let ids = std::mem::take(&mut self.announce);
            for to in self.lazy_targets() {
                for chunk in ids.chunks(wire::MAX_IDS / 2) {
                    self.send_msg(
                        to.clone(),
                        Msg::IHave {
                            ids: chunk.to_vec(),
                        },
                    );
                }
            }
        }
        if self.missing.values().any(|(_, due, _)| *due <= now) {
            let mut asks: BTreeMap<Vec<u8>, (A, Vec<u64>)> = BTreeMap::new();
            let again = now + 2 * us(self.cfg.graft_wait);
            self.missing.retain(|id, (from, due, tries)| {
                if *due > now {
                    return true;
                }
                // Grouped by announcer (keyed by its encoding: one seed, one run).
                let mut w = Writer::new();
                from.put_into(&mut w);
                asks.entry(w.buf)
                    .or_insert_with(|| (from.clone(), Vec::new()))
                    .1
                    .push(*id);
                *tries += 1;
                *due = again;
                *tries < GRAFT_TRIES
            });
            for (_, (to, ids)) in asks {
                for chunk in ids.chunks(wire::MAX_IDS / 2) {
                    self.stats.grafts += 1;
                    self.send_msg(
                        to.clone(),
                        Msg::Graft {
                            ids: chunk.to_vec(),
                        },
                    );
                }
            }
        }
    }

    /// The earliest announcement or graft due.
    pub(super) fn tree_deadline(&self) -> Micros {
        let mut d = Micros::MAX;
        if !self.announce.is_empty() {
            d = self.next_announce;
        }
        self.missing.values().fold(d, |d, (_, due, _)| d.min(*due))
    }
}

/// `items` after `head`, as few datagrams of at most `max` bytes as they fit in.
fn batch<'a>(head: &[u8], items: impl Iterator<Item = &'a Arc<[u8]>>, max: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur = head.to_vec();
    for b in items {
        if cur.len() + b.len() > max && cur.len() > head.len() {
            out.push(std::mem::replace(&mut cur, head.to_vec()));
        }
        cur.extend_from_slice(b);
    }
    if cur.len() > head.len() {
        out.push(cur);
    }
    out
}
