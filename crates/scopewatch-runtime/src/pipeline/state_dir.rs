//! The state directory: checkpoints of the detection core, each one complete or absent.
//!
//! Layout (one generation per checkpoint; `CURRENT` names the live one):
//!
//! ```text
//! <state>/STREAM_ID                    this directory's id (names its history segments)
//! <state>/CURRENT                      "gen-000042\n"
//! <state>/gen-000042/engine.json       buffered events, tokens, incidents, … (EngineState)
//! <state>/gen-000042/positions.json    source → position (file offsets, Kafka offsets)
//! <state>/gen-000042/baseline/*.parquet  the baseline tables
//! ```
//!
//! A checkpoint is written into `gen-N.tmp/`, synced, renamed to `gen-N/`, and only then does
//! `CURRENT` (written to a temp file and renamed) point at it; older generations are removed
//! afterwards. A crash at any step leaves the previous checkpoint readable. The state holds PHI
//! (launch patients, buffered events): files are created owner-only on Unix.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::baseline::{read_snapshot, write_snapshot, Baselines, SnapshotError};
use crate::detect::EngineState;

const CURRENT: &str = "CURRENT";
const STREAM_ID: &str = "STREAM_ID";
const ENGINE_FILE: &str = "engine.json";
const POSITIONS_FILE: &str = "positions.json";

#[derive(Debug, Error)]
pub enum StateDirError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: String, message: String },
    #[error(transparent)]
    Baseline(#[from] SnapshotError),
    #[error("cannot continue from the checkpoint: {0}")]
    Restore(String),
    /// Writing the history store segment that a checkpoint covers failed.
    #[error("history store: {0}")]
    History(String),
    #[error("state directory {0} is in use by another scopewatch run (its LOCK is held): stop that run, or give this one another --state")]
    Locked(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateDirError + '_ {
    move |source| StateDirError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Everything a checkpoint holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub baselines: Baselines,
    pub engine: EngineState,
    /// Where each source had been read up to (its name → byte offset or Kafka offset).
    pub positions: BTreeMap<String, u64>,
}

#[derive(Serialize, Deserialize)]
struct Positions {
    positions: BTreeMap<String, u64>,
}

pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> StateDir {
        StateDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The live generation's number, if there is one.
    fn current(&self) -> Result<Option<u64>, StateDirError> {
        let path = self.root.join(CURRENT);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        };
        parse_generation(text.trim())
            .map(Some)
            .ok_or_else(|| StateDirError::Format {
                path: path.display().to_string(),
                message: format!("expected a generation name like gen-000001, found {text:?}"),
            })
    }

    /// This state directory's identity, created on first use and kept in `STREAM_ID`: it names
    /// the stream's history segments, the same for every instance that mounts the directory
    /// (wherever it is mounted) and different for every other state directory.
    pub fn stream_id(&self) -> Result<String, StateDirError> {
        let path = self.root.join(STREAM_ID);
        match fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_string()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&path)(e)),
        }
        fs::create_dir_all(&self.root).map_err(io(&self.root))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let seed = format!("{now}:{}:{}", std::process::id(), self.root.display());
        let id = crate::alert::stable_id(&[&seed])[..16].to_string();
        let tmp = self.root.join(format!(".{STREAM_ID}.tmp"));
        write_synced(&tmp, format!("{id}\n").as_bytes())?;
        fs::rename(&tmp, &path).map_err(io(&path))?;
        sync_dir(&self.root)?;
        Ok(id)
    }

    /// The live checkpoint's generation number (0 when there is none yet).
    pub fn generation(&self) -> Result<u64, StateDirError> {
        Ok(self.current()?.unwrap_or(0))
    }

    /// The directory of the live checkpoint, if there is one.
    pub fn current_dir(&self) -> Result<Option<PathBuf>, StateDirError> {
        Ok(self.current()?.map(|n| self.root.join(generation_name(n))))
    }

    /// Reads the live checkpoint; None when the directory holds none yet.
    pub fn load(&self) -> Result<Option<Checkpoint>, StateDirError> {
        let Some(dir) = self.current_dir()? else {
            return Ok(None);
        };
        let baselines = read_snapshot(&dir)?.ok_or_else(|| StateDirError::Format {
            path: dir.display().to_string(),
            message: "checkpoint has no baseline tables".into(),
        })?;
        let engine: EngineState = read_json(&dir.join(ENGINE_FILE))?;
        let positions: Positions = read_json(&dir.join(POSITIONS_FILE))?;
        Ok(Some(Checkpoint {
            baselines,
            engine,
            positions: positions.positions,
        }))
    }

    /// Writes a new checkpoint and makes it the live one; returns its directory.
    pub fn save(&self, checkpoint: &Checkpoint) -> Result<PathBuf, StateDirError> {
        fs::create_dir_all(&self.root).map_err(io(&self.root))?;
        let next = self.current()?.map_or(1, |n| n + 1);
        let name = generation_name(next);
        let tmp = self.root.join(format!("{name}.tmp"));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        write_snapshot(&tmp, &checkpoint.baselines)?;
        write_json(&tmp.join(ENGINE_FILE), &checkpoint.engine)?;
        write_json(
            &tmp.join(POSITIONS_FILE),
            &Positions {
                positions: checkpoint.positions.clone(),
            },
        )?;
        let dir = self.root.join(&name);
        fs::rename(&tmp, &dir).map_err(io(&dir))?;
        let current_tmp = self.root.join(format!(".{CURRENT}.tmp"));
        write_synced(&current_tmp, format!("{name}\n").as_bytes())?;
        let current = self.root.join(CURRENT);
        fs::rename(&current_tmp, &current).map_err(io(&current))?;
        sync_dir(&self.root)?;
        self.remove_older_than(next)?;
        Ok(dir)
    }

    /// Removes generations (and abandoned temp directories) older than `keep`.
    fn remove_older_than(&self, keep: u64) -> Result<(), StateDirError> {
        for entry in fs::read_dir(&self.root).map_err(io(&self.root))? {
            let entry = entry.map_err(io(&self.root))?;
            let file_name = entry.file_name();
            let name = file_name.to_string_lossy();
            let generation = parse_generation(name.trim_end_matches(".tmp"));
            if generation.is_some_and(|n| n < keep) {
                let path = entry.path();
                fs::remove_dir_all(&path).map_err(io(&path))?;
            }
        }
        Ok(())
    }
}

