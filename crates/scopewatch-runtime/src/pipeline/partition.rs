//! One Kafka partition's share of the streaming service: its own detection engine (topics are
//! keyed by `client_id` and co-partitioned, so a partition holds whole apps), the merge of its
//! inputs (token topic and access topic, or one mixed topic) in event time, and the offsets its
//! state covers. No I/O here beyond the state directory: the service feeds it messages.

use std::collections::{BTreeMap, VecDeque};

use crate::alert::Alert;
use crate::detect::{Engine, EngineConfig, LateEvent};
use crate::event::Event;
use crate::registry::Registry;

use super::latency::LatencyHistogram;
use super::state_dir::{Checkpoint, StateDir, StateDirError};
use super::stream_history::{HistorySettings, StreamHistory};

/// Total size of the files under `dir` (a checkpoint generation), for the state-size metric.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Wall-clock milliseconds since the epoch (latency histograms).
pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// One input of a partition (a topic's partition, or a followed file), with what was received
/// but not yet given to the engine.
struct Input {
    /// `topic:partition` (or `file:<fingerprint>`), the key of its position in the checkpoint.
    key: String,
    queue: VecDeque<Queued>,
    /// Offset after the last message received (or the restored position before any).
    received_next: i64,
    /// The broker's high watermark when last asked; `received_next >= high` means caught up.
    high: Option<i64>,
}

impl Input {
    fn caught_up(&self) -> bool {
        self.queue.is_empty() && self.high.is_some_and(|h| self.received_next >= h)
    }
}

/// A record received and not yet given to the engine.
struct Queued {
    /// Where the record's message (or line) starts: the position while records of it remain.
    offset: i64,
    /// Where the next message (or line) starts: the position once its last record is released.
    end: i64,
    /// None for a record that was dead-lettered or skipped (it only moves the position).
    event: Option<Event>,
    /// The last record of its message: releasing it moves the position past the message.
    last: bool,
    /// When the message was produced (ms since the epoch), for the latency histogram.
    produced_ms: Option<i64>,
}

/// A late event handed back by the engine, with where it came from.
pub struct LateRecord {
    pub source: String,
    pub offset: i64,
    pub late: LateEvent,
}

pub struct PartitionWorker {
    pub partition: i32,
    engine: Engine,
    inputs: Vec<Input>,
    /// Next offset to process per input key: everything before it is in the engine's state.
    positions: BTreeMap<String, u64>,
    state: StateDir,
    /// Events given to the engine since this worker started (for counts).
    pub pushed: u64,
    /// Produced → given to the engine, per event.
    pub latency: LatencyHistogram,
    /// Produced → received by this service, per message: what of `latency` the broker and the
    /// fetch account for (the rest is the event-time merge and the engine).
    pub receive_latency: LatencyHistogram,
    /// Bytes of the live checkpoint, as of the last one written.
    pub state_bytes: u64,
    /// The history store's rows of this partition, written with each checkpoint.
    history: Option<StreamHistory>,
    /// A history write that failed while releasing (reported by the next checkpoint, which it
    /// stops: the rows are written again from the previous checkpoint after a restart).
    history_error: Option<String>,
}

impl PartitionWorker {
    /// Restores the partition from its state directory, or starts it fresh.
    pub fn open(
        partition: i32,
        topics: &[String],
        state: StateDir,
        config: EngineConfig,
        registry: Registry,
    ) -> Result<PartitionWorker, StateDirError> {
        let keys = topics.iter().map(|t| format!("{t}:{partition}")).collect();
        PartitionWorker::open_keyed(partition, keys, state, config, registry)
    }

    /// As `open`, with the inputs named by their position keys (more can be added later).
    pub fn open_keyed(
        partition: i32,
        keys: Vec<String>,
        state: StateDir,
        config: EngineConfig,
        registry: Registry,
    ) -> Result<PartitionWorker, StateDirError> {
        let (engine, positions) = match state.load()? {
            Some(c) => (
                Engine::restore(config, registry, c.baselines, c.engine)
                    .map_err(|e| StateDirError::Restore(e.to_string()))?,
                c.positions,
            ),
            None => (Engine::new(config, registry), BTreeMap::new()),
        };
        let mut worker = PartitionWorker {
            partition,
            engine,
            inputs: Vec::new(),
            positions,
            state,
            pushed: 0,
            latency: LatencyHistogram::default(),
            receive_latency: LatencyHistogram::default(),
            state_bytes: 0,
            history: None,
            history_error: None,
        };
        for key in keys {
            worker.add_input(key);
        }
        Ok(worker)
    }

