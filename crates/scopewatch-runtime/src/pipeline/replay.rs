//! Batch replay on two cores: one thread reads and parses the sources (the `Ingestor`), the
//! calling thread drives the detection core. Events cross in batches over a bounded channel,
//! so memory stays bounded whichever side is slower, and the order the engine sees is exactly
//! the input order — the alerts are those of a single-threaded run.
//!
//! Events the engine hands back as late are dead-lettered (through the ingestor, so they are
//! counted against their source) once reading has finished.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use thiserror::Error;

use crate::alert::Alert;
use crate::detect::Engine;
use crate::detect::LateEvent;
use crate::event::Event;
use crate::ingest::{DeadLetter, IngestError, Ingestor, Position, Source};

/// Events per message: large enough that channel overhead vanishes, small enough to keep the
/// two threads busy together.
const BATCH: usize = 1024;
/// Messages in flight: with `BATCH` this bounds buffered events to about 8 k.
const IN_FLIGHT: usize = 8;

#[derive(Debug, Error)]
pub enum ReplayError {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("writing alerts: {0}")]
    Alerts(#[source] std::io::Error),
    #[error("the reading thread panicked")]
    ReaderPanicked,
    /// The tap (e.g. the history writer) failed; reading stopped.
    #[error("{0}")]
    Tap(String),
}

/// What the reader sends: accepted events with their source index and position.
type Message = Vec<(Event, usize, Position)>;

/// Progress as seen by the engine side: events pushed, and the source and offset reached.
pub struct Progress<'a> {
    pub events: u64,
    pub source: &'a str,
    pub offset: u64,
}

/// A function that sees every accepted event on the reading thread, before the engine does
/// (late events included): the history writer.
pub type Tap<'a> = &'a mut (dyn FnMut(&Event) -> Result<(), String> + Send);

/// Replays `sources`, merged in event-time order (`Ingestor::ingest_merged`), through `engine`. `on_alerts` receives every batch of alerts as
/// the engine emits them; an error from it stops the run. `on_progress` is called once per batch.
/// Does not call `engine.finish` (the caller decides whether the end of input ends the stream).
/// Returns the ingestor (for its summary) and the number of late events dead-lettered.
pub fn replay(
    sources: &[Source],
    ingestor: Ingestor,
    engine: &mut Engine,
    lateness_seconds: i64,
    tap: Option<Tap<'_>>,
    on_alerts: &mut dyn FnMut(&[Alert]) -> std::io::Result<()>,
    on_progress: &mut dyn FnMut(&Progress<'_>),
) -> Result<(Ingestor, u64), ReplayError> {
    let names: Vec<String> = sources.iter().map(Source::name).collect();
    let (tx, rx) = sync_channel::<Message>(IN_FLIGHT);
    let (result, late) = std::thread::scope(|scope| {
        let reader = scope.spawn(move || read_all(sources, ingestor, tap, tx));
        let late = drive(&rx, engine, &names, on_alerts, on_progress);
        // On an alert error the receiver goes away and the reader stops at its next send.
        drop(rx);
        let result = reader.join().map_err(|_| ReplayError::ReaderPanicked);
        (result, late)
    });
    let mut ingestor = result??;
    let late = late?;
    let count = late.len() as u64;
    for (source, pos, late) in late {
        let raw = serde_json::to_vec(&late.event).unwrap_or_default();
        let (kind, reason) = late.reject(lateness_seconds);
        let record = DeadLetter::new(
            &names[source],
            Some(pos.line),
            Some(pos.offset),
            kind,
            reason,
            &raw,
            raw.len() as u64,
        );
        ingestor.dead_letter_late(&names[source], &record)?;
    }
    Ok((ingestor, count))
}

type Late = Vec<(usize, Position, LateEvent)>;

fn drive(
    rx: &Receiver<Message>,
    engine: &mut Engine,
    names: &[String],
    on_alerts: &mut dyn FnMut(&[Alert]) -> std::io::Result<()>,
    on_progress: &mut dyn FnMut(&Progress<'_>),
) -> Result<Late, ReplayError> {
    let mut late = Vec::new();
    let mut alerts = Vec::new();
    let mut events = 0u64;
    while let Ok(batch) = rx.recv() {
        let mut last = None;
        for (event, source, pos) in batch {
            events += 1;
            if let Err(l) = engine.push(event, &mut alerts) {
                late.push((source, pos, *l));
            }
            last = Some((source, pos.offset));
        }
        if !alerts.is_empty() {
            on_alerts(&alerts).map_err(ReplayError::Alerts)?;
            alerts.clear();
        }
        if let Some((source, offset)) = last {
            on_progress(&Progress {
                events,
                source: &names[source],
                offset,
            });
        }
    }
    Ok(late)
}

fn read_all(
    sources: &[Source],
    mut ingestor: Ingestor,
    mut tap: Option<Tap<'_>>,
    tx: SyncSender<Message>,
) -> Result<Ingestor, ReplayError> {
    let mut batch = Vec::with_capacity(BATCH);
    let mut open = true;
    let mut tap_error = None;
    ingestor.ingest_merged(sources, &mut |event, index, pos| {
        if !open {
            return;
        }
        if let Some(tap) = tap.as_mut() {
            if let Err(e) = tap(&event) {
                tap_error = Some(e);
                open = false;
                return;
            }
        }
        batch.push((event, index, pos));
        if batch.len() == BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            open = tx.send(full).is_ok();
        }
    })?;
    if let Some(e) = tap_error {
        return Err(ReplayError::Tap(e));
    }
    if open && !batch.is_empty() {
        let _ = tx.send(batch);
    }
    Ok(ingestor)
}
