//! SIEM-native alert encodings besides NDJSON and OCSF:
//! - **ECS** (Elastic Common Schema 8.11): `event.kind: alert`, `event.category: [iam]`,
//!   `event.severity` on Elastic's 21/47/73/99 scale, `event.risk_score`, `rule.*`, `threat.*`
//!   for MITRE ATT&CK references, `message`; what ECS has no field for is under `scopewatch.*`
//!   (custom fields live in a vendor namespace).
//! - **Splunk HEC** event envelopes: `time` (epoch seconds), `host`, `source`, `sourcetype`
//!   `scopewatch:alert`, `event` (the NDJSON alert record) and indexed `fields` (client_id,
//!   rule, category, severity) for fast `tstats`; POST the lines to `/services/collector/event`.

use serde_json::{json, Value};

use super::model::{Activity, Alert, Severity};

pub const ECS_VERSION: &str = "8.11.0";

fn rfc3339(t: crate::event::Timestamp) -> String {
    t.to_rfc3339()
}

/// Elastic Security's numeric severities (low 21, medium 47, high 73, critical 99).
fn ecs_severity(s: Severity) -> u8 {
    match s {
        Severity::Info => 1,
        Severity::Low => 21,
        Severity::Medium => 47,
        Severity::High => 73,
        Severity::Critical => 99,
    }
}

/// The ECS document for one alert record.
pub fn to_ecs(alert: &Alert) -> Value {
    let techniques: Vec<&super::FrameworkRef> = alert
        .references
        .iter()
        .filter(|r| r.framework == "MITRE ATT&CK")
        .collect();
    let mut doc = json!({
        "@timestamp": rfc3339(alert.time),
        "ecs": { "version": ECS_VERSION },
        "message": alert.summary,
        "event": {
            "kind": "alert",
            "category": ["iam"],
            "type": ["info"],
            "action": match alert.activity {
                Activity::Create => "incident-opened",
                Activity::Update => "incident-updated",
            },
            "id": alert.id,
            "module": "scopewatch",
            "dataset": "scopewatch.alert",
            "provider": "scopewatch",
            "severity": ecs_severity(alert.severity),
            "risk_score": alert.score,
            "start": rfc3339(alert.window.start),
            "end": rfc3339(alert.window.end),
            "reason": alert.summary,
        },
        "rule": {
            "id": alert.rule,
            "name": alert.rule,
            "category": alert.category.as_str(),
            "ruleset": "scopewatch",
            "reference": alert
                .references
                .iter()
                .map(|r| format!("{} {} {}", r.framework, r.id, r.name))
                .collect::<Vec<_>>(),
        },
        "observer": { "vendor": "scopewatch", "product": "scopewatch", "type": "monitor" },
        "labels": { "client_id": alert.client_id, "incident_id": alert.incident_id },
        "related": { "user": [alert.client_id] },
        "scopewatch": {
            "client_id": alert.client_id,
            "incident_id": alert.incident_id,
            "revision": alert.revision,
            "severity": alert.severity.as_str(),
            "observed": alert.observed,
            "baseline": alert.baseline,
            "evidence": alert.evidence,
        },
    });
    if !techniques.is_empty() {
        doc["threat"] = json!({
            "framework": "MITRE ATT&CK",
            "technique": {
                "id": techniques.iter().map(|t| t.id).collect::<Vec<_>>(),
                "name": techniques.iter().map(|t| t.name).collect::<Vec<_>>(),
            },
        });
    }
    doc
}

/// The Splunk HEC event envelope for one alert record.
pub fn to_hec(alert: &Alert) -> Value {
    // Epoch seconds with milliseconds, as HEC reads `time`.
    let millis = alert.time.unix_micros().div_euclid(1000);
    json!({
        "time": millis as f64 / 1000.0,
        "host": "scopewatch",
        "source": "scopewatch",
        "sourcetype": "scopewatch:alert",
        "event": alert,
        "fields": {
            "client_id": alert.client_id,
            "rule": alert.rule,
            "category": alert.category.as_str(),
            "severity": alert.severity.as_str(),
            "incident_id": alert.incident_id,
        },
    })
}
