//! End-to-end `detect` throughput and memory over simulated data.
//!
//! Run: `cargo bench --bench detect` (default 5 M events, then twice the events from the same
//! apps over twice the days; each size without and with
//! the Parquet history store that `detect` writes by default), or
//! `cargo bench --bench detect -- 1000000` for another size. For each size it writes the
//! simulated events to a temporary NDJSON file, then runs a child process that ingests the file
//! and drives the detection core exactly as `scopewatch detect` does, and prints events/s and
//! the child's peak RSS (VmHWM), so generation never inflates the figure.
//!
//! At each size DuckDB (`pip install duckdb`; `benches/detect_duckdb.py`) then runs the hourly
//! per-app aggregation over the same NDJSON, and the bench prints detect's rate with the history
//! store on over DuckDB's (issue #18's goal: at least 2.0).
//!
//! Then, at the base size, the same traffic as the logs operators have (issue #15): tokens as
//! Keycloak events and accesses as IHE BALP AuditEvents (tests/support/convert.rs), read with
//! per-input formats; it prints that run's events/s and its wall-time ratio to the canonical
//! run (goal: at most 1.5).

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use scopewatch::detect::{Engine, EngineConfig};
use scopewatch::event::Event;
use scopewatch::ingest::{DeadLetterWriter, IngestOptions, Ingestor, InputFormat, Source};
use scopewatch::pipeline::replay;
use scopewatch::registry::Registry;
use scopewatch::sql::history::HistoryWriter;

mod simulated;
use simulated::peak_rss_mb;
#[path = "../tests/support/convert.rs"]
mod convert;

const CHILD_ENV: &str = "SCOPEWATCH_BENCH_INPUT";
const HISTORY_ENV: &str = "SCOPEWATCH_BENCH_HISTORY";

/// Child: detect over the file exactly as `scopewatch detect` does (reader thread + engine
/// through `pipeline::replay`), print one result line.
fn measure(inputs: &str) {
    let mut engine = Engine::new(EngineConfig::default(), Registry::default());
    let (sources, options) = sources_of(inputs);
    let ingestor = Ingestor::new(options, DeadLetterWriter::new(Box::new(std::io::sink())));
    let mut emitted = 0usize;
    // With a history directory the run also writes the Parquet history store, as
    // `scopewatch detect` does by default.
    let history_dir = std::env::var(HISTORY_ENV).ok();
    let mut history = history_dir
        .as_deref()
        .map(|d| HistoryWriter::new(std::path::Path::new(d), "bench", None));
    let mut tap = |e: &Event| match history.as_mut() {
        Some(h) => h.add(e).map_err(|e| e.to_string()),
        None => Ok(()),
    };
    let started = Instant::now();
    let (ingestor, late) = replay(
        &sources,
        ingestor,
        &mut engine,
        300,
        Some(&mut tap),
        &mut |alerts| {
            emitted += alerts.len();
            Ok(())
        },
        &mut |_| {},
    )
    .expect("replay");
    let mut alerts = Vec::new();
    engine.finish(&mut alerts);
    emitted += alerts.len();
    if let Some(h) = history.as_mut() {
        h.finish().expect("history");
    }
    let secs = started.elapsed().as_secs_f64();
    let summary = ingestor.finish().expect("finish");
    let events = summary.totals.accepted;
    println!(
        "detect{}{}: {events} events, {:.1} MB in {secs:.3} s = {:.0} events/s, {:.1} MB/s; {} apps, {emitted} alert records, {late} late; peak RSS {:.0} MB",
        if history_dir.is_some() { " + history" } else { "" },
        if sources.len() > 1 { " (Keycloak + BALP AuditEvent)" } else { "" },
        summary.totals.bytes as f64 / 1e6,
        events as f64 / secs,
        summary.totals.bytes as f64 / 1e6 / secs,
        engine.baselines().apps.len(),
        peak_rss_mb()
    );
}

/// The child's inputs: paths separated by newlines, each `keycloak:` or `auditevent:` prefixed
/// or canonical.
fn sources_of(inputs: &str) -> (Vec<Source>, IngestOptions) {
    let mut options = IngestOptions::default();
    let sources = inputs
        .lines()
        .map(|input| {
            let (format, path) = match input.split_once(':') {
                Some(("keycloak", p)) => (Some(InputFormat::Keycloak), p),
                Some(("auditevent", p)) => (Some(InputFormat::AuditEvent), p),
                _ => (None, input),
            };
            let source = Source::File(path.into());
            if let Some(format) = format {
                options.formats.insert(source.clone(), format);
            }
            source
        })
        .collect();
    (sources, options)
}

