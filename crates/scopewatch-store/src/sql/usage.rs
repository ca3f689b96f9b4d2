//! The least-privilege ledger filled from the history store: grants, refreshes and revocations
//! from `tokens`, served requests (identical ones of a token folded) from `access`. The
//! judgement is the core's (`scopewatch_core::least_privilege`); `scopewatch least-privilege`
//! and the report print it.

use std::path::Path;

use datafusion::arrow::array::{Array, AsArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{Int32Type, Int64Type, TimestampMicrosecondType};

use super::session::{query_blocking, SqlError};
use crate::event::Timestamp;
use crate::least_privilege::{ServedAccess, UsageLedger};
use crate::smart::request::{Classifier, Method};

/// A time window of the store: [since, until), either end open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeWindow {
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl TimeWindow {
    /// `AND time >= … AND time < …` (the timestamps are numbers we print, not user text).
    pub fn sql(&self) -> String {
        let mut out = String::new();
        if let Some(t) = self.since {
            out.push_str(&format!(" AND time >= to_timestamp_micros({})", t.0));
        }
        if let Some(t) = self.until {
            out.push_str(&format!(" AND time < to_timestamp_micros({})", t.0));
        }
        out
    }
}

fn bad(data: &Path, what: &str) -> SqlError {
    SqlError::Query(format!("{}: {what}", data.display()))
}

/// Reads the window's grants and served requests from the store at `data` into a ledger.
pub fn usage_ledger(
    data: &Path,
    window: &TimeWindow,
    fhir_base: Option<&str>,
) -> Result<UsageLedger, SqlError> {
    let classifier = fhir_base.map_or_else(Classifier::new, Classifier::with_base);
    let mut ledger = UsageLedger::new(classifier);
    read_grants(data, window, &mut ledger)?;
    read_accesses(data, window, &mut ledger)?;
    Ok(ledger)
}

fn read_grants(data: &Path, window: &TimeWindow, ledger: &mut UsageLedger) -> Result<(), SqlError> {
    // Revocations count from before the window too: a token revoked earlier and used in the
    // window was not honestly used.
    let until = TimeWindow {
        since: None,
        until: window.until,
    };
    let sql = format!(
        // A grant that logged no scope holds the scope requested (RFC 6749 §5.1), as in detect.
        "SELECT client_id, event, \
         COALESCE(NULLIF(TRIM(scope_granted), ''), NULLIF(TRIM(scope_requested), '')), \
         patient IS NOT NULL, token_id, time FROM tokens \
         WHERE (event IN ('issued', 'refreshed'){}) OR (event = 'revoked'{}) \
         ORDER BY time, client_id",
        window.sql(),
        until.sql()
    );
    for b in query_blocking(data, &sql)? {
        let (Some(client), Some(event), Some(scope), Some(patient), Some(token)) = (
            b.column(0).as_string_opt::<i32>(),
            b.column(1).as_string_opt::<i32>(),
            b.column(2).as_string_opt::<i32>(),
            b.column(3).as_boolean_opt(),
            b.column(4).as_string_opt::<i32>(),
        ) else {
            return Err(bad(data, "the tokens table has unexpected column types"));
        };
        let times = b.column(5).as_primitive_opt::<TimestampMicrosecondType>();
        for row in 0..b.num_rows() {
            match event.value(row) {
                "revoked" => {
                    let time = times
                        .filter(|t| !t.is_null(row))
                        .map(|t| Timestamp(t.value(row)));
                    if let (Some(id), Some(time)) = (opt(token, row), time) {
                        ledger.revoke(id, time);
                    }
                }
                kind => ledger.grant(
                    client.value(row),
                    opt(scope, row),
                    kind == "refreshed",
                    patient.value(row),
                ),
            }
        }
    }
    Ok(())
}

fn read_accesses(
    data: &Path,
    window: &TimeWindow,
    ledger: &mut UsageLedger,
) -> Result<(), SqlError> {
    // Identical requests of one token fold into one row; the first time keeps exports before
    // their status polls and files.
    let sql = format!(
        "SELECT min(time) AS first, client_id, token_id, method, url, status, \
                array_to_string(granted_scopes, ' ') AS granted, token_patient, patient, \
                patient_count, count(*) AS n \
         FROM access WHERE status >= 200 AND status < 300{} \
         GROUP BY client_id, token_id, method, url, status, granted, token_patient, patient, patient_count \
         ORDER BY first, client_id, token_id, url",
        window.sql()
    );
    for b in query_blocking(data, &sql)? {
        for access in rows(&b).map_err(|what| bad(data, &format!("the access table: {what}")))? {
            ledger.access(&access);
        }
    }
    Ok(())
}

fn rows(b: &RecordBatch) -> Result<Vec<ServedAccess<'_>>, String> {
    let text = |i: usize| {
        b.column(i)
            .as_string_opt::<i32>()
            .ok_or_else(|| format!("column {i} is not text"))
    };
    let (client, token, method, url, granted) = (text(1)?, text(2)?, text(3)?, text(4)?, text(6)?);
    let (token_patient, patient) = (text(7)?, text(8)?);
    let time = b
        .column(0)
        .as_primitive_opt::<TimestampMicrosecondType>()
        .ok_or("time is not a timestamp")?;
    let status = b
        .column(5)
        .as_primitive_opt::<Int32Type>()
        .ok_or("status is not an integer")?;
    let patient_count = b
        .column(9)
        .as_primitive_opt::<Int64Type>()
        .ok_or("patient_count is not an integer")?;
    let n = b
        .column(10)
        .as_primitive_opt::<Int64Type>()
        .ok_or("the count is not an integer")?;
    let mut out = Vec::with_capacity(b.num_rows());
    for row in 0..b.num_rows() {
        // The store only holds methods the event contract accepted.
        let Ok(m) = method.value(row).parse::<Method>() else {
            continue;
        };
        out.push(ServedAccess {
            time: Timestamp(time.value(row)),
            client_id: client.value(row),
            token_id: opt(token, row),
            method: m,
            url: url.value(row),
            status: u16::try_from(status.value(row)).unwrap_or(0),
            granted: opt(granted, row).filter(|g| !g.is_empty()),
            token_patient: opt(token_patient, row),
            patient: opt(patient, row),
            patient_count: (!patient_count.is_null(row))
                .then(|| u64::try_from(patient_count.value(row)).unwrap_or(0)),
            count: u64::try_from(n.value(row)).unwrap_or(0),
        });
    }
    Ok(out)
}

fn opt(a: &StringArray, row: usize) -> Option<&str> {
    (!a.is_null(row)).then(|| a.value(row))
}
