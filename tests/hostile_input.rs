//! Issue #16, hostile input: each reproduction of the hardening issue, through the CLI, now
//! gives a clear error or correct processing.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn scopewatch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scopewatch"))
}

fn run_in(dir: &Path, args: &[&str]) -> Output {
    scopewatch()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run scopewatch")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn summary(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).expect("summary"))
        .expect("summary json")
}

fn alerts(dir: &Path, name: &str) -> Vec<Value> {
    std::fs::read_to_string(dir.join(name))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("alert"))
        .collect()
}

const TOKEN: &str = r#"{"type":"token","event":"issued","time":"2024-03-05T09:00:00Z","client_id":"chart","token_id":"t1","scope_granted":"launch/patient patient/Observation.rs","patient":"p1","expires_in":3600}"#;

/// #16.2: format sniffing by structure. A canonical access event whose client-controlled
/// values (URL, user agent) hold `realmId=` / `"realmId"` is still the access event it is, so
/// its gap is alerted instead of being skipped as an unrecognised Keycloak record.
#[test]
fn values_holding_keycloak_markers_do_not_change_the_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let access = r#"{"type":"access","time":"2024-03-05T09:05:00Z","client_id":"chart","token_id":"t1","method":"GET","url":"Condition?patient=p1&x=realmId=evil","status":200,"user_agent":"{\"realmId\":\"evil\"}"}"#;
    std::fs::write(
        dir.path().join("events.ndjson"),
        format!("{TOKEN}\n{access}\n"),
    )
    .expect("write");
    let out = run_in(
        dir.path(),
        &[
            "detect",
            "--no-history",
            "--summary",
            "summary.json",
            "--alerts",
            "alerts.ndjson",
            "events.ndjson",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(summary(dir.path())["ingest"]["totals"]["accepted"], 2);
    let gap = alerts(dir.path(), "alerts.ndjson")
        .into_iter()
        .any(|a| a["client_id"] == "chart" && a["rule"] == "enforcement_gap");
    assert!(gap, "the Condition read is a gap");
}

/// #16.1: the dead-letter file is never read back. A second `detect .` in a log directory that
/// holds the first run's dead letters (the default name ends in `.ndjson`) lists it as this
/// run's own output and reads exactly the logs, so it ends and its counts add up.
#[test]
fn a_run_never_reads_its_own_outputs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = "not json\n".repeat(50);
    std::fs::write(dir.path().join("events.ndjson"), format!("{TOKEN}\n{bad}")).expect("write");
    let args = [
        "detect",
        "--no-history",
        "--summary",
        "summary.json",
        "--alerts",
        "alerts.ndjson",
        ".",
    ];
    for run in 0..2 {
        let out = run_in(dir.path(), &args);
        assert_eq!(out.status.code(), Some(1), "run {run}: {}", stderr(&out));
        let s = summary(dir.path());
        assert_eq!(s["ingest"]["totals"]["read"], 51, "run {run}: {s}");
        if run == 1 {
            let skipped = s["ingest"]["skipped_files"].to_string();
            assert!(
                skipped.contains("scopewatch-dead-letter.ndjson"),
                "{skipped}"
            );
            assert!(skipped.contains("an output of this run"), "{skipped}");
            assert!(skipped.contains("alerts.ndjson"), "{skipped}");
        }
    }
    let dead = std::fs::read_to_string(dir.path().join("scopewatch-dead-letter.ndjson"))
        .expect("dead letters");
    assert_eq!(
        dead.lines().count(),
        50,
        "the second run's own, not fed back"
    );
    // An input inside a directory the run writes would have every log skipped: refused.
    std::fs::create_dir(dir.path().join("logs")).expect("mkdir");
    std::fs::write(dir.path().join("logs/e.ndjson"), format!("{TOKEN}\n")).expect("write");
    let out = run_in(dir.path(), &["detect", "--data", "logs", "logs/e.ndjson"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("a directory this run writes"),
        "{}",
        stderr(&out)
    );
}

/// Canonical access lines of one app, `n` of them.
fn access_lines(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                r#"{{"type":"access","time":"2024-03-05T09:{:02}:{:02}Z","client_id":"chart","token_id":"t1","method":"GET","url":"Observation?patient=p1&_count={i}","status":200}}"#,
                (i / 60) % 60,
                i % 60
            ) + "\n"
        })
        .collect()
}

