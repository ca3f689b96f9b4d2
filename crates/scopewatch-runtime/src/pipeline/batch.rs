//! The batch driver (`detect`, `run --input`): restores the state directory when there is one,
//! replays the sources through the engine on two cores, writes alerts through the sink and the
//! accepted events, alerts, dead letters and baselines to the history store, then ends the
//! stream or checkpoints it. The command line only parses flags, builds a [`BatchRun`] and
//! prints the [`BatchReport`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::alert::Alert;
use crate::baseline::Baselines;
use crate::detect::{CarriedOver, Engine, EngineConfig, StateError};
use crate::event::{Event, Timestamp};
use crate::ingest::{IngestError, IngestSummary, Ingestor, Source};
use crate::registry::Registry;
use crate::sinks::AlertSink;
use crate::sql::history::{
    write_alerts, write_baselines, write_dead_letters, HistoryError, HistoryWriter,
};

use super::replay::{replay, Progress, ReplayError};
use super::state_dir::{Checkpoint, StateDir, StateDirError};
use super::state_lock::StateLock;
use super::stream_history::HistorySettings;

/// One batch run: what to read, how to judge it, where its state and history go.
pub struct BatchRun<'a> {
    pub sources: &'a [Source],
    /// Configured with the run's dead-letter output and the files the command line skipped.
    pub ingestor: Ingestor,
    pub registry: Registry,
    pub config: EngineConfig,
    /// The state directory: continue from its checkpoint, leave a new one at the end.
    pub state: Option<&'a Path>,
    /// With a state directory: end the stream anyway (judge open hours, close incidents).
    pub flush: bool,
    pub history: Option<HistorySettings>,
    /// The dead-letter file this run writes (None for stdout): its records go to the store.
    pub dead_letter_file: Option<&'a Path>,
    /// Where the sink writes, for error messages.
    pub alerts_name: &'a str,
}

/// What a finished batch run did, for the command line's table and `--summary`.
pub struct BatchReport {
    pub ingest: IngestSummary,
    pub dead_lettered: u64,
    pub engine: Engine,
    /// What stays open in the checkpoint (None when the stream was ended).
    pub carried: Option<CarriedOver>,
    pub history: Option<HistoryReport>,
    pub checkpoint: Option<PathBuf>,
}

