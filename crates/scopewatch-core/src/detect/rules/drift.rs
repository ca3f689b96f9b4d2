//! Purpose-drift rules over an app's daily and hourly shape.
//!
//! - `resource_mix_shift`: a day's mix of resource types diverges from the app's established mix
//!   (chi-square goodness of fit, p < 1e-6) *and* at least 20 % of the day's requests (20 or
//!   more) went to types that made up under 1 % of its baseline — a shift toward new classes
//!   (billing: Claim, ExplanationOfBenefit, Coverage; notes: DocumentReference, DiagnosticReport,
//!   Composition, Binary are high) even at the same total volume. For notes and billing types
//!   that the app's established grants already allowed, 5 % of the day is enough.
//! - `off_hours`: at least 20 requests in an hour of the day where the app's baseline has
//!   essentially none (under 2 % of its busiest hour's mean, with at least 6 observations):
//!   info for one night, medium when the app's previous such night began 12 hours to 3 days
//!   before (one night session is routine, a habit is not).

use std::collections::BTreeMap;

use serde_json::json;
use statrs::distribution::{ChiSquared, ContinuousCDF};

use crate::baseline::{AppProfile, BUSIEST_MIN_OBSERVATIONS};
use crate::detect::night::hours_between;
use crate::event::{Text, Timestamp, MICROS_PER_SECOND};
use crate::smart::scope::{Perms, ResourceTarget, ScopeSet};

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
    // Notes and billing data new to an app matter at a smaller share of its day, when its
    // established grants already allowed them (the same few reads under a new grant are the
    // grant's incident; a day shifted by a fifth or more is drift whatever the grant).
    let sensitive: Vec<&(&String, u64)> = rare
        .iter()
        .filter(|(ty, _)| SENSITIVE.contains(&ty.as_str()))
        .collect();
    let grants = if sensitive.is_empty() {
        ScopeSet::default()
    } else {
        profile.established_scopes()
    };
    let grants_known = !grants.resources().is_empty();
    let sensitive_total: u64 = sensitive
        .iter()
        .filter(|(ty, _)| !grants_known || reads_allowed(&grants, ty))
        .map(|(_, n)| n)
        .sum();
    let share_of_day = |n: u64| n as f64 / day_total as f64;
    let fraction = |name| settings.param(RuleId::ResourceMixShift, name);
    let shifted = share_of_day(rare_total) >= fraction("min_rare_share")
        || share_of_day(sensitive_total) >= fraction("min_sensitive_share");
    if rare_total < threshold("min_rare_requests") || !shifted {
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

/// Whether `grants` let the app read or search `ty` in any context (a type it had no
/// permission for comes with a new grant, which the scope rules report: `new_scope`,
/// `registry_scope_violation`).
fn reads_allowed(grants: &ScopeSet, ty: &str) -> bool {
    let wanted = ResourceTarget::Type(ty.to_string());
    grants
        .resources()
        .iter()
        .any(|r| r.resource.includes(&wanted) && r.perms.intersects(Perms::V1_READ))
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
            .is_some_and(|s| s.n >= BUSIEST_MIN_OBSERVATIONS && s.mean >= level)
    })
}

/// Share of the busiest hour below which an hour is quiet.
const QUIET_SHARE: f64 = 0.02;

/// `off_hours`: judges one finished hour for activity at a time the app is normally silent:
/// info the first night, medium when it recurs on another night that began 12 hours to
/// `recurrence_days` before (so a run of more than 12 hours is medium too); a window of 0
/// makes every such hour medium. When the hour's tokens name their accounts (`user`), it
/// recurs only if one of those accounts was served at a silent time on that earlier night: a
/// different clinician on call each night is a rota, one account back at night is a habit
/// worth a look. Without accounts, any earlier night of the app counts. A first night is
/// learned capped, so a second night in the same hours still finds them silent; a recurring
/// one is learned as it is, so a new routine is learned once it has been reported.
pub fn off_hours(context: &mut HourContext<'_>, findings: &mut Vec<Finding>) {
    let Some(finding) = off_hours_finding(context) else {
        return;
    };
    let window = context.settings.param(RuleId::OffHours, "recurrence_days");
    let night = context.last_off_hours;
    let range = (NIGHT_HOURS, window * 24.0);
    // Any earlier night of the app in the window (the rule without accounts).
    let app_night = night
        .filter(|start| {
            let gap = hours_between(*start, context.start);
            gap >= range.0 && gap <= range.1
        })
        .map(|start| (start, false));
    // With accounts: a night one of them was back from, or one whose accounts are unknown
    // (its tokens named none, or too many), which cannot clear them; `true` when it was the
    // account itself.
    let earlier = match context.accounts {
        Some(accounts) => context
            .night_accounts
            .and_then(|nights| nights.earlier_night(accounts, context.start, range)),
        None => app_night,
    };
    let recurring = window <= 0.0 || earlier.is_some();
    // The engine remembers when this night began: a new night starts 12 hours after the last.
    context.off_hours =
        night.is_none_or(|start| hours_between(start, context.start) >= NIGHT_HOURS);
    context.silent = true;
    // A night that does not recur is learned capped, a rota's included: its hours stay silent,
    // so an account back on a later night is still found (each rota night is an info record).
    context.anomalous = !recurring;
    findings.push(if recurring {
        recurrence(finding, earlier.filter(|_| window > 0.0), window)
    } else {
        finding
    });
}

