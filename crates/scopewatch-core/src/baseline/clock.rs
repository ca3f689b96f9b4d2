//! Local time for seasonality: hour of week and day boundaries in a configured time zone
//! (default UTC), so a clinic's 08:00 stays 08:00 across daylight-saving changes.

use std::fmt;

use jiff::tz::TimeZone;

use super::profile::hour_of_week;
use crate::event::{Timestamp, MICROS_PER_SECOND};

const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

#[derive(Clone)]
pub struct LocalClock {
    name: String,
    /// None for UTC (no lookups on the hot path).
    tz: Option<TimeZone>,
}

impl fmt::Debug for LocalClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalClock({})", self.name)
    }
}

impl Default for LocalClock {
    fn default() -> Self {
        LocalClock::utc()
    }
}

impl LocalClock {
    pub fn utc() -> LocalClock {
        LocalClock {
            name: "UTC".into(),
            tz: None,
        }
    }

    /// `UTC`, an IANA zone name (`Europe/Berlin`; the zone database is built in) or a fixed
    /// offset (`+01:00`, `-05:30`).
    pub fn parse(name: &str) -> Result<LocalClock, String> {
        if name.eq_ignore_ascii_case("utc") || name == "Z" {
            return Ok(LocalClock::utc());
        }
        let tz = if name.starts_with(['+', '-']) {
            let bad = || format!("time zone offset '{name}' is not ±HH:MM");
            let sign = if name.starts_with('-') { -1 } else { 1 };
            let (h, m) = name[1..].split_once(':').ok_or_else(bad)?;
            let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
            if h > 23 || m > 59 {
                return Err(bad());
            }
            let offset =
                jiff::tz::Offset::from_seconds(sign * (h * 3600 + m * 60)).map_err(|_| bad())?;
            TimeZone::fixed(offset)
        } else {
            TimeZone::get(name).map_err(|e| format!("unknown time zone '{name}': {e}"))?
        };
        Ok(LocalClock {
            name: name.to_string(),
            tz: Some(tz),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Offset of local time from UTC at `t`, in microseconds.
    pub fn offset_micros(&self, t: Timestamp) -> i64 {
        let Some(tz) = &self.tz else {
            return 0;
        };
        match jiff::Timestamp::from_microsecond(t.0) {
            Ok(ts) => i64::from(tz.to_offset(ts).seconds()) * MICROS_PER_SECOND,
            Err(_) => 0,
        }
    }

    /// Local hour of week (0 = Monday 00:00 local).
    pub fn hour_of_week(&self, t: Timestamp) -> usize {
        hour_of_week(Timestamp(t.0 + self.offset_micros(t)))
    }

    /// The instant the local day containing `t` began. Taken from the zone's rules (jiff's
    /// zoned start of day), not from `t`'s own offset: on a daylight-saving change the offset
    /// at midnight differs from the offset later that day, and one day must have one start.
    pub fn day_start(&self, t: Timestamp) -> Timestamp {
        let utc_day = |t: Timestamp| Timestamp(t.0 - t.0.rem_euclid(MICROS_PER_DAY));
        let Some(tz) = &self.tz else {
            return utc_day(t);
        };
        let start = jiff::Timestamp::from_microsecond(t.0)
            .ok()
            .and_then(|ts| ts.to_zoned_datetime(tz.clone()).start_of_day().ok());
        match start {
            Some(zoned) => Timestamp(zoned.timestamp().as_microsecond()),
            // Outside jiff's range (years beyond ±9999): the offset arithmetic.
            None => {
                let offset = self.offset_micros(t);
                Timestamp(utc_day(Timestamp(t.0 + offset)).0 - offset)
            }
        }
    }

    /// The local day that began at `start` (a [`day_start`](Self::day_start)), as
    /// (start, next day's start): 23 or 25 hours long on a daylight-saving change.
    pub fn day_span(&self, start: Timestamp) -> (Timestamp, Timestamp) {
        // 25 h after any day's start lies in the next day (days last 23 to 25 h).
        let next = self.day_start(Timestamp(start.0 + 25 * 3600 * MICROS_PER_SECOND));
        (start, next)
    }

    /// True on Saturday and Sunday, local time.
    pub fn is_weekend(&self, t: Timestamp) -> bool {
        self.hour_of_week(t) >= 5 * 24
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    /// The fall-back Sunday (2024-10-27, Berlin: 03:00 CEST becomes 02:00 CET) is one day
    /// from 2024-10-26T22:00Z (local midnight, still UTC+2) to 2024-10-27T23:00Z, whatever the
    /// offset of the event; the spring-forward day (2024-03-31) likewise.
    #[test]
    fn a_daylight_saving_day_has_one_start() {
        let berlin = LocalClock::parse("Europe/Berlin").unwrap();
        let midnight = ts("2024-10-26T22:00:00Z");
        for t in [
            "2024-10-26T22:00:00Z",
            "2024-10-27T00:30:00Z",
            "2024-10-27T01:30:00Z",
            "2024-10-27T11:00:00Z",
            "2024-10-27T22:59:59Z",
        ] {
            assert_eq!(berlin.day_start(ts(t)), midnight, "{t}");
        }
        assert_eq!(
            berlin.day_start(ts("2024-10-27T23:00:00Z")),
            ts("2024-10-27T23:00:00Z")
        );
        for t in ["2024-03-30T23:30:00Z", "2024-03-31T12:00:00Z"] {
            assert_eq!(berlin.day_start(ts(t)), ts("2024-03-30T23:00:00Z"), "{t}");
        }
        // A day's span ends where the next begins: 25 h in October, 23 h in March.
        assert_eq!(
            berlin.day_span(midnight),
            (midnight, ts("2024-10-27T23:00:00Z"))
        );
        assert_eq!(
            berlin.day_span(ts("2024-03-30T23:00:00Z")).1,
            ts("2024-03-31T22:00:00Z")
        );
        let utc = LocalClock::default();
        assert_eq!(
            utc.day_span(ts("2024-03-31T00:00:00Z")).1,
            ts("2024-04-01T00:00:00Z")
        );
    }

    #[test]
    fn local_hours_follow_daylight_saving() {
        let berlin = LocalClock::parse("Europe/Berlin").unwrap();
        // 08:00 local on Friday 2024-03-29 (UTC+1) and on Tuesday 2024-04-02 (UTC+2).
        assert_eq!(berlin.hour_of_week(ts("2024-03-29T07:00:00Z")), 4 * 24 + 8);
        assert_eq!(berlin.hour_of_week(ts("2024-04-02T06:00:00Z")), 24 + 8);
        assert_eq!(
            berlin.day_start(ts("2024-04-02T06:00:00Z")),
            ts("2024-04-01T22:00:00Z")
        );
        assert!(berlin.is_weekend(ts("2024-03-30T12:00:00Z")));
        let utc = LocalClock::default();
        assert_eq!(utc.hour_of_week(ts("2024-04-01T00:00:00Z")), 0);
        assert_eq!(
            utc.day_start(ts("2024-04-02T06:00:00Z")),
            ts("2024-04-02T00:00:00Z")
        );
        let fixed = LocalClock::parse("-05:00").unwrap();
        assert_eq!(fixed.hour_of_week(ts("2024-04-01T05:00:00Z")), 0);
        assert!(LocalClock::parse("Mars/Olympus")
            .unwrap_err()
            .contains("unknown time zone"));
    }
}
