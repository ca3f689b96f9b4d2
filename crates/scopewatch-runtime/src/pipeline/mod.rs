//! What connects sources, the detection core and sinks: batch replay, the streaming service's
//! per-partition workers, and the state directory (checkpoints that let a later run, or a
//! restarted service, continue exactly).

pub mod batch;
pub mod follow;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod latency;
pub mod metrics;
pub mod outputs;
pub mod partition;
mod process_metrics;
pub mod records;
pub mod replay;
pub mod state_dir;
pub mod state_lock;
pub mod stream_history;

pub use replay::{replay, Progress, ReplayError};
pub use state_dir::{Checkpoint, StateDir, StateDirError};
pub use state_lock::StateLock;
