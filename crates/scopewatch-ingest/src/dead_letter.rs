//! The dead-letter output: one NDJSON record per rejected line (or failed source read).

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use super::lines::RAW_KEEP_BYTES;
use crate::event::RejectKind;

/// A rejected line, with where it came from and why.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeadLetter {
    pub source: String,
    /// 1-based line number; None for a failure that is not one line (e.g. the file cannot be read).
    pub line: Option<u64>,
    /// Byte offset of the line start in the (decompressed) stream.
    pub offset: Option<u64>,
    pub kind: RejectKind,
    pub reason: String,
    /// The raw line, cut to 4 KiB; bytes that are not UTF-8 are replaced with U+FFFD.
    pub raw: String,
    pub raw_truncated: bool,
    /// Length of the whole line in bytes.
    pub raw_bytes: u64,
}

impl DeadLetter {
    /// Builds a record, keeping at most 4 KiB of the raw line.
    pub fn new(
        source: &str,
        line: Option<u64>,
        offset: Option<u64>,
        kind: RejectKind,
        reason: String,
        raw: &[u8],
        raw_bytes: u64,
    ) -> DeadLetter {
        let kept = &raw[..raw.len().min(RAW_KEEP_BYTES)];
        let mut text = String::from_utf8_lossy(kept).into_owned();
        // Cutting at 4 KiB may split a character: lossy decoding turns the cut into U+FFFD, which is fine.
        if text.len() > RAW_KEEP_BYTES + 3 {
            let mut end = RAW_KEEP_BYTES;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        DeadLetter {
            source: source.to_string(),
            line,
            offset,
            kind,
            reason,
            raw: text,
            raw_truncated: raw_bytes > kept.len() as u64,
            raw_bytes,
        }
    }
}

/// Writes dead-letter records as NDJSON. A write failure is an error for the whole run:
/// a rejected line that cannot be recorded would be lost.
pub struct DeadLetterWriter {
    out: Box<dyn Write + Send>,
    written: u64,
}

impl DeadLetterWriter {
    pub fn new(out: Box<dyn Write + Send>) -> DeadLetterWriter {
        DeadLetterWriter { out, written: 0 }
    }

    pub fn write(&mut self, record: &DeadLetter) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, record)?;
        self.out.write_all(b"\n")?;
        self.written += 1;
        Ok(())
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
