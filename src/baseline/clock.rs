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

    /// The instant local midnight began for the day containing `t`.
    pub fn day_start(&self, t: Timestamp) -> Timestamp {
        let offset = self.offset_micros(t);
        let local = t.0 + offset;
        Timestamp(local - local.rem_euclid(MICROS_PER_DAY) - offset)
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
