//! The history store on S3 or an S3-compatible server (`--data s3://bucket/prefix`).
//!
//! Writers (`detect`, `run`) write the store's files exactly as for a local directory, into a
//! private staging directory (`target.rs`), and publish them when they are complete: `detect`
//! at the end of the run, a service after each checkpoint's segment. Each file becomes one
//! object under the same relative key (a PUT is all or nothing, so a reader never sees half a
//! file). A re-run uploads its files first and then deletes the objects of the same run it did
//! not write again, so the run's rows are never missing. `sql` reads the objects in place
//! through DataFusion's object_store (`session.rs`).
//!
//! Credentials and endpoint: the AWS environment variables object_store reads
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
//! `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`, container and instance credentials); without a key in the
//! environment, the profile `AWS_PROFILE` (else `default`) of the shared credentials and config
//! files (`profile.rs`).

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use futures::TryStreamExt;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as Key;
use object_store::{
    ClientConfigKey, ObjectStore, ObjectStoreExt, PutMode, PutPayload, RetryConfig,
};

use super::location::StoreUrl;
use super::{is_run_file, HistoryError, RUN_TABLES};

pub struct RemoteStore {
    url: StoreUrl,
    store: Arc<dyn ObjectStore>,
    /// Object-store calls are async; the store's callers are not (and may run inside another
    /// runtime), so every call runs on this runtime from a thread of its own.
    runtime: tokio::runtime::Runtime,
}

