//! The streaming service over Kafka: a consumer group reads the token and access topics
//! (keyed by `client_id`, co-partitioned), each assigned partition runs its own
//! [`PartitionWorker`] (engine + merge of its inputs), alerts go to the sink, and state is
//! checkpointed per partition.
//!
//! Delivery is at least once: offsets are committed only after the alerts and the checkpoint
//! covering them are durable. After a crash, messages between the last commit and the last
//! checkpoint are re-delivered and skipped (their offsets are below the checkpoint's
//! positions); alerts since the last checkpoint are produced again with the same ids.
//! On revoke a partition is checkpointed and committed before it is released, so the next
//! owner continues exactly.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::latency::LatencyHistogram;
use super::metrics::{Metrics, MetricsSnapshot, Readiness};
use super::outputs::{OutputError, Outputs};
use super::partition::{LateRecord, PartitionWorker};
use super::records::{decode_record, RecordOrigin};
use super::state_dir::StateDir;
use super::stream_history::HistorySettings;
use crate::detect::EngineConfig;
use crate::ingest::format::DecodeOptions;
use crate::ingest::{DeadLetterWriter, SourceCounts};
use crate::registry::Registry;
use crate::sinks::AlertSink;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("Kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("{0}")]
    Sink(std::io::Error),
    #[error("dead-letter output: {0}")]
    DeadLetter(std::io::Error),
    #[error("partition {partition} state: {source}")]
    State {
        partition: i32,
        source: super::state_dir::StateDirError,
    },
}

impl From<OutputError> for ServiceError {
    fn from(e: OutputError) -> ServiceError {
        match e {
            OutputError::Sink(e) => ServiceError::Sink(e),
            OutputError::DeadLetter(e) => ServiceError::DeadLetter(e),
        }
    }
}

pub struct KafkaSettings {
    /// librdkafka settings (bootstrap.servers, security, …); group.id included.
    pub client: ClientConfig,
    pub token_topic: String,
    pub access_topic: String,
    /// Root of the per-partition state directories (`partition-N/`).
    pub state_root: PathBuf,
    pub checkpoint_every: Duration,
    /// Treat the end of the topics as the end of the stream: finish, checkpoint, exit.
    pub exit_at_end: bool,
    pub lateness_seconds: i64,
    /// Where to publish the operational snapshot (`--metrics-addr`), if anywhere.
    pub metrics: Option<Metrics>,
    /// The history store to write, if any.
    pub history: Option<HistorySettings>,
}

/// What the run did, for the end-of-run report.
#[derive(Debug, Default)]
pub struct ServiceReport {
    pub sources: BTreeMap<String, SourceCounts>,
    /// Re-delivered messages already covered by a checkpoint (after a crash or a rebalance).
    pub already_in_checkpoint: u64,
    /// Records received but not yet processed when their partition was revoked: they are read
    /// again (by this instance or the next owner), so they also appear again in `sources`.
    pub requeued: u64,
    pub alerts: u64,
    /// Alert records a silence kept out of the sink.
    pub suppressed: u64,
    /// Produced to Kafka → event given to the engine, over every partition this run owned.
    pub latency: LatencyHistogram,
    /// Produced to Kafka → received by this service (the broker's and the fetch's share).
    pub receive_latency: LatencyHistogram,
    pub checkpoints: u64,
    /// Rows this run wrote to the history store (access, tokens, alerts).
    pub history_rows: (u64, u64, u64),
}

impl ServiceReport {
    fn add_history(&mut self, worker: &PartitionWorker) {
        if let Some((counts, alerts)) = worker.history_counts() {
            self.history_rows.0 += counts.access_rows;
            self.history_rows.1 += counts.token_rows;
            self.history_rows.2 += alerts;
        }
    }
}

/// An input whose queue (received, waiting for the other input in event time) reaches this many
/// records is paused at the broker, and resumed once it drains to [`QUEUE_RESUME_AT`]: memory
/// stays bounded however far one topic runs ahead of the other or of the engine.
const QUEUE_PAUSE_AT: usize = 20_000;
const QUEUE_RESUME_AT: usize = 5_000;

/// The end offset of a partition as the consumer's last fetch response gave it, without a
/// request (librdkafka keeps it; the Rust wrapper does not expose it). None before any fetch.
fn last_fetched_end(
    consumer: &BaseConsumer<RunContext>,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    let topic = std::ffi::CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client handle is alive for the borrow of `consumer`; the topic is a valid
    // NUL-terminated string for the call; librdkafka only writes the two i64 out-parameters.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
        .then_some(high)
}

