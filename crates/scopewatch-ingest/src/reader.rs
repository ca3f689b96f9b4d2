//! Drives sources line by line: parse, hand accepted events on, dead-letter the rest, count all.

use super::counts::{IngestSummary, SourceCounts};
use super::dead_letter::{DeadLetter, DeadLetterWriter};
use super::error::IngestError;
use super::format::{decode_line, DecodeOptions, Decoded, InputFormat};
use super::input::Source;
use super::json_spans;
use super::lines::{LineError, LineReader};
use std::collections::VecDeque;
use std::ops::Range;

use crate::event::{json_reject, parse_event, Event, Reject, RejectKind, Timestamp};

/// Default longest line accepted: 1 MiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1024 * 1024;
/// Default largest multi-line JSON document (a pretty-printed Bundle or array): 256 MiB.
pub const DEFAULT_MAX_DOCUMENT_BYTES: usize = 256 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct IngestOptions {
    pub max_line_bytes: usize,
    pub max_document_bytes: usize,
    /// How sources are decoded unless `formats` names one.
    pub decode: DecodeOptions,
    /// Sources read in a format of their own (`keycloak:/var/log/kc/` on the command line).
    pub formats: SourceFormats,
}

/// The input format of each source that has one of its own.
pub type SourceFormats = std::collections::HashMap<Source, InputFormat>;

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            max_document_bytes: DEFAULT_MAX_DOCUMENT_BYTES,
            decode: DecodeOptions::default(),
            formats: SourceFormats::default(),
        }
    }
}

/// A pretty-printed object that is not a canonical event is a Keycloak event or a FHIR
/// resource by its top-level keys; anything else is a bad canonical event.
fn is_canonical_value(value: &serde_json::Value) -> bool {
    value.get("realmId").is_none() && value.get("resourceType").is_none()
}

/// How deep arrays in a document are split element by element.
const MAX_SPLIT_DEPTH: usize = 16;

/// A document's bytes, and the line numbers of offsets in it, counted forward from the last
/// offset asked (offsets come in increasing order, so its newlines are counted once in all).
struct Document<'a> {
    bytes: &'a [u8],
    start: Position,
    at: usize,
    line: u64,
}

impl<'a> Document<'a> {
    fn new(bytes: &'a [u8], start: Position) -> Document<'a> {
        Document {
            bytes,
            start,
            at: 0,
            line: start.line,
        }
    }

    fn position(&mut self, offset: usize) -> Position {
        let offset = offset.min(self.bytes.len());
        if offset < self.at {
            // Never expected; recount from the start rather than give a wrong line.
            self.at = 0;
            self.line = self.start.line;
        }
        self.line += memchr::memchr_iter(b'\n', &self.bytes[self.at..offset]).count() as u64;
        self.at = offset;
        Position {
            line: self.line,
            offset: self.start.offset + offset as u64,
        }
    }
}

/// Where an accepted event came from (for checkpoints and evidence).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: u64,
    pub offset: u64,
}

