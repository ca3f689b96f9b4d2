//! `scopewatch run` against a real Kafka-protocol broker (tansu 0.6.0 with SQLite storage,
//! started by this harness on a free loopback port; `.ci/run` installs it). These tests fail,
//! never skip, when the broker cannot start.
//!
//! Each test produces the bundled sample data (token and access topics, keyed and partitioned
//! by client_id) and checks the service's alert ids against `scopewatch detect` on the same
//! events.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer};

use crate::process;
use crate::tansu;
use process::{alert_ids, free_port, history_figures, http_get, sample_lines, scopewatch, wait_ok};
use tansu::{create_topics, partition_of, send_keyed, Broker};

const TOKENS: &str = "scopewatch.tokens";
const ACCESS: &str = "scopewatch.access";

fn produce(brokers: &str, lines: &[String], partitions: i32) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        let client = v["client_id"].as_str().expect("client_id").to_string();
        let topic = if v["type"] == "token" { TOKENS } else { ACCESS };
        let partition = partition_of(&client, partitions);
        send_keyed(&producer, topic, &client, partition, line);
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
}

fn service(brokers: &str, dir: &Path, state: &str, alerts: &str, group: &str) -> Command {
    let mut c = scopewatch();
    // SCOPEWATCH_TEST_LOGS=DIR keeps each service's log there (RUST_LOG applies).
    if let Ok(logs) = std::env::var("SCOPEWATCH_TEST_LOGS") {
        static SPAWNED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SPAWNED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("{group}-{alerts}-{}-{n}.log", std::process::id());
        let file = std::fs::File::create(Path::new(&logs).join(name)).expect("log file");
        c.stderr(file);
    } else {
        c.stderr(Stdio::null());
    }
    c.current_dir(dir)
        .args(["run", "--kafka-brokers", brokers, "--group", group])
        .args(["--registry"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data/registry.toml"))
        .args([
            "--state",
            state,
            "--alerts",
            alerts,
            "--checkpoint-interval",
            "1",
        ])
        // One history store per state directory: instances sharing a state share it.
        .args(["--data", &format!("data-{state}")])
        .args(["--kafka-config", "session.timeout.ms=6000"])
        .args(["--kafka-config", "heartbeat.interval.ms=500"])
        // A killed member never rejoins: the group's rebalance waits this long for it.
        .args(["--kafka-config", "max.poll.interval.ms=8000"]);
    c
}

/// Alert ids of `detect` over the sample data (the end of input ends the stream).
fn detect_ids(dir: &Path) -> BTreeSet<String> {
    let alerts = dir.join("detect-alerts.ndjson");
    let status = scopewatch()
        .current_dir(dir)
        .arg("detect")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data/events.ndjson.gz"))
        .arg("--registry")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data/registry.toml"))
        .args(["--data", "detect-data", "--alerts"])
        .arg(&alerts)
        .stderr(Stdio::null())
        .status()
        .expect("detect");
    assert!(status.success());
    let ids = alert_ids(&alerts);
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(set.len(), ids.len(), "detect writes each alert once");
    assert!(set.len() > 20, "the sample data has alerts");
    set
}

/// The service's history store holds every event and alert once: the figures of detect's.
/// (Which access rows know their token's grant may differ: detect joins in file order, the
/// service in each partition's event-time order.)
fn assert_same_history(dir: &Path, data: &str) {
    let streamed = history_figures(dir, data);
    let detected = history_figures(dir, "detect-data");
    assert_eq!(
        (
            streamed.access,
            streamed.tokens,
            streamed.alerts,
            streamed.alert_ids
        ),
        (
            detected.access,
            detected.tokens,
            detected.alerts,
            detected.alert_ids
        ),
        "history of the service = history of detect"
    );
    assert_eq!(streamed.alerts, streamed.alert_ids, "no alert row twice");
}

/// Events in the partitions' checkpoints so far (0 for a partition not yet checkpointed).
fn checkpointed_events(state: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(state) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .filter_map(|p| {
            scopewatch::pipeline::StateDir::new(&p)
                .load()
                .ok()
                .flatten()
        })
        .map(|c| c.engine.stats.events)
        .sum()
}

/// Sum of events the partitions' final checkpoints have processed.
fn events_in_state(state: &Path) -> u64 {
    std::fs::read_dir(state)
        .expect("state dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .map(|p| {
            scopewatch::pipeline::StateDir::new(&p)
                .load()
                .expect("load")
                .expect("checkpoint")
                .engine
                .stats
                .events
        })
        .sum()
}

#[test]
fn kafka_service_gives_the_alerts_of_detect_even_when_killed_and_restarted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = Broker::start(dir.path());
    let brokers = broker.brokers();
    create_topics(&brokers, &[TOKENS, ACCESS], 4);
    let lines = sample_lines();
    produce(&brokers, &lines, 4);
    let expected = detect_ids(dir.path());

    // One uninterrupted instance.
    let child = service(
        &brokers,
        dir.path(),
        "state-a",
        "alerts-a.ndjson",
        "group-a",
    )
    .arg("--exit-at-end")
    .spawn()
    .expect("run");
    wait_ok(child, "run");
    let ids = alert_ids(&dir.path().join("alerts-a.ndjson"));
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(
        set, expected,
        "run over Kafka = detect over the same events"
    );
    assert_eq!(
        ids.len(),
        set.len(),
        "an uninterrupted run writes each alert once"
    );
    assert_eq!(
        events_in_state(&dir.path().join("state-a")),
        lines.len() as u64
    );

    // Killed with SIGKILL three times mid-stream, restarted each time. Each round waits until
    // the instance has checkpointed more events than the last one, so every kill lands after
    // progress and (the stream being far from done) before the end; then it waits out the
    // session timeout so the coordinator evicts the dead member before the next one joins.
    let state_b = dir.path().join("state-b");
    let mut kills_mid_stream = 0;
    let mut checkpointed = 0;
    for round in 1..=3u64 {
        let mut child = service(
            &brokers,
            dir.path(),
            "state-b",
            "alerts-b.ndjson",
            "group-b",
        )
        .arg("--exit-at-end")
        .spawn()
        .expect("run");
        let deadline = Instant::now() + Duration::from_secs(120);
        while checkpointed_events(&state_b) <= checkpointed
            && child.try_wait().expect("wait").is_none()
        {
            assert!(
                Instant::now() < deadline,
                "round {round}: no checkpoint within 120 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(150 * round));
        if child.try_wait().expect("wait").is_none() {
            child.kill().expect("kill -9");
            let _ = child.wait();
            checkpointed = checkpointed_events(&state_b);
            if checkpointed < lines.len() as u64 {
                kills_mid_stream += 1;
            }
        } else {
            checkpointed = checkpointed_events(&state_b);
        }
        eprintln!("round {round}: killed with {checkpointed} events checkpointed");
        std::thread::sleep(Duration::from_secs(7));
    }
    assert!(kills_mid_stream >= 1, "at least one kill landed mid-stream");
    let child = service(
        &brokers,
        dir.path(),
        "state-b",
        "alerts-b.ndjson",
        "group-b",
    )
    .arg("--exit-at-end")
    .spawn()
    .expect("run");
    wait_ok(child, "run after kills");
    let set: BTreeSet<String> = alert_ids(&dir.path().join("alerts-b.ndjson"))
        .into_iter()
        .collect();
    assert_eq!(
        set, expected,
        "kills and restarts: same alert ids (duplicates allowed)"
    );
    assert_eq!(
        events_in_state(&dir.path().join("state-b")),
        lines.len() as u64,
        "every event processed exactly once into the state"
    );
    assert_same_history(dir.path(), "data-state-b");
    broker.stop();
}

#[test]
fn two_instances_in_one_group_give_the_alerts_of_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start(dir.path());
    let brokers = broker.brokers();
    create_topics(&brokers, &[TOKENS, ACCESS], 4);
    let lines = sample_lines();
    produce(&brokers, &lines, 4);
    let expected = detect_ids(dir.path());
    let spawn = |alerts: &str| {
        service(&brokers, dir.path(), "state", alerts, "shared")
            .arg("--exit-at-end")
            .spawn()
            .expect("run")
    };
    let first = spawn("alerts-1.ndjson");
    let second = spawn("alerts-2.ndjson");
    wait_ok(first, "first instance");
    wait_ok(second, "second instance");
    let mut set: BTreeSet<String> = alert_ids(&dir.path().join("alerts-1.ndjson"))
        .into_iter()
        .collect();
    set.extend(alert_ids(&dir.path().join("alerts-2.ndjson")));
    assert_eq!(set, expected);
    assert_same_history(dir.path(), "data-state");
    assert_eq!(
        events_in_state(&dir.path().join("state")),
        lines.len() as u64
    );
}

#[test]
fn a_broker_outage_of_30_s_mid_stream_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = Broker::start(dir.path());
    let brokers = broker.brokers();
    create_topics(&brokers, &[TOKENS, ACCESS], 4);
    let lines = sample_lines();
    produce(&brokers, &lines, 4);
    let expected = detect_ids(dir.path());
    let metrics_port = free_port();
    let mut child = service(&brokers, dir.path(), "state", "alerts.ndjson", "outage")
        .arg("--exit-at-end")
        .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
        .spawn()
        .expect("run");
    let state = dir.path().join("state");
    let deadline = Instant::now() + Duration::from_secs(120);
    while checkpointed_events(&state) == 0 {
        assert!(Instant::now() < deadline, "no checkpoint within 120 s");
        assert!(
            child.try_wait().expect("wait").is_none(),
            "run ended before the outage"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let ready = http_get(metrics_port, "/readyz");
    assert!(
        ready.starts_with("HTTP/1.1 200"),
        "ready while consuming: {ready}"
    );
    let metrics = http_get(metrics_port, "/metrics");
    assert!(
        metrics.contains("scopewatch_assigned_partitions 4"),
        "{metrics}"
    );
    broker.stop();
    let before = checkpointed_events(&state);
    eprintln!("broker stopped with {before} events checkpointed");
    let outage = Instant::now();
    let mut said_unreachable = false;
    while outage.elapsed() < Duration::from_secs(30) {
        let ready = http_get(metrics_port, "/readyz");
        said_unreachable |= ready.contains("503") && ready.contains("broker unreachable");
        assert!(http_get(metrics_port, "/healthz").starts_with("HTTP/1.1 200"));
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(said_unreachable, "/readyz reports the outage");
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the service waits for the broker instead of exiting"
    );
    broker.spawn();
    wait_ok(child, "run across the outage");
    let set: BTreeSet<String> = alert_ids(&dir.path().join("alerts.ndjson"))
        .into_iter()
        .collect();
    assert_eq!(set, expected, "same alerts as detect after the outage");
    assert_eq!(events_in_state(&state), lines.len() as u64, "no event lost");
}

/// One codec per partition. tansu 0.6.0 resets the connection when asked for snappy batches
/// (librdkafka's mock cluster round-trips snappy: `pipeline::kafka` unit tests).
const CODECS: [&str; 4] = ["gzip", "lz4", "zstd", "gzip"];

/// The sample data produced with one codec per partition (partition p with `CODECS[p]`).
fn produce_compressed(brokers: &str, lines: &[String]) {
    let producers: Vec<BaseProducer> = CODECS
        .iter()
        .map(|codec| {
            ClientConfig::new()
                .set("bootstrap.servers", brokers)
                .set("linger.ms", "20")
                .set("compression.type", *codec)
                .create()
                .unwrap_or_else(|e| panic!("{codec} producer: {e}"))
        })
        .collect();
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        let client = v["client_id"].as_str().expect("client_id").to_string();
        let topic = if v["type"] == "token" { TOKENS } else { ACCESS };
        let partition = partition_of(&client, 4);
        let producer = &producers[usize::try_from(partition).expect("partition")];
        send_keyed(producer, topic, &client, partition, line);
    }
    for (codec, p) in CODECS.iter().zip(&producers) {
        p.flush(Duration::from_secs(120))
            .unwrap_or_else(|e| panic!("{codec} flush: {e}"));
    }
}

/// Every message on `topic`, read from the start until `quiet` passes without one.
fn consume_all(brokers: &str, topic: &str, quiet: Duration) -> Vec<String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::Message;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "alerts-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let (mut out, mut last) = (Vec::new(), Instant::now());
    let deadline = Instant::now() + Duration::from_secs(120);
    while last.elapsed() < quiet && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let payload = m.payload().expect("payload");
            out.push(String::from_utf8(payload.to_vec()).expect("utf8"));
            last = Instant::now();
        }
    }
    out
}

