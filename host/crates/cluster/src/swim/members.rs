//! The member table: one entry per member name, in a dense `Vec` indexed by a hash map
//! (compact, and O(1) per update, which matters with 10,000 tables of 10,000 in the
//! simulator and with hostile 200k-member lists), with the precedence rule that decides
//! which claim about a member wins.

use super::Micros;
use crate::wire::{MemberUpdate, State, Wire, Writer};
use std::collections::HashMap;
use std::hash::Hash;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member<K, A> {
    pub key: K,
    pub addr: A,
    pub generation: u64,
    pub inc: u32,
    pub state: State,
    /// When the state last changed (our clock).
    pub since: Micros,
}

impl<K: Clone, A: Clone> Member<K, A> {
    pub fn update(&self, from: Option<K>) -> MemberUpdate<K, A> {
        MemberUpdate {
            key: self.key.clone(),
            addr: self.addr.clone(),
            generation: self.generation,
            inc: self.inc,
            state: self.state,
            from,
        }
    }
}

/// True when a claim `(generation, inc, state)` overrides what we hold: a newer life always
/// wins; a departure is final within its life; then the higher incarnation; then the
/// graver state (alive < suspect < dead < left).
pub fn supersedes(new: (u64, u32, State), old: (u64, u32, State)) -> bool {
    if new.0 != old.0 {
        return new.0 > old.0;
    }
    if old.2 == State::Left {
        return false;
    }
    if new.1 != old.1 {
        return new.1 > old.1;
    }
    new.2 > old.2
}

/// Order-independent hash contribution of one member (what anti-entropy compares).
pub fn member_hash<K: Wire>(key: &K, generation: u64, inc: u32, state: State) -> u64 {
    let mut w = Writer::with_capacity(32);
    key.put(&mut w);
    w.varint(generation);
    w.varint(u64::from(inc));
    w.u8(u8::from(!state.is_live()));
    xxhash_rust::xxh3::xxh3_64(&w.buf)
}

/// Dense storage plus a key index: lookups, inserts and removals are O(1), so a list of
/// n members costs O(n) to apply (a sorted `Vec` made a 200k-member frame O(n²)). Probing
/// and random picks address members by position in `entries`; positions are stable
/// except that a removal moves the last entry into the hole (`swap_remove`), which keeps
/// the order deterministic for a given history (the map is only ever looked up, never
/// iterated, so its per-process random order never shows).
#[derive(Clone, Debug)]
pub struct MemberTable<K, A> {
    entries: Vec<Member<K, A>>,
    index: HashMap<K, usize>,
    live: usize,
}

impl<K: Hash + Eq + Clone, A: Clone> Default for MemberTable<K, A> {
    fn default() -> Self {
        MemberTable {
            entries: Vec::new(),
            index: HashMap::new(),
            live: 0,
        }
    }
}

impl<K: Hash + Eq + Clone, A: Clone> MemberTable<K, A> {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Members that are alive or suspect (not counting ourselves).
    pub fn live(&self) -> usize {
        self.live
    }

    pub fn index(&self, key: &K) -> Option<usize> {
        self.index.get(key).copied()
    }

    pub fn get(&self, key: &K) -> Option<&Member<K, A>> {
        self.index(key).map(|i| &self.entries[i])
    }

    pub fn at(&self, i: usize) -> &Member<K, A> {
        &self.entries[i]
    }

    /// In table order (insertion order, disturbed only by removals).
    pub fn iter(&self) -> impl Iterator<Item = &Member<K, A>> {
        self.entries.iter()
    }

    /// Inserts or replaces; returns the previous entry.
    pub fn put(&mut self, m: Member<K, A>) -> Option<Member<K, A>> {
        if m.state.is_live() {
            self.live += 1;
        }
        match self.index.get(&m.key) {
            Some(&i) => {
                let old = std::mem::replace(&mut self.entries[i], m);
                if old.state.is_live() {
                    self.live -= 1;
                }
                Some(old)
            }
            None => {
                self.index.insert(m.key.clone(), self.entries.len());
                self.entries.push(m);
                None
            }
        }
    }

