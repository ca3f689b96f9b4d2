//! What connects sources, the detection core and sinks across runs. So far: the state
//! directory (checkpoints that let a later run, or a restarted service, continue exactly).

pub mod state_dir;

pub use state_dir::{Checkpoint, StateDir, StateDirError};
