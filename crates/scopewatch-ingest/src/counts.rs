//! Per-source counts of read / accepted / dead-lettered lines, and the end-of-run summary.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::event::RejectKind;

/// Distinct skip reasons kept per source; further ones are counted as "other reasons".
const MAX_SKIP_REASONS: usize = 64;

#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct SourceCounts {
    pub source: String,
    /// Records read: non-blank lines (including over-long and partial ones), or, for a Bundle or
    /// JSON array, each of its entries. Always accepted + dead_lettered + skipped.
    pub read: u64,
    pub accepted: u64,
    pub dead_lettered: u64,
    /// Valid records that are not events scopewatch uses (a login AuditEvent, a Keycloak admin
    /// event), counted by reason in `skipped_by_reason`.
    pub skipped: u64,
    /// Whitespace-only lines: not events, not errors; counted so every line is accounted for.
    pub blank: u64,
    /// Bytes read from the (decompressed) stream.
    pub bytes: u64,
    /// Accepted by the parser, then dead-lettered by detection as later than the allowed
    /// lateness, or dated before 1970 or too far ahead of the clock (a subset of `accepted`).
    pub late: u64,
    pub by_reason: BTreeMap<RejectKind, u64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub skipped_by_reason: BTreeMap<String, u64>,
    /// A read failure that ended this source early (truncated gzip, I/O error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl SourceCounts {
    pub fn new(source: &str) -> SourceCounts {
        SourceCounts {
            source: source.to_string(),
            ..SourceCounts::default()
        }
    }
    pub fn record_reject(&mut self, kind: RejectKind) {
        self.read += 1;
        self.dead_lettered += 1;
        *self.by_reason.entry(kind).or_default() += 1;
    }
    pub fn record_skip(&mut self, reason: String) {
        self.read += 1;
        self.skipped += 1;
        // Reasons are built from short codes, but cap the map anyway: input decides them.
        let key = if self.skipped_by_reason.len() < MAX_SKIP_REASONS
            || self.skipped_by_reason.contains_key(&reason)
        {
            reason
        } else {
            "other reasons".to_string()
        };
        *self.skipped_by_reason.entry(key).or_default() += 1;
    }
    pub fn record_accept(&mut self) {
        self.read += 1;
        self.accepted += 1;
    }
}

/// A file inside an input directory that was not read, and why.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SkippedFile {
    pub path: String,
    pub reason: String,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Totals {
    pub sources: u64,
    pub read: u64,
    pub accepted: u64,
    pub dead_lettered: u64,
    pub skipped: u64,
    pub blank: u64,
    pub bytes: u64,
    pub late: u64,
    pub source_errors: u64,
    pub skipped_files: u64,
}

/// The machine-readable end-of-run summary.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct IngestSummary {
    pub sources: Vec<SourceCounts>,
    pub skipped_files: Vec<SkippedFile>,
    pub totals: Totals,
}

impl IngestSummary {
    pub fn push(&mut self, counts: SourceCounts) {
        let t = &mut self.totals;
        t.sources += 1;
        t.read += counts.read;
        t.accepted += counts.accepted;
        t.dead_lettered += counts.dead_lettered;
        t.skipped += counts.skipped;
        t.blank += counts.blank;
        t.bytes += counts.bytes;
        t.source_errors += u64::from(counts.error.is_some());
        self.sources.push(counts);
    }

    pub fn skip(&mut self, file: SkippedFile) {
        self.totals.skipped_files += 1;
        self.skipped_files.push(file);
    }

    /// True when every line was accepted and every source was read to its end.
    pub fn is_clean(&self) -> bool {
        self.totals.dead_lettered == 0 && self.totals.source_errors == 0 && self.totals.late == 0
    }

    /// Counts a late event of the most recently read source.
    /// Counts a late event against the (latest) source of that name.
    pub fn record_late(&mut self, source: &str) {
        self.totals.late += 1;
        if let Some(counts) = self.sources.iter_mut().rev().find(|s| s.source == source) {
            counts.late += 1;
        }
    }

    /// A plain-text table for stderr.
    pub fn render_table(&self) -> String {
        let width = self
            .sources
            .iter()
            .map(|s| s.source.chars().count())
            .chain(["source".len(), "total".len()])
            .max()
            .unwrap_or(6);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<width$}  {:>10}  {:>10}  {:>13}  {:>8}  {:>7}",
            "source", "read", "accepted", "dead-lettered", "skipped", "blank"
        );
        for s in &self.sources {
            let _ = writeln!(
                out,
                "{:<width$}  {:>10}  {:>10}  {:>13}  {:>8}  {:>7}",
                s.source, s.read, s.accepted, s.dead_lettered, s.skipped, s.blank
            );
            if s.late > 0 {
                let _ = writeln!(out, "    late (dead-lettered by detection) {}", s.late);
            }
            if let Some(e) = &s.error {
                let _ = writeln!(out, "  ! {e}");
            }
            for (kind, n) in &s.by_reason {
                let _ = writeln!(out, "    {:<20} {n}", kind.as_str());
            }
            for (reason, n) in &s.skipped_by_reason {
                let _ = writeln!(out, "    skipped: {reason}: {n}");
            }
        }
        let t = &self.totals;
        let _ = writeln!(
            out,
            "{:<width$}  {:>10}  {:>10}  {:>13}  {:>8}  {:>7}",
            "total", t.read, t.accepted, t.dead_lettered, t.skipped, t.blank
        );
        for f in &self.skipped_files {
            let _ = writeln!(out, "skipped {}: {}", f.path, f.reason);
        }
        out
    }
}
