//! RFC 3339 timestamps, parsed by hand: this runs once per event on the hot path.

use std::fmt;

use serde::{Serialize, Serializer};

/// An instant as microseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

pub const MICROS_PER_SECOND: i64 = 1_000_000;
/// 9999-12-31T23:59:59Z: the last second RFC 3339 can write.
const LAST_SECOND_OF_9999: i64 = 253_402_300_799;

impl Timestamp {
    pub fn from_unix_seconds(seconds: i64) -> Timestamp {
        Timestamp(seconds * MICROS_PER_SECOND)
    }
    /// Seconds since the epoch as logged by gateways (fractions allowed), within the years
    /// RFC 3339 can write (1970–9999): `1e300`, `NaN` and `-inf` are errors, not year 294247.
    pub fn from_epoch_seconds_f64(seconds: f64) -> Result<Timestamp, &'static str> {
        if !seconds.is_finite() {
            return Err("not a finite number");
        }
        if !(0.0..=LAST_SECOND_OF_9999 as f64).contains(&seconds) {
            return Err("outside the years 1970 to 9999");
        }
        Ok(Timestamp((seconds * 1e6).round() as i64))
    }

    /// Milliseconds since the epoch (Keycloak's `time`), within 1970–9999.
    pub fn from_epoch_millis(ms: i64) -> Result<Timestamp, &'static str> {
        if !(0..=LAST_SECOND_OF_9999 * 1000 + 999).contains(&ms) {
            return Err("outside the years 1970 to 9999");
        }
        Ok(Timestamp(ms * 1000))
    }

    pub fn unix_micros(self) -> i64 {
        self.0
    }
    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(MICROS_PER_SECOND)
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`. `T` may be `t` or a space, `Z` may be
    /// `z` (RFC 3339 §5.6 note). Fractions beyond microseconds are truncated; a leap second
    /// (`:60`) is read as `:59.999999`.
    pub fn parse_rfc3339(s: &str) -> Result<Timestamp, &'static str> {
        let b = s.as_bytes();
        if b.len() < 20 {
            return Err("too short");
        }
        let num = |range: std::ops::Range<usize>| -> Result<i64, &'static str> {
            let mut v = 0i64;
            for &c in &b[range] {
                if !c.is_ascii_digit() {
                    return Err("expected a digit");
                }
                v = v * 10 + i64::from(c - b'0');
            }
            Ok(v)
        };
        if b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
            return Err("expected YYYY-MM-DDTHH:MM:SS");
        }
        if !matches!(b[10], b'T' | b't' | b' ') {
            return Err("expected 'T' between date and time");
        }
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, mut second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return Err("date out of range");
        }
        if hour > 23 || minute > 59 || second > 60 {
            return Err("time out of range");
        }
        let mut micros = 0i64;
        let mut i = 19;
        if b[i] == b'.' {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                if i - start < 6 {
                    micros = micros * 10 + i64::from(b[i] - b'0');
                }
                i += 1;
            }
            let digits = i - start;
            if digits == 0 {
                return Err("empty fraction");
            }
            for _ in digits..6 {
                micros *= 10;
            }
        }
        if second == 60 {
            second = 59;
            micros = 999_999;
        }
        let offset_seconds = match b.get(i) {
            Some(b'Z' | b'z') if i + 1 == b.len() => 0,
            Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
                let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
                if oh > 23 || om > 59 {
                    return Err("offset out of range");
                }
                let off = oh * 3600 + om * 60;
                if *sign == b'+' {
                    off
                } else {
                    -off
                }
            }
            None => return Err("missing time zone (Z or ±HH:MM)"),
            _ => return Err("bad time zone (expected Z or ±HH:MM)"),
        };
        let days = days_from_civil(year, month, day);
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
        // An offset may carry 0000-01-01 or 9999-12-31 past the years RFC 3339 can write in
        // UTC; such an instant could not be printed back as RFC 3339 (seen while writing the
        // fuzz target's round-trip oracle; 10 M executions had not reached it).
        let utc_range = days_from_civil(0, 1, 1) * 86_400..days_from_civil(10_000, 1, 1) * 86_400;
        if !utc_range.contains(&seconds) {
            return Err("instant outside the years 0000-9999 in UTC");
        }
        Ok(Timestamp(seconds * MICROS_PER_SECOND + micros))
    }

    /// The wall clock (for names of runs, never for event time).
    pub fn now() -> Timestamp {
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        Timestamp(micros)
    }

    /// RFC 3339 in UTC with microseconds, e.g. `2024-03-01T12:00:00.000000Z`.
    pub fn to_rfc3339(self) -> String {
        let secs = self.0.div_euclid(MICROS_PER_SECOND);
        let micros = self.0.rem_euclid(MICROS_PER_SECOND);
        let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            sod / 3600,
            sod / 60 % 60,
            sod % 60
        )
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_cannot_carry_an_instant_past_the_years_rfc_3339_writes() {
        for text in ["0000-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01"] {
            assert!(Timestamp::parse_rfc3339(text).is_err(), "{text}");
        }
        for text in ["0000-01-01T00:01:00+00:01", "9999-12-31T23:58:59-00:01"] {
            let t = Timestamp::parse_rfc3339(text).expect(text);
            assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Ok(t), "{text}");
        }
    }

    fn ts(s: &str) -> i64 {
        Timestamp::parse_rfc3339(s).unwrap().unix_micros()
    }

    #[test]
    fn parses_utc_offsets_and_fractions() {
        assert_eq!(ts("1970-01-01T00:00:00Z"), 0);
        assert_eq!(
            ts("2024-03-01T12:00:00Z"),
            1_709_294_400 * MICROS_PER_SECOND
        );
        assert_eq!(ts("2024-03-01T13:00:00+01:00"), ts("2024-03-01T12:00:00Z"));
        assert_eq!(ts("2024-03-01T07:30:00-04:30"), ts("2024-03-01T12:00:00Z"));
        assert_eq!(
            ts("2024-03-01T12:00:00.5Z") - ts("2024-03-01T12:00:00Z"),
            500_000
        );
        assert_eq!(
            ts("2024-03-01T12:00:00.123456789Z") % MICROS_PER_SECOND,
            123_456
        );
        assert_eq!(ts("2024-02-29t12:00:00z"), ts("2024-02-29T12:00:00Z"));
        assert_eq!(ts("2016-12-31T23:59:60Z"), ts("2017-01-01T00:00:00Z") - 1);
    }

    #[test]
    fn rejects_non_rfc3339() {
        for bad in [
            "2024-03-01",
            "2024-03-01T12:00:00",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-03-01T24:00:00Z",
            "2024-03-01T12:00:00.Z",
            "2024/03/01T12:00:00Z",
            "2024-03-01T12:00:00+0100",
            "2024-03-01T12:00:00Zjunk",
            "1709294400",
        ] {
            assert!(Timestamp::parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_round_trip() {
        for s in [
            "1999-12-31T23:59:59.999999Z",
            "2024-02-29T00:00:00.000001Z",
            "1960-06-15T08:09:10.000000Z",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(s).unwrap().to_rfc3339(), s);
        }
    }
}