/// gzip, lz4 and zstd batches (one codec per partition) are all consumed, and the alerts
/// published zstd-compressed to a topic are those of detect.
#[test]
fn every_codec_is_consumed_and_alerts_are_published_compressed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start(dir.path());
    let brokers = broker.brokers();
    let alerts_topic = "scopewatch.alerts";
    create_topics(&brokers, &[TOKENS, ACCESS], 4);
    create_topics(&brokers, &[alerts_topic], 1);
    let lines = sample_lines();
    produce_compressed(&brokers, &lines);
    let expected = detect_ids(dir.path());
    let child = service(&brokers, dir.path(), "state-c", "unused.ndjson", "group-c")
        .args(["--exit-at-end", "--alerts-topic", alerts_topic])
        .args(["--kafka-config", "compression.type=zstd"])
        .spawn()
        .expect("run");
    wait_ok(child, "run over compressed topics");
    assert_eq!(
        events_in_state(&dir.path().join("state-c")),
        lines.len() as u64,
        "every event of every codec processed"
    );
    let published = consume_all(&brokers, alerts_topic, Duration::from_secs(5));
    let ids: BTreeSet<String> = published
        .iter()
        .map(|a| {
            let v: serde_json::Value = serde_json::from_str(a).expect("alert json");
            v["id"].as_str().expect("id").to_string()
        })
        .collect();
    assert_eq!(ids, expected, "alerts on the topic = detect's");
}

/// A TLS + SASL/SCRAM configuration is accepted (the client is built with OpenSSL); with no
/// broker to reach, SIGTERM stops the service cleanly with exit 0.
#[test]
fn a_tls_sasl_configuration_is_accepted_and_sigterm_exits_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let child = scopewatch()
        .current_dir(dir.path())
        .args(["run", "--kafka-brokers", &format!("127.0.0.1:{port}")])
        .args([
            "--state",
            "state",
            "--no-history",
            "--alerts",
            "alerts.ndjson",
        ])
        .args(["--kafka-config", "security.protocol=SASL_SSL"])
        .args(["--kafka-config", "sasl.mechanisms=SCRAM-SHA-512"])
        .args(["--kafka-config", "sasl.username=scopewatch"])
        .env(
            "SCOPEWATCH_KAFKA_CONFIG_SASL_PASSWORD",
            "from-the-environment",
        )
        .stderr(Stdio::piped())
        .spawn()
        .expect("run");
    std::thread::sleep(Duration::from_secs(3));
    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("not available at build time"), "{stderr}");
    assert!(
        !stderr.contains("from-the-environment"),
        "no secret in logs: {stderr}"
    );
}