/// Whether an input should be paused (`Some(true)`), resumed (`Some(false)`) or left as it is.
/// The gap between the two thresholds keeps it from flapping on every message.
fn backpressure_change(paused: bool, queued: usize) -> Option<bool> {
    if !paused && queued >= QUEUE_PAUSE_AT {
        Some(true)
    } else if paused && queued <= QUEUE_RESUME_AT {
        Some(false)
    } else {
        None
    }
}

struct Service {
    topics: Vec<String>,
    /// The last attempt to read end offsets failed (warned once until it recovers).
    end_offsets_failing: bool,
    /// (input, partition) pairs paused for backpressure.
    paused: BTreeSet<(usize, i32)>,
    state_root: PathBuf,
    history: Option<HistorySettings>,
    config: EngineConfig,
    registry: Registry,
    decode: DecodeOptions,
    workers: BTreeMap<i32, PartitionWorker>,
    outputs: Outputs,
    report: ServiceReport,
    /// An error raised inside a rebalance callback, which cannot return one.
    failed: Option<ServiceError>,
    last_checkpoint_at: Instant,
}

impl Service {
    fn input_of(&self, topic: &str) -> Option<usize> {
        self.topics.iter().position(|t| t == topic)
    }

    fn open_partition(&mut self, partition: i32) -> Result<(), ServiceError> {
        if self.workers.contains_key(&partition) {
            return Ok(());
        }
        let dir = StateDir::new(self.state_root.join(format!("partition-{partition}")));
        let mut worker = PartitionWorker::open(
            partition,
            &self.topics,
            dir,
            self.config.clone(),
            self.registry.clone(),
        )
        .map_err(|source| ServiceError::State { partition, source })?;
        if let Some(history) = &self.history {
            worker = worker
                .with_history(history)
                .map_err(|source| ServiceError::State { partition, source })?;
        }
        tracing::info!(
            partition,
            restored_events = worker.engine().stats().events,
            "partition assigned"
        );
        self.workers.insert(partition, worker);
        Ok(())
    }

    fn handle(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        payload: Option<&[u8]>,
        produced_ms: Option<i64>,
    ) -> Result<(), ServiceError> {
        let Some(input) = self.input_of(topic) else {
            return Ok(());
        };
        let Some(worker) = self.workers.get_mut(&partition) else {
            // Fetched before a revoke: the partition's new owner reads it from the commit.
            return Ok(());
        };
        // The worker keeps the `topic:partition` key: no string built per message.
        let Some(source) = worker.input_key(input) else {
            return Ok(());
        };
        if !self.report.sources.contains_key(source) {
            self.report
                .sources
                .insert(source.to_string(), SourceCounts::new(source));
        }
        if worker.already_processed(input, offset) {
            self.report.already_in_checkpoint += 1;
            return Ok(());
        }
        let Some(counts) = self.report.sources.get_mut(source) else {
            return Ok(());
        };
        let bytes = payload.unwrap_or_default();
        counts.bytes += bytes.len() as u64;
        let origin = RecordOrigin {
            source,
            line: None,
            offset: u64::try_from(offset).ok(),
        };
        let records = decode_record(
            bytes,
            bytes.len() as u64,
            None,
            &self.decode,
            counts,
            &mut self.outputs.dead_letter,
            &origin,
        )
        .map_err(ServiceError::DeadLetter)?;
        worker.offer(input, offset, records, produced_ms);
        let (mut alerts, mut late) = (Vec::new(), Vec::new());
        worker.release(&mut alerts, &mut late);
        self.emit(&alerts, late)
    }

    fn emit(
        &mut self,
        alerts: &[crate::alert::Alert],
        late: Vec<LateRecord>,
    ) -> Result<(), ServiceError> {
        self.outputs
            .emit(alerts, late, &mut self.report.sources)
            .map_err(ServiceError::from)
    }

