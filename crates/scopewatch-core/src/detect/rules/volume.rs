//! data_volume (and patient fan-out) rules over per-token usage and hourly totals.
//!
//! - `token_outlier`: one token pulls far more than the app's tokens normally do, even when the
//!   app's total looks normal: requests above 5 × the app's p99 per token (at least 200), or
//!   data retrieved (resources returned where logged, else served requests) above 10 × the
//!   typical (median) token's and 3 × the p99 token's (at least 200).
//! - `paging_sweep`: one token follows far more large pages (page follow-ups with `_count` ≥
//!   100) than the app's tokens do (5 × p99, at least 20).
//! - `patient_fanout` (purpose_drift): one token touches many distinct patients: more than 3
//!   for a token with a launch patient, else 3 × the app's p99 (at least 20).
//! - `slow_drip`: a sustained rise in daily totals over the app's usual level (standardised
//!   CUSUM of the day's ratio to its weekday/weekend expectation, relative to the app's usual
//!   ratio: 1.35× is found in two to three days, 2× in one or two), the raising day at least
//!   1.2× and 50 requests above. Raised days are absorbed at most 10 % above the level, and one
//!   day widens the app's spread as if it were at most 2 spreads out (Huber), so a drip cannot
//!   teach itself into the baseline, while steady growth is followed.
//! - `hourly_burst`: requests in an hour far above the seasonal expectation for that hour
//!   (weekday/weekend × hour of day): negative-binomial tail probability below 1e-6, and at
//!   least 4 × the expected count, 6 standard deviations above it and 100 requests, so sparse
//!   or bursty apps don't flap. The standard deviation is taken as at least 0.75 × the mean:
//!   hourly totals of session-driven apps are over-dispersed, and a few weeks of history
//!   underestimate their spread.

use std::collections::BTreeSet;

use serde_json::json;
use statrs::distribution::{DiscreteCDF, NegativeBinomial, Poisson};

use crate::alert::{Category, Severity, ATTACK_T1213, ATTACK_T1567, CSF_DE_CM_03};
use crate::baseline::{AppProfile, SlotStats};
use crate::event::{AccessEvent, Text, Timestamp, MICROS_PER_SECOND};
use crate::smart::request::{request_shape, FhirRequest};

use super::super::finding::Finding;
use super::catalog::RuleId;
use super::settings::RuleSettings;

/// Histograms need this many finished tokens before per-token thresholds are trusted.
pub const MIN_TOKENS: u64 = 20;
/// Seasonal slots need this many hourly observations before bursts are judged.
pub const MIN_SLOT_OBSERVATIONS: u32 = 6;
const MAX_TRACKED_PATIENTS: usize = 1024;
/// A page of at least this many resources is a large page.
pub const LARGE_PAGE: u32 = 100;

/// What one token has done so far.
#[derive(Clone, Debug, Default)]
pub struct TokenUsage {
    pub requests: u64,
    /// Page follow-ups with a large page size.
    pub pages: u64,
    pub max_count: u32,
    /// Distinct patients named by its requests (capped; PHI — never logged).
    pub patients: BTreeSet<Text>,
    pub fired: BTreeSet<RuleId>,
    /// Data retrieved: resources returned where the source logs them, else served requests.
    pub retrieved: u64,
}

impl TokenUsage {
    pub fn record(&mut self, access: &AccessEvent, request: &FhirRequest<'_>) {
        self.requests += 1;
        if (200..300).contains(&access.status) {
            // Saturating: a hostile count must neither wrap nor panic.
            self.retrieved = self
                .retrieved
                .saturating_add(access.resources_returned.unwrap_or(1));
        }
        if request.is_page_followup() && request.count.unwrap_or(0) >= LARGE_PAGE {
            self.pages += 1;
        }
        self.max_count = self.max_count.max(request.count.unwrap_or(0));
        let named = request
            .patient_ids()
            .into_iter()
            .map(Text::from)
            .chain(access.patient.clone());
        for p in named {
            if self.patients.len() < MAX_TRACKED_PATIENTS {
                self.patients.insert(p);
            }
        }
    }

