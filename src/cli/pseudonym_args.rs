//! The pseudonymisation key flags shared by `detect` (which writes the history store) and
//! `sql` (which offers `pseudonym(id)` for lookups in a pseudonymised store).

use std::path::PathBuf;

use anyhow::Context as _;

use crate::sql::history::Pseudonymizer;

#[derive(Debug, Clone, clap::Args)]
pub struct PseudonymArgs {
    /// Pseudonymise patient ids in the history store with the key in this environment
    /// variable (keyed HMAC-SHA256; at least 16 bytes). URLs are then stored as their id-free
    /// shape and dead-letter raw lines are left out of the store.
    #[arg(long, value_name = "VAR", conflicts_with = "pseudonymize_key_file")]
    pub pseudonymize_key_env: Option<String>,

    /// As --pseudonymize-key-env, with the key read from FILE.
    #[arg(long, value_name = "FILE")]
    pub pseudonymize_key_file: Option<PathBuf>,
}

impl PseudonymArgs {
    pub fn load(&self) -> anyhow::Result<Option<Pseudonymizer>> {
        let key = match (&self.pseudonymize_key_env, &self.pseudonymize_key_file) {
            (Some(var), _) => std::env::var(var)
                .with_context(|| {
                    format!("--pseudonymize-key-env: environment variable {var} is not set")
                })?
                .into_bytes(),
            (None, Some(file)) => std::fs::read(file)
                .with_context(|| format!("--pseudonymize-key-file: reading {}", file.display()))?,
            (None, None) => return Ok(None),
        };
        Pseudonymizer::new(&key)
            .map(Some)
            .map_err(|e| anyhow::anyhow!(e))
    }
}