    /// Releases what the consumer's last fetches unblock: a fetch response carries each
    /// partition's end offset, which the client keeps, so an input the merge waits on is known
    /// caught up without a request. Cheap enough to run after every poll; `refresh_ends` asks
    /// the broker directly when nothing is being fetched.
    fn use_fetched_ends(
        &mut self,
        consumer: &BaseConsumer<RunContext>,
    ) -> Result<(), ServiceError> {
        let mut alerts = Vec::new();
        let mut late = Vec::new();
        for (partition, worker) in &mut self.workers {
            // Checked first: this runs after every message, and most workers wait on nothing.
            if !worker.is_waiting() {
                continue;
            }
            let waiting = worker.waiting_inputs();
            for input in waiting {
                if let Some(high) = last_fetched_end(consumer, &self.topics[input], *partition) {
                    worker.set_high_watermark(input, high);
                }
            }
            worker.release(&mut alerts, &mut late);
        }
        self.emit(&alerts, late)
    }

    /// Asks the broker where each waiting input ends, then releases what that unblocks.
    fn refresh_ends(&mut self, probe: &BaseConsumer, all: bool) -> Result<(), ServiceError> {
        let mut alerts = Vec::new();
        let mut late = Vec::new();
        let mut unreachable_broker = false;
        for (partition, worker) in &mut self.workers {
            let inputs: Vec<usize> = if all {
                (0..self.topics.len()).collect()
            } else {
                worker.waiting_inputs()
            };
            for input in inputs {
                let topic = &self.topics[input];
                // Short, and one failure ends the round: this runs between polls, and a broker
                // outage must not hold the group consumer past its poll interval.
                match probe.fetch_watermarks(topic, *partition, Duration::from_secs(1)) {
                    Ok((_, high)) => worker.set_high_watermark(input, high),
                    Err(e) => {
                        if !self.end_offsets_failing {
                            tracing::warn!(topic = %topic, partition, "cannot read the partition's end offset (will retry): {e}");
                        }
                        unreachable_broker = true;
                        break;
                    }
                }
            }
            worker.release(&mut alerts, &mut late);
            if unreachable_broker {
                break;
            }
        }
        if self.end_offsets_failing && !unreachable_broker {
            tracing::info!("end offsets readable again");
        }
        self.end_offsets_failing = unreachable_broker;
        self.emit(&alerts, late)
    }

    /// Makes alerts and dead letters durable, checkpoints the partitions, then commits their
    /// offsets — in that order, so a commit never covers anything that could be lost.
    /// `mode`: periodic checkpoints commit asynchronously so an unreachable broker never stalls
    /// the loop (a late or failed commit only means more re-delivered, skipped messages);
    /// revokes and shutdown commit synchronously so the next owner starts where this one ended.
    fn checkpoint(
        &mut self,
        consumer: &BaseConsumer<RunContext>,
        partitions: &[i32],
        mode: CommitMode,
    ) -> Result<(), ServiceError> {
        self.outputs.make_durable()?;
        let mut tpl = TopicPartitionList::new();
        for p in partitions {
            let Some(worker) = self.workers.get_mut(p) else {
                continue;
            };
            worker.checkpoint().map_err(|source| ServiceError::State {
                partition: *p,
                source,
            })?;
            tracing::debug!(
                partition = *p,
                events = worker.engine().stats().events,
                queued = ?(0..self.topics.len()).map(|i| worker.queued(i)).collect::<Vec<_>>(),
                "partition checkpointed"
            );
            for (key, offset) in worker.positions() {
                if let Some((topic, _)) = key.rsplit_once(':') {
                    // Nothing read yet: nothing to commit for this input.
                    if offset > 0 {
                        let _ = tpl.add_partition_offset(topic, *p, Offset::Offset(offset));
                    }
                }
            }
        }
        self.report.checkpoints += 1;
        self.last_checkpoint_at = Instant::now();
        if tpl.count() > 0 {
            // A failed commit loses nothing: the checkpoint is durable and re-delivered
            // messages are skipped. Report it and go on.
            if let Err(e) = consumer.commit(&tpl, mode) {
                tracing::warn!("offset commit failed (state is checkpointed; will retry): {e}");
            }
        }
        Ok(())
    }

