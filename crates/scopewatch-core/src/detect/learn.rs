//! What an app's baseline learns from what it does, after the rules have judged it (rules
//! compare with the baseline as it was; `rules::hooks`). `learning`: the app is still in its
//! learning days; `may_add`: the state is within its byte budget (`budget`), else keys never
//! seen are judged but not remembered.

use crate::baseline::{seasonal_slot, AppProfile, LocalClock};
use crate::event::{AccessEvent, Timestamp, MICROS_PER_SECOND};
use crate::smart::request::FhirRequest;
use crate::smart::scope::ScopeSet;

use super::rules::catalog::RuleId;
use super::rules::settings::RuleSettings;
use super::rules::slow_drip::{day_spread, ESTABLISHED_DAYS};

const MICROS_PER_HOUR: i64 = 3600 * MICROS_PER_SECOND;

/// Folds a grant into the app's scopes, launch contexts and grant types.
pub fn learn_grant(
    profile: &mut AppProfile,
    granted: &ScopeSet,
    grant_type: Option<&str>,
    time: Timestamp,
    (learning, may_add): (bool, bool),
) {
    for scope in granted.resources().iter().map(|r| r.normalized()) {
        profile
            .scopes
            .observe_within(&scope, time, learning, may_add);
    }
    for other in granted.others() {
        let other = other.normalized();
        profile
            .scopes
            .observe_within(&other, time, learning, may_add);
    }
    if let Some(context) = granted.max_context() {
        profile
            .contexts
            .observe_within(context.as_str(), time, learning, may_add);
    }
    if let Some(grant) = grant_type {
        profile
            .grant_types
            .observe_within(grant, time, learning, may_add);
    }
}

/// Folds an access into the app's purposes, resources, operations, population-level access
/// and hours of the week.
pub fn learn_access(
    profile: &mut AppProfile,
    access: &AccessEvent,
    request: &FhirRequest<'_>,
    population_level: bool,
    local_hour_of_week: usize,
    (learning, may_add): (bool, bool),
) {
    let time = access.common.time;
    let served = (200..300).contains(&access.status);
    if let Some(purpose) = access.purpose_of_use.as_deref() {
        profile
            .purposes
            .observe_within(purpose, time, learning, may_add);
    }
    if !served {
        return;
    }
    if let Some(ty) = request.resource_type {
        let key = (ty.to_string(), request.interaction.as_str().to_string());
        profile
            .resources
            .observe_within(&key, time, learning, may_add);
    }
    if let Some(op) = request.operation.as_deref() {
        profile
            .operations
            .observe_within(op, time, learning, may_add);
    }
    if let Some(level) = request.export_level() {
        profile
            .operations
            .observe_within(level, time, learning, may_add);
    }
    if population_level {
        let kind = if request.is_bulk_export() {
            "export"
        } else {
            "search"
        };
        profile
            .population
            .observe_within(kind, time, learning, may_add);
    }
    if let Some(slot) = profile.hour_of_week.get_mut(local_hour_of_week) {
        *slot += 1;
    }
}

/// Folds a finished hour into its seasonal slot (capped at three standard deviations when a
/// rule found it anomalous, so a burst is not absorbed at once), and the silent hours up to
/// `next` as hours without a request (at most a week of them).
pub fn learn_hour(
    profile: &mut AppProfile,
    clock: &LocalClock,
    (start, requests): (Timestamp, u64),
    anomalous: bool,
    next: Option<Timestamp>,
) {
    let slot_index = seasonal_slot(clock.hour_of_week(start));
    let Some(slot) = profile.hourly_requests.get_mut(slot_index) else {
        return;
    };
    let mut value = requests as f64;
    if anomalous {
        value = value.min(slot.mean + 3.0 * slot.var.sqrt());
    }
    slot.update(value);
    let Some(next) = next else {
        return;
    };
    let mut t = Timestamp(start.0 + MICROS_PER_HOUR);
    let mut steps = 0;
    while t < next && steps < 168 {
        if let Some(s) = profile
            .hourly_requests
            .get_mut(seasonal_slot(clock.hour_of_week(t)))
        {
            s.update(0.0);
        }
        t = Timestamp(t.0 + MICROS_PER_HOUR);
        steps += 1;
    }
}

/// Folds a finished day's total into the daily expectation (weekday or weekend), the app's
/// usual level and its spread, with `slow_drip`'s parameters.
///
/// While a rise is accumulating (the drip's CUSUM holds more than one day's most), raised days
/// are not absorbed as they are: a drip must not teach itself in. A day far below the usual
/// level counts as at most `spread_clip` spreads below it. Otherwise every day counts in full
/// (capping all high days would drag the expectation of a noisy app below its real level).
pub fn learn_day(profile: &mut AppProfile, weekend: bool, total: u64, settings: &RuleSettings) {
    let drip = |name| settings.param(RuleId::SlowDrip, name);
    let (allowance, max_step, min_spread) =
        (drip("allowance"), drip("max_step"), drip("min_spread"));
    let (level_rate, level_step) = (drip("level_rate"), drip("level_step"));
    let index = usize::from(weekend);
    let Some(slot) = profile.daily_requests.get(index).copied() else {
        return;
    };
    let value = total as f64;
    let expected = slot.mean.max(1.0);
    let level = profile.usual_daily_level();
    let rise = value / (expected * level);
    // Floored at 0: a rules file with `allowance >= max_step` disables the CUSUM, and must not
    // make every raised day suspect (capped when learned) instead.
    let suspect = profile.drip_cusum > (max_step - allowance).max(0.0) && rise > 1.0;
    // A day far below the usual level (a holiday, an outage) counts as at most `spread_clip`
    // spreads below it: one closed weekday must not lower the expectation so far that the
    // ordinary days after it look like a drip (only once the slot has an expectation).
    let established = slot.n >= ESTABLISHED_DAYS;
    let floor = if established {
        (1.0 - drip("spread_clip") * day_spread(profile, expected, settings)).max(0.0)
    } else {
        0.0
    };
    let ceiling = if suspect { level_step } else { f64::INFINITY };
    let absorbed = value
        .max(expected * level * floor)
        .min(expected * level * ceiling);
    if established {
        let ratio = (value / expected).max(level * floor).min(level * ceiling);
        profile.drip_level = level + level_rate * (ratio - level);
        // A day counts at most `spread_clip` spreads (Huber): the first raised day of a drip,
        // not yet suspect, must not widen the spread enough to hide the days that follow.
        let clip = (drip("spread_clip").powi(2) * profile.drip_var).max(min_spread.powi(2));
        let deviation = (rise - 1.0).powi(2).min(clip).min(1.0);
        let weight = spread_weight(profile, drip("spread_rate"), drip("spread_prior_days"));
        profile.drip_var += weight * (deviation - profile.drip_var);
    }
    if let Some(s) = profile.daily_requests.get_mut(index) {
        s.update(absorbed);
    }
}

/// Weight of the day being learned in the app's spread: the plain mean of the app's judged days
/// and its starting spread (worth `prior_days` days) until that weight falls to `rate`. The
/// starting spread, a guess, would otherwise outweigh a calm app's own days for weeks.
/// Counted from the daily slots (a slot's spread updates start with its fourth day), so
/// stored baselines need no new column.
fn spread_weight(profile: &AppProfile, rate: f64, prior_days: f64) -> f64 {
    let judged: u32 = profile
        .daily_requests
        .iter()
        .map(|slot| slot.n.saturating_sub(ESTABLISHED_DAYS))
        .sum();
    (1.0 / (f64::from(judged) + 1.0 + prior_days)).max(rate)
}
