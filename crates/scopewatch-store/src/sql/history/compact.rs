//! `scopewatch compact`: merges the many small files of a table's date directory (a streaming
//! service writes one per checkpoint) into one, `part-compacted-<id>.parquet`.
//!
//! A run's files stay replaceable after they were merged: a dot-prefixed manifest beside the
//! merged file (`.part-compacted-<id>.json`, which readers skip) lists which rows came from
//! which original file. When a run writes a file of that name again (a `detect` re-run over the
//! same inputs, a service rewriting an interrupted segment) or removes its files, the merged
//! file is rewritten without those rows first, so no row is ever stored twice.
//!
//! Crash safety: the manifest of a new merged file is written first (invisible, fsynced), then
//! the merged file is renamed into place, then the files it replaces are removed. A crash
//! between the last two steps leaves both visible until the next compaction or write in that
//! directory finishes the removal (`recover`); a crash before the rename leaves only a
//! manifest, which is dropped. Compactions, writes and removals of one date directory take its
//! lock (flock on the directory) in turn, so none of them sees another half done. Files are
//! merged batch by batch: memory stays at one batch whatever the directory holds.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::arrow::ArrowWriter;
use serde::{Deserialize, Serialize};

use super::writer::properties;
use super::HistoryError;

const PREFIX: &str = "part-compacted-";
/// The tables whose date directories are compacted.
pub const TABLES: [&str; 5] = ["access", "tokens", "alerts", "dead_letter", "feedback"];

/// Rows `start..end` of a merged file came from the original file `name`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Source {
    name: String,
    start: usize,
    end: usize,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    /// Files this merged file supersedes (removed once it is in place).
    replaces: Vec<String>,
    sources: Vec<Source>,
}

/// What a compaction did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CompactReport {
    pub directories: u64,
    pub files_merged: u64,
    pub files_written: u64,
    pub rows: u64,
    /// Date directories left alone because their files' schemas differ.
    pub skipped_mixed_schemas: u64,
}

/// An exclusive lock on one date directory (flock on the directory itself: no lock file for
/// readers to trip over), held by a compaction, a write and a run's removal alike, so a
/// compaction never removes a file a run has just written again.
pub(crate) struct DirLock {
    _dir: fs::File,
}

impl DirLock {
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock, HistoryError> {
        let handle = fs::File::open(dir).map_err(|e| HistoryError::io(dir, e))?;
        handle.lock().map_err(|e| HistoryError::io(dir, e))?;
        Ok(DirLock { _dir: handle })
    }
}

/// Merges, in every date directory of the event and alert tables, the files not modified for
/// `min_age` into one file.
pub fn compact(data: &Path, min_age: Duration) -> Result<CompactReport, HistoryError> {
    let mut report = CompactReport::default();
    for table in TABLES {
        for dir in date_dirs(&data.join(table))? {
            let _lock = DirLock::acquire(&dir)?;
            recover(&dir)?;
            let old_enough = |name: &str| {
                fs::metadata(dir.join(name))
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .is_some_and(|age| age >= min_age)
            };
            let inputs: Vec<String> = parquet_files(&dir)?
                .into_iter()
                .filter(|n| old_enough(n))
                .collect();
            if inputs.len() < 2 {
                continue;
            }
            match rewrite(&dir, &inputs, &|_| false)? {
                Some(rows) => {
                    report.directories += 1;
                    report.files_merged += inputs.len() as u64;
                    report.files_written += u64::from(rows > 0);
                    report.rows += rows as u64;
                }
                None => report.skipped_mixed_schemas += 1,
            }
        }
    }
    Ok(report)
}

/// Removes from the merged files of `dir` the rows that came from original files `drop`
/// selects (their run is writing them again, or removing them). Returns how many merged files
/// were rewritten. The caller holds the directory's [`DirLock`].
pub(super) fn forget_locked(dir: &Path, drop: &dyn Fn(&str) -> bool) -> Result<u64, HistoryError> {
    recover(dir)?;
    let mut rewritten = 0;
    for merged in parquet_files(dir)?
        .into_iter()
        .filter(|n| n.starts_with(PREFIX))
    {
        let manifest = read_manifest(dir, &merged)?;
        if manifest.sources.iter().any(|s| drop(&s.name)) {
            rewrite(dir, &[merged], drop)?;
            rewritten += 1;
        }
    }
    Ok(rewritten)
}

/// One input file of a rewrite: its rows and where they came from.
struct Input {
    name: String,
    schema: SchemaRef,
    sources: Vec<Source>,
}

