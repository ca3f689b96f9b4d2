//! Silences: a SOC's decision that a known cause needs no more alerts for a while.
//!
//! ```toml
//! [[silence]]
//! id = "chg-1234"                     # optional: what suppressed records name (else FILE#N)
//! client_id = "sched-sync"
//! rule = "off_hours"
//! cause = ""                          # optional: the incident's cause (resource type, scope)
//! from = "2024-03-01T00:00:00Z"       # optional: incidents that began from …
//! until = "2024-04-01T00:00:00Z"      # optional: … until (event time)
//! reason = "nightly sync approved in CHG-1234"
//! author = "j.doe"
//! expires = "2026-12-31T00:00:00Z"    # required: no silence lasts forever
//! ```
//!
//! A matching alert record is marked `suppressed_by` (the entry's `id`, else `FILE#N` for the
//! N-th entry): drivers do not emit it, the history store keeps it, the run counts it. The
//! time range is matched against the incident's start, which every record of an incident
//! shares, so an incident is silenced whole (opening, updates) or not at all. An entry past
//! `expires` (by the wall clock, checked at every match: a silence is an operational
//! decision, not a property of the data) matches nothing; one already expired when the file
//! is read is reported as a warning.

use std::path::Path;

use serde::Deserialize;

use super::Alert;
use crate::event::Timestamp;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Silence {
    /// `FILE#N`, what suppressed records name.
    pub id: String,
    pub client_id: String,
    pub rule: String,
    pub cause: Option<String>,
    pub from: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub reason: String,
    pub author: String,
    pub expires: Timestamp,
}

