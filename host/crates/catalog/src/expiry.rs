//! Lifespans: expiry of unrefreshed records, purge of old tombstones, member departure.

use super::clock::Now;
use super::model::Status;
use super::store::{Applied, Catalog};
use std::time::Duration;

impl Catalog {
    /// Sidecar's `TombstoneOthersServices`, measured on our own monotonic clock:
    ///
    /// * a tombstone is deleted once we have held it for the tombstone lifespan (3 h), or
    ///   once its `Updated` is that old by its announcer's clock as we estimate it (so a
    ///   late copy that reaches us is not kept for three more hours; no wall clocks are
    ///   compared, so skew between hosts changes nothing);
    /// * an ALIVE/UNHEALTHY/UNKNOWN record whose announcer we have not heard from, and
    ///   that we have not received a newer version of, for 80 s (DRAINING: 10 min) becomes
    ///   a tombstone stamped `Updated + 1 s`, so that a newer record held elsewhere still
    ///   wins.
    ///
    /// Run it every couple of seconds (Sidecar: 2 s).
    pub fn expire(&mut self, now: Now) -> Applied {
        let mut purge = Vec::new();
        let mut expire = Vec::new();
        for (host, server) in &self.state.servers {
            let metas = self.meta.get(host);
            for (id, svc) in &server.services {
                let meta = metas.and_then(|m| m.get(id));
                let heard = meta
                    .map(|m| {
                        let by_announcer = self
                            .announcer_heard
                            .get(&m.announcer)
                            .copied()
                            .unwrap_or_default();
                        m.heard.max(by_announcer)
                    })
                    .unwrap_or_default();
                let age = now.mono.since(heard);
                let origin_now = match meta {
                    Some(m) if m.announcer == self.me => Some(now.wall),
                    Some(m) => self.origin_now(&m.announcer, now),
                    None => None,
                };
                let issued_long_ago = origin_now
                    .is_some_and(|o| svc.updated < o.saturating_sub(self.lifespans.tombstone));
                match svc.status {
                    Status::Tombstone if age > self.lifespans.tombstone || issued_long_ago => {
                        purge.push((host.clone(), id.clone()));
                    }
                    Status::Draining if age > self.lifespans.draining => {
                        expire.push((host.clone(), id.clone(), svc.updated));
                    }
                    Status::Alive | Status::Unhealthy | Status::Unknown
                        if age > self.lifespans.alive =>
                    {
                        expire.push((host.clone(), id.clone(), svc.updated));
                    }
                    _ => {}
                }
            }
        }
        let mut out = Applied::default();
        for (host, id) in purge {
            if self.remove(&host, &id) {
                out.removed.push((host, id));
            }
        }
        for (host, id, updated) in expire {
            let stamp = updated.saturating_add(Duration::from_secs(1));
            if &*self.me == host.as_str() {
                self.clock.observe(stamp);
            }
            self.tombstone(&host, &id, stamp, now.mono, &mut out);
        }
        self.forget_silent_announcers(now);
        out
    }

    /// Drops what we remember about announcers that hold no records here and that we
    /// have not heard from for a tombstone lifespan: names come from the network, so the
    /// tables keyed by them must shrink again.
    fn forget_silent_announcers(&mut self, now: Now) {
        let keep = self.lifespans.tombstone;
        let (me, per_announcer) = (&self.me, &self.per_announcer);
        let silent = |name: &std::sync::Arc<str>, heard: super::clock::Mono| {
            name != me && !per_announcer.contains_key(name) && now.mono.since(heard) > keep
        };
        self.announcer_heard
            .retain(|name, heard| !silent(name, *heard));
        self.announcer_clock
            .retain(|name, (_, heard)| !silent(name, *heard));
    }

