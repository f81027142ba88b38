//! Wall-clock timestamps with nanosecond precision, encoded the way Go's `time.Time` is.
//!
//! Sidecar's ordering key is the origin host's `Updated` timestamp, and its repeated
//! broadcast rounds differ by 50 ns, so precision must survive every encode/decode.
//! Go marshals RFC 3339 with up to nine fractional digits, trailing zeros removed
//! (`2024-05-01T10:00:05.5Z`); we emit exactly that, always in UTC, and accept any
//! RFC 3339 offset and fractional precision on input. Parsing and formatting are the
//! `time` crate's; the nanosecond `i128` and Go's conventions around it are ours.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const NANOS_PER_SEC: i128 = 1_000_000_000;
/// `0000-01-01T00:00:00Z` and `9999-12-31T23:59:59.999999999Z`: what RFC 3339 (and Go's
/// JSON encoding of `time.Time`) can write.
const MIN_NANOS: i128 = -62_167_219_200 * NANOS_PER_SEC;
const MAX_NANOS: i128 = 253_402_300_800 * NANOS_PER_SEC - 1;

/// An instant on the UTC timeline, as nanoseconds since the Unix epoch.
///
/// `i128` covers Go's zero time (year 1), which decoders produce for missing fields.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i128);

impl Timestamp {
    /// The Unix epoch: what Sidecar's `LastChanged`/`LastUpdated` start at.
    pub const UNIX_EPOCH: Timestamp = Timestamp(0);
    /// Go's zero `time.Time` (`0001-01-01T00:00:00Z`).
    pub const GO_ZERO: Timestamp = Timestamp(-62_135_596_800 * NANOS_PER_SEC);

    pub const fn from_unix_nanos(nanos: i128) -> Self {
        Timestamp(nanos)
    }

    pub fn from_unix_secs(secs: i64) -> Self {
        Timestamp(secs as i128 * NANOS_PER_SEC)
    }

    pub fn from_parts(seconds: i64, nanoseconds: u32) -> Self {
        Timestamp(seconds as i128 * NANOS_PER_SEC + nanoseconds.min(999_999_999) as i128)
    }

    /// Seconds (floored) and the nanosecond remainder, as the WIT `timestamp` record.
    pub fn to_parts(self) -> (i64, u32) {
        let secs = self.0.div_euclid(NANOS_PER_SEC);
        let nanos = self.0.rem_euclid(NANOS_PER_SEC);
        (
            secs.clamp(i64::MIN as i128, i64::MAX as i128) as i64,
            nanos as u32,
        )
    }

    pub const fn unix_nanos(self) -> i128 {
        self.0
    }