    /// Folds a finished token into the app's per-token histograms.
    pub fn fold_into(&self, profile: &mut AppProfile) {
        profile.token_requests.add(self.requests);
        profile.token_patients.add(self.patients.len() as u64);
        profile.token_pages.add(self.pages);
        profile.token_retrieved.add(self.retrieved);
    }
}

/// Score from a tail probability: the same surprise gives the same score across rules.
pub fn surprise_score(p: f64) -> u8 {
    let bits = -p.max(1e-300).log10();
    (40.0 + 5.0 * bits).clamp(0.0, 100.0) as u8
}

fn base(
    access: &AccessEvent,
    rule: RuleId,
    category: Category,
    severity: Severity,
    score: u8,
) -> Finding {
    Finding {
        client_id: access.common.client_id.clone(),
        rule,
        cause: String::new(),
        category,
        severity,
        score,
        time: access.common.time,
        span: None,
        summary: String::new(),
        observed: serde_json::Value::Null,
        baseline: serde_json::Value::Null,
        token_id: access.token_id.clone(),
        example_request: Some(request_shape(access.method, &access.url)),
        references: vec![ATTACK_T1213, CSF_DE_CM_03],
    }
}

/// A `token_outlier` finding (by requests or by data retrieved).
fn outlier(
    access: &AccessEvent,
    summary: String,
    observed: serde_json::Value,
    baseline: serde_json::Value,
) -> Finding {
    let mut f = base(
        access,
        RuleId::TokenOutlier,
        Category::DataVolume,
        Severity::Medium,
        70,
    );
    f.summary = summary;
    f.observed = observed;
    f.baseline = baseline;
    f.references = vec![ATTACK_T1213, ATTACK_T1567, CSF_DE_CM_03];
    f
}