    /// Writes this partition's events and alerts to the history store, each row once: the
    /// segment since the last checkpoint is written with the next one.
    pub fn with_history(mut self, settings: &HistorySettings) -> Result<Self, StateDirError> {
        let history = StreamHistory::open(
            settings,
            self.state.stream_id()?,
            self.state.generation()?,
            &self.engine.snapshot(),
        )
        .map_err(|e| StateDirError::History(e.to_string()))?;
        self.history = Some(history);
        Ok(self)
    }

    /// Rows written to the history store by this worker (None without one).
    pub fn history_counts(&self) -> Option<(crate::sql::history::HistoryCounts, u64)> {
        self.history
            .as_ref()
            .map(|h| (h.counts.clone(), h.alert_rows))
    }

    /// Adds an input that starts where the checkpoint left it (or at 0); returns its index.
    pub fn add_input(&mut self, key: String) -> usize {
        let start = self.position_of(&key).unwrap_or(0);
        self.add_input_at(key, start)
    }

    /// Adds an input that starts at `start` (which becomes its position); returns its index.
    pub fn add_input_at(&mut self, key: String, start: u64) -> usize {
        if self.positions.contains_key(&key) || start > 0 {
            self.positions.insert(key.clone(), start);
        }
        self.inputs.push(Input {
            key,
            queue: VecDeque::new(),
            received_next: i64::try_from(start).unwrap_or(i64::MAX),
            high: None,
        });
        self.inputs.len() - 1
    }

    /// Removes an input with nothing queued (a rotated file read to its end); later inputs'
    /// indexes move down by one. Its position stays in the checkpoint. False if records remain.
    pub fn remove_input(&mut self, input: usize) -> bool {
        match self.inputs.get(input) {
            Some(i) if i.queue.is_empty() => {
                self.inputs.remove(input);
                true
            }
            _ => false,
        }
    }

    /// The checkpointed (or since processed) position of an input key.
    pub fn position_of(&self, key: &str) -> Option<u64> {
        self.positions.get(key).copied()
    }

    /// Drops the positions of keys that are no longer inputs and that `keep` rejects (files
    /// that are gone), so the checkpoint does not grow forever.
    pub fn forget_positions(&mut self, keep: impl Fn(&str) -> bool) {
        let inputs: Vec<&str> = self.inputs.iter().map(|i| i.key.as_str()).collect();
        self.positions
            .retain(|k, _| inputs.contains(&k.as_str()) || keep(k));
    }

    /// The next offset each input still needs (what to commit, and where to resume).
    pub fn positions(&self) -> impl Iterator<Item = (&str, i64)> {
        self.inputs.iter().map(|i| {
            let at = self.positions.get(&i.key).copied().unwrap_or(0);
            (i.key.as_str(), i64::try_from(at).unwrap_or(i64::MAX))
        })
    }

    /// Whether a message at `offset` of input `input` is already covered by the restored state
    /// (it is re-delivered when a crash came between a checkpoint and its offset commit).
    pub fn already_processed(&self, input: usize, offset: i64) -> bool {
        self.inputs.get(input).is_some_and(|i| {
            let at = self.positions.get(&i.key).copied().unwrap_or(0);
            u64::try_from(offset).is_ok_and(|o| o < at)
        })
    }

    /// Queues the records decoded from one message. `records` holds the accepted events and a
    /// `None` per dead-lettered record; a message with no record still advances the position.
    /// `produced_ms`: the message's create time, when the broker gives one.
    pub fn offer(
        &mut self,
        input: usize,
        offset: i64,
        records: Vec<Option<Event>>,
        produced_ms: Option<i64>,
    ) {
        self.offer_span(input, offset, offset + 1, records, produced_ms);
    }

