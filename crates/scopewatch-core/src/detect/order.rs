//! Event-time ordering: events may arrive up to `lateness` out of order; they are released in
//! (time, token-before-access, arrival) order once the watermark has passed them. Events older
//! than what was already released are late and handed back, never silently dropped.
//!
//! One request, one event: IHE BALP writes one AuditEvent per patient for a response that
//! touched several ("one AuditEvent per Patient"), so access events released back to back with
//! the same instant, client, token, user, method, URL and status but another patient are folded
//! into the first, which then counts the distinct patients in `patient_count`.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use serde::{Deserialize, Serialize};

use crate::event::{AccessEvent, Event, Timestamp, MICROS_PER_SECOND};

/// Default allowed lateness: 5 minutes.
pub const DEFAULT_LATENESS_SECONDS: i64 = 300;

struct Pending {
    time: Timestamp,
    /// Token events sort before access events at the same instant, so an access made in the
    /// same second its token was issued still finds the token.
    rank: u8,
    seq: u64,
    /// `event::approx_bytes` of the event, for the byte budget.
    bytes: usize,
    /// Boxed: the heap moves its entries at every level of a push or pop, and an event is
    /// hundreds of bytes (those moves were a tenth of the engine thread).
    event: Box<Event>,
}

impl Pending {
    fn key(&self) -> (Timestamp, u8, u64) {
        (self.time, self.rank, self.seq)
    }
}
impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// The reorder buffer in a snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderState {
    pub pending: Vec<PendingState>,
    pub max_seen: Option<Timestamp>,
    pub released_up_to: Option<Timestamp>,
    pub seq: u64,
}

/// A buffered event with its arrival number (ties at one instant release in arrival order).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingState {
    pub seq: u64,
    #[serde(with = "crate::event::as_contract_json")]
    pub event: Event,
}

/// An event the core hands back instead of processing: late (it arrived after events later
/// than it were released), or refused (`refused` says why: a time outside the believable
/// window, an app over the limit).
#[derive(Debug)]
pub struct LateEvent {
    pub event: Event,
    /// How far behind the release frontier it was, in microseconds.
    pub behind_micros: i64,
    pub refused: Option<crate::event::Reject>,
}

impl LateEvent {
    /// Its dead-letter class and reason.
    pub fn reject(&self, lateness_seconds: i64) -> (crate::event::RejectKind, String) {
        match &self.refused {
            Some(r) => (r.kind, r.reason.clone()),
            None => (
                crate::event::RejectKind::Late,
                format!(
                    "late beyond {lateness_seconds} s: {} s behind events already processed",
                    self.behind_micros / MICROS_PER_SECOND
                ),
            ),
        }
    }
}

pub struct ReorderBuffer {
    lateness_micros: i64,
    heap: BinaryHeap<Reverse<Pending>>,
    max_seen: Option<Timestamp>,
    released_up_to: Option<Timestamp>,
    seq: u64,
    /// Access events folded into the event of the same request (not persisted: a count).
    pub folded: u64,
    max_pending: usize,
    /// Estimated bytes of the buffered events, and the most they may hold.
    pending_bytes: usize,
    max_pending_bytes: usize,
    /// Events released before the watermark passed them because a bound was reached.
    pub released_early: u64,
}

/// Default for `max_pending`: about 300 MB of buffered events at the contract's typical size.
pub const DEFAULT_MAX_PENDING: usize = 1_000_000;

impl ReorderBuffer {
    pub fn new(lateness_seconds: i64) -> ReorderBuffer {
        ReorderBuffer {
            lateness_micros: lateness_seconds.max(0).saturating_mul(MICROS_PER_SECOND),
            heap: BinaryHeap::new(),
            max_seen: None,
            released_up_to: None,
            seq: 0,
            folded: 0,
            max_pending: DEFAULT_MAX_PENDING,
            pending_bytes: 0,
            max_pending_bytes: usize::MAX,
            released_early: 0,
        }
    }