/// Rows and files the run wrote to the history store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistoryReport {
    pub access_rows: u64,
    pub token_rows: u64,
    pub alert_rows: u64,
    pub dead_letter_rows: u64,
    pub files: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error(transparent)]
    Lock(StateDirError),
    #[error("restoring state from {dir}")]
    State {
        dir: String,
        #[source]
        source: StateDirError,
    },
    #[error("restoring state from {dir}")]
    Restore {
        dir: String,
        #[source]
        source: StateError,
    },
    #[error("writing alerts to {dest}")]
    Alerts {
        dest: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Replay(ReplayError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("{0}")]
    History(#[from] HistoryError),
    #[error("checkpointing state to {dir}")]
    Checkpoint {
        dir: String,
        #[source]
        source: StateDirError,
    },
}

/// Runs the batch: every alert (suppressed ones included, which the sink never sees) is shown
/// to `on_alert` in output order, so the caller can count them.
pub fn run_batch(
    run: BatchRun<'_>,
    sink: &mut dyn AlertSink,
    on_alert: &mut dyn FnMut(&Alert),
    on_progress: &mut dyn FnMut(&Progress<'_>),
) -> Result<BatchReport, BatchError> {
    let BatchRun {
        sources,
        ingestor,
        registry,
        config,
        state,
        flush,
        history: settings,
        dead_letter_file,
        alerts_name,
    } = run;
    let _lock = state
        .map(StateLock::acquire)
        .transpose()
        .map_err(BatchError::Lock)?;
    let state_dir = state.map(StateDir::new);
    let lateness = config.lateness_seconds;
    let (mut engine, mut positions) = restore(config, registry, state_dir.as_ref())?;
    warn_already_read(sources, &positions);
    let run_id = run_id(sources);
    let mut history = settings.as_ref().map(|h| {
        HistoryWriter::new(h.store.dir(), &run_id, h.fhir_base.as_deref())
            .with_pseudonymizer(h.pseudonymizer.clone())
    });
    let mut tap = |e: &Event| match history.as_mut() {
        Some(h) => h.add(e).map_err(|e| format!("writing history: {e}")),
        None => Ok(()),
    };
    let keep_alerts = settings.is_some();
    let mut all_alerts: Vec<Alert> = Vec::new();
    let mut emit = |alerts: &[Alert]| -> std::io::Result<()> {
        for a in alerts {
            on_alert(a);
            if a.suppressed_by.is_none() {
                sink.write(std::slice::from_ref(a))?;
            }
        }
        if keep_alerts {
            all_alerts.extend_from_slice(alerts);
        }
        Ok(())
    };
    let alerts_error = |source| BatchError::Alerts {
        dest: alerts_name.to_owned(),
        source,
    };
    let (ingestor, _late) = replay(
        sources,
        ingestor,
        &mut engine,
        lateness,
        Some(&mut tap),
        &mut emit,
        on_progress,
    )
    .map_err(|e| match e {
        ReplayError::Alerts(source) => alerts_error(source),
        other => BatchError::Replay(other),
    })?;
    let mut pending = Vec::new();
    let carried = if state_dir.is_none() || flush {
        engine.finish(&mut pending);
        None
    } else {
        Some(engine.carried_over())
    };
    emit(&pending).map_err(alerts_error)?;
    sink.make_durable().map_err(alerts_error)?;
    let dead_lettered = ingestor.dead_lettered();
    let ingest = ingestor.finish()?;
    let history_report = match (history.as_mut(), &settings) {
        (Some(writer), Some(settings)) => Some(finish_history(
            writer,
            settings,
            &run_id,
            &all_alerts,
            dead_letter_file.filter(|_| dead_lettered > 0),
            engine.baselines(),
        )?),
        _ => None,
    };
    let checkpoint = match &state_dir {
        Some(dir) => Some(checkpoint(
            dir,
            &engine,
            positions_after(&mut positions, &ingest),
        )?),
        None => None,
    };
    Ok(BatchReport {
        ingest,
        dead_lettered,
        engine,
        carried,
        history: history_report,
        checkpoint,
    })
}

/// The engine and the byte positions its checkpoint covers, or a new engine.
fn restore(
    config: EngineConfig,
    registry: Registry,
    state_dir: Option<&StateDir>,
) -> Result<(Engine, BTreeMap<String, u64>), BatchError> {
    let checkpoint = match state_dir {
        Some(dir) => dir.load().map_err(|source| BatchError::State {
            dir: dir.root().display().to_string(),
            source,
        })?,
        None => None,
    };
    let Some(c) = checkpoint else {
        return Ok((Engine::new(config, registry), BTreeMap::new()));
    };
    tracing::info!(
        apps = c.baselines.apps.len(),
        buffered_events = c.engine.order.pending.len(),
        open_incidents = c.engine.incidents.len(),
        "continuing from checkpoint"
    );
    let engine = Engine::restore(config, registry, c.baselines, c.engine).map_err(|source| {
        BatchError::Restore {
            dir: state_dir.map_or(String::new(), |d| d.root().display().to_string()),
            source,
        }
    })?;
    Ok((engine, c.positions))
}

fn warn_already_read(sources: &[Source], positions: &BTreeMap<String, u64>) {
    for name in sources.iter().map(Source::name) {
        if positions.contains_key(&name) {
            tracing::warn!(
                source = %name,
                "this input was already read into the state directory: events behind the checkpoint are dead-lettered as late (use a new --state DIR to replay it)"
            );
        }
    }
}

/// Flushes the history writer and writes the run's alerts, dead letters and baselines beside
/// it, then publishes the run (uploads it when the store is remote).
fn finish_history(
    writer: &mut HistoryWriter,
    settings: &HistorySettings,
    run_id: &str,
    alerts: &[Alert],
    dead_letter_file: Option<&Path>,
    baselines: &Baselines,
) -> Result<HistoryReport, HistoryError> {
    let data = settings.store.dir();
    let counts = writer.finish()?;
    let alert_files = write_alerts(data, run_id, alerts)?;
    // Only a dead-letter file this run created holds this run's records.
    let keep_raw = settings.pseudonymizer.is_none();
    let dead_letter_rows = match dead_letter_file {
        Some(path) => write_dead_letters(data, run_id, Timestamp::now(), path, keep_raw)?,
        None => 0,
    };
    write_baselines(data, baselines)?;
    settings.store.publish(run_id)?;
    Ok(HistoryReport {
        access_rows: counts.access_rows,
        token_rows: counts.token_rows,
        alert_rows: alerts.len() as u64,
        dead_letter_rows,
        files: counts.files + alert_files,
    })
}

/// The positions after this run: each source's earlier position plus the bytes read now.
fn positions_after(
    positions: &mut BTreeMap<String, u64>,
    ingest: &IngestSummary,
) -> BTreeMap<String, u64> {
    for counts in &ingest.sources {
        *positions.entry(counts.source.clone()).or_insert(0) += counts.bytes;
    }
    std::mem::take(positions)
}

fn checkpoint(
    dir: &StateDir,
    engine: &Engine,
    positions: BTreeMap<String, u64>,
) -> Result<PathBuf, BatchError> {
    let saved = dir
        .save(&Checkpoint {
            baselines: engine.baselines().clone(),
            engine: engine.snapshot(),
            positions,
        })
        .map_err(|source| BatchError::Checkpoint {
            dir: dir.root().display().to_string(),
            source,
        })?;
    tracing::info!(checkpoint = %saved.display(), "state checkpointed");
    Ok(saved)
}

/// Names this run's history files: the same input files (names and sizes) give the same id, so
/// re-running over them replaces their files instead of duplicating rows; stdin gets the time.
fn run_id(sources: &[Source]) -> String {
    let mut fields: Vec<String> = Vec::new();
    for s in sources {
        match s {
            Source::File(path) => {
                let len = std::fs::metadata(path).map_or(0, |m| m.len());
                fields.push(format!("{}:{len}", path.display()));
            }
            Source::Stdin => fields.push(format!("stdin:{}", Timestamp::now().0)),
        }
    }
    let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
    crate::alert::stable_id(&refs)[..16].to_string()
}
