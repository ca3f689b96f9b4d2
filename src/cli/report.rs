//! `scopewatch report`: the HTML report over the history store (`crate::report` draws it; this
//! file parses flags and writes the file).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;

use super::least_privilege::parse_time;
use super::Outcome;
use crate::event::Timestamp;
use crate::report::{build, ReportOptions};
use crate::sql::usage::TimeWindow;

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// History store written by `detect --data` or `run --data`.
    #[arg(long, value_name = "DIR", default_value = super::defaults::DATA_DIR, value_parser = super::output::local_store)]
    pub data: PathBuf,

    /// The HTML file to write (replaced whole; readable by its owner only).
    #[arg(
        long = "out-file",
        value_name = "FILE",
        default_value = "scopewatch-report.html"
    )]
    pub out_file: PathBuf,

    /// Only incidents, grants and requests at or after this time (RFC 3339, or a date).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<Timestamp>,

    /// Only incidents, grants and requests before this time (RFC 3339, or a date).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<Timestamp>,

    /// Incidents drawn with their evidence plots (by severity, then time); the rest are listed.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub max_plots: usize,

    /// FHIR base URL the access log's absolute URLs start with (as given to `detect`).
    #[arg(long, value_name = "URL")]
    pub fhir_base: Option<String>,
}

pub fn run(args: ReportArgs) -> anyhow::Result<Outcome> {
    if !args.data.is_dir() {
        anyhow::bail!(
            "--data {}: not a history store directory",
            args.data.display()
        );
    }
    let started = Instant::now();
    let options = ReportOptions {
        window: TimeWindow {
            since: args.since,
            until: args.until,
        },
        max_plots: args.max_plots,
        fhir_base: args.fhir_base.clone(),
    };
    let report = build(&args.data, &options)?;
    write_private(&args.out_file, report.html.as_bytes())?;
    eprintln!(
        "report: {} incident(s) ({} drawn), {} app(s), {} KiB in {:.1} s, written to {}",
        report.incidents,
        report.plotted,
        report.apps,
        report.html.len().div_ceil(1024),
        started.elapsed().as_secs_f64(),
        args.out_file.display()
    );
    Ok(Outcome::Clean)
}

/// Writes `bytes` to a temporary file beside `path` (owner-only) and renames it over `path`, so
/// a reader never sees half a report.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().context("--out-file names no file")?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    // A stale temporary (an interrupted run) is removed, and the new one is created fresh, so
    // its owner-only mode always applies and a planted link is never followed.
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot remove {}", tmp.display())),
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
