//! Baseline snapshots: one Parquet file per baseline table in `<state>/baseline/`, each written
//! to a temporary file and renamed into place, so a crash never leaves a half-written table.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use datafusion::arrow::array::RecordBatch;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::arrow::ArrowWriter;
use thiserror::Error;

use super::tables::{table_names, BaselineTables};
use super::Baselines;

#[derive(Debug, Error)]
pub enum SnapshotError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: String, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn format(path: &Path, e: impl std::fmt::Display) -> SnapshotError {
    SnapshotError::Format {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn baseline_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("baseline")
}

/// Writes every baseline table as `<state>/baseline/<table>.parquet`.
pub fn write_snapshot(state_dir: &Path, baselines: &Baselines) -> Result<(), SnapshotError> {
    let dir = baseline_dir(state_dir);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    for (name, batch) in baselines.to_batches().map_err(|e| format(&dir, e))? {
        let path = dir.join(format!("{name}.parquet"));
        let tmp = dir.join(format!(".{name}.parquet.tmp"));
        write_parquet(&tmp, &batch)?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
    }
    Ok(())
}

fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<(), SnapshotError> {
    let file = File::create(path).map_err(io(path))?;
    let mut writer =
        ArrowWriter::try_new(file, batch.schema(), None).map_err(|e| format(path, e))?;
    writer.write(batch).map_err(|e| format(path, e))?;
    let file = writer.into_inner().map_err(|e| format(path, e))?;
    file.sync_all().map_err(io(path))
}

/// Reads a snapshot back; None when the state directory holds no baseline snapshot.
pub fn read_snapshot(state_dir: &Path) -> Result<Option<Baselines>, SnapshotError> {
    let dir = baseline_dir(state_dir);
    if !dir.join("baseline_apps.parquet").exists() {
        return Ok(None);
    }
    let mut tables: BTreeMap<String, Vec<RecordBatch>> = BTreeMap::new();
    for name in table_names() {
        let path = dir.join(format!("{name}.parquet"));
        let file = File::open(&path).map_err(io(&path))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.build())
            .map_err(|e| format(&path, e))?;
        let batches = reader
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format(&path, e))?;
        tables.insert(name.to_string(), batches);
    }
    Baselines::from_batches(&tables)
        .map(Some)
        .map_err(|e| format(&dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parquet_round_trip_is_exact_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_snapshot(dir.path()).unwrap(), None);
        let b = super::super::tables::tests::sample();
        write_snapshot(dir.path(), &b).unwrap();
        assert_eq!(read_snapshot(dir.path()).unwrap(), Some(b.clone()));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("baseline"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        // Overwriting an existing snapshot works too.
        write_snapshot(dir.path(), &Baselines::default()).unwrap();
        assert_eq!(
            read_snapshot(dir.path()).unwrap(),
            Some(Baselines::default())
        );
    }

    #[test]
    fn a_corrupt_table_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        write_snapshot(dir.path(), &super::super::tables::tests::sample()).unwrap();
        let path = dir.path().join("baseline/baseline_scopes.parquet");
        std::fs::write(&path, b"not parquet").unwrap();
        let e = read_snapshot(dir.path()).unwrap_err().to_string();
        assert!(e.contains("baseline_scopes.parquet"), "{e}");
    }
}
