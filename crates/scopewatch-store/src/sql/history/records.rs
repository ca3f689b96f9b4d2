//! Alerts, dead-letter records and baselines in the history store.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Int64Array, Int64Builder, StringArray, StringBuilder,
    TimestampMicrosecondArray,
};

use super::schema::{alerts_schema, dead_letter_schema};
use super::writer::{batch, date_of, text, write_parquet_atomic};
use super::HistoryError;
use crate::alert::Alert;
use crate::baseline::{write_snapshot, Baselines};
use crate::event::Timestamp;
use crate::ingest::DeadLetter;

/// Dead-letter rows per file.
const DEAD_LETTER_CHUNK: usize = 65_536;

/// Writes alerts as `<data>/alerts/date=<alert date>/alerts-<run>.parquet`.
pub fn write_alerts(data: &Path, run_id: &str, alerts: &[Alert]) -> Result<u64, HistoryError> {
    let mut by_date: BTreeMap<String, Vec<&Alert>> = BTreeMap::new();
    for a in alerts {
        by_date.entry(date_of(a.time)).or_default().push(a);
    }
    let mut files = 0;
    for (date, alerts) in by_date {
        let micros = |value: fn(&Alert) -> i64| -> ArrayRef {
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(alerts.iter().map(|a| value(a)))
                    .with_timezone("UTC"),
            )
        };
        let int = |value: fn(&Alert) -> i64| -> ArrayRef {
            Arc::new(Int64Array::from_iter_values(
                alerts.iter().map(|a| value(a)),
            ))
        };
        let json = |value: fn(&Alert) -> String| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(
                alerts.iter().map(|a| value(a)),
            ))
        };
        let columns: Vec<ArrayRef> = vec![
            text(&alerts, |a| Some(a.id.as_str())),
            text(&alerts, |a| Some(a.incident_id.as_str())),
            text(&alerts, |a| Some(activity(a))),
            int(|a| i64::from(a.revision)),
            micros(|a| a.time.0),
            text(&alerts, |a| Some(a.client_id.as_str())),
            text(&alerts, |a| Some(a.category.as_str())),
            text(&alerts, |a| Some(a.rule)),
            text(&alerts, |a| Some(a.severity.as_str())),
            int(|a| i64::from(a.score)),
            text(&alerts, |a| Some(a.summary.as_str())),
            micros(|a| a.window.start.0),
            micros(|a| a.window.end.0),
            json(|a| to_json(&a.observed)),
            json(|a| to_json(&a.baseline)),
            json(|a| to_json(&a.evidence)),
            text(&alerts, |a| Some(a.cause.as_str())),
            text(&alerts, |a| a.suppressed_by.as_deref()),
        ];
        let b = batch(alerts_schema(), columns)?;
        let dir = data.join("alerts").join(format!("date={date}"));
        write_parquet_atomic(&dir, &format!("alerts-{run_id}.parquet"), &b, false)?;
        files += 1;
    }
    Ok(files)
}

fn activity(a: &Alert) -> &'static str {
    match a.activity {
        crate::alert::Activity::Create => "create",
        crate::alert::Activity::Update => "update",
    }
}

/// JSON text of a part of the alert, as the NDJSON alert record has it.
fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Converts the run's dead-letter NDJSON (as written by the dead-letter writer) into
/// `<data>/dead_letter/date=<run date>/dead-letter-<run>-<n>.parquet`, in bounded chunks.
/// Without `keep_raw` (a pseudonymised store) the raw lines, which may hold patient ids, are
/// left out; they stay in the dead-letter file itself.
pub fn write_dead_letters(
    data: &Path,
    run_id: &str,
    run_date: Timestamp,
    ndjson: &Path,
    keep_raw: bool,
) -> Result<u64, HistoryError> {
    let file = match std::fs::File::open(ndjson) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(HistoryError::io(ndjson, e)),
    };
    let dir = data
        .join("dead_letter")
        .join(format!("date={}", date_of(run_date)));
    let mut rows: Vec<DeadLetter> = Vec::new();
    let mut written = 0u64;
    let mut chunk = 0;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| HistoryError::io(ndjson, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let mut record: DeadLetter =
            serde_json::from_str(&line).map_err(|e| HistoryError::Record {
                path: ndjson.display().to_string(),
                line: i as u64 + 1,
                message: e.to_string(),
            })?;
        if !keep_raw {
            record.raw.clear();
        }
        rows.push(record);
        if rows.len() == DEAD_LETTER_CHUNK {
            chunk += 1;
            written += flush_dead_letters(&dir, run_id, chunk, &std::mem::take(&mut rows))?;
        }
    }
    if !rows.is_empty() {
        chunk += 1;
        written += flush_dead_letters(&dir, run_id, chunk, &rows)?;
    }
    Ok(written)
}

fn flush_dead_letters(
    dir: &Path,
    run_id: &str,
    chunk: u32,
    rows: &[DeadLetter],
) -> Result<u64, HistoryError> {
    let mut source = StringBuilder::new();
    let mut line = Int64Builder::new();
    let mut offset = Int64Builder::new();
    let mut kind = StringBuilder::new();
    let mut reason = StringBuilder::new();
    let mut raw = StringBuilder::new();
    let mut truncated = BooleanBuilder::new();
    let mut raw_bytes = Int64Builder::new();
    let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    for r in rows {
        source.append_value(&r.source);
        line.append_option(r.line.map(as_i64));
        offset.append_option(r.offset.map(as_i64));
        kind.append_value(
            serde_json::to_value(r.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        );
        reason.append_value(&r.reason);
        raw.append_value(&r.raw);
        truncated.append_value(r.raw_truncated);
        raw_bytes.append_value(as_i64(r.raw_bytes));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(source.finish()),
        Arc::new(line.finish()),
        Arc::new(offset.finish()),
        Arc::new(kind.finish()),
        Arc::new(reason.finish()),
        Arc::new(raw.finish()),
        Arc::new(truncated.finish()),
        Arc::new(raw_bytes.finish()),
    ];
    let b = batch(dead_letter_schema(), columns)?;
    write_parquet_atomic(
        dir,
        &format!("dead-letter-{run_id}-{chunk:03}.parquet"),
        &b,
        false,
    )?;
    Ok(rows.len() as u64)
}

/// The baseline tables, as `<data>/baseline/<table>.parquet` (replaced atomically).
pub fn write_baselines(data: &Path, baselines: &Baselines) -> Result<(), HistoryError> {
    write_snapshot(data, baselines).map_err(|e| HistoryError::Parquet {
        path: data.join("baseline").display().to_string(),
        message: e.to_string(),
    })
}
