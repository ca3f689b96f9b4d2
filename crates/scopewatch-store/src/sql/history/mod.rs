//! The history store in `--data DIR`: accepted events (`access`, `tokens`), alerts and
//! dead-letter records as Hive-partitioned Parquet, and the baseline tables of the detection
//! core. See `writer.rs` for the layout and how files are written.

mod columns;
pub mod compact;
mod feedback;
mod flusher;
mod grants;
mod location;
#[cfg(feature = "s3")]
mod profile;
mod pseudonym;
mod records;
#[cfg(feature = "s3")]
pub mod remote;
mod schema;
mod target;
mod writer;

use std::path::Path;

use thiserror::Error;

pub use feedback::{feedback_schema, write_feedback, Feedback};
pub use location::{DataLocation, StoreUrl};
pub use pseudonym::{check_store, is_pseudonymized, Pseudonymizer, MIN_KEY_BYTES};
pub use records::{write_alerts, write_baselines, write_dead_letters};
pub use schema::{access_schema, alerts_schema, dead_letter_schema, tokens_schema};
pub use target::StoreTarget;
pub use writer::{date_of, HistoryCounts, HistoryWriter, FLUSH_ROWS};

/// The tables of the store, as directories under the data directory.
pub const TABLES: [&str; 4] = ["access", "tokens", "alerts", "dead_letter"];

#[derive(Debug, Error)]
pub enum HistoryError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parquet { path: String, message: String },
    #[error("building a history batch: {0}")]
    Arrow(String),
    #[error("{path} line {line}: {message}")]
    Record {
        path: String,
        line: u64,
        message: String,
    },
}

/// The tables a run's files are replaced in when it is written again.
const RUN_TABLES: [&str; 3] = ["access", "tokens", "alerts"];

/// Whether the file `name` (in one of `RUN_TABLES`) was written by run `run_id`.
fn is_run_file(name: &str, run_id: &str) -> bool {
    name.strip_prefix("part-")
        .and_then(|rest| rest.strip_prefix(run_id))
        .is_some_and(|rest| rest.starts_with('-'))
        || name
            .strip_prefix("alerts-")
            .and_then(|rest| rest.strip_prefix(run_id))
            == Some(".parquet")
}

/// Removes the files a run (or a stream segment) named `run_id` wrote to the event and alert
/// tables: a streaming service restarting from a checkpoint writes that segment again, whole.
/// Returns the files removed.
pub fn remove_run(data: &Path, run_id: &str) -> Result<u64, HistoryError> {
    let mut removed = 0;
    for table in RUN_TABLES {
        let dir = data.join(table);
        let dates = match std::fs::read_dir(&dir) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(HistoryError::io(&dir, e)),
        };
        for date in dates {
            let date = date.map_err(|e| HistoryError::io(&dir, e))?.path();
            let is_run_file = |name: &str| is_run_file(name, run_id);
            let Ok(_lock) = compact::DirLock::acquire(&date) else {
                continue; // not a directory of ours (or unwritable): nothing of the run in it
            };
            if compact::has_merged(&date) {
                removed += compact::forget_locked(&date, &is_run_file)?;
            }
            let Ok(files) = std::fs::read_dir(&date) else {
                continue;
            };
            for file in files.flatten() {
                let name = file.file_name();
                let name = name.to_string_lossy();
                if is_run_file(&name) {
                    let path = file.path();
                    std::fs::remove_file(&path).map_err(|e| HistoryError::io(&path, e))?;
                    removed += 1;
                }
            }
        }
    }
    Ok(removed)
}

impl HistoryError {
    fn io(path: &Path, source: std::io::Error) -> HistoryError {
        HistoryError::Io {
            path: path.display().to_string(),
            source,
        }
    }
    fn parquet(path: &Path, e: impl std::fmt::Display) -> HistoryError {
        HistoryError::Parquet {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }
}
