//! The `scopewatch` command line: argument definitions and dispatch.

mod compact;
pub mod config_file;
mod defaults;
mod detect;
mod docs;
mod engine_args;
pub mod env;
mod eval;
mod eval_feedback;
mod history_args;
mod input_args;
mod least_privilege;
mod logging;
mod output;
mod output_args;
mod progress;
mod pseudonym_args;
mod renamed;
mod report;
mod rules;
mod run;
#[cfg(feature = "kafka")]
mod run_kafka;
#[cfg(not(feature = "kafka"))]
mod run_kafka {
    //! Built without the `kafka` cargo feature: `run --kafka-brokers` says so.
    pub fn run(
        _args: super::run::RunArgs,
        _log_format: super::LogFormat,
    ) -> anyhow::Result<super::Outcome> {
        anyhow::bail!(
            "this scopewatch was built without Kafka (cargo feature `kafka`, on by default): use --input, or rebuild with --features kafka"
        )
    }
}
mod silences;
mod simulate;
mod sql;
mod triage;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use logging::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "scopewatch",
    version,
    about = "Watches how SMART on FHIR apps use the access they were given",
    long_about = "scopewatch reads authorization-server token logs and FHIR access logs, learns each \
                  app's normal behaviour and reports scope creep, purpose drift and unusual data volume.\n\n\
                  Diagnostics go to stderr; set RUST_LOG (e.g. RUST_LOG=info) for more. Patient ids and \
                  full URLs are never logged at info level or above."
)]
pub struct Cli {
    /// Format of diagnostic logs on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// TOML file of flags for the subcommand: `flag-name = value` (an array repeats a flag,
    /// a table gives KEY=VALUE pairs, e.g. `[kafka-config]`); the command line wins.
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<std::path::PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check files against the event contract without running detection.
    ///
    /// Every rejected line is written to the dead-letter output with its source, line number,
    /// byte offset and reason; the counts per source go to stderr. Exits 0 when every line was
    /// accepted, 1 when any line was rejected or a source could not be read to its end, and 2
    /// when the run could not start (e.g. a missing input).
    Validate(validate::ValidateArgs),
    /// Replay archived logs through the detection core and write alerts.
    ///
    /// Events may arrive out of order up to --lateness-seconds; alerts are written as incidents open
    /// and update. Exits 0 when every line was accepted, 1 when any line was dead-lettered
    /// (rejected or late), 2 when the run could not start.
    Detect(detect::DetectArgs),
    /// The streaming service: consume token and access events from Kafka (consumer group,
    /// per-partition state, at-least-once with deterministic alert ids), or read inputs to
    /// their end (`--input -` for stdin), and publish alerts.
    ///
    /// As a service (Kafka, --follow) it exits 0 on SIGINT/SIGTERM after its final checkpoint
    /// or at --exit-at-end, whatever it dead-lettered (the counts are in the summary and the
    /// metrics); 2 when it could not start or stopped on an error. Over --input read to its end
    /// it is a batch run and exits as detect does: 1 when records were dead-lettered.
    Run(Box<run::RunArgs>),
    /// SQL over access history, alerts and baselines (DataFusion; read-only).
    ///
    /// Tables: access, tokens, alerts, dead_letter (from `detect --data`) and baseline_*;
    /// functions scope_covers, scope_is_wildcard, scope_normalize, scope_context,
    /// fhir_resource_type, fhir_interaction, fhir_patient. Saved queries are in queries/.
    Sql(sql::SqlArgs),
    /// Generate realistic multi-app logs with injected anomalies, labels and an app registry.
    Simulate(simulate::SimulateArgs),
    /// Merge the history store's small files (one per checkpoint in the streaming modes) into
    /// one file per table and date; safe beside a running service (only files older than
    /// --min-age-minutes are merged). A run that later rewrites or removes its files still
    /// replaces its rows: the merged file remembers which rows came from which file.
    Compact(compact::CompactArgs),
    /// The rule catalog: ids, categories, severities, what each detects, and the settings of a
    /// --rules file applied (table, JSON, or the Markdown of docs/rules.md).
    Rules(rules::RulesArgs),
    /// Silences: `check FILE` validates a silences file, `preview FILE --data DIR` lists the
    /// stored alerts each entry would have suppressed.
    Silences(silences::SilencesArgs),
    /// Per app, the scopes granted against what its served requests used, and a narrower SMART
    /// v2 scope string (from the history store).
    ///
    /// Lists unused scopes, wildcards that a short explicit list replaces and requests served
    /// beyond the grant (never recommended); unneeded wildcards and `offline_access` are called
    /// out first. See docs/least-privilege.md.
    LeastPrivilege(least_privilege::LeastPrivilegeArgs),
    /// Write an HTML report of the history store: incidents by severity and app, each with its
    /// evidence as plots, and per app its baseline and least-privilege advice.
    ///
    /// One self-contained file (inline SVG and CSS, no script, nothing fetched, no patient id),
    /// the same bytes for the same store and window. See docs/report.md.
    Report(report::ReportArgs),
    /// Record an analyst's verdict (true-positive, false-positive, benign) on an alert or
    /// incident in the store's `feedback` table; optionally propose a silence for it.
    Triage(triage::TriageArgs),
    /// Score alerts against labelled incidents: precision and recall per category and rule,
    /// false alerts per 100 app-days, detection delay.
    Eval(eval::EvalArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout, e.g.
    /// `scopewatch completions bash > /etc/bash_completion.d/scopewatch`.
    Completions(docs::CompletionsArgs),
    /// Print the man page (roff) of scopewatch and of each command to a directory, e.g.
    /// `scopewatch man --out-dir /usr/local/share/man/man1`.
    Man(docs::ManArgs),
}

/// The command line as parsed: the derived definition with every long flag also read from
/// its `SCOPEWATCH_*` environment variable.
pub fn command() -> clap::Command {
    env::with_env(<Cli as clap::CommandFactory>::command())
}

/// Parses `args` (already expanded by `--config`): command line, then environment.
pub fn parse(args: Vec<std::ffi::OsString>) -> Result<Cli, clap::Error> {
    // Logging is not set up yet: the warnings go straight to stderr.
    for warning in renamed::apply(&args) {
        eprintln!("{warning}");
    }
    let matches = command().try_get_matches_from(args)?;
    <Cli as clap::FromArgMatches>::from_arg_matches(&matches)
}

/// How a run ended, as a process exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything accepted.
    Clean,
    /// The run finished but rejected input (dead-lettered lines, unreadable sources).
    Rejected,
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> ExitCode {
        match o {
            Outcome::Clean => ExitCode::SUCCESS,
            Outcome::Rejected => ExitCode::from(1),
        }
    }
}

/// Exit code for a run that could not start or failed as a whole.
pub const EXIT_FATAL: u8 = 2;

pub fn run(cli: Cli) -> anyhow::Result<Outcome> {
    logging::init(cli.log_format);
    match cli.command {
        Command::Validate(args) => validate::run(args, cli.log_format),
        Command::Detect(args) => detect::run(args, cli.log_format),
        Command::Eval(args) => eval::run(args),
        Command::Run(args) => run::run(*args, cli.log_format),
        Command::Sql(args) => sql::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Compact(args) => compact::run(args),
        Command::Rules(args) => rules::run(args),
        Command::Silences(args) => silences::run(args),
        Command::Triage(args) => triage::run(args),
        Command::LeastPrivilege(args) => least_privilege::run(args),
        Command::Report(args) => report::run(args),
        Command::Completions(args) => docs::completions(args),
        Command::Man(args) => docs::man(args),
    }
}
