//! `run --follow`: the streaming service over growing files and directories. One engine (files
//! carry no partitioning), fed by the [`Tailer`] through the same event-time merge as a Kafka
//! partition ([`PartitionWorker`]): each followed file is an input keyed by its fingerprint,
//! and the checkpoint holds every file's byte position next to the engine state.
//!
//! Delivery matches the Kafka service: every `checkpoint_every`, and on SIGINT/SIGTERM, alerts
//! and dead letters are made durable before the checkpoint that covers them is written. After a
//! crash the files are read again from the checkpointed positions; alerts since then are
//! written again with the same ids.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::latency::LatencyHistogram;
use super::metrics::{Metrics, MetricsSnapshot, Readiness};
use super::outputs::{OutputError, Outputs};
use super::partition::{now_ms, PartitionWorker};
use super::records::{decode_record, RecordOrigin};
use super::state_dir::{StateDir, StateDirError};
use super::stream_history::HistorySettings;
use crate::detect::EngineConfig;
use crate::event::{Reject, RejectKind};
use crate::ingest::format::{DecodeOptions, InputFormat};
use crate::ingest::tail::{Change, Tailer};
use crate::ingest::{
    DeadLetter, DeadLetterWriter, IngestError, OwnOutputs, SkippedFile, SourceCounts,
};
use crate::registry::Registry;
use crate::sinks::AlertSink;

/// Lines read from one file and not yet given to the engine before reading it pauses (the
/// merge waits on a file that lags in event time): memory stays bounded.
const QUEUE_LIMIT: usize = 20_000;
/// Lines read from one file per pass: small enough that a line read waits little for the rest
/// of its pass to be decoded before the merge releases it.
const READ_BATCH: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("{0}")]
    Sink(std::io::Error),
    #[error("dead-letter output: {0}")]
    DeadLetter(std::io::Error),
    #[error("state: {0}")]
    State(#[from] StateDirError),
}

impl From<OutputError> for FollowError {
    fn from(e: OutputError) -> FollowError {
        match e {
            OutputError::Sink(e) => FollowError::Sink(e),
            OutputError::DeadLetter(e) => FollowError::DeadLetter(e),
        }
    }
}

pub struct FollowSettings {
    /// Files and directories to follow (they may appear later), each with its own input format
    /// or `None` for the run's.
    pub inputs: Vec<(String, Option<InputFormat>)>,
    /// The state directory (one checkpoint: engine, baselines, file positions).
    pub state_root: PathBuf,
    pub checkpoint_every: Duration,
    pub lateness_seconds: i64,
    pub max_line_bytes: usize,
    /// How often the inputs are listed and idle files polled for growth.
    pub poll: Duration,
    pub metrics: Option<Metrics>,
    /// The history store to write, if any.
    pub history: Option<HistorySettings>,
    /// Stop once every file found has been read to its end, treating that as the end of the
    /// stream (open hours, days and incidents close): catch-up runs, benches, tests.
    pub exit_at_end: bool,
    /// The run's own outputs, never followed even when they sit in a followed directory.
    pub own_outputs: OwnOutputs,
}

/// What the run did, for the end-of-run report.
#[derive(Debug, Default)]
pub struct FollowReport {
    /// Counts per file (by the name it had when first found).
    pub sources: BTreeMap<String, SourceCounts>,
    pub skipped_files: Vec<SkippedFile>,
    pub alerts: u64,
    /// Alert records a silence kept out of the sink.
    pub suppressed: u64,
    pub checkpoints: u64,
    pub files_opened: u64,
    pub files_closed: u64,
    /// Rows this run wrote to the history store (access, tokens, alerts).
    pub history_rows: (u64, u64, u64),
    /// Line read → given to the detection engine.
    pub latency: LatencyHistogram,
}

struct Follower {
    worker: PartitionWorker,
    tailer: Tailer,
    outputs: Outputs,
    /// How the files found under each input are decoded, input by input.
    decodes: Vec<DecodeOptions>,
    max_line_bytes: usize,
    report: FollowReport,
    /// Files not read, and why (a copy, unreadable): warned once, listed in the end-of-run
    /// summary unless they were read after all.
    not_read: BTreeMap<String, String>,
    last_checkpoint_at: Instant,
}

