//! The baselines as Arrow tables (one per profile kind), and back. These record batches are
//! what snapshots write to Parquet and what the SQL surface registers as `baseline_*` tables.
//!
//! Schemas (every table starts with `client_id`):
//! Every integer column is a signed 64-bit integer (Parquet INT64), which Spark, Trino and
//! DuckDB all read; snapshots written with the unsigned types of earlier versions still load.
//!
//! - `baseline_apps`: first_seen, last_seen (timestamp µs UTC), active_days
//! - `baseline_scopes` (scope), `baseline_grant_types` (grant_type), `baseline_contexts`
//!   (context), `baseline_purposes` (purpose_of_use), `baseline_operations` (operation),
//!   `baseline_population` (kind), `baseline_resources` (resource_type, interaction): the key
//!   columns, then first_seen, last_seen, count, days, established (bool)
//! - `baseline_activity`: hour_of_week (0 = Monday 00:00), requests
//! - `baseline_token_volume`: metric (requests | patients | pages | retrieved per finished
//!   token; export_retrieved_weekday | export_retrieved_weekend per finished export), bucket
//!   (0 holds 0, k holds [2^(k-1), 2^k)), tokens
//! - `baseline_hourly`: slot (0–23 weekday hours, 24–47 weekend hours), mean, var (f64,
//!   exponentially weighted), n — requests per hour
//! - `baseline_daily`: the same columns for requests per day (slot 0 weekdays, 1 weekends)
//! - `baseline_apps` also carries `drip_cusum`, `drip_level` and `drip_var` (f64), the
//!   slow-drip change detector's state (its CUSUM, the app's usual ratio of a day to its
//!   expectation, and the spread of that ratio)

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, AsArray, BooleanBuilder, Float64Builder, Int64Array, Int64Builder, RecordBatch,
    StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{
    DataType, Field, Float64Type, Int64Type, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
};
use datafusion::arrow::error::ArrowError;

use super::{AppProfile, Baselines, LogHistogram, Seen, SeenMap, SlotStats};

type HistogramAccessor = fn(&AppProfile) -> &LogHistogram;
type HistogramAccessorMut = fn(&mut AppProfile) -> &mut LogHistogram;
const TOKEN_HISTOGRAMS: [(&str, HistogramAccessor, HistogramAccessorMut); 6] = [
    ("requests", |p| &p.token_requests, |p| &mut p.token_requests),
    ("patients", |p| &p.token_patients, |p| &mut p.token_patients),
    ("pages", |p| &p.token_pages, |p| &mut p.token_pages),
    (
        "retrieved",
        |p| &p.token_retrieved,
        |p| &mut p.token_retrieved,
    ),
    // Per finished export, not per token; kept in the same table (metric names them).
    (
        "export_retrieved_weekday",
        |p| &p.export_retrieved_weekday,
        |p| &mut p.export_retrieved_weekday,
    ),
    (
        "export_retrieved_weekend",
        |p| &p.export_retrieved_weekend,
        |p| &mut p.export_retrieved_weekend,
    ),
];
use crate::event::{Text, Timestamp};

/// Single-key profile tables: (table, key column, accessor).
type Accessor = fn(&AppProfile) -> &SeenMap<String>;
type AccessorMut = fn(&mut AppProfile) -> &mut SeenMap<String>;
const SEEN_TABLES: [(&str, &str, Accessor, AccessorMut); 6] = [
    ("baseline_scopes", "scope", |p| &p.scopes, |p| &mut p.scopes),
    (
        "baseline_grant_types",
        "grant_type",
        |p| &p.grant_types,
        |p| &mut p.grant_types,
    ),
    (
        "baseline_contexts",
        "context",
        |p| &p.contexts,
        |p| &mut p.contexts,
    ),
    (
        "baseline_purposes",
        "purpose_of_use",
        |p| &p.purposes,
        |p| &mut p.purposes,
    ),
    (
        "baseline_operations",
        "operation",
        |p| &p.operations,
        |p| &mut p.operations,
    ),
    (
        "baseline_population",
        "kind",
        |p| &p.population,
        |p| &mut p.population,
    ),
];

