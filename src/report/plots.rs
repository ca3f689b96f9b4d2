//! Which picture explains which incident, and the data behind it: volume findings against the
//! seasonal band, token outliers as the per-token distribution, scope findings as the scope
//! timeline, drift findings as the resource mix before and during.

use std::collections::{BTreeMap, BTreeSet};

use super::data::{self, Incident, Store, DAY, HOUR};
use super::html::format_utc;
use super::{svg, ReportError};
use crate::baseline::{hour_of_week, seasonal_slot};
use crate::event::Timestamp;

type Result<T> = std::result::Result<T, ReportError>;

/// Hours drawn at most around an incident (three weeks).
const MAX_HOURS: i64 = 21 * 24;
/// Days drawn at most (eight weeks).
const MAX_DAYS: i64 = 56;
/// Bars drawn at most in a distribution or a mix; the rest are folded into one.
const MAX_BARS: usize = 40;
/// Scopes drawn at most in a timeline.
const MAX_ROWS: usize = 30;

pub fn for_incident(store: &Store, i: &Incident) -> Result<String> {
    match (i.rule.as_str(), i.category.as_str()) {
        ("token_outlier", _) => token_distribution(store, i),
        ("slow_drip", _) => daily_volume(store, i),
        // Volume rules filed under purpose drift: their evidence is volume over time.
        ("off_hours" | "patient_fanout" | "dormant_app_active", _) => hourly_volume(store, i),
        (_, "scope_creep") => scope_timeline(store, i),
        (_, "purpose_drift") => resource_mix(store, i),
        _ => hourly_volume(store, i),
    }
}

fn floor(t: Timestamp, unit: i64) -> Timestamp {
    Timestamp(t.0.div_euclid(unit) * unit)
}

/// [from, to) in whole `unit`s around the incident, at most `max` units, the incident inside.
fn span(i: &Incident, unit: i64, before: i64, after: i64, max: i64) -> (Timestamp, Timestamp) {
    let from = Timestamp(floor(i.start, unit).0 - before * unit);
    let end = Timestamp(floor(i.end, unit).0 + (after + 1) * unit);
    let to = Timestamp(end.0.min(from.0 + max * unit));
    (from, to)
}

fn index_of(t: Timestamp, from: Timestamp, unit: i64) -> usize {
    usize::try_from((t.0 - from.0).div_euclid(unit)).unwrap_or(0)
}

/// The first and last unit an incident covers (its end is exclusive).
fn covered(i: &Incident, from: Timestamp, unit: i64) -> (usize, usize) {
    let first = index_of(i.start, from, unit);
    (
        first,
        index_of(Timestamp(i.end.0 - 1), from, unit).max(first),
    )
}

fn band(mean: f64, sd: f64) -> (f64, f64) {
    ((mean - 2.0 * sd).max(0.0), mean + 2.0 * sd)
}

fn hourly_volume(store: &Store, i: &Incident) -> Result<String> {
    let (from, to) = span(i, HOUR, 72, 24, MAX_HOURS);
    let values = data::hourly_requests(store, &i.client_id, from, to)?;
    let slots = data::slots(store, "baseline_hourly", &i.client_id)?;
    let hours: Vec<Timestamp> = (0..values.len())
        .map(|k| Timestamp(from.0 + k as i64 * HOUR))
        .collect();
    let bands: Vec<(f64, f64)> = hours
        .iter()
        .map(|t| {
            let slot = seasonal_slot(hour_of_week(*t)) as i64;
            slots.get(&slot).map_or((0.0, 0.0), |(m, sd)| band(*m, *sd))
        })
        .collect();
    let labels: Vec<String> = hours.iter().map(|t| format_utc(*t, "%m-%d %Hh")).collect();
    let highlight = covered(i, from, HOUR);
    Ok(svg::line_band(
        "Requests per hour (UTC) against the app's seasonal baseline (mean ± 2σ)",
        "requests",
        &labels,
        &values,
        &bands,
        highlight,
    ))
}

fn daily_volume(store: &Store, i: &Incident) -> Result<String> {
    let (from, to) = span(i, DAY, 21, 2, MAX_DAYS);
    let values = data::daily_requests(store, &i.client_id, from, to)?;
    let slots = data::slots(store, "baseline_daily", &i.client_id)?;
    let days: Vec<Timestamp> = (0..values.len())
        .map(|k| Timestamp(from.0 + k as i64 * DAY))
        .collect();
    let bands: Vec<(f64, f64)> = days
        .iter()
        .map(|t| {
            let weekend = i64::from(hour_of_week(*t) >= 5 * 24);
            slots
                .get(&weekend)
                .map_or((0.0, 0.0), |(m, sd)| band(*m, *sd))
        })
        .collect();
    let labels: Vec<String> = days.iter().map(|t| format_utc(*t, "%a %m-%d")).collect();
    let highlight = covered(i, from, DAY);
    Ok(svg::line_band(
        "Requests per day (UTC) against the app's weekday/weekend baseline (mean ± 2σ)",
        "requests",
        &labels,
        &values,
        &bands,
        highlight,
    ))
}

