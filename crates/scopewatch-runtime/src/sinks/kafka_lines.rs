//! A `Write` that publishes each complete line as one Kafka message: the dead-letter output of
//! the streaming service when it goes to a topic (`--dead-letter-topic`). `flush` returns once
//! the broker has every line, with the same error kinds as the alert sink (`TimedOut`: the
//! broker is away, try again; anything else: a record was refused).

use std::io::{self, Write};

use rdkafka::config::ClientConfig;

use super::durable_producer::DurableProducer;

pub struct KafkaLineWriter {
    producer: DurableProducer,
    pending: Vec<u8>,
}

impl KafkaLineWriter {
    pub fn new(config: &ClientConfig, topic: &str) -> io::Result<KafkaLineWriter> {
        Ok(KafkaLineWriter {
            producer: DurableProducer::new(config, topic, "dead letter")?,
            pending: Vec::new(),
        })
    }
}

impl Write for KafkaLineWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.producer.send(None, &line[..end])?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.producer.make_durable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::mocking::MockCluster;
    use std::time::Duration;

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
