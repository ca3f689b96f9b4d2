//! The SQL session: DataFusion over the history store, read-only.
//!
//! Tables: `access`, `tokens`, `alerts`, `dead_letter` (Hive-partitioned Parquet under the data
//! directory, with the partition column `date`; an absent table is registered empty so saved
//! queries still plan) and one `baseline_*` table per baseline profile.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::ListingOptions;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{DataFrame, ParquetReadOptions, SessionConfig, SessionContext};
use datafusion::sql::parser::{DFParser, Statement};
use thiserror::Error;

use super::history::{
    access_schema, alerts_schema, dead_letter_schema, tokens_schema, DataLocation,
};
use super::udf;
use crate::baseline::table_names;

#[derive(Debug, Error)]
pub enum SqlError {
    #[error("scopewatch sql is read-only: {0} statements are refused (only SELECT, WITH, EXPLAIN, SHOW and DESCRIBE run)")]
    ReadOnly(String),
    #[error("{0}")]
    Query(String),
    #[error("{path}: {message}")]
    Table { path: String, message: String },
}

impl From<DataFusionError> for SqlError {
    fn from(e: DataFusionError) -> SqlError {
        // DataFusion's messages name the problem and, for parse errors, the line and column.
        SqlError::Query(e.strip_backtrace().to_string())
    }
}

/// Runs one query over the store `data` on a runtime of its own and collects the result: for
/// commands that read a few stored rows (triage, silences, eval --feedback).
pub fn query_blocking(
    data: &Path,
    sql: &str,
) -> Result<Vec<datafusion::arrow::array::RecordBatch>, SqlError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SqlError::Query(format!("starting the query runtime: {e}")))?;
    runtime.block_on(async {
        let ctx = open(data).await?;
        let df = plan(&ctx, sql).await?;
        df.collect().await.map_err(SqlError::from)
    })
}

/// The history tables and their schemas.
pub fn history_tables() -> [(&'static str, SchemaRef); 5] {
    [
        ("access", access_schema()),
        ("tokens", tokens_schema()),
        ("alerts", alerts_schema()),
        ("dead_letter", dead_letter_schema()),
        ("feedback", crate::sql::history::feedback_schema()),
    ]
}

/// Default memory for a query's operators: beyond it, sorts, aggregations and joins spill to
/// the temporary directory; an operator that cannot spill fails with "Resources exhausted".
pub const DEFAULT_MEMORY_LIMIT: usize = 1 << 30;

/// A session with every table of the data directory and the SMART/FHIR functions registered,
/// its operators held to the default memory limit.
pub async fn open(data: &Path) -> Result<SessionContext, SqlError> {
    open_with_memory_limit(data, DEFAULT_MEMORY_LIMIT).await
}

/// As [`open`], with `memory_limit` bytes for the query's operators (a fair spilling pool).
pub async fn open_with_memory_limit(
    data: &Path,
    memory_limit: usize,
) -> Result<SessionContext, SqlError> {
    open_location(&DataLocation::Local(data.to_path_buf()), memory_limit).await
}

/// As [`open_with_memory_limit`], for a store in a directory or on object storage (read in
/// place through DataFusion's object_store).
pub async fn open_location(
    location: &DataLocation,
    memory_limit: usize,
) -> Result<SessionContext, SqlError> {
    let config = SessionConfig::new()
        .with_information_schema(true)
        // Plain Utf8 strings in results: what the saved queries and the output writers expect.
        // Views would group 30-40 % faster (docs/benchmarks.md, 2026-12-07), but DataFusion 55
        // counts a view batch's whole shared buffers against the memory limit, so a sort that
        // spills with Utf8 fails with views ("Resources exhausted"; see the test below).
        .set_bool(
            "datafusion.execution.parquet.schema_force_view_types",
            false,
        );
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(FairSpillPool::new(memory_limit)))
        .build_arc()?;
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    udf::register(&ctx);
    let store = StoreFiles::open(location, &ctx)?;
    if let DataLocation::ObjectStore(url) = location {
        // A mistyped prefix would otherwise answer every query with no rows.
        if !store.exists("store.json").await? {
            return Err(SqlError::Query(format!(
                "{url} holds no scopewatch store (no store.json): write one with `scopewatch detect … --data {url}`"
            )));
        }
    }
    for (name, schema) in history_tables() {
        if store.has_parquet(name).await? {
            let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet")
                .with_table_partition_cols(vec![("date".to_string(), DataType::Utf8)]);
            let url = store.url_of(&format!("{name}/"));
            ctx.register_listing_table(name, &url, options, Some(schema), None)
                .await
                .map_err(|e| SqlError::Table {
                    path: url.clone(),
                    message: e.strip_backtrace().to_string(),
                })?;
        } else {
            let mut fields: Vec<_> = schema.fields().iter().cloned().collect();
            fields.push(Arc::new(datafusion::arrow::datatypes::Field::new(
                "date",
                DataType::Utf8,
                false,
            )));
            let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(fields));
            let empty = MemTable::try_new(schema, vec![vec![]])?;
            ctx.register_table(name, Arc::new(empty))?;
        }
    }
    for name in table_names() {
        let relative = format!("baseline/{name}.parquet");
        if store.exists(&relative).await? {
            let url = store.url_of(&relative);
            ctx.register_parquet(name, &url, ParquetReadOptions::default())
                .await
                .map_err(|e| SqlError::Table {
                    path: url.clone(),
                    message: e.strip_backtrace().to_string(),
                })?;
        }
    }
    Ok(ctx)
}

