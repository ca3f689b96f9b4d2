//! Per-app behaviour profiles: what each app has been seen doing. Bounded by apps × profile
//! size (distinct scopes, resource types, purposes …), never by the number of events.
//!
//! Anything new an app does enters its profile in quarantine: it becomes part of the
//! established baseline only after it was seen on [`ESTABLISHED_AFTER_DAYS`] distinct days (or
//! during the app's learning period), so an attacker cannot train the baseline in an afternoon.

use std::borrow::Borrow;
use std::collections::BTreeMap;

use super::stats::{LogHistogram, SlotStats};
use crate::event::{Text, Timestamp, MICROS_PER_SECOND};
use crate::smart::scope::{Scope, ScopeSet};

/// Distinct days a new behaviour must recur on before it counts as normal.
pub const ESTABLISHED_AFTER_DAYS: u32 = 3;
/// Default learning period: days of an app's own activity before baseline rules fire.
pub const DEFAULT_LEARNING_DAYS: i64 = 7;

const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

pub fn day_number(t: Timestamp) -> i64 {
    t.0.div_euclid(MICROS_PER_DAY)
}

/// When something was first and last seen, how often, and on how many distinct days.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub count: u64,
    pub days: u32,
    /// Seen during learning or on enough distinct days to be part of the baseline.
    pub established: bool,
}

impl Seen {
    fn new(at: Timestamp, learning: bool) -> Seen {
        Seen {
            first_seen: at,
            last_seen: at,
            count: 1,
            days: 1,
            established: learning,
        }
    }

    fn touch(&mut self, at: Timestamp, learning: bool) {
        if day_number(at) != day_number(self.last_seen) && at > self.last_seen {
            self.days += 1;
        }
        self.first_seen = self.first_seen.min(at);
        self.last_seen = self.last_seen.max(at);
        self.count += 1;
        self.established |= learning || self.days >= ESTABLISHED_AFTER_DAYS;
    }
}

/// A keyed profile: key → [`Seen`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeenMap<K: Ord> {
    pub entries: BTreeMap<K, Seen>,
}

impl<K: Ord + Clone> SeenMap<K> {
    /// Records `key` at `at`; returns true when the key was not established before.
    /// Takes a borrowed key (`&str` for `String` keys) so a known key costs no allocation.
    pub fn observe<Q>(&mut self, key: &Q, at: Timestamp, learning: bool) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ToOwned<Owned = K> + ?Sized,
    {
        match self.entries.get_mut(key) {
            Some(seen) => {
                let was = seen.established;
                seen.touch(at, learning);
                !was
            }
            None => {
                self.entries.insert(key.to_owned(), Seen::new(at, learning));
                true
            }
        }
    }
    /// `observe`, except that a key not yet in the map is only added when `may_add` (the
    /// baselines are within their byte budget); it is reported as new either way.
    pub fn observe_within<Q>(
        &mut self,
        key: &Q,
        at: Timestamp,
        learning: bool,
        may_add: bool,
    ) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ToOwned<Owned = K> + ?Sized,
    {
        if !may_add && !self.entries.contains_key(key) {
            return true;
        }
        self.observe(key, at, learning)
    }
    pub fn is_established<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.entries.get(key).is_some_and(|s| s.established)
    }
    pub fn established_keys(&self) -> impl Iterator<Item = &K> {
        self.entries
            .iter()
            .filter(|(_, s)| s.established)
            .map(|(k, _)| k)
    }
    pub fn has_established(&self) -> bool {
        self.entries.values().any(|s| s.established)
    }
}

/// The day-to-day spread (squared) assumed for a new app: ±25 %.
pub const INITIAL_DRIP_VAR: f64 = 0.0625;

/// Everything learned about one app.
#[derive(Clone, Debug, PartialEq)]
pub struct AppProfile {
    pub client_id: Text,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// Distinct days with any activity.
    pub active_days: u32,
    /// Granted scopes, normalised one by one (v2 spelling).
    pub scopes: SeenMap<String>,
    pub grant_types: SeenMap<String>,
    /// Broadest context of each grant (patient, user, system).
    pub contexts: SeenMap<String>,
    /// (resource type, interaction) of accesses.
    pub resources: SeenMap<(String, String)>,
    pub purposes: SeenMap<String>,
    /// Operations used (`$export`, `$everything`, …).
    pub operations: SeenMap<String>,
    /// Population-level access (searches over all patients, exports).
    pub population: SeenMap<String>,
    /// Accesses by hour of week (0 = Monday 00:00 in the configured zone).
    pub hour_of_week: Vec<u64>,
    /// Requests per finished token.
    pub token_requests: LogHistogram,
    /// Distinct patients per finished token.
    pub token_patients: LogHistogram,
    /// Large-page follow-ups (`_count` ≥ 100) per finished token.
    pub token_pages: LogHistogram,
    /// Data retrieved per finished token: resources returned where the source logs them,
    /// otherwise one per served request.
    pub token_retrieved: LogHistogram,
    /// Resources returned by the files of each finished Bulk Data export kicked off on a
    /// weekday, and on a weekend day (a weekly full export beside nightly increments).
    pub export_retrieved_weekday: LogHistogram,
    pub export_retrieved_weekend: LogHistogram,
    /// Requests per hour, by seasonal slot (see [`seasonal_slot`]).
    pub hourly_requests: Vec<SlotStats>,
    /// Requests per day: weekdays, weekends.
    pub daily_requests: Vec<SlotStats>,
    /// State of the slow-drip CUSUM over daily totals (0 = no sustained excess).
    pub drip_cusum: f64,
    /// The app's usual ratio of a day's total to its (lagging) daily expectation: about 1 for a
    /// steady app, above 1 for one growing steadily. A drip is a rise over this level.
    pub drip_level: f64,
    /// Smoothed squared deviation of a day's ratio from that level: the app's day-to-day spread.
    pub drip_var: f64,
}

