//! The history store (`--data DIR`, for `scopewatch sql`) written by a streaming service, with
//! each row in it once despite crashes and re-reads.
//!
//! A stream (a Kafka partition, the set of followed files) writes its rows in segments: the
//! rows and alerts between two checkpoints. A segment's files are named after the checkpoint
//! generation it starts from (and the id of the stream's state directory), and are written just before
//! the next checkpoint. A crash before that checkpoint leaves the segment's files behind; the
//! restarted service starts from the same generation, so the same segment name: it removes
//! those files and writes the segment again, whole. Rows are written in processing order (event time,
//! late events included), as the engine sees them.

use std::sync::Arc;

use crate::alert::{stable_id, Alert};
use crate::detect::EngineState;
use crate::event::Event;
use crate::sql::history::{
    write_alerts, HistoryCounts, HistoryError, HistoryWriter, Pseudonymizer, StoreTarget,
};

/// Where and how the history is written.
#[derive(Clone, Debug)]
pub struct HistorySettings {
    /// The store's directory, or the staging directory of an object store (each segment is
    /// published when it is committed).
    pub store: Arc<StoreTarget>,
    pub fhir_base: Option<String>,
    pub pseudonymizer: Option<Pseudonymizer>,
}

pub struct StreamHistory {
    store: Arc<StoreTarget>,
    /// The stream's state directory's id (`StateDir::stream_id`): what makes its segment names
    /// its own.
    stream: String,
    segment: String,
    writer: HistoryWriter,
    alerts: Vec<Alert>,
    /// Rows and files written by this process.
    pub counts: HistoryCounts,
    pub alert_rows: u64,
    alert_files: u64,
}

fn segment_name(stream: &str, generation: u64) -> String {
    let generation = generation.to_string();
    format!("s{}", &stable_id(&[stream, &generation])[..16])
}

impl StreamHistory {
    /// Opens the segment that starts at checkpoint `generation` (0: none yet) holding
    /// `engine`: removes what an interrupted run wrote for it, and remembers the grants of the
    /// tokens the checkpoint holds (live tokens, and token events still buffered for
    /// reordering).
    pub fn open(
        settings: &HistorySettings,
        stream: String,
        generation: u64,
        engine: &EngineState,
    ) -> Result<StreamHistory, HistoryError> {
        let segment = segment_name(&stream, generation);
        let removed = settings.store.remove_run(&segment)?;
        if removed > 0 {
            tracing::info!(
                stream = %stream,
                removed,
                "history: rewriting the segment an interrupted run left"
            );
        }
        let mut writer = HistoryWriter::new(
            settings.store.dir(),
            &segment,
            settings.fhir_base.as_deref(),
        )
        .with_pseudonymizer(settings.pseudonymizer.clone());
        for t in &engine.tokens.tokens {
            writer.remember_token(t);
        }
        for (client_id, started) in &engine.exports {
            writer.remember_export(client_id, *started);
        }
        for p in &engine.order.pending {
            if let Event::Token(t) = &p.event {
                writer.remember_token_event(t);
            }
        }
        Ok(StreamHistory {
            store: Arc::clone(&settings.store),
            stream,
            segment,
            writer,
            alerts: Vec::new(),
            counts: HistoryCounts::default(),
            alert_rows: 0,
            alert_files: 0,
        })
    }

    pub fn add(&mut self, event: &Event) -> Result<(), HistoryError> {
        self.writer.add(event)
    }

    pub fn add_alerts(&mut self, alerts: &[Alert]) {
        self.alerts.extend_from_slice(alerts);
    }

    /// Writes the segment: call before saving the checkpoint that ends it.
    pub fn commit(&mut self) -> Result<(), HistoryError> {
        let written = self.writer.finish()?;
        self.alert_files += write_alerts(self.store.dir(), &self.segment, &self.alerts)?;
        self.store.publish_segment(&self.segment)?;
        self.alert_rows += self.alerts.len() as u64;
        self.alerts.clear();
        self.counts = HistoryCounts {
            files: written.files + self.alert_files,
            ..written
        };
        Ok(())
    }

    /// Starts the segment after checkpoint `generation` was saved.
    pub fn start(&mut self, generation: u64) {
        self.segment = segment_name(&self.stream, generation);
        self.writer.set_run(&self.segment);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{Engine, EngineConfig};
    use crate::event::parse_event_str;
    use crate::registry::Registry;

    fn files(dir: &std::path::Path) -> Vec<String> {
        let mut out = Vec::new();
        for table in ["access", "tokens", "alerts"] {
            for date in std::fs::read_dir(dir.join(table))
                .into_iter()
                .flatten()
                .flatten()
            {
                for f in std::fs::read_dir(date.path())
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    out.push(f.file_name().to_string_lossy().into_owned());
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn a_segment_written_before_a_crash_is_replaced_when_its_checkpoint_is_resumed() {
        let dir = tempfile::tempdir().unwrap();
        let local = crate::sql::history::DataLocation::Local(dir.path().to_path_buf());
        let settings = HistorySettings {
            store: Arc::new(StoreTarget::open(&local).unwrap()),
            fhir_base: None,
            pseudonymizer: None,
        };
        let engine = Engine::new(EngineConfig::default(), Registry::default()).snapshot();
        let token = parse_event_str(r#"{"type":"token","event":"issued","time":"2024-03-01T12:00:00Z","client_id":"app","token_id":"t1","scope_granted":"patient/*.rs"}"#).unwrap();
        let mut h = StreamHistory::open(&settings, "state/p0".into(), 4, &engine).unwrap();
        h.add(&token).unwrap();
        h.commit().unwrap();
        let first = files(dir.path());
        assert_eq!(first.len(), 1, "{first:?}");
        // The checkpoint after it was never saved: a restart resumes generation 4 again.
        let mut again = StreamHistory::open(&settings, "state/p0".into(), 4, &engine).unwrap();
        assert!(
            files(dir.path()).is_empty(),
            "the interrupted segment is removed"
        );
        again.add(&token).unwrap();
        again.commit().unwrap();
        assert_eq!(
            files(dir.path()),
            first,
            "and written again under the same name"
        );
        // The next segment (after generation 5 was saved) gets files of its own.
        again.start(5);
        again.add(&token).unwrap();
        again.commit().unwrap();
        assert_eq!(files(dir.path()).len(), 2);
        // Another stream's segment of the same generation is its own.
        let other = StreamHistory::open(&settings, "state/p1".into(), 4, &engine).unwrap();
        drop(other);
        assert_eq!(files(dir.path()).len(), 2);
    }
}