impl Silence {
    /// True when this entry silences `alert` (expiry aside).
    pub fn matches(&self, alert: &Alert) -> bool {
        let began = alert.window.start;
        self.client_id == alert.client_id
            && self.rule == alert.rule
            && self.cause.as_ref().is_none_or(|c| *c == alert.cause)
            && self.from.is_none_or(|t| began >= t)
            && self.until.is_none_or(|t| began < t)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    silence: Vec<RawSilence>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSilence {
    id: Option<String>,
    client_id: String,
    rule: String,
    cause: Option<String>,
    from: Option<String>,
    until: Option<String>,
    reason: String,
    author: String,
    expires: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    #[error("silences {path}: {reason}")]
    File { path: String, reason: String },
    #[error("silences {path}: entry {entry} ({rule} on {client_id}): {reason}")]
    Entry {
        path: String,
        entry: usize,
        client_id: String,
        rule: String,
        reason: String,
    },
}

/// The active entries of a silences file, and what was wrong with the others.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Silences {
    pub active: Vec<Silence>,
    pub expired: Vec<Silence>,
}

impl Silences {
    pub fn load(path: &Path, now: Timestamp) -> Result<Silences, SilenceError> {
        let text = std::fs::read_to_string(path).map_err(|e| SilenceError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Silences::parse(&text, &path.display().to_string(), &name, now)
    }

    /// Parses a file's text: `path` names it in errors, `name` in the silence ids.
    pub fn parse(
        text: &str,
        path: &str,
        name: &str,
        now: Timestamp,
    ) -> Result<Silences, SilenceError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| SilenceError::File {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
        let mut out = Silences::default();
        for (i, r) in raw.silence.into_iter().enumerate() {
            let entry = i + 1;
            let error = |reason: String| SilenceError::Entry {
                path: path.to_string(),
                entry,
                client_id: r.client_id.clone(),
                rule: r.rule.clone(),
                reason,
            };
            if crate::detect::rules::catalog::rule_id(&r.rule).is_none() {
                return Err(error(format!("unknown rule `{}`", r.rule)));
            }
            for (key, value) in [("reason", &r.reason), ("author", &r.author)] {
                if value.trim().is_empty() {
                    return Err(error(format!("`{key}` is empty: say why and who")));
                }
            }
            let time = |key: &str, v: &str| {
                Timestamp::parse_rfc3339(v)
                    .map_err(|e| error(format!("`{key}` = {v:?} is not an RFC 3339 time: {e}")))
            };
            let silence = Silence {
                id: r
                    .id
                    .clone()
                    .filter(|id| !id.trim().is_empty())
                    .unwrap_or_else(|| format!("{name}#{entry}")),
                client_id: r.client_id.clone(),
                rule: r.rule.clone(),
                cause: r.cause.clone(),
                from: r.from.as_deref().map(|v| time("from", v)).transpose()?,
                until: r.until.as_deref().map(|v| time("until", v)).transpose()?,
                reason: r.reason.clone(),
                author: r.author.clone(),
                expires: time("expires", &r.expires)?,
            };
            if silence.expires <= now {
                out.expired.push(silence);
            } else {
                out.active.push(silence);
            }
        }
        Ok(out)
    }

    /// The entry unexpired at `now` that silences `alert`, if any (the first in file order).
    pub fn matching(&self, alert: &Alert, now: Timestamp) -> Option<&Silence> {
        self.active
            .iter()
            .find(|s| s.expires > now && s.matches(alert))
    }

    /// Marks each alert an entry unexpired at `now()` silences (the clock is read only when
    /// there is something to mark).
    pub fn mark(&self, alerts: &mut [Alert], now: impl FnOnce() -> Timestamp) {
        if self.active.is_empty() || alerts.is_empty() {
            return;
        }
        let now = now();
        for a in alerts {
            if let Some(s) = self.matching(a, now) {
                a.suppressed_by = Some(s.id.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Activity, Category, Evidence, Severity, Window};

    fn alert(client: &str, rule: &'static str, cause: &str, time: &str) -> Alert {
        let time = Timestamp::parse_rfc3339(time).expect("time");
        Alert {
            id: "a".into(),
            incident_id: "i".into(),
            activity: Activity::Create,
            revision: 0,
            time,
            client_id: client.into(),
            category: Category::PurposeDrift,
            rule,
            severity: Severity::Medium,
            score: 50,
            summary: String::new(),
            window: Window {
                start: time,
                end: time,
            },
            observed: serde_json::json!({}),
            baseline: serde_json::json!({}),
            evidence: Evidence::default(),
            references: Vec::new(),
            cause: cause.into(),
            suppressed_by: None,
        }
    }

    const FILE: &str = r#"
[[silence]]
client_id = "sched-sync"
rule = "off_hours"
until = "2024-04-01T00:00:00Z"
reason = "nightly sync approved"
author = "j.doe"
expires = "2030-01-01T00:00:00Z"

[[silence]]
client_id = "chart"
rule = "enforcement_gap"
cause = "Condition search-type"
reason = "server fix pending"
author = "j.doe"
expires = "2024-01-01T00:00:00Z"
"#;

    fn now() -> Timestamp {
        Timestamp::parse_rfc3339("2026-12-03T00:00:00Z").expect("now")
    }

    #[test]
    fn entries_match_app_rule_cause_and_time_and_expired_ones_match_nothing() {
        let s = Silences::parse(FILE, "s.toml", "s.toml", now()).expect("parse");
        assert_eq!(s.active.len(), 1);
        assert_eq!(s.expired.len(), 1, "the second entry expired in 2024");
        let mut alerts = vec![
            alert("sched-sync", "off_hours", "", "2024-03-05T02:00:00Z"),
            alert("sched-sync", "off_hours", "", "2024-04-05T02:00:00Z"),
            alert("sched-sync", "hourly_burst", "", "2024-03-05T02:00:00Z"),
            alert(
                "chart",
                "enforcement_gap",
                "Condition search-type",
                "2024-03-05T02:00:00Z",
            ),
        ];
        s.mark(&mut alerts, now);
        let marks: Vec<Option<&str>> = alerts.iter().map(|a| a.suppressed_by.as_deref()).collect();
        assert_eq!(marks, [Some("s.toml#1"), None, None, None]);
        // An update of the silenced incident raised after `until` is silenced too: the range
        // is matched against the incident's start.
        let mut update = alert("sched-sync", "off_hours", "", "2024-04-05T02:00:00Z");
        update.window.start = Timestamp::parse_rfc3339("2024-03-31T23:00:00Z").expect("t");
        s.mark(std::slice::from_mut(&mut update), now);
        assert_eq!(update.suppressed_by.as_deref(), Some("s.toml#1"));
        // A service running past `expires` stops matching then, without a restart.
        let later = || Timestamp::parse_rfc3339("2030-06-01T00:00:00Z").expect("t");
        let mut after = alert("sched-sync", "off_hours", "", "2024-03-05T02:00:00Z");
        s.mark(std::slice::from_mut(&mut after), later);
        assert_eq!(after.suppressed_by, None);
    }

    #[test]
    fn a_bad_entry_names_the_file_the_entry_and_the_reason() {
        let err = |text: &str| {
            Silences::parse(text, "s.toml", "s.toml", now())
                .expect_err("refused")
                .to_string()
        };
        let e = err("[[silence]]\nclient_id = \"a\"\nrule = \"off_hours\"\nreason = \"r\"\nauthor = \"x\"\n");
        assert!(
            e.contains("s.toml") && e.contains("expires"),
            "no silence lasts forever: {e}"
        );
        let e = err("[[silence]]\nclient_id = \"a\"\nrule = \"off_hours\"\nreason = \"r\"\nauthor = \"x\"\nexpires = \"2030-01-01T00:00:00Z\"\nowner = \"y\"\n");
        assert!(e.contains("owner"), "{e}");
        let e = err("[[silence]]\nclient_id = \"a\"\nrule = \"off_hourz\"\nreason = \"r\"\nauthor = \"x\"\nexpires = \"2030-01-01T00:00:00Z\"\n");
        assert!(e.contains("entry 1") && e.contains("off_hourz"), "{e}");
        let e = err("[[silence]]\nclient_id = \"a\"\nrule = \"off_hours\"\nreason = \" \"\nauthor = \"x\"\nexpires = \"2030-01-01T00:00:00Z\"\n");
        assert!(e.contains("reason"), "{e}");
        let e = err("[[silence]]\nclient_id = \"a\"\nrule = \"off_hours\"\nreason = \"r\"\nauthor = \"x\"\nexpires = \"next year\"\n");
        assert!(e.contains("RFC 3339"), "{e}");
    }
}
