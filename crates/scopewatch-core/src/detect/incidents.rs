//! Incidents: one per app × rule × cause while it lasts. The first finding opens it (an alert
//! with activity `create`); later findings of the same cause extend it silently, however long
//! the cause keeps recurring; a higher severity re-alerts at once (`update`); when the cause has
//! been quiet for the quiet period (default 24 h; an hourly or daily rule's incident one window
//! more), a closing `update` carries the final window and counts if anything changed since the
//! last record. A SOC works one incident per cause,
//! not one per hour it recurred in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::alert::{Activity, Alert, Category, Evidence, FrameworkRef, Severity, Window};
use crate::event::{Text, Timestamp, MICROS_PER_SECOND};

use super::finding::Finding;
use super::rules::catalog::RuleId;

const MAX_TOKEN_IDS: usize = 10;
const MAX_EXAMPLES: usize = 5;

struct Open {
    incident_start: Timestamp,
    last_seen: Timestamp,
    revision: u32,
    /// Findings since the incident opened.
    count: u64,
    changed_since_record: bool,
    latest: Finding,
    evidence: Evidence,
}

/// An open incident in a snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncidentState {
    pub incident_start: Timestamp,
    pub last_seen: Timestamp,
    pub revision: u32,
    pub count: u64,
    pub changed_since_record: bool,
    pub latest: FindingState,
    pub evidence: Evidence,
}

/// A finding in a snapshot: rule ids and framework references by name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FindingState {
    pub client_id: Text,
    pub rule: RuleId,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cause: String,
    pub category: Category,
    pub severity: Severity,
    pub score: u8,
    pub time: Timestamp,
    pub span: Option<(Timestamp, Timestamp)>,
    pub summary: String,
    pub observed: serde_json::Value,
    pub baseline: serde_json::Value,
    pub token_id: Option<Text>,
    pub example_request: Option<String>,
    /// (framework, id) pairs.
    pub references: Vec<(String, String)>,
}

impl From<&Finding> for FindingState {
    fn from(f: &Finding) -> FindingState {
        FindingState {
            client_id: f.client_id.clone(),
            rule: f.rule,
            cause: f.cause.clone(),
            category: f.category,
            severity: f.severity,
            score: f.score,
            time: f.time,
            span: f.span,
            summary: f.summary.clone(),
            observed: f.observed.clone(),
            baseline: f.baseline.clone(),
            token_id: f.token_id.clone(),
            example_request: f.example_request.clone(),
            references: f
                .references
                .iter()
                .map(|r| (r.framework.to_string(), r.id.to_string()))
                .collect(),
        }
    }
}

