//! Anti-entropy scheduling and its stream exchange ([`crate::antientropy`] has the
//! digest maths): a full exchange with each seed on join (retried with backoff), one with
//! a random live member every push-pull period, one with a dead member that talks to us
//! or answers a reconnect ping, and one with a seed that is not a live member (healed
//! partitions). Gossip loses items; these exchanges are what makes the cluster converge.

use super::membership::Source;
use super::probe::ProbeKind;
use super::{CatalogPort, Micros, Output, Swim, merge_records, to_wire, us};
use crate::antientropy;
use crate::wire::{
    NodeAddr, NodeKey, State, Stream, SyncDigest, SyncHosts, SyncRecords, WireRecord,
};
use std::time::Duration;

/// A stream request of ours awaiting its reply.
pub(super) enum Pending<A> {
    Digest { to: A, join: bool, bits: u8 },
    Records,
    Push,
}

impl<K: NodeKey, A: NodeAddr> Swim<K, A> {
    /// The sync timer fired: exchange with one random live member; the next exchange
    /// comes after 0.5–1.5 push-pull periods (scaled with N like memberlist).
    pub(super) fn sync_round(&mut self, now: Micros, cat: &impl CatalogPort) {
        let n = self.n();
        if let Some(&i) = self.pick_live(1, None, None).first() {
            let to = self.members.at(i).addr.clone();
            self.start_sync(to, false, cat);
        }
        let period = us(self.cfg.push_pull_for(n));
        self.next_sync = now + period / 2 + self.rng.below(period as usize) as u64;
    }

    /// Opens an exchange with `to`: our self-update, members hash and catalog digest.
    pub(super) fn start_sync(&mut self, to: A, join: bool, cat: &impl CatalogPort) {
        let fps = cat.fingerprints();
        let bits = antientropy::bucket_bits_for(fps.len());
        let digest = SyncDigest {
            sender: self.self_update(),
            join,
            members_hash: self.members_hash(),
            bucket_bits: bits,
            buckets: antientropy::buckets(&fps, bits),
        };
        let req = self.next_req;
        self.next_req += 1;
        self.pending.insert(
            req,
            Pending::Digest {
                to: to.clone(),
                join,
                bits,
            },
        );
        self.stats.syncs_started += 1;
        self.outputs.push_back(Output::Stream {
            to,
            req,
            payload: Stream::<K, A>::Digest(digest).encode(),
        });
    }

    /// A member we hold as dead talks to us (or answers): exchange state so both sides
    /// learn what the other believes and refute (rate-limited per address).
    pub(super) fn contact_sync(&mut self, to: A, now: Micros, cat: &impl CatalogPort) {
        let last = self.contact_syncs.get(&to).copied();
        if last.is_some_and(|t| now < t + 10_000_000) {
            return;
        }
        self.contact_syncs.insert(to.clone(), now);
        self.start_sync(to, false, cat);
    }

    /// Pings one dead member still within retention (partition healing: if it answers,
    /// [`Self::probe_succeeded`] syncs with it).
    pub(super) fn reconnect(&mut self, now: Micros) {
        let retention = us(self.cfg.dead_retention);
        let n = self.members.len();
        if n == 0 || self.members.live() == n {
            return;
        }
        for _ in 0..16 {
            let i = self.rng.below(n);
            let m = self.members.at(i);
            if m.state == State::Dead && now.saturating_sub(m.since) < retention {
                self.start_probe(i, ProbeKind::Reconnect, now);
                return;
            }
        }
    }

    pub(super) fn rejoin(&mut self, now: Micros, cat: &impl CatalogPort) {
        if self.seeds.is_empty() {
            self.next_rejoin = now + us(self.cfg.rejoin_interval);
            return;
        }
        if !self.joined {
            // Nobody answered yet: keep trying every seed, backing off to 60 s.
            for s in self.seeds.clone() {
                self.start_sync(s, true, cat);
            }
            self.join_backoff = (self.join_backoff * 2).min(Duration::from_secs(60));
            self.next_rejoin = now + us(self.join_backoff);
            return;
        }
        // A seed that is not a live member may be on the other side of a healed
        // partition (or restarted under a new name): exchange with it.
        let candidates: Vec<A> = self
            .seeds
            .iter()
            .filter(|s| **s != self.addr)
            .filter(|s| {
                !self
                    .members
                    .iter()
                    .any(|m| m.state.is_live() && &m.addr == *s)
            })
            .cloned()
            .collect();
        if !candidates.is_empty() {
            let s = candidates[self.rng.below(candidates.len())].clone();
            self.start_sync(s, false, cat);
        }
        self.next_rejoin = now + us(self.cfg.rejoin_interval);
    }

