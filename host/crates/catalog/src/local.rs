//! Our own records: discovery's view of this host becomes catalog records.
//!
//! Sidecar re-stamps every local record every second and floods them all every minute.
//! We stamp a record only when something about it changes (or once an hour, so that
//! peers never see it as older than the tombstone lifespan), which keeps an idle
//! cluster's gossip nearly silent.

use super::clock::Now;
use super::model::{Service, Status};
use super::store::{Applied, Catalog};
use std::collections::HashSet;

/// Why a drain request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DrainError {
    #[error("Service ID \"{0}\" not found")]
    NotFound(String),
}

impl Catalog {
    /// Reconciles the catalog with the complete current set of local services
    /// (Sidecar's `TrackNewServices` + `TombstoneServices`):
    ///
    /// * a service that is new, or whose content or status differs from its record, is
    ///   stored with a fresh stamp from the origin clock (a record drained through
    ///   [`drain`](Catalog::drain) stays DRAINING while discovery reports it ALIVE; any
    ///   other status ends the drain);
    /// * a record not re-stamped for `restamp` (1 h) gets a fresh stamp;
    /// * a live record we announce that is no longer discovered becomes a tombstone.
    ///
    /// `desired` carries each service's health-derived status; `Updated` is ignored and
    /// an empty `Hostname` means this host. Call it only with a complete discovery result:
    /// an empty list tombstones everything we announce.
    pub fn sync_local(&mut self, desired: Vec<Service>, now: Now) -> Applied {
        let mut out = Applied::default();
        let me = self.me.clone();
        let mut wanted = HashSet::with_capacity(desired.len());
        for mut d in desired {
            if d.hostname.is_empty() {
                d.hostname = me.to_string();
            }
            let key = (d.hostname.clone(), d.id.clone());
            if self.drained.contains(&key) {
                if d.status == Status::Alive {
                    d.status = Status::Draining;
                } else {
                    self.drained.remove(&key);
                }
            }
            if self.maintenance && d.status == Status::Alive {
                d.status = Status::Draining;
            }
            wanted.insert(key);
            if let Some(stored) = self.state.get(&d.hostname, &d.id) {
                let fresh = now.wall.duration_since(stored.updated) < self.lifespans.restamp;
                if fresh && stored.same_content(&d) {
                    continue;
                }
                let seen = stored.updated;
                // Beat the stored stamp even if it came from a faster clock than ours.
                self.clock.observe(seen);
            }
            d.updated = self.clock.stamp(now.wall);
            self.merge_into(&me, d, now, &mut out);
        }
        let vanished: Vec<(String, String)> = self
            .meta
            .iter()
            .flat_map(|(host, ids)| {
                ids.iter()
                    .filter(|(_, m)| m.announcer == me)
                    .map(move |(id, _)| (host.clone(), id.clone()))
            })
            .filter(|key| !wanted.contains(key))
            .filter(|(host, id)| self.state.get(host, id).is_some_and(|s| !s.is_tombstone()))
            .collect();
        for (host, id) in vanished {
            let stamp = self.clock.stamp(now.wall);
            self.tombstone(&host, &id, stamp, now.mono, &mut out);
        }
        self.drained.retain(|key| wanted.contains(key));
        self.local_synced = true;
        self.refresh_announcer(&me.clone(), now.mono);
        out
    }

    /// Sets one of our live records to DRAINING (`POST /api/services/<id>/drain`).
    pub fn drain(&mut self, id: &str, now: Now) -> Result<Applied, DrainError> {
        let Some(mut svc) = self.own_live(id) else {
            return Err(DrainError::NotFound(id.to_string()));
        };
        svc.status = Status::Draining;
        svc.updated = self.clock.stamp(now.wall);
        self.drained.insert((svc.hostname.clone(), svc.id.clone()));
        let me = self.me.clone();
        let mut out = Applied::default();
        self.merge_into(&me, svc, now, &mut out);
        Ok(out)
    }

    /// Ends a drain (`POST /api/services/<id>/undrain`), which Sidecar could not: the
    /// record is ALIVE again, a DRAINING record's last checked status, unless the node
    /// is in maintenance. Undraining a record that is not draining changes nothing.
    pub fn undrain(&mut self, id: &str, now: Now) -> Result<Applied, DrainError> {
        let Some(mut svc) = self.own_live(id) else {
            return Err(DrainError::NotFound(id.to_string()));
        };
        self.drained.remove(&(svc.hostname.clone(), svc.id.clone()));
        if svc.status != Status::Draining || self.maintenance {
            return Ok(Applied::default());
        }
        svc.status = Status::Alive;
        svc.updated = self.clock.stamp(now.wall);
        let me = self.me.clone();
        let mut out = Applied::default();
        self.merge_into(&me, svc, now, &mut out);
        Ok(out)
    }

