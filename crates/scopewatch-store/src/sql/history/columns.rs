//! One date's rows of the `access` and `tokens` tables as Arrow column builders, appended as
//! events pass.
//!
//! Why: the writer used to keep a clone of every event (and its derived fields) until the date
//! was written; those row buffers were most of a history run's memory and a share of its
//! allocations (issue #18). Builders hold the values once, contiguously; the sort by patient
//! that makes one-patient lookups prune is done by index when the date is written.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Int32Builder, Int64Builder, ListBuilder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder, UInt32Array,
};
use datafusion::arrow::compute::{lexsort_to_indices, take_record_batch, SortColumn, SortOptions};

use super::grants::Granted;
use super::schema::{access_schema, tokens_schema};
use super::writer::batch;
use super::HistoryError;
use crate::event::{AccessEvent, TokenEvent};

/// Bytes a row costs beyond its strings: the fixed-width values, offsets and validity of every
/// column (25 columns of at most 8 bytes, plus list offsets).
const ACCESS_ROW_FIXED_BYTES: usize = 224;
const TOKEN_ROW_FIXED_BYTES: usize = 128;

/// What an access row holds beyond the event itself: what the writer derived from its URL and
/// token, and the identifiers as stored (pseudonyms and an id-free URL in a pseudonymised
/// store).
pub struct AccessFacts<'a> {
    pub user: Option<&'a str>,
    pub source_ip: Option<&'a str>,
    pub url: &'a str,
    pub patient: Option<&'a str>,
    pub resource_type: Option<&'static str>,
    pub interaction: &'static str,
    pub operation: Option<&'a str>,
    pub patient_scope: &'static str,
    pub population_level: bool,
    pub page_size: Option<i64>,
    pub granted: Option<&'a Granted>,
    pub token_patient: Option<&'a str>,
    /// The engine's verdict (`explain`) on the access against its token.
    pub scope_fit: &'static str,
    pub missing_permission: Option<&'a str>,
    /// Indices in `granted` of the scopes that served it.
    pub used_scopes: &'a [usize],
}

/// The `access` columns of one date, in schema order.
pub struct AccessColumns {
    time: TimestampMicrosecondBuilder,
    client_id: StringBuilder,
    user: StringBuilder,
    source_ip: StringBuilder,
    user_agent: StringBuilder,
    token_id: StringBuilder,
    method: StringBuilder,
    url: StringBuilder,
    status: Int32Builder,
    returned: Int64Builder,
    bytes: Int64Builder,
    patient: StringBuilder,
    patient_count: Int64Builder,
    purpose: StringBuilder,
    resource_type: StringBuilder,
    interaction: StringBuilder,
    operation: StringBuilder,
    patient_scope: StringBuilder,
    population: BooleanBuilder,
    page_size: Int64Builder,
    granted: ListBuilder<StringBuilder>,
    token_patient: StringBuilder,
    scope_fit: StringBuilder,
    missing_permission: StringBuilder,
    used: ListBuilder<StringBuilder>,
    rows: usize,
    bytes_held: usize,
}

impl Default for AccessColumns {
    fn default() -> Self {
        AccessColumns {
            time: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            client_id: StringBuilder::new(),
            user: StringBuilder::new(),
            source_ip: StringBuilder::new(),
            user_agent: StringBuilder::new(),
            token_id: StringBuilder::new(),
            method: StringBuilder::new(),
            url: StringBuilder::new(),
            status: Int32Builder::new(),
            returned: Int64Builder::new(),
            bytes: Int64Builder::new(),
            patient: StringBuilder::new(),
            patient_count: Int64Builder::new(),
            purpose: StringBuilder::new(),
            resource_type: StringBuilder::new(),
            interaction: StringBuilder::new(),
            operation: StringBuilder::new(),
            patient_scope: StringBuilder::new(),
            population: BooleanBuilder::new(),
            page_size: Int64Builder::new(),
            granted: ListBuilder::new(StringBuilder::new()),
            token_patient: StringBuilder::new(),
            scope_fit: StringBuilder::new(),
            missing_permission: StringBuilder::new(),
            used: ListBuilder::new(StringBuilder::new()),
            rows: 0,
            bytes_held: 0,
        }
    }
}

/// A text value appended, counting its bytes.
fn put(builder: &mut StringBuilder, value: Option<&str>, held: &mut usize) {
    *held += value.map_or(0, str::len);
    builder.append_option(value);
}