    /// Sidecar's `ExpireServer`: a member left or died, so every live record it announced
    /// becomes a tombstone. Stamped with our wall clock, but always after the record's own
    /// stamp, so the tombstone wins even when our clock is behind the departed host's.
    pub fn tombstone_announcer(&mut self, announcer: &str, now: Now) -> Applied {
        let mut targets = Vec::new();
        for (host, ids) in &self.meta {
            for (id, meta) in ids {
                if &*meta.announcer != announcer {
                    continue;
                }
                if let Some(svc) = self.state.get(host, id).filter(|s| !s.is_tombstone()) {
                    targets.push((host.clone(), id.clone(), svc.updated));
                }
            }
        }
        targets.sort();
        let mut out = Applied::default();
        for (host, id, updated) in targets {
            let stamp = now.wall.max(updated.saturating_add(Duration::from_secs(1)));
            self.tombstone(&host, &id, stamp, now.mono, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::clock::{Mono, Now};
    use super::super::merge::tests::{svc, ts};
    use super::super::model::Status;
    use super::super::store::Catalog;
    use std::time::Duration;

    fn at(wall: &str, mono_secs: u64) -> Now {
        Now::new(ts(wall), Mono(Duration::from_secs(mono_secs)))
    }

    #[test]
    fn unrefreshed_records_expire_after_80s_stamped_updated_plus_1s() {
        for status in [Status::Alive, Status::Unhealthy, Status::Unknown] {
            let mut c = Catalog::new("me", "default");
            c.merge(
                "a",
                svc("a", "x", status, "2024-05-01T10:00:00.5Z"),
                at("2024-05-01T10:00:00.5Z", 100),
            );
            assert!(
                c.expire(at("2024-05-01T10:01:20.5Z", 180)).is_empty(),
                "80 s is not yet expired"
            );
            let out = c.expire(at("2024-05-01T10:01:21Z", 181));
            assert_eq!(out.events.len(), 1, "{status:?}");
            assert_eq!(out.events[0].previous_status, status);
            let stored = c.state().get("a", "x").expect("kept as tombstone");
            assert_eq!(stored.status, Status::Tombstone);
            assert_eq!(stored.updated, ts("2024-05-01T10:00:01.5Z"));
            assert_eq!(out.stored.len(), 1, "the tombstone is disseminated");
        }
    }

    #[test]
    fn draining_records_expire_after_ten_minutes() {
        let mut c = Catalog::new("me", "default");
        c.merge(
            "a",
            svc("a", "x", Status::Draining, "2024-05-01T10:00:00Z"),
            at("2024-05-01T10:00:00Z", 0),
        );
        assert!(c.expire(at("2024-05-01T10:05:00Z", 300)).is_empty());
        assert!(c.expire(at("2024-05-01T10:10:00Z", 600)).is_empty());
        let out = c.expire(at("2024-05-01T10:10:01Z", 601));
        assert_eq!(out.events.len(), 1);
        assert_eq!(
            c.state().get("a", "x").map(|s| (s.status, s.updated)),
            Some((Status::Tombstone, ts("2024-05-01T10:00:01Z")))
        );
    }

    #[test]
    fn hearing_from_the_announcer_keeps_records_alive() {
        let mut c = Catalog::new("me", "default");
        c.merge(
            "a",
            svc("a", "x", Status::Alive, "2024-05-01T10:00:00Z"),
            at("2024-05-01T10:00:00Z", 0),
        );
        c.refresh_announcer("a", Mono(Duration::from_secs(70)));
        assert!(c.expire(at("2024-05-01T10:02:00Z", 120)).is_empty());
        assert_eq!(c.expire(at("2024-05-01T10:02:31Z", 151)).events.len(), 1);
    }

    #[test]
    fn clock_skew_does_not_expire_live_records() {
        // The announcer's wall clock is two hours behind ours; we keep hearing from it.
        let mut c = Catalog::new("me", "default");
        c.merge(
            "a",
            svc("a", "x", Status::Alive, "2024-05-01T08:00:00Z"),
            at("2024-05-01T10:00:00Z", 0),
        );
        for s in (2..600).step_by(2) {
            c.refresh_announcer("a", Mono(Duration::from_secs(s)));
            assert!(
                c.expire(at("2024-05-01T10:00:00Z", s)).is_empty(),
                "at {s}s"
            );
        }
        assert_eq!(
            c.state().get("a", "x").map(|s| s.status),
            Some(Status::Alive)
        );
    }

    #[test]
    fn announcers_with_no_records_are_forgotten_after_a_tombstone_lifespan() {
        let mut c = Catalog::new("me", "default");
        c.merge(
            "a",
            svc("a", "x", Status::Tombstone, "2024-05-01T10:00:00Z"),
            at("2024-05-01T10:00:00Z", 0),
        );
        c.refresh_announcer("gone", Mono(Duration::ZERO));
        c.expire(at("2024-05-01T11:00:00Z", 3600));
        assert!(c.announcer_heard.contains_key("gone"), "heard an hour ago");
        assert!(c.announcer_clock.contains_key("a"), "holds a record");
        // Three hours on, the tombstone is purged and both names are forgotten.
        c.expire(at("2024-05-01T13:00:01Z", 3 * 3600 + 1));
        assert!(c.state().get("a", "x").is_none());
        assert!(c.announcer_heard.is_empty());
        assert!(c.announcer_clock.is_empty());
    }

    #[test]
    fn tombstones_are_not_re_tombstoned_and_are_purged_after_three_hours() {
        let mut c = Catalog::new("me", "default");
        c.merge(
            "a",
            svc("a", "x", Status::Tombstone, "2024-05-01T10:00:00Z"),
            at("2024-05-01T10:00:00Z", 0),
        );
        c.merge(
            "a",
            svc("a", "y", Status::Alive, "2024-05-01T10:00:00Z"),
            at("2024-05-01T10:00:00Z", 0),
        );
        let out = c.expire(at("2024-05-01T10:02:00Z", 120));
        assert_eq!(out.events.len(), 1, "only the live record expires");
        assert_eq!(out.events[0].service.id, "y");
        assert!(
            c.expire(at("2024-05-01T12:59:59Z", 3 * 3600 - 1))
                .events
                .is_empty()
        );
        assert_eq!(c.state().servers["a"].services.len(), 2);
        let out = c.expire(at("2024-05-01T13:00:01Z", 3 * 3600 + 1));
        assert_eq!(out.removed.len(), 1, "x is purged at 3 h");
        let out = c.expire(at("2024-05-01T13:02:02Z", 3 * 3600 + 122));
        assert_eq!(
            out.removed.len(),
            1,
            "y (tombstoned at 10:02) is purged 3 h later"
        );
        assert!(
            c.state().servers.is_empty(),
            "the empty server goes with it"
        );
    }

    #[test]
    fn late_copies_of_old_tombstones_are_not_kept_for_another_three_hours() {
        let mut c = Catalog::new("me", "default");
        // `a`'s clock says 12:59 (a fresh record), and a copy of a tombstone it issued at
        // 10:00 arrives late: by `a`'s clock it is nearly expired. Our wall clock is an
        // hour behind `a`'s, which changes nothing.
        c.merge(
            "a",
            svc("a", "fresh", Status::Alive, "2024-05-01T12:59:00Z"),
            at("2024-05-01T11:59:00Z", 0),
        );
        c.merge(
            "a",
            svc("a", "x", Status::Tombstone, "2024-05-01T10:00:00Z"),
            at("2024-05-01T11:59:00Z", 0),
        );
        assert_eq!(c.expire(at("2024-05-01T11:59:59Z", 59)).removed.len(), 0);
        assert_eq!(c.expire(at("2024-05-01T12:00:01Z", 61)).removed.len(), 1);
    }

    #[test]
    fn departed_member_has_every_live_record_tombstoned() {
        let mut c = Catalog::new("me", "default");
        let t = at("2024-05-01T10:00:00Z", 0);
        c.merge("a", svc("a", "x", Status::Alive, "2024-05-01T10:00:00Z"), t);
        c.merge(
            "a",
            svc("a", "y", Status::Unhealthy, "2024-05-01T10:00:00Z"),
            t,
        );
        c.merge(
            "a",
            svc("a", "z", Status::Tombstone, "2024-05-01T09:00:00Z"),
            t,
        );
        c.merge("b", svc("b", "w", Status::Alive, "2024-05-01T10:00:00Z"), t);
        let out = c.tombstone_announcer("a", at("2024-05-01T10:00:30Z", 30));
        assert_eq!(out.events.len(), 2);
        assert!(
            out.events
                .iter()
                .all(|e| e.service.status == Status::Tombstone)
        );
        assert_eq!(
            c.state().get("a", "x").map(|s| s.updated),
            Some(ts("2024-05-01T10:00:30Z"))
        );
        assert_eq!(
            c.state().get("a", "z").map(|s| s.updated),
            Some(ts("2024-05-01T09:00:00Z")),
            "old tombstone untouched"
        );
        assert_eq!(
            c.state().get("b", "w").map(|s| s.status),
            Some(Status::Alive)
        );
        assert!(
            c.tombstone_announcer("a", at("2024-05-01T10:01:00Z", 60))
                .is_empty(),
            "nothing left to expire"
        );
        assert!(
            c.tombstone_announcer("nobody", at("2024-05-01T10:01:00Z", 60))
                .is_empty()
        );
    }

    #[test]
    fn departure_tombstones_beat_the_records_even_with_a_slow_local_clock() {
        let mut c = Catalog::new("me", "default");
        c.merge(
            "a",
            svc("a", "x", Status::Alive, "2024-05-01T11:00:00Z"),
            at("2024-05-01T10:00:00Z", 0),
        );
        c.tombstone_announcer("a", at("2024-05-01T10:00:05Z", 5));
        assert_eq!(
            c.state().get("a", "x").map(|s| s.updated),
            Some(ts("2024-05-01T11:00:01Z"))
        );
    }

    #[test]
    fn third_party_records_die_with_their_announcer() {
        let mut c = Catalog::new("me", "default");
        c.merge(
            "a",
            svc("legacy-db", "x", Status::Alive, "2024-05-01T10:00:00Z"),
            at("2024-05-01T10:00:00Z", 0),
        );
        let out = c.tombstone_announcer("a", at("2024-05-01T10:00:10Z", 10));
        assert_eq!(out.events.len(), 1);
        assert_eq!(&*out.stored[0].announcer, "a");
        assert_eq!(out.stored[0].service.hostname, "legacy-db");
    }
}