fn plan_input(dir: &Path, name: &str) -> Result<Input, HistoryError> {
    let path = dir.join(name);
    let file = fs::File::open(&path).map_err(|e| HistoryError::io(&path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| HistoryError::parquet(&path, e))?;
    let rows = usize::try_from(reader.metadata().file_metadata().num_rows()).unwrap_or(0);
    let sources = if name.starts_with(PREFIX) {
        let sources = read_manifest(dir, name)?.sources;
        if let Some(bad) = sources.iter().find(|s| s.end > rows || s.start > s.end) {
            return Err(HistoryError::Arrow(format!(
                "{}: manifest names rows {}..{} of {rows} rows",
                path.display(),
                bad.start,
                bad.end
            )));
        }
        sources
    } else {
        vec![Source {
            name: name.to_string(),
            start: 0,
            end: rows,
        }]
    };
    Ok(Input {
        name: name.to_string(),
        schema: reader.schema().clone(),
        sources,
    })
}

/// Merges `inputs` (plain or merged files of `dir`) into one file without the rows of the
/// original files `drop` selects, batch by batch (memory: one batch, not the directory);
/// returns the rows written (None: the files' schemas differ, nothing done).
fn rewrite(
    dir: &Path,
    inputs: &[String],
    drop: &dyn Fn(&str) -> bool,
) -> Result<Option<usize>, HistoryError> {
    let plan: Vec<Input> = inputs
        .iter()
        .map(|n| plan_input(dir, n))
        .collect::<Result<_, _>>()?;
    // The widest schema: files written before a column was added are read with it null.
    let Some(schema) = plan
        .iter()
        .map(|i| i.schema.clone())
        .max_by_key(|s| s.fields().len())
    else {
        return Ok(Some(0));
    };
    if !plan.iter().all(|i| fits(&i.schema, &schema)) {
        return Ok(None);
    }
    let mut manifest = Manifest {
        replaces: inputs.to_vec(),
        sources: Vec::new(),
    };
    for s in plan
        .iter()
        .flat_map(|i| &i.sources)
        .filter(|s| !drop(&s.name))
    {
        let start = manifest.sources.last().map_or(0, |l| l.end);
        manifest.sources.push(Source {
            name: s.name.clone(),
            start,
            end: start + (s.end - s.start),
        });
    }
    let rows = manifest.sources.last().map_or(0, |l| l.end);
    let ids: Vec<&str> = manifest.sources.iter().map(|s| s.name.as_str()).collect();
    let merged_name = format!("{PREFIX}{}.parquet", &crate::alert::stable_id(&ids)[..16]);
    if inputs.len() == 1 && inputs[0] == merged_name {
        return Ok(Some(rows)); // already exactly this
    }
    if rows > 0 {
        write_manifest(dir, &merged_name, &manifest)?;
        write_merged(dir, &merged_name, &schema, &plan, drop)?;
    }
    for name in inputs.iter().filter(|n| **n != merged_name) {
        remove_with_manifest(dir, name)?;
    }
    Ok(Some(rows))
}

/// Streams the kept rows of `plan` into `<dir>/<name>` (temporary name, fsync, rename).
fn write_merged(
    dir: &Path,
    name: &str,
    schema: &SchemaRef,
    plan: &[Input],
    drop: &dyn Fn(&str) -> bool,
) -> Result<(), HistoryError> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let file = fs::File::create(&tmp).map_err(|e| HistoryError::io(&tmp, e))?;
    let bloom = schema.column_with_name("patient").is_some();
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(properties(bloom)))
        .map_err(|e| HistoryError::parquet(&tmp, e))?;
    for input in plan {
        let path = dir.join(&input.name);
        let file = fs::File::open(&path).map_err(|e| HistoryError::io(&path, e))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.build())
            .map_err(|e| HistoryError::parquet(&path, e))?;
        let mut at = 0;
        for batch in reader {
            let batch = batch.map_err(|e| HistoryError::parquet(&path, e))?;
            let (from, to) = (at, at + batch.num_rows());
            let batch = widen(&batch, schema).map_err(|e| HistoryError::parquet(&path, e))?;
            for s in input.sources.iter().filter(|s| !drop(&s.name)) {
                let (a, b) = (s.start.max(from), s.end.min(to));
                if a < b {
                    writer
                        .write(&batch.slice(a - from, b - a))
                        .map_err(|e| HistoryError::parquet(&tmp, e))?;
                }
            }
            at = to;
        }
    }
    let file = writer
        .into_inner()
        .map_err(|e| HistoryError::parquet(&tmp, e))?;
    file.sync_all().map_err(|e| HistoryError::io(&tmp, e))?;
    let path = dir.join(name);
    fs::rename(&tmp, &path).map_err(|e| HistoryError::io(&path, e))?;
    sync_dir(dir)
}

