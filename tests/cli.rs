//! End-to-end behaviour of the command line that is not about ingest counts.

use std::process::Command;

fn scopewatch(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_scopewatch"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run scopewatch")
}

/// `cat events | scopewatch run --input -` gives exactly the alerts (ids and order) of
/// `scopewatch detect events`: the end of stdin ends the stream.
#[test]
fn run_over_stdin_gives_the_alerts_of_detect() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data");
    let detect = Command::new(env!("CARGO_BIN_EXE_scopewatch"))
        .current_dir(dir.path())
        .arg("detect")
        .arg(sample.join("events.ndjson.gz"))
        .arg("--registry")
        .arg(sample.join("registry.toml"))
        .arg("--no-history")
        .output()
        .expect("detect");
    assert!(detect.status.success());
    let bytes = std::fs::read(sample.join("events.ndjson.gz")).expect("sample");
    let mut child = Command::new(env!("CARGO_BIN_EXE_scopewatch"))
        .current_dir(dir.path())
        .args(["run", "--input", "-", "--no-history", "--registry"])
        .arg(sample.join("registry.toml"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run");
    let mut stdin = child.stdin.take().expect("stdin");
    // gzip on stdin is detected from its magic bytes, as for files.
    let writer = std::thread::spawn(move || stdin.write_all(&bytes));
    let run = child.wait_with_output().expect("run");
    writer.join().expect("writer").expect("write stdin");
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let ids = |out: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(out)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("alert")["id"].to_string())
            .collect()
    };
    let expected = ids(&detect.stdout);
    assert!(expected.len() > 20);
    assert_eq!(ids(&run.stdout), expected);
}

