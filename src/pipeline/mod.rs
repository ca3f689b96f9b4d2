//! What connects sources, the detection core and sinks across runs. So far: the state
//! directory (checkpoints that let a later run, or a restarted service, continue exactly).

pub mod replay;
pub mod state_dir;

pub use replay::{replay, Progress, ReplayError};
pub use state_dir::{Checkpoint, StateDir, StateDirError};
