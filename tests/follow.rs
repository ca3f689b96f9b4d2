//! `scopewatch run --follow`: log files followed as they are written, rotated and picked up,
//! with the service killed (SIGKILL) and restarted in the middle — the alerts must be exactly
//! those of `detect` over the same lines, and every line must be in the state once.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::process;
use process::{
    alert_ids, free_port, history_figures, http_get, manifest_path, sample_lines, scopewatch,
    wait_ok,
};

fn follow(dir: &Path, metrics_port: u16) -> Child {
    scopewatch()
        .current_dir(dir)
        .args(["run", "--follow", "--input", "logs", "--state", "state"])
        .args(["--alerts", "alerts.ndjson", "--checkpoint-interval", "1"])
        .args(["--poll-interval-ms", "50", "--data", "data"])
        .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
        .arg("--registry")
        .arg(manifest_path("sample-data/registry.toml"))
        .stderr(Stdio::null())
        .spawn()
        .expect("run --follow")
}

/// Events the live checkpoint holds: processed plus buffered for reordering.
fn events_in_checkpoint(state: &Path) -> u64 {
    match scopewatch::pipeline::StateDir::new(state).load() {
        Ok(Some(c)) => c.engine.stats.events + c.engine.order.pending.len() as u64,
        _ => 0,
    }
}

fn wait_for_checkpoint(state: &Path, events: usize, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while events_in_checkpoint(state) < events as u64 {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the service exited"
        );
        assert!(
            Instant::now() < deadline,
            "no checkpoint with {events} events within 120 s (has {})",
            events_in_checkpoint(state)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn write_lines(out: &mut std::fs::File, lines: &[String]) {
    for l in lines {
        writeln!(out, "{l}").expect("write");
    }
    out.flush().expect("flush");
}

/// Alert ids of `detect --state` over all the lines as one file (no --flush: the service
/// never ends the stream either).
fn detect_ids(dir: &Path, lines: &[String]) -> BTreeSet<String> {
    let all = dir.join("all.ndjson");
    let mut f = std::fs::File::create(&all).expect("create");
    write_lines(&mut f, lines);
    let status = scopewatch()
        .current_dir(dir)
        .arg("detect")
        .arg(&all)
        .args(["--state", "detect-state", "--data", "detect-data"])
        .args(["--alerts", "detect.ndjson"])
        .arg("--registry")
        .arg(manifest_path("sample-data/registry.toml"))
        .stderr(Stdio::null())
        .status()
        .expect("detect");
    assert!(status.success());
    let set: BTreeSet<String> = alert_ids(&dir.join("detect.ndjson")).into_iter().collect();
    assert!(set.len() > 20, "the sample data has alerts");
    set
}

#[test]
fn followed_rotated_and_restarted_files_give_the_alerts_of_detect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("mkdir");
    let state = dir.path().join("state");
    let lines = sample_lines();
    let n = lines.len();
    let (c1, c2, c3) = (n / 4, n / 2, 3 * n / 4);
    let port = free_port();
    let mut child = follow(dir.path(), port);

    // First quarter, written in three pieces cut mid-line: a line is read only once whole.
    let live = logs.join("events.ndjson");
    let mut writer = std::fs::File::create(&live).expect("create");
    let text: String = lines[..c1].iter().map(|l| format!("{l}\n")).collect();
    let cuts = [0, text.len() / 3 + 7, 2 * text.len() / 3 + 11, text.len()];
    for w in cuts.windows(2) {
        writer
            .write_all(&text.as_bytes()[w[0]..w[1]])
            .expect("write");
        writer.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(300));
    }
    wait_for_checkpoint(&state, c1, &mut child);
    // Metrics are refreshed once a second.
    let expected = format!(
        "scopewatch_records_accepted_total{{source=\"{}\"}} {c1}\n",
        Path::new("logs").join("events.ndjson").display()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut metrics = http_get(port, "/metrics");
    while !metrics.contains(&expected) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        metrics = http_get(port, "/metrics");
    }
    assert!(metrics.contains(&expected), "{metrics}");
    assert!(http_get(port, "/readyz").starts_with("HTTP/1.1 200"));

    // Rotation: the file is renamed away, its writer adds the second quarter to it, then a
    // new file takes the name.
    std::fs::rename(&live, logs.join("events.ndjson.1")).expect("rotate");
    write_lines(&mut writer, &lines[c1..c2]);
    wait_for_checkpoint(&state, c2, &mut child);
    let mut writer = std::fs::File::create(&live).expect("create the new file");
    write_lines(&mut writer, &lines[c2..c3]);
    wait_for_checkpoint(&state, c3, &mut child);

    // The last quarter lands in a new file of the directory, in eight pieces; the service is
    // killed after the fourth (mid-stream: half of it is not written yet) and restarted.
    let mut later = std::fs::File::create(logs.join("later.ndjson")).expect("create");
    let pieces: Vec<&[String]> = lines[c3..].chunks((n - c3).div_ceil(8)).collect();
    for piece in &pieces[..4] {
        write_lines(&mut later, piece);
        std::thread::sleep(Duration::from_millis(150));
    }
    child.kill().expect("kill -9");
    let _ = child.wait();
    let at_kill = events_in_checkpoint(&state);
    assert!(at_kill >= c3 as u64 && at_kill < n as u64, "{at_kill}");
    let mut child = follow(dir.path(), port);
    for piece in &pieces[4..] {
        write_lines(&mut later, piece);
        std::thread::sleep(Duration::from_millis(150));
    }
    wait_for_checkpoint(&state, n, &mut child);
    // SIGTERM: checkpoint and exit 0.
    let pid = child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    wait_ok(child, "run --follow after SIGTERM");

    assert_eq!(
        events_in_checkpoint(&state),
        n as u64,
        "every line is in the state exactly once"
    );
    let ids: BTreeSet<String> = alert_ids(&dir.path().join("alerts.ndjson"))
        .into_iter()
        .collect();
    assert_eq!(
        ids,
        detect_ids(dir.path(), &lines),
        "the same alerts as detect over the same lines"
    );
    // The history store has every line and alert once, despite the kill and the lines and
    // alerts written again after it, and the access rows know their tokens' grants as
    // detect's do (tokens issued before the restart included).
    let streamed = history_figures(dir.path(), "data");
    assert_eq!(streamed, history_figures(dir.path(), "detect-data"));
    assert_eq!(streamed.access + streamed.tokens, n as u64, "{streamed:?}");
    assert_eq!(streamed.alerts, streamed.alert_ids, "no alert twice");
    assert_eq!(streamed.alerts, ids.len() as u64);
}

