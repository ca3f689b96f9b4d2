//! Alerts to a Kafka topic (`--alerts-topic`): one message per alert, keyed by client_id (so an
//! app's alerts stay in order on one partition), through the idempotent durable producer.

use std::io;

use rdkafka::config::ClientConfig;

use super::durable_producer::DurableProducer;
use super::AlertSink;
use crate::alert::{write_alert, Alert, AlertFormat};

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
    use crate::sinks::test_alert as alert;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::mocking::MockCluster;
    use std::time::Duration;

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