/// `narrow` can be read as `wide`: each of its columns is in `wide` with the same type, and
/// the columns it lacks may be null.
fn fits(narrow: &SchemaRef, wide: &SchemaRef) -> bool {
    narrow.fields().iter().all(|f| {
        wide.field_with_name(f.name())
            .is_ok_and(|w| w.data_type() == f.data_type())
    }) && wide
        .fields()
        .iter()
        .all(|w| w.is_nullable() || narrow.field_with_name(w.name()).is_ok())
}

/// `batch` with `schema`'s columns, in its order, nulls for the ones it lacks.
fn widen(
    batch: &datafusion::arrow::array::RecordBatch,
    schema: &SchemaRef,
) -> Result<datafusion::arrow::array::RecordBatch, datafusion::arrow::error::ArrowError> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) => c.clone(),
            None => datafusion::arrow::array::new_null_array(f.data_type(), batch.num_rows()),
        })
        .collect();
    datafusion::arrow::array::RecordBatch::try_new(schema.clone(), columns)
}

/// Makes renames and removals in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), HistoryError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| HistoryError::io(dir, e))
}

/// Finishes what an interrupted compaction left: a merged file in place supersedes the files
/// its manifest replaces; a manifest without its merged file is dropped (the caller holds the
/// directory's lock, so no compaction is between the two steps).
fn recover(dir: &Path) -> Result<(), HistoryError> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(merged) = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".json"))
            .filter(|n| n.starts_with(PREFIX))
            .map(|n| format!("{n}.parquet"))
        else {
            continue;
        };
        if dir.join(&merged).exists() {
            let manifest = read_manifest(dir, &merged)?;
            for old in manifest.replaces.iter().filter(|o| **o != merged) {
                if dir.join(old).exists() {
                    remove_with_manifest(dir, old)?;
                }
            }
        } else {
            let path = entry.path();
            fs::remove_file(&path).map_err(|e| HistoryError::io(&path, e))?;
        }
    }
    Ok(())
}

fn manifest_path(dir: &Path, merged: &str) -> std::path::PathBuf {
    dir.join(format!(".{}.json", merged.trim_end_matches(".parquet")))
}

fn read_manifest(dir: &Path, merged: &str) -> Result<Manifest, HistoryError> {
    let path = manifest_path(dir, merged);
    let text = fs::read_to_string(&path).map_err(|e| HistoryError::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| HistoryError::Arrow(format!("{}: {e}", path.display())))
}

fn write_manifest(dir: &Path, merged: &str, manifest: &Manifest) -> Result<(), HistoryError> {
    let path = manifest_path(dir, merged);
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_vec(manifest).map_err(|e| HistoryError::Arrow(e.to_string()))?;
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, &text)?;
        f.sync_all()
    };
    write().map_err(|e| HistoryError::io(&tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| HistoryError::io(&path, e))?;
    sync_dir(dir)
}

fn remove_with_manifest(dir: &Path, name: &str) -> Result<(), HistoryError> {
    let path = dir.join(name);
    match fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(HistoryError::io(&path, e)),
    }
    if name.starts_with(PREFIX) {
        let manifest = manifest_path(dir, name);
        let _ = fs::remove_file(manifest);
    }
    Ok(())
}

#[cfg(test)]
fn read_whole(path: &Path) -> Result<datafusion::arrow::array::RecordBatch, HistoryError> {
    let file = fs::File::open(path).map_err(|e| HistoryError::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| HistoryError::parquet(path, e))?;
    let schema = reader.schema().clone();
    let batches = reader
        .build()
        .map_err(|e| HistoryError::parquet(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| HistoryError::parquet(path, e))?;
    datafusion::arrow::compute::concat_batches(&schema, &batches)
        .map_err(|e| HistoryError::parquet(path, e))
}

/// The visible Parquet files of a directory, by name.
fn parquet_files(dir: &Path) -> Result<Vec<String>, HistoryError> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map_err(|e| HistoryError::io(dir, e))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && n.ends_with(".parquet"))
        .collect();
    names.sort();
    Ok(names)
}

fn date_dirs(table: &Path) -> Result<Vec<std::path::PathBuf>, HistoryError> {
    let entries = match fs::read_dir(table) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(HistoryError::io(table, e)),
    };
    let mut dirs: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("date="))
        })
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// True when `dir` holds merged files (a write there must first forget what it replaces).
pub(super) fn has_merged(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(PREFIX))
    })
}

#[cfg(test)]
mod tests {
    use super::super::writer::write_parquet_raw;
    use super::*;
    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use std::sync::Arc;

