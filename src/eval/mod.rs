//! `scopewatch eval`: how well alerts match labelled incidents — precision and recall per
//! category and rule, false alerts per 100 app-days, detection delay.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::alert::{Activity, Alert, Severity};
use crate::event::Timestamp;
use crate::simulate::Label;

/// The parts of an alert that evaluation needs (read from NDJSON or taken from an [`Alert`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvalAlert {
    pub client_id: String,
    pub category: String,
    pub rule: String,
    pub severity: Severity,
    pub opens_incident: bool,
    pub incident_id: String,
    pub time: Timestamp,
    pub start: Timestamp,
    pub end: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvalLabel {
    pub client_id: String,
    pub category: String,
    pub rule: String,
    pub start: Timestamp,
    pub end: Timestamp,
}

impl From<&Alert> for EvalAlert {
    fn from(a: &Alert) -> Self {
        EvalAlert {
            client_id: a.client_id.clone(),
            category: a.category.as_str().to_string(),
            rule: a.rule.to_string(),
            severity: a.severity,
            opens_incident: a.activity == Activity::Create,
            incident_id: a.incident_id.clone(),
            time: a.time,
            start: a.window.start,
            end: a.window.end,
        }
    }
}

impl From<&Label> for EvalLabel {
    fn from(l: &Label) -> Self {
        EvalLabel {
            client_id: l.client_id.clone(),
            category: l.category.as_str().to_string(),
            rule: l.rule.to_string(),
            start: l.start,
            end: l.end,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Score {
    pub labels: u64,
    pub found: u64,
    pub alerts: u64,
    pub true_alerts: u64,
    /// found / labels (1 when there are no labels).
    pub recall: f64,
    /// true alerts / alerts (1 when there are no alerts).
    pub precision: f64,
}

impl Score {
    fn finish(&mut self) {
        self.recall = if self.labels == 0 {
            1.0
        } else {
            self.found as f64 / self.labels as f64
        };
        self.precision = if self.alerts == 0 {
            1.0
        } else {
            self.true_alerts as f64 / self.alerts as f64
        };
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Evaluation {
    pub by_category: BTreeMap<String, Score>,
    /// Recall by the label's expected rule; precision by the alert's rule.
    pub by_rule: BTreeMap<String, Score>,
    pub false_alerts_per_100_app_days: f64,
    /// Alert records (creates and updates) per incident, at or above the severity.
    pub alerts_per_incident: f64,
    /// Alert records (creates and updates) overlapping a found label, per found label: what a
    /// SOC reads for one real incident.
    pub alerts_per_detected_label: f64,
    /// The most alert records any found label drew.
    pub max_alerts_per_detected_label: u64,
    pub median_delay_seconds: Option<i64>,
    pub max_delay_seconds: Option<i64>,
    pub missed: Vec<String>,
    pub false_alerts: Vec<String>,
}

fn overlaps(a: &EvalAlert, l: &EvalLabel) -> bool {
    a.client_id == l.client_id && a.category == l.category && a.start < l.end && a.end > l.start
}

/// The alert at which each incident first reaches `min_severity`: its opening alert, or the
/// escalation that raised it there (a SOC that filters at that severity first sees the
/// incident then). An alert without an incident id counts when it opens one.
fn surfacing(alerts: &[EvalAlert], min_severity: Severity) -> Vec<&EvalAlert> {
    let mut by_time: Vec<&EvalAlert> = alerts.iter().collect();
    by_time.sort_by_key(|a| a.time);
    let mut seen = BTreeSet::new();
    by_time
        .into_iter()
        .filter(|a| a.severity >= min_severity)
        .filter(|a| {
            if a.incident_id.is_empty() {
                a.opens_incident
            } else {
                seen.insert(a.incident_id.as_str())
            }
        })
        .collect()
}

/// Scores each incident once, by the alert at which it reaches `min_severity` (`surfacing`),
/// against labels. An alert is true when it names a labelled app and category in an
/// overlapping window; a label is found when such an alert exists. `app_days` (apps × days
/// observed) scales the false-alert rate.
pub fn evaluate(
    labels: &[EvalLabel],
    alerts: &[EvalAlert],
    min_severity: Severity,
    app_days: f64,
) -> Evaluation {
    let considered = surfacing(alerts, min_severity);
    let mut eval = Evaluation::default();
    let mut delays = Vec::new();
    for l in labels {
        let hit = considered
            .iter()
            .filter(|a| overlaps(a, l))
            .min_by_key(|a| a.time);
        for key in [
            (&mut eval.by_category, l.category.clone()),
            (&mut eval.by_rule, l.rule.clone()),
        ] {
            let s = key.0.entry(key.1).or_default();
            s.labels += 1;
            s.found += u64::from(hit.is_some());
        }
        match hit {
            Some(a) => delays.push((a.time.0 - l.start.0).max(0) / 1_000_000),
            None => eval.missed.push(format!(
                "{} {} {} at {}",
                l.client_id, l.category, l.rule, l.start
            )),
        }
    }
    let mut false_count = 0u64;
    for a in &considered {
        let true_alert = labels.iter().any(|l| overlaps(a, l));
        for key in [
            (&mut eval.by_category, a.category.clone()),
            (&mut eval.by_rule, a.rule.clone()),
        ] {
            let s = key.0.entry(key.1).or_default();
            s.alerts += 1;
            s.true_alerts += u64::from(true_alert);
        }
        if !true_alert {
            false_count += 1;
            eval.false_alerts.push(format!(
                "{} {} {} at {}",
                a.client_id, a.category, a.rule, a.start
            ));
        }
    }
    for s in eval
        .by_category
        .values_mut()
        .chain(eval.by_rule.values_mut())
    {
        s.finish();
    }
    eval.false_alerts_per_100_app_days = if app_days > 0.0 {
        100.0 * false_count as f64 / app_days
    } else {
        0.0
    };
    let records: Vec<&EvalAlert> = alerts
        .iter()
        .filter(|a| a.severity >= min_severity)
        .collect();
    let incidents: BTreeSet<&str> = records.iter().map(|a| a.incident_id.as_str()).collect();
    eval.alerts_per_incident = if incidents.is_empty() {
        0.0
    } else {
        records.len() as f64 / incidents.len() as f64
    };
    let per_label: Vec<u64> = labels
        .iter()
        .map(|l| records.iter().filter(|a| overlaps(a, l)).count() as u64)
        .filter(|n| *n > 0)
        .collect();
    eval.alerts_per_detected_label = if per_label.is_empty() {
        0.0
    } else {
        per_label.iter().sum::<u64>() as f64 / per_label.len() as f64
    };
    eval.max_alerts_per_detected_label = per_label.iter().copied().max().unwrap_or(0);
    delays.sort_unstable();
    eval.median_delay_seconds = delays.get(delays.len() / 2).copied();
    eval.max_delay_seconds = delays.last().copied();
    eval
}

/// Apps × days spanned by labels and alerts, when the caller does not know the real figure.
pub fn estimate_app_days(labels: &[EvalLabel], alerts: &[EvalAlert]) -> f64 {
    let apps: BTreeSet<&str> = labels
        .iter()
        .map(|l| l.client_id.as_str())
        .chain(alerts.iter().map(|a| a.client_id.as_str()))
        .collect();
    let times: Vec<i64> = labels
        .iter()
        .map(|l| l.start.0)
        .chain(alerts.iter().map(|a| a.start.0))
        .collect();
    let (Some(lo), Some(hi)) = (times.iter().min(), times.iter().max()) else {
        return 0.0;
    };
    let days = ((hi - lo) as f64 / 86_400e6).ceil().max(1.0);
    apps.len() as f64 * days
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: i64) -> Timestamp {
        Timestamp(h * 3_600_000_000)
    }
    fn alert(client: &str, cat: &str, h: i64, sev: Severity) -> EvalAlert {
        EvalAlert {
            client_id: client.into(),
            category: cat.into(),
            rule: "r".into(),
            severity: sev,
            opens_incident: true,
            incident_id: format!("{client}-{cat}-{h}"),
            time: Timestamp(t(h).0 + 600_000_000),
            start: t(h),
            end: t(h + 1),
        }
    }

    #[test]
    fn precision_recall_and_delay() {
        let labels = vec![
            EvalLabel {
                client_id: "a".into(),
                category: "scope_creep".into(),
                rule: "r".into(),
                start: t(10),
                end: t(11),
            },
            EvalLabel {
                client_id: "b".into(),
                category: "data_volume".into(),
                rule: "r".into(),
                start: t(20),
                end: t(21),
            },
        ];
        let alerts = vec![
            alert("a", "scope_creep", 10, Severity::High),
            alert("a", "scope_creep", 30, Severity::Medium),
            alert("b", "purpose_drift", 20, Severity::Medium),
            alert("c", "data_volume", 5, Severity::Info),
        ];
        let e = evaluate(&labels, &alerts, Severity::Low, 100.0);
        let sc = &e.by_category["scope_creep"];
        assert_eq!(
            (sc.labels, sc.found, sc.alerts, sc.true_alerts),
            (1, 1, 2, 1)
        );
        assert_eq!(sc.precision, 0.5);
        assert_eq!(
            e.by_category["data_volume"].recall, 0.0,
            "wrong category does not count"
        );
        assert_eq!(e.false_alerts_per_100_app_days, 2.0);
        assert_eq!(e.median_delay_seconds, Some(600));
        assert_eq!(e.alerts_per_incident, 1.0);
        assert_eq!(e.alerts_per_detected_label, 1.0);
        assert_eq!(e.missed.len(), 1);
    }

    #[test]
    fn an_incident_counts_once_where_it_reaches_the_severity_floor() {
        // A night hour opens an incident at info; the next night escalates it to medium in an
        // update; a further update repeats medium. A SOC filtering at low sees it once, at the
        // escalation, which is in the labelled window.
        let label = EvalLabel {
            client_id: "a".into(),
            category: "purpose_drift".into(),
            rule: "off_hours".into(),
            start: t(24),
            end: t(28),
        };
        let opened = alert("a", "purpose_drift", 2, Severity::Info);
        let update = |h: i64| EvalAlert {
            opens_incident: false,
            start: t(h),
            end: t(h + 1),
            time: Timestamp(t(h).0 + 600_000_000),
            severity: Severity::Medium,
            ..opened.clone()
        };
        let alerts = vec![opened.clone(), update(26), update(50)];
        let e = evaluate(std::slice::from_ref(&label), &alerts, Severity::Low, 100.0);
        let pd = &e.by_category["purpose_drift"];
        assert_eq!((pd.found, pd.alerts, pd.true_alerts), (1, 1, 1));
        // At info every incident counts by its opening alert (night 1, before the label).
        let e = evaluate(&[label], &alerts, Severity::Info, 100.0);
        assert_eq!(e.by_category["purpose_drift"].found, 0);
    }
}
