//! Where a writing command (`detect`, `run`) puts the store's files: the `--data` directory
//! itself, or, for an object store, a private staging directory published after each complete
//! write (`remote.rs`).

use std::path::{Path, PathBuf};

use super::location::DataLocation;
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
    /// Prepares `location` for writing. For an object store: connects, and copies the store's
    /// marker into the staging directory so the pseudonymisation check reads it.
    pub fn open(location: &DataLocation) -> Result<StoreTarget, HistoryError> {
        match location {
            DataLocation::Local(dir) => Ok(StoreTarget {
                dir: dir.clone(),
                #[cfg(feature = "s3")]
                remote: None,
            }),
            #[cfg(feature = "s3")]
            DataLocation::ObjectStore(url) => {
                let staging = tempfile::Builder::new()
                    .prefix("scopewatch-staging-")
                    .tempdir()
                    .map_err(|e| HistoryError::io(&std::env::temp_dir(), e))?;
                let store = super::remote::RemoteStore::connect(url)?;
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

    /// Publishes what run `run_id` wrote (nothing to do for a local directory): every staged
    /// file uploaded, then the run's older objects it did not rewrite deleted. Returns the
    /// objects uploaded and deleted.
    pub fn publish(&self, run_id: &str) -> Result<(u64, u64), HistoryError> {
        #[cfg(feature = "s3")]
        if let Some(remote) = &self.remote {
            let _one = remote
                .publishing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            return remote.store.publish(&self.dir, run_id);
        }
        let _ = run_id;
        Ok((0, 0))
    }

    /// Removes what run `run_id` wrote before (a segment rewritten after a crash).
    pub fn remove_run(&self, run_id: &str) -> Result<u64, HistoryError> {
        #[cfg(feature = "s3")]
        if let Some(remote) = &self.remote {
            return remote.store.remove_run_except(run_id, &Default::default());
        }
        super::remove_run(&self.dir, run_id)
    }
}
