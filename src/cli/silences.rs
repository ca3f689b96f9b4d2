//! `--silences FILE` for detect and run, and `scopewatch silences check|preview`: validate a
//! silences file, and see which stored alerts each entry would have suppressed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::TimestampMicrosecondType;

use super::Outcome;
use crate::alert::silence::{Silence, Silences};
use crate::alert::{Activity, Alert, Evidence, Severity, Window};
use crate::event::Timestamp;

#[derive(Debug, clap::Args)]
pub struct SilencesArgs {
    #[command(subcommand)]
    pub command: SilencesCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum SilencesCommand {
    /// Validate a silences file: syntax, required and unknown keys, rules, times. Warns about
    /// expired entries and (with --data) entries that match no stored alert. Exits 0 when
    /// clean, 1 with warnings, 2 when the file is invalid.
    Check {
        file: PathBuf,
        /// History store whose alerts the entries are checked against.
        #[arg(long, value_name = "DIR", value_parser = super::output::local_store)]
        data: Option<PathBuf>,
    },
    /// List, per entry, the stored alert records it would have suppressed (expired entries
    /// included, marked as such).
    Preview {
        file: PathBuf,
        #[arg(long, value_name = "DIR", default_value = super::defaults::DATA_DIR, value_parser = super::output::local_store)]
        data: PathBuf,
    },
}

/// The active silences of `--silences FILE` (none without one); expired entries are reported
/// on stderr and match nothing.
pub fn load(path: Option<&Path>) -> anyhow::Result<Arc<Silences>> {
    let Some(path) = path else {
        return Ok(Arc::default());
    };
    let silences = Silences::load(path, Timestamp::now())?;
    for s in &silences.expired {
        tracing::warn!(
            silence = %s.id,
            client_id = %s.client_id,
            rule = %s.rule,
            "silence expired; it no longer suppresses anything"
        );
        eprintln!(
            "scopewatch: warning: silence {} ({} on {}) expired; it no longer suppresses anything",
            s.id, s.rule, s.client_id
        );
    }
    Ok(Arc::new(silences))
}

pub fn run(args: SilencesArgs) -> anyhow::Result<Outcome> {
    match args.command {
        SilencesCommand::Check { file, data } => check(&file, data.as_deref()),
        SilencesCommand::Preview { file, data } => preview(&file, &data),
    }
}

fn check(file: &Path, data: Option<&Path>) -> anyhow::Result<Outcome> {
    let silences = Silences::load(file, Timestamp::now())?;
    let mut warnings = Vec::new();
    for s in &silences.expired {
        warnings.push(format!(
            "{}: expired {} ({} on {})",
            s.id,
            s.expires.to_rfc3339(),
            s.rule,
            s.client_id
        ));
    }
    if let Some(data) = data {
        let stored = stored_alerts(data)?;
        for s in &silences.active {
            if !stored.iter().any(|a| s.matches(a)) {
                warnings.push(format!(
                    "{}: matches no alert stored in {} ({} on {})",
                    s.id,
                    data.display(),
                    s.rule,
                    s.client_id
                ));
            }
        }
    }
    let total = silences.active.len() + silences.expired.len();
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    eprintln!(
        "{}: {total} entries, {} active, {} warning(s)",
        file.display(),
        silences.active.len(),
        warnings.len()
    );
    Ok(if warnings.is_empty() {
        Outcome::Clean
    } else {
        Outcome::Rejected
    })
}

fn preview(file: &Path, data: &Path) -> anyhow::Result<Outcome> {
    let silences = Silences::load(file, Timestamp::now())?;
    let stored = stored_alerts(data)?;
    let entries = silences
        .active
        .iter()
        .map(|s| (s, false))
        .chain(silences.expired.iter().map(|s| (s, true)));
    for (s, expired) in entries {
        let matched: Vec<&Alert> = stored.iter().filter(|a| s.matches(a)).collect();
        println!("{}", heading(s, expired, matched.len()));
        for a in matched {
            println!(
                "  {}  {}  {:<8}  incident {}  {}",
                a.time.to_rfc3339(),
                a.id,
                a.severity.as_str(),
                a.incident_id,
                a.summary
            );
        }
    }
    Ok(Outcome::Clean)
}

fn heading(s: &Silence, expired: bool, n: usize) -> String {
    format!(
        "{}{}: {} on {}{} — {} alert record(s); {} ({}, expires {})",
        s.id,
        if expired { " [expired]" } else { "" },
        s.rule,
        s.client_id,
        s.cause
            .as_ref()
            .map_or_else(String::new, |c| format!(" cause {c:?}")),
        n,
        s.reason,
        s.author,
        s.expires.to_rfc3339()
    )
}

/// The stored alert records, with what silences match on (app, rule, cause, time).
fn stored_alerts(data: &Path) -> anyhow::Result<Vec<Alert>> {
    if !data.is_dir() {
        anyhow::bail!("--data {}: not a history store directory", data.display());
    }
    let batches: Vec<RecordBatch> = crate::sql::session::query_blocking(
        data,
        "SELECT id, incident_id, time, client_id, rule, severity, summary, cause, window_start, evidence \
         FROM alerts ORDER BY time, id",
    )?;
    let mut out = Vec::new();
    for b in &batches {
        let text = |i: usize| b.column(i).as_string_opt::<i32>();
        let (Some(id), Some(incident), Some(client), Some(rule), Some(severity), Some(summary)) =
            (text(0), text(1), text(3), text(4), text(5), text(6))
        else {
            anyhow::bail!(
                "{}: the alerts table has unexpected column types",
                data.display()
            );
        };
        let (cause, evidence) = (text(7), text(9));
        let (Some(time), Some(began)) = (
            b.column(2).as_primitive_opt::<TimestampMicrosecondType>(),
            b.column(8).as_primitive_opt::<TimestampMicrosecondType>(),
        ) else {
            anyhow::bail!("{}: alerts times are not timestamps", data.display());
        };
        for row in 0..b.num_rows() {
            // Only known rules can be matched (a silence names a catalogued rule).
            let Some(rule) = crate::detect::rules::catalog::rule_id(rule.value(row)) else {
                continue;
            };
            let t = Timestamp(time.value(row));
            out.push(Alert {
                id: id.value(row).to_string(),
                incident_id: incident.value(row).to_string(),
                activity: Activity::Create,
                revision: 0,
                time: t,
                client_id: client.value(row).to_string(),
                category: rule.info().category,
                rule: rule.as_str(),
                severity: Severity::parse(severity.value(row)).unwrap_or(Severity::Info),
                score: 0,
                summary: summary.value(row).to_string(),
                window: Window {
                    start: Timestamp(began.value(row)),
                    end: t,
                },
                observed: serde_json::Value::Null,
                baseline: serde_json::Value::Null,
                evidence: Evidence::default(),
                references: Vec::new(),
                cause: stored_cause(cause, evidence, row),
                suppressed_by: None,
            });
        }
    }
    Ok(out)
}

/// An alert row's cause: its `cause` column, or for rows written before that column existed,
/// the `cause` its evidence JSON names.
pub fn stored_cause(
    cause: Option<&datafusion::arrow::array::StringArray>,
    evidence: Option<&datafusion::arrow::array::StringArray>,
    row: usize,
) -> String {
    if let Some(c) = cause.filter(|c| !c.is_null(row)) {
        return c.value(row).to_string();
    }
    evidence
        .filter(|e| !e.is_null(row))
        .and_then(|e| serde_json::from_str::<serde_json::Value>(e.value(row)).ok())
        .and_then(|v| v["cause"].as_str().map(str::to_string))
        .unwrap_or_default()
}
