//! Where a writing command (`detect`, `run`) puts the store's files: the `--data` directory
//! itself, or, for an object store, a private staging directory published after each complete
//! write (`remote.rs`).

use std::path::{Path, PathBuf};

use super::location::DataLocation;
use super::pseudonym::{check_store, Pseudonymizer};
use super::HistoryError;

pub struct StoreTarget {
    dir: PathBuf,
    #[cfg(feature = "s3")]
    remote: Option<Remote>,
}

#[cfg(feature = "s3")]
struct Remote {
    store: super::remote::RemoteStore,
    /// One publish at a time (a service's partitions share the staging directory).
    publishing: std::sync::Mutex<()>,
    /// Owner-only (it holds patient ids until published), removed when the command ends.
    _staging: tempfile::TempDir,
}

impl std::fmt::Debug for StoreTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreTarget")
            .field("dir", &self.dir)
            .finish()
    }
}

impl StoreTarget {
    /// Prepares `location` for writing. For an object store: checks that the store can be
    /// listed, and copies its marker into the staging directory for [`Self::check_store`].
    pub fn open(location: &DataLocation) -> Result<StoreTarget, HistoryError> {
        match location {
            DataLocation::Local(dir) => Ok(StoreTarget {
                dir: dir.clone(),
                #[cfg(feature = "s3")]
                remote: None,
            }),
            #[cfg(feature = "s3")]
            DataLocation::ObjectStore(url) => {
                let store = super::remote::RemoteStore::connect(url)?;
                store.probe()?;
                let staging = staging::create()?;
                let marker = super::pseudonym::MARKER;
                store.fetch(marker, &staging.path().join(marker))?;
                Ok(StoreTarget {
                    dir: staging.path().to_path_buf(),
                    remote: Some(Remote {
                        store,
                        publishing: std::sync::Mutex::new(()),
                        _staging: staging,
                    }),
                })
            }
            #[cfg(not(feature = "s3"))]
            DataLocation::ObjectStore(url) => Err(HistoryError::Parquet {
                path: url.to_string(),
                message:
                    "this build has no object-store support (build with the cargo feature `s3`)"
                        .to_string(),
            }),
        }
    }

    /// The directory the store's files are written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Refuses a store whose patient ids are written otherwise than this run would write them
    /// (`pseudonym::check_store`). On an object store the marker is claimed at once, so two
    /// writers starting together on a new store cannot write it two ways.
    pub fn check_store(&self, pseudonymizer: Option<&Pseudonymizer>) -> Result<(), HistoryError> {
        check_store(&self.dir, pseudonymizer)?;
        #[cfg(feature = "s3")]
        if let Some(remote) = &self.remote {
            let marker = super::pseudonym::MARKER;
            if !remote.store.claim(marker, &self.dir.join(marker))? {
                return Err(HistoryError::Record {
                    path: remote.store.url().url_of(marker),
                    line: 1,
                    message: "another writer created this store with other patient-id settings at the same time: use another --data prefix"
                        .to_string(),
                });
            }
        }
        Ok(())
    }

    /// Publishes what run `run_id` wrote and deletes the run's older objects it did not
    /// rewrite (nothing to do for a local directory): a `detect` run. Returns the objects
    /// uploaded and deleted.
    pub fn publish(&self, run_id: &str) -> Result<(u64, u64), HistoryError> {
        self.publish_with(run_id, true)
    }

    /// Publishes a service's segment: its objects were removed when it opened, so no listing.
    pub fn publish_segment(&self, segment: &str) -> Result<(u64, u64), HistoryError> {
        self.publish_with(segment, false)
    }

    fn publish_with(&self, run_id: &str, replace: bool) -> Result<(u64, u64), HistoryError> {
        #[cfg(feature = "s3")]
        if let Some(remote) = &self.remote {
            let _one = remote
                .publishing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            return remote.store.publish(&self.dir, run_id, replace);
        }
        let _ = (run_id, replace);
        Ok((0, 0))
    }

    /// Removes what run `run_id` wrote before (a segment rewritten after a crash): its
    /// objects, and anything of it still staged.
    pub fn remove_run(&self, run_id: &str) -> Result<u64, HistoryError> {
        let staged = super::remove_run(&self.dir, run_id)?;
        #[cfg(feature = "s3")]
        if let Some(remote) = &self.remote {
            return Ok(staged
                + remote
                    .store
                    .remove_run_except(run_id, &Default::default())?);
        }
        Ok(staged)
    }
}

/// Staging directories: `scopewatch-staging-<pid>-…` under the temporary directory. A process
/// killed before its end leaves its directory (and the patient ids in it) behind; the next
/// writer removes those of processes that no longer run.
#[cfg(feature = "s3")]
mod staging {
    use super::HistoryError;

    const PREFIX: &str = "scopewatch-staging-";

    pub fn create() -> Result<tempfile::TempDir, HistoryError> {
        let root = std::env::temp_dir();
        sweep(&root);
        tempfile::Builder::new()
            .prefix(&format!("{PREFIX}{}-", std::process::id()))
            .tempdir_in(&root)
            .map_err(|e| HistoryError::io(&root, e))
    }

    fn sweep(root: &std::path::Path) {
        let Ok(entries) = std::fs::read_dir(root) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix(PREFIX))
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<i32>().ok())
            else {
                continue;
            };
            if !alive(pid) {
                // Another user's directory cannot be removed (0700): that is fine.
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }

    fn alive(pid: i32) -> bool {
        // SAFETY: kill with signal 0 sends nothing; it only checks that the process exists.
        let r = unsafe { libc::kill(pid, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
}