    /// Node maintenance on or off: on, every local ALIVE record becomes DRAINING (and
    /// new ones start so) until it is turned off; off, those return to ALIVE, except
    /// the ones drained one by one.
    pub fn set_maintenance(&mut self, on: bool, now: Now) -> Applied {
        let mut out = Applied::default();
        if self.maintenance == on {
            return out;
        }
        self.maintenance = on;
        let me = self.me.clone();
        let (from, to) = if on {
            (Status::Alive, Status::Draining)
        } else {
            (Status::Draining, Status::Alive)
        };
        let targets: Vec<_> = self
            .meta
            .iter()
            .flat_map(|(host, ids)| {
                ids.iter()
                    .filter(|(_, m)| m.announcer == me)
                    .map(move |(id, _)| (host.clone(), id.clone()))
            })
            .filter(|key| on || !self.drained.contains(key))
            .filter_map(|(host, id)| self.state.get(&host, &id).cloned())
            .filter(|s| s.status == from)
            .collect();
        for mut svc in targets {
            svc.status = to;
            svc.updated = self.clock.stamp(now.wall);
            self.merge_into(&me, svc, now, &mut out);
        }
        out
    }

    /// Whether node maintenance is on.
    pub fn maintenance(&self) -> bool {
        self.maintenance
    }

