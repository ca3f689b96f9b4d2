//! Crash soak: the streaming services killed with SIGKILL at random points and restarted, then
//! checked for exactly-once state and for the alert ids of `detect` over the same events.
//!
//! Run: `cargo bench --bench soak` (1 M events, 20 kills per service; `-- N` for another event
//! count, `SCOPEWATCH_SOAK_KILLS=K`, `SCOPEWATCH_SOAK_SEED=S` for the kill times). Under
//! `cargo test` a smoke version runs (20 k events, 2 kills per service).
//!
//! 1. **Kafka** (`scopewatch run --kafka-brokers`, against a tansu 0.6.0 started here, or
//!    `$SCOPEWATCH_BENCH_BROKERS`): N simulated events are produced to 4-partition token and
//!    access topics; then K times an instance is started and killed with SIGKILL after a random
//!    2–8 s (group join and state restore included), each time waiting out the session timeout
//!    so the dead member leaves the group; a last instance reads to the end (`--exit-at-end`).
//! 2. **Follow** (`scopewatch run --follow`): a writer appends the N events to a log in chunks,
//!    renaming it away (rotation) every N/5 lines, while an instance is killed K times at random
//!    points; a last instance reads every file to its end.
//!
//! Each prints the kills that landed mid-stream, the alert records written (re-written after a
//! crash with the same ids), and fails unless the partitions' checkpoints hold exactly N events
//! and the set of alert ids equals `detect`'s.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer};
use scopewatch::event::Event;
use scopewatch::pipeline::StateDir;

mod simulated;
use simulated::simulated_events;
#[path = "../tests/support/service.rs"]
mod process;
use process::{alert_ids, scopewatch, wait_ok};
#[path = "../tests/support/tansu.rs"]
mod tansu;
use tansu::{create_topics, partition_of, send_keyed, Broker};

const PARTITIONS: i32 = 4;
const TOKENS: &str = "soak.tokens";
const ACCESS: &str = "soak.access";

struct Soak {
    /// Under `cargo bench` (not the `cargo test` smoke run, whose 20 k events may all be read
    /// before the first kill).
    benching: bool,
    events: usize,
    kills: usize,
    seed: u64,
}

fn soak_args() -> Soak {
    let benching = std::env::args().any(|a| a == "--bench");
    fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
        std::env::var(name).ok().and_then(|v| v.parse().ok())
    }
    Soak {
        benching,
        events: std::env::args()
            .skip(1)
            .find_map(|a| a.parse().ok())
            .unwrap_or(if benching { 1_000_000 } else { 20_000 }),
        kills: env("SCOPEWATCH_SOAK_KILLS").unwrap_or(if benching { 20 } else { 2 }),
        seed: env("SCOPEWATCH_SOAK_SEED").unwrap_or(1),
    }
}

/// xorshift64*: kill times that a seed reproduces.
struct Random(u64);

impl Random {
    fn millis(&mut self, low: u64, high: u64) -> Duration {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        Duration::from_millis(low + r % (high - low))
    }
}

/// Events the checkpoints under `root` hold, processed or buffered (a Kafka state root holds
/// one directory per partition; a followed stream's state is the root itself).
fn events_in_state(root: &Path) -> u64 {
    let one = |dir: &Path| match StateDir::new(dir).load() {
        Ok(Some(c)) => c.engine.stats.events + c.engine.order.pending.len() as u64,
        _ => 0,
    };
    let partitions: u64 = std::fs::read_dir(root)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .map(|p| one(&p))
                .sum()
        })
        .unwrap_or(0);
    partitions + one(root)
}

/// Alert ids of `detect` over the lines as one file (the end of input ends the stream, as
/// `--exit-at-end` does).
fn detect_ids(dir: &Path, lines: &[String]) -> BTreeSet<String> {
    let all = dir.join("all.ndjson");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&all).expect("create"));
    for l in lines {
        writeln!(f, "{l}").expect("write");
    }
    f.flush().expect("flush");
    drop(f);
    let status = scopewatch()
        .current_dir(dir)
        .arg("detect")
        .arg(&all)
        .args(["--data", "detect-data", "--alerts", "detect.ndjson"])
        .stderr(Stdio::null())
        .status()
        .expect("detect");
    assert!(status.success(), "detect failed");
    alert_ids(&dir.join("detect.ndjson")).into_iter().collect()
}