/// The files of a store, as the session finds and names them.
enum StoreFiles {
    Local(std::path::PathBuf),
    #[cfg(feature = "s3")]
    ObjectStore {
        url: crate::sql::history::StoreUrl,
        client: Arc<dyn object_store::ObjectStore>,
    },
}

impl StoreFiles {
    /// For an object store, also registers its client with `ctx`.
    fn open(location: &DataLocation, ctx: &SessionContext) -> Result<StoreFiles, SqlError> {
        #[cfg(not(feature = "s3"))]
        let _ = ctx; // only an object store is registered with the session
        match location {
            DataLocation::Local(dir) => Ok(StoreFiles::Local(dir.clone())),
            #[cfg(feature = "s3")]
            DataLocation::ObjectStore(url) => {
                let client = crate::sql::history::remote::RemoteStore::client(url)
                    .map_err(|e| SqlError::Query(e.to_string()))?;
                let bucket = url::Url::parse(&url.bucket_url())
                    .map_err(|e| SqlError::Query(format!("{url}: {e}")))?;
                ctx.register_object_store(&bucket, Arc::clone(&client));
                Ok(StoreFiles::ObjectStore {
                    url: url.clone(),
                    client,
                })
            }
            #[cfg(not(feature = "s3"))]
            DataLocation::ObjectStore(url) => Err(SqlError::Query(format!(
                "{url}: this build has no object-store support (build with the cargo feature `s3`)"
            ))),
        }
    }

    /// The URL DataFusion reads `relative` from.
    fn url_of(&self, relative: &str) -> String {
        match self {
            StoreFiles::Local(dir) => {
                let path = dir.join(relative.trim_end_matches('/'));
                let slash = if relative.ends_with('/') { "/" } else { "" };
                format!("{}{slash}", path.display())
            }
            #[cfg(feature = "s3")]
            StoreFiles::ObjectStore { url, .. } => url.url_of(relative),
        }
    }

