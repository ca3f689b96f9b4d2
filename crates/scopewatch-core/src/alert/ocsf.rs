//! OCSF 1.8.0 Detection Finding (class_uid 2004) for an alert. The baseline-against-observed
//! explanation goes in `anomaly_analyses`; fields with no faithful OCSF home go in `unmapped`.

use serde_json::{json, Value};

use super::model::{Activity, Alert};

pub const OCSF_VERSION: &str = "1.8.0";
const CLASS_UID: u32 = 2004;
const CATEGORY_UID: u32 = 2;

fn millis(t: crate::event::Timestamp) -> i64 {
    t.unix_micros().div_euclid(1000)
}

/// How OCSF should read a rule: the analytic type, and for anomaly rules what was measured.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Analysis {
    /// OCSF analytic `type_id`: 1 Rule (a fixed check), 3 Statistical (against a learnt baseline).
    statistical: bool,
    /// `observation_type` and `observed_pattern` in OCSF's own vocabulary (the `anomaly`
    /// object's description); None for policy comparisons, which are not anomalies.
    anomaly: Option<(&'static str, Option<&'static str>)>,
    /// The metric observed (`observation_parameter`), and the key of `observed` counting it.
    parameter: &'static str,
    count_key: Option<&'static str>,
}

const fn policy() -> Analysis {
    Analysis {
        statistical: false,
        anomaly: None,
        parameter: "",
        count_key: None,
    }
}

const fn first_use(parameter: &'static str) -> Analysis {
    Analysis {
        statistical: false,
        anomaly: Some(("Frequency Analysis", Some("UNSEEN"))),
        parameter,
        count_key: None,
    }
}

const fn volume(
    statistical: bool,
    pattern: &'static str,
    parameter: &'static str,
    count_key: &'static str,
) -> Analysis {
    Analysis {
        statistical,
        anomaly: Some(("Volume Analysis", Some(pattern))),
        parameter,
        count_key: Some(count_key),
    }
}

/// Every rule's reading; a rule missing here reads as a policy comparison.
const ANALYSES: [(&str, Analysis); 23] = [
    ("new_app", first_use("client id")),
    ("new_scope", first_use("granted scopes")),
    ("wildcard_broadening", first_use("granted scopes")),
    ("context_escalation", first_use("scope context")),
    ("offline_access_new", first_use("granted scopes")),
    ("new_grant_type", first_use("grant type")),
    ("new_purpose", first_use("purpose of use")),
    ("bulk_export_new", first_use("operation")),
    ("everything_new", first_use("operation")),
    (
        "population_access_new",
        first_use("population-level access"),
    ),
    (
        "dormant_app_active",
        Analysis {
            statistical: false,
            anomaly: Some(("Time Pattern Analysis", Some("UNUSUAL_TIME"))),
            parameter: "activity after a dormant period",
            count_key: None,
        },
    ),
    (
        "off_hours",
        Analysis {
            statistical: true,
            anomaly: Some(("Time Pattern Analysis", Some("OFF_HOURS"))),
            parameter: "requests per hour",
            count_key: Some("requests"),
        },
    ),
    (
        "hourly_burst",
        volume(true, "SURGE", "requests per hour", "requests"),
    ),
    (
        "token_outlier",
        volume(
            true,
            "HIGH_VOLUME",
            "resources retrieved per token",
            "retrieved",
        ),
    ),
    (
        "export_outlier",
        volume(
            true,
            "HIGH_VOLUME",
            "resources retrieved per export",
            "retrieved",
        ),
    ),
    (
        "slow_drip",
        volume(true, "HIGH_VOLUME", "requests per day", "requests_today"),
    ),
    (
        "patient_fanout",
        volume(
            true,
            "HIGH_VOLUME",
            "distinct patients per token",
            "distinct_patients",
        ),
    ),
    (
        "paging_sweep",
        volume(true, "HIGH_VOLUME", "search pages per token", "pages"),
    ),
    (
        "resource_mix_shift",
        Analysis {
            statistical: true,
            anomaly: Some(("Distribution Analysis", None)),
            parameter: "share of requests per resource type",
            count_key: None,
        },
    ),
    ("enforcement_gap", policy()),
    ("refresh_broadening", policy()),
    ("expired_token_use", policy()),
    ("revoked_token_use", policy()),
];

