//! A finished date's rows sorted, encoded and written on a thread of its own.
//!
//! Why: encoding Parquet (dictionary, snappy, the bloom filter) and the sort by patient were a
//! third of the reading thread's time in `detect` with the history store on (issue #18), and
//! that thread is what the run waits for; the engine's core is often idle meanwhile. One date
//! is handed over at a time, through a rendezvous channel: the writer waits for the thread to
//! take it, so at most one date more than before is in memory.

use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

use super::columns::{AccessColumns, TokenColumns};
use super::writer::write_parquet_atomic;
use super::HistoryError;

/// One date's rows of one table, and the file they go to.
pub(super) struct FileJob {
    pub dir: PathBuf,
    pub name: String,
    pub rows: TableRows,
}

pub(super) enum TableRows {
    Access(Box<AccessColumns>),
    Tokens(Box<TokenColumns>),
}

impl FileJob {
    fn write(self) -> Result<(), HistoryError> {
        let (batch, patient_bloom) = match self.rows {
            TableRows::Access(columns) => (columns.finish()?, true),
            TableRows::Tokens(columns) => (columns.finish()?, false),
        };
        write_parquet_atomic(&self.dir, &self.name, &batch, patient_bloom).map(|_| ())
    }
}

/// The thread that writes files, started with the first file and stopped by [`Flusher::wait`].
/// The first error stops it; the writer hears of it at its next file or at `wait`.
pub(super) struct Flusher {
    jobs: Option<SyncSender<FileJob>>,
    thread: Option<JoinHandle<Result<(), HistoryError>>>,
}

impl Flusher {
    pub fn new() -> Flusher {
        Flusher {
            jobs: None,
            thread: None,
        }
    }

    /// Hands `job` to the thread (starting it if needed), waiting until it takes the job.
    pub fn submit(&mut self, job: FileJob) -> Result<(), HistoryError> {
        let jobs = self.jobs.get_or_insert_with(|| {
            let (tx, rx) = sync_channel::<FileJob>(0);
            self.thread = Some(std::thread::spawn(move || {
                rx.into_iter().try_for_each(FileJob::write)
            }));
            tx
        });
        if jobs.send(job).is_ok() {
            return Ok(());
        }
        // The thread stopped on an error: that error is the answer.
        self.wait()?;
        Err(HistoryError::Arrow(
            "the history file thread stopped".into(),
        ))
    }

    /// Waits until every file handed over is written (or the first that failed).
    pub fn wait(&mut self) -> Result<(), HistoryError> {
        self.jobs = None;
        match self.thread.take().map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(e),
            Some(Err(_)) => Err(HistoryError::Arrow(
                "the history file thread panicked".into(),
            )),
        }
    }
}

impl Drop for Flusher {
    /// Files handed over are written even when the writer is dropped without `finish`; the
    /// error, if any, has nobody to go to then.
    fn drop(&mut self) {
        let _ = self.wait();
    }
}
