//! Per-app baselines: profiles learned from events (`profile`), held as Arrow tables
//! (`tables`) and snapshotted to Parquet (`snapshot`).

pub mod clock;
pub mod profile;
pub mod snapshot;
pub mod stats;
pub mod tables;

pub use clock::LocalClock;
pub use profile::{
    day_number, hour_of_week, seasonal_slot, AppProfile, Seen, SeenMap, DEFAULT_LEARNING_DAYS,
    ESTABLISHED_AFTER_DAYS, SEASONAL_SLOTS,
};
pub use snapshot::{read_snapshot, write_snapshot, SnapshotError};
pub use stats::{LogHistogram, SlotStats};
pub use tables::{table_names, Baselines};
