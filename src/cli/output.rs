//! Output files for the CLI: `-` for stdout, a path created on first write (so a run with
//! nothing to report leaves no empty file; `sinks::output`), and the paths a run writes.

pub use crate::sinks::output::Output;

/// The files and directories a run writes (`-` is stdout and left out), so it never reads them
/// back as input.
pub fn own_outputs(
    output: &super::output_args::OutputArgs,
    state: Option<&std::path::PathBuf>,
    history: &super::history_args::HistoryArgs,
) -> crate::ingest::OwnOutputs {
    let paths: Vec<std::path::PathBuf> = output
        .files()
        .into_iter()
        .flatten()
        .map(std::path::PathBuf::from)
        .chain(state.cloned())
        .chain(history.local_dir().cloned())
        .collect();
    crate::ingest::OwnOutputs::new(&paths)
}

/// `--data` of the commands that work on a local directory only (report, triage, silences,
/// compact, least-privilege, eval): a URL (`s3://bucket/prefix`, `gs://…`, `file://…`) is
/// refused with a usage error, as a path like `s3://x` would otherwise silently become the
/// local directory `./s3:/x`. detect, run and sql take `s3://` (`DataLocation`).
pub fn local_store(text: &str) -> Result<std::path::PathBuf, String> {
    match crate::sql::history::DataLocation::parse(text)? {
        crate::sql::history::DataLocation::Local(path) => Ok(path),
        crate::sql::history::DataLocation::ObjectStore(url) => Err(format!(
            "`{url}` is not supported here: this command reads a local directory (detect, run and sql take s3://bucket/prefix; copy the store locally for this one)"
        )),
    }
}