/// #16.3: a FIFO (and so a process substitution) is read once, whole: no look-ahead eats its
/// first 256 KiB, no second open waits for a writer that has gone.
#[cfg(unix)]
#[test]
fn a_fifo_is_read_once_and_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!("{TOKEN}\n{}", access_lines(3000));
    std::fs::write(dir.path().join("events.ndjson"), &text).expect("write");
    let fifo = dir.path().join("pipe");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let writer = Command::new("sh")
        .arg("-c")
        .arg("cat events.ndjson > pipe")
        .current_dir(dir.path())
        .spawn()
        .expect("writer");
    let out = run_in(
        dir.path(),
        &[
            "detect",
            "--no-history",
            "--summary",
            "summary.json",
            "--alerts",
            "alerts.ndjson",
            "pipe",
        ],
    );
    let _ = { writer }.wait();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.len() > 256 * 1024);
    assert_eq!(summary(dir.path())["ingest"]["totals"]["accepted"], 3001);
}

/// #16.3: a device never ends and holds no log: refused before anything is read.
#[cfg(unix)]
#[test]
fn a_device_is_refused_with_a_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_in(dir.path(), &["detect", "--no-history", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is a device"), "{}", stderr(&out));
    let out = run_in(
        dir.path(),
        &[
            "run",
            "--follow",
            "--state",
            "s",
            "--no-history",
            "--input",
            "/dev/zero",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot be followed"),
        "{}",
        stderr(&out)
    );
}

/// #16.4: two symbolic-link loops under a followed directory are walked once each: the
/// catch-up run ends with the one log read, and lists the loops as skipped.
#[cfg(unix)]
#[test]
fn symlink_loops_do_not_hang_a_followed_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(logs.join("sub")).expect("mkdir");
    std::fs::write(
        logs.join("events.ndjson"),
        format!("{TOKEN}\n{}", access_lines(10)),
    )
    .expect("write");
    std::os::unix::fs::symlink("..", logs.join("sub/up")).expect("link");
    std::os::unix::fs::symlink(".", logs.join("here")).expect("link");
    let mut child = scopewatch()
        .current_dir(dir.path())
        .args([
            "run",
            "--follow",
            "--exit-at-end",
            "--no-history",
            "--state",
            "s",
        ])
        .args([
            "--alerts",
            "alerts.ndjson",
            "--summary",
            "summary.json",
            "--input",
            "logs",
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(60) {
            let _ = child.kill();
            panic!("run --follow did not end over two symlink loops");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success());
    let s = summary(dir.path());
    assert_eq!(s["ingest"]["totals"]["accepted"], 11, "{s}");
    assert!(s.to_string().contains("already walked"), "{s}");
}

/// #16.5: one event dated 9999-12-31 is dead-lettered (`time_out_of_window`), never moves the
/// frontier: the events after it, seconds out of order, are read, and a run continuing from
/// the checkpoint accepts the next day's events. Times no format can mean (gateway `1e300`,
/// `NaN`, `-inf`; Keycloak `time` at the ends of i64) are rejected as values.
#[test]
fn a_far_future_event_cannot_poison_the_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let future = r#"{"type":"access","time":"9999-12-31T23:59:59Z","client_id":"chart","token_id":"t1","method":"GET","url":"Observation?patient=p1","status":200}"#;
    let later = r#"{"type":"access","time":"2024-03-05T09:10:00Z","client_id":"chart","token_id":"t1","method":"GET","url":"Observation?patient=p1","status":200}"#;
    let earlier = r#"{"type":"access","time":"2024-03-05T09:09:57Z","client_id":"chart","token_id":"t1","method":"GET","url":"Observation?patient=p1","status":200}"#;
    std::fs::write(
        dir.path().join("a.ndjson"),
        format!("{TOKEN}\n{future}\n{later}\n{earlier}\n"),
    )
    .expect("write");
    let args = |input: &'static str| {
        [
            "detect",
            "--no-history",
            "--state",
            "s",
            "--flush",
            "--summary",
            "summary.json",
            "--alerts",
            "alerts.ndjson",
            input,
        ]
    };
    let out = run_in(dir.path(), &args("a.ndjson"));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let s = summary(dir.path());
    assert_eq!(s["ingest"]["totals"]["late"], 1, "{s}");
    let dead =
        std::fs::read_to_string(dir.path().join("scopewatch-dead-letter.ndjson")).expect("dead");
    assert!(
        dead.contains("time_out_of_window") && dead.contains("ahead of the clock"),
        "{dead}"
    );

    let next_day = later.replace("2024-03-05", "2024-03-06");
    std::fs::write(dir.path().join("b.ndjson"), format!("{next_day}\n")).expect("write");
    let out = run_in(dir.path(), &args("b.ndjson"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(summary(dir.path())["ingest"]["totals"]["late"], 0);

    for (value, why) in [
        ("1e300", "outside the years"),
        ("NaN", "not a finite"),
        ("-inf", "not a finite"),
    ] {
        std::fs::write(
            dir.path().join("gw.log"),
            format!(r#"{{"msec":"{value}","request_method":"GET","request_uri":"/fhir/Patient","status":"200","client_id":"x"}}"#) + "\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("map.toml"),
            "time_format = \"epoch_s\"\n[fields]\ntime = \"msec\"\nclient_id = \"client_id\"\nmethod = \"request_method\"\nurl = \"request_uri\"\nstatus = \"status\"\n",
        )
        .expect("write");
        let out = run_in(dir.path(), &["validate", "--mapping", "map.toml", "gw.log"]);
        let dead = String::from_utf8_lossy(&out.stdout);
        assert!(dead.contains(why), "{value}: {dead}");
    }
    let kc = r#"{"time":-9223372036854775808,"type":"CLIENT_LOGIN","realmId":"r","clientId":"x","details":{"token_id":"a","scope":"system/*.rs"}}"#;
    std::fs::write(dir.path().join("kc.log"), format!("{kc}\n")).expect("write");
    let out = run_in(dir.path(), &["validate", "keycloak:kc.log"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("outside the years"));
}

/// #16.7: a second writer on one `--state` directory is refused with a message while the
/// first runs, so neither run's checkpoint is silently lost.
#[test]
fn a_state_directory_has_one_writer() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("logs")).expect("mkdir");
    std::fs::write(dir.path().join("logs/events.ndjson"), format!("{TOKEN}\n")).expect("write");
    let mut follower = scopewatch()
        .current_dir(dir.path())
        .args([
            "run",
            "--follow",
            "--no-history",
            "--state",
            "s",
            "--alerts",
            "a.ndjson",
            "--input",
            "logs",
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let started = std::time::Instant::now();
    while !dir.path().join("s/LOCK").exists() && started.elapsed().as_secs() < 30 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = run_in(
        dir.path(),
        &["detect", "--no-history", "--state", "s", "logs"],
    );
    let _ = follower.kill();
    let _ = follower.wait();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("in use by another scopewatch run"),
        "{}",
        stderr(&out)
    );
    let out = run_in(
        dir.path(),
        &[
            "detect",
            "--no-history",
            "--state",
            "s",
            "--alerts",
            "b.ndjson",
            "logs",
        ],
    );
    assert!(
        out.status.success(),
        "the lock dies with its holder: {}",
        stderr(&out)
    );
}

/// #16.8: patient ids never reach alert evidence or a pseudonymised store through a query
/// parameter *name* (`Condition?PHIA06`, `Condition?patient%3DPHIA03`), a patient `user` or a
/// source address; PHI files are created owner-only.
#[test]
fn identifiers_in_odd_places_are_masked_or_pseudonymised() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = r#"{"type":"token","event":"issued","time":"2024-03-05T09:00:00Z","client_id":"portal","token_id":"t9","scope_granted":"launch/patient patient/Observation.rs","patient":"PHIA06","user":"Patient/PHIA06","source_ip":"203.0.113.77","expires_in":3600}"#;
    let reads = ["Condition?PHIA06", "Condition?patient%3DPHIA03"].map(|url| {
        format!(
            r#"{{"type":"access","time":"2024-03-05T09:05:00Z","client_id":"portal","token_id":"t9","method":"GET","url":"{url}","status":200,"user":"Patient/PHIA06","source_ip":"203.0.113.77"}}"#
        )
    });
    std::fs::write(
        dir.path().join("e.ndjson"),
        format!("{token}\n{}\n{}\n", reads[0], reads[1]),
    )
    .expect("write");
    let out = scopewatch()
        .current_dir(dir.path())
        .env("SW_KEY", "a-test-key-of-at-least-16-bytes")
        .args([
            "detect",
            "--data",
            "data",
            "--alerts",
            "alerts.ndjson",
            "--pseudonymize-key-env",
            "SW_KEY",
            "e.ndjson",
        ])
        .output()
        .expect("detect");
    assert!(out.status.success(), "{}", stderr(&out));
    let alerts = std::fs::read_to_string(dir.path().join("alerts.ndjson")).expect("alerts");
    assert!(alerts.contains("enforcement_gap"), "{alerts}");
    assert!(!alerts.contains("PHIA"), "{alerts}");
    let sql = scopewatch()
        .current_dir(dir.path())
        .env("SW_KEY", "a-test-key-of-at-least-16-bytes")
        .args(["sql", "--data", "data", "--pseudonymize-key-env", "SW_KEY", "--output-format", "csv", "-c"])
        .arg("SELECT url, \"user\", source_ip FROM access UNION ALL SELECT '', \"user\", source_ip FROM tokens")
        .output()
        .expect("sql");
    let rows = String::from_utf8_lossy(&sql.stdout);
    assert_eq!(rows.lines().count(), 4, "{rows}");
    assert!(
        !rows.contains("PHIA") && !rows.contains("203.0.113"),
        "{rows}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for path in ["alerts.ndjson", "data"] {
            let mode = std::fs::metadata(dir.path().join(path))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{path} is {mode:o}");
        }
    }
}

/// Dead-letter records written by `validate` to stdout.
fn validate(dir: &Path, input: &str) -> (Value, Vec<Value>) {
    let out = run_in(dir, &["validate", "--summary", "summary.json", input]);
    let dead = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("dead letter"))
        .collect();
    (summary(dir), dead)
}

/// #16.10: a byte order mark before the first line is not an error; a key given twice is
/// rejected in a pretty-printed document as on a line; one bad entry of a Bundle is
/// dead-lettered alone, its valid entries kept.
#[test]
fn small_hostile_shapes_are_read_correctly() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("bom.ndjson"), format!("\u{feff}{TOKEN}\n")).expect("write");
    let (s, dead) = validate(dir.path(), "bom.ndjson");
    assert_eq!(
        (s["totals"]["accepted"].as_u64(), dead.len()),
        (Some(1), 0),
        "{s}"
    );

    let doc = "{\n  \"type\": \"token\", \"event\": \"issued\", \"time\": \"2024-03-05T09:00:00Z\",\n  \"client_id\": \"a\", \"client_id\": \"b\"\n}\n";
    std::fs::write(dir.path().join("doc.json"), doc).expect("write");
    let (_, dead) = validate(dir.path(), "doc.json");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["kind"], "duplicate_field", "{dead:?}");

    let entry = |recorded: &str| {
        format!(
            r#"{{"resource":{{"resourceType":"AuditEvent","type":{{"code":"rest"}},"subtype":[{{"system":"http://hl7.org/fhir/restful-interaction","code":"read"}}],"recorded":{recorded},"agent":[{{"type":{{"coding":[{{"code":"110150"}}]}},"who":{{"identifier":{{"value":"app"}}}}}}],"entity":[{{"what":{{"reference":"Observation/o1"}}}}]}}}}"#
        )
    };
    let bundle = format!(
        r#"{{"resourceType":"Bundle","type":"collection","entry":[{},{},{}]}}"#,
        entry("\"2024-03-05T09:00:00Z\""),
        entry("5"),
        entry("\"2024-03-05T09:00:01Z\"")
    );
    std::fs::write(dir.path().join("bundle.ndjson"), bundle + "\n").expect("write");
    let (s, dead) = validate(dir.path(), "auditevent:bundle.ndjson");
    assert_eq!(s["totals"]["accepted"], 2, "{s}");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(
        dead[0]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("Bundle entry 2:")),
        "{dead:?}"
    );
}

