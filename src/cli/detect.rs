//! `scopewatch detect`: replay archived logs through the detection core.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;

use super::output::Output;
use super::progress::Progress;
use super::{LogFormat, Outcome};
use crate::alert::{Alert, AlertFormat, Severity};
use crate::detect::{Engine, EngineConfig, DEFAULT_LATENESS_SECONDS};
use crate::sinks::{AlertSink, FileSink};

use super::input_args::{InputArgs, InputFormatArg, InputPaths};
use crate::ingest::{DeadLetterWriter, Ingestor, OwnOutputs};
use crate::pipeline::{replay, Checkpoint, ReplayError, StateDir, StateLock};
use crate::registry::Registry;
use crate::sql::history::{
    write_alerts, write_baselines, write_dead_letters, DataLocation, HistoryWriter, StoreTarget,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// scopewatch's own alert records, one JSON object per line.
    Ndjson,
    /// OCSF 1.8.0 Detection Finding objects, one per line.
    Ocsf,
    /// Elastic Common Schema 8.11 alert documents (`event.kind: alert`), one per line.
    Ecs,
    /// Splunk HTTP Event Collector envelopes (`sourcetype: scopewatch:alert`), one per line.
    Hec,
}

impl From<FormatArg> for AlertFormat {
    fn from(f: FormatArg) -> AlertFormat {
        match f {
            FormatArg::Ndjson => AlertFormat::Ndjson,
            FormatArg::Ocsf => AlertFormat::Ocsf,
            FormatArg::Ecs => AlertFormat::Ecs,
            FormatArg::Hec => AlertFormat::Hec,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct DetectArgs {
    #[command(flatten)]
    pub inputs: InputPaths,

    /// App registry (TOML): per app client_id, name, purpose, allowed_scopes, modes.
    #[arg(long, value_name = "FILE")]
    pub registry: Option<PathBuf>,

    /// Per-rule settings (TOML, one table per rule id: `enabled`, `severity`, `score`); see
    /// `scopewatch rules` and docs/rules.md.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,

    /// Silences (TOML `[[silence]]` entries: client_id, rule, optional cause and time range,
    /// reason, author, expires): matching alert records are not written, only kept in the
    /// history store (`suppressed_by`) and counted.
    #[arg(long, value_name = "FILE")]
    pub silences: Option<PathBuf>,

    /// Where alerts go (- for stdout).
    #[arg(long, value_name = "FILE", default_value = "-")]
    pub alerts: String,

    /// Alert encoding.
    #[arg(long = "alert-format", alias = "format", value_enum, default_value_t = FormatArg::Ndjson)]
    pub format: FormatArg,

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

    /// History store: accepted events, alerts, dead letters and baselines as Hive-partitioned
    /// Parquet, for `scopewatch sql`. Re-running over the same input files replaces that run's
    /// files instead of adding duplicates. A directory, or `s3://bucket/prefix` (staged locally
    /// and uploaded at the end of the run).
    #[arg(long, value_name = "DIR|URL", default_value = "scopewatch-data", value_parser = DataLocation::parse)]
    pub data: DataLocation,

    /// Do not write the history store.
    #[arg(long)]
    pub no_history: bool,

    #[command(flatten)]
    pub pseudonym: super::pseudonym_args::PseudonymArgs,

    /// Where rejected lines and late events go, as NDJSON; created only when needed.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "scopewatch-dead-letter.ndjson"
    )]
    pub dead_letter: String,

    /// Also write the run's counts as JSON to FILE (- for stdout).
    #[arg(long, value_name = "FILE")]
    pub summary: Option<String>,

    /// Input format (auto-detected per record unless given; --alert-format is the alert format).
    #[arg(long, value_enum, default_value_t = InputFormatArg::Auto)]
    pub input_format: InputFormatArg,

    #[command(flatten)]
    pub input: InputArgs,

    /// How far out of event-time order events may arrive, in seconds; older ones are
    /// dead-lettered as late.
    #[arg(long = "lateness-seconds", alias = "lateness", value_name = "SECONDS", default_value_t = DEFAULT_LATENESS_SECONDS)]
    pub lateness: i64,

    /// Days of an app's own activity before baseline-driven rules fire for it.
    #[arg(long, value_name = "DAYS", default_value_t = crate::baseline::DEFAULT_LEARNING_DAYS)]
    pub learning_days: i64,

    /// An incident (app × rule × cause) closes after this many hours without a finding of its
    /// cause; a cause that keeps recurring stays one incident.
    #[arg(long, value_name = "HOURS", default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=8760))]
    pub incident_quiet_hours: u32,

    /// Time zone for seasonality (hours of the week, weekdays, days): UTC, an IANA name such
    /// as Europe/Berlin (daylight saving followed), or a fixed offset such as +01:00.
    #[arg(long, value_name = "ZONE", default_value = "UTC")]
    pub timezone: String,
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
    let registry = match &args.registry {
        Some(path) => Registry::load(path)?,
        None => Registry::default(),
    };
    let clock = crate::baseline::LocalClock::parse(&args.timezone)
        .map_err(|e| anyhow::anyhow!("--timezone: {e}"))?;
    let own = OwnOutputs::new(&super::output::run_outputs(
        [
            Some(&args.alerts),
            Some(&args.dead_letter),
            args.summary.as_ref(),
        ],
        args.state.as_ref(),
        args.data.local().filter(|_| !args.no_history),
    ));
    let (ingest_options, sources, skipped) =
        args.input
            .resolve(&args.inputs.all(), args.input_format, &own)?;
    let config = EngineConfig {
        lateness_seconds: args.lateness,
        fhir_base: args.input.fhir_base.clone(),
        learning_days: args.learning_days,
        quiet_seconds: i64::from(args.incident_quiet_hours) * 3600,
        clock,
        rules: super::rules::load(args.rules.as_deref())?,
        silences: super::silences::load(args.silences.as_deref())?,
        ..EngineConfig::default()
    }
    .with_token_lifetime(args.input.token_lifetime)
    .with_max_ahead_hours(args.input.max_ahead_hours)
    .with_max_apps(args.input.max_apps)
    .with_max_state_bytes(args.input.max_state_bytes);
    let _state_lock = args.state.as_deref().map(StateLock::acquire).transpose()?;
    let state_dir = args.state.as_ref().map(StateDir::new);
    let state_name = args
        .state
        .as_ref()
        .map_or(String::new(), |p| p.display().to_string());
    let checkpoint = match &state_dir {
        Some(dir) => dir
            .load()
            .with_context(|| format!("restoring state from {}", dir.root().display()))?,
        None => None,
    };
    let mut positions = BTreeMap::new();
    let mut engine = match checkpoint {
        Some(c) => {
            tracing::info!(
                apps = c.baselines.apps.len(),
                buffered_events = c.engine.order.pending.len(),
                open_incidents = c.engine.incidents.len(),
                "continuing from checkpoint"
            );
            positions = c.positions;
            Engine::restore(config, registry, c.baselines, c.engine)
                .with_context(|| format!("restoring state from {state_name}"))?
        }
        None => Engine::new(config, registry),
    };
    // Replaced, not appended: a batch run's alerts are its whole answer.
    let mut sink: Box<dyn AlertSink> = Box::new(FileSink::create(
        &args.alerts,
        AlertFormat::from(args.format),
    ));
    let mut ingestor = Ingestor::new(
        ingest_options,
        DeadLetterWriter::new(Box::new(Output::new(&args.dead_letter))),
    );
    ingestor.skip_files(skipped);

    let mut progress = Progress::new(std::io::stderr().is_terminal());
    let started = Instant::now();
    let mut tally = AlertTally::default();
    let mut pending: Vec<Alert> = Vec::new();
    for name in sources.iter().map(|s| s.name()) {
        if positions.contains_key(&name) {
            tracing::warn!(
                source = %name,
                "this input was already read into the state directory: events behind the checkpoint are dead-lettered as late (use a new --state DIR to replay it)"
            );
        }
    }
    let run_id = run_id(&sources);
    let pseudonymizer = args.pseudonym.load()?;
    let store = match args.no_history {
        false => Some(StoreTarget::open(&args.data).context("opening the history store")?),
        true => None,
    };
    if let Some(store) = &store {
        store.check_store(pseudonymizer.as_ref())?;
    }
    let keep_raw = pseudonymizer.is_none();
    let mut history = store.as_ref().map(|store| {
        HistoryWriter::new(store.dir(), &run_id, args.input.fhir_base.as_deref())
            .with_pseudonymizer(pseudonymizer.clone())
    });
    let mut tap = |e: &crate::event::Event| match history.as_mut() {
        Some(h) => h.add(e).map_err(|e| format!("writing history: {e}")),
        None => Ok(()),
    };
    let mut all_alerts: Vec<Alert> = Vec::new();
    let keep_alerts = !args.no_history;
    let replayed = replay(
        &sources,
        ingestor,
        &mut engine,
        args.lateness,
        Some(&mut tap),
        &mut |alerts| {
            for a in alerts {
                tally.add(a);
                if a.suppressed_by.is_none() {
                    sink.write(std::slice::from_ref(a))?;
                }
            }
            if keep_alerts {
                all_alerts.extend_from_slice(alerts);
            }
            Ok(())
        },
        &mut |p| progress.tick(p.events, p.source, p.offset),
    );
    let (ingestor, _late) = match replayed {
        Ok(r) => r,
        Err(ReplayError::Alerts(e)) => {
            return Err(anyhow::Error::new(e).context(format!("writing alerts to {}", args.alerts)))
        }
        Err(e) => return Err(e.into()),
    };
    let carried = if state_dir.is_none() || args.flush {
        engine.finish(&mut pending);
        None
    } else {
        Some(engine.carried_over())
    };
    if keep_alerts {
        all_alerts.extend_from_slice(&pending);
    }
    for a in pending.drain(..) {
        tally.add(&a);
        if a.suppressed_by.is_none() {
            sink.write(std::slice::from_ref(&a))
                .with_context(|| format!("writing alerts to {}", args.alerts))?;
        }
    }
    sink.make_durable()
        .with_context(|| format!("writing alerts to {}", args.alerts))?;
    progress.done();
    let dead_lettered = ingestor.dead_lettered();
    let summary = ingestor.finish()?;
    let history_report = match (history.as_mut(), &store) {
        (Some(h), Some(store)) => {
            let data = store.dir();
            let counts = h
                .finish()
                .with_context(|| format!("writing history to {}", args.data))?;
            let alert_files = write_alerts(data, &run_id, &all_alerts)?;
            // Only a dead-letter file this run created holds this run's records.
            let dead_letter_rows = if dead_lettered > 0 && args.dead_letter != "-" {
                write_dead_letters(
                    data,
                    &run_id,
                    crate::event::Timestamp::now(),
                    std::path::Path::new(&args.dead_letter),
                    keep_raw,
                )?
            } else {
                0
            };
            write_baselines(data, engine.baselines())?;
            store
                .publish(&run_id)
                .with_context(|| format!("publishing the history to {}", args.data))?;
            Some(serde_json::json!({
                "dir": args.data.to_string(),
                "access_rows": counts.access_rows,
                "token_rows": counts.token_rows,
                "alert_rows": all_alerts.len(),
                "dead_letter_rows": dead_letter_rows,
                "files": counts.files + alert_files,
            }))
        }
        _ => None,
    };
    if let Some(dir) = &state_dir {
        for counts in &summary.sources {
            *positions.entry(counts.source.clone()).or_insert(0) += counts.bytes;
        }
        let saved = dir
            .save(&Checkpoint {
                baselines: engine.baselines().clone(),
                engine: engine.snapshot(),
                positions,
            })
            .with_context(|| format!("checkpointing state to {}", dir.root().display()))?;
        tracing::info!(checkpoint = %saved.display(), "state checkpointed");
    }
    let stats = engine.stats();
    let elapsed = started.elapsed().as_secs_f64();
    let report = serde_json::json!({
        "ingest": &summary,
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
        "carried_over": carried,
        "history": history_report,
        "elapsed_seconds": elapsed,
    });
    match log_format {
        LogFormat::Json => eprintln!("{}", serde_json::json!({ "summary": &report })),
        LogFormat::Text => {
            eprint!("{}", tally.render());
            eprint!("{}", summary.render_table());
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
            if let Some(h) = &history_report {
                eprintln!(
                    "history: {} access rows, {} token rows, {} alerts written to {} (scopewatch sql --data {})",
                    h["access_rows"], h["token_rows"], h["alert_rows"], args.data, args.data
                );
            }
            if let Some(c) = carried {
                eprintln!(
                    "carried over in {state_name}: {} buffered events, {} live tokens, {} open hours, {} open incidents (--flush ends the stream instead)",
                    c.buffered_events, c.live_tokens, c.open_hours, c.open_incidents
                );
            }
            if dead_lettered > 0 {
                eprintln!(
                    "dead-letter: {dead_lettered} record(s) in {}",
                    args.dead_letter
                );
            }
        }
    }
    if let Some(path) = &args.summary {
        let mut out = Output::new(path);
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

/// Names this run's history files: the same input files (names and sizes) give the same id, so
/// re-running over them replaces their files instead of duplicating rows; stdin gets the time.
fn run_id(sources: &[crate::ingest::Source]) -> String {
    let mut fields: Vec<String> = Vec::new();
    for s in sources {
        match s {
            crate::ingest::Source::File(path) => {
                let len = std::fs::metadata(path).map_or(0, |m| m.len());
                fields.push(format!("{}:{len}", path.display()));
            }
            crate::ingest::Source::Stdin => {
                fields.push(format!("stdin:{}", crate::event::Timestamp::now().0));
            }
        }
    }
    let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
    crate::alert::stable_id(&refs)[..16].to_string()
}