fn analysis(rule: &str) -> Analysis {
    ANALYSES
        .iter()
        .find(|(id, _)| *id == rule)
        .map_or(policy(), |(_, a)| *a)
}

/// The anomaly analysis of an anomaly rule: what was measured, how much, over which window,
/// against which baseline. None for policy comparisons.
fn anomaly_analyses(
    alert: &Alert,
    analysis: Analysis,
    compact: impl Fn(&Value) -> String,
) -> Option<Value> {
    let (observation_type, pattern) = analysis.anomaly?;
    let count = analysis
        .count_key
        .and_then(|k| alert.observed.get(k))
        .and_then(Value::as_u64);
    let timespan = json!({
        "type_id": 9,
        "type": "Time Interval",
        "start_time": millis(alert.window.start),
        "end_time": millis(alert.window.end),
        "duration": millis(alert.window.end) - millis(alert.window.start),
    });
    let mut observation = json!({
        "value": count.map_or_else(|| compact(&alert.observed), |n| n.to_string()),
        "timespan": timespan,
    });
    if let Some(n) = count {
        observation["count"] = json!(n);
    }
    let mut anomaly = json!({
        "observation_parameter": analysis.parameter,
        "observation_type": observation_type,
        "observations": [observation],
    });
    if let Some(p) = pattern {
        anomaly["observed_pattern"] = json!(p);
    }
    let mut out = json!({
        "analysis_targets": [{ "name": alert.client_id, "type": "OAuth Client" }],
        "anomalies": [anomaly],
    });
    if !alert.baseline.is_null() {
        out["baselines"] = json!([{
            "observation_parameter": analysis.parameter,
            "observation_type": observation_type,
            "observations": [{ "value": compact(&alert.baseline) }],
        }]);
    }
    Some(out)
}

/// The Detection Finding for one alert record.
pub fn to_ocsf(alert: &Alert) -> Value {
    let (activity_id, activity_name) = match alert.activity {
        Activity::Create => (1, "Create"),
        Activity::Update => (2, "Update"),
    };
    let analysis = analysis(alert.rule);
    let (analytic_type_id, analytic_type_name) = if analysis.statistical {
        (3, "Statistical")
    } else {
        (1, "Rule")
    };
    // OCSF status of the finding: a new incident is New, its updates are In Progress.
    let (status_id, status) = match alert.activity {
        Activity::Create => (1, "New"),
        Activity::Update => (2, "In Progress"),
    };
    let attacks: Vec<Value> = alert
        .references
        .iter()
        .filter(|r| r.framework == "MITRE ATT&CK")
        .map(|r| json!({ "technique": { "uid": r.id, "name": r.name } }))
        .collect();
    let compact = |v: &Value| serde_json::to_string(v).unwrap_or_default();
    let mut finding = json!({
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
        "status_id": status_id,
        "status": status,
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
            "created_time": millis(alert.window.start),
            "analytic": {
                "uid": alert.rule,
                "name": alert.rule,
                "type_id": analytic_type_id,
                "type": analytic_type_name,
            },
        },
        "resources": [{ "uid": alert.client_id, "name": alert.client_id, "type": "OAuth Client" }],
        "evidences": [{
            "actor": { "app_uid": alert.client_id, "app_name": alert.client_id },
            "data": alert.evidence,
        }],
        "unmapped": {
            "scopewatch": {
                "revision": alert.revision,
                "observed": alert.observed,
                "baseline": alert.baseline,
                "references": alert.references,
            }
        },
    });
    // OCSF arrays are never written empty: an attribute without a value is left out.
    if !attacks.is_empty() {
        finding["finding_info"]["attacks"] = json!(attacks);
    }
    if alert.activity == Activity::Update {
        finding["finding_info"]["modified_time"] = json!(millis(alert.time));
    }
    if let Some(analyses) = anomaly_analyses(alert, analysis, compact) {
        finding["anomaly_analyses"] = json!([analyses]);
    }
    finding
}