/// One source being read: its line reader, counts, and events decoded but not yet taken (a
/// Bundle line or document yields several).
pub struct SourceCursor {
    counts: SourceCounts,
    /// `None` once the source has ended (or could not be opened).
    lines: Option<LineReader<Box<dyn std::io::BufRead + Send>>>,
    compressed: bool,
    first_record: bool,
    pending: VecDeque<(Event, Position)>,
    decoded: Vec<Decoded>,
    decode: DecodeOptions,
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
        let mut cursor = self.open(source)?;
        while let Some((event, position)) = self.next_event(&mut cursor)? {
            on_event(event, position);
        }
        self.close(cursor);
        Ok(())
    }

    /// How `source` is decoded: its own format if it has one, otherwise the run's.
    fn decode_options(&self, source: &Source) -> DecodeOptions {
        match self.options.formats.get(source) {
            Some(format) => DecodeOptions {
                format: format.clone(),
                ..self.options.decode.clone()
            },
            None => self.options.decode.clone(),
        }
    }

    /// Opens a source for reading event by event. A source that cannot be opened is recorded
    /// and dead-lettered here and reads as empty.
    pub fn open(&mut self, source: &Source) -> Result<SourceCursor, IngestError> {
        let name = source.name();
        let mut cursor = SourceCursor {
            counts: SourceCounts::new(&name),
            lines: None,
            compressed: false,
            first_record: true,
            pending: VecDeque::new(),
            decoded: Vec::new(),
            decode: self.decode_options(source),
        };
        match source.open() {
            Ok((reader, compressed)) => {
                cursor.lines = Some(LineReader::new(reader, self.options.max_line_bytes));
                cursor.compressed = compressed;
            }
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
                cursor.counts.error = Some(reason);
            }
        }
        Ok(cursor)
    }

    /// The next accepted event of the source, or `None` at its end; rejected records on the
    /// way are dead-lettered and everything is counted.
    pub fn next_event(
        &mut self,
        cursor: &mut SourceCursor,
    ) -> Result<Option<(Event, Position)>, IngestError> {
        loop {
            if let Some(next) = cursor.pending.pop_front() {
                return Ok(Some(next));
            }
            if cursor.lines.is_none() {
                return Ok(None);
            }
            self.read_line(cursor)?;
        }
    }

    /// Ends a source: its counts join the summary.
    pub fn close(&mut self, mut cursor: SourceCursor) {
        if let Some(lines) = &cursor.lines {
            cursor.counts.bytes = lines.offset();
        }
        let counts = cursor.counts;
        tracing::info!(
            source = %counts.source,
            read = counts.read,
            accepted = counts.accepted,
            dead_lettered = counts.dead_lettered,
            skipped = counts.skipped,
            "source done"
        );
        self.summary.push(counts);
    }

    /// Reads all sources as one stream in event-time order: a k-way merge on each source's
    /// next event, so a token log and an access log covering the same hours interleave instead
    /// of one arriving hours "late" after the other. A source is opened only when the merge
    /// reaches its first event (found by a look-ahead that counts nothing), so a directory of
    /// daily files keeps only the overlapping ones open. Ties go to the earlier source, which
    /// keeps the order (and so alert ids) deterministic. Sources that cannot be read twice
    /// (stdin) take part from the start. `on_event` gets the source's index in `sources`.
    pub fn ingest_merged(
        &mut self,
        sources: &[Source],
        on_event: &mut dyn FnMut(Event, usize, Position),
    ) -> Result<(), IngestError> {
        let first_pushed = self.summary.sources.len();
        let mut order: Vec<(Option<Timestamp>, usize)> = sources
            .iter()
            .enumerate()
            .map(|(i, s)| (self.first_event_time(s), i))
            .collect();
        // No look-ahead time (stdin, or no event at all) sorts first: read from the start.
        order.sort();
        let mut waiting = order.into_iter().peekable();
        let mut active: Vec<(usize, SourceCursor, Event, Position)> = Vec::new();
        loop {
            let frontier = active.iter().map(|(_, _, e, _)| e.time()).min();
            while let Some(&(first, index)) = waiting.peek() {
                let due = match (frontier, first) {
                    (None, _) | (_, None) => true,
                    (Some(f), Some(t)) => t <= f,
                };
                if !due {
                    break;
                }
                waiting.next();
                let mut cursor = self.open(&sources[index])?;
                match self.next_event(&mut cursor)? {
                    Some((event, position)) => active.push((index, cursor, event, position)),
                    None => self.close(cursor),
                }
                if frontier.is_none() && !active.is_empty() {
                    // Re-evaluate with the new head before opening more.
                    break;
                }
            }
            let Some(pick) = active
                .iter()
                .enumerate()
                .min_by_key(|(_, (index, _, e, _))| (e.time(), *index))
                .map(|(at, _)| at)
            else {
                if waiting.peek().is_none() {
                    break;
                }
                continue;
            };
            let (index, cursor, _, _) = &mut active[pick];
            let index = *index;
            let next = self.next_event(cursor)?;
            let (event, position) = match next {
                Some((e, p)) => {
                    let slot = &mut active[pick];
                    (
                        std::mem::replace(&mut slot.2, e),
                        std::mem::replace(&mut slot.3, p),
                    )
                }
                None => {
                    let (_, cursor, e, p) = active.swap_remove(pick);
                    self.close(cursor);
                    (e, p)
                }
            };
            on_event(event, index, position);
        }
        // Counts in input order, whatever order the sources ended in.
        let names: Vec<String> = sources.iter().map(Source::name).collect();
        self.summary.sources[first_pushed..]
            .sort_by_key(|c| names.iter().position(|n| *n == c.source));
        Ok(())
    }

    /// Time of a source's first accepted event, read without counting or dead-lettering.
    fn first_event_time(&self, source: &Source) -> Option<Timestamp> {
        // A pipe, FIFO or process substitution can be read only once: the look-ahead would
        // consume what the real read needs (or wait forever for a writer that has gone).
        if !source.is_regular_file() {
            return None;
        }
        let mut scout = Ingestor::new(
            self.options.clone(),
            DeadLetterWriter::new(Box::new(std::io::sink())),
        );
        let mut cursor = scout.open(source).ok()?;
        scout
            .next_event(&mut cursor)
            .ok()
            .flatten()
            .map(|(e, _)| e.time())
    }

    /// Reads one line of the cursor's source and decodes it into the cursor's pending events,
    /// the dead-letter output or the counts; at the end of the source the cursor stops reading.
    fn read_line(&mut self, cursor: &mut SourceCursor) -> Result<(), IngestError> {
        let SourceCursor {
            counts,
            lines: lines_slot,
            compressed,
            first_record,
            pending,
            decoded,
            decode,
        } = cursor;
        let Some(lines) = lines_slot.as_mut() else {
            return Ok(());
        };
        let max = self.options.max_line_bytes;
        let canonical = matches!(decode.format, InputFormat::Canonical);
        match lines.next_line() {
            Ok(None) => {
                counts.bytes = lines.offset();
                *lines_slot = None;
            }
            Ok(Some(line)) => {
                if line.too_long {
                    let reject = Reject::new(
                        RejectKind::LineTooLong,
                        format!(
                            "line is {} bytes, longer than the {max}-byte limit (--max-line-bytes)",
                            line.len
                        ),
                    );
                    let (n, o) = (line.number, line.offset);
                    return self.dead_letter_record(
                        counts,
                        Some(n),
                        Some(o),
                        reject,
                        line.bytes,
                        line.len,
                    );
                }
                if line.bytes.iter().all(u8::is_ascii_whitespace) {
                    counts.blank += 1;
                    return Ok(());
                }
                let position = Position {
                    line: line.number,
                    offset: line.offset,
                };
                if canonical {
                    return match parse_event(line.bytes) {
                        Ok(event) => {
                            counts.record_accept();
                            pending.push_back((event, position));
                            Ok(())
                        }
                        Err(reject) => self.dead_letter_record(
                            counts,
                            Some(position.line),
                            Some(position.offset),
                            reject,
                            line.bytes,
                            line.len,
                        ),
                    };
                }
                let is_first = std::mem::replace(first_record, false);
                let text = match std::str::from_utf8(line.bytes) {
                    Ok(text) => text,
                    Err(_) => {
                        // The canonical parser words the UTF-8 error (byte and column).
                        let reject = parse_event(line.bytes)
                            .err()
                            .unwrap_or_else(|| Reject::new(RejectKind::NotUtf8, "not UTF-8"));
                        return self.dead_letter_record(
                            counts,
                            Some(position.line),
                            Some(position.offset),
                            reject,
                            line.bytes,
                            line.len,
                        );
                    }
                };
                if is_first && decode.format.allows_documents() && starts_document(text) {
                    let first = line.bytes.to_vec();
                    self.ingest_document(lines, counts, pending, decode, first, position)?;
                    counts.bytes = lines.offset();
                    *lines_slot = None;
                    return Ok(());
                }
                decode_line(text, decode, &mut |d| decoded.push(d));
                for d in decoded.drain(..) {
                    self.account(counts, pending, d, position, line.bytes, line.len)?;
                }
            }
            Err(LineError { error, partial }) => {
                let at = lines.offset();
                let reason = if *compressed {
                    format!("gzip stream ended early or is corrupt after {at} decompressed bytes: {error}")
                } else {
                    format!("read failed after {at} bytes: {error}")
                };
                if let Some((n, o, raw, len)) = partial {
                    let reject =
                        Reject::new(RejectKind::ReadError, format!("incomplete line: {reason}"));
                    self.dead_letter_record(counts, Some(n), Some(o), reject, &raw, len)?;
                } else {
                    // No line was cut, but the stream still ended early: leave a record.
                    self.dead_letter
                        .write(&DeadLetter::new(
                            &counts.source,
                            None,
                            Some(at),
                            RejectKind::ReadError,
                            reason.clone(),
                            b"",
                            0,
                        ))
                        .map_err(IngestError::DeadLetter)?;
                }
                tracing::warn!(source = %counts.source, "{reason}");
                counts.error = Some(reason);
                counts.bytes = at;
                *lines_slot = None;
            }
        }
        Ok(())
    }

    /// Counts one decoded record and passes it on (event), dead-letters it (rejected) or
    /// counts its skip reason.
    fn account(
        &mut self,
        counts: &mut SourceCounts,
        pending: &mut VecDeque<(Event, Position)>,
        decoded: Decoded,
        position: Position,
        raw: &[u8],
        raw_len: u64,
    ) -> Result<(), IngestError> {
        match decoded {
            Decoded::Event(event) => {
                counts.record_accept();
                pending.push_back((event, position));
                Ok(())
            }
            Decoded::Skipped(reason) => {
                tracing::debug!(source = %counts.source, line = position.line, %reason, "skipped");
                counts.record_skip(reason);
                Ok(())
            }
            Decoded::Rejected(reject) => self.dead_letter_record(
                counts,
                Some(position.line),
                Some(position.offset),
                reject,
                raw,
                raw_len,
            ),
        }
    }

    /// Reads the rest of a source as one or more pretty-printed JSON values (a Bundle, an
    /// array of events, …) that began on the line `first`.
    fn ingest_document<R: std::io::BufRead>(
        &mut self,
        lines: &mut LineReader<R>,
        counts: &mut SourceCounts,
        pending: &mut VecDeque<(Event, Position)>,
        decode: &DecodeOptions,
        first: Vec<u8>,
        start: Position,
    ) -> Result<(), IngestError> {
        let limit = self.options.max_document_bytes;
        let mut doc = first;
        doc.push(b'\n');
        let mut stopped: Option<String> = None;
        loop {
            match lines.next_line() {
                Ok(None) => break,
                Ok(Some(line)) if line.too_long => {
                    stopped = Some(format!(
                        "line {} of the JSON document is longer than the {}-byte limit (--max-line-bytes)",
                        line.number, self.options.max_line_bytes
                    ));
                    break;
                }
                Ok(Some(line)) => {
                    if doc.len() + line.bytes.len() + 1 > limit {
                        stopped = Some(format!(
                            "the JSON document starting at line {} is larger than the {limit}-byte limit (--max-document-bytes)",
                            start.line
                        ));
                        break;
                    }
                    doc.extend_from_slice(line.bytes);
                    doc.push(b'\n');
                }
                Err(LineError { error, partial }) => {
                    if let Some((_, _, raw, _)) = partial {
                        doc.extend_from_slice(&raw);
                    }
                    stopped = Some(format!(
                        "read failed after {} bytes: {error}",
                        lines.offset()
                    ));
                    break;
                }
            }
        }
        // serde checks the syntax and finds where each top-level value ends without building
        // it; `document_value` then decodes it piece by piece.
        let mut stream =
            serde_json::Deserializer::from_slice(&doc).into_iter::<serde::de::IgnoredAny>();
        let mut document = Document::new(&doc, start);
        loop {
            let before = stream.byte_offset();
            let value_start = doc[before..]
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .map_or(doc.len(), |i| before + i);
            match stream.next() {
                None => break,
                Some(Ok(_)) => {
                    let span = value_start..stream.byte_offset();
                    self.document_value(counts, pending, decode, &mut document, span, 0)?;
                }
                Some(Err(e)) => {
                    let line = start.line + e.line() as u64 - 1;
                    let column = e.column();
                    let rest = (doc.len() - value_start) as u64;
                    let reject = if e.is_eof() {
                        Reject::new(
                            RejectKind::TruncatedJson,
                            format!("JSON document ends early (line {line}, column {column})"),
                        )
                    } else {
                        let message = e.to_string();
                        let message = message
                            .rfind(" at line ")
                            .map_or(message.as_str(), |i| &message[..i]);
                        Reject::new(
                            RejectKind::InvalidJson,
                            format!("invalid JSON at line {line}, column {column}: {message}; the rest of the document ({rest} bytes) could not be read"),
                        )
                    };
                    let raw = &doc[value_start..];
                    let position = document.position(value_start);
                    self.dead_letter_record(
                        counts,
                        Some(position.line),
                        Some(position.offset),
                        reject,
                        raw,
                        rest,
                    )?;
                    break;
                }
            }
        }
        if let Some(reason) = stopped {
            self.dead_letter
                .write(&DeadLetter::new(
                    &counts.source,
                    None,
                    Some(lines.offset()),
                    RejectKind::ReadError,
                    reason.clone(),
                    b"",
                    0,
                ))
                .map_err(IngestError::DeadLetter)?;
            tracing::warn!(source = %counts.source, "{reason}");
            counts.error = Some(reason);
        }
        Ok(())
    }

    /// Decodes one top-level value of a document: an array element by element, a FHIR Bundle
    /// entry by entry (when the format may hold FHIR), anything else as one record. Only one
    /// element's tree is built at a time.
    fn document_value(
        &mut self,
        counts: &mut SourceCounts,
        pending: &mut VecDeque<(Event, Position)>,
        decode: &DecodeOptions,
        doc: &mut Document<'_>,
        span: Range<usize>,
        depth: usize,
    ) -> Result<(), IngestError> {
        let raw = &doc.bytes[span.clone()];
        // Arrays in arrays are split to this depth; deeper ones take the whole-value path, whose
        // parser refuses them (serde's limit of 128), instead of recursing without bound.
        if raw.first() == Some(&b'[') && depth < MAX_SPLIT_DEPTH {
            for element in json_spans::array_elements(raw) {
                let element = span.start + element.start..span.start + element.end;
                self.document_value(counts, pending, decode, doc, element, depth + 1)?;
            }
            return Ok(());
        }
        let may_hold_fhir = matches!(decode.format, InputFormat::Auto | InputFormat::AuditEvent);
        if let Some(entries) = json_spans::bundle_entries(raw).filter(|_| may_hold_fhir) {
            let mut decoded = Vec::new();
            if entries.is_empty() {
                decoded.push(super::format::empty_bundle());
            }
            let position = doc.position(span.start);
            for d in decoded.drain(..) {
                self.account(counts, pending, d, position, raw, raw.len() as u64)?;
            }
            for (i, entry) in entries.into_iter().enumerate() {
                let entry_raw = &raw[entry.clone()];
                let position = doc.position(span.start + entry.start);
                match serde_json::from_slice::<serde_json::Value>(entry_raw) {
                    Ok(value) => {
                        super::format::decode_bundle_entry(i + 1, &value, &mut |d| decoded.push(d))
                    }
                    Err(e) => {
                        let reject = json_reject(e);
                        let reason = format!("Bundle entry {}: {}", i + 1, reject.reason);
                        decoded.push(Decoded::Rejected(Reject::new(reject.kind, reason)));
                    }
                }
                for d in decoded.drain(..) {
                    let len = entry_raw.len() as u64;
                    self.account(counts, pending, d, position, entry_raw, len)?;
                }
            }
            return Ok(());
        }
        let position = doc.position(span.start);
        let mut decoded = Vec::new();
        // A canonical event is read from its own text (a parsed value has already merged a key
        // given twice, which the contract rejects), whatever other keys it carries, as on a line.
        let canonical = matches!(decode.format, InputFormat::Canonical | InputFormat::Auto)
            .then(|| parse_event(raw));
        match canonical {
            Some(Ok(event)) => decoded.push(Decoded::Event(event)),
            Some(Err(reject)) if matches!(decode.format, InputFormat::Canonical) => {
                decoded.push(Decoded::Rejected(reject))
            }
            canonical => match serde_json::from_slice::<serde_json::Value>(raw) {
                Ok(value) => match canonical {
                    Some(Err(reject)) if is_canonical_value(&value) => {
                        decoded.push(Decoded::Rejected(reject))
                    }
                    _ => super::format::decode_value(value, decode, &mut |d| decoded.push(d)),
                },
                Err(e) => decoded.push(Decoded::Rejected(json_reject(e))),
            },
        }
        for d in decoded.drain(..) {
            self.account(counts, pending, d, position, raw, raw.len() as u64)?;
        }
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

/// A first line that opens a JSON value without closing it (`{`, `[`, `{ "resourceType": …,`)
/// starts a pretty-printed document. A truncated NDJSON line does not end that way, so a
/// broken first line of an NDJSON file is still one bad line, not the whole file.
fn starts_document(text: &str) -> bool {
    let t = text.trim();
    let opens = t.ends_with(['{', '[', ',']);
    opens && matches!(serde_json::from_str::<serde::de::IgnoredAny>(t), Err(e) if e.is_eof())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(kind: &str, minute: u32, client: &str) -> String {
        match kind {
            "token" => format!(
                r#"{{"type":"token","event":"issued","time":"2024-03-01T12:{minute:02}:00Z","client_id":"{client}","token_id":"t{minute}"}}"#
            ),
            _ => format!(
                r#"{{"type":"access","time":"2024-03-01T12:{minute:02}:00Z","client_id":"{client}","method":"GET","url":"Patient/p","status":200}}"#
            ),
        }
    }

    #[test]
    fn merged_sources_interleave_by_event_time_and_keep_counts_in_input_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, lines: Vec<String>| {
            let path = dir.path().join(name);
            std::fs::write(&path, lines.join("\n") + "\n").expect("write");
            Source::File(path)
        };
        // Access log first by name, but the token log starts earlier; a third file starts
        // after both and holds a bad line; an empty file has no events at all.
        let access = write(
            "a-access.ndjson",
            vec![
                line("access", 1, "x"),
                line("access", 3, "x"),
                line("access", 5, "x"),
            ],
        );
        let tokens = write(
            "b-tokens.ndjson",
            vec![
                line("token", 0, "x"),
                line("token", 3, "y"),
                line("token", 4, "x"),
            ],
        );
        let later = write(
            "c-later.ndjson",
            vec![
                line("access", 6, "z"),
                "{broken".to_string(),
                line("access", 7, "z"),
            ],
        );
        let empty = write("d-empty.ndjson", vec![]);
        let sources = vec![access, tokens, later, empty];
        let run = || {
            let mut ingestor = Ingestor::new(
                IngestOptions::default(),
                DeadLetterWriter::new(Box::new(std::io::sink())),
            );
            let mut seen = Vec::new();
            ingestor
                .ingest_merged(&sources, &mut |e, index, pos| {
                    seen.push((e.time().unix_seconds() / 60 % 60, index, pos.line))
                })
                .expect("merge");
            (seen, ingestor.finish().expect("finish"))
        };
        let (seen, summary) = run();
        // Minute 3 is in both files: the tie goes to the earlier source (the access log).
        assert_eq!(
            seen,
            vec![
                (0, 1, 1),
                (1, 0, 1),
                (3, 0, 2),
                (3, 1, 2),
                (4, 1, 3),
                (5, 0, 3),
                (6, 2, 1),
                (7, 2, 3)
            ]
        );
        let names: Vec<&str> = summary
            .sources
            .iter()
            .map(|s| s.source.rsplit('/').next().unwrap_or_default())
            .collect();
        assert_eq!(
            names,
            [
                "a-access.ndjson",
                "b-tokens.ndjson",
                "c-later.ndjson",
                "d-empty.ndjson"
            ]
        );
        assert_eq!(summary.totals.accepted, 8);
        assert_eq!(
            summary.totals.dead_lettered, 1,
            "the look-ahead counts nothing twice"
        );
        assert_eq!(run().0, seen, "deterministic");
    }
}