    async fn has_parquet(&self, table: &str) -> Result<bool, SqlError> {
        match self {
            StoreFiles::Local(dir) => Ok(has_parquet(&dir.join(table))),
            #[cfg(feature = "s3")]
            StoreFiles::ObjectStore { url, client } => {
                use futures::TryStreamExt;
                let prefix = object_store::path::Path::from(url.key(table));
                let mut listing = client.list(Some(&prefix));
                while let Some(meta) = listing.try_next().await.map_err(|e| remote(url, e))? {
                    let name = meta.location.filename().unwrap_or_default();
                    if name.ends_with(".parquet") && !name.starts_with('.') {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
        }
    }

    async fn exists(&self, relative: &str) -> Result<bool, SqlError> {
        match self {
            StoreFiles::Local(dir) => Ok(dir.join(relative).exists()),
            #[cfg(feature = "s3")]
            StoreFiles::ObjectStore { url, client } => {
                use object_store::ObjectStoreExt;
                let key = object_store::path::Path::from(url.key(relative));
                match client.head(&key).await {
                    Ok(_) => Ok(true),
                    Err(object_store::Error::NotFound { .. }) => Ok(false),
                    Err(e) => Err(remote(url, e)),
                }
            }
        }
    }
}

#[cfg(feature = "s3")]
fn remote(url: &crate::sql::history::StoreUrl, e: object_store::Error) -> SqlError {
    SqlError::Table {
        path: url.to_string(),
        message: e.to_string(),
    }
}

fn has_parquet(dir: &Path) -> bool {
    fn walk(dir: &Path) -> bool {
        std::fs::read_dir(dir).is_ok_and(|entries| {
            entries.filter_map(Result::ok).any(|e| {
                let path = e.path();
                let name = e.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.') {
                    false
                } else if path.is_dir() {
                    walk(&path)
                } else {
                    name.ends_with(".parquet")
                }
            })
        })
    }
    walk(dir)
}

/// Splits `text` into statements and refuses any that would write or reach outside the data
/// directory, before anything runs.
pub fn read_only_statements(text: &str) -> Result<Vec<String>, SqlError> {
    let statements = DFParser::parse_sql(text).map_err(|e| syntax_error(text, &e))?;
    let mut out = Vec::new();
    for statement in statements {
        let refused = match &statement {
            Statement::Statement(s) => {
                use datafusion::sql::sqlparser::ast::Statement as S;
                match s.as_ref() {
                    S::Query(_) | S::Explain { .. } | S::ExplainTable { .. } => None,
                    S::ShowTables { .. } | S::ShowColumns { .. } | S::ShowFunctions { .. } => None,
                    other => Some(statement_kind(&other.to_string())),
                }
            }
            Statement::CreateExternalTable(_) => Some("CREATE EXTERNAL TABLE".to_string()),
            Statement::CopyTo(_) => Some("COPY".to_string()),
            Statement::Explain(_) => None,
            Statement::Reset(_) => Some("RESET".to_string()),
        };
        if let Some(kind) = refused {
            return Err(SqlError::ReadOnly(kind));
        }
        out.push(statement.to_string());
    }
    Ok(out)
}

/// A parse error as `SQL syntax error: <what> at Line: L, Column: C`; an error at the end of
/// the input (which the parser reports without a position) gets the position of the end.
fn syntax_error(text: &str, e: &DataFusionError) -> SqlError {
    let message = e.strip_backtrace().to_string();
    let inner = message
        .split_once("ParserError(\"")
        .and_then(|(_, rest)| rest.rsplit_once("\")"))
        .map_or(message.as_str(), |(inner, _)| inner)
        .replace("\\\"", "\"");
    if inner.contains(" at Line: ") {
        return SqlError::Query(format!("SQL syntax error: {inner}"));
    }
    let end = text.trim_end();
    let line = end.lines().count().max(1);
    let column = end.lines().last().map_or(0, |l| l.chars().count()) + 1;
    SqlError::Query(format!(
        "SQL syntax error: {inner} at Line: {line}, Column: {column} (end of input)"
    ))
}

/// The leading keywords of a statement (`INSERT`, `CREATE TABLE`, …) for the refusal message.
fn statement_kind(sql: &str) -> String {
    let words: Vec<&str> = sql.split_whitespace().take(2).collect();
    match words.as_slice() {
        [first, second]
            if matches!(
                first.to_ascii_uppercase().as_str(),
                "CREATE" | "DROP" | "ALTER"
            ) =>
        {
            format!(
                "{} {}",
                first.to_ascii_uppercase(),
                second.to_ascii_uppercase()
            )
        }
        [first, ..] => first.to_ascii_uppercase(),
        [] => "empty".to_string(),
    }
}

/// Plans one statement that `read_only_statements` accepted; DataFusion's own checks refuse
/// DDL, DML and SET as a second line of defence.
pub async fn plan(ctx: &SessionContext, sql: &str) -> Result<DataFrame, SqlError> {
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    Ok(ctx.sql_with_options(sql, options).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_ddl_are_refused_before_running() {
        for (sql, kind) in [
            ("COPY access TO '/tmp/x.parquet'", "COPY"),
            ("INSERT INTO access VALUES (1)", "INSERT"),
            (
                "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/etc/'",
                "CREATE EXTERNAL TABLE",
            ),
            ("CREATE TABLE t AS SELECT 1", "CREATE TABLE"),
            ("DROP TABLE access", "DROP TABLE"),
            ("SET datafusion.execution.batch_size = 1", "SET"),
            ("SELECT 1; DELETE FROM access", "DELETE"),
        ] {
            let e = read_only_statements(sql).unwrap_err().to_string();
            assert!(e.contains("read-only") && e.contains(kind), "{sql}: {e}");
        }
        assert_eq!(
            read_only_statements("SELECT 1; WITH t AS (SELECT 2) SELECT * FROM t")
                .unwrap()
                .len(),
            2
        );
    }

    /// A sort larger than the memory limit spills and finishes, as `--memory-limit` promises.
    /// Guards the Utf8 reads above: with string views this query fails at this limit on two
    /// cores (DataFusion 55.2; the same held on the bench's 200 k-event history).
    #[test]
    fn a_string_sort_beyond_the_memory_limit_spills_instead_of_failing() {
        use crate::event::parse_event_str;
        use crate::sql::history::HistoryWriter;
        let dir = tempfile::tempdir().unwrap();
        let mut writer = HistoryWriter::new(dir.path(), "run1", None);
        let rows = 180_000;
        for i in 0..rows {
            let line = format!(
                r#"{{"type":"access","time":"2024-03-01T{:02}:{:02}:{:02}Z","client_id":"app-{}","method":"GET","url":"Observation?patient=p{:07}&code=http://loinc.org|{:05}-{}&_count=50","status":200,"patient":"p{:07}"}}"#,
                i / 3600 % 24,
                i / 60 % 60,
                i % 60,
                i % 7,
                (i * 7919) % rows,
                i,
                i % 10,
                i
            );
            writer.add(&parse_event_str(&line).unwrap()).unwrap();
        }
        writer.finish().unwrap();
        // DataFusion sorts one partition per core, each holding a 10 MB merge reservation.
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
        let limit = cores * (16 << 20);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let counted = runtime.block_on(async {
            let ctx = open_with_memory_limit(dir.path(), limit).await?;
            let df = plan(&ctx, "SELECT url, patient FROM access ORDER BY url").await?;
            let batches = df.collect().await?;
            Ok::<_, SqlError>(batches.iter().map(|b| b.num_rows()).sum::<usize>())
        });
        assert_eq!(counted.expect("the sort spills"), rows);
    }

    #[test]
    fn a_syntax_error_names_the_position() {
        let e = read_only_statements("SELECT * FROM access WHERE")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Line: 1") || e.contains("line 1"), "{e}");
    }
}