/// Writes the canonical NDJSON at `path` again as a Keycloak log and a BALP AuditEvent log.
fn convert_to_operator_formats(path: &Path, keycloak: &Path, balp: &Path) {
    let input = BufReader::new(std::fs::File::open(path).expect("open"));
    let mut kc = BufWriter::new(std::fs::File::create(keycloak).expect("create"));
    let mut ae = BufWriter::new(std::fs::File::create(balp).expect("create"));
    for line in input.lines() {
        let line = line.expect("read");
        let event: serde_json::Value = serde_json::from_str(&line).expect("json");
        if event["type"] == "token" {
            if let Some(l) = convert::token_to_keycloak(&event) {
                writeln!(kc, "{l}").expect("write");
            }
        } else {
            for l in convert::access_to_balp(&event) {
                writeln!(ae, "{l}").expect("write");
            }
        }
    }
    kc.flush().expect("flush");
    ae.flush().expect("flush");
}

/// Runs the child over `inputs`, prints its line and returns its wall seconds.
fn run_child(inputs: &str, history: Option<&Path>) -> f64 {
    let mut child = Command::new(std::env::current_exe().expect("exe"));
    child.env(CHILD_ENV, inputs);
    if let Some(history) = history {
        child.env(HISTORY_ENV, history);
    }
    let out = child.output().expect("child");
    assert!(out.status.success());
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    println!("{line}");
    line.split(" in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|s| s.parse().ok())
        .expect("seconds in the child's line")
}

/// Runs DuckDB's hourly per-app aggregation over the same NDJSON (`benches/detect_duckdb.py`)
/// and prints its rate, its peak RSS and detect's (history on) rate over DuckDB's.
fn compare_with_duckdb(path: &Path, events: u64, detect_secs: f64) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/detect_duckdb.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(path)
        .output()
        .expect("python3");
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (Some(secs), Some(groups), Some(rss)) = (
        fields.get(1).and_then(|s| s.parse::<f64>().ok()),
        fields.get(2),
        fields.get(3),
    ) else {
        println!(
            "duckdb: not run ({}); `pip install duckdb` for the comparison",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return;
    };
    let theirs = events as f64 / secs;
    let ours = events as f64 / detect_secs;
    println!(
        "duckdb hourly per-app aggregation: {events} events in {secs:.3} s = {theirs:.0} events/s, {groups} app-hours; peak RSS {rss} MB"
    );
    println!(
        "detect + history / duckdb = {:.2} (goal >= 2.0)",
        ours / theirs
    );
}

/// Writes at least `target` simulated events over `days` to `path` as NDJSON.
fn generate(target: u64, days: i64, path: &std::path::Path) -> u64 {
    let all = simulated::simulated_events_over(target, days);
    let mut out = BufWriter::new(std::fs::File::create(path).expect("create"));
    for e in &all {
        serde_json::to_writer(&mut out, e).expect("write");
        out.write_all(b"\n").expect("write");
    }
    out.flush().expect("flush");
    all.len() as u64
}

fn main() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        measure(&path);
        return;
    }
    // `cargo bench` passes --bench; under `cargo test` this runs as a quick smoke test.
    let benching = std::env::args().any(|a| a == "--bench");
    let base: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if benching { 5_000_000 } else { 20_000 });
    let scales: &[u64] = if benching { &[1, 2] } else { &[1] };
    let dir = tempfile::tempdir().expect("tempdir");
    for &scale in scales {
        let path = dir.path().join(format!("events-{scale}.ndjson"));
        // Twice the events over twice the days: the same apps, so peak RSS should stay flat.
        let n = generate(base * scale, 28 * scale as i64, &path);
        eprintln!("generated {n} events");
        let history = dir.path().join(format!("history-{scale}"));
        let canonical = path.display().to_string();
        let canonical_secs = run_child(&canonical, None);
        let history_secs = run_child(&canonical, Some(&history));
        if benching {
            compare_with_duckdb(&path, n, history_secs);
        }
        if scale == 1 {
            let (kc, ae) = (
                dir.path().join("keycloak.log"),
                dir.path().join("audit.ndjson"),
            );
            convert_to_operator_formats(&path, &kc, &ae);
            let inputs = format!("keycloak:{}\nauditevent:{}", kc.display(), ae.display());
            let converted_secs = run_child(&inputs, None);
            println!(
                "same traffic: Keycloak + BALP AuditEvent takes {:.2}x the canonical run's time (goal <= 1.5)",
                converted_secs / canonical_secs
            );
            std::fs::remove_file(&kc).ok();
            std::fs::remove_file(&ae).ok();
        }
        std::fs::remove_dir_all(&history).ok();
        std::fs::remove_file(&path).ok();
    }
}