/// Kills `child` with SIGKILL; whether that landed mid-stream: the instance had checkpointed
/// progress (more events than `before`, its start) and not yet all `n`. An instance that ended
/// on its own must have ended well (`may_end`: a Kafka instance reading to the end), or the
/// soak fails.
fn kill(child: &mut Child, state: &Path, before: u64, n: usize, may_end: bool) -> bool {
    if let Some(status) = child.try_wait().expect("wait") {
        assert!(
            may_end && status.success(),
            "an instance ended on its own: {status}"
        );
        return false;
    }
    child.kill().expect("kill -9");
    let _ = child.wait();
    let after = events_in_state(state);
    after > before && after < n as u64
}

/// Prints and checks a soak's outcome; `killed_mid_stream` says a kill landed mid-stream (or
/// need not have: the smoke run).
fn report(
    what: &str,
    killed_mid_stream: bool,
    n: usize,
    lines_alerts: &Path,
    expected: &BTreeSet<String>,
    state: &Path,
) {
    assert!(
        killed_mid_stream,
        "{what}: no kill landed mid-stream, the soak tested nothing"
    );
    let written = alert_ids(lines_alerts);
    let ids: BTreeSet<String> = written.iter().cloned().collect();
    let in_state = events_in_state(state);
    println!(
        "{what}: {in_state} of {n} events in the state; {} alert ids (detect: {}), {} records \
         written ({} again after a crash)",
        ids.len(),
        expected.len(),
        written.len(),
        written.len() - ids.len()
    );
    assert_eq!(
        in_state, n as u64,
        "{what}: every event in the state exactly once"
    );
    assert_eq!(&ids, expected, "{what}: the alert ids of detect");
}

fn kafka_service(brokers: &str, dir: &Path) -> Command {
    let mut c = scopewatch();
    c.current_dir(dir)
        .stderr(Stdio::null())
        .args(["run", "--kafka-brokers", brokers, "--group", "soak"])
        .args(["--token-topic", TOKENS, "--access-topic", ACCESS])
        .args(["--state", "kafka-state", "--alerts", "kafka-alerts.ndjson"])
        .args(["--data", "kafka-data", "--checkpoint-interval", "1"])
        .args(["--kafka-config", "session.timeout.ms=6000"])
        .args(["--kafka-config", "heartbeat.interval.ms=500"])
        .args(["--kafka-config", "max.poll.interval.ms=8000"]);
    c
}

fn kafka_soak(
    dir: &Path,
    events: &[Event],
    lines: &[String],
    soak: &Soak,
    expected: &BTreeSet<String>,
) {
    let (_broker, brokers) = match std::env::var("SCOPEWATCH_BENCH_BROKERS") {
        Ok(b) => (None, b),
        Err(_) => {
            let broker = Broker::start(dir);
            let b = broker.brokers();
            (Some(broker), b)
        }
    };
    create_topics(&brokers, &[TOKENS, ACCESS], PARTITIONS);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        .set("queue.buffering.max.messages", "500000")
        .create()
        .expect("producer");
    for (event, line) in events.iter().zip(lines) {
        let client = event.client_id();
        let topic = if matches!(event, Event::Token(_)) {
            TOKENS
        } else {
            ACCESS
        };
        send_keyed(
            &producer,
            topic,
            client,
            partition_of(client, PARTITIONS),
            line,
        );
    }
    producer.flush(Duration::from_secs(600)).expect("flush");

    let started = Instant::now();
    let mut random = Random(soak.seed | 1);
    let mut mid_stream = 0;
    let state = dir.join("kafka-state");
    for _ in 0..soak.kills {
        let before = events_in_state(&state);
        let mut child = kafka_service(&brokers, dir)
            .arg("--exit-at-end")
            .spawn()
            .expect("run");
        std::thread::sleep(random.millis(2_000, 8_000));
        if kill(&mut child, &state, before, lines.len(), true) {
            mid_stream += 1;
        }
        // The dead member leaves the group after its session timeout (6 s).
        std::thread::sleep(Duration::from_secs(7));
    }
    let child = kafka_service(&brokers, dir)
        .arg("--exit-at-end")
        .spawn()
        .expect("run");
    wait_ok(child, "the last Kafka instance");
    println!(
        "kafka: {} kills, {mid_stream} mid-stream; {:.0} s in all (7 s of session timeout per kill)",
        soak.kills,
        started.elapsed().as_secs_f64()
    );
    report(
        "kafka",
        mid_stream > 0 || !soak.benching,
        lines.len(),
        &dir.join("kafka-alerts.ndjson"),
        expected,
        &dir.join("kafka-state"),
    );
}