/// One row of a list-of-strings column (NULL when absent), counting its bytes.
fn put_list<'a>(
    builder: &mut ListBuilder<StringBuilder>,
    values: Option<impl Iterator<Item = &'a String>>,
    held: &mut usize,
) {
    match values {
        Some(values) => {
            for v in values {
                *held += v.len() + 4;
                builder.values().append_value(v);
            }
            builder.append(true);
        }
        None => builder.append(false),
    }
}

fn opt_i64(v: Option<u64>) -> Option<i64> {
    v.map(|x| i64::try_from(x).unwrap_or(i64::MAX))
}

impl AccessColumns {
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Roughly what the buffered rows hold, in bytes.
    pub fn bytes(&self) -> usize {
        self.bytes_held
    }

    pub fn append(&mut self, e: &AccessEvent, facts: &AccessFacts<'_>) {
        let held = &mut self.bytes_held;
        *held += ACCESS_ROW_FIXED_BYTES;
        self.time.append_value(e.common.time.0);
        put(&mut self.client_id, Some(e.common.client_id.as_str()), held);
        put(&mut self.user, facts.user, held);
        put(&mut self.source_ip, facts.source_ip, held);
        put(&mut self.user_agent, e.common.user_agent.as_deref(), held);
        put(&mut self.token_id, e.token_id.as_deref(), held);
        put(&mut self.method, Some(e.method.as_str()), held);
        put(&mut self.url, Some(facts.url), held);
        self.status.append_value(i32::from(e.status));
        self.returned.append_option(opt_i64(e.resources_returned));
        self.bytes.append_option(opt_i64(e.bytes));
        put(&mut self.patient, facts.patient, held);
        self.patient_count.append_option(opt_i64(e.patient_count));
        put(&mut self.purpose, e.purpose_of_use.as_deref(), held);
        put(&mut self.resource_type, facts.resource_type, held);
        put(&mut self.interaction, Some(facts.interaction), held);
        put(&mut self.operation, facts.operation, held);
        put(&mut self.patient_scope, Some(facts.patient_scope), held);
        self.population.append_value(facts.population_level);
        self.page_size.append_option(facts.page_size);
        put_list(&mut self.granted, facts.granted.map(|g| g.iter()), held);
        put(&mut self.token_patient, facts.token_patient, held);
        put(&mut self.scope_fit, Some(facts.scope_fit), held);
        put(&mut self.missing_permission, facts.missing_permission, held);
        let used = facts
            .granted
            .map(|g| facts.used_scopes.iter().filter_map(|&i| g.get(i)));
        put_list(&mut self.used, used, held);
        self.rows += 1;
    }

    /// The date's rows sorted by (patient, NULLs last; time; arrival), so a one-patient lookup
    /// prunes row groups and equal keys keep input order.
    pub fn finish(mut self) -> Result<RecordBatch, HistoryError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.time.finish()),
            Arc::new(self.client_id.finish()),
            Arc::new(self.user.finish()),
            Arc::new(self.source_ip.finish()),
            Arc::new(self.user_agent.finish()),
            Arc::new(self.token_id.finish()),
            Arc::new(self.method.finish()),
            Arc::new(self.url.finish()),
            Arc::new(self.status.finish()),
            Arc::new(self.returned.finish()),
            Arc::new(self.bytes.finish()),
            Arc::new(self.patient.finish()),
            Arc::new(self.patient_count.finish()),
            Arc::new(self.purpose.finish()),
            Arc::new(self.resource_type.finish()),
            Arc::new(self.interaction.finish()),
            Arc::new(self.operation.finish()),
            Arc::new(self.patient_scope.finish()),
            Arc::new(self.population.finish()),
            Arc::new(self.page_size.finish()),
            Arc::new(self.granted.finish()),
            Arc::new(self.token_patient.finish()),
            Arc::new(self.scope_fit.finish()),
            Arc::new(self.missing_permission.finish()),
            Arc::new(self.used.finish()),
        ];
        let unsorted = batch(access_schema(), columns)?;
        sorted_by_patient(&unsorted)
    }
}