/// Per-token rules, checked after each access of a known token; each fires once per token.
pub fn check_token_usage(
    access: &AccessEvent,
    usage: &mut TokenUsage,
    has_launch_patient: bool,
    profile: &AppProfile,
    settings: &RuleSettings,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let client = &access.common.client_id;
    let trusted = profile.token_requests.total() >= MIN_TOKENS;

    let patients = usage.patients.len() as u64;
    let fanout = |name| settings.param(RuleId::PatientFanout, name);
    let fanout_limit = if has_launch_patient {
        Some(fanout("patient_bound_limit") as u64)
    } else if trusted {
        let p99 = profile.token_patients.quantile_upper(0.99) as f64;
        Some(((fanout("p99_multiple") * p99) as u64).max(fanout("min_limit") as u64))
    } else {
        None
    };
    if let Some(limit) = fanout_limit {
        if patients > limit && usage.fired.insert(RuleId::PatientFanout) {
            let mut f = base(
                access,
                RuleId::PatientFanout,
                Category::PurposeDrift,
                Severity::High,
                80,
            );
            if !has_launch_patient {
                f.severity = Severity::Medium;
                f.score = 65;
            }
            f.summary = format!(
                "One {client} token touched {patients} distinct patients; its tokens normally touch at most {limit}."
            );
            f.observed =
                json!({ "distinct_patients": patients, "launch_patient": has_launch_patient });
            f.baseline = json!({ "patients_per_token_limit": limit });
            out.push(f);
        }
    }
    if !trusted {
        return out;
    }
    let outlier_param = |name| settings.param(RuleId::TokenOutlier, name);
    let request_limit = ((outlier_param("p99_multiple")
        * profile.token_requests.quantile_upper(0.99) as f64) as u64)
        .max(outlier_param("min_requests") as u64);
    if usage.requests > request_limit && usage.fired.insert(RuleId::TokenOutlier) {
        out.push(outlier(
            access,
            format!(
                "One {client} token made {} requests, far more than the app's tokens normally do (p99 × {} = {request_limit}).",
                usage.requests,
                outlier_param("p99_multiple")
            ),
            json!({ "requests": usage.requests }),
            json!({ "requests_per_token_p99": profile.token_requests.quantile_upper(0.99), "tokens": profile.token_requests.total() }),
        ));
    }
    let retrieved_trusted = profile.token_retrieved.total() >= MIN_TOKENS;
    let typical = profile.token_retrieved.quantile_upper(0.5);
    let p99 = profile.token_retrieved.quantile_upper(0.99);
    let retrieved_limit = ((outlier_param("retrieved_median_multiple") * typical as f64) as u64)
        .max((outlier_param("retrieved_p99_multiple") * p99 as f64) as u64)
        .max(outlier_param("min_retrieved") as u64);
    if retrieved_trusted
        && usage.retrieved > retrieved_limit
        && usage.fired.insert(RuleId::TokenOutlier)
    {
        out.push(outlier(
            access,
            format!(
                "One {client} token retrieved {} resources, far more than the app's tokens normally do (typical {typical}, p99 {p99}).",
                usage.retrieved
            ),
            json!({ "retrieved": usage.retrieved, "requests": usage.requests }),
            json!({ "retrieved_per_token_median": typical, "retrieved_per_token_p99": p99, "tokens": profile.token_retrieved.total() }),
        ));
    }
    let paging = |name| settings.param(RuleId::PagingSweep, name);
    let page_limit = ((paging("p99_multiple") * profile.token_pages.quantile_upper(0.99) as f64)
        as u64)
        .max(paging("min_pages") as u64);
    if usage.pages > page_limit && usage.fired.insert(RuleId::PagingSweep) {
        let mut f = base(
            access,
            RuleId::PagingSweep,
            Category::DataVolume,
            Severity::Medium,
            65,
        );
        f.summary = format!(
            "One {client} token paged through {} result pages of up to {} resources each, a deep sweep its tokens don't normally make.",
            usage.pages, usage.max_count
        );
        f.observed = json!({ "pages": usage.pages, "max_count": usage.max_count });
        f.baseline = json!({ "pages_per_token_p99": profile.token_pages.quantile_upper(0.99) });
        out.push(f);
    }
    out
}

/// P(X ≥ observed) for a count with the slot's mean and variance: negative binomial when
/// over-dispersed, Poisson otherwise.
pub fn upper_tail(observed: u64, slot: &SlotStats) -> f64 {
    if observed == 0 {
        return 1.0;
    }
    // A floor keeps near-silent slots from making every request look impossible.
    let mean = slot.mean.max(1.0);
    let var = slot.var.max(mean).max(spread_floor(mean).powi(2));
    let p = if var > mean * 1.05 {
        let success = mean / var;
        let r = mean * mean / (var - mean);
        NegativeBinomial::new(r, success)
            .map(|d| d.sf(observed - 1))
            .ok()
    } else {
        Poisson::new(mean).map(|d| d.sf(observed - 1)).ok()
    };
    p.unwrap_or(1.0)
}

/// The smallest standard deviation assumed for an hourly total with this mean.
fn spread_floor(mean: f64) -> f64 {
    0.75 * mean
}

