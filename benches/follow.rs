//! Files → alerts: the service following log files (`scopewatch run --follow`, the same
//! `pipeline::follow::run_follow` loop).
//!
//! Run: `cargo bench --bench follow` (1 M events; `-- N` for another size).
//!
//! 1. **Throughput**: N simulated events are written first, as a token log and an access log;
//!    a child process follows them until both are read to their end (`--exit-at-end`), alerts
//!    to a file, checkpoints every 30 s. Prints events/s, CPU time and the child's peak RSS.
//! 2. **Latency**: a child follows a log this process appends to at a steady rate (default
//!    50 k events/s for 20 s; `SCOPEWATCH_BENCH_RATE=N` for another), then stops it with
//!    SIGTERM. Prints the achieved rate, the latency from a line being read to its event
//!    reaching the detection engine (p50/p99/max) and the peak RSS. Written → read adds at
//!    most the loop's idle sleep (100 ms) when the service is caught up.
//!
//! Under `cargo test` it runs a small smoke version of both.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use scopewatch::alert::AlertFormat;
use scopewatch::detect::EngineConfig;
use scopewatch::event::Event;
use scopewatch::ingest::format::DecodeOptions;
use scopewatch::ingest::{DeadLetterWriter, DEFAULT_MAX_LINE_BYTES};
use scopewatch::pipeline::follow::{run_follow, FollowSettings};
use scopewatch::registry::Registry;
use scopewatch::sinks::FileSink;

mod simulated;
use simulated::{
    at_steady_rate, bench_args, cpu_seconds, peak_rss_mb, simulated_events, BenchArgs,
};

const CHILD_ENV: &str = "SCOPEWATCH_BENCH_FOLLOW_CHILD";

/// Child: follows `dir/logs`, then prints one result line.
fn child(dir: &Path, exit_at_end: bool) {
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&stop)).expect("signal");
    let alerts = dir.join("alerts.ndjson");
    let sink = FileSink::open(&alerts.to_string_lossy(), AlertFormat::Ndjson).expect("sink");
    let started = Instant::now();
    let report = run_follow(
        FollowSettings {
            inputs: vec![(dir.join("logs").display().to_string(), None)],
            state_root: dir.join("state"),
            checkpoint_every: Duration::from_secs(30),
            lateness_seconds: 300,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            poll: Duration::from_millis(250),
            metrics: None,
            history: None,
            exit_at_end,
            own_outputs: Default::default(),
        },
        EngineConfig::default(),
        Registry::default(),
        DecodeOptions::default(),
        Box::new(sink),
        DeadLetterWriter::new(Box::new(std::io::sink())),
        stop,
    )
    .expect("service");
    let secs = started.elapsed().as_secs_f64();
    let accepted: u64 = report.sources.values().map(|c| c.accepted).sum();
    let q = |p: f64| report.latency.quantile_ms(p).unwrap_or(f64::NAN);
    println!(
        "{}: {accepted} events in {secs:.2} s = {:.0} events/s; {} alert records; \
         latency read → engine p50 {:.0} ms, p99 {:.0} ms, max {} ms; service CPU {:.1} s; peak RSS {:.0} MB",
        if exit_at_end { "backlog" } else { "steady" },
        accepted as f64 / secs,
        report.alerts,
        q(0.5),
        q(0.99),
        report.latency.max_ms(),
        cpu_seconds(),
        peak_rss_mb()
    );
}

fn spawn_child(dir: &Path, exit_at_end: bool) -> Child {
    Command::new(std::env::current_exe().expect("exe"))
        .env(
            CHILD_ENV,
            format!("{}|{}", dir.display(), if exit_at_end { 1 } else { 0 }),
        )
        .spawn()
        .expect("child")
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let (dir, end) = spec.rsplit_once('|').unwrap_or((&spec, "0"));
        child(Path::new(dir), end == "1");
        return;
    }
    let BenchArgs {
        events,
        rate,
        seconds,
    } = bench_args();
    let all = simulated_events(events.max(rate * seconds));
    let lines: Vec<(bool, String)> = all
        .iter()
        .map(|e| {
            (
                matches!(e, Event::Token(_)),
                serde_json::to_string(e).expect("json"),
            )
        })
        .collect();

    // 1. Throughput over a backlog: a token log and an access log.
    let backlog = tempfile::tempdir().expect("tempdir");
    let logs = backlog.path().join("logs");
    std::fs::create_dir(&logs).expect("mkdir");
    let mut tokens =
        std::io::BufWriter::new(std::fs::File::create(logs.join("tokens.ndjson")).expect("create"));
    let mut access =
        std::io::BufWriter::new(std::fs::File::create(logs.join("access.ndjson")).expect("create"));
    let n = (events as usize).min(lines.len());
    for (is_token, line) in lines.iter().take(n) {
        let out = if *is_token { &mut tokens } else { &mut access };
        writeln!(out, "{line}").expect("write");
    }
    tokens.flush().expect("flush");
    access.flush().expect("flush");
    drop((tokens, access));
    let status = spawn_child(backlog.path(), true).wait().expect("child");
    assert!(status.success(), "throughput child failed");

    // 2. Latency at a steady rate, one log appended to in 10 ms ticks.
    let steady = tempfile::tempdir().expect("tempdir");
    let logs = steady.path().join("logs");
    std::fs::create_dir(&logs).expect("mkdir");
    let mut log = std::fs::File::create(logs.join("events.ndjson")).expect("create");
    let mut service = spawn_child(steady.path(), false);
    std::thread::sleep(Duration::from_secs(1));
    let total = (rate * seconds) as usize;
    let mut chunk = String::new();
    let achieved = at_steady_rate(total, rate, |range| {
        chunk.clear();
        for (_, line) in &lines[range] {
            chunk.push_str(line);
            chunk.push('\n');
        }
        log.write_all(chunk.as_bytes()).expect("append");
    });
    eprintln!("appended {total} events at a steady {achieved:.0} events/s (target {rate})");
    std::thread::sleep(Duration::from_secs(3));
    let status = Command::new("kill")
        .args(["-TERM", &service.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let status = service.wait().expect("child");
    assert!(status.success(), "latency child failed");
}