/// Names of every baseline table, in snapshot order.
pub fn table_names() -> Vec<&'static str> {
    let mut names = vec![
        "baseline_apps",
        "baseline_resources",
        "baseline_activity",
        "baseline_token_volume",
        "baseline_hourly",
        "baseline_daily",
    ];
    names.extend(SEEN_TABLES.iter().map(|t| t.0));
    names
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn seen_fields() -> Vec<Field> {
    vec![
        Field::new("first_seen", ts_type(), false),
        Field::new("last_seen", ts_type(), false),
        Field::new("count", DataType::Int64, false),
        Field::new("days", DataType::Int64, false),
        Field::new("established", DataType::Boolean, false),
    ]
}

fn schema(keys: &[&str], rest: Vec<Field>) -> SchemaRef {
    let mut fields = vec![Field::new("client_id", DataType::Utf8, false)];
    fields.extend(keys.iter().map(|k| Field::new(*k, DataType::Utf8, false)));
    fields.extend(rest);
    Arc::new(Schema::new(fields))
}

#[derive(Default)]
struct SeenColumns {
    first: TimestampMicrosecondBuilder,
    last: TimestampMicrosecondBuilder,
    count: Int64Builder,
    days: Int64Builder,
    established: BooleanBuilder,
}

impl SeenColumns {
    fn append(&mut self, s: &Seen) {
        self.first.append_value(s.first_seen.0);
        self.last.append_value(s.last_seen.0);
        self.count.append_value(signed(s.count));
        self.days.append_value(i64::from(s.days));
        self.established.append_value(s.established);
    }
    fn finish(mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.first.finish().with_timezone("UTC")),
            Arc::new(self.last.finish().with_timezone("UTC")),
            Arc::new(self.count.finish()),
            Arc::new(self.days.finish()),
            Arc::new(self.established.finish()),
        ]
    }
}

/// The baselines as named Arrow record batches and back (a trait because `Baselines` lives in
/// the core crate, which has no Arrow).
pub trait BaselineTables: Sized {
    /// One record batch per table, named.
    fn to_batches(&self) -> Result<Vec<(&'static str, RecordBatch)>, ArrowError>;
    /// Rebuilds baselines from named tables (e.g. read back from a snapshot).
    fn from_batches(tables: &BTreeMap<String, Vec<RecordBatch>>) -> Result<Self, ArrowError>;
}

impl BaselineTables for Baselines {
    fn to_batches(&self) -> Result<Vec<(&'static str, RecordBatch)>, ArrowError> {
        let mut out = Vec::new();

        let mut id = StringBuilder::new();
        let (mut first, mut last, mut days, mut drip, mut level, mut spread) = (
            TimestampMicrosecondBuilder::new(),
            TimestampMicrosecondBuilder::new(),
            Int64Builder::new(),
            Float64Builder::new(),
            Float64Builder::new(),
            Float64Builder::new(),
        );
        for p in self.apps.values() {
            id.append_value(&p.client_id);
            first.append_value(p.first_seen.0);
            last.append_value(p.last_seen.0);
            days.append_value(i64::from(p.active_days));
            drip.append_value(p.drip_cusum);
            level.append_value(p.drip_level);
            spread.append_value(p.drip_var);
        }
        out.push((
            "baseline_apps",
            RecordBatch::try_new(
                schema(
                    &[],
                    vec![
                        Field::new("first_seen", ts_type(), false),
                        Field::new("last_seen", ts_type(), false),
                        Field::new("active_days", DataType::Int64, false),
                        Field::new("drip_cusum", DataType::Float64, false),
                        Field::new("drip_level", DataType::Float64, false),
                        Field::new("drip_var", DataType::Float64, false),
                    ],
                ),
                vec![
                    Arc::new(id.finish()),
                    Arc::new(first.finish().with_timezone("UTC")),
                    Arc::new(last.finish().with_timezone("UTC")),
                    Arc::new(days.finish()),
                    Arc::new(drip.finish()),
                    Arc::new(level.finish()),
                    Arc::new(spread.finish()),
                ],
            )?,
        ));

        let (mut id, mut ty, mut interaction, mut seen) = (
            StringBuilder::new(),
            StringBuilder::new(),
            StringBuilder::new(),
            SeenColumns::default(),
        );
        for p in self.apps.values() {
            for ((t, i), s) in &p.resources.entries {
                id.append_value(&p.client_id);
                ty.append_value(t);
                interaction.append_value(i);
                seen.append(s);
            }
        }
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(id.finish()),
            Arc::new(ty.finish()),
            Arc::new(interaction.finish()),
        ];
        columns.extend(seen.finish());
        out.push((
            "baseline_resources",
            RecordBatch::try_new(
                schema(&["resource_type", "interaction"], seen_fields()),
                columns,
            )?,
        ));

