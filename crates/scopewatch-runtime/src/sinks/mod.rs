//! Where alerts and dead letters go, one component per destination (Vector's sinks): a file
//! or stdout (`file`), a Kafka topic (`kafka`, and `kafka_lines` for dead letters), with the
//! I/O they share (`append_file`, `durable_producer`, `output`). Every driver — `detect`,
//! `run --input`, `run --follow` and the Kafka service — writes alerts through [`AlertSink`];
//! the command line picks the sink from one output setting (`--alerts FILE|-` or
//! `--alerts-topic`). `make_durable` returns only when everything written so far is safe, so a
//! service checkpoints and commits offsets after it and an alert is never lost.

use std::io;

use crate::alert::Alert;

pub mod append_file;
#[cfg(feature = "kafka")]
pub mod durable_producer;
pub mod file;
#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "kafka")]
pub mod kafka_lines;
pub mod output;

pub use file::FileSink;
#[cfg(feature = "kafka")]
pub use kafka::KafkaSink;

pub trait AlertSink: Send {
    fn write(&mut self, alerts: &[Alert]) -> io::Result<()>;
    /// Returns once everything written is safe. An error of kind `TimedOut` is transient (the
    /// broker is away: try again later, nothing is lost); any other error means an alert could
    /// not be stored and the run must stop before checkpointing past it.
    fn make_durable(&mut self) -> io::Result<()>;
}

/// An alert for the sinks' tests.
#[cfg(test)]
pub(crate) fn test_alert(client: &str, revision: u32) -> Alert {
    use crate::alert::{Activity, Category, Evidence, Severity, Window};
    let start = crate::event::Timestamp(1_709_647_200_000_000);
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