    /// Pauses inputs whose queue is full and resumes those that drained.
    fn apply_backpressure(&mut self, consumer: &BaseConsumer<RunContext>) {
        for (partition, worker) in &self.workers {
            for (input, topic) in self.topics.iter().enumerate() {
                let queued = worker.queued(input);
                let key = (input, *partition);
                let paused = self.paused.contains(&key);
                let Some(pause) = backpressure_change(paused, queued) else {
                    continue;
                };
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition(topic, *partition);
                let result = if pause {
                    consumer.pause(&tpl)
                } else {
                    consumer.resume(&tpl)
                };
                match result {
                    Ok(()) => {
                        tracing::debug!(topic = %topic, partition, queued, pause, "backpressure");
                        if pause {
                            self.paused.insert(key);
                        } else {
                            self.paused.remove(&key);
                        }
                    }
                    Err(e) => tracing::warn!(topic = %topic, partition, "cannot pause/resume: {e}"),
                }
            }
        }
    }

    /// The operational snapshot (`--metrics-addr`).
    fn snapshot(&self, broker_reachable: bool) -> MetricsSnapshot {
        let mut latency = self.report.latency.clone();
        let mut lag = BTreeMap::new();
        let mut state_bytes = 0;
        for w in self.workers.values() {
            latency.merge(&w.latency);
            state_bytes += w.state_bytes;
            for (key, l) in w.lag() {
                lag.insert(key.to_string(), l);
            }
        }
        MetricsSnapshot {
            sources: self.report.sources.clone(),
            alerts: self.outputs.alerts_by_kind.clone(),
            alerts_suppressed: self.outputs.suppressed,
            lag,
            file_lag_bytes: BTreeMap::new(),
            latency,
            checkpoints: self.report.checkpoints,
            seconds_since_checkpoint: self.last_checkpoint_at.elapsed().as_secs_f64(),
            state_bytes,
            assigned_partitions: self.workers.len(),
            broker_reachable,
            already_in_checkpoint: self.report.already_in_checkpoint,
            readiness: if !broker_reachable {
                Readiness::NotReady("broker unreachable".into())
            } else if self.workers.is_empty() {
                Readiness::NotReady("no partitions assigned".into())
            } else {
                Readiness::Ready
            },
        }
    }

    fn all_partitions(&self) -> Vec<i32> {
        self.workers.keys().copied().collect()
    }
}

struct RunContext {
    service: Arc<Mutex<Service>>,
}

fn lock(service: &Arc<Mutex<Service>>) -> MutexGuard<'_, Service> {
    // A panic while holding the lock leaves the state as it was: keep going with it.
    service.lock().unwrap_or_else(|p| p.into_inner())
}

impl ClientContext for RunContext {}

impl ConsumerContext for RunContext {
    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        _offsets: &TopicPartitionList,
    ) {
        if let Err(e) = result {
            tracing::warn!(
                "offset commit failed (state is checkpointed; the next commit covers it): {e}"
            );
        }
    }

    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let mut partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
            partitions.sort_unstable();
            partitions.dedup();
            let mut s = lock(&self.service);
            tracing::info!(?partitions, "partitions revoked: checkpointing them");
            if let Err(e) = s.checkpoint(consumer, &partitions, CommitMode::Sync) {
                s.failed.get_or_insert(e);
            }
            for p in partitions {
                if let Some(w) = s.workers.remove(&p) {
                    let queued: usize = (0..s.topics.len()).map(|i| w.queued(i)).sum();
                    s.report.requeued += queued as u64;
                    s.report.latency.merge(&w.latency);
                    s.report.receive_latency.merge(&w.receive_latency);
                    s.report.add_history(&w);
                }
                s.paused.retain(|(_, paused)| *paused != p);
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                // A partition paused for backpressure before a revoke starts unpaused (our
                // record of pauses was cleared with the revoke).
                if let Err(e) = consumer.resume(tpl) {
                    tracing::warn!("cannot resume the assigned partitions: {e}");
                }
                let mut s = lock(&self.service);
                for e in tpl.elements() {
                    if let Err(err) = s.open_partition(e.partition()) {
                        s.failed.get_or_insert(err);
                    }
                }
            }
            Rebalance::Error(e) => tracing::warn!("rebalance error: {e}"),
            Rebalance::Revoke(_) => {}
        }
    }
}