    /// Buffers an event, or hands it back when it is late.
    pub fn push(&mut self, event: Event) -> Result<(), Box<LateEvent>> {
        let time = event.time();
        if let Some(frontier) = self.released_up_to {
            if time < frontier {
                return Err(Box::new(LateEvent {
                    event,
                    behind_micros: frontier.0 - time.0,
                    refused: None,
                }));
            }
        }
        self.max_seen = Some(self.max_seen.map_or(time, |m| m.max(time)));
        let rank = match event {
            Event::Token(_) => 0,
            Event::Access(_) => 1,
        };
        self.seq += 1;
        let bytes = crate::event::approx_bytes(&event);
        self.pending_bytes += bytes;
        self.heap.push(Reverse(Pending {
            time,
            rank,
            seq: self.seq,
            bytes,
            event: Box::new(event),
        }));
        Ok(())
    }

    /// Event time up to which everything has arrived (max seen − lateness).
    pub fn watermark(&self) -> Option<Timestamp> {
        self.max_seen
            .map(|m| Timestamp(m.0.saturating_sub(self.lateness_micros)))
    }

    /// Most events held at once: beyond it the earliest is released before the watermark
    /// passes it (events arriving later behind it are then late), so two million events at one
    /// instant cannot hold unbounded memory.
    pub fn with_max_pending(mut self, max_pending: usize) -> ReorderBuffer {
        self.max_pending = max_pending.max(1);
        self
    }

    /// The most bytes (`event::approx_bytes`) the buffered events may hold: beyond it the
    /// earliest is released early, as beyond `max_pending` (a byte budget, so a million
    /// 16 KiB URLs cannot hold 16 GB while the count bound waits).
    pub fn with_max_pending_bytes(mut self, max_pending_bytes: usize) -> ReorderBuffer {
        self.max_pending_bytes = max_pending_bytes;
        self
    }

    /// Estimated bytes of the buffered events.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// The next event whose time is at or before the watermark (or the earliest, when more
    /// than `max_pending` events or `max_pending_bytes` are held).
    pub fn pop_ready(&mut self) -> Option<Event> {
        if self.heap.len() > self.max_pending || self.pending_bytes > self.max_pending_bytes {
            self.released_early += 1;
            return self.release();
        }
        let watermark = self.watermark()?;
        if self
            .heap
            .peek()
            .is_some_and(|Reverse(p)| p.time <= watermark)
        {
            return self.release();
        }
        None
    }

    /// The next buffered event regardless of the watermark (end of input).
    pub fn pop_any(&mut self) -> Option<Event> {
        self.release()
    }

