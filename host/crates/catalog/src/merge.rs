//! Sidecar's merge rule (`AddServiceEntry`), with `LastChanged` kept monotonic.

use super::clock::{Mono, Now};
use super::events::ChangeEvent;
use super::model::{Server, Service, Status};
use super::store::{Applied, Catalog, Meta, Record};
use super::time::Timestamp;

impl Catalog {
    /// Merges one record announced by `announcer`:
    ///
    /// 1. older than `tombstone + stale_fudge` (3 h 1 min): dropped, and any stored copy
    ///    deleted (Sidecar PR #71/#73);
    /// 2. unknown (hostname, ID): stored as is, whatever its status; event with previous
    ///    status UNKNOWN;
    /// 3. strictly newer `Updated`: replaces the stored record, except that DRAINING is
    ///    not overwritten by ALIVE (the record stays DRAINING); event if the status changed;
    /// 4. equal or older: ignored.
    pub fn merge(&mut self, announcer: &str, incoming: Service, now: Now) -> Applied {
        let mut out = Applied::default();
        self.merge_into(announcer, incoming, now, &mut out);
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
            self.merge_into(announcer, svc, now, &mut out);
        }
        out
    }

    pub(super) fn merge_into(
        &mut self,
        announcer: &str,
        mut n: Service,
        now: Now,
        out: &mut Applied,
    ) {
        let stale_before = now
            .wall
            .saturating_sub(self.lifespans.tombstone + self.lifespans.stale_fudge);
        if n.updated < stale_before {
            out.stale += 1;
            if self.remove(&n.hostname, &n.id) {
                out.removed += 1;
            }
            return;
        }
        if announcer == &*self.me || n.hostname == *self.me {
            // A stamp for one of our own records (from our previous life, or a peer's
            // tombstone): our next stamp must beat it.
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
        if previous == Some(Status::Draining) && n.status == Status::Alive {
            n.status = Status::Draining;
        }
        let changed_from = match previous {
            None => Some(Status::Unknown),
            Some(prev) if prev != n.status => Some(prev),
            Some(_) => None,
        };
        server.services.insert(n.id.clone(), n.clone());
        self.meta.entry(n.hostname.clone()).or_default().insert(
            n.id.clone(),
            Meta {
                announcer: announcer.clone(),
                heard: now.mono,
            },
        );
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
            ids.remove(id);
            if ids.is_empty() {
                self.meta.remove(hostname);
            }
        }
        existed
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
    use super::super::store::Catalog;
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

    #[test]
    fn draining_is_sticky_against_alive_but_not_unhealthy_or_tombstone() {
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
        assert!(out.events.is_empty(), "stays DRAINING, so no status change");
        let stored = c.state().get("chaucer", "x").expect("stored");
        assert_eq!(stored.status, Status::Draining);
        assert_eq!(
            stored.updated,
            ts("2024-05-01T10:00:06Z"),
            "the newer record is still taken"
        );
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
    fn records_older_than_three_hours_and_a_minute_are_dropped_and_purged() {
        let mut c = Catalog::new("me", "default");
        c.merge(
            "chaucer",
            svc("chaucer", "x", Status::Alive, "2024-05-01T07:00:00Z"),
            now("2024-05-01T09:00:00Z"),
        );
        assert!(c.state().get("chaucer", "x").is_some());
        // At 10:01:00 a record stamped 07:00:00 is exactly 3h1m old: still accepted...
        let at_limit = c.merge(
            "chaucer",
            svc("chaucer", "y", Status::Alive, "2024-05-01T07:00:00Z"),
            now("2024-05-01T10:01:00Z"),
        );
        assert_eq!(at_limit.stale, 0);
        // ...one nanosecond later it is stale, and the stored copy is deleted.
        let out = c.merge(
            "chaucer",
            svc("chaucer", "x", Status::Alive, "2024-05-01T07:00:00Z"),
            now("2024-05-01T10:01:00.000000001Z"),
        );
        assert_eq!(out.stale, 1);
        assert_eq!(out.removed, 1);
        assert!(c.state().get("chaucer", "x").is_none());
        assert!(out.events.is_empty());
    }

    #[test]
    fn stale_drop_of_last_record_removes_the_server() {
        let mut c = Catalog::new("me", "default");
        c.merge(
            "h",
            svc("h", "x", Status::Alive, "2024-05-01T07:00:00Z"),
            now("2024-05-01T07:00:00Z"),
        );
        c.merge(
            "h",
            svc("h", "x", Status::Alive, "2024-05-01T06:00:00Z"),
            now("2024-05-01T10:00:00Z"),
        );
        assert!(!c.state().servers.contains_key("h"));
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
