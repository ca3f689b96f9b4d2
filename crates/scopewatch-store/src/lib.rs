//! The store: per-app baselines as Arrow tables and their Parquet snapshots (`baseline`), the
//! history store the drivers write and SQL over it with DataFusion (`sql`). Everything here
//! that touches Arrow, Parquet or DataFusion; the profiles themselves are the core's.

// The lower crates' modules, named as `crate::event`, `crate::ingest`, … inside this crate.
use scopewatch_core::{alert, detect, event, least_privilege, smart};
use scopewatch_ingest as ingest;

pub mod baseline;
pub mod sql;