        let (mut id, mut hour, mut requests) = (
            StringBuilder::new(),
            Int64Builder::new(),
            Int64Builder::new(),
        );
        for p in self.apps.values() {
            for (h, n) in p.hour_of_week.iter().enumerate().filter(|(_, n)| **n > 0) {
                id.append_value(&p.client_id);
                hour.append_value(signed_index(h));
                requests.append_value(signed(*n));
            }
        }
        out.push((
            "baseline_activity",
            RecordBatch::try_new(
                schema(
                    &[],
                    vec![
                        Field::new("hour_of_week", DataType::Int64, false),
                        Field::new("requests", DataType::Int64, false),
                    ],
                ),
                vec![
                    Arc::new(id.finish()),
                    Arc::new(hour.finish()),
                    Arc::new(requests.finish()),
                ],
            )?,
        ));

        let (mut id, mut metric, mut bucket, mut tokens) = (
            StringBuilder::new(),
            StringBuilder::new(),
            Int64Builder::new(),
            Int64Builder::new(),
        );
        for p in self.apps.values() {
            for (name, get, _) in TOKEN_HISTOGRAMS {
                for (k, n) in get(p).buckets.iter().enumerate().filter(|(_, n)| **n > 0) {
                    id.append_value(&p.client_id);
                    metric.append_value(name);
                    bucket.append_value(signed_index(k));
                    tokens.append_value(signed(*n));
                }
            }
        }
        out.push((
            "baseline_token_volume",
            RecordBatch::try_new(
                schema(
                    &["metric"],
                    vec![
                        Field::new("bucket", DataType::Int64, false),
                        Field::new("tokens", DataType::Int64, false),
                    ],
                ),
                vec![
                    Arc::new(id.finish()),
                    Arc::new(metric.finish()),
                    Arc::new(bucket.finish()),
                    Arc::new(tokens.finish()),
                ],
            )?,
        ));

        out.push(("baseline_hourly", slot_table(self, |p| &p.hourly_requests)?));
        out.push(("baseline_daily", slot_table(self, |p| &p.daily_requests)?));

        for (table, key, get, _) in SEEN_TABLES {
            let (mut id, mut k, mut seen) = (
                StringBuilder::new(),
                StringBuilder::new(),
                SeenColumns::default(),
            );
            for p in self.apps.values() {
                for (value, s) in &get(p).entries {
                    id.append_value(&p.client_id);
                    k.append_value(value);
                    seen.append(s);
                }
            }
            let mut columns: Vec<ArrayRef> = vec![Arc::new(id.finish()), Arc::new(k.finish())];
            columns.extend(seen.finish());
            out.push((
                table,
                RecordBatch::try_new(schema(&[key], seen_fields()), columns)?,
            ));
        }
        Ok(out)
    }

