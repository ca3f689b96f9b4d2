//! `simulate` → `detect` → `eval` through the command line: determinism (file and stdin give
//! the same alert ids), OCSF output, baseline snapshots, late events dead-lettered.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn scopewatch(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scopewatch"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("run scopewatch")
}

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
        &["simulate", "--seed", "2", "--out", "sim", "--no-gzip"],
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
            "--alerts",
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
            "--format",
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
            "--lateness",
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
