//! Per-app baselines: profiles learned from events (`profile`), their statistics (`stats`)
//! and the local calendar they are counted in (`clock`). Their Arrow tables and Parquet
//! snapshots live in the `scopewatch` crate (`baseline::tables`, `baseline::snapshot`), so
//! this crate needs no I/O stack.

pub mod clock;
pub mod profile;
pub mod stats;

pub use clock::LocalClock;
pub use profile::{
    day_number, hour_of_week, seasonal_slot, AppProfile, Seen, SeenMap, BUSIEST_MIN_OBSERVATIONS,
    DEFAULT_LEARNING_DAYS, ESTABLISHED_AFTER_DAYS, SEASONAL_SLOTS,
};
pub use stats::{LogHistogram, SlotStats};

use std::collections::BTreeMap;

use crate::event::Text;

/// All app profiles, by client id.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Baselines {
    pub apps: BTreeMap<Text, AppProfile>,
}
