//! Purpose-drift rules over an app's daily and hourly shape.
//!
//! - `resource_mix_shift`: a day's mix of resource types diverges from the app's established mix
//!   (chi-square goodness of fit, p < 1e-6) *and* at least 20 % of the day's requests (20 or
//!   more) went to types that made up under 1 % of its baseline — a shift toward new classes
//!   (billing: Claim, ExplanationOfBenefit, Coverage; notes: DocumentReference, DiagnosticReport,
//!   Composition, Binary are high) even at the same total volume.
//! - `off_hours`: at least 20 requests in an hour of the day where the app's baseline has
//!   essentially none (under 2 % of its busiest hour's mean, with at least 6 observations).

use std::collections::BTreeMap;

use serde_json::json;
use statrs::distribution::{ChiSquared, ContinuousCDF};

use crate::baseline::AppProfile;
use crate::event::{Text, Timestamp, MICROS_PER_SECOND};

use super::super::finding::Finding;
use super::catalog::RuleId;
use super::hooks::{DayContext, HourContext};
use super::settings::RuleSettings;

const SENSITIVE: &[&str] = &[
    "Claim",
    "ExplanationOfBenefit",
    "Coverage",
    "DocumentReference",
    "DiagnosticReport",
    "Composition",
    "Binary",
];

/// Established request counts by resource type.
fn baseline_mix(profile: &AppProfile) -> BTreeMap<&str, u64> {
    let mut mix = BTreeMap::new();
    for ((ty, _), seen) in &profile.resources.entries {
        if seen.established {
            *mix.entry(ty.as_str()).or_default() += seen.count;
        }
    }
    mix
}

/// `resource_mix_shift`: judges one finished day of an app's served requests by resource type.
pub fn resource_mix_shift(context: &mut DayContext<'_>, findings: &mut Vec<Finding>) {
    let (client_id, day) = (context.client_id, context.mix);
    findings.extend(mix_shift_finding(
        client_id,
        context.day,
        day,
        context.profile,
        context.settings,
    ));
}

fn mix_shift_finding(
    client_id: &Text,
    (day_start, day_end): (Timestamp, Timestamp),
    day: &BTreeMap<String, u64>,
    profile: &AppProfile,
    settings: &RuleSettings,
) -> Option<Finding> {
    let threshold = |name| settings.param(RuleId::ResourceMixShift, name) as u64;
    let base = baseline_mix(profile);
    let base_total: u64 = base.values().sum();
    let day_total: u64 = day.values().sum();
    if base_total < threshold("min_baseline_requests") || day_total < threshold("min_day_requests")
    {
        return None;
    }
    let share = |ty: &str| base.get(ty).copied().unwrap_or(0) as f64 / base_total as f64;
    let rare: Vec<(&String, u64)> = day
        .iter()
        .filter(|(ty, _)| share(ty) < 0.01)
        .map(|(ty, n)| (ty, *n))
        .collect();
    let rare_total: u64 = rare.iter().map(|(_, n)| n).sum();
    if rare_total < threshold("min_rare_requests") || (rare_total as f64) < 0.2 * day_total as f64 {
        return None;
    }
    // Chi-square goodness of fit of the day against the (smoothed) baseline proportions.
    let mut categories: Vec<&str> = base.keys().copied().collect();
    for ty in day.keys() {
        if !base.contains_key(ty.as_str()) {
            categories.push(ty);
        }
    }
    let k = categories.len() as f64;
    let mut stat = 0.0;
    for ty in &categories {
        let p = (base.get(ty).copied().unwrap_or(0) as f64 + 0.5) / (base_total as f64 + 0.5 * k);
        let expected = p * day_total as f64;
        let observed = day.get(*ty).copied().unwrap_or(0) as f64;
        stat += (observed - expected).powi(2) / expected;
    }
    let p_value = ChiSquared::new((k - 1.0).max(1.0))
        .map(|d| d.sf(stat))
        .unwrap_or(1.0);
    if p_value >= 1e-6 {
        return None;
    }
    let sensitive = rare.iter().any(|(ty, _)| SENSITIVE.contains(&ty.as_str()));
    let new_types: Vec<&str> = rare.iter().map(|(ty, _)| ty.as_str()).collect();
    let f = Finding {
        span: Some((day_start, day_end)),
        summary: format!(
            "{client_id} shifted {rare_total} of {day_total} requests in a day to resource types it rarely or never used ({}).",
            new_types.join(", ")
        ),
        observed: json!({ "requests_by_type": day, "shifted_to": new_types, "chi_square": stat, "p_value": p_value }),
        baseline: json!({ "requests_by_type": base }),
        ..Finding::new(RuleId::ResourceMixShift, client_id.clone(), day_end)
    };
    // Notes and billing data are marked high.
    Some(f.marked_if(sensitive).tail_probability(p_value))
}

/// Whether the hour before or after `slot_index` on the same kind of day (weekday or weekend)
/// averages at least `level` requests.
fn neighbour_reaches(profile: &AppProfile, slot_index: usize, level: f64) -> bool {
    let day_base = slot_index - slot_index % 24;
    [23, 1].iter().any(|step| {
        let neighbour = day_base + (slot_index % 24 + step) % 24;
        profile
            .hourly_requests
            .get(neighbour)
            .is_some_and(|s| s.n >= 6 && s.mean >= level)
    })
}

/// Share of the busiest hour below which an hour is quiet.
const QUIET_SHARE: f64 = 0.02;

/// `off_hours`: judges one finished hour for activity at a time the app is normally silent.
pub fn off_hours(context: &mut HourContext<'_>, findings: &mut Vec<Finding>) {
    findings.extend(off_hours_finding(context));
}

fn off_hours_finding(context: &HourContext<'_>) -> Option<Finding> {
    let (client_id, hour_start, requests) = (context.client_id, context.start, context.requests);
    let (slot, slot_index, profile) = (&context.slot, context.slot_index, context.profile);
    let settings = context.settings;
    let busiest = profile.busiest_hour_mean();
    let min_requests = settings.param(RuleId::OffHours, "min_requests");
    if (requests as f64) < min_requests
        || slot.n < 6
        || busiest <= 0.0
        || slot.mean >= QUIET_SHARE * busiest
    {
        return None;
    }
    // "Normally silent" means the hours beside it are quiet too. A sparse slot's average says
    // little (a night shift that is quiet most nights), and an hour never active beside hours
    // that are not quiet is the edge of the app's day (a clinician staying late, an early
    // shift). The hour that first breaks a silence is found; once learned, it is no longer
    // silent, nor are the hours beside it.
    if neighbour_reaches(profile, slot_index, QUIET_SHARE * busiest) {
        return None;
    }
    let hour_end = Timestamp(hour_start.0 + 3600 * MICROS_PER_SECOND);
    Some(Finding {
        span: Some((hour_start, hour_end)),
        summary: format!(
            "{client_id} made {requests} requests in an hour when it is normally silent (usual {:.1}, busiest hour {busiest:.0}).",
            slot.mean
        ),
        observed: json!({ "requests": requests, "hour_start": hour_start }),
        baseline: json!({ "mean_this_hour": slot.mean, "mean_busiest_hour": busiest }),
        ..Finding::new(RuleId::OffHours, client_id.clone(), hour_end)
    })
}
