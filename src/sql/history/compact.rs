//! `scopewatch compact`: merges the many small files of a table's date directory (a streaming
//! service writes one per checkpoint) into one, `part-compacted-<id>.parquet`.
//!
//! A run's files stay replaceable after they were merged: a dot-prefixed manifest beside the
//! merged file (`.part-compacted-<id>.json`, which readers skip) lists which rows came from
//! which original file. When a run writes a file of that name again (a `detect` re-run over the
//! same inputs, a service rewriting an interrupted segment) or removes its files, the merged
//! file is rewritten without those rows first, so no row is ever stored twice.
//!
//! Crash safety: the manifest of a new merged file is written first (invisible), then the
//! merged file is renamed into place, then the files it replaces are removed. A crash between
//! the last two steps leaves both visible until the next compaction or write in that directory
//! finishes the removal (`recover`); a crash before the rename leaves only a manifest, which is
//! dropped.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::concat_batches;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

use super::writer::write_parquet_raw;
use super::HistoryError;

const PREFIX: &str = "part-compacted-";
/// The tables whose date directories are compacted.
pub const TABLES: [&str; 4] = ["access", "tokens", "alerts", "dead_letter"];

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

/// Merges, in every date directory of the event and alert tables, the files not modified for
/// `min_age` into one file.
pub fn compact(data: &Path, min_age: Duration) -> Result<CompactReport, HistoryError> {
    let mut report = CompactReport::default();
    for table in TABLES {
        for dir in date_dirs(&data.join(table))? {
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
/// were rewritten.
pub(super) fn forget(dir: &Path, drop: &dyn Fn(&str) -> bool) -> Result<u64, HistoryError> {
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

/// Merges `inputs` (plain or merged files of `dir`) into one file without the rows of the
/// original files `drop` selects; returns the rows written (None: schemas differ, nothing done).
fn rewrite(
    dir: &Path,
    inputs: &[String],
    drop: &dyn Fn(&str) -> bool,
) -> Result<Option<usize>, HistoryError> {
    let mut pieces: Vec<(String, RecordBatch)> = Vec::new();
    for name in inputs {
        let whole = read_whole(&dir.join(name))?;
        let sources = if name.starts_with(PREFIX) {
            read_manifest(dir, name)?.sources
        } else {
            vec![Source {
                name: name.clone(),
                start: 0,
                end: whole.num_rows(),
            }]
        };
        for s in sources {
            let len = s.end.saturating_sub(s.start);
            if s.end > whole.num_rows() {
                return Err(HistoryError::Arrow(format!(
                    "{}: manifest names rows {}..{} of {} rows",
                    dir.join(name).display(),
                    s.start,
                    s.end,
                    whole.num_rows()
                )));
            }
            if !drop(&s.name) {
                pieces.push((s.name, whole.slice(s.start, len)));
            }
        }
    }
    let schemas: BTreeSet<String> = pieces
        .iter()
        .map(|(_, b)| format!("{:?}", b.schema().fields()))
        .collect();
    if schemas.len() > 1 {
        return Ok(None);
    }
    let mut manifest = Manifest {
        replaces: inputs.to_vec(),
        sources: Vec::new(),
    };
    let mut at = 0;
    for (name, batch) in &pieces {
        manifest.sources.push(Source {
            name: name.clone(),
            start: at,
            end: at + batch.num_rows(),
        });
        at += batch.num_rows();
    }
    let ids: Vec<&str> = manifest.sources.iter().map(|s| s.name.as_str()).collect();
    let merged_name = format!("{PREFIX}{}.parquet", &crate::alert::stable_id(&ids)[..16]);
    if at > 0 {
        if inputs.len() == 1 && inputs[0] == merged_name {
            return Ok(Some(at)); // already exactly this
        }
        write_manifest(dir, &merged_name, &manifest)?;
        let schema = pieces[0].1.schema();
        let batches: Vec<RecordBatch> = pieces.into_iter().map(|(_, b)| b).collect();
        let merged =
            concat_batches(&schema, &batches).map_err(|e| HistoryError::Arrow(e.to_string()))?;
        let bloom = merged.schema().column_with_name("patient").is_some();
        write_parquet_raw(dir, &merged_name, &merged, bloom)?;
    }
    for name in inputs.iter().filter(|n| **n != merged_name) {
        remove_with_manifest(dir, name)?;
    }
    Ok(Some(at))
}

/// Finishes what an interrupted compaction left: a merged file in place supersedes the files
/// its manifest replaces; a manifest without its merged file is dropped.
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
    fs::write(&tmp, text).map_err(|e| HistoryError::io(&tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| HistoryError::io(&path, e))
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

fn read_whole(path: &Path) -> Result<RecordBatch, HistoryError> {
    let file = fs::File::open(path).map_err(|e| HistoryError::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| HistoryError::parquet(path, e))?;
    let schema = reader.schema().clone();
    let batches = reader
        .build()
        .map_err(|e| HistoryError::parquet(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| HistoryError::parquet(path, e))?;
    concat_batches(&schema, &batches).map_err(|e| HistoryError::parquet(path, e))
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
    use super::*;
    use datafusion::arrow::array::Int64Array;
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
        forget(&dir, &|n| n == "part-b-00001.parquet").expect("forget");
        assert_eq!(values(&dir), [1, 2, 4, 5, 6]);
        write_parquet_raw(&dir, "part-b-00001.parquet", &batch(&[30]), false).expect("b again");
        // A second compaction merges the merged file with the new one, keeping the lineage.
        compact(root.path(), Duration::ZERO).expect("compact");
        assert_eq!(parquet_files(&dir).expect("list").len(), 1);
        forget(&dir, &|n| n.starts_with("part-a-")).expect("forget a");
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
