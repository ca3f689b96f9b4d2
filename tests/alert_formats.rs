//! Golden files pin both alert encodings (set UPDATE_GOLDEN=1 to rewrite them after a
//! deliberate change), and the OCSF record carries what OCSF 1.8.0 requires.

use std::collections::BTreeMap;

use scopewatch::alert::{
    to_ecs, to_hec, to_ocsf, write_alert, Activity, Alert, AlertFormat, Category, Evidence,
    Severity, Window, ATTACK_T1213, CSF_PR_AA_05, NHI5_OVERPRIVILEGED,
};
use scopewatch::event::Timestamp;
use serde_json::json;

fn ts(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).expect("time")
}

fn sample(revision: u32) -> Alert {
    let start = ts("2024-03-05T14:00:00Z");
    let (id, incident_id) = Alert::ids("growth-chart", "enforcement_gap", CAUSE, start, revision);
    Alert {
        id,
        incident_id,
        activity: if revision == 0 { Activity::Create } else { Activity::Update },
        revision,
        time: ts("2024-03-05T14:07:12Z"),
        client_id: "growth-chart".into(),
        category: Category::ScopeCreep,
        rule: "enforcement_gap",
        severity: Severity::High,
        score: 92,
        summary: "growth-chart read Condition resources 14 times with a token whose scopes do not allow it, and the server answered 200."
            .into(),
        window: Window { start, end: ts("2024-03-05T15:00:00Z") },
        observed: json!({ "resource_type": "Condition", "interaction": "search-type", "missing_permission": "s", "requests": 14 }),
        baseline: json!({ "granted_scopes": ["patient/Observation.rs", "patient/Patient.rs"] }),
        evidence: Evidence {
            token_ids: vec!["tok-00042".into()],
            example_requests: vec!["GET Condition?patient=…".into()],
            counts: BTreeMap::from([("requests".to_string(), 14), ("tokens".to_string(), 1)]),
            cause: CAUSE.into(),
        },
        references: vec![NHI5_OVERPRIVILEGED, ATTACK_T1213, CSF_PR_AA_05],
        cause: String::new(),
        suppressed_by: None,
    }
}

const CAUSE: &str = "patient/Condition search-type";

fn golden(name: &str, actual: &str) {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected =
        std::fs::read_to_string(&path).expect("golden file (UPDATE_GOLDEN=1 creates it)");
    assert_eq!(
        actual, expected,
        "{name} changed; rerun with UPDATE_GOLDEN=1 if deliberate"
    );
}

#[test]
fn ndjson_golden() {
    let mut out = Vec::new();
    write_alert(&mut out, &sample(0), AlertFormat::Ndjson).expect("write");
    write_alert(&mut out, &sample(1), AlertFormat::Ndjson).expect("write");
    golden("alert.ndjson", &String::from_utf8(out).expect("utf8"));
}

#[test]
fn ocsf_golden() {
    let pretty = serde_json::to_string_pretty(&to_ocsf(&sample(0))).expect("json") + "\n";
    golden("alert.ocsf.json", &pretty);
}

#[test]
fn ecs_and_hec_golden() {
    let mut ecs = Vec::new();
    write_alert(&mut ecs, &sample(0), AlertFormat::Ecs).expect("write");
    golden("alert.ecs.ndjson", &String::from_utf8(ecs).expect("utf8"));
    let mut hec = Vec::new();
    write_alert(&mut hec, &sample(1), AlertFormat::Hec).expect("write");
    golden("alert.hec.ndjson", &String::from_utf8(hec).expect("utf8"));
}

/// ECS: an alert document (event.kind alert, Elastic's severity scale, rule.* and threat.*);
/// HEC: the envelope Splunk's collector takes, with the scopewatch record as its event.
#[test]
fn ecs_and_hec_carry_what_their_siems_read() {
    let ecs = to_ecs(&sample(0));
    assert_eq!(ecs["event"]["kind"], "alert");
    assert_eq!(ecs["event"]["category"], json!(["iam"]));
    assert_eq!(ecs["event"]["severity"], 73, "high");
    assert_eq!(ecs["rule"]["id"], "enforcement_gap");
    assert_eq!(ecs["threat"]["technique"]["id"], json!(["T1213"]));
    assert_eq!(ecs["@timestamp"], "2024-03-05T14:07:12.000000Z");
    assert_eq!(ecs["ecs"]["version"], "8.11.0");
    let hec = to_hec(&sample(1));
    assert_eq!(hec["time"], json!(1_709_647_632.0));
    assert_eq!(hec["sourcetype"], "scopewatch:alert");
    assert_eq!(hec["event"]["id"], sample(1).id);
    assert_eq!(hec["fields"]["rule"], "enforcement_gap");
}

#[test]
fn ocsf_required_fields_and_activity() {
    let create = to_ocsf(&sample(0));
    for field in [
        "activity_id",
        "category_uid",
        "class_uid",
        "type_uid",
        "severity_id",
        "time",
        "metadata",
        "finding_info",
    ] {
        assert!(!create[field].is_null(), "missing {field}");
    }
    assert_eq!(create["class_uid"], 2004);
    assert_eq!(create["type_uid"], 200401);
    assert_eq!(create["severity_id"], 4);
    assert_eq!(create["metadata"]["version"], "1.8.0");
    assert_eq!(
        create["finding_info"]["first_seen_time"],
        1_709_647_200_000_i64
    );
    assert_eq!(
        create["finding_info"]["attacks"][0]["technique"]["uid"],
        "T1213"
    );
    let update = to_ocsf(&sample(1));
    assert_eq!(update["type_uid"], 200402);
    assert_eq!(
        update["finding_info"]["uid"], create["finding_info"]["uid"],
        "same incident"
    );
    assert_ne!(
        update["metadata"]["uid"], create["metadata"]["uid"],
        "distinct records"
    );
}

