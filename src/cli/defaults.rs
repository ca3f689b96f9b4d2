//! Every default the command line states, written once: commands and `--config` files share
//! these, and docs/cli.md shows them as clap renders them.

/// The history store a run writes and the store commands read.
pub const DATA_DIR: &str = "scopewatch-data";
/// Rejected records and late events (created only when one occurs).
pub const DEAD_LETTER_FILE: &str = "scopewatch-dead-letter.ndjson";
/// Alerts, and every other output a command writes by default: stdout.
pub const STDOUT: &str = "-";
/// Hours without a finding of its cause before an incident closes.
pub const INCIDENT_QUIET_HOURS: u32 = 24;
/// Time zone of seasonality (hours of the week, weekdays, days).
pub const TIMEZONE: &str = "UTC";
