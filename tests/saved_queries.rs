//! Every saved query in `queries/` runs against the history that `detect` builds from
//! `sample-data/` (plus two malformed lines, so `dead_letter` has rows), and its result is
//! checked: the columns, and at least one value known from how the sample data was made
//! (see sample-data/README.md).

use std::path::Path;
use std::process::Command;

use crate::command::{root, scopewatch};
use serde_json::Value;

fn query(dir: &Path, file: &str) -> Vec<serde_json::Map<String, Value>> {
    let out = scopewatch(
        &[
            "sql",
            "--data",
            "data",
            "-f",
            &root(&format!("queries/{file}")),
            "--output-format",
            "json",
        ],
        dir,
    );
    assert!(
        out.status.success(),
        "{file}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{file}: not a JSON array ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    rows.into_iter()
        .map(|r| match r {
            Value::Object(m) => m,
            other => panic!("{file}: row is not an object: {other}"),
        })
        .collect()
}

/// Functions only scopewatch registers: a query using one runs in DataFusion only.
const SCOPEWATCH_FUNCTIONS: [&str; 8] = [
    "scope_covers",
    "scope_is_wildcard",
    "scope_normalize",
    "scope_context",
    "fhir_resource_type",
    "fhir_interaction",
    "fhir_patient",
    "pseudonym(",
];

/// Runs every saved query that needs no scopewatch function in DuckDB over the same store
/// and compares its rows with DataFusion's (tests/support/duckdb_compare.py; DuckDB from
/// PyPI, installed by .ci/run). Returns how many were compared.
fn compare_with_duckdb(d: &Path, files: &[String]) -> usize {
    let mut compared = 0;
    for file in files {
        let path = root(&format!("queries/{file}"));
        let text = std::fs::read_to_string(&path).expect("read");
        if SCOPEWATCH_FUNCTIONS.iter().any(|f| text.contains(f)) {
            continue;
        }
        let json = d.join(format!("{file}.json"));
        let out = Command::new(env!("CARGO_BIN_EXE_scopewatch"))
            .args([
                "sql",
                "--data",
                "data",
                "-f",
                &path,
                "--output-format",
                "json",
                "--out-file",
            ])
            .arg(&json)
            .current_dir(d)
            .output()
            .expect("sql");
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let duck = Command::new("python3")
            .arg(root("tests/support/duckdb_compare.py"))
            .arg(d.join("data"))
            .arg(&path)
            .arg(&json)
            .output()
            .expect("python3");
        assert_eq!(
            duck.status.code(),
            Some(0),
            "{file} in DuckDB: {}{}",
            String::from_utf8_lossy(&duck.stdout),
            String::from_utf8_lossy(&duck.stderr)
        );
        compared += 1;
    }
    compared
}

fn gap_apps(rows: &[serde_json::Map<String, Value>]) -> std::collections::BTreeSet<String> {
    rows.iter()
        .filter_map(|r| r["client_id"].as_str().map(str::to_string))
        .collect()
}

/// The apps `detect` raised `rule` for (alerts.ndjson of the store's run).
fn alerted_apps(dir: &Path, rule: &str) -> std::collections::BTreeSet<String> {
    let text = std::fs::read_to_string(dir.join("alerts.ndjson")).expect("alerts.ndjson");
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|a| a["rule"] == rule)
        .filter_map(|a| a["client_id"].as_str().map(str::to_string))
        .collect()
}

fn columns(rows: &[serde_json::Map<String, Value>], file: &str, expected: &[&str]) {
    let first = rows.first().unwrap_or_else(|| panic!("{file}: no rows"));
    for c in expected {
        assert!(
            first.contains_key(*c) || rows.iter().any(|r| r.contains_key(*c)),
            "{file}: no column {c} in {first:?}"
        );
    }
}

fn row<'a>(
    rows: &'a [serde_json::Map<String, Value>],
    file: &str,
    key: &str,
    value: &str,
) -> &'a serde_json::Map<String, Value> {
    rows.iter()
        .find(|r| r.get(key).and_then(Value::as_str) == Some(value))
        .unwrap_or_else(|| panic!("{file}: no row with {key} = {value}: {rows:#?}"))
}