#[test]
fn run_without_a_source_or_state_says_what_it_needs() {
    let out = scopewatch(&["run"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--kafka-brokers"));
    let out = scopewatch(&["run", "--kafka-brokers", "127.0.0.1:9"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --state DIR"));
}

#[test]
fn readme_main_command_runs_on_the_sample_data() {
    let data = tempfile::tempdir().expect("tempdir");
    let out = scopewatch(&[
        "detect",
        "sample-data/events.ndjson.gz",
        "--registry",
        "sample-data/registry.toml",
        "--data",
        &data.path().display().to_string(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alerts: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("alert"))
        .collect();
    // Every labelled incident of the sample data is among the alerts (app, category, window).
    let labels = std::fs::read_to_string("sample-data/labels.ndjson").expect("labels");
    for label in labels.lines() {
        let l: serde_json::Value = serde_json::from_str(label).expect("label");
        let found = alerts.iter().any(|a| {
            a["client_id"] == l["client_id"]
                && a["category"] == l["category"]
                && a["window"]["start"].as_str() < l["end"].as_str()
                && a["window"]["end"].as_str() > l["start"].as_str()
        });
        assert!(found, "not found: {l}");
    }
    assert!(
        data.path().join("access").is_dir() && data.path().join("baseline").is_dir(),
        "history store written"
    );
}

#[test]
fn help_explains_validate_flags() {
    let out = scopewatch(&["validate", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--dead-letter",
        "--summary",
        "--max-line-bytes",
        "--fhir-base",
        "--log-format",
    ] {
        assert!(help.contains(flag), "validate --help lacks {flag}");
    }
}

#[test]
fn bundled_sample_data_is_valid() {
    let out = scopewatch(&["validate", "sample-data/events.ndjson.gz", "--summary", "-"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary");
    assert!(summary["events"]["token"].as_u64() > Some(1000));
    assert!(summary["events"]["access"].as_u64() > Some(10_000));
    assert_eq!(
        summary["events"]["unclassified_urls"],
        serde_json::json!({})
    );
}

#[test]
fn logs_never_print_patient_ids_or_urls_at_info() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("phi.ndjson");
    std::fs::write(
        &path,
        concat!(
            r#"{"type":"access","time":"2024-03-01T12:00:00Z","client_id":"a","method":"GET","url":"Observation?patient=PHI-PATIENT-777","status":200,"patient":"PHI-PATIENT-777"}"#,
            "\n",
            r#"{"type":"access","time":"bad","client_id":"a","method":"GET","url":"Patient/PHI-PATIENT-778","status":200}"#,
            "\n",
            r#"{"type":"access","time":"2024-03-01T12:00:00Z","client_id":"a","method":"GET","url":"Patient/PHI PATIENT 779","status":200}"#,
            "\n"
        ),
    )
    .expect("write");
    for format in ["text", "json"] {
        let out = Command::new(env!("CARGO_BIN_EXE_scopewatch"))
            .args(["validate", "--log-format", format, "--dead-letter"])
            .arg(dir.path().join("dl.ndjson"))
            .arg(&path)
            .env("RUST_LOG", "info")
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("source done"),
            "info logging is on: {stderr}"
        );
        assert!(
            !stderr.contains("PHI"),
            "patient data leaked to logs: {stderr}"
        );
        if format == "json" {
            // Every stderr line is JSON, and the last one is the run summary.
            let values: Vec<serde_json::Value> = stderr
                .lines()
                .map(|l| serde_json::from_str(l).expect("json log line"))
                .collect();
            let summary = &values.last().expect("summary line")["summary"];
            assert_eq!(summary["totals"]["read"], 3);
            assert_eq!(summary["totals"]["accepted"], 2);
            assert_eq!(summary["totals"]["dead_lettered"], 1);
            assert_eq!(
                summary["events"]["unclassified_urls"]
                    ["URL contains whitespace or control characters"],
                1
            );
        }
    }
}

#[test]
fn a_config_file_sets_flags_and_the_command_line_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data");
    let config = dir.path().join("scopewatch.toml");
    std::fs::write(
        &config,
        format!(
            "registry = {:?}\nalerts = \"from-config.ndjson\"\nno-history = true\nalert-format = \"ocsf\"\n",
            sample.join("registry.toml").to_string_lossy()
        ),
    )
    .expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_scopewatch"))
        .current_dir(dir.path())
        .arg("detect")
        .arg(sample.join("events.ndjson.gz"))
        .arg("--config")
        .arg(&config)
        .args(["--alert-format", "ndjson"])
        .output()
        .expect("detect");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alerts = std::fs::read_to_string(dir.path().join("from-config.ndjson"))
        .expect("alerts file from the config");
    let first: serde_json::Value =
        serde_json::from_str(alerts.lines().next().expect("an alert")).expect("json");
    assert!(
        first["rule"].is_string(),
        "--alert-format ndjson on the command line wins over ocsf: {first}"
    );
    assert!(
        !dir.path().join("scopewatch-data").exists(),
        "no-history from the config"
    );

    std::fs::write(&config, "alerts-file = \"x\"\n").expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_scopewatch"))
        .current_dir(dir.path())
        .args(["detect", "--config"])
        .arg(&config)
        .arg(sample.join("events.ndjson.gz"))
        .output()
        .expect("detect");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("alerts-file") && err.contains("has no flag"),
        "{err}"
    );
}

/// Precedence: command line > `SCOPEWATCH_*` environment > `--config` file. The file (named
/// by `SCOPEWATCH_CONFIG`) gives the inputs and the alert output; the environment overrides
/// the output and the alert format; the command line overrides both.
#[test]
fn the_environment_sits_between_the_command_line_and_the_config_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data");
    let config = dir.path().join("scopewatch.toml");
    std::fs::write(
        &config,
        format!(
            "inputs = [{:?}]\nregistry = {:?}\nalerts = \"from-config.ndjson\"\nno-history = true\n",
            sample.join("events.ndjson.gz").to_string_lossy(),
            sample.join("registry.toml").to_string_lossy()
        ),
    )
    .expect("config");
    let run = |envs: &[(&str, &str)], extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_scopewatch"))
            .current_dir(dir.path())
            .arg("detect")
            .args(extra)
            .envs(envs.iter().copied())
            .env("SCOPEWATCH_CONFIG", &config)
            .output()
            .expect("detect");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let first_alert = |name: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(dir.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        serde_json::from_str(text.lines().next().expect("an alert")).expect("json")
    };
    // SCOPEWATCH_CONFIG names the file; its inputs and alert output are used.
    run(&[], &[]);
    assert!(first_alert("from-config.ndjson")["rule"].is_string());
    // The environment beats the file.
    run(
        &[
            ("SCOPEWATCH_ALERTS", "from-env.ndjson"),
            ("SCOPEWATCH_ALERT_FORMAT", "ocsf"),
        ],
        &[],
    );
    assert!(first_alert("from-env.ndjson")["class_uid"].is_number());
    // The command line beats the environment.
    run(
        &[
            ("SCOPEWATCH_ALERTS", "from-env-2.ndjson"),
            ("SCOPEWATCH_ALERT_FORMAT", "ocsf"),
        ],
        &["--alert-format", "ndjson", "--alerts", "from-cli.ndjson"],
    );
    assert!(first_alert("from-cli.ndjson")["rule"].is_string());
    assert!(!dir.path().join("from-env-2.ndjson").exists());

    let help = scopewatch(&["run", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("[env: SCOPEWATCH_KAFKA_BROKERS]"), "{help}");
    // A variable's value never shows in the help (it may be a secret).
    let out = Command::new(env!("CARGO_BIN_EXE_scopewatch"))
        .args(["run", "--help"])
        .env("SCOPEWATCH_KAFKA_BROKERS", "secret-host:9092")
        .output()
        .expect("run --help");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("secret-host"));
}

/// `--data s3://bucket/x` once wrote the local directory `./s3:/bucket/x` and reported the
/// URL; a URL is now a usage error (exit 2) in every command that takes `--data`, and nothing
/// is created.
#[test]
fn an_object_store_url_for_data_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sample =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data/events.ndjson.gz");
    let sample = sample.to_string_lossy();
    // detect, run and sql take s3:// (tests/object_store.rs); other schemes, bucketless URLs
    // and the commands that read a local directory only refuse before touching anything.
    for args in [
        vec!["detect", &*sample, "--data", "gs://bucket/x"],
        vec!["run", "--input", &*sample, "--data", "gs://bucket/x"],
        vec!["sql", "--data", "file:///tmp/x", "-c", "SELECT 1"],
        vec!["sql", "--data", "s3:///no-bucket", "-c", "SELECT 1"],
        vec!["report", "--data", "s3://bucket/x"],
        vec!["compact", "--data", "s3://bucket/x"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_scopewatch"))
            .current_dir(dir.path())
            .args(&args)
            .output()
            .expect("scopewatch");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("is not supported") || err.contains("names no bucket"),
            "{args:?}: {err}"
        );
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
    assert!(left.is_empty(), "nothing created: {left:?}");
}

/// The deployment examples name only variables scopewatch reads: each `SCOPEWATCH_*` is a
/// flag of `run` (or a global one) or a `SCOPEWATCH_KAFKA_CONFIG_<KEY>` setting, and the
/// systemd unit's command line parses.
#[test]
fn deployment_examples_name_real_flags() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut command = scopewatch::cli::command();
    command.build();
    let run = command.find_subcommand("run").expect("run").clone();
    let known: Vec<String> = run
        .get_arguments()
        .filter_map(|a| a.get_long())
        .map(scopewatch::cli::env::var_for_flag)
        .collect();
    let mut seen = 0;
    for file in [
        "scopewatch.service",
        "scopewatch-compact.service",
        "Dockerfile",
        "kubernetes.yaml",
    ] {
        let text = std::fs::read_to_string(root.join("deploy").join(file)).expect(file);
        for (at, _) in text.match_indices("SCOPEWATCH_") {
            let name: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || *c == '_' || c.is_ascii_digit())
                .collect();
            if name == "SCOPEWATCH_" {
                continue; // prose: "SCOPEWATCH_* variables"
            }
            seen += 1;
            let kafka = name
                .strip_prefix("SCOPEWATCH_KAFKA_CONFIG_")
                .is_some_and(|k| !k.is_empty());
            assert!(
                kafka || known.contains(&name),
                "deploy/{file} names {name}, which no flag of `scopewatch run` reads"
            );
        }
    }
    assert!(seen > 10, "the examples configure through the environment");

    // The unit's environment gives --state, which --follow needs.
    for (unit, extra) in [
        (
            "scopewatch.service",
            &["--state", "/var/lib/scopewatch/state"][..],
        ),
        ("scopewatch-compact.service", &[][..]),
    ] {
        let text = std::fs::read_to_string(root.join("deploy").join(unit)).expect("unit");
        // Continuation lines joined, the command is the first line after `ExecStart=`.
        let exec = text
            .split("ExecStart=")
            .nth(1)
            .expect("ExecStart")
            .replace("\\\n", " ");
        let words: Vec<&str> = exec
            .lines()
            .next()
            .expect("a line")
            .split_whitespace()
            .collect();
        assert_eq!(words[0], "/usr/local/bin/scopewatch", "{unit}");
        let mut args = vec!["scopewatch"];
        args.extend(&words[1..]);
        args.extend(extra);
        scopewatch::cli::command()
            .try_get_matches_from(&args)
            .unwrap_or_else(|e| panic!("{unit}: ExecStart does not parse: {e}"));
    }
}

/// Rows per table of a history store, through `scopewatch sql`.
fn store_counts(dir: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_scopewatch"))
        .current_dir(dir)
        .args(["sql", "--data", "data", "--output-format", "csv", "-c"])
        .arg(
            "SELECT (SELECT count(*) FROM access) AS access, (SELECT count(*) FROM tokens) AS tokens, \
             (SELECT count(*) FROM alerts) AS alerts, (SELECT count(DISTINCT url) FROM access) AS urls, \
             (SELECT sum(status) FROM access) AS status_sum",
        )
        .output()
        .expect("sql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Visible Parquet files per date directory of `table`.
fn files_per_date(dir: &std::path::Path, table: &str) -> Vec<usize> {
    let mut counts = Vec::new();
    for date in std::fs::read_dir(dir.join("data").join(table)).expect("table dir") {
        let date = date.expect("entry").path();
        let n = std::fs::read_dir(&date)
            .expect("date dir")
            .flatten()
            .filter(|f| {
                let name = f.file_name().to_string_lossy().into_owned();
                !name.starts_with('.') && name.ends_with(".parquet")
            })
            .count();
        counts.push(n);
    }
    counts
}

/// Three runs write three files per date; `compact` leaves one per table and date with the
/// same rows, and a later re-run over one of the inputs still replaces its rows (no row twice).
#[test]
fn compact_merges_files_per_date_and_runs_still_replace_their_rows() {
    use std::io::Read as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data");
    let mut text = String::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(sample.join("events.ndjson.gz")).expect("sample"),
    )
    .read_to_string(&mut text)
    .expect("gunzip");
    let lines: Vec<&str> = text.lines().collect();
    let third = lines.len() / 3 + 1;
    for (i, chunk) in lines.chunks(third).enumerate() {
        std::fs::write(
            dir.path().join(format!("part{i}.ndjson")),
            chunk.join("\n") + "\n",
        )
        .expect("write");
    }
    let detect = |name: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_scopewatch"))
            .current_dir(dir.path())
            .args([
                "detect",
                name,
                "--data",
                "data",
                "--alerts",
                "alerts.ndjson",
            ])
            .arg("--registry")
            .arg(sample.join("registry.toml"))
            .output()
            .expect("detect");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // Every date gets a file from each run: the three parts overlap in time.
    for name in ["part0.ndjson", "part1.ndjson", "part2.ndjson", "all.ndjson"] {
        if name == "all.ndjson" {
            std::fs::write(dir.path().join(name), lines[..200].join("\n") + "\n").expect("write");
        }
        detect(name);
    }
    let before = store_counts(dir.path());
    assert!(files_per_date(dir.path(), "access").iter().any(|n| *n >= 2));

    let out = Command::new(env!("CARGO_BIN_EXE_scopewatch"))
        .current_dir(dir.path())
        .args(["compact", "--data", "data", "--min-age-minutes", "0"])
        .output()
        .expect("compact");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for table in ["access", "tokens", "alerts"] {
        let per_date = files_per_date(dir.path(), table);
        assert!(per_date.iter().all(|n| *n <= 1), "{table}: {per_date:?}");
    }
    assert_eq!(
        store_counts(dir.path()),
        before,
        "same rows after compaction"
    );

    // Re-running over part1 (same files, same run id) replaces its rows inside merged files.
    detect("part1.ndjson");
    detect("all.ndjson");
    assert_eq!(
        store_counts(dir.path()),
        before,
        "a re-run replaces, never duplicates"
    );
    let again = Command::new(env!("CARGO_BIN_EXE_scopewatch"))
        .current_dir(dir.path())
        .args(["compact", "--data", "data", "--min-age-minutes", "0"])
        .output()
        .expect("compact");
    assert!(again.status.success());
    assert_eq!(store_counts(dir.path()), before);
}

/// `detect` over the bundled sample data with its registry, in `dir`, with `args`.
fn detect_sample(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data");
    Command::new(env!("CARGO_BIN_EXE_scopewatch"))
        .current_dir(dir)
        .arg("detect")
        .arg(sample.join("events.ndjson.gz"))
        .arg("--registry")
        .arg(sample.join("registry.toml"))
        .args(args)
        .output()
        .expect("detect")
}

/// Alerts (rule, severity) of `detect` over the sample data with extra flags.
fn sample_alerts(
    dir: &std::path::Path,
    extra: &[&str],
) -> (Option<i32>, Vec<(String, String)>, String) {
    let mut args = vec!["--no-history"];
    args.extend_from_slice(extra);
    let out = detect_sample(dir, &args);
    let alerts = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("alert");
            (
                v["rule"].as_str().expect("rule").to_string(),
                v["severity"].as_str().expect("severity").to_string(),
            )
        })
        .collect();
    (
        out.status.code(),
        alerts,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `--rules FILE`: disabling a rule removes exactly its alerts, a severity override changes
/// exactly that rule's alerts, and a misspelt key stops the run naming the file and the key.
#[test]
fn a_rules_file_disables_and_reweights_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, base, err) = sample_alerts(dir.path(), &[]);
    assert_eq!(code, Some(0), "{err}");
    let mut rules: Vec<&str> = base.iter().map(|(r, _)| r.as_str()).collect();
    rules.sort();
    rules.dedup();
    assert!(
        rules.len() >= 2,
        "the sample data raises several rules: {rules:?}"
    );
    let (off, reweighted) = (rules[0], rules[1]);
    std::fs::write(
        dir.path().join("rules.toml"),
        format!("[{off}]\nenabled = false\n\n[{reweighted}]\nseverity = \"critical\"\n"),
    )
    .expect("write");
    let (code, tuned, err) = sample_alerts(dir.path(), &["--rules", "rules.toml"]);
    assert_eq!(code, Some(0), "{err}");
    let kept: Vec<&(String, String)> = base.iter().filter(|(r, _)| r != off).collect();
    assert_eq!(
        tuned.len(),
        kept.len(),
        "[{off}] disabled: its alerts, and only they, go"
    );
    for ((rule, severity), (base_rule, base_severity)) in tuned.iter().zip(kept) {
        assert_eq!(rule, base_rule);
        if rule == reweighted {
            // A closing record of an incident is info whatever the rule's severity.
            let want = if base_severity == "info" {
                "info"
            } else {
                "critical"
            };
            assert_eq!(severity, want, "{rule}");
        } else {
            assert_eq!(severity, base_severity, "{rule}");
        }
    }
    assert!(tuned
        .iter()
        .any(|(r, s)| r == reweighted && s == "critical"));

    // A threshold moves a finding: off_hours needs 20 requests in a silent hour by default;
    // asking for a million removes its alerts (the sample data has three: the on-call night at
    // info, the payer sync's two nights, info then medium) and nothing else.
    assert!(base.iter().any(|(r, _)| r == "off_hours"));
    std::fs::write(
        dir.path().join("threshold.toml"),
        "[off_hours]\nmin_requests = 1000000\n",
    )
    .expect("write");
    let (code, raised, err) = sample_alerts(dir.path(), &["--rules", "threshold.toml"]);
    assert_eq!(code, Some(0), "{err}");
    let without: Vec<(String, String)> = base
        .iter()
        .filter(|(r, _)| r != "off_hours")
        .cloned()
        .collect();
    assert_eq!(raised, without);

    std::fs::write(dir.path().join("bad.toml"), "[off_hours]\nenabld = false\n").expect("write");
    let (code, _, err) = sample_alerts(dir.path(), &["--rules", "bad.toml"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("bad.toml") && err.contains("enabld"), "{err}");
}

/// docs/rules.md is the catalog's own rendering; `scopewatch rules --rules FILE` shows a
/// file's settings.
#[test]
fn docs_rules_md_is_generated_from_the_catalog() {
    let out = scopewatch(&["rules", "--output-format", "markdown"]);
    assert!(out.status.success());
    let generated = String::from_utf8_lossy(&out.stdout);
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/rules.md"),
    )
    .expect("docs/rules.md");
    assert_eq!(
        doc, generated,
        "docs/rules.md differs from the catalog: run `scopewatch rules --output-format markdown > docs/rules.md`"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("r.toml");
    std::fs::write(
        &file,
        "[enforcement_gap]\nenabled = false\n[token_outlier]\nscore = 50\n",
    )
    .expect("write");
    let out = scopewatch(&[
        "rules",
        "--output-format",
        "json",
        "--rules",
        &file.to_string_lossy(),
    ]);
    let rules: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let gap = rules
        .as_array()
        .expect("array")
        .iter()
        .find(|r| r["id"] == "enforcement_gap")
        .expect("listed");
    assert_eq!(gap["enabled"], false);
    // The catalog's grade, unless the file sets one.
    assert_eq!(gap["severity"], "high");
    assert_eq!(gap["score"], "85");
    let outlier = rules
        .as_array()
        .expect("array")
        .iter()
        .find(|r| r["id"] == "token_outlier")
        .expect("listed");
    assert_eq!(outlier["params"]["min_requests"], 200.0);
    assert_eq!(outlier["severity"], "medium");
    assert_eq!(outlier["score"], "50");
    assert_eq!(rules.as_array().map(Vec::len), Some(27));
}

/// Silences: the silenced (app, rule) raises nothing in the output but is kept in the
/// history store as suppressed and counted; an expired entry matches nothing and warns;
/// `silences preview` lists exactly the stored records an entry matches; `silences check`
/// reports the expired entry.
#[test]
fn silences_keep_a_known_cause_out_of_the_outputs_and_in_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (code, base, err) = sample_alerts(d, &[]);
    assert_eq!(code, Some(0), "{err}");
    // Silence the (app, rule) of the first alert that is not new_app.
    let out = detect_sample(d, &["--data", "plain", "--alerts", "plain.ndjson"]);
    assert_eq!(out.status.code(), Some(0));
    let plain = std::fs::read_to_string(d.join("plain.ndjson")).expect("alerts");
    let first: serde_json::Value = plain
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
        .find(|a| a["rule"] != "new_app")
        .expect("an alert");
    let (client, rule) = (
        first["client_id"].as_str().expect("client"),
        first["rule"].as_str().expect("rule"),
    );
    let silenced = plain
        .lines()
        .filter(|l| {
            let a: serde_json::Value = serde_json::from_str(l).expect("json");
            a["client_id"] == client && a["rule"] == rule
        })
        .count();
    assert!(silenced >= 1);
    std::fs::write(
        d.join("silences.toml"),
        format!(
            "[[silence]]\nclient_id = \"{client}\"\nrule = \"{rule}\"\nreason = \"known and accepted\"\nauthor = \"soc\"\nexpires = \"2099-01-01T00:00:00Z\"\n\n\
             [[silence]]\nclient_id = \"{client}\"\nrule = \"new_app\"\nreason = \"old\"\nauthor = \"soc\"\nexpires = \"2020-01-01T00:00:00Z\"\n"
        ),
    )
    .expect("write");
    let out = detect_sample(
        d,
        &[
            "--data",
            "data",
            "--alerts",
            "alerts.ndjson",
            "--summary",
            "summary.json",
            "--silences",
            "silences.toml",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("silences.toml#2") && err.contains("expired"),
        "{err}"
    );
    let emitted = std::fs::read_to_string(d.join("alerts.ndjson")).expect("alerts");
    let expected: Vec<&str> = plain
        .lines()
        .filter(|l| {
            let a: serde_json::Value = serde_json::from_str(l).expect("json");
            !(a["client_id"] == client && a["rule"] == rule)
        })
        .collect();
    assert_eq!(
        emitted.lines().collect::<Vec<_>>(),
        expected,
        "only the silenced records go"
    );
    assert_eq!(base.len(), plain.lines().count());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("summary.json")).expect("summary"))
            .expect("json");
    assert_eq!(
        summary["detection"]["suppressed_alert_records"].as_u64(),
        Some(silenced as u64),
        "{summary}"
    );
    let stored = Command::new(env!("CARGO_BIN_EXE_scopewatch"))
        .current_dir(d)
        .args(["sql", "--data", "data", "--output-format", "csv", "-c"])
        .arg("SELECT count(*) AS n FROM alerts WHERE suppressed_by = 'silences.toml#1'")
        .output()
        .expect("sql");
    assert_eq!(
        String::from_utf8_lossy(&stored.stdout),
        format!("n\n{silenced}\n"),
        "the store keeps the suppressed records"
    );

    let preview = Command::new(env!("CARGO_BIN_EXE_scopewatch"))
        .current_dir(d)
        .args(["silences", "preview", "silences.toml", "--data", "data"])
        .output()
        .expect("preview");
    assert!(
        preview.status.success(),
        "{}",
        String::from_utf8_lossy(&preview.stderr)
    );
    let text = String::from_utf8_lossy(&preview.stdout);
    assert!(
        text.contains(&format!(
            "silences.toml#1: {rule} on {client} — {silenced} alert record(s)"
        )),
        "{text}"
    );
    assert!(text.contains("silences.toml#2 [expired]"), "{text}");

    let check = Command::new(env!("CARGO_BIN_EXE_scopewatch"))
        .current_dir(d)
        .args(["silences", "check", "silences.toml", "--data", "data"])
        .output()
        .expect("check");
    assert_eq!(check.status.code(), Some(1), "a warning: the expired entry");
    assert!(String::from_utf8_lossy(&check.stderr).contains("silences.toml#2: expired"));
}

