//! Ingestion: files, directories, `.gz` archives and stdin → canonical events, with every
//! rejected line dead-lettered with its reason and every line counted.

// The core's modules, named as `crate::event` / `crate::smart` inside this crate.
use scopewatch_core::{event, smart};

mod counts;
mod dead_letter;
mod error;
pub mod format;
mod input;
pub mod json_spans;
mod lines;
mod own_outputs;
mod reader;
pub mod tail;

pub use counts::{IngestSummary, SkippedFile, SourceCounts, Totals};
pub use dead_letter::{DeadLetter, DeadLetterWriter};
pub use error::IngestError;
pub use format::{DecodeOptions, InputFormat};
pub use input::{expand_inputs, Source};
pub use lines::{LineError, LineReader, RawLine, RAW_KEEP_BYTES};
pub use own_outputs::{OwnOutputs, OWN_OUTPUT_REASON};
pub use reader::{
    IngestOptions, Ingestor, Position, SourceFormats, DEFAULT_MAX_DOCUMENT_BYTES,
    DEFAULT_MAX_LINE_BYTES,
};
