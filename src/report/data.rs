//! What the report reads from the history store: incidents (alert records grouped by incident),
//! and for each the aggregates its plot needs. Only counts, resource types and scopes are read:
//! no patient id ever leaves the store.

use std::collections::BTreeMap;
use std::path::Path;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Float64Type, Int64Type, TimestampMicrosecondType};
use datafusion::prelude::SessionContext;

use super::ReportError;
use crate::event::{Timestamp, MICROS_PER_SECOND};
use crate::sql::session::SqlError;

type Result<T> = std::result::Result<T, ReportError>;

pub const HOUR: i64 = 3600 * MICROS_PER_SECOND;
pub const DAY: i64 = 24 * HOUR;

/// One incident: its alert records folded (latest summary, highest severity, whole window).
#[derive(Clone, Debug)]
pub struct Incident {
    pub id: String,
    pub client_id: String,
    pub category: String,
    pub rule: String,
    pub severity: String,
    pub score: i64,
    pub start: Timestamp,
    pub end: Timestamp,
    pub summary: String,
    pub records: usize,
    pub observed: String,
    pub baseline: String,
    pub cause: String,
}

pub fn severity_rank(s: &str) -> u8 {
    match s {
        "critical" => 4,
        "high" => 3,
        "medium" => 2,
        "low" => 1,
        _ => 0,
    }
}

/// The store, opened once for all the report's queries.
pub struct Store {
    runtime: tokio::runtime::Runtime,
    ctx: SessionContext,
}

impl Store {
    pub fn open(data: &Path) -> Result<Store> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ReportError::Store(format!("starting the query runtime: {e}")))?;
        let ctx = runtime.block_on(crate::sql::session::open(data))?;
        Ok(Store { runtime, ctx })
    }

    /// Whether the store has `table` (baseline tables exist only once a run has written them).
    pub fn has(&self, table: &str) -> bool {
        self.ctx.table_exist(table).unwrap_or(false)
    }

    pub fn query(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        let batches = self.runtime.block_on(async {
            let df = crate::sql::session::plan(&self.ctx, sql).await?;
            df.collect().await.map_err(SqlError::from)
        })?;
        Ok(batches)
    }
}

/// A SQL string literal.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn micros(t: Timestamp) -> String {
    format!("to_timestamp_micros({})", t.0)
}

/// `time` in [from, to), also as a `date` partition range so only those days' files are read.
fn between(from: Timestamp, to: Timestamp) -> String {
    let day = |t: Timestamp| super::html::format_utc(t, "%Y-%m-%d");
    format!(
        "time >= {} AND time < {} AND date >= '{}' AND date <= '{}'",
        micros(from),
        micros(to),
        day(from),
        day(Timestamp(to.0 - 1))
    )
}

fn text(b: &RecordBatch, i: usize) -> Result<&datafusion::arrow::array::StringArray> {
    b.column(i)
        .as_string_opt::<i32>()
        .ok_or_else(|| ReportError::Store(format!("column {i} is not text")))
}

fn times(
    b: &RecordBatch,
    i: usize,
) -> Result<&datafusion::arrow::array::PrimitiveArray<TimestampMicrosecondType>> {
    b.column(i)
        .as_primitive_opt::<TimestampMicrosecondType>()
        .ok_or_else(|| ReportError::Store(format!("column {i} is not a timestamp")))
}

fn ints(b: &RecordBatch, i: usize) -> Result<&datafusion::arrow::array::PrimitiveArray<Int64Type>> {
    b.column(i)
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| ReportError::Store(format!("column {i} is not an integer")))
}