    /// Bulk load of a duplicate-free list (simulator pre-seeding).
    pub fn load(&mut self, entries: Vec<Member<K, A>>) {
        self.live = entries.iter().filter(|m| m.state.is_live()).count();
        self.index = entries
            .iter()
            .enumerate()
            .map(|(i, m)| (m.key.clone(), i))
            .collect();
        self.entries = entries;
    }

    /// Removes entries for which `keep` is false; returns them. O(n) for any number of
    /// removals.
    pub fn retain(&mut self, mut keep: impl FnMut(&Member<K, A>) -> bool) -> Vec<Member<K, A>> {
        let mut gone = Vec::new();
        let mut i = 0;
        while i < self.entries.len() {
            if keep(&self.entries[i]) {
                i += 1;
                continue;
            }
            let m = self.entries.swap_remove(i);
            self.index.remove(&m.key);
            if let Some(moved) = self.entries.get(i) {
                self.index.insert(moved.key.clone(), i);
            }
            if m.state.is_live() {
                self.live -= 1;
            }
            gone.push(m);
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use State::*;

    #[test]
    fn precedence_follows_generation_then_incarnation_then_state() {
        assert!(supersedes((2, 0, Alive), (1, 9, Dead)), "a new life wins");
        assert!(!supersedes((1, 9, Alive), (2, 0, Alive)));
        assert!(supersedes((1, 1, Alive), (1, 0, Dead)), "refutation");
        assert!(supersedes((1, 0, Suspect), (1, 0, Alive)));
        assert!(supersedes((1, 0, Dead), (1, 0, Suspect)));
        assert!(!supersedes((1, 0, Alive), (1, 0, Suspect)));
        assert!(!supersedes((1, 5, Alive), (1, 0, Left)), "leaving is final");
        assert!(supersedes((2, 0, Alive), (1, 0, Left)));
    }

    #[test]
    fn table_counts_live_members() {
        let mut t: MemberTable<u32, u32> = MemberTable::default();
        let m = |key, state| Member {
            key,
            addr: key,
            generation: 1,
            inc: 0,
            state,
            since: 0,
        };
        t.put(m(3, Alive));
        t.put(m(1, Suspect));
        t.put(m(2, Dead));
        assert_eq!((t.len(), t.live()), (3, 2));
        t.put(m(3, Dead));
        assert_eq!(t.live(), 1);
        assert_eq!(t.at(0).key, 3, "insertion order");
        let gone = t.retain(|m| m.state != Dead);
        assert_eq!(gone.len(), 2);
        assert_eq!(t.live(), 1);
    }

    /// Positions and the key index agree after any mix of inserts, updates and removals,
    /// and the order depends only on the history (not on the map's hashing).
    #[test]
    fn index_and_positions_agree_after_removals() {
        let build = || {
            let mut t: MemberTable<u32, u32> = MemberTable::default();
            for k in 0..1000u32 {
                let state = if k % 3 == 0 { Dead } else { Alive };
                t.put(Member {
                    key: k * 7919 % 1000,
                    addr: k,
                    generation: 1,
                    inc: 0,
                    state,
                    since: 0,
                });
            }
            t.retain(|m| m.state != Dead);
            t.put(Member {
                key: 5000,
                addr: 0,
                generation: 1,
                inc: 0,
                state: Suspect,
                since: 0,
            });
            t
        };
        let t = build();
        assert_eq!(t.len(), 667);
        assert_eq!(t.live(), 667);
        for i in 0..t.len() {
            assert_eq!(t.index(&t.at(i).key), Some(i));
        }
        let keys = |t: &MemberTable<u32, u32>| t.iter().map(|m| m.key).collect::<Vec<_>>();
        assert_eq!(keys(&t), keys(&build()), "deterministic order");
        assert!(t.get(&0).is_none(), "removed");
    }
}