fn generation_name(n: u64) -> String {
    format!("gen-{n:06}")
}

fn parse_generation(name: &str) -> Option<u64> {
    name.strip_prefix("gen-")?.parse().ok()
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, StateDirError> {
    let file = File::open(path).map_err(io(path))?;
    serde_json::from_reader(std::io::BufReader::new(file)).map_err(|e| StateDirError::Format {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StateDirError> {
    let bytes = serde_json::to_vec(value).map_err(|e| StateDirError::Format {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    write_synced(path, &bytes)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), StateDirError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

fn sync_dir(dir: &Path) -> Result<(), StateDirError> {
    // Makes the renames durable; directories cannot be opened for sync on every platform.
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{Engine, EngineConfig};
    use crate::registry::Registry;

    fn checkpoint(position: u64) -> Checkpoint {
        let engine = Engine::new(EngineConfig::default(), Registry::default());
        Checkpoint {
            baselines: Baselines::default(),
            engine: engine.snapshot(),
            positions: BTreeMap::from([("events.ndjson".to_string(), position)]),
        }
    }

    #[test]
    fn save_then_load_gives_the_latest_checkpoint_and_keeps_one_generation() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("state"));
        assert_eq!(state.load().unwrap(), None);
        state.save(&checkpoint(10)).unwrap();
        let second = state.save(&checkpoint(20)).unwrap();
        assert!(second.ends_with("gen-000002"));
        assert_eq!(state.load().unwrap(), Some(checkpoint(20)));
        let mut names: Vec<String> = fs::read_dir(state.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["CURRENT", "gen-000002"]);
        let id = state.stream_id().unwrap();
        assert_eq!(id.len(), 16);
        assert_eq!(StateDir::new(state.root()).stream_id().unwrap(), id, "kept");
        assert_ne!(
            StateDir::new(dir.path().join("other")).stream_id().unwrap(),
            id,
            "another state directory is another stream"
        );
    }

    #[test]
    fn an_interrupted_save_leaves_the_previous_checkpoint_live() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        state.save(&checkpoint(10)).unwrap();
        // A crash after writing part of the next generation: a temp dir with a broken file.
        let tmp = dir.path().join("gen-000002.tmp");
        fs::create_dir_all(&tmp).unwrap();
        fs::write(tmp.join(ENGINE_FILE), b"{\"version\":").unwrap();
        assert_eq!(state.load().unwrap(), Some(checkpoint(10)));
        // The next save replaces the abandoned temp directory.
        state.save(&checkpoint(30)).unwrap();
        assert_eq!(state.load().unwrap(), Some(checkpoint(30)));
        assert!(!tmp.exists());
    }

    #[test]
    fn a_damaged_checkpoint_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let live = state.save(&checkpoint(10)).unwrap();
        fs::write(live.join(ENGINE_FILE), b"{\"version\":1").unwrap();
        let e = state.load().unwrap_err().to_string();
        assert!(e.contains("engine.json"), "{e}");
        fs::write(dir.path().join(CURRENT), b"nonsense").unwrap();
        let e = state.load().unwrap_err().to_string();
        assert!(e.contains("CURRENT") && e.contains("gen-000001"), "{e}");
    }
}