/// Judges one finished hour of an app. Returns the finding (if any) and whether the hour was
/// anomalous (an anomalous hour must not be absorbed into the baseline as it is).
pub fn check_hour(
    client_id: &Text,
    hour_start: Timestamp,
    requests: u64,
    slot: &SlotStats,
    settings: &RuleSettings,
) -> (Option<Finding>, bool) {
    if slot.n < MIN_SLOT_OBSERVATIONS {
        return (None, false);
    }
    let p = upper_tail(requests, slot);
    let sd = slot.var.sqrt().max(spread_floor(slot.mean));
    let burst = |name| settings.param(RuleId::HourlyBurst, name);
    let practical = requests as f64
        >= (burst("min_multiple") * slot.mean)
            .max(slot.mean + burst("min_sigmas") * sd)
            .max(burst("min_requests"));
    if p >= 1e-6 || !practical {
        return (None, false);
    }
    let finding = Finding {
        client_id: client_id.clone(),
        rule: RuleId::HourlyBurst,
        cause: String::new(),
        category: Category::DataVolume,
        severity: if p < 1e-12 { Severity::High } else { Severity::Medium },
        score: surprise_score(p),
        time: Timestamp(hour_start.0 + 3_600_000_000),
        span: Some((hour_start, Timestamp(hour_start.0 + 3600 * MICROS_PER_SECOND))),
        summary: format!(
            "{client_id} made {requests} requests in one hour where about {:.0} are usual for that hour (p = {p:.1e}).",
            slot.mean
        ),
        observed: json!({ "requests": requests, "hour_start": hour_start, "tail_probability": p }),
        baseline: json!({ "mean": slot.mean, "std_dev": slot.var.sqrt(), "observations": slot.n }),
        token_id: None,
        example_request: None,
        references: vec![ATTACK_T1213, ATTACK_T1567, CSF_DE_CM_03],
    };
    (Some(finding), true)
}

/// Judges one finished day's total, updating the app's daily expectation and CUSUM state.
///
/// The daily expectation is an EWMA per weekday/weekend, which lags behind an app that grows
/// steadily (3 % a day sits about 30 % above it). So the detector watches the ratio of a day to
/// its expectation relative to the app's usual ratio (`drip_level`, itself slowly smoothed): a
/// steady grower has a usual ratio above 1 and raises nothing, a step up of 1.35× sustained for
/// three days does (standardised CUSUM, by default allowance 0.5 σ, threshold 2.5 σ, at most
/// 1.5 σ from one day, so only three raised days in a row fire).
pub fn check_daily(
    client_id: &Text,
    day: (Timestamp, Timestamp),
    weekend: bool,
    total: u64,
    profile: &mut AppProfile,
    learning: bool,
    settings: &RuleSettings,
) -> Option<Finding> {
    let drip = |name| settings.param(RuleId::SlowDrip, name);
    let (allowance, max_step, min_spread) =
        (drip("allowance"), drip("max_step"), drip("min_spread"));
    let (level_rate, level_step) = (drip("level_rate"), drip("level_step"));
    let index = usize::from(weekend);
    let slot = *profile.daily_requests.get(index)?;
    let value = total as f64;
    let mut finding = None;
    let mut absorbed = value;
    let expected = slot.mean.max(1.0);
    let level = if profile.drip_level > 0.0 {
        profile.drip_level
    } else {
        1.0
    };
    let rise = value / (expected * level);
    if !learning && slot.n >= 3 {
        // Relative spread: the app's own day-to-day spread of the ratio, at least a floor and
        // the spread of a count made of sessions (requests arrive a handful per session, so a
        // day's total varies like a Poisson count of sessions, not of requests).
        let cv = profile
            .drip_var
            .sqrt()
            .max(min_spread)
            .max(drip("session_dispersion") / expected.sqrt());
        let z = ((rise - 1.0) / cv).min(max_step);
        profile.drip_cusum = (profile.drip_cusum + z - allowance).max(0.0);
        let excess = value - expected * level;
        if profile.drip_cusum > drip("threshold")
            && rise >= drip("min_rise")
            && excess >= drip("min_excess")
        {
            finding = Some(drip_finding(
                client_id,
                day,
                total,
                expected * level,
                rise,
                profile,
            ));
            // Restart the detector: a drip that goes on alerts again after a few more days.
            profile.drip_cusum = 0.0;
        }
    }
    // While a rise is accumulating, raised days are not absorbed as they are: the drip must not
    // teach itself in. Otherwise every day counts in full, high or low alike (capping only high
    // days would drag the expectation of a noisy app below its real level).
    // Suspect: more than one day's most (`max_step - allowance`, 1.0 by default) has built up.
    // Floored at 0: a rules file with `allowance >= max_step` disables the CUSUM, and must not
    // make every raised day suspect (capped when learned) instead.
    let suspect = profile.drip_cusum > (max_step - allowance).max(0.0) && rise > 1.0;
    if suspect {
        absorbed = value.min(expected * level * level_step);
    }
    if slot.n >= 3 {
        let ratio = if suspect {
            (value / expected).min(level * level_step)
        } else {
            value / expected
        };
        profile.drip_level = level + level_rate * (ratio - level);
        // A day counts at most `spread_clip` spreads (Huber): the first raised day of a drip,
        // not yet suspect, must not widen the spread enough to hide the days that follow.
        let clip = (drip("spread_clip").powi(2) * profile.drip_var).max(min_spread.powi(2));
        let deviation = (rise - 1.0).powi(2).min(clip).min(1.0);
        profile.drip_var += drip("spread_rate") * (deviation - profile.drip_var);
    }
    if let Some(s) = profile.daily_requests.get_mut(index) {
        s.update(absorbed);
    }
    finding
}

