//! Errors that stop ingestion as a whole (bad lines never do: they are dead-lettered).

use thiserror::Error;

#[derive(Debug, Error)]
pub enum IngestError {
    #[error("no input given (name files, directories, or - for stdin)")]
    NoInputs,
    #[error("stdin (-) named more than once")]
    StdinTwice,
    #[error("cannot open {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot list {path}: {source}")]
    Walk {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the dead-letter output: {0}")]
    DeadLetter(#[source] std::io::Error),
}
