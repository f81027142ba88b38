//! Wall-clock timestamps with nanosecond precision, encoded the way Go's `time.Time` is.
//!
//! Sidecar's ordering key is the origin host's `Updated` timestamp, and its repeated
//! broadcast rounds differ by 50 ns, so precision must survive every encode/decode.
//! Go marshals RFC 3339 with up to nine fractional digits, trailing zeros removed
//! (`2024-05-01T10:00:05.5Z`); we emit exactly that, always in UTC, and accept any
//! RFC 3339 offset and fractional precision on input.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const NANOS_PER_SEC: i128 = 1_000_000_000;

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
    pub fn to_rfc3339(self) -> String {
        let mut s = String::with_capacity(30);
        self.write_rfc3339(&mut s);
        s
    }

    fn write_rfc3339(self, out: &mut String) {
        use std::fmt::Write;
        let (secs, nanos) = self.to_parts();
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let _ = write!(
            out,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            y,
            m,
            d,
            sod / 3600,
            (sod % 3600) / 60,
            sod % 60
        );
        if nanos != 0 {
            let mut frac = format!("{nanos:09}");
            while frac.ends_with('0') {
                frac.pop();
            }
            out.push('.');
            out.push_str(&frac);
        }
        out.push('Z');
    }

    /// Go's `time.Time.String()` for UTC times (`2024-05-01 10:00:05.5 +0000 UTC`), used
    /// by Sidecar's listener cookie.
    pub fn to_go_string(self) -> String {
        let rfc = self.to_rfc3339();
        let body = rfc.trim_end_matches('Z').replacen('T', " ", 1);
        format!("{body} +0000 UTC")
    }

    /// Parses RFC 3339 (any offset, 0-9 fractional digits; `t`/`z` accepted in lower case).
    pub fn parse_rfc3339(s: &str) -> Result<Self, TimeParseError> {
        let err = || TimeParseError(s.to_string());
        let b = s.as_bytes();
        if b.len() < 20 {
            return Err(err());
        }
        let num = |r: std::ops::Range<usize>| -> Result<i64, TimeParseError> {
            let part = s.get(r).ok_or_else(err)?;
            if part.bytes().all(|c| c.is_ascii_digit()) {
                part.parse::<i64>().map_err(|_| err())
            } else {
                Err(err())
            }
        };
        let year = num(0..4)?;
        let month = num(5..7)?;
        let day = num(8..10)?;
        if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
            return Err(err());
        }
        let hour = num(11..13)?;
        let minute = num(14..16)?;
        let second = num(17..19)?;
        if b[13] != b':' || b[16] != b':' {
            return Err(err());
        }
        if !(1..=12).contains(&month)
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return Err(err());
        }
        let mut i = 19;
        let mut nanos: i128 = 0;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let digits = &s[start..i];
            if digits.is_empty() {
                return Err(err());
            }
            // Beyond nanoseconds, extra digits are truncated (as Go does).
            let mut frac: i128 = 0;
            for (n, c) in digits.bytes().enumerate() {
                if n < 9 {
                    frac = frac * 10 + (c - b'0') as i128;
                }
            }
            for _ in digits.len()..9 {
                frac *= 10;
            }
            nanos = frac;
        }
        let offset_secs: i64 = match b.get(i) {
            Some(b'Z') | Some(b'z') if i + 1 == b.len() => 0,
            Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
                let oh = num(i + 1..i + 3)?;
                let om = num(i + 4..i + 6)?;
                if oh > 23 || om > 59 {
                    return Err(err());
                }
                let off = oh * 3600 + om * 60;
                if *sign == b'-' { -off } else { off }
            }
            _ => return Err(err()),
        };
        let days = days_from_civil(year, month as u32, day as u32);
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
        Ok(Timestamp(secs as i128 * NANOS_PER_SEC + nanos))
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

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        _ => 28,
    }
}

// Howard Hinnant's civil-date algorithms (proleptic Gregorian calendar).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
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
