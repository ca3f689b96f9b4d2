//! `scopewatch validate`: check inputs against the event contract.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context as _;
use serde::Serialize;

use super::input_args::{InputArgs, InputFormatArg, InputPaths};
use super::{LogFormat, Outcome};
use crate::event::Event;
use crate::ingest::{DeadLetterWriter, IngestSummary, Ingestor, OwnOutputs};
use crate::smart::request::{Classifier, Interaction};

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub inputs: InputPaths,

    /// Where rejected lines go, as NDJSON records (source, line, offset, kind, reason, raw).
    /// - means stdout.
    #[arg(long, value_name = "FILE", default_value = "-")]
    pub dead_letter: String,

    /// Also write the counts as JSON to FILE (- for stdout).
    #[arg(long, value_name = "FILE")]
    pub summary: Option<String>,

    /// Input format (auto-detected per record unless given).
    #[arg(long = "input-format", alias = "format", value_enum, default_value_t = InputFormatArg::Auto)]
    pub format: InputFormatArg,

    #[command(flatten)]
    pub input: InputArgs,
}

/// The JSON written by `--summary`: ingest counts plus what the request grammar made of URLs.
#[derive(Serialize)]
struct ValidateSummary<'a> {
    #[serde(flatten)]
    ingest: &'a IngestSummary,
    events: EventTally,
}

#[derive(Default, Serialize)]
struct EventTally {
    token: u64,
    access: u64,
    /// Access events whose URL the FHIR request grammar could not classify, by problem.
    /// These are valid events (they are accepted) but detectors can say little about them.
    unclassified_urls: BTreeMap<String, u64>,
}

fn open_output(path: &str) -> anyhow::Result<Box<dyn Write + Send>> {
    if path == "-" {
        return Ok(Box::new(BufWriter::new(io::stdout())));
    }
    let file =
        File::create(PathBuf::from(path)).with_context(|| format!("cannot create {path}"))?;
    Ok(Box::new(BufWriter::new(file)))
}

pub fn run(args: ValidateArgs, log_format: LogFormat) -> anyhow::Result<Outcome> {
    let outputs: Vec<&String> = [Some(&args.dead_letter), args.summary.as_ref()]
        .into_iter()
        .flatten()
        .collect();
    let own = OwnOutputs::new(&outputs);
    let (options, sources, skipped) = args.input.resolve(&args.inputs.all(), args.format, &own)?;
    let dead_letter = DeadLetterWriter::new(open_output(&args.dead_letter)?);
    let mut ingestor = Ingestor::new(options, dead_letter);
    ingestor.skip_files(skipped);
    let classifier = match &args.input.fhir_base {
        Some(base) => Classifier::with_base(base),
        None => Classifier::new(),
    };
    let mut tally = EventTally::default();
    let mut on_event = |event: Event, _| match event {
        Event::Token(_) => tally.token += 1,
        Event::Access(a) => {
            tally.access += 1;
            let request = classifier.classify(a.method, &a.url);
            if request.interaction == Interaction::Unknown {
                let problem = request.problem.unwrap_or_default();
                *tally.unclassified_urls.entry(problem).or_default() += 1;
            }
        }
    };
    for source in &sources {
        ingestor.ingest(source, &mut on_event)?;
    }
    let summary = ingestor.finish()?;
    let report = ValidateSummary {
        ingest: &summary,
        events: tally,
    };
    match log_format {
        // With JSON logs, the end-of-run counts are one JSON line on stderr too.
        LogFormat::Json => eprintln!("{}", serde_json::json!({ "summary": &report })),
        LogFormat::Text => {
            eprint!("{}", summary.render_table());
            eprintln!(
                "events: {} token, {} access",
                report.events.token, report.events.access
            );
            for (problem, n) in &report.events.unclassified_urls {
                eprintln!("  unclassified URL ({n}): {problem}");
            }
        }
    }
    if let Some(path) = &args.summary {
        let mut out = open_output(path)?;
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
        out.flush()?;
    }
    Ok(if summary.is_clean() {
        Outcome::Clean
    } else {
        Outcome::Rejected
    })
}