/// Hours between two off-hours hours that make them two nights, not one.
const NIGHT_HOURS: f64 = 12.0;

/// The finding graded medium, naming the earlier night's first hour when there is one (and
/// whether an account of this hour was seen in it).
fn recurrence(mut finding: Finding, night: Option<(Timestamp, bool)>, window_days: f64) -> Finding {
    if let Some((start, same_account)) = night {
        let what = if same_account {
            "An account it served in this hour was served at such a time on an earlier night too"
        } else {
            "It did so on an earlier night too"
        };
        finding.summary = format!(
            "{} {what} (from the hour at {start}), within {window_days} days.",
            finding.summary
        );
        if let Some(observed) = finding.observed.as_object_mut() {
            observed.insert("previous_off_hours_hour".into(), json!(start));
            if same_account {
                observed.insert("same_account".into(), json!(true));
            }
        }
    }
    finding.marked_if(true)
}

fn off_hours_finding(context: &HourContext<'_>) -> Option<Finding> {
    let (client_id, hour_start, requests) = (context.client_id, context.start, context.requests);
    let (slot, slot_index, profile) = (&context.slot, context.slot_index, context.profile);
    let settings = context.settings;
    let busiest = profile.busiest_hour_mean();
    let min_requests = settings.param(RuleId::OffHours, "min_requests");
    if (requests as f64) < min_requests
        || slot.n < BUSIEST_MIN_OBSERVATIONS
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Category;

    /// An app that searched Observations 500 times while learning, holding `scopes`.
    fn profile(scopes: &[&str]) -> AppProfile {
        let mut p = AppProfile::new("app".into(), Timestamp(0));
        let key = ("Observation".to_string(), "search-type".to_string());
        for _ in 0..500 {
            p.resources.observe(&key, Timestamp(0), true);
        }
        for scope in scopes {
            p.scopes.observe(*scope, Timestamp(0), true);
        }
        p
    }

    fn judge(p: &AppProfile, day: &[(&str, u64)]) -> Option<Finding> {
        let day: BTreeMap<String, u64> = day.iter().map(|(t, n)| (t.to_string(), *n)).collect();
        let span = (Timestamp(0), Timestamp(86_400 * MICROS_PER_SECOND));
        mix_shift_finding(&"app".into(), span, &day, p, &RuleSettings::default())
    }

    #[test]
    fn notes_within_the_apps_grants_shift_at_a_twentieth_of_its_day() {
        let trusted = profile(&["user/Observation.rs", "user/DocumentReference.rs"]);
        let shifted = [("Observation", 380), ("DocumentReference", 20)];
        let f = judge(&trusted, &shifted).expect("5 % notes under an established grant");
        assert_eq!(
            (f.rule, f.category, f.client_id.as_str()),
            (RuleId::ResourceMixShift, Category::PurposeDrift, "app")
        );
        assert_eq!(f.severity, crate::alert::Severity::High, "notes are marked");
        // Only billing and notes count at that share: 5 % Immunization is not a shift.
        assert!(judge(&trusted, &[("Observation", 380), ("Immunization", 20)]).is_none());
        // Without a grant that allowed notes, the same reads came with a new grant, the scope
        // rules' incident; a day shifted by a fifth or more is drift whatever the grant.
        let narrow = profile(&["user/Observation.rs"]);
        assert!(judge(&narrow, &shifted).is_none());
        assert!(judge(&narrow, &[("Observation", 300), ("DocumentReference", 100)]).is_some());
        // An app whose grants the log never showed is judged on its reads alone.
        assert!(judge(&profile(&[]), &shifted).is_some());
        assert!(judge(&profile(&["launch", "openid", "fhirUser"]), &shifted).is_some());
        // A `*` grant allows every type.
        assert!(judge(&profile(&["user/*.rs"]), &shifted).is_some());
    }
}