/// The incidents whose records fall in the window, suppressed records left out.
pub fn incidents(store: &Store, window: &str) -> Result<Vec<Incident>> {
    let sql = format!(
        "SELECT incident_id, client_id, category, rule, severity, score, window_start, window_end, \
                summary, observed, baseline, coalesce(cause, '') \
         FROM alerts WHERE suppressed_by IS NULL{window} ORDER BY time, id"
    );
    let mut by_id: BTreeMap<String, Incident> = BTreeMap::new();
    for b in store.query(&sql)? {
        let (id, client, category, rule, severity) = (
            text(&b, 0)?,
            text(&b, 1)?,
            text(&b, 2)?,
            text(&b, 3)?,
            text(&b, 4)?,
        );
        let (score, start, end) = (ints(&b, 5)?, times(&b, 6)?, times(&b, 7)?);
        let (summary, observed, baseline, cause) =
            (text(&b, 8)?, text(&b, 9)?, text(&b, 10)?, text(&b, 11)?);
        for row in 0..b.num_rows() {
            let incident = by_id
                .entry(id.value(row).to_string())
                .or_insert_with(|| Incident {
                    id: id.value(row).to_string(),
                    client_id: client.value(row).to_string(),
                    category: category.value(row).to_string(),
                    rule: rule.value(row).to_string(),
                    severity: severity.value(row).to_string(),
                    score: score.value(row),
                    start: Timestamp(start.value(row)),
                    end: Timestamp(end.value(row)),
                    summary: String::new(),
                    records: 0,
                    observed: String::new(),
                    baseline: String::new(),
                    cause: cause.value(row).to_string(),
                });
            incident.records += 1;
            if severity_rank(severity.value(row)) > severity_rank(&incident.severity) {
                incident.severity = severity.value(row).to_string();
            }
            incident.score = incident.score.max(score.value(row));
            incident.start = Timestamp(incident.start.0.min(start.value(row)));
            incident.end = Timestamp(incident.end.0.max(end.value(row)));
            // The latest record says it best (records come in time order).
            incident.summary = summary.value(row).to_string();
            incident.observed = observed.value(row).to_string();
            incident.baseline = baseline.value(row).to_string();
        }
    }
    let mut out: Vec<Incident> = by_id.into_values().collect();
    out.sort_by(|a, b| {
        severity_rank(&b.severity)
            .cmp(&severity_rank(&a.severity))
            .then(a.start.cmp(&b.start))
            .then(a.id.cmp(&b.id))
    });
    Ok(out)
}

