//! Where the streaming service's alerts go: an NDJSON file (appended: a restarted service adds
//! to it; duplicates share ids), stdout, or a Kafka topic (key = client_id, idempotent
//! producer). `make_durable` returns only when everything written so far is safe, so the
//! service checkpoints and commits offsets after it and an alert is never lost.

use std::io::{self, BufWriter, Write};

use rdkafka::config::ClientConfig;

use super::{write_alert, Alert, AlertFormat};
use crate::pipeline::append_file::AppendFile;
use crate::pipeline::durable_producer::DurableProducer;

pub trait AlertSink: Send {
    fn write(&mut self, alerts: &[Alert]) -> io::Result<()>;
    /// Returns once everything written is safe. An error of kind `TimedOut` is transient (the
    /// broker is away: try again later, nothing is lost); any other error means an alert could
    /// not be stored and the run must stop before checkpointing past it.
    fn make_durable(&mut self) -> io::Result<()>;
}

/// Alerts to stdout (`-`) or appended to a file (synced to disk by `make_durable`; a torn last
/// record left by a killed run is cut off before appending).
pub struct FileSink {
    format: AlertFormat,
    out: FileTarget,
}

enum FileTarget {
    Stdout(BufWriter<io::Stdout>),
    File(AppendFile),
}

impl FileSink {
    pub fn open(target: &str, format: AlertFormat) -> io::Result<FileSink> {
        let out = if target == "-" {
            FileTarget::Stdout(BufWriter::new(io::stdout()))
        } else {
            let mut file = AppendFile::new(target);
            file.open_now()?;
            FileTarget::File(file)
        };
        Ok(FileSink { format, out })
    }
}

impl AlertSink for FileSink {
    fn write(&mut self, alerts: &[Alert]) -> io::Result<()> {
        let out: &mut dyn Write = match &mut self.out {
            FileTarget::Stdout(w) => w,
            FileTarget::File(w) => w,
        };
        for a in alerts {
            write_alert(out, a, self.format)?;
        }
        Ok(())
    }

    fn make_durable(&mut self) -> io::Result<()> {
        match &mut self.out {
            FileTarget::Stdout(w) => w.flush(),
            FileTarget::File(w) => w.flush(),
        }
    }
}

/// Alerts to a Kafka topic, keyed by client_id, through an idempotent producer.
pub struct KafkaSink {
    producer: DurableProducer,
    format: AlertFormat,
}

impl KafkaSink {
    pub fn new(config: &ClientConfig, topic: &str, format: AlertFormat) -> io::Result<KafkaSink> {
        Ok(KafkaSink {
            producer: DurableProducer::new(config, topic, "alert")?,
            format,
        })
    }
}

impl AlertSink for KafkaSink {
    fn write(&mut self, alerts: &[Alert]) -> io::Result<()> {
        let mut payload = Vec::new();
        for a in alerts {
            payload.clear();
            write_alert(&mut payload, a, self.format)?;
            payload.pop(); // the newline
            self.producer.send(Some(&a.client_id), &payload)?;
        }
        Ok(())
    }

    fn make_durable(&mut self) -> io::Result<()> {
        self.producer.make_durable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Activity, Category, Evidence, Severity, Window};
    use crate::event::Timestamp;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::mocking::MockCluster;
    use std::time::Duration;

    fn alert(client: &str, revision: u32) -> Alert {
        let start = Timestamp::parse_rfc3339("2024-03-05T14:00:00Z").expect("time");
        let (id, incident_id) = Alert::ids(client, "enforcement_gap", "", start, revision);
        Alert {
            id,
            incident_id,
            activity: Activity::Create,
            revision,
            time: start,
            client_id: client.into(),
            category: Category::ScopeCreep,
            rule: "enforcement_gap",
            severity: Severity::High,
            score: 90,
            summary: "test".into(),
            window: Window { start, end: start },
            observed: serde_json::json!({}),
            baseline: serde_json::json!({}),
            evidence: Evidence::default(),
            references: Vec::new(),
            cause: String::new(),
            suppressed_by: None,
        }
    }

    #[test]
    fn kafka_sink_publishes_each_alert_keyed_by_its_app() {
        let cluster = MockCluster::new(1).expect("mock cluster");
        cluster.create_topic("alerts", 3, 1).expect("topic");
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", cluster.bootstrap_servers());
        let mut sink = KafkaSink::new(&config, "alerts", AlertFormat::Ndjson).expect("sink");
        let sent = [alert("app-a", 0), alert("app-b", 0), alert("app-a", 1)];
        sink.write(&sent).expect("write");
        sink.make_durable().expect("durable");

        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .set("group.id", "check")
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("consumer");
        consumer.subscribe(&["alerts"]).expect("subscribe");
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while got.len() < sent.len() && std::time::Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                let key = String::from_utf8_lossy(m.key().unwrap_or_default()).to_string();
                let v: serde_json::Value =
                    serde_json::from_slice(m.payload().unwrap_or_default()).expect("json");
                got.push((key, v["id"].as_str().unwrap_or_default().to_string()));
            }
        }
        got.sort();
        let mut want: Vec<(String, String)> = sent
            .iter()
            .map(|a| (a.client_id.clone(), a.id.clone()))
            .collect();
        want.sort();
        assert_eq!(got, want);
    }
}
