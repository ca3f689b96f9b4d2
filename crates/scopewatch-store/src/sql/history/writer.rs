//! The history store writer: every accepted event as a row of `access` or `tokens`, in
//! Hive-partitioned Parquet (`<data>/<table>/date=YYYY-MM-DD/part-<run>-<n>.parquet`).
//!
//! Rows are buffered per date and written sorted by (patient, time) in row groups of 64 k rows
//! with a bloom filter on `patient`, so a one-patient lookup prunes by partition, row-group
//! statistics and bloom filter instead of scanning. Every file is written to a dot-prefixed
//! temporary name and renamed into place: a crash never leaves a half-written file where a
//! query would read it (readers skip dot files). Memory is bounded by `FLUSH_ROWS` (or
//! `FLUSH_BYTES`) per open date and `MAX_OPEN_DATES`, plus the one date the file thread is
//! writing (`flusher`); rows are appended to Arrow builders as events pass (`columns`), never
//! kept as copies of the events.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::parquet::schema::types::ColumnPath;

use super::columns::{AccessColumns, AccessFacts, TokenColumns, TokenFacts};
use super::flusher::{FileJob, Flusher, TableRows};
use super::grants::{GrantMemo, Granted, ParsedGrant};
use super::pseudonym::Pseudonymizer;
use super::HistoryError;
use crate::detect::replay::{RecordedToken, Replay};
use crate::detect::tokens::TokenState;
use crate::event::{AccessEvent, Event, Text, Timestamp, TokenAction, TokenEvent};
use crate::least_privilege::used_scopes;
use crate::smart::request::{request_shape, Classifier, FhirRequest};
use crate::smart::scope::ScopeSet;

/// Rows buffered per date before a file is written.
pub const FLUSH_ROWS: usize = 131_072;
/// Bytes buffered per date before a file is written, whichever of the two comes first: rows
/// with long URLs or many granted scopes must not hold more (about 350 bytes a row is usual).
pub const FLUSH_BYTES: usize = 64 << 20;
/// Dates buffered at once; the oldest is written out when a new one would exceed this.
const MAX_OPEN_DATES: usize = 2;
const ROW_GROUP_ROWS: usize = 65_536;
/// Tokens remembered for the `granted_scopes` join; beyond it the map starts over.
const MAX_TOKENS: usize = 250_000;

/// What the writer remembers of a token for the accesses that follow.
struct TokenGrant {
    /// The app it was issued to: an access of another app does not use it.
    client_id: Text,
    /// Canonical spellings, resource scopes first in `scopes.resources()` order.
    granted: Granted,
    /// The granted scopes parsed, for the verdict.
    scopes: Arc<ScopeSet>,
    /// The launch patient as stored (a pseudonym in a pseudonymised store).
    stored_patient: Option<Text>,
    /// The launch patient as logged, compared with the patients an access names (PHI: memory
    /// only).
    patient: Option<Text>,
}

/// What the writer did, for the end-of-run report.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct HistoryCounts {
    pub access_rows: u64,
    pub token_rows: u64,
    pub files: u64,
}

pub struct HistoryWriter {
    root: PathBuf,
    run_id: String,
    classifier: Classifier,
    replay: Replay,
    tokens: HashMap<Text, TokenGrant>,
    grants: GrantMemo,
    /// Rows buffered per UTC day (days since the epoch, in date order; the date is written
    /// out only when a file is: formatting it per event was an eighth of the writer's time).
    access: BTreeMap<i64, AccessColumns>,
    token_rows: BTreeMap<i64, TokenColumns>,
    seq: u64,
    counts: HistoryCounts,
    pseudonymizer: Option<Pseudonymizer>,
    /// Writes the files of finished dates on a thread of its own.
    flusher: Flusher,
}

/// The UTC date (`YYYY-MM-DD`) of an instant: the partition it goes to.
pub fn date_of(t: Timestamp) -> String {
    t.to_rfc3339()[..10].to_string()
}

/// The UTC day of an instant, counted from the epoch (what `date_of` names).
fn day_of(t: Timestamp) -> i64 {
    t.0.div_euclid(MICROS_PER_DAY)
}

const MICROS_PER_DAY: i64 = 86_400 * 1_000_000;