impl Follower {
    /// Lists the inputs; every file found new becomes an input of the merge, in the tailer's
    /// order (the two lists stay index for index).
    fn scan(&mut self) {
        let worker = &self.worker;
        let changes = self.tailer.scan(&|key| worker.position_of(key));
        for change in changes {
            match change {
                Change::Opened { key, name, start } => {
                    tracing::info!(source = %name, start, "following file");
                    self.not_read.remove(&name);
                    self.worker.add_input_at(key, start);
                    self.report
                        .sources
                        .entry(name.clone())
                        .or_insert_with(|| SourceCounts::new(&name));
                    self.report.files_opened += 1;
                }
                Change::Copy { path, of } => {
                    let reason = format!("same first line as {of}: taken for a copy, not read");
                    tracing::warn!(path = %path, "{reason}");
                    self.not_read.insert(path, reason);
                }
                Change::Unreadable { path, reason } => {
                    if !self.not_read.contains_key(&path) {
                        tracing::warn!(path = %path, "cannot read (retrying at each scan): {reason}");
                    }
                    self.not_read.insert(path, format!("cannot read: {reason}"));
                }
            }
        }
        for skipped in self.tailer.take_skipped() {
            tracing::warn!(path = %skipped.path, "skipped file: {}", skipped.reason);
            self.report.skipped_files.push(skipped);
        }
    }

    /// Reads what the files have gained (up to each one's queue room), releases what the
    /// merge allows, emits. Returns the lines read.
    fn read(&mut self) -> Result<usize, FollowError> {
        let mut total = 0;
        for i in 0..self.tailer.files().len() {
            let budget = QUEUE_LIMIT
                .saturating_sub(self.worker.queued(i))
                .min(READ_BATCH);
            if budget == 0 {
                continue;
            }
            let name = self.tailer.files()[i].file.name.clone();
            let counts = self
                .report
                .sources
                .entry(name.clone())
                .or_insert_with(|| SourceCounts::new(&name));
            let root = self.tailer.files()[i].root;
            let (worker, dead_letter, decode) = (
                &mut self.worker,
                &mut self.outputs.dead_letter,
                &self.decodes[root],
            );
            let max = self.max_line_bytes;
            let mut failed = None;
            // "Received" for the latency histogram: when the line was read.
            let read_ms = now_ms();
            let read = self.tailer.read(i, budget, &mut |line| {
                counts.bytes += line.end - line.offset;
                let rejected = line.too_long.then(|| {
                    Reject::new(
                        RejectKind::LineTooLong,
                        format!(
                            "line is {} bytes, longer than the {max}-byte limit (--max-line-bytes)",
                            line.len
                        ),
                    )
                });
                let origin = RecordOrigin {
                    source: &name,
                    line: line.number,
                    offset: Some(line.offset),
                };
                match decode_record(
                    line.bytes,
                    line.len,
                    rejected,
                    decode,
                    counts,
                    dead_letter,
                    &origin,
                ) {
                    Ok(records) => worker.offer_span(
                        i,
                        to_i64(line.offset),
                        to_i64(line.end),
                        records,
                        Some(read_ms),
                    ),
                    Err(e) => {
                        failed.get_or_insert(e);
                    }
                }
            });
            if let Some(e) = failed {
                return Err(FollowError::DeadLetter(e));
            }
            let file = &self.tailer.files()[i].file;
            match read {
                Ok(n) => total += n,
                Err(e) => {
                    let reason = format!("read failed after {} bytes: {e}", file.complete_end());
                    tracing::warn!(source = %name, "{reason}");
                    counts.error = Some(reason.clone());
                    self.outputs
                        .dead_letter
                        .write(&DeadLetter::new(
                            &name,
                            None,
                            Some(file.complete_end()),
                            RejectKind::ReadError,
                            reason,
                            b"",
                            0,
                        ))
                        .map_err(FollowError::DeadLetter)?;
                }
            }
            // Caught up when everything written so far was read; otherwise the merge waits.
            let end = to_i64(file.complete_end());
            let more = !(file.at_eof || file.ended);
            self.worker
                .set_high_watermark(i, if more { end + 1 } else { end });
        }
        let (mut alerts, mut late) = (Vec::new(), Vec::new());
        self.worker.release(&mut alerts, &mut late);
        self.outputs.emit(&alerts, late, &mut self.report.sources)?;
        Ok(total)
    }

    /// Every followed file read to what is written of it, and nothing left in the merge.
    fn at_end(&self) -> bool {
        self.tailer
            .files()
            .iter()
            .all(|f| f.file.at_eof || f.file.ended)
            && (0..self.tailer.files().len()).all(|i| self.worker.queued(i) == 0)
    }

    /// Closes files that are finished and whose lines were all given to the engine.
    fn close_finished(&mut self) {
        for i in self.tailer.finished().into_iter().rev() {
            if self.worker.remove_input(i) {
                if let Some(file) = self.tailer.close(i) {
                    tracing::info!(source = %file.name, at = file.complete_end(), "file done");
                    self.report.files_closed += 1;
                }
            }
        }
    }

    fn checkpoint(&mut self) -> Result<(), FollowError> {
        self.outputs.make_durable()?;
        let now = Instant::now();
        let tailer = &self.tailer;
        self.worker
            .forget_positions(|key| tailer.remembers(key, now));
        self.worker.checkpoint()?;
        self.report.checkpoints += 1;
        self.last_checkpoint_at = Instant::now();
        Ok(())
    }

