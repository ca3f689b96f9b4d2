//! `scopewatch compact`: merges the small files of the history store (one per checkpoint and
//! table and date in the streaming modes) into one file per table and date.

use std::path::PathBuf;
use std::time::Duration;

use super::Outcome;
use crate::sql::history::compact::compact;

#[derive(Debug, clap::Args)]
pub struct CompactArgs {
    /// History store to compact.
    #[arg(long, value_name = "DIR", default_value = super::defaults::DATA_DIR, value_parser = super::output::local_store)]
    pub data: PathBuf,

    /// Only files not modified for this many minutes are merged: a running service's newest
    /// segment is left alone.
    #[arg(long, value_name = "MINUTES", default_value_t = 60)]
    pub min_age_minutes: u64,
}

pub fn run(args: CompactArgs) -> anyhow::Result<Outcome> {
    if !args.data.is_dir() {
        anyhow::bail!(
            "--data {}: not a history store directory",
            args.data.display()
        );
    }
    let report = compact(&args.data, Duration::from_secs(args.min_age_minutes * 60))?;
    eprintln!(
        "compacted {} director{} of {}: {} files merged into {}, {} rows{}",
        report.directories,
        if report.directories == 1 { "y" } else { "ies" },
        args.data.display(),
        report.files_merged,
        report.files_written,
        report.rows,
        if report.skipped_mixed_schemas > 0 {
            format!(
                "; {} directories left alone (files of different schemas)",
                report.skipped_mixed_schemas
            )
        } else {
            String::new()
        }
    );
    Ok(Outcome::Clean)
}
