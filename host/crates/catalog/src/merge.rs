//! Sidecar's merge rule (`AddServiceEntry`), with `LastChanged` kept monotonic.

use super::clock::{Mono, Now};
use super::events::ChangeEvent;
use super::model::{Server, Service, Status};
use super::store::{Applied, Catalog, Meta, Record};
use super::time::Timestamp;
use std::collections::HashMap;
use std::sync::Arc;

impl Catalog {
    /// Merges one record a peer relayed, announced by `announcer`:
    ///
    /// 1. stamped more than `max_future` (2 h) ahead of our wall clock: refused;
    /// 2. a record of ours (announced by us, or naming our hostname): never stored from
    ///    outside. A copy we did not write is answered by re-announcing ours with a newer
    ///    stamp (or a tombstone, for a record we do not have), so a forged copy lives
    ///    one gossip round at most;
    /// 3. about a host that is itself an announcer, from another announcer: refused
    ///    (only H writes H's records; third-party hosts of static files are not members);
    /// 4. older than `tombstone + stale_fudge` (3 h 1 min) by the announcer's own clock
    ///    (as we estimate it: its newest stamp plus our monotonic time since): dropped,
    ///    and any stored copy deleted (Sidecar PR #71/#73, without comparing clocks);
    /// 5. unknown (hostname, ID): stored as is, whatever its status; event with previous
    ///    status UNKNOWN;
    /// 6. strictly newer `Updated`: replaces the stored record, whatever the statuses
    ///    (Sidecar kept a DRAINING record DRAINING against ALIVE on every node; only the
    ///    owner writes its records now, so its word is final: an undrain, or its answer
    ///    to a forged drain, propagates); event if the status changed;
    /// 7. equal or older: ignored.
    pub fn merge(&mut self, announcer: &str, incoming: Service, now: Now) -> Applied {
        let mut out = Applied::default();
        self.merge_remote(announcer, incoming, now, &mut out);
        out
    }

    /// Merges a batch (one gossip delta, one anti-entropy exchange).
    pub fn merge_all(
        &mut self,
        announcer: &str,
        incoming: impl IntoIterator<Item = Service>,
        now: Now,
    ) -> Applied {
        let mut out = Applied::default();
        for svc in incoming {
            self.merge_remote(announcer, svc, now, &mut out);
        }
        out
    }

    fn merge_remote(&mut self, announcer: &str, n: Service, now: Now, out: &mut Applied) {
        if n.updated > now.wall.saturating_add(self.lifespans.max_future) {
            out.refused_future += 1;
            return;
        }
        if announcer == &*self.me || n.hostname == *self.me {
            self.answer_own_copy(n, now, out);
            return;
        }
        // A member: membership vouches for it, or it announces records of its own here.
        let member =
            |h: &str| self.announcer_heard.contains_key(h) || self.per_announcer.contains_key(h);
        if n.hostname != announcer && member(n.hostname.as_str()) {
            out.refused_foreign += 1;
            return;
        }
        let known = self.state.get(&n.hostname, &n.id).is_some();
        if !known {
            let held = self.per_announcer.get(announcer).copied();
            let full = match held {
                Some(count) => count >= self.lifespans.max_records_per_announcer,
                None => self.per_announcer.len() >= self.lifespans.max_announcers,
            };
            if full {
                out.refused_over_limit += 1;
                return;
            }
        }
        let window = self.lifespans.tombstone + self.lifespans.stale_fudge;
        if let Some(origin_now) = self.origin_now(announcer, now)
            && n.updated < origin_now.saturating_sub(window)
        {
            out.stale += 1;
            if self.remove(&n.hostname, &n.id) {
                out.removed.push((n.hostname, n.id));
            }
            return;
        }
        self.merge_into(announcer, n, now, out);
    }