fn token_distribution(store: &Store, i: &Incident) -> Result<String> {
    let to = Timestamp(i.end.0.max(i.start.0 + HOUR));
    let per_token = data::volume_per_token(store, &i.client_id, i.start, to)?;
    // Volume is data retrieved when the log says how much (resources_returned); requests else.
    let by_resources = per_token.iter().any(|(_, resources)| *resources > 0.0);
    let mut counts: Vec<f64> = per_token
        .iter()
        .map(|(requests, resources)| if by_resources { *resources } else { *requests })
        .collect();
    counts.sort_by(|a, b| b.total_cmp(a));
    let (mut labels, mut values): (Vec<String>, Vec<f64>) = counts
        .iter()
        .take(MAX_BARS)
        .enumerate()
        .map(|(k, n)| (format!("#{}", k + 1), *n))
        .unzip();
    if counts.len() > MAX_BARS {
        let rest = &counts[MAX_BARS..];
        labels.push(format!("{} others (mean)", rest.len()));
        values.push(rest.iter().sum::<f64>() / rest.len() as f64);
    }
    let unit = if by_resources {
        "resources retrieved"
    } else {
        "requests"
    };
    Ok(svg::bars(
        &format!("{unit} per token in the incident window, largest first (token ids left out)"),
        unit,
        &labels,
        &[(unit, values)],
        Some(0),
    ))
}

fn scope_timeline(store: &Store, i: &Incident) -> Result<String> {
    let (from, to) = span(i, DAY, 14, 2, MAX_DAYS);
    let grants = data::scope_grants(store, &i.client_id, from, to)?;
    let (first, last) = covered(i, from, DAY);
    // Scopes granted in the incident's days first, then the others, at most MAX_ROWS.
    let in_window: BTreeSet<&str> = grants
        .iter()
        .filter(|(_, d, _)| (first..=last).contains(d))
        .map(|(s, _, _)| s.as_str())
        .collect();
    let mut rows: Vec<String> = in_window.iter().map(|s| (*s).to_string()).collect();
    let others: BTreeSet<&str> = grants.iter().map(|(s, _, _)| s.as_str()).collect();
    rows.extend(others.difference(&in_window).map(|s| (*s).to_string()));
    rows.truncate(MAX_ROWS);
    let row_of: BTreeMap<&str, usize> = rows
        .iter()
        .enumerate()
        .map(|(k, s)| (s.as_str(), k))
        .collect();
    let marks: Vec<(usize, usize, u64)> = grants
        .iter()
        .filter_map(|(s, d, n)| row_of.get(s.as_str()).map(|r| (*r, *d, *n)))
        .collect();
    let days = usize::try_from((to.0 - from.0) / DAY).unwrap_or(0);
    let labels: Vec<String> = (0..days)
        .map(|k| format_utc(Timestamp(from.0 + k as i64 * DAY), "%m-%d"))
        .collect();
    Ok(svg::timeline(
        "Scopes granted per day (UTC); the incident's days are shaded",
        &rows,
        &labels,
        &marks,
        (first, last),
    ))
}

fn resource_mix(store: &Store, i: &Incident) -> Result<String> {
    let during_end = Timestamp(i.end.0.max(i.start.0 + DAY));
    let before = data::resource_mix(store, &i.client_id, Timestamp(i.start.0 - 7 * DAY), i.start)?;
    let during = data::resource_mix(store, &i.client_id, i.start, during_end)?;
    let (b, d) = (|t: &str| share(&before, t), |t: &str| share(&during, t));
    let mut types: Vec<&String> = before.keys().chain(during.keys()).collect();
    types.sort_by(|x, y| d(y).total_cmp(&d(x)).then(x.cmp(y)));
    types.dedup();
    types.truncate(MAX_BARS);
    let labels: Vec<String> = types.iter().map(|t| (*t).clone()).collect();
    let series = [
        ("7 days before", labels.iter().map(|t| b(t)).collect()),
        ("during", labels.iter().map(|t| d(t)).collect()),
    ];
    Ok(svg::bars(
        "Resource mix: share of requests per resource type, before vs during",
        "% of requests",
        &labels,
        &series,
        None,
    ))
}

/// The percentage of requests of a mix that went to `resource_type`.
fn share(mix: &BTreeMap<String, f64>, resource_type: &str) -> f64 {
    let total: f64 = mix.values().sum();
    if total > 0.0 {
        100.0 * mix.get(resource_type).copied().unwrap_or(0.0) / total
    } else {
        0.0
    }
}

/// Requests per hour of week as learnt (Monday 00h UTC first).
pub fn activity(hour_of_week: &[f64]) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let labels: Vec<String> = (0..hour_of_week.len())
        .map(|h| format!("{} {:02}h", DAYS[(h / 24) % 7], h % 24))
        .collect();
    svg::bars(
        "Learnt activity: requests per hour of week",
        "requests",
        &labels,
        &[("requests", hour_of_week.to_vec())],
        None,
    )
}