/// Runs the service until `stop` is set (SIGINT/SIGTERM) or, with `exit_at_end`, until every
/// assigned partition has been read to its end.
#[allow(clippy::too_many_arguments)]
pub fn run_kafka(
    settings: KafkaSettings,
    config: EngineConfig,
    registry: Registry,
    decode: DecodeOptions,
    sink: Box<dyn AlertSink>,
    dead_letter: DeadLetterWriter,
    stop: Arc<AtomicBool>,
) -> Result<ServiceReport, ServiceError> {
    let mut topics = vec![settings.token_topic.clone()];
    if settings.access_topic != settings.token_topic {
        topics.push(settings.access_topic.clone());
    }
    let service = Arc::new(Mutex::new(Service {
        topics: topics.clone(),
        paused: BTreeSet::new(),
        end_offsets_failing: false,
        state_root: settings.state_root.clone(),
        history: settings.history.clone(),
        config,
        registry,
        decode,
        workers: BTreeMap::new(),
        outputs: Outputs::new(sink, dead_letter, settings.lateness_seconds),
        report: ServiceReport::default(),
        failed: None,
        last_checkpoint_at: Instant::now(),
    }));
    let mut client = settings.client.clone();
    client
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    if client.get("fetch.wait.max.ms").is_none() {
        // Brokers that hold a fetch for its whole wait even when data arrives (tansu does) add
        // that wait to every event's latency; 100 ms instead of librdkafka's 500 keeps p99 well
        // under a second at the cost of more (empty) fetches while idle.
        client.set("fetch.wait.max.ms", "100");
    }
    if client.get("auto.offset.reset").is_none() {
        client.set("auto.offset.reset", "earliest");
    }
    let consumer: BaseConsumer<RunContext> = client.create_with_context(RunContext {
        service: Arc::clone(&service),
    })?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&names)?;
    // End offsets are asked on a connection of their own: a broker may answer requests of one
    // connection in order, and the group consumer's long-polling fetches would hold them up.
    let mut probe_config = ClientConfig::new();
    for (k, v) in settings.client.config_map().iter() {
        let (k, v): (&str, &str) = (k, v);
        let group_only = [
            "group.",
            "enable.auto",
            "session.",
            "heartbeat.",
            "max.poll.",
            "auto.offset.",
        ];
        if !group_only.iter().any(|p| k.starts_with(p)) {
            probe_config.set(k, v);
        }
    }
    let probe: BaseConsumer = probe_config.create()?;
    let mut last_checkpoint = Instant::now();
    let mut last_refresh = Instant::now();
    let mut last_metrics = Instant::now();
    let mut broker_down_since: Option<Instant> = None;
    let outcome = loop {
        if stop.load(Ordering::SeqCst) {
            tracing::info!("stopping: checkpointing and committing");
            let mut s = lock(&service);
            let all = s.all_partitions();
            // With the broker unreachable a synchronous commit would wait for it: the
            // checkpoint already covers the offsets, so shutdown does not wait.
            let mode = if broker_down_since.is_some() {
                CommitMode::Async
            } else {
                CommitMode::Sync
            };
            break s.checkpoint(&consumer, &all, mode);
        }
        let polled = consumer.poll(Duration::from_millis(100));
        let mut s = lock(&service);
        if let Some(e) = s.failed.take() {
            break Err(e);
        }
        let idle = match polled {
            None => {
                // The end of the stream is known from the fetch responses' end offsets even
                // when the broker is too slow to answer the probe.
                if let Err(e) = s.use_fetched_ends(&consumer) {
                    break Err(e);
                }
                true
            }
            Some(Ok(m)) => {
                if let Some(since) = broker_down_since.take() {
                    tracing::info!(
                        after_seconds = since.elapsed().as_secs(),
                        "Kafka: receiving again"
                    );
                }
                if let Err(e) = s.handle(
                    m.topic(),
                    m.partition(),
                    m.offset(),
                    m.payload(),
                    m.timestamp().to_millis(),
                ) {
                    break Err(e);
                }
                drop(m);
                if let Err(e) = s.use_fetched_ends(&consumer) {
                    break Err(e);
                }
                s.apply_backpressure(&consumer);
                false
            }
            Some(Err(e)) => {
                // The client retries on its own; say so once, keep the state.
                if broker_down_since.is_none() {
                    tracing::warn!("Kafka: {e}; retrying");
                    broker_down_since = Some(Instant::now());
                }
                true
            }
        };
        // Only when idle: while messages flow, every fetch response brings its partition's end
        // offset (`use_fetched_ends`), and asking the broker here would stall consumption for
        // a round trip per waiting input.
        if idle && last_refresh.elapsed() > Duration::from_millis(300) {
            last_refresh = Instant::now();
            if let Err(e) = s.refresh_ends(&probe, settings.exit_at_end && idle) {
                break Err(e);
            }
            s.apply_backpressure(&consumer);
            if settings.exit_at_end
                && idle
                && !s.workers.is_empty()
                && s.workers.values().all(PartitionWorker::caught_up)
            {
                tracing::info!("all assigned partitions read to their end: finishing");
                let (mut alerts, mut late) = (Vec::new(), Vec::new());
                for w in s.workers.values_mut() {
                    w.finish(&mut alerts, &mut late);
                }
                let all = s.all_partitions();
                break s
                    .emit(&alerts, late)
                    .and_then(|()| s.checkpoint(&consumer, &all, CommitMode::Sync));
            }
        }
        if last_metrics.elapsed() >= Duration::from_secs(1) {
            last_metrics = Instant::now();
            // After an outage with nothing new to consume, no message says the broker is back:
            // ask it.
            if let Some(since) = broker_down_since {
                let topic = settings.token_topic.as_str();
                if probe
                    .fetch_metadata(Some(topic), Duration::from_millis(500))
                    .is_ok()
                {
                    tracing::info!(
                        after_seconds = since.elapsed().as_secs(),
                        "Kafka: reachable again"
                    );
                    broker_down_since = None;
                }
            }
            if let Some(m) = &settings.metrics {
                m.publish(s.snapshot(broker_down_since.is_none()));
            }
        }
        if last_checkpoint.elapsed() >= settings.checkpoint_every {
            last_checkpoint = Instant::now();
            let all = s.all_partitions();
            match s.checkpoint(&consumer, &all, CommitMode::Async) {
                Ok(()) => {}
                // The alert topic's broker is away: nothing is checkpointed or committed past
                // alerts it has not stored; try again at the next interval.
                Err(ServiceError::Sink(e) | ServiceError::DeadLetter(e))
                    if e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    tracing::warn!("checkpoint postponed: {e}")
                }
                Err(e) => break Err(e),
            }
        }
    };
    // Leave the group before dropping the consumer, without our rebalance work.
    consumer.unsubscribe();
    drop(consumer);
    let mut s = lock(&service);
    outcome?;
    let owned: Vec<(LatencyHistogram, LatencyHistogram)> = s
        .workers
        .values()
        .map(|w| (w.latency.clone(), w.receive_latency.clone()))
        .collect();
    for (processed, received) in &owned {
        s.report.latency.merge(processed);
        s.report.receive_latency.merge(received);
    }
    let workers = std::mem::take(&mut s.workers);
    for w in workers.values() {
        s.report.add_history(w);
    }
    s.report.alerts = s.outputs.alerts;
    s.report.suppressed = s.outputs.suppressed;
    Ok(std::mem::take(&mut s.report))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::alert::Alert;
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    #[test]
    fn backpressure_pauses_a_full_input_and_resumes_it_once_drained() {
        assert_eq!(backpressure_change(false, QUEUE_PAUSE_AT - 1), None);
        assert_eq!(backpressure_change(false, QUEUE_PAUSE_AT), Some(true));
        assert_eq!(backpressure_change(true, QUEUE_PAUSE_AT), None);
        assert_eq!(
            backpressure_change(true, QUEUE_RESUME_AT + 1),
            None,
            "no flapping"
        );
        assert_eq!(backpressure_change(true, QUEUE_RESUME_AT), Some(false));
        assert_eq!(backpressure_change(false, 0), None);
    }

    /// Collects alerts in memory.
    #[derive(Clone, Default)]
    struct Collect(Arc<Mutex<Vec<Alert>>>);

    impl AlertSink for Collect {
        fn write(&mut self, alerts: &[Alert]) -> std::io::Result<()> {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(alerts);
            Ok(())
        }
        fn make_durable(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn run_once(
        brokers: &str,
        state: &std::path::Path,
        group: &str,
    ) -> (Vec<Alert>, ServiceReport) {
        let sink = Collect::default();
        let mut client = ClientConfig::new();
        // The mock cluster keeps a departed member until its session times out: keep it short.
        client
            .set("bootstrap.servers", brokers)
            .set("group.id", group)
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "500");
        let report = run_kafka(
            KafkaSettings {
                client,
                token_topic: "tokens".into(),
                access_topic: "access".into(),
                state_root: state.to_path_buf(),
                checkpoint_every: Duration::from_secs(1),
                exit_at_end: true,
                lateness_seconds: 300,
                metrics: None,
                history: None,
            },
            EngineConfig::default(),
            Registry::default(),
            DecodeOptions::default(),
            Box::new(sink.clone()),
            DeadLetterWriter::new(Box::new(std::io::sink())),
            Arc::new(AtomicBool::new(false)),
        )
        .expect("service");
        let alerts = sink.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        (alerts, report)
    }

    /// A token, two accesses (one outside its scopes) and a broken message, on partition 1 of
    /// `tokens` and `access`, produced with `codec`; returns the bootstrap servers.
    fn produce_case(
        cluster: &MockCluster<'_, rdkafka::producer::DefaultProducerContext>,
        codec: &str,
    ) -> String {
        cluster.create_topic("tokens", 2, 1).expect("topic");
        cluster.create_topic("access", 2, 1).expect("topic");
        let brokers = cluster.bootstrap_servers();
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("compression.type", codec)
            .create()
            .expect("producer");
        let send = |topic: &str, payload: &str| {
            producer
                .send(
                    BaseRecord::to(topic)
                        .key("app")
                        .partition(1)
                        .payload(payload),
                )
                .expect("send");
        };
        send(
            "tokens",
            r#"{"type":"token","event":"issued","time":"2024-03-01T12:00:00Z","client_id":"app","token_id":"t1","scope_granted":"launch/patient patient/Observation.rs","patient":"p1","expires_in":3600}"#,
        );
        send(
            "access",
            r#"{"type":"access","time":"2024-03-01T12:01:00Z","client_id":"app","token_id":"t1","method":"GET","url":"Observation?patient=p1","status":200}"#,
        );
        send(
            "access",
            r#"{"type":"access","time":"2024-03-01T12:02:00Z","client_id":"app","token_id":"t1","method":"GET","url":"Condition?patient=p1","status":200}"#,
        );
        send("access", "{not json");
        producer.flush(Duration::from_secs(10)).expect("flush");
        brokers
    }

    /// Each codec librdkafka is built with (gzip: `libz-static`, zstd: `zstd`; snappy and lz4
    /// built in) is produced and consumed. The tansu test broker resets the connection on
    /// snappy batches, so snappy's end-to-end check is here, on librdkafka's mock cluster.
    #[test]
    fn every_compression_codec_round_trips_through_the_service() {
        for codec in ["gzip", "snappy", "lz4", "zstd"] {
            let cluster = MockCluster::new(1).expect("mock cluster");
            let brokers = produce_case(&cluster, codec);
            let state = tempfile::tempdir().expect("tempdir");
            let (alerts, report) = run_once(&brokers, state.path(), "g");
            assert_eq!(
                alerts
                    .iter()
                    .filter(|a| a.rule == "enforcement_gap")
                    .count(),
                1,
                "{codec}: {alerts:?}"
            );
            assert_eq!(report.sources["access:1"].accepted, 2, "{codec}");
            assert_eq!(report.sources["access:1"].dead_lettered, 1, "{codec}");
        }
    }

    /// The token topic and the access topic interleave in event time inside a partition, so
    /// an access joins the token issued just before it in the other topic; a bad message is
    /// dead-lettered and counted; a second run of the group resumes after the commit.
    #[test]
    fn mock_cluster_two_topics_join_and_resume() {
        let cluster = MockCluster::new(1).expect("mock cluster");
        let brokers = produce_case(&cluster, "none");

        let state = tempfile::tempdir().expect("tempdir");
        let (alerts, report) = run_once(&brokers, state.path(), "g");
        let gaps: Vec<&Alert> = alerts
            .iter()
            .filter(|a| a.rule == "enforcement_gap")
            .collect();
        assert_eq!(gaps.len(), 1, "{alerts:?}");
        assert_eq!(gaps[0].client_id, "app");
        assert_eq!(report.sources["access:1"].accepted, 2);
        assert_eq!(report.sources["access:1"].dead_lettered, 1);
        assert_eq!(report.sources["tokens:1"].accepted, 1);

        // The group committed its offsets after the checkpoint: a restart reads nothing again.
        let (again, report) = run_once(&brokers, state.path(), "g");
        assert!(
            again.iter().all(|a| a.rule != "enforcement_gap"),
            "{again:?}"
        );
        assert_eq!(report.sources.values().map(|c| c.read).sum::<u64>(), 0);
    }
}
