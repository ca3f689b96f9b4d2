//! End-to-end `detect` throughput and memory over simulated data.
//!
//! Run: `cargo bench --bench detect` (default 5 M events, then 2×; each size without and with
//! the Parquet history store that `detect` writes by default), or
//! `cargo bench --bench detect -- 1000000` for another size. For each size it writes the
//! simulated events to a temporary NDJSON file, then runs a child process that ingests the file
//! and drives the detection core exactly as `scopewatch detect` does, and prints events/s and
//! the child's peak RSS (VmHWM), so generation never inflates the figure.

use std::io::{BufWriter, Write};
use std::process::Command;
use std::time::Instant;

use scopewatch::detect::{Engine, EngineConfig};
use scopewatch::event::Event;
use scopewatch::ingest::{DeadLetterWriter, IngestOptions, Ingestor, Source};
use scopewatch::pipeline::replay;
use scopewatch::registry::Registry;
use scopewatch::sql::history::HistoryWriter;

mod simulated;
use simulated::peak_rss_mb;

const CHILD_ENV: &str = "SCOPEWATCH_BENCH_INPUT";
const HISTORY_ENV: &str = "SCOPEWATCH_BENCH_HISTORY";

/// Child: detect over the file exactly as `scopewatch detect` does (reader thread + engine
/// through `pipeline::replay`), print one result line.
fn measure(path: &str) {
    let mut engine = Engine::new(EngineConfig::default(), Registry::default());
    let ingestor = Ingestor::new(
        IngestOptions::default(),
        DeadLetterWriter::new(Box::new(std::io::sink())),
    );
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
        &[Source::File(path.into())],
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
        "detect{}: {events} events, {:.1} MB in {secs:.2} s = {:.0} events/s, {:.1} MB/s; {} apps, {emitted} alert records, {late} late; peak RSS {:.0} MB",
        if history_dir.is_some() { " + history" } else { "" },
        summary.totals.bytes as f64 / 1e6,
        events as f64 / secs,
        summary.totals.bytes as f64 / 1e6 / secs,
        engine.baselines().apps.len(),
        peak_rss_mb()
    );
}

/// Writes at least `target` simulated events to `path` as NDJSON.
fn generate(target: u64, path: &std::path::Path) -> u64 {
    let all = simulated::simulated_events(target);
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
        let n = generate(base * scale, &path);
        eprintln!("generated {n} events");
        let history = dir.path().join(format!("history-{scale}"));
        for with_history in [false, true] {
            let mut child = Command::new(std::env::current_exe().expect("exe"));
            child.env(CHILD_ENV, &path);
            if with_history {
                child.env(HISTORY_ENV, &history);
            }
            let status = child.status().expect("child");
            assert!(status.success());
        }
        std::fs::remove_dir_all(&history).ok();
        std::fs::remove_file(&path).ok();
    }
}