#[test]
fn every_saved_query_runs_and_finds_what_the_sample_data_holds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(
        d.join("broken.ndjson"),
        "{\"type\":\"access\",\"time\":\"2024-03-31T10:00:00Z\"\n not json at all\n",
    )
    .expect("write");
    let detect = scopewatch(
        &[
            "detect",
            &root("sample-data/events.ndjson.gz"),
            "broken.ndjson",
            "--registry",
            &root("sample-data/registry.toml"),
            "--data",
            "data",
            "--alerts",
            "alerts.ndjson",
        ],
        d,
    );
    assert_eq!(
        detect.status.code(),
        Some(1),
        "two lines rejected: {}",
        String::from_utf8_lossy(&detect.stderr)
    );

    let mut files: Vec<String> = std::fs::read_dir(root("queries"))
        .expect("queries/")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    files.sort();
    assert!(files.len() >= 12, "at least 12 saved queries: {files:?}");
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(root(&format!("queries/{file}"))).expect("read");
        assert!(
            text.starts_with("-- "),
            "{file}: starts with a comment saying what it answers"
        );
        let rows = query(d, file);
        let f = file.as_str();
        match f {
            "accounting_of_disclosures.sql" => {
                columns(
                    &rows,
                    f,
                    &[
                        "time",
                        "client_id",
                        "user",
                        "purpose_of_use",
                        "resource_type",
                        "status",
                    ],
                );
                assert_eq!(
                    rows.len(),
                    5,
                    "{f}: the five injected DocumentReference reads"
                );
                assert!(rows.iter().all(|r| r["client_id"] == "patient-portal"
                    && r["resource_type"] == "DocumentReference"));
            }
            "alerts_by_severity.sql" => {
                columns(&rows, f, &["severity", "category", "incidents", "apps"]);
                let high = rows
                    .iter()
                    .find(|r| r["severity"] == "high" && r["category"] == "scope_creep")
                    .unwrap_or_else(|| panic!("{f}: high scope_creep: {rows:#?}"));
                assert!(high["apps"].to_string().contains("patient-portal"));
            }
            "apps_by_volume_week_over_week.sql" => {
                columns(
                    &rows,
                    f,
                    &[
                        "client_id",
                        "requests_this_week",
                        "requests_last_week",
                        "ratio",
                    ],
                );
                let trial = row(&rows, f, "client_id", "trial-reader");
                assert_eq!(
                    trial["requests_last_week"], 0,
                    "the new app was silent last week"
                );
                assert_eq!(rows[0]["client_id"], "sched-sync", "busiest app first");
            }
            "bulk_exports.sql" => {
                columns(&rows, f, &["client_id", "date", "exports"]);
                let analytics = row(&rows, f, "client_id", "pop-analytics");
                assert_eq!(analytics["date"], "2024-03-20", "the injected export");
            }
            "dead_letters_by_reason.sql" => {
                columns(&rows, f, &["source", "kind", "records"]);
                let broken = row(&rows, f, "source", "broken.ndjson");
                assert!(broken["records"].as_i64() >= Some(1));
            }
            "denied_token_requests.sql" => {
                columns(&rows, f, &["client_id", "denied", "days_with_denials"]);
                let ehr = row(&rows, f, "client_id", "ehr-charts");
                assert!(ehr["denied"].as_i64() > Some(0));
            }
            "enforcement_gaps.sql" => {
                columns(
                    &rows,
                    f,
                    &[
                        "client_id",
                        "date",
                        "resource_type",
                        "interaction",
                        "served_requests",
                    ],
                );
                let portal = row(&rows, f, "client_id", "patient-portal");
                assert_eq!(
                    (portal["date"].as_str(), portal["resource_type"].as_str()),
                    (Some("2024-03-26"), Some("DocumentReference"))
                );
                assert_eq!(portal["served_requests"], 5);
                // SMART App Launch 2.x: a DocumentReference search needs `s` on the type.
                assert_eq!(portal["missing_permission"], "patient/DocumentReference.s");
                assert_eq!(
                    gap_apps(&rows),
                    alerted_apps(d, "enforcement_gap"),
                    "{f}: the store's gap verdicts and the engine's enforcement_gap alerts name \
                     the same apps"
                );
            }
            "least_privilege_candidates.sql" => {
                columns(&rows, f, &["client_id", "scope", "never_used"]);
                let unused: Vec<_> = rows.iter().filter(|r| r["never_used"] == true).collect();
                assert!(
                    unused.iter().any(
                        |r| r["client_id"] == "sched-sync" && r["scope"] == "system/Patient.rs"
                    ),
                    "{f}: the injected system/Patient.rs grant was never used: {rows:#?}"
                );
                assert!(rows
                    .iter()
                    .any(|r| r["scope"] == "system/Slot.rs" && r["never_used"] == false));
            }
            "new_apps_last_7_days.sql" => {
                columns(&rows, f, &["client_id", "first_seen", "events"]);
                assert_eq!(rows.len(), 1, "{f}: {rows:#?}");
                assert_eq!(rows[0]["client_id"], "trial-reader");
            }
            "off_hours_access.sql" => {
                columns(
                    &rows,
                    f,
                    &[
                        "client_id",
                        "off_hours_requests",
                        "weekend_requests",
                        "night_requests",
                    ],
                );
                let payer = row(&rows, f, "client_id", "payer-link");
                assert!(
                    payer["night_requests"].as_i64() >= Some(40),
                    "the injected 02:00 Saturday pull"
                );
            }
            "purposes_of_use_by_app.sql" => {
                columns(&rows, f, &["client_id", "purpose_of_use", "requests"]);
                let marketing = row(&rows, f, "purpose_of_use", "HMARKT");
                assert_eq!(marketing["client_id"], "payer-link");
            }
            "tokens_touching_most_patients.sql" => {
                columns(
                    &rows,
                    f,
                    &[
                        "token_id",
                        "client_id",
                        "distinct_patients",
                        "has_launch_patient",
                    ],
                );
                assert_eq!(rows[0]["client_id"], "ehr-charts");
                assert_eq!(rows[0]["distinct_patients"], 25, "the injected fan-out");
            }
            "wildcard_and_system_scopes.sql" => {
                columns(
                    &rows,
                    f,
                    &["client_id", "scope", "context", "wildcard", "tokens"],
                );
                let portal = row(&rows, f, "client_id", "patient-portal");
                assert_eq!(
                    (portal["scope"].as_str(), portal["wildcard"].as_bool()),
                    (Some("patient/*.rs"), Some(true))
                );
                assert!(rows
                    .iter()
                    .any(|r| r["client_id"] == "bulk-warehouse" && r["scope"] == "system/*.rs"));
            }
            other => panic!("{other}: a saved query without a check here"),
        }
        checked += 1;
    }
    assert_eq!(checked, files.len());
    let portable = compare_with_duckdb(d, &files);
    assert_eq!(
        portable,
        files.len(),
        "every saved query runs unchanged in DuckDB with DataFusion's results"
    );
}

