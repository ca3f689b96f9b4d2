//! A `Write` that publishes each complete line as one Kafka message: the dead-letter output of
//! the streaming service when it goes to a topic (`--dead-letter-topic`). `flush` returns once
//! the broker has every line, with the same error kinds as the alert sink (`TimedOut`: the
//! broker is away, try again; anything else: a record was refused).

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;

use crate::alert::sink::DeliveryWatch;

pub struct KafkaLineWriter {
    producer: BaseProducer<DeliveryWatch>,
    failed: Arc<Mutex<Option<String>>>,
    topic: String,
    pending: Vec<u8>,
}

impl KafkaLineWriter {
    pub fn new(config: &ClientConfig, topic: &str) -> io::Result<KafkaLineWriter> {
        let mut config = config.clone();
        config.set("enable.idempotence", "true").set("acks", "all");
        if config.get("message.timeout.ms").is_none() {
            config.set("message.timeout.ms", "0");
        }
        let watch = DeliveryWatch::default();
        let failed = Arc::clone(&watch.failed);
        let producer = config.create_with_context(watch).map_err(|e| {
            io::Error::other(format!("cannot create the dead-letter producer: {e}"))
        })?;
        Ok(KafkaLineWriter {
            producer,
            failed,
            topic: topic.to_string(),
            pending: Vec::new(),
        })
    }

    fn send_line(&self, line: &[u8]) -> io::Result<()> {
        loop {
            let record: BaseRecord<'_, (), [u8]> = BaseRecord::to(&self.topic).payload(line);
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    self.producer.poll(Duration::from_millis(100));
                }
                Err((e, _)) => {
                    return Err(io::Error::other(format!(
                        "cannot queue a dead letter for topic {}: {e}",
                        self.topic
                    )))
                }
            }
        }
    }
}

impl Write for KafkaLineWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.send_line(&line[..end])?;
        }
        self.producer.poll(Duration::ZERO);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.producer.flush(Duration::from_secs(10)).map_err(|e| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "dead letters not yet acknowledged by topic {}: {e}",
                    self.topic
                ),
            )
        })?;
        let failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        match failed.as_deref() {
            Some(e) => Err(io::Error::other(format!(
                "a dead letter was refused by topic {}: {e}",
                self.topic
            ))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::mocking::MockCluster;

    #[test]
    fn each_line_becomes_one_message_even_when_written_in_pieces() {
        let cluster = MockCluster::new(1).expect("mock cluster");
        cluster.create_topic("dead", 1, 1).expect("topic");
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", cluster.bootstrap_servers());
        let mut w = KafkaLineWriter::new(&config, "dead").expect("writer");
        w.write_all(b"{\"reason\":\"one\"}\n{\"rea").expect("write");
        w.write_all(b"son\":\"two\"}\n").expect("write");
        w.flush().expect("flush");

        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .set("group.id", "check")
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("consumer");
        consumer.subscribe(&["dead"]).expect("subscribe");
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while got.len() < 2 && std::time::Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                got.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string());
            }
        }
        assert_eq!(got, vec![r#"{"reason":"one"}"#, r#"{"reason":"two"}"#]);
    }
}