    fn release(&mut self) -> Option<Event> {
        let Reverse(p) = self.heap.pop()?;
        self.pending_bytes = self.pending_bytes.saturating_sub(p.bytes);
        self.released_up_to = Some(self.released_up_to.map_or(p.time, |r| r.max(p.time)));
        let mut event = *p.event;
        if let Event::Access(first) = &mut event {
            let mut patients: Vec<crate::event::Text> = first.patient.iter().cloned().collect();
            while let Some(Reverse(next)) = self.heap.peek() {
                let Event::Access(other) = &*next.event else {
                    break;
                };
                if next.time != p.time || !is_patient_split(first, other, &patients) {
                    break;
                }
                let Some(Reverse(Pending { event, bytes, .. })) = self.heap.pop() else {
                    break;
                };
                let Event::Access(other) = *event else {
                    break;
                };
                self.pending_bytes = self.pending_bytes.saturating_sub(bytes);
                fold(first, other, &mut patients);
                self.folded += 1;
            }
        }
        Some(event)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// The buffered events and the frontier, for a snapshot (events in release order).
    pub fn to_state(&self) -> OrderState {
        let mut pending: Vec<&Pending> = self.heap.iter().map(|Reverse(p)| p).collect();
        pending.sort_by_key(|p| p.key());
        OrderState {
            pending: pending
                .into_iter()
                .map(|p| PendingState {
                    seq: p.seq,
                    event: (*p.event).clone(),
                })
                .collect(),
            max_seen: self.max_seen,
            released_up_to: self.released_up_to,
            seq: self.seq,
        }
    }

    /// A buffer holding exactly what `to_state` saw.
    pub fn from_state(lateness_seconds: i64, state: OrderState) -> ReorderBuffer {
        let mut buffer = ReorderBuffer::new(lateness_seconds);
        for p in state.pending {
            let rank = match p.event {
                Event::Token(_) => 0,
                Event::Access(_) => 1,
            };
            let bytes = crate::event::approx_bytes(&p.event);
            buffer.pending_bytes += bytes;
            buffer.heap.push(Reverse(Pending {
                time: p.event.time(),
                rank,
                seq: p.seq,
                bytes,
                event: Box::new(p.event),
            }));
        }
        buffer.max_seen = state.max_seen;
        buffer.released_up_to = state.released_up_to;
        buffer.seq = state.seq;
        buffer
    }
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// The same request logged again for another patient (never a second request for a patient
/// already seen: that is a repeat, kept as its own event).
fn is_patient_split(
    first: &AccessEvent,
    other: &AccessEvent,
    patients: &[crate::event::Text],
) -> bool {
    let Some(patient) = other.patient.as_ref() else {
        return false;
    };
    !patients.is_empty()
        && !patients.contains(patient)
        && other.common.client_id == first.common.client_id
        && other.token_id == first.token_id
        && other.common.user == first.common.user
        && other.method == first.method
        && other.url == first.url
        && other.status == first.status
        && other.common.source_ip == first.common.source_ip
        && other.common.user_agent == first.common.user_agent
        && other.purpose_of_use == first.purpose_of_use
}

fn fold(first: &mut AccessEvent, other: AccessEvent, patients: &mut Vec<crate::event::Text>) {
    if let Some(p) = other.patient {
        patients.push(p);
    }
    let sum = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
    };
    first.resources_returned = sum(first.resources_returned, other.resources_returned);
    first.bytes = sum(first.bytes, other.bytes);
    // Each record counts its own patients (one, unless it says more).
    first.patient_count = Some(
        first
            .patient_count
            .unwrap_or(1)
            .saturating_add(other.patient_count.unwrap_or(1)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_event_str;

    fn access(second: u32, client: &str) -> Event {
        parse_event_str(&format!(
            r#"{{"type":"access","time":"2024-03-01T12:00:{second:02}Z","client_id":"{client}","method":"GET","url":"metadata","status":200}}"#
        ))
        .unwrap()
    }
    fn token(second: u32, client: &str) -> Event {
        parse_event_str(&format!(
            r#"{{"type":"token","event":"issued","time":"2024-03-01T12:00:{second:02}Z","client_id":"{client}"}}"#
        ))
        .unwrap()
    }

    fn drain_ready(b: &mut ReorderBuffer) -> Vec<String> {
        std::iter::from_fn(|| b.pop_ready())
            .map(|e| e.client_id().to_string())
            .collect()
    }

    #[test]
    fn releases_in_event_time_once_the_watermark_passes() {
        let mut b = ReorderBuffer::new(10);
        for (s, c) in [(5, "b"), (1, "a"), (9, "c")] {
            b.push(access(s, c)).unwrap();
        }
        assert!(drain_ready(&mut b).is_empty(), "nothing is 10 s old yet");
        b.push(access(16, "d")).unwrap();
        assert_eq!(drain_ready(&mut b), vec!["a", "b"]);
        b.push(access(30, "e")).unwrap();
        assert_eq!(drain_ready(&mut b), vec!["c", "d"]);
        assert_eq!(std::iter::from_fn(|| b.pop_any()).count(), 1);
    }

    fn patient_read(second: u32, url: &str, patient: &str) -> Event {
        parse_event_str(&format!(
            r#"{{"type":"access","time":"2024-03-01T12:00:{second:02}Z","client_id":"app","token_id":"t","method":"GET","url":"{url}","status":200,"patient":"{patient}","resources_returned":2}}"#
        ))
        .unwrap()
    }

    /// IHE BALP: "one AuditEvent per Patient" for a response about several patients; the
    /// records of one request become one event counting its patients, a repeat of the same
    /// patient or another request stays separate.
    #[test]
    fn per_patient_records_of_one_request_fold_into_one_event() {
        let mut b = ReorderBuffer::new(0);
        for (second, url, patient) in [
            (1, "Observation?code=x", "p1"),
            (1, "Observation?code=x", "p2"),
            (1, "Observation?code=x", "p3"),
            (1, "Observation?code=x", "p3"),
            (1, "Observation?code=y", "p4"),
            (2, "Observation?code=y", "p5"),
        ] {
            b.push(patient_read(second, url, patient)).unwrap();
        }
        let released: Vec<(Option<u64>, Option<u64>)> = std::iter::from_fn(|| b.pop_any())
            .map(|e| match e {
                Event::Access(a) => (a.patient_count, a.resources_returned),
                Event::Token(_) => (None, None),
            })
            .collect();
        assert_eq!(
            released,
            vec![
                (Some(3), Some(6)),
                (None, Some(2)),
                (None, Some(2)),
                (None, Some(2))
            ]
        );
        assert_eq!(b.folded, 2);
    }

    /// Two requests from other addresses (or purposes) at the same instant are two requests,
    /// not one split; a record that already counts several patients adds them up.
    #[test]
    fn only_true_splits_fold_and_counts_add_up() {
        let mut b = ReorderBuffer::new(0);
        let with = |patient: &str, extra: &str| {
            parse_event_str(&format!(
                r#"{{"type":"access","time":"2024-03-01T12:00:01Z","client_id":"app","token_id":"t","method":"GET","url":"Observation?code=x","status":200,"patient":"{patient}"{extra}}}"#
            ))
            .unwrap()
        };
        b.push(with("p1", r#","source_ip":"10.0.0.1""#)).unwrap();
        b.push(with("p2", r#","source_ip":"10.0.0.2""#)).unwrap();
        b.push(with("p3", r#","source_ip":"10.0.0.2","patient_count":3"#))
            .unwrap();
        let counts: Vec<Option<u64>> = std::iter::from_fn(|| b.pop_any())
            .map(|e| match e {
                Event::Access(a) => a.patient_count,
                Event::Token(_) => None,
            })
            .collect();
        assert_eq!(counts, vec![None, Some(4)]);
    }

    /// Issue #16: two million events at one instant would all wait for the watermark; beyond
    /// the bound the earliest are released, and one arriving behind them is late.
    #[test]
    fn the_buffer_is_bounded() {
        let mut b = ReorderBuffer::new(300).with_max_pending(3);
        for c in ["a", "b", "c"] {
            b.push(access(10, c)).unwrap();
        }
        assert!(b.pop_ready().is_none(), "at the bound, nothing is forced");
        b.push(access(10, "d")).unwrap();
        assert_eq!(drain_ready(&mut b), vec!["a"]);
        assert_eq!(b.len(), 3);
        assert!(
            b.push(access(5, "early")).is_err(),
            "behind what was released"
        );
    }

    /// Issue #16 (one byte budget): beyond `max_pending_bytes` the earliest events are
    /// released early, whatever their count; the byte count follows pushes, releases and a
    /// snapshot.
    #[test]
    fn the_buffer_is_bounded_in_bytes() {
        let one = crate::event::approx_bytes(&access(10, "a"));
        let mut b = ReorderBuffer::new(300).with_max_pending_bytes(3 * one);
        for c in ["a", "b", "c"] {
            b.push(access(10, c)).unwrap();
        }
        assert_eq!(b.pending_bytes(), 3 * one);
        assert!(b.pop_ready().is_none(), "at the budget, nothing is forced");
        b.push(access(10, "d")).unwrap();
        assert_eq!(drain_ready(&mut b), vec!["a"]);
        assert_eq!(
            (b.len(), b.pending_bytes(), b.released_early),
            (3, 3 * one, 1)
        );
        let restored = ReorderBuffer::from_state(300, b.to_state());
        assert_eq!(restored.pending_bytes(), 3 * one);
        while b.pop_any().is_some() {}
        assert_eq!(b.pending_bytes(), 0);
    }

    #[test]
    fn token_before_access_at_the_same_instant() {
        let mut b = ReorderBuffer::new(0);
        b.push(access(1, "access")).unwrap();
        b.push(token(1, "token")).unwrap();
        let order: Vec<String> = std::iter::from_fn(|| b.pop_any())
            .map(|e| e.kind().to_string())
            .collect();
        assert_eq!(order, vec!["token", "access"]);
    }

    #[test]
    fn late_events_are_handed_back_with_how_late() {
        let mut b = ReorderBuffer::new(5);
        b.push(access(1, "a")).unwrap();
        b.push(access(20, "b")).unwrap();
        assert_eq!(drain_ready(&mut b), vec!["a"]);
        // 3 s is behind the released frontier (1 s)? No: 3 > 1, still in order.
        b.push(access(3, "c")).unwrap();
        assert_eq!(drain_ready(&mut b), vec!["c"]);
        let late = b.push(access(2, "late")).unwrap_err();
        assert_eq!(late.behind_micros, MICROS_PER_SECOND);
        assert_eq!(late.event.client_id(), "late");
    }
}