    fn from_batches(tables: &BTreeMap<String, Vec<RecordBatch>>) -> Result<Self, ArrowError> {
        let mut b = Baselines::default();
        for batch in tables.get("baseline_apps").into_iter().flatten() {
            let ids = string_column(batch, "client_id")?;
            let first = ts_column(batch, "first_seen")?;
            let last = ts_column(batch, "last_seen")?;
            let days = int_column(batch, "active_days")?;
            let drip = batch_column(batch, "drip_cusum")?
                .as_primitive_opt::<Float64Type>()
                .ok_or_else(|| bad("drip_cusum"))?;
            // Absent in snapshots written before they existed: the new-app defaults.
            let level = optional_f64_column(batch, "drip_level")?;
            let spread = optional_f64_column(batch, "drip_var")?;
            for row in 0..batch.num_rows() {
                let mut p =
                    AppProfile::new(Text::from(ids.value(row)), Timestamp(first.value(row)));
                p.last_seen = Timestamp(last.value(row));
                p.active_days = unsigned(days.value(row), "active_days")?;
                p.drip_cusum = drip.value(row);
                p.drip_level = level.map_or(1.0, |l| l.value(row));
                p.drip_var = spread.map_or(super::profile::INITIAL_DRIP_VAR, |v| v.value(row));
                b.apps.insert(p.client_id.clone(), p);
            }
        }
        for batch in tables.get("baseline_resources").into_iter().flatten() {
            let ids = string_column(batch, "client_id")?;
            let ty = string_column(batch, "resource_type")?;
            let interaction = string_column(batch, "interaction")?;
            let seen_columns = SeenReader::new(batch)?;
            for row in 0..batch.num_rows() {
                let seen = seen_columns.row(row)?;
                let p = app(&mut b, ids.value(row))?;
                p.resources.entries.insert(
                    (
                        ty.value(row).to_string(),
                        interaction.value(row).to_string(),
                    ),
                    seen,
                );
            }
        }
        for batch in tables.get("baseline_activity").into_iter().flatten() {
            let ids = string_column(batch, "client_id")?;
            let hour = int_column(batch, "hour_of_week")?;
            let requests = int_column(batch, "requests")?;
            for row in 0..batch.num_rows() {
                let p = app(&mut b, ids.value(row))?;
                let slot = p
                    .hour_of_week
                    .get_mut(unsigned::<usize>(hour.value(row), "hour_of_week")?)
                    .ok_or_else(|| bad("hour_of_week"))?;
                *slot = unsigned(requests.value(row), "requests")?;
            }
        }
        for batch in tables.get("baseline_token_volume").into_iter().flatten() {
            let ids = string_column(batch, "client_id")?;
            let metric = string_column(batch, "metric")?;
            let bucket = int_column(batch, "bucket")?;
            let tokens = int_column(batch, "tokens")?;
            for row in 0..batch.num_rows() {
                let p = app(&mut b, ids.value(row))?;
                let (_, _, get_mut) = TOKEN_HISTOGRAMS
                    .into_iter()
                    .find(|(name, _, _)| *name == metric.value(row))
                    .ok_or_else(|| bad("metric"))?;
                let slot = get_mut(p)
                    .buckets
                    .get_mut(unsigned::<usize>(bucket.value(row), "bucket")?)
                    .ok_or_else(|| bad("bucket"))?;
                *slot = unsigned(tokens.value(row), "tokens")?;
            }
        }
        for batch in tables.get("baseline_hourly").into_iter().flatten() {
            read_slot_table(&mut b, batch, |p| &mut p.hourly_requests)?;
        }
        for batch in tables.get("baseline_daily").into_iter().flatten() {
            read_slot_table(&mut b, batch, |p| &mut p.daily_requests)?;
        }
        for (table, key, _, get_mut) in SEEN_TABLES {
            for batch in tables.get(table).into_iter().flatten() {
                let ids = string_column(batch, "client_id")?;
                let keys = string_column(batch, key)?;
                let seen_columns = SeenReader::new(batch)?;
                for row in 0..batch.num_rows() {
                    let seen = seen_columns.row(row)?;
                    let p = app(&mut b, ids.value(row))?;
                    get_mut(p).entries.insert(keys.value(row).to_string(), seen);
                }
            }
        }
        Ok(b)
    }
}

/// A table of seasonal slot statistics: client_id, slot, mean, var, n (slots with data only).
fn slot_table(
    b: &Baselines,
    get: fn(&AppProfile) -> &Vec<SlotStats>,
) -> Result<RecordBatch, ArrowError> {
    let (mut id, mut slot, mut mean, mut var, mut n) = (
        StringBuilder::new(),
        Int64Builder::new(),
        Float64Builder::new(),
        Float64Builder::new(),
        Int64Builder::new(),
    );
    for p in b.apps.values() {
        for (k, s) in get(p).iter().enumerate().filter(|(_, s)| s.n > 0) {
            id.append_value(&p.client_id);
            slot.append_value(signed_index(k));
            mean.append_value(s.mean);
            var.append_value(s.var);
            n.append_value(i64::from(s.n));
        }
    }
    RecordBatch::try_new(
        schema(
            &[],
            vec![
                Field::new("slot", DataType::Int64, false),
                Field::new("mean", DataType::Float64, false),
                Field::new("var", DataType::Float64, false),
                Field::new("n", DataType::Int64, false),
            ],
        ),
        vec![
            Arc::new(id.finish()),
            Arc::new(slot.finish()),
            Arc::new(mean.finish()),
            Arc::new(var.finish()),
            Arc::new(n.finish()),
        ],
    )
}

