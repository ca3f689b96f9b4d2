//! Drives sources line by line: parse, hand accepted events on, dead-letter the rest, count all.

use super::counts::{IngestSummary, SourceCounts};
use super::dead_letter::{DeadLetter, DeadLetterWriter};
use super::error::IngestError;
use super::input::Source;
use super::lines::{LineError, LineReader};
use crate::event::{parse_event, Event, Reject, RejectKind};

/// Default longest line accepted: 1 MiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1024 * 1024;

#[derive(Clone, Debug)]
pub struct IngestOptions {
    pub max_line_bytes: usize,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        }
    }
}

/// Where an accepted event came from (for checkpoints and evidence).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: u64,
    pub offset: u64,
}

/// Reads sources into events; owns the counts and the dead-letter writer.
pub struct Ingestor {
    options: IngestOptions,
    dead_letter: DeadLetterWriter,
    summary: IngestSummary,
}

impl Ingestor {
    pub fn new(options: IngestOptions, dead_letter: DeadLetterWriter) -> Ingestor {
        Ingestor {
            options,
            dead_letter,
            summary: IngestSummary::default(),
        }
    }

    pub fn summary(&self) -> &IngestSummary {
        &self.summary
    }

    pub fn skip_files(&mut self, files: Vec<super::counts::SkippedFile>) {
        for f in files {
            tracing::warn!(path = %f.path, "skipped file: {}", f.reason);
            self.summary.skip(f);
        }
    }

    /// Dead-letters an event that was accepted but rejected later (e.g. late), counting it
    /// against the most recently read source.
    pub fn dead_letter_late(
        &mut self,
        source: &str,
        record: &DeadLetter,
    ) -> Result<(), IngestError> {
        self.summary.record_late(source);
        self.dead_letter
            .write(record)
            .map_err(IngestError::DeadLetter)
    }

    /// Records written to the dead-letter output so far.
    pub fn dead_lettered(&self) -> u64 {
        self.dead_letter.written()
    }

    /// Flushes the dead-letter output and returns the summary.
    pub fn finish(mut self) -> Result<IngestSummary, IngestError> {
        self.dead_letter.flush().map_err(IngestError::DeadLetter)?;
        Ok(self.summary)
    }

    /// Reads one source to its end (or to a read error, which is recorded and dead-lettered),
    /// calling `on_event` for each accepted event in input order.
    pub fn ingest(
        &mut self,
        source: &Source,
        on_event: &mut dyn FnMut(Event, Position),
    ) -> Result<(), IngestError> {
        let name = source.name();
        let mut counts = SourceCounts::new(&name);
        let (reader, compressed) = match source.open() {
            Ok(r) => r,
            Err(e) => {
                // The source vanished or became unreadable after the inputs were listed.
                let reason = e.to_string();
                self.dead_letter
                    .write(&DeadLetter::new(
                        &name,
                        None,
                        None,
                        RejectKind::ReadError,
                        reason.clone(),
                        b"",
                        0,
                    ))
                    .map_err(IngestError::DeadLetter)?;
                tracing::warn!(source = %name, "{reason}");
                counts.error = Some(reason);
                self.summary.push(counts);
                return Ok(());
            }
        };
        let mut lines = LineReader::new(reader, self.options.max_line_bytes);
        let max = self.options.max_line_bytes;
        loop {
            match lines.next_line() {
                Ok(None) => break,
                Ok(Some(line)) => {
                    if line.too_long {
                        let reject = Reject::new(
                            RejectKind::LineTooLong,
                            format!(
                                "line is {} bytes, longer than the {max}-byte limit (--max-line-bytes)",
                                line.len
                            ),
                        );
                        let (n, o, raw, len) =
                            (line.number, line.offset, line.bytes.to_vec(), line.len);
                        self.dead_letter_record(&mut counts, Some(n), Some(o), reject, &raw, len)?;
                        continue;
                    }
                    if line.bytes.iter().all(u8::is_ascii_whitespace) {
                        counts.blank += 1;
                        continue;
                    }
                    let position = Position {
                        line: line.number,
                        offset: line.offset,
                    };
                    match parse_event(line.bytes) {
                        Ok(event) => {
                            counts.record_accept();
                            on_event(event, position);
                        }
                        Err(reject) => {
                            let raw = line.bytes.to_vec();
                            let len = line.len;
                            self.dead_letter_record(
                                &mut counts,
                                Some(position.line),
                                Some(position.offset),
                                reject,
                                &raw,
                                len,
                            )?;
                        }
                    }
                }
                Err(LineError { error, partial }) => {
                    let at = lines.offset();
                    let reason = if compressed {
                        format!("gzip stream ended early or is corrupt after {at} decompressed bytes: {error}")
                    } else {
                        format!("read failed after {at} bytes: {error}")
                    };
                    if let Some((n, o, raw, len)) = partial {
                        let reject = Reject::new(
                            RejectKind::ReadError,
                            format!("incomplete line: {reason}"),
                        );
                        self.dead_letter_record(&mut counts, Some(n), Some(o), reject, &raw, len)?;
                    } else {
                        // No line was cut, but the stream still ended early: leave a record.
                        self.dead_letter
                            .write(&DeadLetter::new(
                                &name,
                                None,
                                Some(at),
                                RejectKind::ReadError,
                                reason.clone(),
                                b"",
                                0,
                            ))
                            .map_err(IngestError::DeadLetter)?;
                    }
                    tracing::warn!(source = %name, "{reason}");
                    counts.error = Some(reason);
                    break;
                }
            }
        }
        counts.bytes = lines.offset();
        tracing::info!(
            source = %name,
            read = counts.read,
            accepted = counts.accepted,
            dead_lettered = counts.dead_lettered,
            "source done"
        );
        self.summary.push(counts);
        Ok(())
    }

    fn dead_letter_record(
        &mut self,
        counts: &mut SourceCounts,
        line: Option<u64>,
        offset: Option<u64>,
        reject: Reject,
        raw: &[u8],
        raw_len: u64,
    ) -> Result<(), IngestError> {
        // Reasons may be logged at debug only: they can quote field values.
        tracing::debug!(source = %counts.source, line, kind = reject.kind.as_str(), reason = %reject.reason, "dead-lettered");
        counts.record_reject(reject.kind);
        let record = DeadLetter::new(
            &counts.source,
            line,
            offset,
            reject.kind,
            reject.reason,
            raw,
            raw_len,
        );
        self.dead_letter
            .write(&record)
            .map_err(IngestError::DeadLetter)
    }
}