impl HistoryWriter {
    /// `run_id` names this run's files (unique per run, so runs never overwrite each other).
    pub fn new(root: &Path, run_id: &str, fhir_base: Option<&str>) -> HistoryWriter {
        HistoryWriter {
            root: root.to_path_buf(),
            run_id: run_id.to_string(),
            classifier: fhir_base.map_or_else(Classifier::new, Classifier::with_base),
            replay: Replay::bounded(
                fhir_base.map_or_else(Classifier::new, Classifier::with_base),
                MAX_TOKENS,
            ),
            tokens: HashMap::new(),
            grants: GrantMemo::default(),
            access: BTreeMap::new(),
            token_rows: BTreeMap::new(),
            seq: 0,
            counts: HistoryCounts::default(),
            pseudonymizer: None,
            flusher: Flusher::new(),
        }
    }

    /// Stores patient ids as keyed pseudonyms, and URLs as their id-free shape
    /// (`Observation?patient=…`), so the store holds no patient identifier.
    pub fn with_pseudonymizer(mut self, pseudonymizer: Option<Pseudonymizer>) -> HistoryWriter {
        self.pseudonymizer = pseudonymizer;
        self
    }

    fn patient_value(&self, id: Option<Text>) -> Option<Text> {
        match (&self.pseudonymizer, id) {
            (Some(p), Some(id)) => Some(Text::from(p.pseudonym(&id))),
            (_, id) => id,
        }
    }

    /// Who acted and from where, as stored: in a pseudonymised store these are identifiers
    /// too, so a user that is a patient (`Patient/…`) and every source address become keyed
    /// pseudonyms (the same value gives the same pseudonym, so grouping still works).
    fn actor(&self, common: &crate::event::Common) -> (Option<Text>, Option<Text>) {
        let (user, ip) = (common.user.clone(), common.source_ip.clone());
        let Some(p) = &self.pseudonymizer else {
            return (user, ip);
        };
        let user = user.map(|user| {
            if user.starts_with("Patient/") || user.contains("/Patient/") {
                Text::from(p.pseudonym(&user))
            } else {
                user
            }
        });
        (user, ip.map(|ip| Text::from(p.pseudonym(&ip))))
    }

    pub fn counts(&self) -> &HistoryCounts {
        &self.counts
    }

    /// Adds one accepted event (in input order).
    pub fn add(&mut self, event: &Event) -> Result<(), HistoryError> {
        match event {
            Event::Token(t) => self.add_token(t),
            Event::Access(a) => self.add_access(a),
        }
    }

    /// Starts naming files after `run_id` (the next segment of a stream); the grants of tokens
    /// seen so far are kept for the access rows that follow.
    pub fn set_run(&mut self, run_id: &str) {
        self.run_id = run_id.to_string();
        self.seq = 0;
    }

    /// Remembers a cached token of a checkpoint for the access rows that follow, without
    /// writing a row: a streaming service restarting from a checkpoint knows its live tokens,
    /// their revocations and first patients from there.
    pub fn remember_token(&mut self, t: &TokenState) {
        // A checkpoint holds the grant as its normalised scopes; joined, they are one string of
        // the memo, so a service that re-learns its live tokens at every segment parses each
        // distinct grant once. (A scope holding whitespace cannot be joined; parsed apart.)
        let parsed = match t
            .scopes
            .iter()
            .any(|s| s.contains(|c: char| c.is_ascii_whitespace()))
        {
            false => self.grants.parse(&t.scopes.join(" ")),
            true => ParsedGrant::new(ScopeSet::from_tokens(&t.scopes)),
        };
        self.insert_grant(&t.token_id, &t.client_id, parsed, t.patient.clone());
        if let Some(at) = t.revoked_at {
            self.replay.revoke(&t.token_id, at);
        }
        if let Some(patient) = &t.first_patient {
            self.replay
                .remember_first_patient(&t.token_id, patient.clone());
        }
    }

    /// Remembers a token event a checkpoint still holds (read, not yet applied), without
    /// writing a row.
    pub fn remember_token_event(&mut self, t: &TokenEvent) {
        let parsed = t.granted_scope().map(|s| self.grants.parse(s));
        self.learn_token(t, parsed.as_ref());
    }