/// Triage: verdicts on stored alerts land in the `feedback` table, the latest verdict per
/// incident counts in `eval --feedback`, a false positive becomes a valid silence proposal,
/// and an unknown id is refused.
#[test]
fn triage_verdicts_feed_eval_and_propose_silences() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let out = detect_sample(d, &["--data", "data", "--alerts", "alerts.ndjson"]);
    assert_eq!(out.status.code(), Some(0));
    let alerts: Vec<serde_json::Value> = std::fs::read_to_string(d.join("alerts.ndjson"))
        .expect("alerts")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let of_rule = |rule: &str| {
        alerts
            .iter()
            .find(|a| a["rule"] == rule)
            .unwrap_or_else(|| panic!("a {rule} alert"))
            .clone()
    };
    let (gap, app) = (of_rule("enforcement_gap"), of_rule("new_app"));
    let triage = |id: &str, verdict: &str, extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_scopewatch"))
            .current_dir(d)
            .args([
                "triage",
                id,
                "--verdict",
                verdict,
                "--analyst",
                "ana",
                "--data",
                "data",
            ])
            .args(extra)
            .output()
            .expect("triage")
    };
    let tp = triage(
        gap["id"].as_str().expect("id"),
        "true-positive",
        &["--note", "confirmed"],
    );
    assert!(
        tp.status.success(),
        "{}",
        String::from_utf8_lossy(&tp.stderr)
    );
    // By incident id: first a false positive with a silence proposal, then benign (latest).
    let incident = app["incident_id"].as_str().expect("incident");
    let fp = triage(incident, "false-positive", &["--propose-silence", "30"]);
    assert!(
        fp.status.success(),
        "{}",
        String::from_utf8_lossy(&fp.stderr)
    );
    std::fs::write(d.join("proposal.toml"), &fp.stdout).expect("write");
    let check = Command::new(env!("CARGO_BIN_EXE_scopewatch"))
        .current_dir(d)
        .args(["silences", "check", "proposal.toml", "--data", "data"])
        .output()
        .expect("check");
    assert_eq!(
        check.status.code(),
        Some(0),
        "the proposal is valid and matches the stored alert: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert!(triage(incident, "benign", &[]).status.success());

    let eval = Command::new(env!("CARGO_BIN_EXE_scopewatch"))
        .current_dir(d)
        .args(["eval", "--feedback", "data", "--json"])
        .output()
        .expect("eval");
    assert!(
        eval.status.success(),
        "{}",
        String::from_utf8_lossy(&eval.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&eval.stdout).expect("json");
    let rule = |r: &str| {
        rows.as_array()
            .expect("array")
            .iter()
            .find(|x| x["rule"] == r)
            .unwrap_or_else(|| panic!("{r} in {rows}"))
            .clone()
    };
    assert_eq!(rule("enforcement_gap")["verdicts"]["true_positive"], 1);
    assert_eq!(
        rule("new_app")["verdicts"]["benign"],
        1,
        "the latest verdict counts"
    );
    assert_eq!(rule("new_app")["verdicts"]["false_positive"], 0);

    let sql = Command::new(env!("CARGO_BIN_EXE_scopewatch"))
        .current_dir(d)
        .args(["sql", "--data", "data", "--output-format", "csv", "-c"])
        .arg("SELECT count(*) AS n, min(analyst) AS who FROM feedback")
        .output()
        .expect("sql");
    assert_eq!(String::from_utf8_lossy(&sql.stdout), "n,who\n3,ana\n");

    let unknown = triage("deadbeef", "benign", &[]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no alert or incident deadbeef"));
    let injected = triage("x' OR '1'='1", "benign", &[]);
    assert_eq!(injected.status.code(), Some(2));
}

/// Kafka-only outputs without Kafka are refused, never silently ignored.
#[test]
fn kafka_outputs_without_kafka_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sample =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data/events.ndjson.gz");
    for flag in ["--alerts-topic", "--dead-letter-topic"] {
        let out = Command::new(env!("CARGO_BIN_EXE_scopewatch"))
            .current_dir(dir.path())
            .args(["run", "--input"])
            .arg(&sample)
            .args([flag, "t", "--no-history"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{flag}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(flag) && err.contains("--kafka-brokers"),
            "{err}"
        );
    }
}

/// The reference in docs/cli.md is what clap itself says about every command (its long help),
/// so it cannot drift from the code; `SCOPEWATCH_BLESS=1` rewrites it.
#[test]
fn docs_cli_md_matches_the_command_line() {
    const MARKER: &str = "<!-- generated from clap below this line -->\n";
    let mut command = scopewatch::cli::command().term_width(100);
    command.build();
    let mut generated = String::new();
    let mut render = |title: &str, cmd: &mut clap::Command| {
        generated.push_str(&format!(
            "\n## `{title}`\n\n```text\n{}```\n",
            cmd.render_long_help()
        ));
    };
    render("scopewatch", &mut command.clone());
    for sub in command.get_subcommands_mut() {
        let title = format!("scopewatch {}", sub.get_name());
        render(&title, &mut sub.clone().term_width(100));
    }
    let path = "docs/cli.md";
    let text = std::fs::read_to_string(path).expect("docs/cli.md");
    let (head, tail) = text
        .split_once(MARKER)
        .expect("the marker line in docs/cli.md");
    if std::env::var_os("SCOPEWATCH_BLESS").is_some() {
        std::fs::write(path, format!("{head}{MARKER}{generated}")).expect("write");
        return;
    }
    assert!(
        tail == generated,
        "docs/cli.md differs from the command line: SCOPEWATCH_BLESS=1 cargo test --test integration docs_cli"
    );
}

/// Shell completions and man pages come from the command line's definition: every command is
/// in them.
#[test]
fn completions_and_man_pages_name_every_command() {
    let mut command = scopewatch::cli::command();
    command.build();
    let names: Vec<String> = command
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .filter(|name| name != "help")
        .collect();
    assert!(names.len() >= 12, "{names:?}");
    for shell in ["bash", "zsh", "fish"] {
        let out = scopewatch(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        for name in &names {
            assert!(
                script.contains(name.as_str()),
                "{shell} completion lacks {name}"
            );
        }
        assert!(
            script.contains("max-state-bytes"),
            "{shell}: flags are completed"
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().join("man1");
    let out = scopewatch(&["man", "--out-dir", &out_dir.display().to_string()]);
    assert_eq!(out.status.code(), Some(0));
    let page = std::fs::read_to_string(out_dir.join("scopewatch.1")).expect("scopewatch.1");
    assert!(
        page.starts_with(".ie") || page.contains(".TH scopewatch"),
        "{page}"
    );
    for name in &names {
        let page = std::fs::read_to_string(out_dir.join(format!("scopewatch-{name}.1")))
            .unwrap_or_else(|e| panic!("scopewatch-{name}.1: {e}"));
        assert!(page.contains(".TH"), "scopewatch-{name}.1 is a man page");
    }
}

/// Flags renamed so one name means one thing (`--format` → `--alert-format` in detect, …) keep
/// their old spelling for one release, on the command line, in config files and as variables,
/// each time with a warning naming the new one; the new spelling warns of nothing.
#[test]
fn renamed_flags_keep_their_old_spelling_for_a_release_with_a_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("old.toml");
    std::fs::write(&config, "format = \"ocsf\"\nno-history = true\n").expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_scopewatch"))
        .current_dir(dir.path())
        .env("SCOPEWATCH_LATENESS", "300")
        .env_remove("SCOPEWATCH_LATENESS_SECONDS")
        .arg("detect")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data/events.ndjson.gz"))
        .args(["--alerts", "a.ndjson", "--config"])
        .arg(&config)
        .output()
        .expect("detect");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("key `format` of `scopewatch detect` is now `alert-format`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("SCOPEWATCH_LATENESS is now SCOPEWATCH_LATENESS_SECONDS"),
        "{stderr}"
    );
    let alerts = std::fs::read_to_string(dir.path().join("a.ndjson")).expect("alerts");
    let first: serde_json::Value =
        serde_json::from_str(alerts.lines().next().expect("an alert")).expect("json");
    assert_eq!(first["class_uid"], 2004, "the old key still chose OCSF");

    let old = scopewatch(&["rules", "--output", "json"]);
    assert!(old.status.success());
    assert!(String::from_utf8_lossy(&old.stderr)
        .contains("flag `output` of `scopewatch rules` is now `output-format`"));
    let new = scopewatch(&["rules", "--output-format", "json"]);
    assert!(new.status.success());
    assert!(!String::from_utf8_lossy(&new.stderr).contains("warning"));
    assert_eq!(old.stdout, new.stdout, "same catalog either way");
}