    /// As `offer`, for a record spanning `offset..end` (a line of a file: byte offsets).
    pub fn offer_span(
        &mut self,
        input: usize,
        offset: i64,
        end: i64,
        mut records: Vec<Option<Event>>,
        produced_ms: Option<i64>,
    ) {
        let Some(i) = self.inputs.get_mut(input) else {
            return;
        };
        i.received_next = i.received_next.max(end);
        if let Some(produced) = produced_ms {
            self.receive_latency.record_ms(now_ms() - produced);
        }
        if records.is_empty() {
            records.push(None);
        }
        let n = records.len();
        for (k, event) in records.into_iter().enumerate() {
            i.queue.push_back(Queued {
                offset,
                end,
                event,
                last: k + 1 == n,
                produced_ms,
            });
        }
    }

    /// Records the broker's high watermark of an input.
    pub fn set_high_watermark(&mut self, input: usize, high: i64) {
        if let Some(i) = self.inputs.get_mut(input) {
            i.high = Some(high);
        }
    }

    /// Records received on an input and not yet given to the engine.
    pub fn queued(&self, input: usize) -> usize {
        self.inputs.get(input).map_or(0, |i| i.queue.len())
    }

    /// The position key of an input (`topic:partition`, `file:<fingerprint>`).
    pub fn input_key(&self, input: usize) -> Option<&str> {
        self.inputs.get(input).map(|i| i.key.as_str())
    }

    pub fn input_keys(&self) -> impl Iterator<Item = &str> {
        self.inputs.iter().map(|i| i.key.as_str())
    }

    /// True when every input has been read to the broker's end and everything was released.
    pub fn caught_up(&self) -> bool {
        self.inputs.iter().all(Input::caught_up)
    }

    /// Inputs with nothing queued that have not been confirmed caught up: the merge waits on them.
    /// Whether any input holds the merge up (see `waiting_inputs`), without allocating.
    pub fn is_waiting(&self) -> bool {
        self.inputs
            .iter()
            .any(|i| i.queue.is_empty() && !i.caught_up())
    }

    pub fn waiting_inputs(&self) -> Vec<usize> {
        self.inputs
            .iter()
            .enumerate()
            .filter(|(_, i)| i.queue.is_empty() && !i.caught_up())
            .map(|(k, _)| k)
            .collect()
    }

    /// Gives the engine every queued event that is next in event time: an event is released
    /// only when every other input has a queued event or is caught up, so a token log and an
    /// access log interleave as they happened (ties: the earlier input, the token topic).
    pub fn release(&mut self, alerts: &mut Vec<Alert>, late: &mut Vec<LateRecord>) {
        loop {
            // Dead-lettered records at the head only move positions.
            for i in &mut self.inputs {
                while let Some(q) = i.queue.front().filter(|q| q.event.is_none()) {
                    let next = if q.last { q.end } else { q.offset };
                    self.positions
                        .insert(i.key.clone(), u64::try_from(next).unwrap_or(0));
                    i.queue.pop_front();
                }
            }
            if self.is_waiting() {
                return;
            }
            let pick = self
                .inputs
                .iter()
                .enumerate()
                .filter_map(|(k, i)| {
                    let e = i.queue.front()?.event.as_ref()?;
                    Some((e.time(), k))
                })
                .min();
            let Some((_, k)) = pick else {
                return;
            };
            let Some(Queued {
                offset,
                end,
                event: Some(event),
                last,
                produced_ms,
            }) = self.inputs[k].queue.pop_front()
            else {
                return;
            };
            if let Some(produced) = produced_ms {
                self.latency.record_ms(now_ms() - produced);
            }
            // A record inside a multi-record message leaves the position on the message, so a
            // restart re-reads it rather than losing its remaining records.
            let next = if last { end } else { offset };
            let key = self.inputs[k].key.clone();
            self.positions
                .insert(key.clone(), u64::try_from(next).unwrap_or(0));
            self.pushed += 1;
            let before = alerts.len();
            if let Some(h) = self.history.as_mut() {
                if let Err(e) = h.add(&event) {
                    self.history_error.get_or_insert(e.to_string());
                }
            }
            let pushed = self.engine.push(event, alerts);
            if let Some(h) = self.history.as_mut() {
                h.add_alerts(&alerts[before..]);
            }
            if let Err(l) = pushed {
                late.push(LateRecord {
                    source: key,
                    offset,
                    late: *l,
                });
            }
        }
    }