    /// Remembers an export a checkpoint's engine had seen started, so its status polls and
    /// files are judged with it.
    pub fn remember_export(&mut self, client_id: &str, time: Timestamp) {
        self.replay.export_started(client_id, time);
    }

    fn insert_grant(
        &mut self,
        token_id: &Text,
        client_id: &Text,
        parsed: ParsedGrant,
        patient: Option<Text>,
    ) {
        if self.tokens.len() >= MAX_TOKENS {
            self.tokens.clear();
        }
        let grant = TokenGrant {
            client_id: client_id.clone(),
            granted: parsed.granted,
            scopes: parsed.scopes,
            stored_patient: self.patient_value(patient.clone()),
            patient,
        };
        self.tokens.insert(token_id.clone(), grant);
    }

    /// What a token event tells the accesses that follow, as the engine's token cache reads it:
    /// a grant from an issue or refresh (or an introspection of a token not seen before), a
    /// revocation.
    fn learn_token(&mut self, t: &TokenEvent, parsed: Option<&ParsedGrant>) {
        let Some(id) = &t.token_id else { return };
        match (t.event, parsed) {
            (TokenAction::Revoked, _) => self.replay.revoke(id, t.common.time),
            (TokenAction::Introspected, _) if self.tokens.contains_key(id) => {}
            (TokenAction::Issued | TokenAction::Refreshed | TokenAction::Introspected, Some(s)) => {
                self.insert_grant(id, &t.common.client_id, s.clone(), t.patient.clone());
            }
            _ => {}
        }
    }

    fn add_token(&mut self, t: &TokenEvent) -> Result<(), HistoryError> {
        let parsed = t.granted_scope().map(|s| self.grants.parse(s));
        let context = parsed
            .as_ref()
            .and_then(|p| p.scopes.max_context())
            .map(|c| c.as_str());
        self.learn_token(t, parsed.as_ref());
        let patient = self.patient_value(t.patient.clone());
        let (user, source_ip) = self.actor(&t.common);
        let facts = TokenFacts {
            user: user.as_deref(),
            source_ip: source_ip.as_deref(),
            patient: patient.as_deref(),
            granted: parsed.as_ref().map(|p| &p.granted),
            context,
        };
        let date = day_of(t.common.time);
        self.token_rows.entry(date).or_default().append(t, &facts);
        self.flush_if_needed(date, Table::Tokens)
    }

    fn add_access(&mut self, a: &AccessEvent) -> Result<(), HistoryError> {
        let request = self.classifier.classify(a.method, &a.url);
        let named = request.patient_ids();
        let patient = self.patient_value(
            a.patient
                .clone()
                .or_else(|| (named.len() == 1).then(|| Text::from(named[0]))),
        );
        // A pseudonymised store keeps the URL's id-free shape (`Observation?patient=…`).
        let shape = self
            .pseudonymizer
            .is_some()
            .then(|| request_shape(a.method, &a.url));
        let url = shape.as_deref().map_or(a.url.as_str(), |shape| {
            shape.split_once(' ').map_or(shape, |(_, rest)| rest)
        });
        let (user, source_ip) = self.actor(&a.common);
        let token = a.token_id.as_ref().and_then(|id| self.tokens.get(id));
        let own = token.filter(|g| g.client_id == a.common.client_id);
        let operation = request.operation.clone();
        let (resource_type, interaction) = (request.resource_type, request.interaction.as_str());
        let (patient_scope, population_level) =
            (request.patient.as_str(), request.is_population_level());
        let page_size = request.count.map(i64::from);
        let (scope_fit, missing_permission, used_scopes) = judge(&mut self.replay, a, request, own);
        let facts = AccessFacts {
            user: user.as_deref(),
            source_ip: source_ip.as_deref(),
            url,
            patient: patient.as_deref(),
            resource_type,
            interaction,
            operation: operation.as_deref(),
            patient_scope,
            population_level,
            page_size,
            granted: token.map(|g| &g.granted),
            token_patient: token.and_then(|g| g.stored_patient.as_deref()),
            scope_fit,
            missing_permission: missing_permission.as_deref(),
            used_scopes: &used_scopes,
        };
        let date = day_of(a.common.time);
        self.access.entry(date).or_default().append(a, &facts);
        self.flush_if_needed(date, Table::Access)
    }

