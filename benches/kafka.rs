//! Kafka → alerts: the streaming service (`scopewatch run --kafka-brokers …`, the same
//! `pipeline::kafka::run_kafka` loop) against a real broker on loopback.
//!
//! Run: `cargo bench --bench kafka` (1 M events; `-- N` for another size). The broker is
//! `$SCOPEWATCH_BENCH_BROKERS` if set, else a tansu 0.6.0 (SQLite storage) started here in a
//! temporary directory (see `.ci/run` for installing it).
//!
//! 1. **Throughput**: N simulated events are produced to 4-partition token and access topics
//!    (keyed and partitioned by client_id) first; then a child process runs the service over
//!    them until every partition is read to its end (`--exit-at-end`), alerts to a file. Prints
//!    events/s and the child's peak RSS.
//! 2. **Latency**: a child runs the service while this process produces at a steady rate
//!    (default 50 k events/s for 20 s; `SCOPEWATCH_BENCH_RATE=N` for another), then stops it
//!    with SIGTERM. Prints the achieved
//!    produce rate and the service's latency from produce time to the event reaching the
//!    detection engine (p50/p99/max), and its peak RSS.
//!
//! Under `cargo test` it runs a small smoke version of both.

use std::process::{Child, Command};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer};
use scopewatch::alert::AlertFormat;
use scopewatch::detect::EngineConfig;
use scopewatch::event::Event;
use scopewatch::ingest::format::DecodeOptions;
use scopewatch::ingest::DeadLetterWriter;
use scopewatch::pipeline::kafka::{run_kafka, KafkaSettings};
use scopewatch::registry::Registry;
use scopewatch::sinks::FileSink;

mod simulated;
use simulated::{
    at_steady_rate, bench_args, cpu_seconds, peak_rss_mb, simulated_events, BenchArgs,
};
#[path = "../tests/support/tansu.rs"]
mod tansu;
use tansu::{create_topics, partition_of, send_keyed, Broker};

const PARTITIONS: i32 = 4;
const CHILD_ENV: &str = "SCOPEWATCH_BENCH_KAFKA_CHILD";

fn producer(brokers: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        .set("queue.buffering.max.messages", "500000")
        .create()
        .expect("producer")
}

fn send(producer: &BaseProducer, prefix: &str, event: &Event, payload: &str) {
    let client = event.client_id();
    let topic = if matches!(event, Event::Token(_)) {
        format!("{prefix}.tokens")
    } else {
        format!("{prefix}.access")
    };
    send_keyed(
        producer,
        &topic,
        client,
        partition_of(client, PARTITIONS),
        payload,
    );
}

/// Child: the service over `prefix.tokens` / `prefix.access`, then one result line.
fn child(brokers: &str, prefix: &str, exit_at_end: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&stop)).expect("signal");
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("bench-{prefix}"));
    if let Ok(extra) = std::env::var("SCOPEWATCH_BENCH_KAFKA_CONFIG") {
        for kv in extra.split(',') {
            if let Some((k, v)) = kv.split_once('=') {
                client.set(k, v);
            }
        }
    }
    let alerts = dir.path().join("alerts.ndjson");
    let sink = FileSink::open(&alerts.to_string_lossy(), AlertFormat::Ndjson).expect("sink");
    let started = Instant::now();
    let report = run_kafka(
        KafkaSettings {
            client,
            token_topic: format!("{prefix}.tokens"),
            access_topic: format!("{prefix}.access"),
            state_root: dir.path().join("state"),
            checkpoint_every: Duration::from_secs(30),
            exit_at_end,
            lateness_seconds: 300,
            metrics: None,
            // The service without the history store (as the figures in README were taken).
            history: None,
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
        "{prefix}: {accepted} events in {secs:.2} s = {:.0} events/s (from start, including group join); \
         {} alert records; latency produced → engine p50 {:.0} ms, p99 {:.0} ms, max {} ms \
         (of which produced → received p50 {:.0} ms, p99 {:.0} ms); service CPU {:.1} s; peak RSS {:.0} MB",
        accepted as f64 / secs,
        report.alerts,
        q(0.5),
        q(0.99),
        report.latency.max_ms(),
        report.receive_latency.quantile_ms(0.5).unwrap_or(f64::NAN),
        report.receive_latency.quantile_ms(0.99).unwrap_or(f64::NAN),
        cpu_seconds(),
        peak_rss_mb()
    );
}

fn spawn_child(brokers: &str, prefix: &str, exit_at_end: bool) -> Child {
    Command::new(std::env::current_exe().expect("exe"))
        .env(
            CHILD_ENV,
            format!("{brokers}|{prefix}|{}", if exit_at_end { 1 } else { 0 }),
        )
        .spawn()
        .expect("child")
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let mut parts = spec.split('|');
        let brokers = parts.next().unwrap_or_default().to_string();
        let prefix = parts.next().unwrap_or_default().to_string();
        child(&brokers, &prefix, parts.next() == Some("1"));
        return;
    }
    let BenchArgs {
        events,
        rate,
        seconds,
    } = bench_args();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_broker, brokers) = match std::env::var("SCOPEWATCH_BENCH_BROKERS") {
        Ok(b) => (None, b),
        Err(_) => {
            let broker = Broker::start(dir.path());
            let b = broker.brokers();
            (Some(broker), b)
        }
    };
    let run = std::process::id();
    let all = simulated_events(events.max(rate * seconds));
    let lines: Vec<String> = all
        .iter()
        .map(|e| serde_json::to_string(e).expect("json"))
        .collect();

    // 1. Throughput over a backlog.
    let prefix = format!("tp{run}");
    create_topics(
        &brokers,
        &[&format!("{prefix}.tokens"), &format!("{prefix}.access")],
        PARTITIONS,
    );
    let p = producer(&brokers);
    let started = Instant::now();
    let n = (events as usize).min(all.len());
    for (e, line) in all.iter().zip(&lines).take(n) {
        send(&p, &prefix, e, line);
    }
    p.flush(Duration::from_secs(600)).expect("flush");
    eprintln!(
        "produced {n} events in {:.1} s ({:.0} events/s)",
        started.elapsed().as_secs_f64(),
        n as f64 / started.elapsed().as_secs_f64()
    );
    let status = spawn_child(&brokers, &prefix, true).wait().expect("child");
    assert!(status.success(), "throughput child failed");

    // 2. Latency at a steady rate.
    let prefix = format!("lat{run}");
    create_topics(
        &brokers,
        &[&format!("{prefix}.tokens"), &format!("{prefix}.access")],
        PARTITIONS,
    );
    let mut service = spawn_child(&brokers, &prefix, false);
    // Let it join the group and be assigned before the clock starts.
    std::thread::sleep(Duration::from_secs(5));
    let total = (rate * seconds) as usize;
    let achieved = at_steady_rate(total, rate, |range| {
        for (e, line) in all[range.clone()].iter().zip(&lines[range]) {
            send(&p, &prefix, e, line);
        }
    });
    p.flush(Duration::from_secs(600)).expect("flush");
    eprintln!("produced {total} events at a steady {achieved:.0} events/s (target {rate})");
    // Give the service time to drain what is in flight, then stop it as SIGTERM would.
    std::thread::sleep(Duration::from_secs(3));
    let status = Command::new("kill")
        .args(["-TERM", &service.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let status = service.wait().expect("child");
    assert!(status.success(), "latency child failed");
}