    pub fn from_system_time(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp(d.as_nanos() as i128),
            Err(e) => Timestamp(-(e.duration().as_nanos() as i128)),
        }
    }

    /// Reads the system clock. Only the edges of the daemon call this; the catalog is
    /// always handed its time.
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    pub fn is_go_zero(self) -> bool {
        self == Self::GO_ZERO
    }

    pub fn saturating_add(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_add(d.as_nanos() as i128))
    }

    pub fn saturating_sub(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_sub(d.as_nanos() as i128))
    }

    pub fn add_nanos(self, n: i128) -> Self {
        Timestamp(self.0.saturating_add(n))
    }

    /// `self - earlier`, or zero when `earlier` is later.
    pub fn duration_since(self, earlier: Timestamp) -> Duration {
        let d = self.0 - earlier.0;
        if d <= 0 {
            Duration::ZERO
        } else {
            Duration::new((d / NANOS_PER_SEC) as u64, (d % NANOS_PER_SEC) as u32)
        }
    }

    /// RFC 3339 with nanoseconds, trailing zeros trimmed, `Z` (Go's `RFC3339Nano`).
    /// Go cannot marshal years outside 0000-9999 either; such instants are written as
    /// the nearest one inside that range.
    pub fn to_rfc3339(self) -> String {
        let nanos = self.0.clamp(MIN_NANOS, MAX_NANOS);
        OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| "0000-01-01T00:00:00Z".to_string())
    }

    /// Go's `time.Time.String()` for UTC times (`2024-05-01 10:00:05.5 +0000 UTC`), used
    /// by Sidecar's listener cookie.
    pub fn to_go_string(self) -> String {
        let rfc = self.to_rfc3339();
        let body = rfc.trim_end_matches('Z').replacen('T', " ", 1);
        format!("{body} +0000 UTC")
    }

    /// Parses RFC 3339 (any offset, any fractional precision, truncated to nanoseconds
    /// as Go does; `t`/`z` accepted in lower case).
    pub fn parse_rfc3339(s: &str) -> Result<Self, TimeParseError> {
        OffsetDateTime::parse(s, &Rfc3339)
            .map(|t| Timestamp(t.unix_timestamp_nanos()))
            .map_err(|_| TimeParseError(s.to_string()))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 timestamp: {0:?}")]
pub struct TimeParseError(pub String);

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        Timestamp::parse_rfc3339(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).expect("valid timestamp")
    }

    #[test]
    fn formats_like_go_rfc3339nano() {
        assert_eq!(Timestamp::UNIX_EPOCH.to_rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(Timestamp::GO_ZERO.to_rfc3339(), "0001-01-01T00:00:00Z");
        assert_eq!(
            Timestamp::from_unix_secs(1_457_144_774).to_rfc3339(),
            "2016-03-05T02:26:14Z"
        );
        let t = ts("2024-05-01T10:00:05.5Z");
        assert_eq!(t.to_rfc3339(), "2024-05-01T10:00:05.5Z");
        assert_eq!(
            t.add_nanos(50).to_rfc3339(),
            "2024-05-01T10:00:05.50000005Z"
        );
        assert_eq!(
            ts("2024-05-01T10:00:05.123456789Z").to_rfc3339(),
            "2024-05-01T10:00:05.123456789Z"
        );
    }

    #[test]
    fn parses_offsets_and_precision() {
        assert_eq!(ts("2024-05-01T12:00:00+02:00"), ts("2024-05-01T10:00:00Z"));
        assert_eq!(ts("2024-05-01T05:30:00-04:30"), ts("2024-05-01T10:00:00Z"));
        assert_eq!(
            ts("2024-05-01T10:00:00.1234567891234Z").unix_nanos() % 1_000_000_000,
            123_456_789
        );
        assert_eq!(ts("2024-05-01t10:00:00z"), ts("2024-05-01T10:00:00Z"));
        assert_eq!(ts("0001-01-01T00:00:00Z"), Timestamp::GO_ZERO);
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "2024-05-01",
            "2024-13-01T10:00:00Z",
            "2024-02-30T10:00:00Z",
            "2024-05-01T10:00:00",
            "2024-05-01T10:00:00.Z",
            "2024-05-01T10:00:00+0200",
            "2024-05-01T1a:00:00Z",
            "2024-05-01T10:00:00Zjunk",
        ] {
            assert!(
                Timestamp::parse_rfc3339(bad).is_err(),
                "{bad} should not parse"
            );
        }
    }

    #[test]
    fn round_trips_across_centuries() {
        for s in [
            "1900-02-28T23:59:59.999999999Z",
            "2000-02-29T00:00:00Z",
            "2100-03-01T12:34:56.000000001Z",
            "1969-12-31T23:59:59.9Z",
        ] {
            assert_eq!(ts(s).to_rfc3339(), s);
        }
    }

    #[test]
    fn instants_go_cannot_write_are_clamped_not_panicked_on() {
        assert_eq!(
            Timestamp::from_unix_nanos(i128::MAX).to_rfc3339(),
            "9999-12-31T23:59:59.999999999Z"
        );
        assert_eq!(
            Timestamp::from_unix_nanos(i128::MIN).to_rfc3339(),
            "0000-01-01T00:00:00Z"
        );
    }

    #[test]
    fn go_string_form() {
        assert_eq!(
            ts("2024-05-01T10:00:05.5Z").to_go_string(),
            "2024-05-01 10:00:05.5 +0000 UTC"
        );
    }

    #[test]
    fn parts_round_trip() {
        let t = ts("1969-12-31T23:59:59.25Z");
        let (s, n) = t.to_parts();
        assert_eq!((s, n), (-1, 250_000_000));
        assert_eq!(Timestamp::from_parts(s, n), t);
    }
}