    fn flush_if_needed(&mut self, date: i64, table: Table) -> Result<(), HistoryError> {
        let ((rows, bytes), open) = match table {
            Table::Access => (
                self.access
                    .get(&date)
                    .map_or((0, 0), |c| (c.rows(), c.bytes())),
                self.access.len(),
            ),
            Table::Tokens => (
                self.token_rows
                    .get(&date)
                    .map_or((0, 0), |c| (c.rows(), c.bytes())),
                self.token_rows.len(),
            ),
        };
        if rows >= FLUSH_ROWS || bytes >= FLUSH_BYTES {
            self.flush_date(table, date)?;
        }
        if open > MAX_OPEN_DATES {
            let oldest = match table {
                Table::Access => self.access.keys().next().copied(),
                Table::Tokens => self.token_rows.keys().next().copied(),
            };
            if let Some(oldest) = oldest {
                self.flush_date(table, oldest)?;
            }
        }
        Ok(())
    }

    /// Hands the date's rows to the file thread; `finish` waits until the file is written.
    fn flush_date(&mut self, table: Table, date: i64) -> Result<(), HistoryError> {
        let (count, rows) = match table {
            Table::Access => match self.access.remove(&date) {
                Some(columns) => (columns.rows() as u64, TableRows::Access(Box::new(columns))),
                None => return Ok(()),
            },
            Table::Tokens => match self.token_rows.remove(&date) {
                Some(columns) => (columns.rows() as u64, TableRows::Tokens(Box::new(columns))),
                None => return Ok(()),
            },
        };
        self.seq += 1;
        let dir = self.root.join(table.name()).join(format!(
            "date={}",
            date_of(Timestamp(date * MICROS_PER_DAY))
        ));
        let name = format!("part-{}-{:05}.parquet", self.run_id, self.seq);
        self.flusher.submit(FileJob { dir, name, rows })?;
        match table {
            Table::Access => self.counts.access_rows += count,
            Table::Tokens => self.counts.token_rows += count,
        }
        self.counts.files += 1;
        Ok(())
    }

    /// Writes everything still buffered.
    pub fn finish(&mut self) -> Result<HistoryCounts, HistoryError> {
        for date in self.access.keys().copied().collect::<Vec<_>>() {
            self.flush_date(Table::Access, date)?;
        }
        for date in self.token_rows.keys().copied().collect::<Vec<_>>() {
            self.flush_date(Table::Tokens, date)?;
        }
        self.flusher.wait()?;
        Ok(self.counts.clone())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Table {
    Access,
    Tokens,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Access => "access",
            Table::Tokens => "tokens",
        }
    }
}

/// The engine's verdict on an access against the token it used, what the token lacked for a
/// gap, and which granted scopes served it (None: the token is unknown).
fn judge<'e>(
    replay: &mut Replay,
    a: &'e AccessEvent,
    request: FhirRequest<'e>,
    token: Option<&TokenGrant>,
) -> (&'static str, Option<String>, Vec<usize>) {
    let recorded = RecordedToken {
        scopes: token.map(|g| Arc::clone(&g.scopes)),
        patient: token.and_then(|g| g.patient.as_deref()),
    };
    replay.explain_event(a, request, recorded, |explained, scopes| {
        (
            explained.verdict().as_str(),
            explained.missing_permission(),
            scopes.map_or_else(Vec::new, |s| used_scopes(s, explained, &a.url)),
        )
    })
}

/// A UTF-8 column with one value (or NULL) per row.
pub(super) fn text<'a, T>(rows: &'a [T], value: impl Fn(&'a T) -> Option<&'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter(rows.iter().map(value)))
}

pub(super) fn batch(
    schema: SchemaRef,
    columns: Vec<ArrayRef>,
) -> Result<RecordBatch, HistoryError> {
    RecordBatch::try_new(schema, columns).map_err(|e| HistoryError::Arrow(e.to_string()))
}

