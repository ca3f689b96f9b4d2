//! `scopewatch detect`: replay archived logs through the detection core.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::engine_args::EngineArgs;
use super::history_args::HistoryArgs;
use super::input_args::{InputArgs, InputFormatArg, InputPaths};
use super::output::{own_outputs, Output};
use super::output_args::OutputArgs;
use super::progress::Progress;
use super::{LogFormat, Outcome};
use crate::alert::{Alert, Severity};
use crate::ingest::{DeadLetterWriter, Ingestor};
use crate::pipeline::batch::{run_batch, BatchReport, BatchRun};
use crate::sinks::FileSink;

#[derive(Debug, clap::Args)]
pub struct DetectArgs {
    #[command(flatten)]
    pub inputs: InputPaths,

    #[command(flatten)]
    pub engine: EngineArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    /// State directory: the run continues from the checkpoint in DIR (when there is one) and
    /// leaves a new one at the end (baselines as Parquet, buffered events, live tokens, open
    /// hours and incidents), so runs over consecutive archives give the alerts of one run over
    /// all of them. The end of input is then not the end of the stream: see --flush.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,

    /// With --state: treat the end of input as the end of the stream — judge open hours and
    /// days and close open incidents before checkpointing (always done without --state).
    #[arg(long, requires = "state")]
    pub flush: bool,

    #[command(flatten)]
    pub history: HistoryArgs,

    /// Input format (auto-detected per record unless given; --alert-format is the alert format).
    #[arg(long, value_enum, default_value_t = InputFormatArg::Auto)]
    pub input_format: InputFormatArg,

    #[command(flatten)]
    pub input: InputArgs,
}

/// Alerts by app and category, for the end-of-run table.
#[derive(Default)]
struct AlertTally {
    incidents: BTreeMap<(String, &'static str), (u64, Severity)>,
    records: u64,
    /// Records a silence kept out of the output (still in the history store).
    suppressed: u64,
}

impl AlertTally {
    fn add(&mut self, a: &Alert) {
        if a.suppressed_by.is_some() {
            self.suppressed += 1;
            return;
        }
        self.records += 1;
        let e = self
            .incidents
            .entry((a.client_id.clone(), a.category.as_str()))
            .or_insert((0, Severity::Info));
        if a.revision == 0 {
            e.0 += 1;
        }
        e.1 = e.1.max(a.severity);
    }

