//! Where a streaming service's results go: alerts to the sink (counted by category and
//! severity for the metrics) and events the engine handed back as late to the dead-letter
//! output. Shared by the Kafka service and file following.

use std::collections::BTreeMap;

use super::partition::LateRecord;
use crate::alert::Alert;
use crate::sinks::AlertSink;

use crate::ingest::{DeadLetter, DeadLetterWriter, SourceCounts};

/// Which output failed.
#[derive(Debug)]
pub enum OutputError {
    Sink(std::io::Error),
    DeadLetter(std::io::Error),
}

pub struct Outputs {
    pub sink: Box<dyn AlertSink>,
    pub dead_letter: DeadLetterWriter,
    pub lateness_seconds: i64,
    /// Alert records written.
    pub alerts: u64,
    /// (category, severity) → alert records written.
    pub alerts_by_kind: BTreeMap<(String, String), u64>,
    /// Alert records a silence kept out of the sink.
    pub suppressed: u64,
}

impl Outputs {
    pub fn new(
        sink: Box<dyn AlertSink>,
        dead_letter: DeadLetterWriter,
        lateness_seconds: i64,
    ) -> Outputs {
        Outputs {
            sink,
            dead_letter,
            lateness_seconds,
            alerts: 0,
            alerts_by_kind: BTreeMap::new(),
            suppressed: 0,
        }
    }

    /// Writes `alerts`, and dead-letters each late event (counted as late against its source).
    pub fn emit(
        &mut self,
        alerts: &[Alert],
        late: Vec<LateRecord>,
        sources: &mut BTreeMap<String, SourceCounts>,
    ) -> Result<(), OutputError> {
        if !alerts.is_empty() {
            // Silenced records stay out of the outputs (the history store has them); only
            // then is a filtered copy made.
            let kept: Vec<Alert>;
            let emitted: &[Alert] = if alerts.iter().any(|a| a.suppressed_by.is_some()) {
                kept = alerts
                    .iter()
                    .filter(|a| a.suppressed_by.is_none())
                    .cloned()
                    .collect();
                &kept
            } else {
                alerts
            };
            self.suppressed += (alerts.len() - emitted.len()) as u64;
            self.alerts += emitted.len() as u64;
            for a in emitted {
                *self
                    .alerts_by_kind
                    .entry((a.category.as_str().into(), a.severity.as_str().into()))
                    .or_default() += 1;
            }
            if !emitted.is_empty() {
                self.sink.write(emitted).map_err(OutputError::Sink)?;
            }
        }
        for l in late {
            if let Some(c) = sources.get_mut(&l.source) {
                c.late += 1;
            }
            let raw = serde_json::to_vec(&l.late.event).unwrap_or_default();
            let (kind, reason) = l.late.reject(self.lateness_seconds);
            self.dead_letter
                .write(&DeadLetter::new(
                    &l.source,
                    None,
                    u64::try_from(l.offset).ok(),
                    kind,
                    reason,
                    &raw,
                    raw.len() as u64,
                ))
                .map_err(OutputError::DeadLetter)?;
        }
        Ok(())
    }

    /// Alerts, then dead letters, durable: what must hold before a checkpoint covers them.
    pub fn make_durable(&mut self) -> Result<(), OutputError> {
        self.sink.make_durable().map_err(OutputError::Sink)?;
        self.dead_letter.flush().map_err(OutputError::DeadLetter)
    }
}