    /// A peer's copy of one of our records. Ours is the only version that stands.
    fn answer_own_copy(&mut self, n: Service, now: Now, out: &mut Applied) {
        // Whatever the copy is, our next stamp must beat it.
        self.clock.observe(n.updated);
        let me = self.me.clone();
        let ours = self
            .state
            .get(&n.hostname, &n.id)
            .filter(|_| self.announcer_of(&n.hostname, &n.id) == Some(&me))
            .cloned();
        match ours {
            Some(mine) => {
                if n.updated < mine.updated || (n.updated == mine.updated && mine.same_content(&n))
                {
                    return; // our own version, or an older one that loses anyway
                }
                let mut again = mine;
                again.updated = self.clock.stamp(now.wall);
                self.merge_into(&me, again, now, out);
                out.refuted += 1;
            }
            // Before local discovery has reported, this may be our previous life's record:
            // keep it for `sync_local` to confirm (re-stamped, with our content and status)
            // or tombstone, so a restart does not flap the services that still run.
            None if !self.local_synced && n.hostname == *self.me => {
                self.merge_into(&me, n, now, out);
            }
            None if n.is_tombstone() => {}
            None => {
                let mut tomb = n;
                tomb.status = Status::Tombstone;
                tomb.updated = self.clock.stamp(now.wall);
                self.merge_into(&me, tomb, now, out);
                out.refuted += 1;
            }
        }
    }

    /// Stores `n` if it is new or newer (the checks on who may write it are done).
    pub(super) fn merge_into(&mut self, announcer: &str, n: Service, now: Now, out: &mut Applied) {
        let ours = announcer == &*self.me;
        if ours {
            self.clock.observe(n.updated);
        }
        let announcer = self.intern(announcer);
        let server = self
            .state
            .servers
            .entry(n.hostname.clone())
            .or_insert_with(|| Server::new(n.hostname.clone()));

        let previous = match server.services.get(&n.id) {
            None => None,
            Some(old) if n.invalidates(old) => Some(old.status),
            Some(_) => return,
        };
        server.last_updated = server.last_updated.max(n.updated);
        let changed_from = match previous {
            None => Some(Status::Unknown),
            Some(prev) if prev != n.status => Some(prev),
            Some(_) => None,
        };
        server.services.insert(n.id.clone(), n.clone());
        let replaced = self.meta.entry(n.hostname.clone()).or_default().insert(
            n.id.clone(),
            Meta {
                announcer: announcer.clone(),
                heard: now.mono,
            },
        );
        if let Some(old) = replaced {
            self.uncount(&old.announcer);
        }
        *self.per_announcer.entry(announcer.clone()).or_default() += 1;
        if !ours {
            self.note_stamp(&announcer, n.updated, now);
        }
        if let Some(prev) = changed_from {
            out.events.push(self.record_change(&n, prev));
        }
        out.stored.push(Record {
            announcer,
            service: n,
        });
    }

    /// Sidecar's `ServiceChanged`: moves `LastUpdated`/`LastChanged` (never backwards,
    /// unlike Sidecar, whose origin-stamped times could step back) and builds the event.
    pub(super) fn record_change(&mut self, svc: &Service, previous_status: Status) -> ChangeEvent {
        let t = svc.updated;
        if let Some(server) = self.state.servers.get_mut(&svc.hostname) {
            server.last_updated = server.last_updated.max(t);
            server.last_changed = server.last_changed.max(t);
        }
        self.state.last_changed = self.state.last_changed.max(t);
        ChangeEvent {
            service: svc.clone(),
            previous_status,
            time: self.state.last_changed,
        }
    }

    /// Deletes one record (and its server when that becomes empty). True if it existed.
    pub(super) fn remove(&mut self, hostname: &str, id: &str) -> bool {
        let Some(server) = self.state.servers.get_mut(hostname) else {
            return false;
        };
        let existed = server.services.remove(id).is_some();
        if server.services.is_empty() {
            self.state.servers.remove(hostname);
        }
        if let Some(ids) = self.meta.get_mut(hostname) {
            if let Some(old) = ids.remove(id) {
                self.uncount(&old.announcer);
            }
            if self.meta.get(hostname).is_some_and(HashMap::is_empty) {
                self.meta.remove(hostname);
            }
        }
        existed
    }