/// #16.6: documents are decoded element by element without unbounded recursion: arrays nested
/// 100 000 deep are one reject (not a stack overflow), and a Bundle whose `resourceType` is
/// given twice is read as serde reads it (the last one wins: one AuditEvent, not entries).
#[test]
fn hostile_documents_are_rejected_not_crashed_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let depth = 100_000;
    let deep = format!("[\n{}{}\n", "[".repeat(depth - 1), "]".repeat(depth));
    std::fs::write(dir.path().join("deep.json"), deep).expect("write");
    let (s, dead) = validate(dir.path(), "auditevent:deep.json");
    assert_eq!(s["totals"]["read"], 1, "{s}");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["kind"], "invalid_json", "{dead:?}");

    let twice = "{\n  \"resourceType\": \"Bundle\",\n  \"entry\": [{\"resource\": {}}],\n  \"resourceType\": \"OperationOutcome\"\n}\n";
    std::fs::write(dir.path().join("twice.json"), twice).expect("write");
    let (s, dead) = validate(dir.path(), "twice.json");
    assert_eq!(dead.len(), 0, "{dead:?}");
    assert_eq!(
        s["totals"]["skipped"], 1,
        "one OperationOutcome, skipped: {s}"
    );
}

/// #16.9: `sql` runs within `--memory-limit`: an aggregation over 3 M generated rows spills
/// and answers correctly in 8 MiB; an operator that cannot spill stops the query with a clear
/// "Resources exhausted" error and exit 2, never the host.
#[test]
fn sql_keeps_to_its_memory_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("data")).expect("mkdir");
    let sql = |limit: &str, query: &str| {
        run_in(
            dir.path(),
            &[
                "sql",
                "--data",
                "data",
                "--output-format",
                "csv",
                "--memory-limit",
                limit,
                "-c",
                query,
            ],
        )
    };
    let out = sql(
        "8M",
        "SELECT count(*) AS n, max(k) AS m FROM (SELECT value % 700000 AS k, count(*) AS c FROM generate_series(1, 3000000) GROUP BY value % 700000)",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "n,m\n700000,699999"
    );
    let out = sql(
        "2M",
        "SELECT value FROM generate_series(1, 2000000) ORDER BY value DESC LIMIT 1 OFFSET 1999998",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("Resources exhausted"),
        "{}",
        stderr(&out)
    );
    let out = sql("12Q", "SELECT 1");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("512M or 2G"), "{}", stderr(&out));
}