#[test]
fn follow_needs_a_state_directory_and_refuses_stdin() {
    let out = scopewatch()
        .args(["run", "--follow", "--input", "logs"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--state"), "{err}");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = scopewatch()
        .current_dir(dir.path())
        .args(["run", "--follow", "--input", "-", "--state", "s"])
        .output()
        .expect("run");
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stdin cannot be followed"), "{err}");
}

#[test]
fn a_catch_up_run_over_a_token_log_and_an_access_log_gives_the_alerts_of_detect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("mkdir");
    let lines = sample_lines();
    let (tokens, access): (Vec<String>, Vec<String>) = lines
        .iter()
        .cloned()
        .partition(|l| l.contains(r#""type":"token""#));
    assert!(!tokens.is_empty() && !access.is_empty());
    write_lines(
        &mut std::fs::File::create(logs.join("a-tokens.ndjson")).expect("create"),
        &tokens,
    );
    write_lines(
        &mut std::fs::File::create(logs.join("b-access.ndjson")).expect("create"),
        &access,
    );
    let registry = manifest_path("sample-data/registry.toml");
    let run = scopewatch()
        .current_dir(dir.path())
        .args(["run", "--follow", "--exit-at-end", "--input", "logs"])
        .args([
            "--state",
            "state",
            "--alerts",
            "followed.ndjson",
            "--no-history",
        ])
        .arg("--registry")
        .arg(&registry)
        .stderr(Stdio::null())
        .status()
        .expect("run --follow --exit-at-end");
    assert!(run.success());
    let detect = scopewatch()
        .current_dir(dir.path())
        .args([
            "detect",
            "logs",
            "--alerts",
            "detected.ndjson",
            "--no-history",
        ])
        .arg("--registry")
        .arg(&registry)
        .stderr(Stdio::null())
        .status()
        .expect("detect");
    assert!(detect.success());
    let followed = alert_ids(&dir.path().join("followed.ndjson"));
    let detected = alert_ids(&dir.path().join("detected.ndjson"));
    assert!(detected.len() > 20, "the sample data has alerts");
    assert_eq!(followed, detected, "same alerts, same order");
    assert_eq!(
        events_in_checkpoint(&dir.path().join("state")),
        lines.len() as u64
    );
}

/// A service stopped by SIGTERM after its final checkpoint exits 0 even though it
/// dead-lettered a record: the dead letter is in the summary and the metrics, not in the
/// exit code (systemd would mark the unit failed). While it runs, /readyz says ready.
#[test]
fn sigterm_after_dead_letters_exits_0_with_the_counts_in_the_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("mkdir");
    let mut lines = sample_lines();
    lines.truncate(50);
    lines.push("{not json".into());
    let mut f = std::fs::File::create(logs.join("events.ndjson")).expect("create");
    write_lines(&mut f, &lines);
    let port = free_port();
    let mut child = scopewatch()
        .current_dir(dir.path())
        .args(["run", "--follow", "--input", "logs", "--state", "state"])
        .args(["--alerts", "alerts.ndjson", "--checkpoint-interval", "1"])
        .args(["--poll-interval-ms", "50", "--no-history"])
        .args(["--summary", "summary.json"])
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
        .stderr(Stdio::null())
        .spawn()
        .expect("run --follow");
    wait_for_checkpoint(&dir.path().join("state"), 50, &mut child);
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let m = http_get(port, "/metrics");
        if m.contains("scopewatch_records_dead_lettered_total{source=") || Instant::now() > deadline
        {
            break m;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("scopewatch_records_dead_lettered_total{") && l.ends_with(" 1")),
        "{metrics}"
    );
    let ready = http_get(port, "/readyz");
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "a clean stop of a service exits 0");
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("summary.json")).expect("summary"),
    )
    .expect("json");
    assert_eq!(
        summary["ingest"]["totals"]["dead_lettered"].as_u64(),
        Some(1),
        "{summary}"
    );
}