    fn uncount(&mut self, announcer: &Arc<str>) {
        if let Some(n) = self.per_announcer.get_mut(announcer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_announcer.remove(announcer);
            }
        }
    }

    /// Turns a stored record into a tombstone stamped `updated`, firing the event. The
    /// tombstone's lifespan starts `at`.
    pub(super) fn tombstone(
        &mut self,
        hostname: &str,
        id: &str,
        updated: Timestamp,
        at: Mono,
        out: &mut Applied,
    ) {
        let Some(svc) = self
            .state
            .servers
            .get_mut(hostname)
            .and_then(|s| s.services.get_mut(id))
        else {
            return;
        };
        let previous = svc.status;
        svc.status = Status::Tombstone;
        svc.updated = updated;
        let svc = svc.clone();
        if let Some(meta) = self.meta.get_mut(hostname).and_then(|m| m.get_mut(id)) {
            meta.heard = at;
        }
        let announcer = self
            .announcer_of(hostname, id)
            .cloned()
            .unwrap_or_else(|| self.intern(hostname));
        if previous != Status::Tombstone {
            out.events.push(self.record_change(&svc, previous));
        }
        out.stored.push(Record {
            announcer,
            service: svc,
        });
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::clock::{Mono, Now};
    use super::super::model::{Port, PortKind, Service, Status};
    use super::super::store::{Catalog, Lifespans};
    use super::super::time::Timestamp;
    use std::time::Duration;

    pub(crate) fn ts(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).expect("valid timestamp")
    }

    pub(crate) fn now(s: &str) -> Now {
        Now::new(ts(s), Mono(Duration::from_secs(1_000)))
    }

    pub(crate) fn svc(host: &str, id: &str, status: Status, updated: &str) -> Service {
        Service {
            id: id.into(),
            name: "bocaccio".into(),
            image: "101deadbeef".into(),
            created: ts("2024-05-01T10:00:00Z"),
            hostname: host.into(),
            ports: vec![Port {
                kind: PortKind::Tcp,
                port: 9999,
                service_port: 10100,
                ip: "127.0.0.1".into(),
            }],
            updated: ts(updated),
            proxy_mode: "http".into(),
            status,
        }
    }

    const T0: &str = "2024-05-01T10:00:05Z";

    #[test]
    fn new_record_is_stored_with_event_from_unknown() {
        let mut c = Catalog::new("me", "default");
        let out = c.merge(
            "chaucer",
            svc("chaucer", "deadbeef123", Status::Alive, T0),
            now(T0),
        );
        assert_eq!(out.stored.len(), 1);
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.events[0].previous_status, Status::Unknown);
        assert_eq!(out.events[0].time, ts(T0));
        let server = &c.state().servers["chaucer"];
        assert_eq!(server.last_updated, ts(T0));
        assert_eq!(server.last_changed, ts(T0));
        assert_eq!(c.state().last_changed, ts(T0));
    }

    #[test]
    fn unknown_tombstone_is_stored_too() {
        let mut c = Catalog::new("me", "default");
        let out = c.merge(
            "chaucer",
            svc("chaucer", "x", Status::Tombstone, T0),
            now(T0),
        );
        assert_eq!(out.events[0].previous_status, Status::Unknown);
        assert_eq!(
            c.state().get("chaucer", "x").map(|s| s.status),
            Some(Status::Tombstone)
        );
    }

    #[test]
    fn older_and_equal_updates_are_ignored() {
        let mut c = Catalog::new("me", "default");
        c.merge("chaucer", svc("chaucer", "x", Status::Alive, T0), now(T0));
        let same = c.merge(
            "chaucer",
            svc("chaucer", "x", Status::Unhealthy, T0),
            now(T0),
        );
        assert!(
            same.is_empty(),
            "equal Updated is ignored, even with another status"
        );
        let older = c.merge(
            "chaucer",
            svc(
                "chaucer",
                "x",
                Status::Tombstone,
                "2024-05-01T10:00:04.999999999Z",
            ),
            now(T0),
        );
        assert!(older.is_empty());
        assert_eq!(
            c.state().get("chaucer", "x").map(|s| s.status),
            Some(Status::Alive)
        );
    }

    #[test]
    fn newer_update_replaces_and_fires_only_on_status_change() {
        let mut c = Catalog::new("me", "default");
        c.merge("chaucer", svc("chaucer", "x", Status::Alive, T0), now(T0));
        // A refresh: newer stamp, same status: stored (retransmitted) but no event.
        let refresh = c.merge(
            "chaucer",
            svc(
                "chaucer",
                "x",
                Status::Alive,
                "2024-05-01T10:00:05.00000005Z",
            ),
            now(T0),
        );
        assert_eq!(refresh.stored.len(), 1);
        assert!(refresh.events.is_empty());
        assert_eq!(
            c.state().servers["chaucer"].last_updated,
            ts("2024-05-01T10:00:05.00000005Z")
        );
        assert_eq!(
            c.state().servers["chaucer"].last_changed,
            ts(T0),
            "LastChanged moves on change only"
        );
        // A status change.
        let mut changed = svc("chaucer", "x", Status::Unhealthy, "2024-05-01T10:00:06Z");
        changed.image = "101deadbeef:v2".into();
        let out = c.merge("chaucer", changed, now(T0));
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.events[0].previous_status, Status::Alive);
        assert_eq!(out.events[0].service.status, Status::Unhealthy);
        assert_eq!(
            c.state().get("chaucer", "x").map(|s| s.image.as_str()),
            Some("101deadbeef:v2")
        );
        assert_eq!(c.state().last_changed, ts("2024-05-01T10:00:06Z"));
    }

    /// Sidecar kept DRAINING against a newer ALIVE on every node. The owner alone writes
    /// its records now, so a newer version wins whatever its status: otherwise a forged
    /// DRAINING copy would stick on a peer against the owner's answer, and the two would
    /// re-announce each other's version for ever.
    #[test]
    fn the_owners_newer_version_wins_whatever_the_statuses() {
        let mut c = Catalog::new("me", "default");
        c.merge(
            "chaucer",
            svc("chaucer", "x", Status::Draining, T0),
            now(T0),
        );
        let out = c.merge(
            "chaucer",
            svc("chaucer", "x", Status::Alive, "2024-05-01T10:00:06Z"),
            now(T0),
        );
        assert_eq!(out.events.len(), 1, "DRAINING -> ALIVE is a change");
        assert_eq!(out.events[0].previous_status, Status::Draining);
        let stored = c.state().get("chaucer", "x").expect("stored");
        assert_eq!(stored.status, Status::Alive);
        assert_eq!(stored.updated, ts("2024-05-01T10:00:06Z"));
        c.merge(
            "chaucer",
            svc("chaucer", "x", Status::Unhealthy, "2024-05-01T10:00:07Z"),
            now(T0),
        );
        assert_eq!(
            c.state().get("chaucer", "x").map(|s| s.status),
            Some(Status::Unhealthy)
        );
        c.merge(
            "chaucer",
            svc("chaucer", "x", Status::Draining, "2024-05-01T10:00:08Z"),
            now(T0),
        );
        c.merge(
            "chaucer",
            svc("chaucer", "x", Status::Tombstone, "2024-05-01T10:00:09Z"),
            now(T0),
        );
        assert_eq!(
            c.state().get("chaucer", "x").map(|s| s.status),
            Some(Status::Tombstone)
        );
    }

    #[test]
    fn records_older_than_three_hours_and_a_minute_by_their_announcers_clock_are_dropped() {
        let mut c = Catalog::new("me", "default");
        // Our wall clock (09:00) does not decide: chaucer's newest stamp says 10:01.
        let wall = now("2024-05-01T09:00:00Z");
        c.merge(
            "chaucer",
            svc("chaucer", "x", Status::Alive, "2024-05-01T07:00:00Z"),
            wall,
        );
        c.merge(
            "chaucer",
            svc("chaucer", "new", Status::Alive, "2024-05-01T10:01:00Z"),
            wall,
        );
        assert!(c.state().get("chaucer", "x").is_some());
        // A record stamped 07:00:00 is exactly 3h1m older than 10:01:00: still accepted...
        let at_limit = c.merge(
            "chaucer",
            svc("chaucer", "y", Status::Alive, "2024-05-01T07:00:00Z"),
            wall,
        );
        assert_eq!(at_limit.stale, 0);
        // ...one nanosecond older it is stale, and the stored copy is deleted.
        let out = c.merge(
            "chaucer",
            svc(
                "chaucer",
                "x",
                Status::Alive,
                "2024-05-01T06:59:59.999999999Z",
            ),
            wall,
        );
        assert_eq!(out.stale, 1);
        assert_eq!(out.removed.len(), 1);
        assert!(c.state().get("chaucer", "x").is_none());
        assert!(out.events.is_empty());
    }

    #[test]
    fn an_announcers_clock_advances_with_ours_between_its_records() {
        let mut c = Catalog::new("me", "default");
        c.merge(
            "h",
            svc("h", "x", Status::Alive, "2024-05-01T07:00:00Z"),
            Now::new(ts("2024-05-01T07:00:00Z"), Mono(Duration::ZERO)),
        );
        // 3 h 2 min later on our monotonic clock, h's clock is about 10:02.
        let later = Now::new(
            ts("2024-05-01T07:00:00Z"),
            Mono(Duration::from_secs(3 * 3600 + 120)),
        );
        let out = c.merge(
            "h",
            svc("h", "x", Status::Alive, "2024-05-01T06:00:00Z"),
            later,
        );
        assert_eq!(out.stale, 1);
        assert!(
            !c.state().servers.contains_key("h"),
            "the empty server goes too"
        );
    }

    #[test]
    fn skew_of_an_hour_either_way_changes_nothing() {
        for skew in [-3600i64, 3600] {
            let mut c = Catalog::new("me", "default");
            let ours = ts("2024-05-01T10:00:00Z");
            let theirs = Timestamp::from_unix_secs(ours.to_parts().0 + skew);
            let out = c.merge(
                "peer",
                Service {
                    updated: theirs,
                    ..svc("peer", "x", Status::Alive, "2024-05-01T10:00:00Z")
                },
                Now::new(ours, Mono(Duration::ZERO)),
            );
            assert_eq!(out.stored.len(), 1, "skew {skew}s");
            assert_eq!(out.refused_future + out.stale, 0);
            let expired = c.expire(Now::new(ours, Mono(Duration::from_secs(30))));
            assert!(expired.is_empty(), "skew {skew}s");
        }
    }

    #[test]
    fn stamps_far_in_the_future_are_refused() {
        let mut c = Catalog::new("me", "default");
        let out = c.merge(
            "peer",
            svc("peer", "x", Status::Alive, "2024-05-01T12:00:01Z"),
            now("2024-05-01T10:00:00Z"),
        );
        assert_eq!(out.refused_future, 1);
        assert!(c.state().get("peer", "x").is_none());
        let out = c.merge(
            "peer",
            Service {
                updated: Timestamp::from_unix_nanos(i128::MAX),
                ..svc("peer", "x", Status::Alive, "2024-05-01T10:00:00Z")
            },
            now("2024-05-01T10:00:00Z"),
        );
        assert_eq!(out.refused_future, 1);
        assert_eq!(c.origin_clock().last(), None, "our clock did not jump");
        let ok = c.merge(
            "peer",
            svc("peer", "x", Status::Alive, "2024-05-01T11:59:59Z"),
            now("2024-05-01T10:00:00Z"),
        );
        assert_eq!(ok.stored.len(), 1, "within the bound");
    }

    #[test]
    fn a_forged_copy_of_our_record_is_answered_with_ours_restamped() {
        let mut c = Catalog::new("me", "default");
        c.sync_local(
            vec![Service {
                hostname: String::new(),
                ..svc("", "a", Status::Alive, T0)
            }],
            now(T0),
        );
        let mine = c.state().get("me", "a").cloned().expect("ours");
        let mut forged = mine.clone();
        forged.status = Status::Draining;
        forged.ports[0].ip = "10.9.9.9".into();
        forged.updated = ts("2024-05-01T11:00:00Z");
        let out = c.merge("evil", forged, now("2024-05-01T10:00:06Z"));
        assert_eq!(out.refuted, 1);
        let now_stored = c.state().get("me", "a").expect("still ours");
        assert_eq!(now_stored.status, Status::Alive);
        assert_eq!(now_stored.ports, mine.ports);
        assert!(
            now_stored.updated > ts("2024-05-01T11:00:00Z"),
            "beats the forgery"
        );
        assert_eq!(&*out.stored[0].announcer, "me", "re-announced by us");
        // Our own copy echoed back by a peer is not an attack.
        let echo = c.state().get("me", "a").cloned().expect("ours");
        let out = c.merge("me", echo, now("2024-05-01T10:00:07Z"));
        assert!(out.is_empty() && out.refuted == 0);
    }

    #[test]
    fn a_record_of_ours_we_never_wrote_is_tombstoned_once_discovery_has_reported() {
        let mut c = Catalog::new("me", "default");
        c.sync_local(vec![], now(T0));
        let out = c.merge(
            "me",
            svc("me", "fake", Status::Alive, "2024-05-01T10:00:06Z"),
            now("2024-05-01T10:00:06Z"),
        );
        assert_eq!(out.refuted, 1);
        let rec = c.state().get("me", "fake").expect("a tombstone");
        assert_eq!(rec.status, Status::Tombstone);
        assert!(rec.updated > ts("2024-05-01T10:00:06Z"));
    }

    #[test]
    fn a_peer_cannot_announce_more_than_its_record_limit() {
        let mut c = Catalog::with_lifespans(
            "me",
            "default",
            Lifespans {
                max_records_per_announcer: 2,
                ..Lifespans::default()
            },
        );
        let out = c.merge_all(
            "flood",
            (0..5).map(|i| svc("flood", &format!("s{i}"), Status::Alive, T0)),
            now(T0),
        );
        assert_eq!((out.stored.len(), out.refused_over_limit), (2, 3));
        // Updates of the records it has still apply; other announcers are unaffected.
        let update = c.merge(
            "flood",
            svc("flood", "s0", Status::Unhealthy, "2024-05-01T10:00:06Z"),
            now(T0),
        );
        assert_eq!(update.stored.len(), 1);
        assert_eq!(
            c.merge("calm", svc("calm", "x", Status::Alive, T0), now(T0))
                .stored
                .len(),
            1
        );
    }

    #[test]
    fn records_from_more_announcers_than_the_limit_are_refused() {
        let mut c = Catalog::with_lifespans(
            "me",
            "default",
            Lifespans {
                max_announcers: 2,
                ..Lifespans::default()
            },
        );
        for a in ["a", "b"] {
            assert_eq!(
                c.merge(a, svc(a, "x", Status::Alive, T0), now(T0))
                    .stored
                    .len(),
                1
            );
        }
        let out = c.merge("c", svc("c", "x", Status::Alive, T0), now(T0));
        assert_eq!((out.stored.len(), out.refused_over_limit), (0, 1));
        // Known announcers still add records; our own records are never refused.
        assert_eq!(
            c.merge("a", svc("a", "y", Status::Alive, T0), now(T0))
                .stored
                .len(),
            1
        );
        c.sync_local(vec![svc("me", "m", Status::Alive, T0)], now(T0));
        assert!(c.state().get("me", "m").is_some());
    }

    #[test]
    fn a_member_is_the_only_writer_of_its_records() {
        let mut c = Catalog::new("me", "default");
        c.refresh_announcer("victim", Mono(Duration::ZERO));
        let out = c.merge("evil", svc("victim", "x", Status::Alive, T0), now(T0));
        assert_eq!(out.refused_foreign, 1);
        assert!(c.state().get("victim", "x").is_none());
        // A host that announces its own records is a member too, even before membership
        // vouches for it (a copy can arrive before the first refresh).
        c.merge("early", svc("early", "x", Status::Alive, T0), now(T0));
        let out = c.merge("evil", svc("early", "y", Status::Alive, T0), now(T0));
        assert_eq!(out.refused_foreign, 1);
        // A third-party host (not a member) may be announced by whoever runs its file.
        let out = c.merge("peer", svc("legacy-db", "db", Status::Alive, T0), now(T0));
        assert_eq!(out.stored.len(), 1);
    }

    #[test]
    fn last_changed_never_moves_backwards() {
        let mut c = Catalog::new("me", "default");
        c.merge(
            "a",
            svc("a", "x", Status::Alive, "2024-05-01T10:00:10Z"),
            now(T0),
        );
        // A new record from a host with a slow clock.
        let out = c.merge(
            "b",
            svc("b", "y", Status::Alive, "2024-05-01T10:00:01Z"),
            now(T0),
        );
        assert_eq!(c.state().last_changed, ts("2024-05-01T10:00:10Z"));
        assert_eq!(
            out.events[0].time,
            ts("2024-05-01T10:00:10Z"),
            "event Time is the catalog's LastChanged"
        );
        assert_eq!(
            c.state().servers["b"].last_changed,
            ts("2024-05-01T10:00:01Z")
        );
    }

    #[test]
    fn own_records_seen_from_peers_advance_the_origin_clock() {
        let mut c = Catalog::new("me", "default");
        c.merge(
            "me",
            svc("me", "x", Status::Tombstone, "2024-05-01T11:00:00Z"),
            now(T0),
        );
        assert_eq!(c.origin_clock().last(), Some(ts("2024-05-01T11:00:00Z")));
    }
}