#[test]
fn sql_refuses_writes_and_reports_errors_with_their_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::create_dir(d.join("data")).expect("mkdir");
    let copy = scopewatch(
        &["sql", "--data", "data", "-c", "COPY (SELECT 1) TO 'x.csv'"],
        d,
    );
    assert_eq!(copy.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&copy.stderr).contains("read-only"));
    assert!(!d.join("x.csv").exists());
    let bad = scopewatch(
        &[
            "sql",
            "--data",
            "data",
            "-c",
            "SELECT client_id FROM access WHERE (status = 200",
        ],
        d,
    );
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("Line: 1") || err.contains("line 1"), "{err}");
    let unknown = scopewatch(
        &["sql", "--data", "data", "-c", "SELECT nope FROM access"],
        d,
    );
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("nope"));
    // Empty tables are registered, so queries plan before any detect run wrote history.
    let empty = scopewatch(
        &[
            "sql",
            "--data",
            "data",
            "-c",
            "SELECT count(*) AS n FROM access",
            "--output-format",
            "csv",
        ],
        d,
    );
    assert!(
        empty.status.success(),
        "{}",
        String::from_utf8_lossy(&empty.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&empty.stdout), "n\n0\n");
}

#[test]
fn archived_ndjson_can_be_queried_without_a_detect_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let out = scopewatch(
        &[
            "sql",
            "--input",
            &root("sample-data/events.ndjson.gz"),
            "-c",
            "SELECT fhir_resource_type(url) AS t, count(*) AS n FROM access WHERE client_id = 'payer-link' AND scope_covers(granted_scopes, resource_type, interaction) GROUP BY 1 ORDER BY 2 DESC",
            "--output-format",
            "ndjson",
        ],
        d,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let first: Value = serde_json::from_str(text.lines().next().expect("a row")).expect("json");
    assert_eq!(first["t"], "ExplanationOfBenefit");
    assert!(first["n"].as_i64() > Some(100));
    assert!(
        !d.join("scopewatch-data").exists(),
        "--input leaves no store behind"
    );
}

#[test]
fn a_pseudonymised_store_holds_no_patient_id_and_is_searchable_with_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_scopewatch"))
            .args(args)
            .current_dir(d)
            .env("SW_KEY", "a-test-key-of-at-least-16-bytes")
            .output()
            .expect("run")
    };
    let detect = run(&[
        "detect",
        &root("sample-data/events.ndjson.gz"),
        "--data",
        "data",
        "--alerts",
        "alerts.ndjson",
        "--pseudonymize-key-env",
        "SW_KEY",
    ]);
    assert!(
        detect.status.success(),
        "{}",
        String::from_utf8_lossy(&detect.stderr)
    );
    let sql = |q: &str| {
        let out = run(&[
            "sql",
            "--data",
            "data",
            "--pseudonymize-key-env",
            "SW_KEY",
            "-c",
            q,
            "--output-format",
            "csv",
        ]);
        assert!(
            out.status.success(),
            "{q}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(
        sql("SELECT count(*) AS n FROM access WHERE url LIKE '%pat-%' OR patient LIKE 'pat-%' OR token_patient LIKE 'pat-%'"),
        "n\n0\n"
    );
    assert_eq!(
        sql("SELECT count(*) AS n FROM tokens WHERE patient LIKE 'pat-%'"),
        "n\n0\n"
    );
    assert_eq!(
        sql("SELECT count(*) AS n FROM access WHERE patient = pseudonym('pat-00123')"),
        "n\n5\n",
        "the five injected reads, found through the pseudonym"
    );
    assert!(
        sql("SELECT url FROM access WHERE patient = pseudonym('pat-00123') LIMIT 1")
            .contains("DocumentReference?patient=…")
    );
    // The same store refuses plain ids (or another key) afterwards.
    let plain = run(&[
        "detect",
        &root("sample-data/events.ndjson.gz"),
        "--data",
        "data",
        "--alerts",
        "a2.ndjson",
    ]);
    assert_eq!(plain.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&plain.stderr).contains("pseudonymised with key"));
}