    /// Treats the end of input as the end of the stream: everything queued is released in
    /// time order, open hours, days and incidents close.
    pub fn finish(&mut self, alerts: &mut Vec<Alert>, late: &mut Vec<LateRecord>) {
        for i in &mut self.inputs {
            i.high = Some(i.received_next);
        }
        self.release(alerts, late);
        let before = alerts.len();
        self.engine.finish(alerts);
        if let Some(h) = self.history.as_mut() {
            h.add_alerts(&alerts[before..]);
        }
    }

    /// Writes the partition's checkpoint (baselines, engine, positions) atomically.
    pub fn checkpoint(&mut self) -> Result<(), StateDirError> {
        if let Some(e) = self.history_error.take() {
            return Err(StateDirError::History(e));
        }
        if let Some(h) = self.history.as_mut() {
            h.commit()
                .map_err(|e| StateDirError::History(e.to_string()))?;
        }
        let generation = self.state.save(&Checkpoint {
            baselines: self.engine.baselines().clone(),
            engine: self.engine.snapshot(),
            positions: self.positions.clone(),
        })?;
        self.state_bytes = dir_bytes(&generation);
        if let Some(h) = self.history.as_mut() {
            h.start(self.state.generation()?);
        }
        Ok(())
    }

    /// Per input: messages between the processed position and the end offset last seen.
    pub fn lag(&self) -> impl Iterator<Item = (&str, i64)> {
        self.inputs.iter().filter_map(|i| {
            let at = self.positions.get(&i.key).copied().unwrap_or(0);
            let at = i64::try_from(at).unwrap_or(i64::MAX);
            i.high.map(|h| (i.key.as_str(), (h - at).max(0)))
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_event_str;

    fn event(kind: &str, minute: u32) -> Option<Event> {
        let line = if kind == "token" {
            format!(
                r#"{{"type":"token","event":"issued","time":"2024-03-01T12:{minute:02}:00Z","client_id":"app","token_id":"t{minute}","scope_granted":"system/*.rs"}}"#
            )
        } else {
            format!(
                r#"{{"type":"access","time":"2024-03-01T12:{minute:02}:00Z","client_id":"app","method":"GET","url":"Patient/p","status":200,"token_id":"t0"}}"#
            )
        };
        Some(parse_event_str(&line).expect("event"))
    }

    fn worker(dir: &std::path::Path) -> PartitionWorker {
        PartitionWorker::open(
            3,
            &["tokens".to_string(), "access".to_string()],
            StateDir::new(dir),
            EngineConfig::default(),
            Registry::default(),
        )
        .expect("open")
    }

    #[test]
    fn the_merge_waits_for_the_lagging_input_and_positions_follow_releases() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = worker(dir.path());
        let (mut alerts, mut late) = (Vec::new(), Vec::new());
        w.offer(1, 0, vec![event("access", 5)], None);
        w.offer(1, 1, vec![event("access", 6)], None);
        w.release(&mut alerts, &mut late);
        assert_eq!(w.pushed, 0, "the token input has said nothing yet");
        w.offer(0, 0, vec![event("token", 0)], None);
        w.offer(0, 1, vec![], None); // a message whose record was dead-lettered
        w.release(&mut alerts, &mut late);
        // token@0 goes first; then the token queue is empty again and not known caught up.
        assert_eq!(w.pushed, 1);
        assert_eq!(
            w.positions().collect::<Vec<_>>(),
            vec![("tokens:3", 2), ("access:3", 0)]
        );
        w.set_high_watermark(0, 2);
        w.release(&mut alerts, &mut late);
        assert_eq!(w.pushed, 3);
        assert_eq!(
            w.positions().collect::<Vec<_>>(),
            vec![("tokens:3", 2), ("access:3", 2)]
        );
        assert!(!w.caught_up(), "the access input's end is not known");
        w.set_high_watermark(1, 2);
        assert!(w.caught_up());
        assert!(late.is_empty());
    }

    #[test]
    fn an_event_later_than_the_lateness_is_handed_back_with_its_source_and_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = worker(dir.path());
        let (mut alerts, mut late) = (Vec::new(), Vec::new());
        w.set_high_watermark(1, 0); // the access input is empty and caught up
        w.offer(0, 0, vec![event("token", 40)], Some(0));
        // 10 minutes on: the engine's reorder buffer processes the 12:40 event.
        w.offer(0, 1, vec![event("token", 50)], None);
        w.set_high_watermark(0, 2);
        w.release(&mut alerts, &mut late);
        assert!(late.is_empty());
        // 30 minutes behind what was processed, beyond the default 300 s.
        w.offer(0, 2, vec![event("token", 10)], None);
        w.set_high_watermark(0, 3);
        w.release(&mut alerts, &mut late);
        assert_eq!(late.len(), 1);
        assert_eq!((late[0].source.as_str(), late[0].offset), ("tokens:3", 2));
        assert!(late[0].late.behind_micros >= 29 * 60 * 1_000_000);
        assert_eq!(
            w.positions().collect::<Vec<_>>()[0],
            ("tokens:3", 3),
            "a late event is accounted for: the position moves past it"
        );
        assert_eq!(
            w.latency.count(),
            1,
            "only the event with a produce time is timed"
        );
    }

    #[test]
    fn file_inputs_come_and_go_and_a_line_moves_the_position_to_its_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = PartitionWorker::open_keyed(
            0,
            Vec::new(),
            StateDir::new(dir.path()),
            EngineConfig::default(),
            Registry::default(),
        )
        .expect("open");
        let (mut alerts, mut late) = (Vec::new(), Vec::new());
        let a = w.add_input_at("file:a".into(), 100);
        let b = w.add_input("file:b".into());
        assert_eq!((a, b), (0, 1));
        w.offer_span(a, 100, 180, vec![event("token", 1)], None);
        w.set_high_watermark(a, 180);
        w.set_high_watermark(b, 0);
        w.release(&mut alerts, &mut late);
        assert_eq!(w.position_of("file:a"), Some(180));
        w.offer_span(b, 0, 50, vec![event("token", 2)], None);
        assert!(!w.remove_input(b), "a line is still queued");
        w.set_high_watermark(b, 50);
        w.release(&mut alerts, &mut late);
        assert!(w.remove_input(a));
        assert_eq!(w.input_keys().collect::<Vec<_>>(), ["file:b"]);
        assert_eq!(w.position_of("file:a"), Some(180), "kept after removal");
        w.forget_positions(|_| false);
        assert_eq!(w.position_of("file:a"), None, "forgotten once gone");
        assert_eq!(w.position_of("file:b"), Some(50), "an input's is kept");
        w.checkpoint().expect("checkpoint");
        let restored = PartitionWorker::open_keyed(
            0,
            vec!["file:b".into()],
            StateDir::new(dir.path()),
            EngineConfig::default(),
            Registry::default(),
        )
        .expect("reopen");
        assert_eq!(restored.positions().collect::<Vec<_>>(), [("file:b", 50)]);
    }

    #[test]
    fn a_restored_partition_skips_what_its_checkpoint_covers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = worker(dir.path());
        let (mut alerts, mut late) = (Vec::new(), Vec::new());
        w.offer(0, 0, vec![event("token", 0)], None);
        w.offer(0, 1, vec![event("token", 1)], None);
        w.set_high_watermark(0, 2);
        w.set_high_watermark(1, 0);
        w.release(&mut alerts, &mut late);
        w.checkpoint().expect("checkpoint");
        assert!(w.state_bytes > 0, "the checkpoint's size is known");
        let restored = worker(dir.path());
        assert!(restored.already_processed(0, 1));
        assert!(!restored.already_processed(0, 2));
        assert!(!restored.already_processed(1, 0));
        // Both events are in the restored engine (still in its reorder buffer).
        assert_eq!(restored.engine().snapshot().order.pending.len(), 2);
    }
}