#[test]
fn ids_are_deterministic() {
    let a = sample(0);
    let b = sample(0);
    assert_eq!(a.id, b.id);
    let (_, other_app) = Alert::ids("other-app", "enforcement_gap", CAUSE, a.window.start, 0);
    let (_, other_window) = Alert::ids(
        "growth-chart",
        "enforcement_gap",
        CAUSE,
        ts("2024-03-05T15:00:00Z"),
        0,
    );
    // One incident per app × rule × cause: another resource type is another incident.
    let (_, other_cause) = Alert::ids(
        "growth-chart",
        "enforcement_gap",
        "patient/AllergyIntolerance search-type",
        a.window.start,
        0,
    );
    assert_ne!(a.incident_id, other_app);
    assert_ne!(a.incident_id, other_window);
    assert_ne!(a.incident_id, other_cause);
    // A rule with one cause per app keeps the ids it had before causes existed.
    let (_, causeless) = Alert::ids("growth-chart", "slow_drip", "", a.window.start, 0);
    assert_eq!(causeless.len(), a.incident_id.len());
}

/// Every OCSF record `detect` writes for sample-data validates against the official OCSF 1.8.0
/// Detection Finding schema (compiled to JSON Schema by the `ocsf-json-schema` package, checked
/// with `jsonschema`; .ci/run installs both), and says what OCSF asks of it.
#[test]
fn ocsf_output_validates_against_the_official_1_8_0_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = env!("CARGO_MANIFEST_DIR");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scopewatch"))
        .current_dir(dir.path())
        .args([
            "detect",
            &format!("{root}/sample-data/events.ndjson.gz"),
            "--registry",
            &format!("{root}/sample-data/registry.toml"),
            "--no-history",
            "--alert-format",
            "ocsf",
            "--alerts",
            "ocsf.ndjson",
        ])
        .output()
        .expect("detect");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.path().join("ocsf.ndjson");
    let check = std::process::Command::new("python3")
        .arg(format!("{root}/tests/ocsf/validate.py"))
        .arg(&path)
        .output()
        .expect("python3");
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "OCSF violations (needs `pip install ocsf-json-schema jsonschema`, as .ci/run does):\n{report}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        report.contains(" 0 violation(s) against OCSF 1.8.0"),
        "{report}"
    );

    let text = std::fs::read_to_string(&path).expect("ocsf");
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert!(records.len() > 20);
    let mut seen = std::collections::BTreeSet::new();
    for r in &records {
        assert_no_empty_array(r, "");
        let rule = r["finding_info"]["analytic"]["uid"].as_str().expect("rule");
        let type_id = r["finding_info"]["analytic"]["type_id"].as_u64();
        let anomaly = &r["anomaly_analyses"][0]["anomalies"][0];
        match rule {
            // Policy comparisons are rules and not anomalies.
            "enforcement_gap"
            | "registry_scope_violation"
            | "expired_token_use"
            | "revoked_token_use" => {
                assert_eq!(type_id, Some(1), "{rule}");
                assert!(
                    r.get("anomaly_analyses").is_none(),
                    "{rule} is not an anomaly"
                );
            }
            // First use: a rule, Frequency Analysis / UNSEEN.
            "new_scope" | "new_app" | "bulk_export_new" | "new_grant_type" => {
                assert_eq!(type_id, Some(1), "{rule}");
                assert_eq!(anomaly["observation_type"], "Frequency Analysis");
                assert_eq!(anomaly["observed_pattern"], "UNSEEN");
            }
            "off_hours" => {
                assert_eq!(type_id, Some(3));
                assert_eq!(anomaly["observation_type"], "Time Pattern Analysis");
                assert_eq!(anomaly["observed_pattern"], "OFF_HOURS");
                assert_eq!(anomaly["observation_parameter"], "requests per hour");
                assert!(anomaly["observations"][0]["count"].as_u64() > Some(0));
                assert!(anomaly["observations"][0]["timespan"]["start_time"].is_i64());
            }
            "hourly_burst" | "token_outlier" | "slow_drip" => {
                assert_eq!(type_id, Some(3), "{rule}");
                assert_eq!(anomaly["observation_type"], "Volume Analysis");
                assert_ne!(
                    anomaly["observation_parameter"], rule,
                    "the metric, not the rule"
                );
                assert!(
                    anomaly["observations"][0]["count"].as_u64() > Some(0),
                    "{rule}"
                );
            }
            _ => continue,
        }
        seen.insert(rule.to_string());
        let status = (r["activity_id"].as_u64(), r["status_id"].as_u64());
        assert!(
            matches!(status, (Some(1), Some(1)) | (Some(2), Some(2))),
            "{rule}: {status:?}"
        );
        if r["activity_id"] == 2 {
            assert!(r["finding_info"]["modified_time"].is_i64());
        }
    }
    for rule in [
        "enforcement_gap",
        "new_scope",
        "off_hours",
        "hourly_burst",
        "token_outlier",
    ] {
        assert!(seen.contains(rule), "sample-data raises {rule}");
    }
}

fn assert_no_empty_array(v: &serde_json::Value, path: &str) {
    match v {
        serde_json::Value::Array(items) => {
            assert!(!items.is_empty(), "empty array at {path}");
            for (i, item) in items.iter().enumerate() {
                assert_no_empty_array(item, &format!("{path}/{i}"));
            }
        }
        serde_json::Value::Object(map) if !path.ends_with("/unmapped") => {
            for (k, item) in map {
                assert_no_empty_array(item, &format!("{path}/{k}"));
            }
        }
        _ => {}
    }
}