    fn batch(values: &[i64]) -> RecordBatch {
        RecordBatch::try_from_iter(vec![(
            "n",
            Arc::new(Int64Array::from(values.to_vec())) as datafusion::arrow::array::ArrayRef,
        )])
        .expect("batch")
    }

    fn values(dir: &Path) -> Vec<i64> {
        let mut out = Vec::new();
        for name in parquet_files(dir).expect("list") {
            let b = read_whole(&dir.join(name)).expect("read");
            let col = b
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("i64");
            out.extend(col.values().iter().copied());
        }
        out.sort();
        out
    }

    /// A file written before a column was added merges with newer ones, that column null.
    #[test]
    fn files_of_an_older_schema_merge_with_the_column_null() {
        use datafusion::arrow::array::StringArray;
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("alerts/date=2024-03-01");
        write_parquet_raw(&dir, "alerts-old.parquet", &batch(&[1]), false).expect("old");
        // As the alerts schema declares it: the added column nullable.
        let newer = RecordBatch::try_from_iter_with_nullable(vec![
            (
                "n",
                Arc::new(Int64Array::from(vec![2])) as datafusion::arrow::array::ArrayRef,
                false,
            ),
            ("cause", Arc::new(StringArray::from(vec![Some("x")])), true),
        ])
        .expect("batch");
        write_parquet_raw(&dir, "alerts-new.parquet", &newer, false).expect("new");
        let report = compact(root.path(), Duration::ZERO).expect("compact");
        assert_eq!((report.files_written, report.skipped_mixed_schemas), (1, 0));
        let merged = read_whole(&dir.join(&parquet_files(&dir).expect("list")[0])).expect("read");
        assert_eq!(merged.num_columns(), 2);
        assert_eq!(
            merged.column(1).null_count(),
            1,
            "the old file's row has no cause"
        );
    }

    fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("access/date=2024-03-01");
        write_parquet_raw(&dir, "part-a-00001.parquet", &batch(&[1, 2]), false).expect("a");
        write_parquet_raw(&dir, "part-b-00001.parquet", &batch(&[3]), false).expect("b");
        write_parquet_raw(&dir, "part-c-00001.parquet", &batch(&[4, 5, 6]), false).expect("c");
        (root, dir)
    }

    #[test]
    fn merged_rows_of_a_run_can_be_forgotten() {
        let (root, dir) = setup();
        let report = compact(root.path(), Duration::ZERO).expect("compact");
        assert_eq!(
            (report.files_merged, report.files_written, report.rows),
            (3, 1, 6)
        );
        assert_eq!(parquet_files(&dir).expect("list").len(), 1);
        assert_eq!(values(&dir), [1, 2, 3, 4, 5, 6]);
        // Run b rewrites its file: its rows leave the merged file first.
        forget_locked(&dir, &|n| n == "part-b-00001.parquet").expect("forget");
        assert_eq!(values(&dir), [1, 2, 4, 5, 6]);
        write_parquet_raw(&dir, "part-b-00001.parquet", &batch(&[30]), false).expect("b again");
        // A second compaction merges the merged file with the new one, keeping the lineage.
        compact(root.path(), Duration::ZERO).expect("compact");
        assert_eq!(parquet_files(&dir).expect("list").len(), 1);
        forget_locked(&dir, &|n| n.starts_with("part-a-")).expect("forget a");
        assert_eq!(values(&dir), [4, 5, 6, 30]);
    }

    /// A crash after the merged file was renamed into place and before its sources were
    /// removed: recovery removes them. A crash before the rename: the lone manifest goes.
    #[test]
    fn an_interrupted_compaction_is_finished_or_dropped() {
        let (_root, dir) = setup();
        let inputs = parquet_files(&dir).expect("list");
        let manifest = Manifest {
            replaces: inputs.clone(),
            sources: vec![Source {
                name: "part-a-00001.parquet".into(),
                start: 0,
                end: 2,
            }],
        };
        write_manifest(&dir, "part-compacted-x.parquet", &manifest).expect("manifest");
        recover(&dir).expect("recover");
        assert!(!manifest_path(&dir, "part-compacted-x.parquet").exists());
        assert_eq!(
            parquet_files(&dir).expect("list"),
            inputs,
            "sources untouched"
        );

        write_manifest(&dir, "part-compacted-x.parquet", &manifest).expect("manifest");
        write_parquet_raw(&dir, "part-compacted-x.parquet", &batch(&[1, 2]), false).expect("m");
        recover(&dir).expect("recover");
        assert_eq!(
            parquet_files(&dir).expect("list"),
            ["part-compacted-x.parquet"],
            "the merged file supersedes what it replaces"
        );
    }
}
