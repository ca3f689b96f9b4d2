//! Per-app baselines: profiles learned from events (`profile`), held as Arrow tables
//! (`tables`) and snapshotted to Parquet (`snapshot`).

pub mod profile;
pub mod snapshot;
pub mod tables;

pub use profile::{
    day_number, AppProfile, Seen, SeenMap, DEFAULT_LEARNING_DAYS, ESTABLISHED_AFTER_DAYS,
};
pub use snapshot::{read_snapshot, write_snapshot, SnapshotError};
pub use tables::{table_names, Baselines};