fn read_slot_table(
    b: &mut Baselines,
    batch: &RecordBatch,
    get_mut: fn(&mut AppProfile) -> &mut Vec<SlotStats>,
) -> Result<(), ArrowError> {
    let ids = string_column(batch, "client_id")?;
    let slot = int_column(batch, "slot")?;
    let mean = batch_column(batch, "mean")?
        .as_primitive_opt::<Float64Type>()
        .ok_or_else(|| bad("mean"))?;
    let var = batch_column(batch, "var")?
        .as_primitive_opt::<Float64Type>()
        .ok_or_else(|| bad("var"))?;
    let n = int_column(batch, "n")?;
    for row in 0..batch.num_rows() {
        let p = app(b, ids.value(row))?;
        let s = get_mut(p)
            .get_mut(unsigned::<usize>(slot.value(row), "slot")?)
            .ok_or_else(|| bad("slot"))?;
        s.mean = mean.value(row);
        s.var = var.value(row);
        s.n = unsigned(n.value(row), "n")?;
    }
    Ok(())
}

/// A Float64 column that older snapshots may lack (None), wrongly typed is an error.
fn optional_f64_column<'a>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<Option<&'a datafusion::arrow::array::PrimitiveArray<Float64Type>>, ArrowError> {
    batch
        .column_by_name(name)
        .map(|c| c.as_primitive_opt::<Float64Type>().ok_or_else(|| bad(name)))
        .transpose()
}

fn bad(column: &str) -> ArrowError {
    ArrowError::SchemaError(format!(
        "baseline column {column} is missing or has the wrong type"
    ))
}

fn batch_column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, ArrowError> {
    batch.column_by_name(name).ok_or_else(|| bad(name))
}

fn string_column<'a>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a datafusion::arrow::array::StringArray, ArrowError> {
    batch_column(batch, name)?
        .as_string_opt::<i32>()
        .ok_or_else(|| bad(name))
}

fn ts_column<'a>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a datafusion::arrow::array::TimestampMicrosecondArray, ArrowError> {
    batch_column(batch, name)?
        .as_primitive_opt::<TimestampMicrosecondType>()
        .ok_or_else(|| bad(name))
}

/// The first_seen … established columns of one batch, each read (and cast) once.
struct SeenReader<'a> {
    first: &'a datafusion::arrow::array::TimestampMicrosecondArray,
    last: &'a datafusion::arrow::array::TimestampMicrosecondArray,
    count: Int64Array,
    days: Int64Array,
    established: &'a datafusion::arrow::array::BooleanArray,
}