impl RemoteStore {
    /// A client for the bucket of `url`, configured from the environment and AWS profile.
    pub fn client(url: &StoreUrl) -> Result<Arc<dyn ObjectStore>, HistoryError> {
        let builder = super::profile::apply(AmazonS3Builder::from_env())
            .map_err(|message| remote_error(url, message))?
            .with_bucket_name(url.bucket.clone())
            // Fail in seconds, not minutes: a service checkpoints while it waits (object_store's
            // default retries a request for up to 3 minutes).
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(30),
                ..RetryConfig::default()
            });
        // Timeouts only where the environment set none (replacing the client options would
        // also drop what it set, e.g. AWS_ALLOW_HTTP).
        let mut builder = builder;
        for (key, value) in [
            (ClientConfigKey::ConnectTimeout, "5s"),
            (ClientConfigKey::Timeout, "300s"),
        ] {
            let key = AmazonS3ConfigKey::Client(key);
            if builder.get_config_value(&key).is_none() {
                builder = builder.with_config(key, value);
            }
        }
        let store = builder.build().map_err(|e| remote_error(url, e))?;
        Ok(Arc::new(store))
    }

    /// A client for `url`, with a runtime of its own for synchronous callers.
    pub fn connect(url: &StoreUrl) -> Result<RemoteStore, HistoryError> {
        let store = Self::client(url)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("scopewatch-s3")
            .enable_all()
            .build()
            .map_err(|e| HistoryError::Arrow(format!("starting the object-store runtime: {e}")))?;
        Ok(RemoteStore {
            url: url.clone(),
            store,
            runtime,
        })
    }

    pub fn url(&self) -> &StoreUrl {
        &self.url
    }

    fn block<T: Send>(&self, work: impl Future<Output = T> + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| self.runtime.block_on(work))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Lists the store's prefix once, so a missing bucket, a wrong endpoint or refused
    /// credentials stop a writer before it reads anything (a GET of a missing bucket would
    /// read as "no such object").
    pub fn probe(&self) -> Result<(), HistoryError> {
        let prefix = Key::from(self.url.prefix.as_str());
        self.block(self.store.list_with_delimiter(Some(&prefix)))
            .map(|_| ())
            .map_err(|e| remote_error(&self.url, format!("cannot list the store: {e}")))
    }

    /// Writes the local file `from` as the object `relative` unless that object exists; when
    /// it does, true if it holds the same bytes. (Two writers starting at once on a new store
    /// agree on one marker: the second sees the first's.)
    pub fn claim(&self, relative: &str, from: &Path) -> Result<bool, HistoryError> {
        let bytes = std::fs::read(from).map_err(|e| HistoryError::io(from, e))?;
        let key = Key::from(self.url.key(relative));
        let payload = PutPayload::from(bytes.clone());
        let put = self.block(self.store.put_opts(&key, payload, PutMode::Create.into()));
        match put {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => {
                let have = self
                    .block(async { self.store.get(&key).await?.bytes().await })
                    .map_err(|e| remote_error(&self.url, e))?;
                Ok(have.as_ref() == bytes.as_slice())
            }
            Err(e) => Err(remote_error(&self.url, e)),
        }
    }

    /// Copies the object `relative` to the file `to`; false when there is no such object.
    pub fn fetch(&self, relative: &str, to: &Path) -> Result<bool, HistoryError> {
        let key = Key::from(self.url.key(relative));
        let got = self.block(async {
            match self.store.get(&key).await {
                Ok(found) => found.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        });
        match got.map_err(|e| remote_error(&self.url, e))? {
            Some(bytes) => {
                std::fs::write(to, &bytes).map_err(|e| HistoryError::io(to, e))?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Uploads the files under `staging` that run `run_id` wrote, and those of no run (the
    /// store's marker, baselines, dead letters), to the same relative key and deletes the local
    /// copy (dot files, unfinished, aside); then, with `replace`, deletes the objects of the
    /// run that this upload did not write again (a listing of the event and alert tables: once
    /// per `detect` run; a service's segment needs none, its earlier objects were removed when
    /// it opened). Another run's files wait for that run's own publish. Returns the objects
    /// written and deleted.
    pub fn publish(
        &self,
        staging: &Path,
        run_id: &str,
        replace: bool,
    ) -> Result<(u64, u64), HistoryError> {
        let mut files = Vec::new();
        collect_files(staging, staging, &mut files)?;
        let mut written = std::collections::BTreeSet::new();
        for (path, relative) in files {
            if !belongs_to(&relative, run_id) {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|e| HistoryError::io(&path, e))?;
            let key = Key::from(self.url.key(&relative));
            self.block(self.store.put(&key, PutPayload::from(bytes)))
                .map_err(|e| remote_error(&self.url, e))?;
            std::fs::remove_file(&path).map_err(|e| HistoryError::io(&path, e))?;
            written.insert(key.to_string());
        }
        let removed = match replace {
            true => self.remove_run_except(run_id, &written)?,
            false => 0,
        };
        Ok((written.len() as u64, removed))
    }

    /// Deletes the objects run `run_id` wrote to the event and alert tables (`remove_run`'s
    /// rule), except those named in `keep`. Returns how many were deleted.
    pub fn remove_run_except(
        &self,
        run_id: &str,
        keep: &std::collections::BTreeSet<String>,
    ) -> Result<u64, HistoryError> {
        let mut stale = Vec::new();
        for table in RUN_TABLES {
            let prefix = Key::from(self.url.key(table));
            let listed: Vec<_> = self
                .block(self.store.list(Some(&prefix)).try_collect::<Vec<_>>())
                .map_err(|e| remote_error(&self.url, e))?;
            stale.extend(
                listed
                    .into_iter()
                    .map(|meta| meta.location)
                    .filter(|key| key.filename().is_some_and(|n| is_run_file(n, run_id)))
                    .filter(|key| !keep.contains(key.as_ref())),
            );
        }
        for key in &stale {
            self.block(self.store.delete(key))
                .map_err(|e| remote_error(&self.url, e))?;
        }
        Ok(stale.len() as u64)
    }
}

/// Whether the staged file `relative` is published by run `run_id`'s publish.
fn belongs_to(relative: &str, run_id: &str) -> bool {
    let (table, name) = match (relative.split_once('/'), relative.rsplit_once('/')) {
        (Some((table, _)), Some((_, name))) => (table, name),
        _ => return true,
    };
    !RUN_TABLES.contains(&table) || is_run_file(name, run_id)
}

/// Every finished file under `dir`, with its `/`-separated path relative to `root`.
fn collect_files(
    root: &Path,
    dir: &Path,
    out: &mut Vec<(std::path::PathBuf, String)>,
) -> Result<(), HistoryError> {
    let entries = std::fs::read_dir(dir).map_err(|e| HistoryError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| HistoryError::io(dir, e))?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect_files(root, &path, out)?;
        } else if let Ok(relative) = path.strip_prefix(root) {
            let parts: Vec<_> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push((path.clone(), parts.join("/")));
        }
    }
    out.sort();
    Ok(())
}

fn remote_error(url: &StoreUrl, e: impl std::fmt::Display) -> HistoryError {
    HistoryError::Parquet {
        path: url.to_string(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publish_takes_its_own_run_files_and_the_shared_ones() {
        assert!(belongs_to("access/date=2024-03-04/part-r1-0.parquet", "r1"));
        assert!(belongs_to("alerts/date=2024-03-04/alerts-r1.parquet", "r1"));
        assert!(!belongs_to(
            "access/date=2024-03-04/part-r2-0.parquet",
            "r1"
        ));
        assert!(!belongs_to(
            "access/date=2024-03-04/part-r10-0.parquet",
            "r1"
        ));
        assert!(belongs_to("store.json", "r1"));
        assert!(belongs_to("baseline/baseline_hourly.parquet", "r1"));
        assert!(belongs_to("dead_letter/date=2024-03-04/x.parquet", "r1"));
    }
}
