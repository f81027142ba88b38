//! The retransmit queue behind piggybacking (memberlist's `TransmitLimitedQueue`): each
//! item is sent a bounded number of times, least-sent first, and a newer item about the
//! same subject (a member, or a record's host and ID) replaces the older one, so the
//! queue holds at most one item per subject.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// What an item is about: a newer item with the same subject invalidates the older.
pub type Subject = u64;

pub fn member_subject(encoded_key: &[u8]) -> Subject {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(b"m");
    h.update(encoded_key);
    h.digest()
}

pub fn record_subject(hostname: &str, id: &str) -> Subject {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(b"r");
    h.update(hostname.as_bytes());
    h.update(&[0]);
    h.update(id.as_bytes());
    h.digest()
}

struct Entry {
    bytes: Arc<[u8]>,
    transmits: u32,
    /// Insertion order: among equally-sent items the newest goes first.
    id: u64,
}

#[derive(Default)]
pub struct TransmitQueue {
    entries: HashMap<Subject, Entry>,
    /// (transmits, newest first, subject)
    order: BTreeSet<(u32, u64, Subject)>,
    next_id: u64,
    /// Items dropped because the queue was full.
    pub dropped: u64,
}

/// Items scanned per fill before giving up on finding one that fits.
const SCAN_LIMIT: usize = 512;

impl TransmitQueue {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Fewest transmissions of any queued item.
    pub fn min_transmits(&self) -> Option<u32> {
        self.order.iter().next().map(|&(t, _, _)| t)
    }

    /// Queues `bytes` (already sent `transmits` times), replacing any item on `subject`.
    pub fn push(&mut self, subject: Subject, bytes: Arc<[u8]>, transmits: u32, limit: usize) {
        if let Some(old) = self.entries.remove(&subject) {
            self.order
                .remove(&(old.transmits, u64::MAX - old.id, subject));
        }
        self.next_id += 1;
        let id = self.next_id;
        self.order.insert((transmits, u64::MAX - id, subject));
        self.entries.insert(
            subject,
            Entry {
                bytes,
                transmits,
                id,
            },
        );
        while self.entries.len() > limit.max(1) {
            // Full: drop the most-sent (then oldest) item.
            let Some(&(t, rid, s)) = self.order.iter().next_back() else {
                break;
            };
            self.order.remove(&(t, rid, s));
            self.entries.remove(&s);
            self.dropped += 1;
        }
    }

    /// Takes items that fit in `budget` bytes, least-sent first, counting one transmission
    /// each; items reaching `limit` transmissions leave the queue.
    pub fn fill(&mut self, budget: usize, limit: u32) -> Vec<Arc<[u8]>> {
        self.fill_except(budget, limit, &mut HashSet::new())
    }

    /// Like [`Self::fill`], skipping subjects in `sent` (already in an earlier datagram to
    /// the same peer this round) and adding the ones it takes.
    pub fn fill_except(
        &mut self,
        mut budget: usize,
        limit: u32,
        sent: &mut HashSet<Subject>,
    ) -> Vec<Arc<[u8]>> {
        let mut out = Vec::new();
        let mut taken = Vec::new();
        for (scanned, &(t, rid, s)) in self.order.iter().enumerate() {
            if scanned >= SCAN_LIMIT || budget < 8 {
                break;
            }
            if sent.contains(&s) {
                continue;
            }
            let Some(e) = self.entries.get(&s) else {
                continue;
            };
            if e.bytes.len() <= budget {
                sent.insert(s);
                budget -= e.bytes.len();
                out.push(e.bytes.clone());
                taken.push((t, rid, s));
            }
        }
        for (t, rid, s) in taken {
            self.order.remove(&(t, rid, s));
            if t + 1 >= limit {
                self.entries.remove(&s);
            } else if let Some(e) = self.entries.get_mut(&s) {
                e.transmits = t + 1;
                self.order.insert((t + 1, rid, s));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(n: usize, v: u8) -> Arc<[u8]> {
        vec![v; n].into()
    }

    #[test]
    fn newer_items_replace_older_and_least_sent_go_first() {
        let mut q = TransmitQueue::default();
        q.push(1, b(10, 1), 0, 100);
        q.push(2, b(10, 2), 2, 100);
        q.push(1, b(10, 3), 0, 100);
        assert_eq!(q.len(), 2);
        let got = q.fill(15, 4);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0][0], 3, "replaced item, least sent");
        // item 1 now at 1 transmit, item 2 at 2.
        let got = q.fill(100, 4);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0][0], 3);
    }

    #[test]
    fn items_retire_after_the_limit_and_the_queue_is_bounded() {
        let mut q = TransmitQueue::default();
        q.push(1, b(10, 1), 0, 100);
        for _ in 0..3 {
            assert_eq!(q.fill(100, 3).len(), 1);
        }
        assert!(q.fill(100, 3).is_empty());
        for s in 0..10 {
            q.push(s, b(10, s as u8), s as u32, 5);
        }
        assert_eq!(q.len(), 5);
        assert_eq!(q.dropped, 5);
    }

    #[test]
    fn one_round_to_one_peer_sends_each_item_once() {
        let mut q = TransmitQueue::default();
        for s in 0..3 {
            q.push(s, b(600, s as u8), 0, 100);
        }
        let mut sent = HashSet::new();
        let mut datagrams = 0;
        while !q.fill_except(1000, 10, &mut sent).is_empty() {
            datagrams += 1;
        }
        assert_eq!(datagrams, 3, "three items, one per datagram, none repeated");
        assert_eq!(q.len(), 3);
    }

    #[test]
    fn items_that_do_not_fit_are_skipped_not_lost() {
        let mut q = TransmitQueue::default();
        q.push(1, b(100, 1), 0, 10);
        q.push(2, b(10, 2), 0, 10);
        let got = q.fill(50, 4);
        assert_eq!(got.len(), 1);
        assert_eq!(q.len(), 2);
    }
}
