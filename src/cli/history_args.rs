//! The history store flags of the runs that write it (`detect`, `run`).

use anyhow::Context as _;

use super::defaults;
use super::pseudonym_args::PseudonymArgs;
use crate::pipeline::stream_history::HistorySettings;
use crate::sql::history::{DataLocation, StoreTarget};

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// History store for `scopewatch sql`: accepted events, alerts, dead letters and
    /// baselines as Hive-partitioned Parquet, in a directory or under `s3://bucket/prefix`.
    /// A batch run replaces its own files when re-run over the same inputs (to an object
    /// store: staged locally, uploaded at the end); the Kafka and --follow modes write each
    /// checkpoint's rows once across crashes and restarts (uploaded at each checkpoint).
    #[arg(long, value_name = "DIR|URL", default_value = defaults::DATA_DIR, value_parser = DataLocation::parse)]
    pub data: DataLocation,

    /// Do not write the history store.
    #[arg(long)]
    pub no_history: bool,

    #[command(flatten)]
    pub pseudonym: PseudonymArgs,
}

impl HistoryArgs {
    /// The store, opened and checked before anything is read (None with --no-history).
    pub fn settings(&self, fhir_base: Option<&str>) -> anyhow::Result<Option<HistorySettings>> {
        if self.no_history {
            return Ok(None);
        }
        let pseudonymizer = self.pseudonym.load()?;
        let store = StoreTarget::open(&self.data).context("opening the history store")?;
        store.check_store(pseudonymizer.as_ref())?;
        Ok(Some(HistorySettings {
            store: std::sync::Arc::new(store),
            fhir_base: fhir_base.map(str::to_owned),
            pseudonymizer,
        }))
    }

    /// A local store directory, which an input directory must not read back.
    pub fn local_dir(&self) -> Option<&std::path::PathBuf> {
        self.data.local().filter(|_| !self.no_history)
    }
}