/// Requests per hour of `client` in [from, to), zero-filled.
pub fn hourly_requests(
    store: &Store,
    client: &str,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<f64>> {
    counts_per_bucket(store, client, from, to, HOUR)
}

/// Requests per day of `client` in [from, to) (UTC days), zero-filled.
pub fn daily_requests(
    store: &Store,
    client: &str,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<f64>> {
    counts_per_bucket(store, client, from, to, DAY)
}

fn counts_per_bucket(
    store: &Store,
    client: &str,
    from: Timestamp,
    to: Timestamp,
    bucket: i64,
) -> Result<Vec<f64>> {
    let buckets = usize::try_from(((to.0 - from.0) / bucket).max(0)).unwrap_or(0);
    let sql = format!(
        "SELECT (CAST(time AS BIGINT) - {f}) / {bucket} AS k, count(*) \
         FROM access WHERE client_id = {c} AND {w} GROUP BY 1",
        f = from.0,
        c = literal(client),
        w = between(from, to),
    );
    let mut out = vec![0.0; buckets];
    for b in store.query(&sql)? {
        let (k, n) = (ints(&b, 0)?, ints(&b, 1)?);
        for row in 0..b.num_rows() {
            if let Some(slot) = usize::try_from(k.value(row))
                .ok()
                .and_then(|i| out.get_mut(i))
            {
                *slot = n.value(row) as f64;
            }
        }
    }
    Ok(out)
}

/// The app's seasonal slots (`baseline_hourly` or `baseline_daily`): slot → (mean, σ).
pub fn slots(store: &Store, table: &str, client: &str) -> Result<BTreeMap<i64, (f64, f64)>> {
    let mut out = BTreeMap::new();
    if !store.has(table) {
        return Ok(out);
    }
    let sql = format!(
        "SELECT slot, mean, var FROM {table} WHERE client_id = {}",
        literal(client)
    );
    for b in store.query(&sql)? {
        let slot = ints(&b, 0)?;
        let (Some(mean), Some(var)) = (
            b.column(1).as_primitive_opt::<Float64Type>(),
            b.column(2).as_primitive_opt::<Float64Type>(),
        ) else {
            return Err(ReportError::Store(format!(
                "{table}: mean and var are not numbers"
            )));
        };
        for row in 0..b.num_rows() {
            out.insert(
                slot.value(row),
                (mean.value(row), var.value(row).max(0.0).sqrt()),
            );
        }
    }
    Ok(out)
}

/// (requests, resources returned) per token of `client` in [from, to); token ids are not kept.
pub fn volume_per_token(
    store: &Store,
    client: &str,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<(f64, f64)>> {
    let sql = format!(
        "SELECT count(*), coalesce(sum(resources_returned), 0) FROM access WHERE client_id = {} \
         AND token_id IS NOT NULL AND {} GROUP BY token_id",
        literal(client),
        between(from, to)
    );
    let mut out = Vec::new();
    for b in store.query(&sql)? {
        let (n, resources) = (ints(&b, 0)?, ints(&b, 1)?);
        out.extend((0..b.num_rows()).map(|row| (n.value(row) as f64, resources.value(row) as f64)));
    }
    Ok(out)
}

/// Requests per resource type of `client` in [from, to).
pub fn resource_mix(
    store: &Store,
    client: &str,
    from: Timestamp,
    to: Timestamp,
) -> Result<BTreeMap<String, f64>> {
    let sql = format!(
        "SELECT coalesce(resource_type, '(none)'), count(*) FROM access WHERE client_id = {} \
         AND {} GROUP BY 1",
        literal(client),
        between(from, to)
    );
    let mut out = BTreeMap::new();
    for b in store.query(&sql)? {
        let (t, n) = (text(&b, 0)?, ints(&b, 1)?);
        for row in 0..b.num_rows() {
            out.insert(t.value(row).to_string(), n.value(row) as f64);
        }
    }
    Ok(out)
}

/// Grants per (scope, day index) of `client` in [from, to).
pub fn scope_grants(
    store: &Store,
    client: &str,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<(String, usize, u64)>> {
    let sql = format!(
        "SELECT scope, (CAST(time AS BIGINT) - {f}) / {DAY} AS d, count(*) \
         FROM (SELECT time, unnest(granted_scopes) AS scope FROM tokens \
               WHERE client_id = {c} AND event IN ('issued', 'refreshed') AND {w}) \
         WHERE scope IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2",
        f = from.0,
        c = literal(client),
        w = between(from, to)
    );
    let mut out = Vec::new();
    for b in store.query(&sql)? {
        let (scope, day, n) = (text(&b, 0)?, ints(&b, 1)?, ints(&b, 2)?);
        for row in 0..b.num_rows() {
            if let Ok(d) = usize::try_from(day.value(row)) {
                out.push((
                    scope.value(row).to_string(),
                    d,
                    u64::try_from(n.value(row)).unwrap_or(0),
                ));
            }
        }
    }
    Ok(out)
}

/// Per app: first and last seen and active days (`baseline_apps`), and requests per hour of
/// week (`baseline_activity`).
pub struct AppBaseline {
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub active_days: i64,
    pub hour_of_week: Vec<f64>,
}

pub fn app_baselines(store: &Store) -> Result<BTreeMap<String, AppBaseline>> {
    let mut out = BTreeMap::new();
    for b in
        store.query("SELECT client_id, first_seen, last_seen, active_days FROM baseline_apps")?
    {
        let (id, first, last, days) = (text(&b, 0)?, times(&b, 1)?, times(&b, 2)?, ints(&b, 3)?);
        for row in 0..b.num_rows() {
            out.insert(
                id.value(row).to_string(),
                AppBaseline {
                    first_seen: Timestamp(first.value(row)),
                    last_seen: Timestamp(last.value(row)),
                    active_days: days.value(row),
                    hour_of_week: vec![0.0; 168],
                },
            );
        }
    }
    if !store.has("baseline_activity") {
        return Ok(out);
    }
    for b in store.query("SELECT client_id, hour_of_week, requests FROM baseline_activity")? {
        let (id, hour, n) = (text(&b, 0)?, ints(&b, 1)?, ints(&b, 2)?);
        for row in 0..b.num_rows() {
            let slot = out.get_mut(id.value(row)).and_then(|a| {
                usize::try_from(hour.value(row))
                    .ok()
                    .and_then(|h| a.hour_of_week.get_mut(h))
            });
            if let Some(slot) = slot {
                *slot = n.value(row) as f64;
            }
        }
    }
    Ok(out)
}
