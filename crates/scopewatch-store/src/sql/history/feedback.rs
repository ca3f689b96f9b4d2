//! The `feedback` table: analysts' verdicts on alerts (`scopewatch triage`), appended one
//! file per verdict as `<data>/feedback/date=<day of the verdict>/feedback-<id>.parquet`.
//! Later verdicts on the same incident supersede earlier ones (readers take the latest).

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::writer::{batch, date_of, write_parquet_atomic};
use super::HistoryError;
use crate::event::Timestamp;

/// An analyst's verdict on one alert (or incident).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Feedback {
    pub time: Timestamp,
    pub analyst: String,
    /// The alert record or incident id the analyst named.
    pub target_id: String,
    pub incident_id: String,
    pub client_id: String,
    pub rule: String,
    /// `true-positive`, `false-positive` or `benign`.
    pub verdict: String,
    pub note: Option<String>,
}

pub fn feedback_schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("time", ts, false),
        Field::new("analyst", DataType::Utf8, false),
        Field::new("target_id", DataType::Utf8, false),
        Field::new("incident_id", DataType::Utf8, false),
        Field::new("client_id", DataType::Utf8, false),
        Field::new("rule", DataType::Utf8, false),
        Field::new("verdict", DataType::Utf8, false),
        Field::new("note", DataType::Utf8, true),
    ]))
}

/// Appends one verdict to the store; returns the file written.
pub fn write_feedback(data: &Path, f: &Feedback) -> Result<std::path::PathBuf, HistoryError> {
    let text = |v: &str| -> ArrayRef { Arc::new(StringArray::from(vec![v])) };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMicrosecondArray::from(vec![f.time.0]).with_timezone("UTC")),
        text(&f.analyst),
        text(&f.target_id),
        text(&f.incident_id),
        text(&f.client_id),
        text(&f.rule),
        text(&f.verdict),
        Arc::new(StringArray::from(vec![f.note.as_deref()])),
    ];
    let b = batch(feedback_schema(), columns)?;
    let micros = f.time.0.to_string();
    let id = crate::alert::stable_id(&[&micros, &f.target_id, &f.analyst, &f.verdict]);
    let dir = data
        .join("feedback")
        .join(format!("date={}", date_of(f.time)));
    write_parquet_atomic(&dir, &format!("feedback-{}.parquet", &id[..16]), &b, false)
}