impl<'a> SeenReader<'a> {
    fn new(batch: &'a RecordBatch) -> Result<SeenReader<'a>, ArrowError> {
        Ok(SeenReader {
            first: ts_column(batch, "first_seen")?,
            last: ts_column(batch, "last_seen")?,
            count: int_column(batch, "count")?,
            days: int_column(batch, "days")?,
            established: batch_column(batch, "established")?
                .as_boolean_opt()
                .ok_or_else(|| bad("established"))?,
        })
    }

    fn row(&self, row: usize) -> Result<Seen, ArrowError> {
        Ok(Seen {
            first_seen: Timestamp(self.first.value(row)),
            last_seen: Timestamp(self.last.value(row)),
            count: unsigned(self.count.value(row), "count")?,
            days: unsigned(self.days.value(row), "days")?,
            established: self.established.value(row),
        })
    }
}

/// An integer column as i64, whatever integer type it was written with.
fn int_column(batch: &RecordBatch, name: &str) -> Result<Int64Array, ArrowError> {
    let column = batch_column(batch, name)?;
    if !column.data_type().is_integer() {
        return Err(bad(name));
    }
    let cast = datafusion::arrow::compute::cast(column, &DataType::Int64)?;
    cast.as_primitive_opt::<Int64Type>()
        .cloned()
        .ok_or_else(|| bad(name))
}

/// A count held unsigned in memory, written signed (saturating: no count reaches 2^63).
fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn signed_index(i: usize) -> i64 {
    i64::try_from(i).unwrap_or(i64::MAX)
}

/// A stored value back to its in-memory type; negative or too large is a corrupt table.
fn unsigned<T: TryFrom<i64>>(v: i64, column: &str) -> Result<T, ArrowError> {
    T::try_from(v).map_err(|_| {
        ArrowError::InvalidArgumentError(format!("baseline column {column}: {v} is out of range"))
    })
}

fn app<'a>(b: &'a mut Baselines, client_id: &str) -> Result<&'a mut AppProfile, ArrowError> {
    b.apps.get_mut(client_id).ok_or_else(|| {
        ArrowError::InvalidArgumentError(format!(
            "baseline row for app '{client_id}' which baseline_apps does not list"
        ))
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::event::MICROS_PER_SECOND;

    pub(crate) fn sample() -> Baselines {
        let t =
            |h: i64| Timestamp(1_709_251_200 * MICROS_PER_SECOND + h * 3600 * MICROS_PER_SECOND);
        let mut b = Baselines::default();
        for (i, id) in ["bulk", "chart"].iter().enumerate() {
            let mut p = AppProfile::new((*id).into(), t(0));
            p.touch(t(30 + i as i64));
            p.scopes
                .observe(&"patient/Observation.rs".to_string(), t(1), true);
            p.scopes.observe(&"patient/*.rs".to_string(), t(40), false);
            p.grant_types
                .observe(&"authorization_code".to_string(), t(1), true);
            p.contexts.observe(&"patient".to_string(), t(1), true);
            p.resources
                .observe(&("Observation".into(), "search-type".into()), t(2), true);
            p.purposes.observe(&"TREAT".to_string(), t(2), true);
            p.operations.observe(&"$export".to_string(), t(3), false);
            p.population.observe(&"search".to_string(), t(3), false);
            p.hour_of_week[10] = 42 + i as u64;
            p.token_requests.add(17);
            p.token_patients.add(1);
            p.token_pages.add(0);
            p.hourly_requests[30].update(12.5);
            p.hourly_requests[30].update(13.25);
            p.daily_requests[1].update(300.0);
            p.drip_cusum = 1.25;
            p.drip_level = 1.125;
            p.drip_var = 0.0625;
            b.apps.insert(p.client_id.clone(), p);
        }
        b
    }

    #[test]
    fn arrow_round_trip_is_exact() {
        let b = sample();
        let batches = b.to_batches().unwrap();
        let names: Vec<&str> = batches.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, table_names());
        let scopes = &batches
            .iter()
            .find(|(n, _)| *n == "baseline_scopes")
            .unwrap()
            .1;
        assert_eq!(scopes.num_rows(), 4);
        assert_eq!(scopes.schema().field(1).name(), "scope");
        let tables: BTreeMap<String, Vec<RecordBatch>> = batches
            .into_iter()
            .map(|(n, batch)| (n.to_string(), vec![batch]))
            .collect();
        assert_eq!(Baselines::from_batches(&tables).unwrap(), b);
    }

    /// Spark and Trino have no unsigned integers: every integer column is INT64. Snapshots
    /// written with the unsigned types of earlier versions load to the same baselines.
    #[test]
    fn integers_are_signed_and_unsigned_snapshots_still_load() {
        let b = sample();
        let batches = b.to_batches().unwrap();
        let mut old_style = BTreeMap::new();
        for (name, batch) in &batches {
            for field in batch.schema().fields() {
                let t = field.data_type();
                assert!(!t.is_unsigned_integer(), "{name}.{} is {t}", field.name());
            }
            let columns: Vec<ArrayRef> = batch
                .columns()
                .iter()
                .map(|c| match c.data_type() {
                    DataType::Int64 => {
                        datafusion::arrow::compute::cast(c, &DataType::UInt64).unwrap()
                    }
                    _ => c.clone(),
                })
                .collect();
            let fields: Vec<Field> = batch
                .schema()
                .fields()
                .iter()
                .zip(&columns)
                .map(|(f, c)| Field::new(f.name(), c.data_type().clone(), f.is_nullable()))
                .collect();
            let old = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
            old_style.insert(name.to_string(), vec![old]);
        }
        assert_eq!(Baselines::from_batches(&old_style).unwrap(), b);
    }

    #[test]
    fn rows_for_unknown_apps_are_an_error() {
        let b = sample();
        let mut tables: BTreeMap<String, Vec<RecordBatch>> = b
            .to_batches()
            .unwrap()
            .into_iter()
            .map(|(n, batch)| (n.to_string(), vec![batch]))
            .collect();
        tables.remove("baseline_apps");
        let e = Baselines::from_batches(&tables).unwrap_err();
        assert!(e.to_string().contains("baseline_apps does not list"), "{e}");
    }
}
