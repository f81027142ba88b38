//! Fingerprints of the catalog, so anti-entropy can find what differs without moving it.

use super::model::Service;
use super::store::{Catalog, Record};
use std::sync::Arc;
use xxhash_rust::xxh3::Xxh3;

/// Order-independent summary of one host's records: two catalogs hold the same records
/// for a host (same IDs, stamps and statuses) exactly when their fingerprints match
/// (up to 64-bit hash collisions).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    pub count: u32,
    pub hash: u64,
}

impl Fingerprint {
    pub fn add(&mut self, svc: &Service) {
        self.count += 1;
        self.hash ^= record_hash(svc);
    }
}

/// Hash of what the merge rule looks at: identity, stamp and status.
pub fn record_hash(svc: &Service) -> u64 {
    let mut h = Xxh3::new();
    h.update(svc.hostname.as_bytes());
    h.update(&[0]);
    h.update(svc.id.as_bytes());
    h.update(&[0]);
    h.update(&svc.updated.unix_nanos().to_le_bytes());
    h.update(&[svc.status.code()]);
    h.digest()
}

impl Catalog {
    /// One fingerprint per host, sorted by hostname.
    pub fn fingerprints(&self) -> Vec<(String, Fingerprint)> {
        self.state
            .servers
            .iter()
            .map(|(host, server)| {
                let mut fp = Fingerprint::default();
                server.services.values().for_each(|s| fp.add(s));
                (host.clone(), fp)
            })
            .collect()
    }

    /// Every record of one host, with its announcer.
    pub fn host_records(&self, hostname: &str) -> Vec<Record> {
        let Some(server) = self.state.servers.get(hostname) else {
            return Vec::new();
        };
        server
            .services
            .values()
            .map(|svc| Record {
                announcer: self
                    .announcer_of(hostname, &svc.id)
                    .cloned()
                    .unwrap_or_else(|| Arc::from(hostname)),
                service: svc.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::clock::{Mono, Now};
    use super::super::merge::tests::{svc, ts};
    use super::super::model::Status;
    use super::super::store::Catalog;

    #[test]
    fn fingerprints_match_exactly_when_records_match() {
        let now = Now::new(ts("2024-05-01T10:00:00Z"), Mono::default());
        let mut a = Catalog::new("a", "default");
        let mut b = Catalog::new("b", "default");
        let x = svc("h", "x", Status::Alive, "2024-05-01T10:00:00Z");
        let y = svc("h", "y", Status::Alive, "2024-05-01T10:00:00Z");
        a.merge("h", x.clone(), now);
        a.merge("h", y.clone(), now);
        b.merge("h", y, now);
        b.merge("h", x, now);
        assert_eq!(a.fingerprints(), b.fingerprints(), "order does not matter");
        b.merge(
            "h",
            svc("h", "x", Status::Alive, "2024-05-01T10:00:00.000000001Z"),
            now,
        );
        assert_ne!(
            a.fingerprints(),
            b.fingerprints(),
            "a 1 ns newer stamp differs"
        );
        assert_eq!(b.host_records("h").len(), 2);
        assert!(b.host_records("nobody").is_empty());
    }
}