/// Writes `batch` as `<dir>/<name>` through a dot-prefixed temporary file and a rename. A
/// file of that name merged by `scopewatch compact` is replaced too: its rows are first taken
/// out of the merged file.
pub(super) fn write_parquet_atomic(
    dir: &Path,
    name: &str,
    batch: &RecordBatch,
    patient_bloom: bool,
) -> Result<PathBuf, HistoryError> {
    fs::create_dir_all(dir).map_err(|e| HistoryError::io(dir, e))?;
    // `scopewatch compact` may be merging this directory: one of us at a time.
    let _lock = super::compact::DirLock::acquire(dir)?;
    if super::compact::has_merged(dir) {
        super::compact::forget_locked(dir, &|n| n == name)?;
    }
    write_parquet_raw(dir, name, batch, patient_bloom)
}

/// How every history file is written: snappy, 64 k-row groups, a bloom filter on `patient`
/// for the access table.
pub(super) fn properties(patient_bloom: bool) -> WriterProperties {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS));
    if patient_bloom {
        props = props.set_column_bloom_filter_enabled(ColumnPath::from("patient"), true);
    }
    props.build()
}

/// [`write_parquet_atomic`] without the look at merged files (compaction's own writes).
pub(super) fn write_parquet_raw(
    dir: &Path,
    name: &str,
    batch: &RecordBatch,
    patient_bloom: bool,
) -> Result<PathBuf, HistoryError> {
    fs::create_dir_all(dir).map_err(|e| HistoryError::io(dir, e))?;
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let file = File::create(&tmp).map_err(|e| HistoryError::io(&tmp, e))?;
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(properties(patient_bloom)))
        .map_err(|e| HistoryError::parquet(&tmp, e))?;
    writer
        .write(batch)
        .map_err(|e| HistoryError::parquet(&tmp, e))?;
    let file = writer
        .into_inner()
        .map_err(|e| HistoryError::parquet(&tmp, e))?;
    file.sync_all().map_err(|e| HistoryError::io(&tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| HistoryError::io(&path, e))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_event_str;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn files(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(files(&p));
            } else {
                out.push(p);
            }
        }
        out.sort();
        out
    }

    /// Files are written on the file thread; a file that cannot be written still stops the
    /// run with an error naming it, at the writer's next file or at `finish`.
    #[test]
    fn a_file_that_cannot_be_written_is_an_error_of_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        fs::write(&root, "a file where the store's directory should be").unwrap();
        let mut w = HistoryWriter::new(&root, "run1", None);
        let mut failed = None;
        for day in 1..=5 {
            let line = format!(
                r#"{{"type":"access","time":"2024-03-0{day}T10:00:00Z","client_id":"app","method":"GET","url":"metadata","status":200}}"#
            );
            if let Err(e) = w.add(&parse_event_str(&line).unwrap()) {
                failed = Some(e);
                break;
            }
        }
        let error = failed.or_else(|| w.finish().err()).expect("an error");
        assert!(error.to_string().contains("store"), "{error}");
        // One date: the only file is written at `finish`, which must report its failure.
        let mut one = HistoryWriter::new(&root, "run2", None);
        let line = r#"{"type":"access","time":"2024-03-01T10:00:00Z","client_id":"app","method":"GET","url":"metadata","status":200}"#;
        one.add(&parse_event_str(line).unwrap()).unwrap();
        let error = one
            .finish()
            .expect_err("finish reports the file it could not write");
        assert!(error.to_string().contains("store"), "{error}");
    }

    #[test]
    fn rows_go_to_date_partitions_sorted_by_patient_with_their_tokens_scopes() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = HistoryWriter::new(dir.path(), "run1", None);
        let lines = [
            r#"{"type":"token","event":"issued","time":"2024-03-01T23:59:00Z","client_id":"app","token_id":"t1","scope_granted":"patient/Observation.read launch/patient","patient":"p9"}"#,
            r#"{"type":"access","time":"2024-03-01T23:59:10Z","client_id":"app","token_id":"t1","method":"GET","url":"Observation?patient=p9","status":200}"#,
            r#"{"type":"access","time":"2024-03-01T23:59:20Z","client_id":"app","token_id":"t1","method":"GET","url":"Observation?patient=p2","status":200}"#,
            r#"{"type":"access","time":"2024-03-02T00:00:10Z","client_id":"app","method":"GET","url":"metadata","status":200}"#,
        ];
        for l in lines {
            w.add(&parse_event_str(l).unwrap()).unwrap();
        }
        let counts = w.finish().unwrap();
        assert_eq!(
            (counts.access_rows, counts.token_rows, counts.files),
            (3, 1, 3)
        );
        let all = files(dir.path());
        let names: Vec<String> = all
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "access/date=2024-03-01/part-run1-00001.parquet",
                "access/date=2024-03-02/part-run1-00002.parquet",
                "tokens/date=2024-03-01/part-run1-00003.parquet",
            ]
        );
        let file = File::open(&all[0]).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        // Snappy, not LZ4_RAW (which decodes faster here): Spark before 3.5 and other engines
        // that docs/sql.md names cannot read LZ4_RAW.
        let codec = reader.metadata().row_group(0).column(0).compression();
        assert_eq!(codec, Compression::SNAPPY);
        let batch = reader.build().unwrap().next().unwrap().unwrap();
        let patient = batch.column_by_name("patient").unwrap().as_string::<i32>();
        assert_eq!(
            (patient.value(0), patient.value(1)),
            ("p2", "p9"),
            "sorted by patient"
        );
        let granted = batch
            .column_by_name("granted_scopes")
            .unwrap()
            .as_list::<i32>();
        let first = granted.value(0);
        assert_eq!(first.as_string::<i32>().value(0), "patient/Observation.rs");
        let token_patient = batch
            .column_by_name("token_patient")
            .unwrap()
            .as_string::<i32>();
        assert_eq!(token_patient.value(0), "p9");
        let resource = batch
            .column_by_name("resource_type")
            .unwrap()
            .as_string::<i32>();
        assert_eq!(resource.value(0), "Observation");
        assert!(!batch.column_by_name("population_level").unwrap().is_null(0));
        // SMART App Launch 2.x, "Scopes and Launch Context": patient/ scopes reach the patient
        // in context only, so p2 through a p9 launch is a gap needing user/ access.
        assert_eq!(
            fits(&batch),
            [("gap", Some("user/Observation.s")), ("explained", None)]
        );
        assert_eq!(used(&batch, 1), ["patient/Observation.rs"]);
        assert!(used(&batch, 0).is_empty(), "a gap used no granted scope");
    }

    fn fits(batch: &RecordBatch) -> Vec<(&str, Option<&str>)> {
        let fit = batch
            .column_by_name("scope_fit")
            .unwrap()
            .as_string::<i32>();
        let missing = batch
            .column_by_name("missing_permission")
            .unwrap()
            .as_string::<i32>();
        (0..batch.num_rows())
            .map(|i| {
                (
                    fit.value(i),
                    (!missing.is_null(i)).then(|| missing.value(i)),
                )
            })
            .collect()
    }

    fn used(batch: &RecordBatch, row: usize) -> Vec<String> {
        let list = batch
            .column_by_name("used_scopes")
            .unwrap()
            .as_list::<i32>();
        let values = list.value(row);
        let values = values.as_string::<i32>();
        (0..values.len())
            .map(|i| values.value(i).to_string())
            .collect()
    }

    /// The sorted `scope_fit` values of the access rows `w` writes after `lines`.
    fn verdicts_after(mut w: HistoryWriter, lines: &[&str], dir: &Path) -> Vec<String> {
        for l in lines {
            w.add(&parse_event_str(l).unwrap()).unwrap();
        }
        w.finish().unwrap();
        let batch = access_rows(dir);
        let mut verdicts: Vec<String> = fits(&batch)
            .into_iter()
            .map(|(f, _)| f.to_string())
            .collect();
        verdicts.sort_unstable();
        verdicts
    }

    fn access_rows(dir: &Path) -> RecordBatch {
        let path = files(dir)
            .into_iter()
            .find(|p| p.to_string_lossy().contains("access/"))
            .unwrap();
        ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
            .unwrap()
            .build()
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
    }

    /// The verdict compares the patients as logged, so pseudonymising what is stored does not
    /// turn the launch patient's own reads into cross-patient gaps; RFC 7009 revocation and an
    /// unknown token get their own verdicts.
    #[test]
    fn the_verdict_is_the_same_in_a_pseudonymised_store() {
        let dir = tempfile::tempdir().unwrap();
        let key = Pseudonymizer::new(b"0123456789abcdef0123").unwrap();
        let w = HistoryWriter::new(dir.path(), "run1", None).with_pseudonymizer(Some(key));
        let lines = [
            r#"{"type":"token","event":"issued","time":"2024-03-01T10:00:00Z","client_id":"app","token_id":"t1","scope_granted":"patient/Observation.rs launch/patient","patient":"p9"}"#,
            r#"{"type":"access","time":"2024-03-01T10:00:10Z","client_id":"app","token_id":"t1","method":"GET","url":"Observation?patient=p9","status":200,"patient":"p9"}"#,
            r#"{"type":"token","event":"revoked","time":"2024-03-01T10:01:00Z","client_id":"app","token_id":"t1"}"#,
            r#"{"type":"access","time":"2024-03-01T10:02:10Z","client_id":"app","token_id":"t1","method":"GET","url":"Observation?patient=p9","status":200,"patient":"p9"}"#,
            r#"{"type":"access","time":"2024-03-01T10:03:10Z","client_id":"app","token_id":"t7","method":"GET","url":"Observation?patient=p9","status":200,"patient":"p9"}"#,
            // Only its revocation is in the log (issued before it began): still revoked.
            r#"{"type":"token","event":"revoked","time":"2024-03-01T10:04:00Z","client_id":"app","token_id":"t8"}"#,
            r#"{"type":"access","time":"2024-03-01T10:05:10Z","client_id":"app","token_id":"t8","method":"GET","url":"Observation?patient=p9","status":200,"patient":"p9"}"#,
        ];
        let verdicts = verdicts_after(w, &lines, dir.path());
        assert_eq!(
            verdicts,
            ["explained", "revoked", "revoked", "unknown_token"]
        );
    }

    /// As the engine's token cache: a token id used by another app is not that app's grant,
    /// and introspecting a known token does not replace its grant (nor its launch patient).
    #[test]
    fn only_the_app_a_token_was_issued_to_uses_its_grant() {
        let dir = tempfile::tempdir().unwrap();
        let w = HistoryWriter::new(dir.path(), "run1", None);
        let lines = [
            r#"{"type":"token","event":"issued","time":"2024-03-01T10:00:00Z","client_id":"app","token_id":"t1","scope_granted":"patient/Observation.rs launch/patient","patient":"p9"}"#,
            r#"{"type":"token","event":"introspected","time":"2024-03-01T10:00:05Z","client_id":"app","token_id":"t1","scope_granted":"patient/Observation.rs"}"#,
            r#"{"type":"access","time":"2024-03-01T10:00:10Z","client_id":"app","token_id":"t1","method":"GET","url":"Observation?patient=p9","status":200}"#,
            r#"{"type":"access","time":"2024-03-01T10:00:20Z","client_id":"other","token_id":"t1","method":"GET","url":"Observation?patient=p9","status":200}"#,
        ];
        let verdicts = verdicts_after(w, &lines, dir.path());
        assert_eq!(verdicts, ["explained", "unknown_token"]);
    }

    /// A restarted service's writer learns revocations and exports from the checkpoint, so the
    /// rewritten segment judges as the first write did.
    #[test]
    fn a_restarted_writer_judges_with_the_checkpoint_s_tokens_and_exports() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = HistoryWriter::new(dir.path(), "run1", None);
        let at = Timestamp::parse_rfc3339("2024-03-01T09:00:00Z").unwrap();
        w.remember_token(&TokenState {
            token_id: Text::from("t1"),
            client_id: Text::from("app"),
            grant_type: None,
            scopes: vec!["system/Observation.rs".to_string()],
            patient: None,
            user: None,
            issued_at: at,
            expires_at: at,
            lifetime_assumed: false,
            revoked_at: Some(at),
            first_patient: None,
        });
        w.remember_export("bulk", at);
        let lines = [
            r#"{"type":"access","time":"2024-03-01T10:00:10Z","client_id":"app","token_id":"t1","method":"GET","url":"Observation?code=x","status":200}"#,
            r#"{"type":"access","time":"2024-03-01T10:00:20Z","client_id":"bulk","method":"GET","url":"bulkstatus/job-1","status":200}"#,
        ];
        let verdicts = verdicts_after(w, &lines, dir.path());
        // Bulk Data status requests need no scope of their own (no token id logged here).
        assert_eq!(verdicts, ["explained", "revoked"]);
    }
}