/// Observations a seasonal slot needs before it can be the app's busiest hour.
pub const BUSIEST_MIN_OBSERVATIONS: u32 = 6;

/// Seasonal slots: 24 hours of a weekday, then 24 hours of a weekend day.
pub const SEASONAL_SLOTS: usize = 48;

/// The seasonal slot of an hour-of-week (0 = Monday 00:00).
pub fn seasonal_slot(hour_of_week: usize) -> usize {
    let weekend = hour_of_week >= 5 * 24;
    usize::from(weekend) * 24 + hour_of_week % 24
}

/// Hour of week of an instant, Monday 00:00 = 0 (1970-01-01 was a Thursday).
pub fn hour_of_week(t: Timestamp) -> usize {
    let hours = t.unix_seconds().div_euclid(3600) + 72;
    usize::try_from(hours.rem_euclid(168)).unwrap_or(0)
}

impl AppProfile {
    pub fn new(client_id: Text, at: Timestamp) -> AppProfile {
        AppProfile {
            client_id,
            first_seen: at,
            last_seen: at,
            active_days: 1,
            scopes: SeenMap::default(),
            grant_types: SeenMap::default(),
            contexts: SeenMap::default(),
            resources: SeenMap::default(),
            purposes: SeenMap::default(),
            operations: SeenMap::default(),
            population: SeenMap::default(),
            hour_of_week: vec![0; 168],
            token_requests: LogHistogram::default(),
            token_patients: LogHistogram::default(),
            token_pages: LogHistogram::default(),
            token_retrieved: LogHistogram::default(),
            export_retrieved_weekday: LogHistogram::default(),
            export_retrieved_weekend: LogHistogram::default(),
            hourly_requests: vec![SlotStats::default(); SEASONAL_SLOTS],
            daily_requests: vec![SlotStats::default(); 2],
            drip_cusum: 0.0,
            drip_level: 1.0,
            // A quarter's spread until the app's own is known: a new app is not judged as if
            // its days were all alike.
            drip_var: INITIAL_DRIP_VAR,
        }
    }

    /// The app's finished exports kicked off on that kind of day.
    pub fn exports_on(&self, weekend: bool) -> &LogHistogram {
        if weekend {
            &self.export_retrieved_weekend
        } else {
            &self.export_retrieved_weekday
        }
    }

    /// Marks activity at `at`.
    /// The app's usual ratio of a day to its weekday/weekend expectation (1 until learned):
    /// what `slow_drip` measures a rise against.
    pub fn usual_daily_level(&self) -> f64 {
        if self.drip_level > 0.0 {
            self.drip_level
        } else {
            1.0
        }
    }

    /// The scopes the app's established grants held, as one set.
    pub fn established_scopes(&self) -> ScopeSet {
        ScopeSet::from_scopes(self.scopes.established_keys().map(|s| Scope::parse(s)))
    }

    /// Mean of the app's busiest hour-of-week slot among those seen at least
    /// [`BUSIEST_MIN_OBSERVATIONS`] times (0 until one has).
    pub fn busiest_hour_mean(&self) -> f64 {
        self.hourly_requests
            .iter()
            .filter(|s| s.n >= BUSIEST_MIN_OBSERVATIONS)
            .map(|s| s.mean)
            .fold(0.0_f64, f64::max)
    }

    pub fn touch(&mut self, at: Timestamp) {
        if day_number(at) != day_number(self.last_seen) && at > self.last_seen {
            self.active_days += 1;
        }
        self.first_seen = self.first_seen.min(at);
        self.last_seen = self.last_seen.max(at);
    }

    /// Still learning: less than `learning_days` since the app was first seen.
    pub fn is_learning(&self, at: Timestamp, learning_days: i64) -> bool {
        at.0 - self.first_seen.0 < learning_days * MICROS_PER_DAY
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: i64, h: i64) -> Timestamp {
        Timestamp(
            1_709_251_200 * MICROS_PER_SECOND + d * MICROS_PER_DAY + h * 3600 * MICROS_PER_SECOND,
        )
    }

    #[test]
    fn new_behaviour_is_quarantined_until_it_recurs_on_three_days() {
        let mut m: SeenMap<String> = SeenMap::default();
        let k = "patient/*.rs".to_string();
        assert!(m.observe(&k, day(10, 1), false));
        // Many times in one afternoon: still not established.
        for h in 2..20 {
            assert!(m.observe(&k, day(10, h), false));
        }
        assert!(!m.is_established(&k));
        assert!(m.observe(&k, day(11, 1), false));
        assert!(
            m.observe(&k, day(12, 1), false),
            "established by this observation"
        );
        assert!(m.is_established(&k));
        assert!(!m.observe(&k, day(13, 1), false));
        assert_eq!(m.entries[&k].days, 4);
    }

    #[test]
    fn learning_establishes_at_once() {
        let mut m: SeenMap<String> = SeenMap::default();
        assert!(m.observe(&"x".to_string(), day(0, 1), true));
        assert!(m.is_established(&"x".to_string()));
        let mut p = AppProfile::new("app".into(), day(0, 0));
        assert!(p.is_learning(day(6, 23), DEFAULT_LEARNING_DAYS));
        assert!(!p.is_learning(day(7, 0), DEFAULT_LEARNING_DAYS));
        p.touch(day(1, 0));
        p.touch(day(1, 5));
        p.touch(day(3, 0));
        assert_eq!(p.active_days, 3);
    }
}
