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
//!    (default 50 k events/s for 20 s), then stops it with SIGTERM. Prints the achieved
//!    produce rate and the service's latency from produce time to the event reaching the
//!    detection engine (p50/p99/max), and its peak RSS.
//!
//! Under `cargo test` it runs a small smoke version of both.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use scopewatch::alert::sink::FileSink;
use scopewatch::alert::AlertFormat;
use scopewatch::detect::EngineConfig;
use scopewatch::event::Event;
use scopewatch::ingest::format::DecodeOptions;
use scopewatch::ingest::DeadLetterWriter;
use scopewatch::pipeline::kafka::{run_kafka, KafkaSettings};
use scopewatch::registry::Registry;

mod simulated;
use simulated::{peak_rss_mb, simulated_events};

const PARTITIONS: i32 = 4;
const CHILD_ENV: &str = "SCOPEWATCH_BENCH_KAFKA_CHILD";

fn tansu_binary() -> PathBuf {
    if let Ok(p) = std::env::var("TANSU_BIN") {
        return PathBuf::from(p);
    }
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|_| std::env::var("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .expect("HOME");
    let candidate = home.join("bin/tansu");
    if candidate.exists() {
        candidate
    } else {
        PathBuf::from("tansu")
    }
}

/// A tansu broker on a free loopback port, killed on drop.
struct Tansu(Child);

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_tansu(dir: &Path) -> (Tansu, String) {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("tcp://127.0.0.1:{port}");
    let child = Command::new(tansu_binary())
        .current_dir(dir)
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "sqlite://tansu.db"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tansu (see .ci/run for installing it)");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "tansu did not listen within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (Tansu(child), format!("127.0.0.1:{port}"))
}

fn create_topics(brokers: &str, names: &[&str]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let topics: Vec<NewTopic> = names
        .iter()
        .map(|n| NewTopic::new(n, PARTITIONS, TopicReplication::Fixed(1)))
        .collect();
    let results = futures::executor::block_on(admin.create_topics(
        &topics,
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
    ))
    .expect("create topics");
    for r in results {
        r.expect("topic created");
    }
}

/// Stable partition of a client id (FNV-1a), so both topics are co-partitioned.
fn partition_of(client: &str) -> i32 {
    let mut h: u32 = 0x811c9dc5;
    for b in client.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    (h % PARTITIONS.unsigned_abs()) as i32
}

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
    loop {
        let record = BaseRecord::to(&topic)
            .key(client)
            .partition(partition_of(client))
            .payload(payload);
        match producer.send(record) {
            Ok(()) => break,
            Err(_) => {
                producer.poll(Duration::from_millis(10));
            }
        }
    }
    producer.poll(Duration::ZERO);
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
         (of which produced → received p50 {:.0} ms, p99 {:.0} ms); peak RSS {:.0} MB",
        accepted as f64 / secs,
        report.alerts,
        q(0.5),
        q(0.99),
        report.latency.max_ms(),
        report.receive_latency.quantile_ms(0.5).unwrap_or(f64::NAN),
        report.receive_latency.quantile_ms(0.99).unwrap_or(f64::NAN),
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
    // `cargo bench` passes --bench; under `cargo test` this is a quick smoke run.
    let benching = std::env::args().any(|a| a == "--bench");
    let events: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if benching { 1_000_000 } else { 20_000 });
    let (rate, seconds) = if benching {
        (50_000u64, 20u64)
    } else {
        (5_000, 2)
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (_broker, brokers) = match std::env::var("SCOPEWATCH_BENCH_BROKERS") {
        Ok(b) => (None, b),
        Err(_) => {
            let (t, b) = start_tansu(dir.path());
            (Some(t), b)
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
    );
    let mut service = spawn_child(&brokers, &prefix, false);
    // Let it join the group and be assigned before the clock starts.
    std::thread::sleep(Duration::from_secs(5));
    let total = (rate * seconds) as usize;
    let tick = Duration::from_millis(10);
    let per_tick = (rate / 100).max(1) as usize;
    let started = Instant::now();
    let mut sent = 0usize;
    let mut next = Instant::now();
    while sent < total {
        for (e, line) in all.iter().zip(&lines).skip(sent).take(per_tick) {
            send(&p, &prefix, e, line);
        }
        sent = (sent + per_tick).min(total);
        next += tick;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    p.flush(Duration::from_secs(600)).expect("flush");
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "produced {sent} events at a steady {:.0} events/s (target {rate})",
        sent as f64 / secs
    );
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