impl FindingState {
    fn into_finding(self) -> Result<Finding, String> {
        let references = self
            .references
            .iter()
            .map(|(framework, id)| {
                FrameworkRef::lookup(framework, id)
                    .ok_or_else(|| format!("unknown framework reference '{framework} {id}'"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Finding {
            client_id: self.client_id,
            rule: self.rule,
            cause: self.cause,
            category: self.category,
            severity: self.severity,
            score: self.score,
            time: self.time,
            span: self.span,
            summary: self.summary,
            observed: self.observed,
            baseline: self.baseline,
            token_id: self.token_id,
            example_request: self.example_request,
            references,
        })
    }
}

/// App, rule, cause.
type IncidentKey = (Text, RuleId, String);

/// Default quiet period: a cause silent for a day has stopped.
pub const DEFAULT_QUIET_SECONDS: i64 = 24 * 3600;

pub struct Incidents {
    bucket_micros: i64,
    quiet_micros: i64,
    open: BTreeMap<IncidentKey, Open>,
    /// No open incident is quiet at or before this instant (a lower bound of their deadlines):
    /// `close_quiet` runs whenever time advances, nearly every event, and scans only past it.
    quiet_check_after: i64,
}

impl Incidents {
    /// `bucket_seconds` aligns incident windows; `quiet_seconds` without findings closes one.
    pub fn new(bucket_seconds: i64, quiet_seconds: i64) -> Incidents {
        Incidents {
            bucket_micros: bucket_seconds.max(1) * MICROS_PER_SECOND,
            quiet_micros: quiet_seconds.max(1) * MICROS_PER_SECOND,
            open: BTreeMap::new(),
            quiet_check_after: i64::MAX,
        }
    }

    /// The instant after which `open` is quiet.
    fn deadline(&self, open: &Open) -> i64 {
        let window = open.latest.span.map_or(0, |(start, end)| end.0 - start.0);
        open.last_seen
            .0
            .saturating_add(self.quiet_micros)
            .saturating_add(window.max(0))
    }

    /// Lowers the bound to the incident's deadline, after every finding it records: a later
    /// finding of a shorter window (or none) can bring a deadline nearer.
    fn note_deadline(&mut self, key: &IncidentKey) {
        if let Some(open) = self.open.get(key) {
            self.quiet_check_after = self.quiet_check_after.min(self.deadline(open));
        }
    }

    fn floor(&self, t: Timestamp) -> Timestamp {
        Timestamp(t.0 - t.0.rem_euclid(self.bucket_micros))
    }

    fn alert(&self, open: &Open, activity: Activity) -> Alert {
        let f = &open.latest;
        let (id, incident_id) = Alert::ids(
            &f.client_id,
            f.rule.as_str(),
            &f.cause,
            open.incident_start,
            open.revision,
        );
        let end = Timestamp(self.floor(open.last_seen).0 + self.bucket_micros);
        let mut evidence = open.evidence.clone();
        evidence.counts.insert("findings".into(), open.count);
        Alert {
            id,
            incident_id,
            activity,
            revision: open.revision,
            time: f.time,
            client_id: f.client_id.to_string(),
            category: f.category,
            rule: f.rule.as_str(),
            severity: f.severity,
            score: f.score,
            summary: f.summary.clone(),
            window: Window {
                start: open.incident_start,
                end,
            },
            observed: f.observed.clone(),
            baseline: f.baseline.clone(),
            evidence,
            references: f.references.clone(),
            cause: f.cause.clone(),
            suppressed_by: None,
        }
    }

    /// Adds a finding; pushes an alert when it opens an incident or escalates one.
    pub fn record(&mut self, finding: Finding, out: &mut Vec<Alert>) {
        self.close_quiet(finding.about(), out);
        let key = (
            finding.client_id.clone(),
            finding.rule,
            finding.cause.clone(),
        );
        match self.open.get_mut(&key) {
            None => {
                let mut evidence = Evidence {
                    cause: finding.cause.clone(),
                    ..Evidence::default()
                };
                add_evidence(&mut evidence, &finding);
                let open = Open {
                    incident_start: self.floor(finding.about()),
                    last_seen: finding.about_end(),
                    revision: 0,
                    count: 1,
                    changed_since_record: false,
                    latest: finding,
                    evidence,
                };
                out.push(self.alert(&open, Activity::Create));
                self.open.insert(key.clone(), open);
            }
            Some(open) => {
                add_evidence(&mut open.evidence, &finding);
                open.count += 1;
                open.last_seen = open.last_seen.max(finding.about_end());
                let escalates = finding.severity > open.latest.severity;
                let keep_latest_severity = open.latest.severity.max(finding.severity);
                let keep_score = open.latest.score.max(finding.score);
                open.latest = finding;
                open.latest.severity = keep_latest_severity;
                open.latest.score = keep_score;
                open.changed_since_record = true;
                if escalates {
                    open.revision += 1;
                    open.changed_since_record = false;
                    let alert = {
                        let open = &self.open[&key];
                        self.alert(open, Activity::Update)
                    };
                    out.push(alert);
                }
            }
        }
        self.note_deadline(&key);
    }

    /// Closes incidents quiet for longer than the quiet period before `now`. An incident of a
    /// rule judged over windows (an hour, a day) waits one window more: the next window is
    /// judged only after it ends, when the app's next event arrives, so a cause found on
    /// consecutive days is one incident (unless the app is then silent for longer than the
    /// quiet period, when its next day is judged late).
    pub fn close_quiet(&mut self, now: Timestamp, out: &mut Vec<Alert>) {
        if now.0 <= self.quiet_check_after {
            return;
        }
        let quiet: Vec<IncidentKey> = self
            .open
            .iter()
            .filter(|(_, o)| now.0 > self.deadline(o))
            .map(|(k, _)| k.clone())
            .collect();
        for key in quiet {
            self.close(&key, out);
        }
        self.quiet_check_after = self
            .open
            .values()
            .map(|o| self.deadline(o))
            .min()
            .unwrap_or(i64::MAX);
    }

    /// Closes every open incident (end of input).
    pub fn close_all(&mut self, out: &mut Vec<Alert>) {
        let keys: Vec<IncidentKey> = self.open.keys().cloned().collect();
        for key in keys {
            self.close(&key, out);
        }
        self.quiet_check_after = i64::MAX;
    }

    fn close(&mut self, key: &IncidentKey, out: &mut Vec<Alert>) {
        let Some(mut open) = self.open.remove(key) else {
            return;
        };
        if open.changed_since_record {
            open.revision += 1;
            out.push(self.alert(&open, Activity::Update));
        }
    }

    /// The cause of an open incident of `rule` for `client`, if any (incidents quiet past
    /// their deadline are closed as time advances, before an event is judged).
    pub fn open_cause(&self, client: &str, rule: RuleId) -> Option<String> {
        self.open
            .keys()
            .find(|(c, r, _)| c.as_str() == client && *r == rule)
            .map(|(_, _, cause)| cause.clone())
    }

    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// The open incidents, for a snapshot (in key order).
    pub fn to_state(&self) -> Vec<IncidentState> {
        self.open
            .values()
            .map(|o| IncidentState {
                incident_start: o.incident_start,
                last_seen: o.last_seen,
                revision: o.revision,
                count: o.count,
                changed_since_record: o.changed_since_record,
                latest: FindingState::from(&o.latest),
                evidence: o.evidence.clone(),
            })
            .collect()
    }

    /// Incidents holding exactly the open incidents of a snapshot.
    pub fn from_state(
        bucket_seconds: i64,
        quiet_seconds: i64,
        state: Vec<IncidentState>,
    ) -> Result<Incidents, String> {
        let mut incidents = Incidents::new(bucket_seconds, quiet_seconds);
        for i in state {
            let latest = i.latest.into_finding()?;
            let key = (latest.client_id.clone(), latest.rule, latest.cause.clone());
            incidents.open.insert(
                key,
                Open {
                    incident_start: i.incident_start,
                    last_seen: i.last_seen,
                    revision: i.revision,
                    count: i.count,
                    changed_since_record: i.changed_since_record,
                    latest,
                    evidence: i.evidence,
                },
            );
        }
        // Unknown until the first scan.
        incidents.quiet_check_after = i64::MIN;
        Ok(incidents)
    }
}

fn add_evidence(evidence: &mut Evidence, finding: &Finding) {
    if let Some(t) = &finding.token_id {
        if evidence.token_ids.len() < MAX_TOKEN_IDS
            && !evidence.token_ids.iter().any(|x| x == t.as_str())
        {
            evidence.token_ids.push(t.to_string());
        }
    }
    if let Some(r) = &finding.example_request {
        if evidence.example_requests.len() < MAX_EXAMPLES && !evidence.example_requests.contains(r)
        {
            evidence.example_requests.push(r.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Category, Severity};

    fn finding(minute: i64, severity: Severity) -> Finding {
        Finding {
            client_id: "app".into(),
            rule: RuleId::EnforcementGap,
            cause: String::new(),
            category: Category::ScopeCreep,
            severity,
            score: 80,
            time: Timestamp(1_709_640_000 * MICROS_PER_SECOND + minute * 60 * MICROS_PER_SECOND),
            span: None,
            summary: "s".into(),
            observed: serde_json::json!({}),
            baseline: serde_json::Value::Null,
            token_id: Some(format!("t{minute}").as_str().into()),
            example_request: Some("GET Condition?patient=…".into()),
            references: Vec::new(),
        }
    }

    #[test]
    fn one_alert_per_incident_until_escalation_and_a_closing_update() {
        let mut inc = Incidents::new(3600, 3600);
        let mut out = Vec::new();
        for m in 0..30 {
            inc.record(finding(m, Severity::High), &mut out);
        }
        assert_eq!(out.len(), 1, "repeats extend, they do not re-alert");
        assert_eq!(out[0].activity, Activity::Create);
        inc.record(finding(31, Severity::Critical), &mut out);
        assert_eq!(out.len(), 2, "escalation re-alerts");
        assert_eq!(out[1].activity, Activity::Update);
        assert_eq!(out[1].incident_id, out[0].incident_id);
        assert_ne!(out[1].id, out[0].id);
        inc.record(finding(40, Severity::High), &mut out);
        assert_eq!(out[2..].len(), 0);
        // Quiet for more than an hour: the next finding first closes the old incident.
        inc.record(finding(200, Severity::High), &mut out);
        assert_eq!(out.len(), 4);
        assert_eq!(out[2].activity, Activity::Update, "closing update");
        assert_eq!(out[2].evidence.counts["findings"], 32);
        assert_eq!(
            out[2].severity,
            Severity::Critical,
            "severity never drops inside an incident"
        );
        assert_eq!(
            out[2].evidence.token_ids.len(),
            10,
            "evidence lists are bounded"
        );
        assert_eq!(out[3].activity, Activity::Create);
        assert_ne!(out[3].incident_id, out[0].incident_id, "a new incident");
        inc.close_all(&mut out);
        assert_eq!(out.len(), 4, "nothing changed since the last record");
    }

    /// A daily rule's finding for day 2 is recorded when the app's first event of day 3
    /// arrives (here 07:00), more than a quiet period after day 1 ended: still one incident.
    #[test]
    fn a_cause_found_on_consecutive_days_is_one_incident() {
        let day = 86_400 * MICROS_PER_SECOND;
        let on_day = |d: i64| Finding {
            rule: RuleId::ResourceMixShift,
            span: Some((Timestamp(d * day), Timestamp((d + 1) * day))),
            time: Timestamp((d + 1) * day),
            ..finding(0, Severity::High)
        };
        let mut inc = Incidents::new(3600, 24 * 3600);
        let mut out = Vec::new();
        inc.record(on_day(100), &mut out);
        inc.close_quiet(
            Timestamp(102 * day + 7 * 3600 * MICROS_PER_SECOND),
            &mut out,
        );
        inc.record(on_day(101), &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        // A day without a finding, then the quiet period: closed before day 4 opens anew.
        inc.close_quiet(
            Timestamp(104 * day + 7 * 3600 * MICROS_PER_SECOND),
            &mut out,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].activity, Activity::Update, "closing update");
        inc.record(on_day(104), &mut out);
        assert_eq!(out[2].activity, Activity::Create);
    }

    /// `close_quiet` skips its scan until the nearest deadline: a later incident whose
    /// deadline comes first (an hourly cause beside a daily one) lowers it, and a restored
    /// snapshot scans at once.
    #[test]
    fn the_nearest_quiet_deadline_is_kept_across_causes_and_restores() {
        let (hour, day) = (3600 * MICROS_PER_SECOND, 86_400 * MICROS_PER_SECOND);
        let daily = Finding {
            rule: RuleId::ResourceMixShift,
            span: Some((Timestamp(100 * day), Timestamp(101 * day))),
            time: Timestamp(101 * day),
            ..finding(0, Severity::High)
        };
        let hourly = Finding {
            time: Timestamp(101 * day + hour),
            span: None,
            ..finding(0, Severity::High)
        };
        let mut inc = Incidents::new(3600, 3600);
        let mut out = Vec::new();
        inc.record(daily, &mut out);
        inc.record(hourly, &mut out);
        let open_state = inc.to_state();
        // Past the hourly cause's deadline, long before the daily one's.
        let later = Timestamp(101 * day + 3 * hour);
        inc.close_quiet(later, &mut out);
        assert_eq!(inc.open_count(), 1, "the hourly incident closed");
        let mut restored = Incidents::from_state(3600, 3600, open_state).unwrap();
        let mut again = Vec::new();
        restored.close_quiet(later, &mut again);
        assert_eq!(restored.open_count(), 1, "and closes after a restore too");
        assert_eq!(
            again.len(),
            0,
            "an unchanged incident closes without an update"
        );
        // The daily cause found again without a window: its own deadline comes nearer.
        let unwindowed = Finding {
            rule: RuleId::ResourceMixShift,
            time: Timestamp(101 * day + 3 * hour),
            span: None,
            ..finding(0, Severity::High)
        };
        inc.record(unwindowed, &mut out);
        inc.close_quiet(Timestamp(101 * day + 5 * hour), &mut out);
        assert_eq!(inc.open_count(), 0, "closed at its nearer deadline");
    }

    #[test]
    fn windows_align_to_buckets() {
        let mut inc = Incidents::new(3600, 3600);
        let mut out = Vec::new();
        inc.record(finding(30, Severity::Low), &mut out);
        inc.record(finding(80, Severity::Low), &mut out);
        inc.close_all(&mut out);
        let last = out.last().unwrap();
        assert_eq!(last.window.start.unix_seconds() % 3600, 0);
        assert_eq!(
            last.window.end.0 - last.window.start.0,
            2 * 3600 * MICROS_PER_SECOND
        );
    }
}