fn drip_finding(
    client_id: &Text,
    (day_start, day_end): (Timestamp, Timestamp),
    total: u64,
    expected: f64,
    rise: f64,
    profile: &AppProfile,
) -> Finding {
    Finding {
        client_id: client_id.clone(),
        rule: RuleId::SlowDrip,
        cause: String::new(),
        category: Category::DataVolume,
        severity: Severity::Medium,
        score: 65,
        time: day_end,
        span: Some((day_start, day_end)),
        summary: format!(
            "{client_id} has pulled above its usual daily volume for several days ({total} requests today against about {expected:.0}, {rise:.2}×)."
        ),
        observed: json!({ "requests_today": total, "ratio_to_expected": rise, "cusum": profile.drip_cusum }),
        baseline: json!({ "expected_per_day": expected, "usual_level": profile.drip_level }),
        token_id: None,
        example_request: None,
        references: vec![ATTACK_T1213, ATTACK_T1567, CSF_DE_CM_03],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_probabilities_behave() {
        let mut slot = SlotStats::default();
        for v in [100.0, 110.0, 90.0, 105.0, 95.0, 100.0] {
            slot.update(v);
        }
        assert!(upper_tail(100, &slot) > 0.3);
        assert!(upper_tail(1000, &slot) < 1e-6);
        assert!(upper_tail(200, &slot) > 1e-6, "over-dispersion floor");
        assert_eq!(upper_tail(0, &slot), 1.0);
        assert!(surprise_score(1e-6) > surprise_score(1e-3));
        assert_eq!(surprise_score(1e-30), 100);
    }

    /// Days of an app whose weekday totals follow `total(day)` (weekends silent); returns the
    /// days on which `slow_drip` fired.
    fn drip_days(days: i64, total: impl Fn(i64) -> f64) -> Vec<i64> {
        drip_days_with(&RuleSettings::default(), days, total)
    }

    fn drip_days_with(settings: &RuleSettings, days: i64, total: impl Fn(i64) -> f64) -> Vec<i64> {
        let id: Text = "app".into();
        let mut profile = AppProfile::new(id.clone(), Timestamp(0));
        let mut fired = Vec::new();
        for day in (0..days).filter(|d| d % 7 < 5) {
            let start = Timestamp(day * 86_400 * MICROS_PER_SECOND);
            let learning = day < 14;
            let value = total(day).round() as u64;
            let end = Timestamp(start.0 + 86_400 * MICROS_PER_SECOND);
            if check_daily(
                &id,
                (start, end),
                false,
                value,
                &mut profile,
                learning,
                settings,
            )
            .is_some()
            {
                fired.push(day);
            }
        }
        fired
    }

    /// Weekday noise of about ±8 %, deterministic.
    fn wobble(day: i64) -> f64 {
        1.0 + 0.08 * ((day * 37 % 11) as f64 / 5.0 - 1.0)
    }

    #[test]
    fn steady_growth_is_followed_and_a_sustained_step_is_found_within_three_days() {
        // 3 % a day for eight weeks: growth, not a drip.
        assert_eq!(
            drip_days(56, |d| 800.0 * 1.03f64.powi(d as i32) * wobble(d)),
            Vec::<i64>::new()
        );
        // A 1.4× step on days 28–30 (Monday to Wednesday of week 5).
        let step = |d: i64| 800.0 * wobble(d) * if (28..31).contains(&d) { 1.4 } else { 1.0 };
        let fired = drip_days(42, step);
        assert!(
            fired.first().is_some_and(|d| (28..31).contains(d)),
            "fired on {fired:?}"
        );
        // Two raised days alone are a spike, not a drip.
        let spike = |d: i64| 800.0 * wobble(d) * if (28..30).contains(&d) { 1.6 } else { 1.0 };
        assert_eq!(drip_days(42, spike), Vec::<i64>::new());
        // A rules file that wants more than the step's excess silences it.
        let tuned =
            RuleSettings::parse("[slow_drip]\nmin_excess = 1000\n", "r.toml").expect("rules");
        assert_eq!(drip_days_with(&tuned, 42, step), Vec::<i64>::new());
        // So does one that assumes a wider spread (a 0.4 rise is then under a spread a day),
        // also through more requests per session, or a larger allowance; one that lets a day
        // count less needs more days than the step lasts; one whose usual level follows each
        // day in full takes the step's first day as the new normal.
        for rules in [
            "[slow_drip]\nmin_spread = 0.5\n",
            "[slow_drip]\nsession_dispersion = 100\n",
            "[slow_drip]\nallowance = 1.5\n",
            "[slow_drip]\nmax_step = 0.8\n",
            "[slow_drip]\nlevel_rate = 1\n",
        ] {
            let tuned = RuleSettings::parse(rules, "r.toml").expect("rules");
            assert_eq!(
                drip_days_with(&tuned, 42, step),
                Vec::<i64>::new(),
                "{rules}"
            );
        }
        // An allowance at or above the most a day counts disables the rule.
        let off = RuleSettings::parse("[slow_drip]\nallowance = 2\n", "r.toml").expect("rules");
        assert_eq!(drip_days_with(&off, 42, step), Vec::<i64>::new());
        // The fractions have their own floors: a zero spread would make every wobble a drip.
        let err =
            RuleSettings::parse("[slow_drip]\nmin_spread = 0\n", "r.toml").expect_err("floor");
        assert!(err.to_string().contains("min_spread"), "{err}");
    }

    #[test]
    fn bursts_need_history_and_magnitude() {
        let id: Text = "app".into();
        let t = Timestamp(0);
        let defaults = RuleSettings::default();
        let mut slot = SlotStats::default();
        slot.update(2.0);
        assert!(
            check_hour(&id, t, 500, &slot, &defaults).0.is_none(),
            "one observation is not a baseline"
        );
        for _ in 0..10 {
            slot.update(2.0);
        }
        // Sparse app: 30 requests is very unlikely but not a practical burst.
        let (f, anomalous) = check_hour(&id, t, 30, &slot, &defaults);
        assert!(f.is_none() && !anomalous);
        let (f, anomalous) = check_hour(&id, t, 400, &slot, &defaults);
        let f = f.unwrap();
        assert!(anomalous);
        assert_eq!(
            (f.rule, f.category),
            (RuleId::HourlyBurst, Category::DataVolume)
        );
        assert_eq!(f.time, Timestamp(3_600_000_000));
        // A rules file raises the floor without recompiling: 400 is no longer a burst.
        let tuned =
            RuleSettings::parse("[hourly_burst]\nmin_requests = 500\n", "r.toml").expect("rules");
        assert!(check_hour(&id, t, 400, &slot, &tuned).0.is_none());
    }
}