    /// Ready once the state is restored and every file found can be read (a file that
    /// cannot be read is retried at each scan; until then its events are not seen).
    fn readiness(&self) -> Readiness {
        let unreadable = self
            .not_read
            .values()
            .filter(|reason| reason.starts_with("cannot read"))
            .count();
        if unreadable == 0 {
            Readiness::Ready
        } else {
            Readiness::NotReady(format!("{unreadable} followed file(s) cannot be read"))
        }
    }

    fn snapshot(&self) -> MetricsSnapshot {
        let mut file_lag_bytes = BTreeMap::new();
        for f in self.tailer.files() {
            let on_disk = std::fs::metadata(&f.file.path).map_or(0, |m| m.len());
            let behind = if f.file.compressed || f.gone() {
                0
            } else {
                on_disk.saturating_sub(f.file.complete_end())
            };
            file_lag_bytes.insert(f.file.name.clone(), behind);
        }
        MetricsSnapshot {
            sources: self.report.sources.clone(),
            alerts: self.outputs.alerts_by_kind.clone(),
            alerts_suppressed: self.outputs.suppressed,
            lag: BTreeMap::new(),
            file_lag_bytes,
            latency: self.worker.latency.clone(),
            checkpoints: self.report.checkpoints,
            seconds_since_checkpoint: self.last_checkpoint_at.elapsed().as_secs_f64(),
            state_bytes: self.worker.state_bytes,
            // One engine over the files; "broker" reachability does not apply.
            assigned_partitions: 1,
            broker_reachable: true,
            already_in_checkpoint: 0,
            readiness: self.readiness(),
        }
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Follows the inputs until `stop` is set (SIGINT/SIGTERM), then checkpoints and returns.
pub fn run_follow(
    settings: FollowSettings,
    config: EngineConfig,
    registry: Registry,
    decode: DecodeOptions,
    sink: Box<dyn AlertSink>,
    dead_letter: DeadLetterWriter,
    stop: Arc<AtomicBool>,
) -> Result<FollowReport, FollowError> {
    let roots: Vec<String> = settings.inputs.iter().map(|(p, _)| p.clone()).collect();
    let decodes = settings
        .inputs
        .iter()
        .map(|(_, format)| match format {
            Some(format) => DecodeOptions {
                format: format.clone(),
                ..decode.clone()
            },
            None => decode.clone(),
        })
        .collect();
    let tailer = Tailer::new(&roots, settings.max_line_bytes)?
        .with_own_outputs(settings.own_outputs.clone());
    let mut worker = PartitionWorker::open_keyed(
        0,
        Vec::new(),
        StateDir::new(&settings.state_root),
        config,
        registry,
    )?;
    if let Some(history) = &settings.history {
        worker = worker.with_history(history)?;
    }
    tracing::info!(
        restored_events = worker.engine().stats().events,
        "following files"
    );
    let mut f = Follower {
        worker,
        tailer,
        outputs: Outputs::new(sink, dead_letter, settings.lateness_seconds),
        decodes,
        max_line_bytes: settings.max_line_bytes,
        report: FollowReport::default(),
        not_read: BTreeMap::new(),
        last_checkpoint_at: Instant::now(),
    };
    let mut last_scan: Option<Instant> = None;
    let mut last_metrics: Option<Instant> = None;
    while !stop.load(Ordering::SeqCst) {
        let mut scanned = false;
        if last_scan.is_none_or(|t| t.elapsed() >= settings.poll) {
            last_scan = Some(Instant::now());
            f.scan();
            scanned = true;
        }
        let read = f.read()?;
        // The end: a scan found nothing new and every file is read to its end.
        if settings.exit_at_end && scanned && read == 0 && f.at_end() {
            tracing::info!("every file read to its end: finishing");
            let (mut alerts, mut late) = (Vec::new(), Vec::new());
            f.worker.finish(&mut alerts, &mut late);
            f.outputs.emit(&alerts, late, &mut f.report.sources)?;
            break;
        }
        f.close_finished();
        if f.last_checkpoint_at.elapsed() >= settings.checkpoint_every {
            f.checkpoint()?;
        }
        if let Some(m) = &settings.metrics {
            if last_metrics.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                last_metrics = Some(Instant::now());
                m.publish(f.snapshot());
            }
        }
        if read == 0 {
            std::thread::sleep(settings.poll.min(Duration::from_millis(100)));
        }
    }
    tracing::info!("stopping: checkpointing");
    f.checkpoint()?;
    f.report.alerts = f.outputs.alerts;
    f.report.suppressed = f.outputs.suppressed;
    for (path, reason) in std::mem::take(&mut f.not_read) {
        f.report.skipped_files.push(SkippedFile { path, reason });
    }
    f.report.latency = f.worker.latency.clone();
    if let Some((counts, alerts)) = f.worker.history_counts() {
        f.report.history_rows = (counts.access_rows, counts.token_rows, alerts);
    }
    Ok(f.report)
}