fn sorted_by_patient(unsorted: &RecordBatch) -> Result<RecordBatch, HistoryError> {
    let arrow = |e: datafusion::arrow::error::ArrowError| HistoryError::Arrow(e.to_string());
    let (Some(patient), Some(time)) = (
        unsorted.column_by_name("patient"),
        unsorted.column_by_name("time"),
    ) else {
        return Err(HistoryError::Arrow(
            "access batch without patient or time".into(),
        ));
    };
    let arrival: ArrayRef = Arc::new(UInt32Array::from_iter_values(
        0..u32::try_from(unsorted.num_rows()).unwrap_or(u32::MAX),
    ));
    let ascending = |values: &ArrayRef| SortColumn {
        values: Arc::clone(values),
        options: Some(SortOptions {
            descending: false,
            nulls_first: false,
        }),
    };
    let keys = [ascending(patient), ascending(time), ascending(&arrival)];
    let order = lexsort_to_indices(&keys, None).map_err(arrow)?;
    take_record_batch(unsorted, &order).map_err(arrow)
}

/// What a token row holds beyond the event: its grant normalised, its broadest context, and
/// the identifiers as stored.
pub struct TokenFacts<'a> {
    pub user: Option<&'a str>,
    pub source_ip: Option<&'a str>,
    pub patient: Option<&'a str>,
    pub granted: Option<&'a Granted>,
    pub context: Option<&'static str>,
}

/// The `tokens` columns of one date, in schema order (written in arrival order).
pub struct TokenColumns {
    time: TimestampMicrosecondBuilder,
    client: StringBuilder,
    user: StringBuilder,
    ip: StringBuilder,
    agent: StringBuilder,
    action: StringBuilder,
    token_id: StringBuilder,
    grant_type: StringBuilder,
    requested: StringBuilder,
    granted_raw: StringBuilder,
    granted: ListBuilder<StringBuilder>,
    context: StringBuilder,
    patient: StringBuilder,
    expires: Int64Builder,
    rows: usize,
    bytes_held: usize,
}

impl Default for TokenColumns {
    fn default() -> Self {
        TokenColumns {
            time: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            client: StringBuilder::new(),
            user: StringBuilder::new(),
            ip: StringBuilder::new(),
            agent: StringBuilder::new(),
            action: StringBuilder::new(),
            token_id: StringBuilder::new(),
            grant_type: StringBuilder::new(),
            requested: StringBuilder::new(),
            granted_raw: StringBuilder::new(),
            granted: ListBuilder::new(StringBuilder::new()),
            context: StringBuilder::new(),
            patient: StringBuilder::new(),
            expires: Int64Builder::new(),
            rows: 0,
            bytes_held: 0,
        }
    }
}

impl TokenColumns {
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Roughly what the buffered rows hold, in bytes.
    pub fn bytes(&self) -> usize {
        self.bytes_held
    }

    pub fn append(&mut self, e: &TokenEvent, facts: &TokenFacts<'_>) {
        let held = &mut self.bytes_held;
        *held += TOKEN_ROW_FIXED_BYTES;
        self.time.append_value(e.common.time.0);
        put(&mut self.client, Some(e.common.client_id.as_str()), held);
        put(&mut self.user, facts.user, held);
        put(&mut self.ip, facts.source_ip, held);
        put(&mut self.agent, e.common.user_agent.as_deref(), held);
        put(&mut self.action, Some(e.event.as_str()), held);
        put(&mut self.token_id, e.token_id.as_deref(), held);
        put(&mut self.grant_type, e.grant_type.as_deref(), held);
        put(&mut self.requested, e.scope_requested.as_deref(), held);
        put(&mut self.granted_raw, e.scope_granted.as_deref(), held);
        put_list(&mut self.granted, facts.granted.map(|g| g.iter()), held);
        put(&mut self.context, facts.context, held);
        put(&mut self.patient, facts.patient, held);
        self.expires.append_option(e.expires_in);
        self.rows += 1;
    }

    pub fn finish(mut self) -> Result<RecordBatch, HistoryError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.time.finish()),
            Arc::new(self.client.finish()),
            Arc::new(self.user.finish()),
            Arc::new(self.ip.finish()),
            Arc::new(self.agent.finish()),
            Arc::new(self.action.finish()),
            Arc::new(self.token_id.finish()),
            Arc::new(self.grant_type.finish()),
            Arc::new(self.requested.finish()),
            Arc::new(self.granted_raw.finish()),
            Arc::new(self.granted.finish()),
            Arc::new(self.context.finish()),
            Arc::new(self.patient.finish()),
            Arc::new(self.expires.finish()),
        ];
        batch(tokens_schema(), columns)
    }
}