/// #16.9: memory bounded by sizes and counts, not by what a client sends: a 1 MB scope string
/// or URL is dead-lettered naming its field; the events of new apps beyond `--max-apps` are
/// dead-lettered as `over_limit` while the apps already watched go on.
#[test]
fn oversized_fields_and_too_many_apps_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let huge = "patient/Observation.rs ".repeat(40_000);
    let token = TOKEN.replace("launch/patient patient/Observation.rs", huge.trim());
    let url = format!("Observation?code={}", "x".repeat(20_000));
    let access = format!(
        r#"{{"type":"access","time":"2024-03-05T09:05:00Z","client_id":"chart","method":"GET","url":"{url}","status":200}}"#
    );
    let apps: String = (0..5)
        .map(|i| {
            format!(
                r#"{{"type":"access","time":"2024-03-05T09:1{i}:00Z","client_id":"app-{i}","method":"GET","url":"metadata","status":200}}"#
            ) + "\n"
        })
        .collect();
    std::fs::write(
        dir.path().join("e.ndjson"),
        format!("{token}\n{access}\n{apps}"),
    )
    .expect("write");
    let out = run_in(
        dir.path(),
        &[
            "detect",
            "--no-history",
            "--max-apps",
            "3",
            "--summary",
            "summary.json",
            "--alerts",
            "a.ndjson",
            "e.ndjson",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let dead =
        std::fs::read_to_string(dir.path().join("scopewatch-dead-letter.ndjson")).expect("dead");
    let reasons: Vec<Value> = dead
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let reason = |i: usize| {
        reasons[i]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(reasons.len(), 4, "{dead}");
    assert!(
        reason(0).starts_with("field scope_granted is"),
        "{}",
        reason(0)
    );
    assert!(reason(1).starts_with("field url is"), "{}", reason(1));
    assert_eq!(reasons[2]["kind"], "over_limit");
    assert!(reason(2).contains("--max-apps"));
    let s = summary(dir.path());
    assert_eq!(s["detection"]["apps"], 3, "{s}");
}

/// #16 (one byte budget): `--max-state-bytes` bounds the state in bytes, not only in counts.
/// 2 000 live tokens with 12 KiB grants (distinct custom scopes) stay within a 16 MiB budget
/// by evicting the soonest to expire; the run goes on, and the summary says where the state
/// stands. The same input under the default budget evicts nothing.
#[test]
fn the_state_keeps_to_its_byte_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lines: String = (0..2_000)
        .map(|i| {
            let custom: Vec<String> = (0..400).map(|k| format!("__x{i}_{k}")).collect();
            format!(
                r#"{{"type":"token","event":"issued","time":"2024-03-05T09:{:02}:{:02}Z","client_id":"chart","token_id":"t{i}","scope_granted":"patient/Observation.rs {}","expires_in":3600}}"#,
                i / 60 % 60,
                i % 60,
                custom.join(" ")
            ) + "\n"
        })
        .collect();
    std::fs::write(dir.path().join("e.ndjson"), lines).expect("write");
    let run = |budget: Option<&str>| {
        let mut args = vec!["detect", "--no-history", "--state", "st"];
        args.extend([
            "--summary",
            "summary.json",
            "--alerts",
            "a.ndjson",
            "e.ndjson",
        ]);
        if let Some(b) = budget {
            args.extend(["--max-state-bytes", b]);
        }
        let _ = std::fs::remove_dir_all(dir.path().join("st"));
        let out = run_in(dir.path(), &args);
        assert!(out.status.success(), "{}", stderr(&out));
        summary(dir.path())["detection"]["state_budget"].clone()
    };
    let tight = run(Some("16M"));
    assert_eq!(tight["max_state_bytes"], 16 << 20, "{tight}");
    assert!(tight["tokens_evicted_early"].as_u64() > Some(0), "{tight}");
    assert!(tight["token_bytes"].as_u64() <= Some(4 << 20), "{tight}");
    let roomy = run(None);
    assert_eq!(roomy["tokens_evicted_early"], 0, "{roomy}");
    assert!(roomy["token_bytes"].as_u64() > Some(4 << 20), "{roomy}");
}