    /// Answers a digest: learns the sender, then returns the differing buckets' host
    /// fingerprints, and our member list when the member hashes differ (or it joins).
    pub(super) fn answer_digest(
        &mut self,
        from: A,
        d: SyncDigest<K, A>,
        now: Micros,
        cat: &impl CatalogPort,
    ) -> Stream<K, A> {
        let remote = d.sender.key.clone();
        let mut fresh = Vec::new();
        let limit = from.source();
        self.apply_update(
            d.sender,
            Source::Gossip(remote),
            Some(&limit),
            now,
            &mut fresh,
        );
        // A joining member is news: push it like any other.
        self.spread(fresh, Some(&from), self.cfg.eager_fanout);
        let fps = cat.fingerprints();
        let mine = antientropy::buckets(&fps, d.bucket_bits);
        let diff = if mine.len() == d.buckets.len() {
            antientropy::differing(&mine, &d.buckets)
        } else {
            (0..mine.len() as u32).collect()
        };
        let hosts = antientropy::hosts_in(fps, d.bucket_bits, &diff);
        let members = (d.join || d.members_hash != self.members_hash()).then(|| self.member_list());
        Stream::Hosts(SyncHosts {
            members,
            buckets: diff,
            hosts,
        })
    }

    /// Answers the initiator's second request: takes its members (new ones rate-limited
    /// per sending host) and records, returns the hosts it wants, de-duplicated. More
    /// wants than `max_members` (every host is a member) is a hostile request: nothing
    /// is answered and it is counted. The driver reads and encodes the records
    /// ([`super::StreamAnswer::Records`]).
    pub(super) fn answer_records(
        &mut self,
        from: &A,
        s: SyncRecords<K, A>,
        now: Micros,
        cat: &mut impl CatalogPort,
    ) -> Vec<String> {
        if let Some(list) = s.members {
            self.apply_member_list(list, None, false, Some(&from.source()), now);
        }
        let stored = merge_records(cat, s.records);
        let items = self.record_items(&stored);
        self.enqueue(items, 0);
        let mut want = s.want;
        want.sort_unstable();
        want.dedup();
        if want.len() > self.cfg.max_members {
            self.stats.refused_wants += 1;
            return Vec::new();
        }
        want
    }

    /// The answer to our digest: we are joined; take its members, then send what differs
    /// (our records, the hosts we want, our members if it sent its own).
    pub(super) fn digest_answered(
        &mut self,
        to: A,
        join: bool,
        bits: u8,
        h: SyncHosts<K, A>,
        now: Micros,
        cat: &impl CatalogPort,
    ) {
        self.joined = true;
        let sent_members = h.members.is_some();
        if let Some(list) = h.members {
            // Our own request to a peer we chose: not rate-limited (a join learns the
            // whole cluster at once).
            self.apply_member_list(list, None, join, None, now);
        }
        let mine = antientropy::hosts_in(cat.fingerprints(), bits, &h.buckets);
        let (send, want) = antientropy::plan(&mine, &h.hosts);
        let records: Vec<WireRecord> = send
            .iter()
            .flat_map(|host| cat.host_records(host))
            .map(to_wire)
            .collect();
        let members = sent_members.then(|| self.member_list());
        if records.is_empty() && want.is_empty() && members.is_none() {
            return;
        }
        let payload = Stream::Records(SyncRecords {
            members,
            records,
            want,
        })
        .encode();
        let req = self.next_req;
        self.next_req += 1;
        self.pending.insert(req, Pending::Records);
        self.outputs.push_back(Output::Stream { to, req, payload });
    }
}
