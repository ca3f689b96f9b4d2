//! `scopewatch sql` speed on a large history, side by side with DuckDB over the same files.
//!
//! Run: `cargo bench --bench sql` (20 M access events) or `cargo bench --bench sql -- 5000000`.
//! It writes a history store through the real `HistoryWriter` (synthetic access events: 200
//! apps, 2 M patients, 28 days, in time order), then times, best of three, in DataFusion
//! through the same session `scopewatch sql` uses and in DuckDB (`pip install duckdb`; run by
//! `benches/sql_duckdb.py`):
//!
//! - `SELECT client_id, count(*), sum(bytes) FROM access GROUP BY 1`
//! - a one-patient lookup (`WHERE patient = '…'`), which should prune by row-group statistics
//!   and the bloom filter.
//!
//! Under `cargo test` it runs a 50 k-event smoke version without DuckDB.
//! `SCOPEWATCH_BENCH_DATA=DIR cargo bench --bench sql` keeps the written history in DIR and
//! reuses it on the next run of the same size.

use std::process::Command;
use std::time::Instant;

use futures::StreamExt;
use scopewatch::event::{AccessEvent, Common, Event, Text, Timestamp, MICROS_PER_SECOND};
use scopewatch::smart::request::Method;
use scopewatch::sql::history::HistoryWriter;
use scopewatch::sql::session::{open, plan};

const DAYS: i64 = 28;
const APPS: u64 = 200;
const PATIENTS: u64 = 2_000_000;
const START: i64 = 1_709_510_400; // 2024-03-04T00:00:00Z

/// SplitMix64: a fixed, fast stream of pseudo-random numbers.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

const URLS: [&str; 5] = [
    "Observation?patient={p}&category=laboratory",
    "Condition?patient={p}",
    "MedicationRequest?patient={p}&status=active",
    "Patient/{p}",
    "Encounter?patient={p}&_count=50",
];

fn patient_id(n: u64) -> String {
    format!("pat-{n:07}")
}

fn write_history(dir: &std::path::Path, events: u64) -> f64 {
    let started = Instant::now();
    let mut writer = HistoryWriter::new(dir, "bench", None);
    let mut rng = Rng(42);
    let span = DAYS * 86_400 * MICROS_PER_SECOND;
    for i in 0..events {
        // Evenly spread in time order.
        let t = START * MICROS_PER_SECOND + (i as i128 * span as i128 / events as i128) as i64;
        let app = rng.next() % APPS;
        let patient = patient_id(rng.next() % PATIENTS);
        let url = URLS[(rng.next() % URLS.len() as u64) as usize].replace("{p}", &patient);
        let event = Event::Access(AccessEvent {
            common: Common {
                time: Timestamp(t),
                client_id: Text::from(format!("app-{app:03}")),
                user: None,
                source_ip: None,
                user_agent: None,
            },
            method: Method::Get,
            url,
            status: 200,
            token_id: Some(Text::from(format!("tok-{}", i / 20))),
            resources_returned: Some(rng.next() % 50),
            bytes: Some(rng.next() % 60_000),
            patient: Some(Text::from(patient)),
            patient_count: None,
            purpose_of_use: Some("TREAT".into()),
        });
        writer.add(&event).expect("history");
    }
    writer.finish().expect("finish");
    started.elapsed().as_secs_f64()
}

/// Best of three wall times (seconds) and the row count.
async fn datafusion_time(data: &std::path::Path, sql: &str) -> (f64, usize) {
    let mut best = f64::MAX;
    let mut rows = 0;
    for _ in 0..3 {
        let started = Instant::now();
        // A fresh session each time, as `scopewatch sql -c` would have.
        let ctx = open(data).await.expect("session");
        let df = plan(&ctx, sql).await.expect("plan");
        let mut stream = df.execute_stream().await.expect("execute");
        rows = 0;
        while let Some(batch) = stream.next().await {
            rows += batch.expect("batch").num_rows();
        }
        best = best.min(started.elapsed().as_secs_f64());
    }
    (best, rows)
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let events: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if benching { 20_000_000 } else { 50_000 });
    // SCOPEWATCH_BENCH_DATA=DIR (benching only) keeps the written history in DIR and reuses it
    // when a run asks for the same number of events, so query settings can be compared without
    // rewriting 20 M events. The marker is written last: an interrupted write is not reused.
    let dir = tempfile::tempdir().expect("tempdir");
    let kept = std::env::var_os("SCOPEWATCH_BENCH_DATA")
        .filter(|_| benching)
        .map(std::path::PathBuf::from);
    let data = kept.as_deref().unwrap_or(dir.path());
    let marker = data.join("bench-events.txt");
    let reusable = std::fs::read_to_string(&marker).is_ok_and(|n| n.trim() == events.to_string());
    if reusable {
        println!(
            "history: reusing {} ({events} access events)",
            data.display()
        );
    } else {
        // Never delete what the directory holds: it may be somebody's store.
        assert!(
            !data.join("access").exists(),
            "{} holds a history this bench did not finish for {events} events; remove it or name another directory",
            data.display()
        );
        let write_secs = write_history(data, events);
        std::fs::write(&marker, events.to_string()).expect("marker");
        println!(
            "history: {events} access events written in {write_secs:.1} s ({:.0} events/s)",
            events as f64 / write_secs
        );
    }
    let bytes: u64 = walk_size(&data.join("access"));
    println!("history: {:.0} MB of Parquet", bytes as f64 / 1e6);
    // A patient that exists: the first one the generator drew.
    let mut rng = Rng(42);
    rng.next();
    let patient = patient_id(rng.next() % PATIENTS);
    let queries = [
        (
            "group_by_app",
            "SELECT client_id, count(*), sum(bytes) FROM access GROUP BY 1".to_string(),
        ),
        (
            "one_patient",
            format!("SELECT time, client_id, resource_type, status FROM access WHERE patient = '{patient}'"),
        ),
    ];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut ours = Vec::new();
    for (name, sql) in &queries {
        let (secs, rows) = runtime.block_on(datafusion_time(data, sql));
        assert!(rows > 0, "{name} returned no rows");
        println!("datafusion {name} {secs:.4} s, {rows} rows");
        ours.push((name.to_string(), secs));
    }
    if !benching {
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/sql_duckdb.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(data)
        .arg(&patient)
        .output()
        .expect("python3");
    if !out.status.success() {
        println!(
            "duckdb: not run ({}); `pip install duckdb` for the comparison",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return;
    }
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let [_, name, secs, rows] = parts.as_slice() {
            let theirs: f64 = secs.parse().unwrap_or(f64::NAN);
            if let Some((_, ours)) = ours.iter().find(|(n, _)| n == name) {
                println!(
                    "duckdb {name} {theirs:.4} s, {rows} rows; datafusion/duckdb = {:.2}",
                    ours / theirs
                );
            }
        }
    }
}

fn walk_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        walk_size(&p)
                    } else {
                        e.metadata().map_or(0, |m| m.len())
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
