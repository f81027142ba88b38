//! Time as the catalog is handed it, and the origin clock that stamps local records.

use super::time::Timestamp;
use std::time::Duration;

/// A reading of the caller's monotonic clock (time since an arbitrary start).
///
/// Lifespans are measured on this clock, never by comparing another host's wall-clock
/// stamps with ours, so clock skew between hosts can neither expire a live record nor
/// keep a dead one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mono(pub Duration);

impl Mono {
    pub fn since(self, earlier: Mono) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    pub fn plus(self, d: Duration) -> Mono {
        Mono(self.0 + d)
    }
}

/// Both clocks at one instant. Wall time orders records; monotonic time ages them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    pub wall: Timestamp,
    pub mono: Mono,
}

impl Now {
    pub fn new(wall: Timestamp, mono: Mono) -> Self {
        Now { wall, mono }
    }

    pub fn advance(self, d: Duration) -> Now {
        Now {
            wall: self.wall.saturating_add(d),
            mono: self.mono.plus(d),
        }
    }
}

/// Issues `Updated` stamps for the records this host announces.
///
/// A hybrid logical clock: every stamp is at least the wall clock and strictly greater
/// than every stamp issued before or seen since for this host's own records. So a wall
/// clock stepping back, or a restart after peers tombstoned our records with their
/// (faster) clocks, still produces stamps that win the last-writer-wins merge.
#[derive(Clone, Debug, Default)]
pub struct OriginClock {
    last: Option<Timestamp>,
}

/// Smallest step between two stamps. Sidecar's own repeated rounds differ by 50 ns; a
/// microsecond keeps stamps distinct after any client's sub-microsecond rounding.
const TICK_NANOS: i128 = 1_000;

impl OriginClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh stamp: `max(wall, last + 1 µs)`.
    pub fn stamp(&mut self, wall: Timestamp) -> Timestamp {
        let t = match self.last {
            Some(last) if last.add_nanos(TICK_NANOS) > wall => last.add_nanos(TICK_NANOS),
            _ => wall,
        };
        self.last = Some(t);
        t
    }

    /// Notes a stamp seen on one of our own records (e.g. a tombstone a peer issued while
    /// we were down) so that our next stamp beats it.
    pub fn observe(&mut self, seen: Timestamp) {
        if self.last.is_none_or(|last| seen > last) {
            self.last = Some(seen);
        }
    }

    pub fn last(&self) -> Option<Timestamp> {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).expect("valid")
    }

    #[test]
    fn stamps_follow_the_wall_clock_when_it_moves_forward() {
        let mut c = OriginClock::new();
        assert_eq!(
            c.stamp(ts("2024-05-01T10:00:00Z")),
            ts("2024-05-01T10:00:00Z")
        );
        assert_eq!(
            c.stamp(ts("2024-05-01T10:00:01Z")),
            ts("2024-05-01T10:00:01Z")
        );
    }

    #[test]
    fn stamps_never_go_backwards_when_the_wall_clock_steps_back() {
        let mut c = OriginClock::new();
        let first = c.stamp(ts("2024-05-01T10:00:00Z"));
        let second = c.stamp(ts("2024-05-01T09:50:00Z"));
        assert!(second > first);
        assert_eq!(second, first.add_nanos(1_000));
    }

    #[test]
    fn observed_stamps_are_beaten() {
        let mut c = OriginClock::new();
        c.stamp(ts("2024-05-01T10:00:00Z"));
        c.observe(ts("2024-05-01T11:00:00Z"));
        assert!(c.stamp(ts("2024-05-01T10:00:05Z")) > ts("2024-05-01T11:00:00Z"));
        c.observe(ts("2024-05-01T08:00:00Z"));
        assert!(c.stamp(ts("2024-05-01T10:00:06Z")) > ts("2024-05-01T11:00:00Z"));
    }
}
