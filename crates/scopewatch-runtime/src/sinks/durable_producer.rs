//! The producer behind every Kafka output of the streaming service (alerts, dead letters):
//! idempotent, `acks=all`, no delivery timeout unless the operator sets one (a timed-out record
//! would be a record lost), and a `make_durable` that says whether everything sent is stored.
//! Its errors tell the service what to do: `TimedOut` means the broker is away (postpone the
//! checkpoint, nothing is lost); any other error means a record was refused for good (stop
//! before a checkpoint covers it).

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;

/// Keeps the first delivery the broker refused.
#[derive(Default)]
struct DeliveryWatch {
    failed: Arc<Mutex<Option<String>>>,
}

impl ClientContext for DeliveryWatch {}

impl ProducerContext for DeliveryWatch {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
            failed.get_or_insert_with(|| e.to_string());
        }
    }
}

pub struct DurableProducer {
    producer: BaseProducer<DeliveryWatch>,
    failed: Arc<Mutex<Option<String>>>,
    topic: String,
    /// What a record is, for messages ("alert", "dead letter").
    what: &'static str,
}

impl DurableProducer {
    pub fn new(
        config: &ClientConfig,
        topic: &str,
        what: &'static str,
    ) -> io::Result<DurableProducer> {
        let mut config = config.clone();
        config.set("enable.idempotence", "true").set("acks", "all");
        if config.get("message.timeout.ms").is_none() {
            config.set("message.timeout.ms", "0");
        }
        let watch = DeliveryWatch::default();
        let failed = Arc::clone(&watch.failed);
        let producer = config
            .create_with_context(watch)
            .map_err(|e| io::Error::other(format!("cannot create the {what} producer: {e}")))?;
        Ok(DurableProducer {
            producer,
            failed,
            topic: topic.to_string(),
            what,
        })
    }

    /// Queues one record, waiting for room when the client's queue is full.
    pub fn send(&self, key: Option<&str>, payload: &[u8]) -> io::Result<()> {
        loop {
            let mut record: BaseRecord<'_, str, [u8]> =
                BaseRecord::to(&self.topic).payload(payload);
            if let Some(k) = key {
                record = record.key(k);
            }
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    self.producer.poll(Duration::from_millis(100));
                }
                Err((e, _)) => {
                    return Err(io::Error::other(format!(
                        "cannot queue a {} for topic {}: {e}",
                        self.what, self.topic
                    )))
                }
            }
        }
        self.producer.poll(Duration::ZERO);
        Ok(())
    }

    /// Returns once the broker has stored everything sent (see the module's error kinds).
    pub fn make_durable(&self) -> io::Result<()> {
        self.producer.flush(Duration::from_secs(10)).map_err(|e| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{}s not yet acknowledged by the broker for topic {}: {e}",
                    self.what, self.topic
                ),
            )
        })?;
        let failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        match failed.as_deref() {
            // Sticky: the lost record is emitted again only by a restart from the checkpoint.
            Some(e) => Err(io::Error::other(format!(
                "a {} was refused by topic {}: {e}",
                self.what, self.topic
            ))),
            None => Ok(()),
        }
    }
}
