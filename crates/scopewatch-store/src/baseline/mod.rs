//! Per-app baselines as Arrow tables (`tables`) and their Parquet snapshots (`snapshot`). The
//! profiles themselves and their statistics are the core crate's (`scopewatch_core::baseline`),
//! re-exported here so `scopewatch::baseline` names both.

pub use scopewatch_core::baseline::*;

pub mod snapshot;
pub mod tables;

pub use snapshot::{read_snapshot, write_snapshot, SnapshotError};
pub use tables::{table_names, BaselineTables};