    fn render(&self) -> String {
        let mut out = format!(
            "{:<24} {:<14} {:>9}  {}\n",
            "app", "category", "incidents", "max severity"
        );
        for ((app, category), (n, sev)) in &self.incidents {
            out.push_str(&format!(
                "{app:<24} {category:<14} {n:>9}  {}\n",
                sev.as_str()
            ));
        }
        out.push_str(&format!("alert records written: {}\n", self.records));
        out
    }
}

pub fn run(args: DetectArgs, log_format: LogFormat) -> anyhow::Result<Outcome> {
    let (registry, config) = args.engine.setup(&args.input)?;
    let own = own_outputs(&args.output, args.state.as_ref(), &args.history);
    let (ingest_options, sources, skipped) =
        args.input
            .resolve(&args.inputs.all(), args.input_format, &own)?;
    let dead_letter = &args.output.dead_letter;
    let mut ingestor = Ingestor::new(
        ingest_options,
        DeadLetterWriter::new(Box::new(Output::new(dead_letter))),
    );
    ingestor.skip_files(skipped);
    let history = args.history.settings(args.input.fhir_base.as_deref())?;
    // Replaced, not appended: a batch run's alerts are its whole answer.
    let mut sink = FileSink::create(&args.output.alerts, args.output.alert_format());
    let mut progress = Progress::new(std::io::stderr().is_terminal());
    let mut tally = AlertTally::default();
    let started = Instant::now();
    let report = run_batch(
        BatchRun {
            sources: &sources,
            ingestor,
            registry,
            config,
            state: args.state.as_deref(),
            flush: args.flush,
            history,
            dead_letter_file: Some(Path::new(dead_letter)).filter(|_| dead_letter != "-"),
            alerts_name: &args.output.alerts,
        },
        &mut sink,
        &mut |a| tally.add(a),
        &mut |p| progress.tick(p.events, p.source, p.offset),
    )?;
    progress.done();
    let elapsed = started.elapsed().as_secs_f64();
    print_report(&args, log_format, &report, &tally, elapsed)?;
    Ok(if report.ingest.is_clean() {
        Outcome::Clean
    } else {
        Outcome::Rejected
    })
}

/// The end-of-run table (or JSON line) on stderr and `--summary`.
fn print_report(
    args: &DetectArgs,
    log_format: LogFormat,
    report: &BatchReport,
    tally: &AlertTally,
    elapsed: f64,
) -> anyhow::Result<()> {
    let engine = &report.engine;
    let stats = engine.stats();
    let history = report.history.map(|h| {
        serde_json::json!({
            "dir": args.history.data.to_string(),
            "access_rows": h.access_rows,
            "token_rows": h.token_rows,
            "alert_rows": h.alert_rows,
            "dead_letter_rows": h.dead_letter_rows,
            "files": h.files,
        })
    });
    let json = serde_json::json!({
        "ingest": &report.ingest,
        "detection": {
            "events": stats.events,
            "accesses": stats.accesses,
            "explained_accesses": stats.explained,
            "accesses_with_unknown_token": stats.unknown_token,
            "accesses_folded_into_one_request": stats.folded,
            "findings": stats.findings,
            "alert_records": tally.records,
            "suppressed_alert_records": tally.suppressed,
            "incidents": tally.incidents.values().map(|(n, _)| n).sum::<u64>(),
            "apps": engine.baselines().apps.len(),
            "state_budget": engine.budget_report(),
        },
        "carried_over": report.carried,
        "history": history,
        "elapsed_seconds": elapsed,
    });
    match log_format {
        LogFormat::Json => eprintln!("{}", serde_json::json!({ "summary": &json })),
        LogFormat::Text => print_text(args, report, tally, elapsed),
    }
    if let Some(path) = &args.output.summary {
        let mut out = Output::new(path);
        serde_json::to_writer_pretty(&mut out, &json)?;
        writeln!(out)?;
        out.flush()?;
    }
    Ok(())
}

fn print_text(args: &DetectArgs, report: &BatchReport, tally: &AlertTally, elapsed: f64) {
    let stats = report.engine.stats();
    eprint!("{}", tally.render());
    eprint!("{}", report.ingest.render_table());
    eprintln!(
        "detection: {} events ({} accesses, {} explained by their token, {} with an unknown token), {} findings, {:.1} s",
        stats.events, stats.accesses, stats.explained, stats.unknown_token, stats.findings, elapsed
    );
    if stats.folded > 0 {
        eprintln!(
            "detection: {} access records folded into the record of the same request (one AuditEvent per patient, as BALP writes them)",
            stats.folded
        );
    }
    if let Some(h) = &report.history {
        eprintln!(
            "history: {} access rows, {} token rows, {} alerts written to {} (scopewatch sql --data {})",
            h.access_rows, h.token_rows, h.alert_rows, args.history.data, args.history.data
        );
    }
    if let Some(c) = report.carried {
        eprintln!(
            "carried over in {}: {} buffered events, {} live tokens, {} open hours, {} open incidents (--flush ends the stream instead)",
            args.state.as_ref().map_or(String::new(), |p| p.display().to_string()),
            c.buffered_events, c.live_tokens, c.open_hours, c.open_incidents
        );
    }
    if report.dead_lettered > 0 {
        eprintln!(
            "dead-letter: {} record(s) in {}",
            report.dead_lettered, args.output.dead_letter
        );
    }
}
