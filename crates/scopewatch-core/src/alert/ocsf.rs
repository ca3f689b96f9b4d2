//! OCSF 1.8.0 Detection Finding (class_uid 2004) for an alert. The baseline-against-observed
//! explanation goes in `anomaly_analyses`; fields with no faithful OCSF home go in `unmapped`.

use serde_json::{json, Value};

use super::model::{Activity, Alert, Category};

pub const OCSF_VERSION: &str = "1.8.0";
const CLASS_UID: u32 = 2004;
const CATEGORY_UID: u32 = 2;

fn millis(t: crate::event::Timestamp) -> i64 {
    t.unix_micros().div_euclid(1000)
}

/// OCSF analytic `type_id`: 1 Rule for deterministic checks, 3 Statistical for baseline rules.
fn analytic_type(alert: &Alert) -> (u8, &'static str) {
    if alert.baseline.is_null() {
        (1, "Rule")
    } else {
        (3, "Statistical")
    }
}

fn observation_type(category: Category) -> &'static str {
    match category {
        Category::ScopeCreep => "Frequency Analysis",
        Category::PurposeDrift => "Distribution Analysis",
        Category::DataVolume => "Volume Analysis",
    }
}

fn observed_pattern(category: Category) -> &'static str {
    match category {
        Category::ScopeCreep | Category::PurposeDrift => "UNSEEN",
        Category::DataVolume => "HIGH_VOLUME",
    }
}

/// The Detection Finding for one alert record.
pub fn to_ocsf(alert: &Alert) -> Value {
    let (activity_id, activity_name) = match alert.activity {
        Activity::Create => (1, "Create"),
        Activity::Update => (2, "Update"),
    };
    let (analytic_type_id, analytic_type_name) = analytic_type(alert);
    let attacks: Vec<Value> = alert
        .references
        .iter()
        .filter(|r| r.framework == "MITRE ATT&CK")
        .map(|r| json!({ "technique": { "uid": r.id, "name": r.name } }))
        .collect();
    let compact = |v: &Value| serde_json::to_string(v).unwrap_or_default();
    let mut baselines = Vec::new();
    if !alert.baseline.is_null() {
        baselines.push(json!({
            "observation_parameter": alert.rule,
            "observation_type": observation_type(alert.category),
            "observations": [{ "value": compact(&alert.baseline) }],
        }));
    }
    json!({
        "activity_id": activity_id,
        "activity_name": activity_name,
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "type_uid": CLASS_UID * 100 + activity_id,
        "type_name": format!("Detection Finding: {activity_name}"),
        "severity_id": alert.severity.ocsf_id(),
        "severity": alert.severity.ocsf_name(),
        "time": millis(alert.time),
        "start_time": millis(alert.window.start),
        "end_time": millis(alert.window.end),
        "message": alert.summary,
        "is_alert": true,
        "risk_score": alert.score,
        "metadata": {
            "version": OCSF_VERSION,
            "uid": alert.id,
            "log_name": "scopewatch-alerts",
            "product": {
                "name": "scopewatch",
                "vendor_name": "scopewatch",
                "version": env!("CARGO_PKG_VERSION"),
            },
        },
        "finding_info": {
            "uid": alert.incident_id,
            "title": format!("{}: {}", alert.category, alert.rule),
            "desc": alert.summary,
            "types": [alert.category.as_str(), alert.rule],
            "first_seen_time": millis(alert.window.start),
            "last_seen_time": millis(alert.window.end),
            "analytic": {
                "uid": alert.rule,
                "name": alert.rule,
                "type_id": analytic_type_id,
                "type": analytic_type_name,
            },
            "attacks": attacks,
        },
        "resources": [{ "uid": alert.client_id, "name": alert.client_id, "type": "OAuth Client" }],
        "evidences": [{
            "actor": { "app_uid": alert.client_id, "app_name": alert.client_id },
            "data": alert.evidence,
        }],
        "anomaly_analyses": [{
            "analysis_targets": [{ "name": alert.client_id, "type": "OAuth Client" }],
            "anomalies": [{
                "observation_parameter": alert.rule,
                "observation_type": observation_type(alert.category),
                "observed_pattern": observed_pattern(alert.category),
                "observations": [{ "value": compact(&alert.observed) }],
            }],
            "baselines": baselines,
        }],
        "unmapped": {
            "scopewatch": {
                "revision": alert.revision,
                "observed": alert.observed,
                "baseline": alert.baseline,
                "references": alert.references,
            }
        },
    })
}
