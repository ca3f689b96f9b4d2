//! `simulate` → `detect` → `eval` through the command line: determinism (file and stdin give
//! the same alert ids), OCSF output, baseline snapshots, late events dead-lettered.

use crate::command::{root, scopewatch};
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ids(ndjson: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(ndjson)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("alert json")["id"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[test]
fn simulate_detect_eval_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    ok(&scopewatch(
        &["simulate", "--seed", "2", "--out-dir", "sim", "--no-gzip"],
        d,
    ));

    let file_run = scopewatch(
        &[
            "detect",
            "sim/events.ndjson",
            "--registry",
            "sim/registry.toml",
            "--state",
            "state",
            "--flush",
            "--summary",
            "summary.json",
        ],
        d,
    );
    ok(&file_run);
    let alert_ids = ids(&file_run.stdout);
    assert!(alert_ids.len() > 10, "alerts on stdout");
    assert_eq!(
        std::fs::read_to_string(d.join("state/CURRENT")).expect("CURRENT"),
        "gen-000001\n"
    );
    assert!(
        d.join("state/gen-000001/baseline/baseline_apps.parquet")
            .exists()
            && d.join("state/gen-000001/engine.json").exists(),
        "checkpoint written"
    );

    // Two runs over consecutive halves, continuing through --state, give the one run's alerts.
    let text = std::fs::read_to_string(d.join("sim/events.ndjson")).expect("events");
    let lines: Vec<&str> = text.lines().collect();
    let half = lines.len() / 2;
    std::fs::write(d.join("part1.ndjson"), lines[..half].join("\n") + "\n").expect("part1");
    std::fs::write(d.join("part2.ndjson"), lines[half..].join("\n") + "\n").expect("part2");
    let registry = "sim/registry.toml";
    let first = scopewatch(
        &[
            "detect",
            "part1.ndjson",
            "--registry",
            registry,
            "--state",
            "split",
        ],
        d,
    );
    ok(&first);
    let first_err = String::from_utf8_lossy(&first.stderr);
    assert!(
        first_err.contains("carried over in split:"),
        "carry-over reported: {first_err}"
    );
    let second = scopewatch(
        &[
            "detect",
            "part2.ndjson",
            "--registry",
            registry,
            "--state",
            "split",
            "--flush",
        ],
        d,
    );
    ok(&second);
    let mut split_ids = ids(&first.stdout);
    split_ids.extend(ids(&second.stdout));
    assert_eq!(
        split_ids, alert_ids,
        "split runs give the alerts of one run"
    );
    // Reading the same file into the state again is warned about.
    let again = scopewatch(
        &[
            "detect",
            "part2.ndjson",
            "--registry",
            registry,
            "--state",
            "split",
            "--dead-letter",
            "again-dl.ndjson",
        ],
        d,
    );
    assert_eq!(again.status.code(), Some(1), "replayed events are late");
    let replayed = std::fs::read_to_string(d.join("again-dl.ndjson")).expect("dead letters");
    assert!(replayed.lines().count() > 1000 && replayed.contains("\"kind\":\"late\""));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already read into the state directory"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(
        !d.join("scopewatch-dead-letter.ndjson").exists(),
        "no dead-letter file when nothing was rejected"
    );
    let stderr = String::from_utf8_lossy(&file_run.stderr);
    assert!(
        stderr.contains("ehr-charts") && stderr.contains("scope_creep"),
        "table by app and category: {stderr}"
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("summary.json")).expect("summary"))
            .expect("json");
    assert_eq!(summary["ingest"]["totals"]["dead_lettered"], 0);

    // The same events through stdin give the same alert ids.
    let mut child = Command::new(env!("CARGO_BIN_EXE_scopewatch"))
        .args(["detect", "-", "--registry", "sim/registry.toml"])
        .current_dir(d)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let events = std::fs::read(d.join("sim/events.ndjson")).expect("events");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&events));
    let piped = child.wait_with_output().expect("wait");
    writer.join().expect("writer").expect("write stdin");
    ok(&piped);
    assert_eq!(ids(&piped.stdout), alert_ids);

    // Eval finds every labelled category.
    std::fs::write(d.join("alerts.ndjson"), &file_run.stdout).expect("write alerts");
    let eval = scopewatch(
        &[
            "eval",
            "--labels",
            "sim/labels.ndjson",
            "--alert-input",
            "alerts.ndjson",
            "--json",
            "--app-days",
            "196",
        ],
        d,
    );
    ok(&eval);
    let e: serde_json::Value = serde_json::from_slice(&eval.stdout).expect("eval json");
    for category in ["scope_creep", "purpose_drift", "data_volume"] {
        assert!(
            e["by_category"][category]["recall"].as_f64() >= Some(0.9),
            "{category}: {e}"
        );
        assert!(
            e["by_category"][category]["precision"].as_f64() >= Some(0.8),
            "{category}: {e}"
        );
    }

    // OCSF: one Detection Finding per alert record.
    let ocsf = scopewatch(
        &[
            "detect",
            "sim/events.ndjson",
            "--registry",
            "sim/registry.toml",
            "--alert-format",
            "ocsf",
        ],
        d,
    );
    ok(&ocsf);
    let findings: Vec<serde_json::Value> = String::from_utf8_lossy(&ocsf.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("ocsf json"))
        .collect();
    assert_eq!(findings.len(), alert_ids.len());
    assert!(findings.iter().all(|f| f["class_uid"] == 2004));
    let uids: Vec<String> = findings
        .iter()
        .map(|f| {
            f["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(uids, alert_ids, "OCSF metadata.uid is the alert id");
}

#[test]
fn late_events_are_dead_lettered_not_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let line = |t: &str| {
        format!(
            r#"{{"type":"access","time":"{t}","client_id":"app","method":"GET","url":"metadata","status":200}}"#
        )
    };
    let input = [
        line("2024-03-01T12:00:00Z"),
        line("2024-03-01T13:00:00Z"),
        line("2024-03-01T11:00:00Z"),
        line("2024-03-01T12:58:00Z"),
    ]
    .join("\n");
    std::fs::write(d.join("in.ndjson"), input).expect("write");
    let out = scopewatch(
        &[
            "detect",
            "in.ndjson",
            "--dead-letter",
            "dl.ndjson",
            "--lateness-seconds",
            "300",
        ],
        d,
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "a late event makes the run unclean"
    );
    let dl = std::fs::read_to_string(d.join("dl.ndjson")).expect("dead letter");
    let records: Vec<serde_json::Value> = dl
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(records.len(), 1, "{dl}");
    assert_eq!(records[0]["kind"], "late");
    assert_eq!(records[0]["line"], 3);
    assert!(records[0]["reason"]
        .as_str()
        .unwrap_or_default()
        .starts_with("late beyond 300 s"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("late (dead-lettered by detection) 1"),
        "{stderr}"
    );
}

/// One canonical token event.
fn tok(
    at: &str,
    client: &str,
    id: &str,
    event: &str,
    scopes: &str,
    patient: Option<&str>,
) -> String {
    let patient = patient.map_or(String::new(), |p| format!(r#","patient":"{p}""#));
    let scopes = if scopes.is_empty() {
        String::new()
    } else {
        format!(r#","scope_granted":{}"#, serde_json::json!(scopes))
    };
    format!(
        r#"{{"type":"token","event":"{event}","time":"2024-03-05T{at}Z","client_id":"{client}","user":"Patient/u-{client}","token_id":"{id}","expires_in":3600{scopes}{patient}}}"#
    )
}

/// One canonical access event (`logged` = the patient the log names).
fn acc(
    at: &str,
    client: &str,
    id: &str,
    method: &str,
    url: &str,
    status: u16,
    logged: Option<&str>,
) -> String {
    let logged = logged.map_or(String::new(), |p| format!(r#","patient":"{p}""#));
    format!(
        r#"{{"type":"access","time":"2024-03-05T{at}Z","client_id":"{client}","token_id":"{id}","method":"{method}","url":{},"status":{status}{logged}}}"#,
        serde_json::json!(url)
    )
}

/// (client, rule, cause) of every incident-opening alert of a detect run over `lines`.
fn incidents(lines: &[String], extra: &[&str]) -> Vec<(String, String, String)> {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("log.ndjson"), lines.join("\n") + "\n").expect("log");
    let mut args = vec![
        "detect",
        "log.ndjson",
        "--no-history",
        "--learning-days",
        "0",
    ];
    args.extend_from_slice(extra);
    let out = scopewatch(&args, dir.path());
    ok(&out);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("alert"))
        .filter(|a| a["activity"] == "create")
        .map(|a| {
            let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
            (
                s("client_id"),
                s("rule"),
                a["evidence"]["cause"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

fn rules_of<'a>(found: &'a [(String, String, String)], client: &str) -> Vec<&'a str> {
    found
        .iter()
        .filter(|(c, _, _)| c == client)
        .map(|(_, r, _)| r.as_str())
        .collect()
}

const JUDGING: [&str; 3] = ["enforcement_gap", "unverified_access", "revoked_token_use"];

/// The verdicts issue 13 found wrong, each through the CLI. Sources: Bulk Data 2.0 export
/// (kick-off, status, files; "SHALL limit the data returned to only those FHIR resources for
/// which the client is authorized"), FHIR R4 Patient-everything, FHIR R4 search (reference
/// modifiers, chaining), SMART 2.2 scopes-and-launch-context (patient-specific scopes,
/// finer-grained constraints, user-level scopes), RFC 7009 §2.
#[test]
fn spec_verdicts_through_the_cli() {
    let lab = "launch/patient patient/Patient.r patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory";
    let lines = vec![
        // False gaps of the first wave: per-type system scopes exporting, status and files.
        tok(
            "01:00:00",
            "warehouse",
            "w1",
            "issued",
            "system/Patient.rs system/Observation.rs",
            None,
        ),
        acc(
            "01:00:05",
            "warehouse",
            "w1",
            "GET",
            "Group/g1/$export?_type=Patient,Observation",
            202,
            None,
        ),
        acc(
            "01:00:06",
            "warehouse",
            "w1",
            "POST",
            "Patient/$export",
            202,
            None,
        ),
        acc("01:00:07", "warehouse", "w1", "GET", "$export", 202, None),
        acc(
            "01:01:00",
            "warehouse",
            "w1",
            "GET",
            "$export-poll-status?_jobId=9f",
            200,
            None,
        ),
        acc(
            "01:02:00",
            "warehouse",
            "w1",
            "GET",
            "https://files.example.org/bulk/9f/Patient.ndjson",
            200,
            None,
        ),
        acc(
            "01:02:01",
            "warehouse",
            "w1",
            "GET",
            "bulkfiles/9f.Observation.ndjson",
            200,
            None,
        ),
        // $everything and a :missing search under per-type patient scopes.
        tok(
            "02:00:00",
            "chart",
            "c1",
            "issued",
            "launch/patient patient/Patient.rs patient/Observation.rs",
            Some("p1"),
        ),
        acc(
            "02:00:05",
            "chart",
            "c1",
            "GET",
            "Patient/p1/$everything",
            200,
            Some("p1"),
        ),
        acc(
            "02:00:06",
            "chart",
            "c1",
            "GET",
            "Observation?patient:missing=false",
            200,
            None,
        ),
        acc(
            "02:00:07",
            "chart",
            "c1",
            "GET",
            "Observation?subject:Patient.name=smith",
            200,
            None,
        ),
        // Granular scope: another category is a gap, a read by id is unverified.
        tok("03:00:00", "labs", "l1", "issued", lab, Some("p1")),
        acc(
            "03:00:05",
            "labs",
            "l1",
            "GET",
            "Observation?patient=p1&category=laboratory",
            200,
            None,
        ),
        acc(
            "03:00:06",
            "labs",
            "l1",
            "GET",
            "Observation?patient=p1&category=social-history",
            200,
            None,
        ),
        acc("03:00:07", "labs", "l1", "GET", "Observation/o7", 200, None),
        // The log names another patient than the launch patient on an instance read.
        tok(
            "04:00:00",
            "portal",
            "p-1",
            "issued",
            "launch/patient patient/Observation.rs",
            Some("p1"),
        ),
        acc(
            "04:00:05",
            "portal",
            "p-1",
            "GET",
            "Observation/o5",
            200,
            Some("p1"),
        ),
        acc(
            "04:00:06",
            "portal",
            "p-1",
            "GET",
            "Observation/o6",
            200,
            Some("p2"),
        ),
        // A revoked token still honoured.
        tok(
            "05:00:00",
            "mobile",
            "m1",
            "issued",
            "launch/patient patient/Observation.rs",
            Some("p3"),
        ),
        acc(
            "05:00:05",
            "mobile",
            "m1",
            "GET",
            "Observation?patient=p3",
            200,
            None,
        ),
        tok("05:01:00", "mobile", "m1", "revoked", "", None),
        acc(
            "05:02:00",
            "mobile",
            "m1",
            "GET",
            "Observation?patient=p3",
            200,
            None,
        ),
        // _revinclude of a type the token cannot read: the server should filter it.
        tok(
            "06:00:00",
            "prov",
            "v1",
            "issued",
            "launch/patient patient/Observation.rs",
            Some("p4"),
        ),
        acc(
            "06:00:05",
            "prov",
            "v1",
            "GET",
            "Observation?patient=p4&_revinclude=Provenance:target",
            200,
            None,
        ),
        // A clinician with user/ scopes opening five charts: allowed, not a fan-out.
        tok(
            "07:00:00",
            "nurse",
            "n1",
            "issued",
            "launch openid fhirUser user/Patient.rs user/Observation.rs",
            Some("p5"),
        ),
        acc("07:00:01", "nurse", "n1", "GET", "Patient/p5", 200, None),
        acc(
            "07:00:02",
            "nurse",
            "n1",
            "GET",
            "Observation?patient=p6",
            200,
            None,
        ),
        acc(
            "07:00:03",
            "nurse",
            "n1",
            "GET",
            "Observation?patient=p7",
            200,
            None,
        ),
        acc("07:00:04", "nurse", "n1", "GET", "Patient/p8", 200, None),
        acc(
            "07:00:05",
            "nurse",
            "n1",
            "GET",
            "Observation?patient=p9",
            200,
            None,
        ),
        // Batch/transaction: unexplained, never a gap.
        tok(
            "08:00:00",
            "batcher",
            "b1",
            "issued",
            "launch/patient patient/Observation.rs",
            Some("p1"),
        ),
        acc("08:00:05", "batcher", "b1", "POST", "/", 200, None),
        // A patient launch its source did not record (Keycloak): the first patient stands for
        // it, the second is another patient.
        tok(
            "09:30:00",
            "kc",
            "k1",
            "issued",
            "launch/patient patient/Observation.rs",
            None,
        ),
        acc(
            "09:30:05",
            "kc",
            "k1",
            "GET",
            "Observation?patient=p7",
            200,
            None,
        ),
        acc(
            "09:30:06",
            "kc",
            "k1",
            "GET",
            "Observation?patient=p7&code=x",
            200,
            None,
        ),
        acc(
            "09:30:07",
            "kc",
            "k1",
            "GET",
            "Observation?patient=p8",
            200,
            None,
        ),
        // A patient on two devices refreshing either grant.
        tok(
            "09:00:00",
            "devices",
            "d1",
            "issued",
            "launch/patient offline_access patient/Observation.rs patient/Condition.rs",
            Some("p10"),
        ),
        tok(
            "09:05:00",
            "devices",
            "d2",
            "issued",
            "launch/patient offline_access patient/Observation.rs",
            Some("p10"),
        ),
        tok(
            "10:00:00",
            "devices",
            "d3",
            "refreshed",
            "launch/patient offline_access patient/Observation.rs patient/Condition.rs",
            Some("p10"),
        ),
    ];
    let found = incidents(&lines, &[]);
    let judged = |client: &str| -> Vec<&str> {
        rules_of(&found, client)
            .into_iter()
            .filter(|r| JUDGING.contains(r) || *r == "patient_fanout" || *r == "refresh_broadening")
            .collect()
    };
    assert_eq!(judged("warehouse"), Vec::<&str>::new(), "{found:#?}");
    assert_eq!(judged("chart"), Vec::<&str>::new(), "{found:#?}");
    let mut labs = judged("labs");
    labs.sort_unstable();
    assert_eq!(
        labs,
        vec!["enforcement_gap", "unverified_access"],
        "{found:#?}"
    );
    assert!(found.contains(&(
        "labs".into(),
        "enforcement_gap".into(),
        "patient/Observation search-type".into()
    )));
    assert_eq!(judged("portal"), vec!["enforcement_gap"], "{found:#?}");
    assert!(
        found.contains(&(
            "portal".into(),
            "enforcement_gap".into(),
            "user other-patient".into()
        )),
        "another patient needs user/ context"
    );
    assert_eq!(judged("mobile"), vec!["revoked_token_use"], "{found:#?}");
    assert_eq!(judged("prov"), vec!["unverified_access"], "{found:#?}");
    assert_eq!(judged("nurse"), Vec::<&str>::new(), "{found:#?}");
    assert_eq!(judged("batcher"), Vec::<&str>::new(), "{found:#?}");
    assert_eq!(judged("devices"), Vec::<&str>::new(), "{found:#?}");
    assert!(
        found.contains(&(
            "kc".into(),
            "enforcement_gap".into(),
            "user other-patient".into()
        )),
        "{found:#?}"
    );
}

/// Verdicts an adversarial review of stop 42 found wrong, each through the CLI:
/// - SMART 2.2 scopes-and-launch-context §Scope Equivalence ("Scopes can be combined to
///   represent a union of access"): `category=vital-signs,laboratory` under a laboratory and a
///   vital-signs scope is covered.
/// - Same page, §Finer-grained resource constraints ("a series of param=value items separated
///   by &"): naming only the category of a `category=…&status=final` scope leaves the status to
///   the server: unverified, not a gap.
/// - FHIR R4 search §Including other resources: `_include=Observation:encounter` (no target
///   type) includes Encounter, which the token cannot read: unverified.
/// - RFC 6749 §6: a refresh record naming no user or patient that exceeds every grant of its
///   app is `refresh_broadening`.
#[test]
fn combined_granular_scopes_partial_constraints_typeless_includes_and_bare_refreshes() {
    let cat = "http://terminology.hl7.org/CodeSystem/observation-category|";
    let two = format!("launch/patient patient/Observation.rs?category={cat}laboratory patient/Observation.rs?category={cat}vital-signs");
    let final_lab =
        format!("launch/patient patient/Observation.rs?category={cat}laboratory&status=final");
    let plain = "launch/patient patient/Patient.r patient/Observation.rs";
    let bare_refresh = r#"{"type":"token","event":"refreshed","time":"2024-03-05T10:00:00Z","client_id":"chain","token_id":"c2","grant_type":"refresh_token","scope_granted":"patient/*.cruds offline_access","expires_in":3600}"#;
    let lines = vec![
        tok("08:00:00", "union", "u1", "issued", &two, Some("p1")),
        acc(
            "08:01:00",
            "union",
            "u1",
            "GET",
            &format!("Observation?patient=p1&category={cat}vital-signs,{cat}laboratory"),
            200,
            None,
        ),
        tok(
            "08:00:00",
            "partial",
            "f1",
            "issued",
            &final_lab,
            Some("p1"),
        ),
        acc(
            "08:01:00",
            "partial",
            "f1",
            "GET",
            &format!("Observation?patient=p1&category={cat}laboratory"),
            200,
            None,
        ),
        tok("08:00:00", "incl", "i1", "issued", plain, Some("p1")),
        acc(
            "08:01:00",
            "incl",
            "i1",
            "GET",
            "Observation?patient=p1&_include=Observation:encounter",
            200,
            None,
        ),
        tok(
            "09:00:00",
            "chain",
            "c1",
            "issued",
            "launch/patient patient/Observation.rs offline_access",
            Some("p1"),
        ),
        bare_refresh.to_string(),
    ];
    let found = incidents(&lines, &[]);
    let judged = |client: &str| -> Vec<&str> {
        rules_of(&found, client)
            .into_iter()
            .filter(|r| JUDGING.contains(r) || *r == "refresh_broadening")
            .collect()
    };
    assert_eq!(judged("union"), Vec::<&str>::new(), "{found:#?}");
    assert_eq!(judged("partial"), vec!["unverified_access"], "{found:#?}");
    assert_eq!(judged("incl"), vec!["unverified_access"], "{found:#?}");
    assert_eq!(judged("chain"), vec!["refresh_broadening"], "{found:#?}");
}

/// Verdicts a second review of stop 42 found wrong, through the CLI:
/// - SMART 2.2 scopes-and-launch-context (patient-level scopes: the server SHALL establish a
///   patient in context, MAY infer `launch/patient`): a user-facing grant of `patient/` scopes
///   alone searching without a patient parameter is restricted by the server, not a gap.
/// - FHIR R4 operations: `ValueSet/$expand` is server-defined, never a gap.
/// - RFC 7009 §2: a token known only by its revocation, served afterwards, is
///   `revoked_token_use`.
#[test]
fn inferred_patient_context_terminology_and_revocations_of_unseen_tokens() {
    let issued = r#"{"type":"token","event":"issued","time":"2024-03-05T08:00:00Z","client_id":"standalone","token_id":"s1","grant_type":"authorization_code","scope_granted":"openid fhirUser patient/*.rs","user":"Patient/p5","expires_in":3600}"#;
    let revoked = r#"{"type":"token","event":"revoked","time":"2024-03-05T08:00:00Z","client_id":"old","token_id":"o1"}"#;
    let lines = vec![
        issued.to_string(),
        acc(
            "08:00:10",
            "standalone",
            "s1",
            "GET",
            "Observation?patient=p5",
            200,
            None,
        ),
        acc(
            "08:00:20",
            "standalone",
            "s1",
            "GET",
            "Observation?code=x",
            200,
            None,
        ),
        acc(
            "08:00:30",
            "standalone",
            "s1",
            "GET",
            "ValueSet/$expand?url=http://x",
            200,
            None,
        ),
        revoked.to_string(),
        acc(
            "08:01:00",
            "old",
            "o1",
            "GET",
            "Observation?patient=p1",
            200,
            None,
        ),
    ];
    let found = incidents(&lines, &[]);
    let judged = |client: &str| -> Vec<&str> {
        rules_of(&found, client)
            .into_iter()
            .filter(|r| JUDGING.contains(r))
            .collect()
    };
    assert_eq!(judged("standalone"), Vec::<&str>::new(), "{found:#?}");
    assert_eq!(judged("old"), vec!["revoked_token_use"], "{found:#?}");
}

/// Third spec review (each through the CLI, one app per case):
/// - FHIR R4 `Binary.securityContext`: a note's attachment read as `Binary/b1` by a token that
///   reads DocumentReference is unverified (recorded at info), not a gap; without such a type it
///   is a gap.
/// - FHIR R4 search token modifiers on a granular scope's parameter: `:text`, `:in`, `:below`,
///   `:missing=false` leave the constraint to the server (low); `:missing=true` asks outside it.
/// - FHIR R4 search reference `[parameter]=[id]`: `Condition?subject=p2` names patient p2
///   (Condition.subject is a Patient or a Group); `Observation?subject=dev-77` names none (its
///   subject may be a Device).
/// - RFC 6749 §5.1: a grant that logs only `scope_requested` holds those scopes.
#[test]
fn attachments_modifiers_bare_subjects_and_grants_logged_as_requested() {
    let lab = "launch/patient patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory";
    let requested = r#"{"type":"token","event":"issued","time":"2024-03-05T08:00:00Z","client_id":"asked","token_id":"q1","grant_type":"authorization_code","scope_requested":"launch/patient patient/Observation.rs","patient":"p1","expires_in":3600}"#;
    let lines = vec![
        tok(
            "08:00:00",
            "notes",
            "n1",
            "issued",
            "launch/patient patient/DocumentReference.rs",
            Some("p1"),
        ),
        acc(
            "08:00:10",
            "notes",
            "n1",
            "GET",
            "DocumentReference?patient=p1",
            200,
            None,
        ),
        acc("08:00:20", "notes", "n1", "GET", "Binary/b1", 200, None),
        tok(
            "08:00:00",
            "labs",
            "l1",
            "issued",
            "launch/patient patient/Observation.rs",
            Some("p1"),
        ),
        acc("08:00:30", "labs", "l1", "GET", "Binary/b2", 200, None),
        tok("08:00:00", "granular", "g1", "issued", lab, Some("p1")),
        acc(
            "08:00:40",
            "granular",
            "g1",
            "GET",
            "Observation?patient=p1&category:text=lab",
            200,
            None,
        ),
        tok("08:00:00", "absent", "a1", "issued", lab, Some("p1")),
        acc(
            "08:00:50",
            "absent",
            "a1",
            "GET",
            "Observation?patient=p1&category:missing=true",
            200,
            None,
        ),
        tok(
            "08:00:00",
            "chart",
            "c1",
            "issued",
            "launch/patient patient/Observation.rs patient/Condition.rs",
            Some("p1"),
        ),
        acc(
            "08:01:00",
            "chart",
            "c1",
            "GET",
            "Observation?subject=dev-77",
            200,
            None,
        ),
        acc(
            "08:01:10",
            "chart",
            "c1",
            "GET",
            "Condition?subject=p2",
            200,
            None,
        ),
        requested.to_string(),
        acc(
            "08:01:20",
            "asked",
            "q1",
            "GET",
            "Observation?patient=p1",
            200,
            None,
        ),
        acc(
            "08:01:30",
            "asked",
            "q1",
            "GET",
            "Condition?patient=p1",
            200,
            None,
        ),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("log.ndjson"), lines.join("\n") + "\n").expect("log");
    let out = scopewatch(&["detect", "log.ndjson", "--no-history"], dir.path());
    ok(&out);
    let mut found: Vec<(String, String, String, String, String, String)> =
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("alert"))
            .filter(|a| a["activity"] == "create" && a["rule"] != "new_app")
            .map(|a| {
                let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
                (
                    s(&a["client_id"]),
                    s(&a["category"]),
                    s(&a["rule"]),
                    s(&a["severity"]),
                    s(&a["evidence"]["cause"]),
                    s(&a["window"]["start"]),
                )
            })
            .collect();
    found.sort();
    let hour = "2024-03-05T08:00:00.000000Z";
    let row = |client: &str, rule: &str, severity: &str, cause: &str| {
        (
            client.to_string(),
            "scope_creep".to_string(),
            rule.to_string(),
            severity.to_string(),
            cause.to_string(),
            hour.to_string(),
        )
    };
    assert_eq!(
        found,
        vec![
            row(
                "absent",
                "enforcement_gap",
                "high",
                "patient/Observation search-type"
            ),
            row(
                "asked",
                "enforcement_gap",
                "high",
                "patient/Condition search-type"
            ),
            row("chart", "enforcement_gap", "high", "user other-patient"),
            row(
                "granular",
                "unverified_access",
                "low",
                "constrained-scope Observation search-type"
            ),
            row("labs", "enforcement_gap", "high", "patient/Binary read"),
            row(
                "notes",
                "unverified_access",
                "info",
                "binary-attachment Binary read"
            ),
        ],
        "{found:#?}"
    );
}

/// A cause that recurs every day is one incident (opened once, kept open while it recurs);
/// a new cause opens its own; a cause quiet for longer than the quiet period opens anew.
#[test]
fn a_recurring_cause_is_one_incident() {
    let mut lines = Vec::new();
    for day in 5..12 {
        let token = format!("t{day}");
        lines.push(
            tok(
                "09:00:00",
                "app",
                &token,
                "issued",
                "launch/patient patient/Observation.rs",
                Some("p1"),
            )
            .replace("2024-03-05", &format!("2024-03-{day:02}")),
        );
        for minute in 1..4 {
            lines.push(
                acc(
                    &format!("09:0{minute}:00"),
                    "app",
                    &token,
                    "GET",
                    "Condition?patient=p1",
                    200,
                    None,
                )
                .replace("2024-03-05", &format!("2024-03-{day:02}")),
            );
        }
        if day == 8 {
            lines.push(
                acc(
                    "09:05:00",
                    "app",
                    &token,
                    "GET",
                    "AllergyIntolerance?patient=p1",
                    200,
                    None,
                )
                .replace("2024-03-05", "2024-03-08"),
            );
        }
    }
    let gaps = |found: &[(String, String, String)]| -> Vec<String> {
        found
            .iter()
            .filter(|(_, r, _)| r == "enforcement_gap")
            .map(|(_, _, c)| c.clone())
            .collect()
    };
    let found = incidents(&lines, &[]);
    assert_eq!(
        gaps(&found),
        vec![
            "patient/Condition search-type",
            "patient/AllergyIntolerance search-type"
        ],
        "one incident per cause over seven days"
    );
    // With a one-hour quiet period every day opens a new Condition incident.
    let found = incidents(&lines, &["--incident-quiet-hours", "1"]);
    assert_eq!(
        gaps(&found)
            .iter()
            .filter(|c| c.contains("Condition"))
            .count(),
        7
    );
}

/// `detect` and `validate` take `--input PATH` as `run` and `sql` do, with the same result as
/// a positional input; with neither, clap says what is missing.
#[test]
fn inputs_may_be_given_as_input_flags_as_in_run_and_sql() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let events = root("sample-data/events.ndjson.gz");
    let registry = root("sample-data/registry.toml");
    let detect = |first: &[&str], alerts: &str| {
        let mut args = vec!["detect"];
        args.extend_from_slice(first);
        args.extend(["--registry", &registry, "--no-history", "--alerts", alerts]);
        ok(&scopewatch(&args, d));
        std::fs::read(d.join(alerts)).expect("alerts")
    };
    let positional = detect(&[&events], "positional.ndjson");
    let flagged = detect(&["--input", &events], "flagged.ndjson");
    assert!(!positional.is_empty());
    assert_eq!(ids(&positional), ids(&flagged));

    let validate = scopewatch(&["validate", "--input", &events], d);
    ok(&validate);
    let none = scopewatch(&["detect", "--no-history"], d);
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("<INPUT>"));
}

/// `hourly_burst` is volume, not rhythm: an app whose busiest hour serves about 120 requests
/// is not bursting when an ordinary-sized busy hour comes at another time of day (that is
/// `off_hours`' question); three times its peak is a burst wherever it falls.
#[test]
fn a_peak_sized_hour_at_another_time_is_not_a_burst() {
    let mut lines = Vec::new();
    let hour = |lines: &mut Vec<String>, day: u32, h: u32, requests: u32| {
        let on = |line: String| line.replace("2024-03-05", &format!("2024-03-{day:02}"));
        let token = format!("t{day}-{h}");
        let scopes = "launch/patient patient/Observation.rs";
        let issued = format!("{:02}:50:00", h - 1);
        lines.push(on(tok(
            &issued,
            "rounds",
            &token,
            "issued",
            scopes,
            Some("p1"),
        )));
        for i in 0..requests {
            let second = i * 3000 / requests;
            let at = format!("{h:02}:{:02}:{:02}", second / 60, second % 60);
            let url = "Observation?patient=p1";
            lines.push(on(acc(&at, "rounds", &token, "GET", url, 200, None)));
        }
    };
    for day in 1..=21 {
        hour(&mut lines, day, 9, 120);
        hour(&mut lines, day, 14, 10);
    }
    hour(&mut lines, 22, 9, 120);
    hour(&mut lines, 22, 18, 130);
    hour(&mut lines, 24, 9, 120);
    hour(&mut lines, 24, 18, 400);
    let bursts = |extra: &[&str]| {
        incidents(&lines, extra)
            .into_iter()
            .filter(|(_, rule, _)| rule == "hourly_burst")
            .count()
    };
    // Day 24's hour of 400 only; day 22's 130 is peak-sized.
    assert_eq!(bursts(&[]), 1);
    // A rules file that turns the peak condition off (a multiple of 0) finds day 22's too.
    let rules = tempfile::tempdir().expect("tempdir");
    let path = rules.path().join("rules.toml");
    std::fs::write(&path, "[hourly_burst]\nmin_peak_multiple = 0\n").expect("rules");
    let path = path.to_string_lossy().to_string();
    assert_eq!(bursts(&["--rules", &path]), 2);
}