fn follow_service(dir: &Path) -> Command {
    let mut c = scopewatch();
    c.current_dir(dir)
        .stderr(Stdio::null())
        .args([
            "run",
            "--follow",
            "--input",
            "logs",
            "--state",
            "follow-state",
        ])
        .args([
            "--alerts",
            "follow-alerts.ndjson",
            "--checkpoint-interval",
            "1",
        ])
        .args(["--poll-interval-ms", "50", "--data", "follow-data"]);
    c
}

/// Appends `lines` to `logs/events.ndjson` in chunks of 2 000 with `pause` between, renaming
/// it to `events.ndjson.K` every `lines.len() / 5` lines, between two chunks, and going on in
/// a new file under the name.
fn write_rotating(logs: &Path, lines: &[String], pause: Duration) {
    let live = logs.join("events.ndjson");
    let rotate_every = lines.len().div_ceil(5).max(1);
    let mut out = std::fs::File::create(&live).expect("create");
    let mut rotations = 0;
    for (i, chunk) in lines.chunks(2_000).enumerate() {
        let text: String = chunk.iter().map(|l| format!("{l}\n")).collect();
        out.write_all(text.as_bytes()).expect("write");
        let written = (i + 1) * 2_000;
        if written / rotate_every > rotations && written < lines.len() {
            rotations += 1;
            std::fs::rename(&live, logs.join(format!("events.ndjson.{rotations}")))
                .expect("rotate");
            out = std::fs::File::create(&live).expect("create the new file");
        }
        std::thread::sleep(pause);
    }
}

fn follow_soak(dir: &Path, lines: &[String], soak: &Soak, expected: &BTreeSet<String>) {
    let logs = dir.join("logs");
    std::fs::create_dir(&logs).expect("mkdir");
    let started = Instant::now();
    let mut random = Random(soak.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut mid_stream = 0;
    std::thread::scope(|scope| {
        // The writing spans the kills (their mean interval is 1.65 s).
        let chunks = lines.len().div_ceil(2_000).max(1) as u32;
        let pause = Duration::from_millis(1_650) * soak.kills as u32 / chunks;
        let logs = &logs;
        let writer = scope.spawn(move || write_rotating(logs, lines, pause));
        let state = dir.join("follow-state");
        for _ in 0..soak.kills {
            let before = events_in_state(&state);
            let mut child = follow_service(dir).spawn().expect("run --follow");
            std::thread::sleep(random.millis(300, 3_000));
            if kill(&mut child, &state, before, lines.len(), false) {
                mid_stream += 1;
            }
        }
        writer.join().expect("writer");
    });
    let child = follow_service(dir)
        .arg("--exit-at-end")
        .spawn()
        .expect("run --follow");
    wait_ok(child, "the last follow instance");
    println!(
        "follow: {} kills, {mid_stream} mid-stream, with rotation every {} lines; {:.0} s in all",
        soak.kills,
        lines.len().div_ceil(5),
        started.elapsed().as_secs_f64()
    );
    report(
        "follow",
        mid_stream > 0 || !soak.benching,
        lines.len(),
        &dir.join("follow-alerts.ndjson"),
        expected,
        &dir.join("follow-state"),
    );
}

fn main() {
    let soak = soak_args();
    let events = simulated_events(soak.events as u64);
    let events = &events[..soak.events.min(events.len())];
    let lines: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e).expect("json"))
        .collect();
    println!(
        "soak: {} events, {} kills per service, seed {}",
        lines.len(),
        soak.kills,
        soak.seed
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let expected = detect_ids(dir.path(), &lines);
    assert!(!expected.is_empty(), "the simulated events have alerts");
    follow_soak(dir.path(), &lines, &soak, &expected);
    kafka_soak(dir.path(), events, &lines, &soak, &expected);
}