    /// One of our live (not tombstoned) records, by ID.
    fn own_live(&self, id: &str) -> Option<Service> {
        let me = &self.me;
        self.meta
            .iter()
            .find_map(|(host, ids)| {
                ids.get(id)
                    .filter(|m| m.announcer == *me)
                    .map(|_| host.clone())
            })
            .and_then(|host| {
                self.state
                    .get(&host, id)
                    .filter(|s| !s.is_tombstone())
                    .cloned()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::super::clock::{Mono, Now};
    use super::super::merge::tests::{svc, ts};
    use super::super::model::Status;
    use super::super::store::Catalog;
    use super::DrainError;
    use std::time::Duration;

    fn at(wall: &str, mono_secs: u64) -> Now {
        Now::new(ts(wall), Mono(Duration::from_secs(mono_secs)))
    }

    fn local(id: &str, status: Status) -> super::Service {
        let mut s = svc("", id, status, "2024-05-01T10:00:00Z");
        s.hostname = String::new();
        s
    }

    #[test]
    fn new_local_services_are_stamped_and_stored() {
        let mut c = Catalog::new("me", "default");
        let out = c.sync_local(
            vec![local("a", Status::Unknown)],
            at("2024-05-01T10:00:01Z", 1),
        );
        assert_eq!(out.events.len(), 1);
        let rec = c.state().get("me", "a").expect("stored under our hostname");
        assert_eq!(rec.updated, ts("2024-05-01T10:00:01Z"));
        assert_eq!(&*out.stored[0].announcer, "me");
    }

    #[test]
    fn unchanged_services_are_not_restamped_until_the_hour() {
        let mut c = Catalog::new("me", "default");
        c.sync_local(
            vec![local("a", Status::Alive)],
            at("2024-05-01T10:00:01Z", 1),
        );
        assert!(
            c.sync_local(
                vec![local("a", Status::Alive)],
                at("2024-05-01T10:00:02Z", 2)
            )
            .is_empty()
        );
        assert!(
            c.sync_local(
                vec![local("a", Status::Alive)],
                at("2024-05-01T10:59:59Z", 3599)
            )
            .is_empty()
        );
        let out = c.sync_local(
            vec![local("a", Status::Alive)],
            at("2024-05-01T11:00:01Z", 3601),
        );
        assert_eq!(out.stored.len(), 1, "re-stamped after an hour");
        assert!(out.events.is_empty(), "a re-stamp is not a change");
    }

    #[test]
    fn status_changes_are_stamped_and_fire() {
        let mut c = Catalog::new("me", "default");
        c.sync_local(
            vec![local("a", Status::Unknown)],
            at("2024-05-01T10:00:01Z", 1),
        );
        let out = c.sync_local(
            vec![local("a", Status::Alive)],
            at("2024-05-01T10:00:03Z", 3),
        );
        assert_eq!(out.events[0].previous_status, Status::Unknown);
        assert_eq!(
            c.state().get("me", "a").map(|s| s.updated),
            Some(ts("2024-05-01T10:00:03Z"))
        );
    }

    #[test]
    fn vanished_services_are_tombstoned_once() {
        let mut c = Catalog::new("me", "default");
        c.sync_local(
            vec![local("a", Status::Alive), local("b", Status::Alive)],
            at("2024-05-01T10:00:01Z", 1),
        );
        let out = c.sync_local(
            vec![local("a", Status::Alive)],
            at("2024-05-01T10:00:02Z", 2),
        );
        assert_eq!(out.events.len(), 1);
        assert_eq!(
            c.state().get("me", "b").map(|s| (s.status, s.updated)),
            Some((Status::Tombstone, ts("2024-05-01T10:00:02Z")))
        );
        assert!(
            c.sync_local(
                vec![local("a", Status::Alive)],
                at("2024-05-01T10:00:03Z", 3)
            )
            .is_empty()
        );
    }

    #[test]
    fn draining_stays_while_discovery_says_alive_but_yields_to_unhealthy() {
        let mut c = Catalog::new("me", "default");
        c.sync_local(
            vec![local("a", Status::Alive)],
            at("2024-05-01T10:00:01Z", 1),
        );
        let out = c.drain("a", at("2024-05-01T10:00:02Z", 2)).expect("drains");
        assert_eq!(out.events[0].service.status, Status::Draining);
        assert!(
            c.sync_local(
                vec![local("a", Status::Alive)],
                at("2024-05-01T10:00:03Z", 3)
            )
            .is_empty(),
            "no flapping"
        );
        assert_eq!(
            c.state().get("me", "a").map(|s| s.status),
            Some(Status::Draining)
        );
        c.sync_local(
            vec![local("a", Status::Unhealthy)],
            at("2024-05-01T10:00:04Z", 4),
        );
        assert_eq!(
            c.state().get("me", "a").map(|s| s.status),
            Some(Status::Unhealthy)
        );
        c.sync_local(
            vec![local("a", Status::Alive)],
            at("2024-05-01T10:00:05Z", 5),
        );
        assert_eq!(
            c.state().get("me", "a").map(|s| s.status),
            Some(Status::Alive),
            "no undrain, but recovery is ALIVE"
        );
    }

    fn status(c: &Catalog, id: &str) -> Option<Status> {
        c.state().get("me", id).map(|s| s.status)
    }

    #[test]
    fn undrain_returns_a_drained_record_to_alive_and_discovery_keeps_it_so() {
        let mut c = Catalog::new("me", "default");
        c.sync_local(
            vec![local("a", Status::Alive)],
            at("2024-05-01T10:00:01Z", 1),
        );
        c.drain("a", at("2024-05-01T10:00:02Z", 2)).expect("drains");
        let out = c
            .undrain("a", at("2024-05-01T10:00:03Z", 3))
            .expect("undrains");
        assert_eq!(out.events[0].service.status, Status::Alive);
        assert_eq!(out.events[0].previous_status, Status::Draining);
        c.sync_local(
            vec![local("a", Status::Alive)],
            at("2024-05-01T10:00:04Z", 4),
        );
        assert_eq!(status(&c, "a"), Some(Status::Alive), "the drain is over");
        assert!(
            c.undrain("a", at("2024-05-01T10:00:05Z", 5))
                .expect("known")
                .is_empty(),
            "undraining an ALIVE record changes nothing"
        );
        assert!(matches!(
            c.undrain("nope", at("2024-05-01T10:00:05Z", 5)),
            Err(DrainError::NotFound(_))
        ));
    }

    #[test]
    fn maintenance_drains_every_alive_local_record_and_new_ones() {
        let mut c = Catalog::new("me", "default");
        c.sync_local(
            vec![local("a", Status::Alive), local("b", Status::Unhealthy)],
            at("2024-05-01T10:00:01Z", 1),
        );
        let out = c.set_maintenance(true, at("2024-05-01T10:00:02Z", 2));
        assert_eq!(out.events.len(), 1, "only the ALIVE record changes");
        assert_eq!(status(&c, "a"), Some(Status::Draining));
        assert_eq!(status(&c, "b"), Some(Status::Unhealthy));
        c.sync_local(
            vec![
                local("a", Status::Alive),
                local("b", Status::Alive),
                local("c", Status::Alive),
            ],
            at("2024-05-01T10:00:03Z", 3),
        );
        assert_eq!(
            status(&c, "b"),
            Some(Status::Draining),
            "recovered into maintenance"
        );
        assert_eq!(
            status(&c, "c"),
            Some(Status::Draining),
            "new services start draining"
        );
        assert!(
            c.undrain("a", at("2024-05-01T10:00:04Z", 4))
                .expect("known")
                .is_empty(),
            "maintenance wins over undrain"
        );
        assert!(c.maintenance());
    }

    #[test]
    fn maintenance_off_restores_alive_but_keeps_individual_drains() {
        let mut c = Catalog::new("me", "default");
        c.sync_local(
            vec![local("a", Status::Alive), local("b", Status::Alive)],
            at("2024-05-01T10:00:01Z", 1),
        );
        c.drain("b", at("2024-05-01T10:00:02Z", 2)).expect("drains");
        c.set_maintenance(true, at("2024-05-01T10:00:03Z", 3));
        let out = c.set_maintenance(false, at("2024-05-01T10:00:04Z", 4));
        assert_eq!(out.events.len(), 1);
        assert_eq!(status(&c, "a"), Some(Status::Alive));
        assert_eq!(
            status(&c, "b"),
            Some(Status::Draining),
            "drained by hand, still"
        );
        assert!(
            c.set_maintenance(false, at("2024-05-01T10:00:05Z", 5))
                .is_empty(),
            "turning it off twice changes nothing"
        );
    }

    #[test]
    fn drain_only_finds_our_own_live_records() {
        let mut c = Catalog::new("me", "default");
        c.merge(
            "peer",
            svc("peer", "p", Status::Alive, "2024-05-01T10:00:00Z"),
            at("2024-05-01T10:00:00Z", 0),
        );
        assert_eq!(
            c.drain("p", at("2024-05-01T10:00:01Z", 1)),
            Err(DrainError::NotFound("p".into()))
        );
        assert_eq!(
            c.drain("nope", at("2024-05-01T10:00:01Z", 1)),
            Err(DrainError::NotFound("nope".into()))
        );
    }

    #[test]
    fn a_restarted_host_beats_the_tombstones_peers_issued_with_faster_clocks() {
        // Peers tombstoned our records at 11:00 (their clocks); our clock says 10:00.
        let mut c = Catalog::new("me", "default");
        c.merge(
            "me",
            svc("me", "a", Status::Tombstone, "2024-05-01T11:00:00Z"),
            at("2024-05-01T10:00:00Z", 0),
        );
        c.sync_local(
            vec![local("a", Status::Alive)],
            at("2024-05-01T10:00:01Z", 1),
        );
        let rec = c.state().get("me", "a").expect("stored");
        assert_eq!(rec.status, Status::Alive);
        assert!(rec.updated > ts("2024-05-01T11:00:00Z"));
    }

    #[test]
    fn records_of_our_previous_life_are_tombstoned() {
        let mut c = Catalog::new("me", "default");
        // Anti-entropy after a restart brings back a record we no longer run.
        c.merge(
            "me",
            svc("me", "old", Status::Alive, "2024-05-01T09:59:00Z"),
            at("2024-05-01T10:00:00Z", 0),
        );
        let out = c.sync_local(
            vec![local("new", Status::Alive)],
            at("2024-05-01T10:00:01Z", 1),
        );
        assert_eq!(
            c.state().get("me", "old").map(|s| s.status),
            Some(Status::Tombstone)
        );
        assert_eq!(out.events.len(), 2);
    }

    #[test]
    fn third_party_hostnames_are_announced_by_us() {
        let mut c = Catalog::new("me", "default");
        let mut s = local("db", Status::Alive);
        s.hostname = "legacy-db".into();
        c.sync_local(vec![s], at("2024-05-01T10:00:01Z", 1));
        assert_eq!(c.announcer_of("legacy-db", "db").map(|a| &**a), Some("me"));
        let out = c.sync_local(vec![], at("2024-05-01T10:00:02Z", 2));
        assert_eq!(out.events.len(), 1, "and tombstoned by us when it goes");
    }

    #[test]
    fn draining_comes_only_from_our_own_drain() {
        let mut c = Catalog::new("me", "default");
        // Before discovery reported, a DRAINING copy of our record arrives (a previous
        // life's, or a forgery): kept for discovery to confirm, but not its status.
        c.merge(
            "evil",
            svc("me", "a", Status::Draining, "2024-05-01T10:00:00Z"),
            at("2024-05-01T10:00:00Z", 0),
        );
        c.sync_local(
            vec![local("a", Status::Alive)],
            at("2024-05-01T10:00:01Z", 1),
        );
        let rec = c.state().get("me", "a").expect("ours");
        assert_eq!(rec.status, Status::Alive);
        assert!(rec.updated > ts("2024-05-01T10:00:00Z"));
    }
}
