//! `scopewatch run`: the streaming service. Over Kafka (a consumer group on the token and
//! access topics, per-partition engines and checkpoints) or over inputs read to their end
//! (files, `-` for stdin), where it behaves exactly as `detect` with the end of input ending the
//! stream.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::detect::DetectArgs;
use super::engine_args::EngineArgs;
use super::history_args::HistoryArgs;
use super::input_args::{InputArgs, InputFormatArg, InputPaths};
use super::output::{own_outputs, Output};
use super::output_args::OutputArgs;
use super::{LogFormat, Outcome};
use crate::ingest::{DeadLetterWriter, IngestSummary};
use crate::pipeline::follow::{run_follow, FollowSettings};
use crate::pipeline::metrics::{serve, Metrics};
use crate::sinks::append_file::AppendFile;
use crate::sinks::FileSink;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Inputs read to their end (files, directories, - for stdin); the end of input ends the
    /// stream: `cat events.ndjson | scopewatch run --input -` gives the alerts of
    /// `scopewatch detect events.ndjson`. Without --input, --kafka-brokers is required.
    /// FORMAT[+MAPPING]:PATH reads one input in its own format (`--input keycloak:kc/
    /// --input gateway+nginx:gw/`), as in detect.
    #[arg(long, value_name = "PATH", conflicts_with = "kafka_brokers")]
    pub input: Vec<String>,

    /// Follow the --input files and directories as they grow, like `tail -F`: rotated files
    /// are read to their end, new files are picked up, byte positions are kept in the --state
    /// checkpoint. Runs until SIGINT/SIGTERM.
    #[arg(long, requires = "input")]
    pub follow: bool,

    /// With --follow: how often the inputs are listed for new and rotated files, in
    /// milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 250, requires = "follow")]
    pub poll_interval_ms: u64,

    /// Kafka bootstrap servers (host:port,…): consume the token and access topics as a
    /// consumer group.
    #[arg(long, value_name = "HOSTS")]
    pub kafka_brokers: Option<String>,

    /// Topic of token events (may be the same as --access-topic: one mixed topic).
    #[arg(long, value_name = "TOPIC", default_value = "scopewatch.tokens")]
    pub token_topic: String,

    /// Topic of access events.
    #[arg(long, value_name = "TOPIC", default_value = "scopewatch.access")]
    pub access_topic: String,

    /// Consumer group: instances in one group share the partitions.
    #[arg(long, value_name = "GROUP", default_value = "scopewatch")]
    pub group: String,

    /// Kafka mode: publish alerts to this topic (key = client_id, idempotent producer) instead
    /// of --alerts. Refused without --kafka-brokers (it was once silently ignored).
    #[arg(long, value_name = "TOPIC", requires = "kafka_brokers")]
    pub alerts_topic: Option<String>,

    /// librdkafka setting passed through (TLS, SASL, compression, timeouts…); repeatable.
    /// Each setting can also come from `SCOPEWATCH_KAFKA_CONFIG_<KEY>` (`sasl.password` as
    /// `SCOPEWATCH_KAFKA_CONFIG_SASL_PASSWORD`, `log_level` as `…_LOG__LEVEL`), so secrets need
    /// not be on the command line.
    #[arg(long = "kafka-config", value_name = "KEY=VALUE")]
    pub kafka_config: Vec<String>,

    /// Seconds between checkpoints (alerts made durable, state snapshot, then the Kafka offset
    /// commit).
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub checkpoint_interval: u64,

    /// Kafka: stop when every assigned partition has been read to its end; --follow: when
    /// every file found has been read to its end. Either way that is the end of the stream
    /// (open hours, days and incidents close): backfills, catch-up runs, tests.
    #[arg(long)]
    pub exit_at_end: bool,

    #[command(flatten)]
    pub engine: EngineArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    /// State directory (Kafka: one checkpoint per partition under it; --follow: one checkpoint
    /// with the files' positions; required for both).
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,

    #[command(flatten)]
    pub history: HistoryArgs,

    /// Kafka mode: publish dead letters (rejected records, late events) to this topic instead
    /// of --dead-letter, one JSON record per message.
    #[arg(long, value_name = "TOPIC", requires = "kafka_brokers")]
    pub dead_letter_topic: Option<String>,

    /// Input format of records (files or Kafka message values).
    #[arg(long, value_enum, default_value_t = InputFormatArg::Auto)]
    pub input_format: InputFormatArg,

    #[command(flatten)]
    pub input_options: InputArgs,

    /// Kafka and --follow modes: serve Prometheus metrics, /healthz and /readyz on this
    /// address (port 0 picks a free one; the address is logged). Off by default; give a
    /// loopback address unless the scraper is remote.
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<std::net::SocketAddr>,
}

pub fn run(args: RunArgs, log_format: LogFormat) -> anyhow::Result<Outcome> {
    // clap drops a `requires` whose target conflicts with a given flag (--input excludes
    // --kafka-brokers), so the Kafka-only outputs are checked here.
    if args.kafka_brokers.is_none() {
        for (given, flag) in [
            (args.alerts_topic.is_some(), "--alerts-topic"),
            (args.dead_letter_topic.is_some(), "--dead-letter-topic"),
        ] {
            if given {
                anyhow::bail!(
                    "{flag} publishes to Kafka: it needs --kafka-brokers (with --input, alerts go to --alerts)"
                );
            }
        }
    }
    if args.follow {
        return follow(args, log_format);
    }
    if args.metrics_addr.is_some() && args.kafka_brokers.is_none() {
        anyhow::bail!(
            "--metrics-addr is served by the long-running modes: add --kafka-brokers or --follow"
        );
    }
    if !args.input.is_empty() {
        // Inputs read to their end are exactly a detect run that ends the stream.
        return super::detect::run(
            DetectArgs {
                inputs: InputPaths {
                    inputs: args.input,
                    input_paths: Vec::new(),
                },
                engine: args.engine,
                output: args.output,
                flush: args.state.is_some(),
                state: args.state,
                history: args.history,
                input_format: args.input_format,
                input: args.input_options,
            },
            log_format,
        );
    }
    super::run_kafka::run(args, log_format)
}

/// Writes a service's counts to `--summary` (when given). A service that stopped after its
/// final checkpoint exits 0 whatever it dead-lettered: the dead letters are in the summary,
/// the metrics and the dead-letter output, and a supervisor (systemd, Kubernetes) must not
/// take a clean stop for a failure. Batch runs (`detect`, `run --input` without `--follow`)
/// keep exit 1 for rejected input.
pub(super) fn write_summary(
    path: Option<&str>,
    json: &serde_json::Value,
    summary: &IngestSummary,
) -> anyhow::Result<Outcome> {
    if let Some(path) = path {
        let mut out = Output::new(path);
        serde_json::to_writer_pretty(&mut out, json)?;
        std::io::Write::write_all(&mut out, b"\n")?;
        std::io::Write::flush(&mut out)?;
    }
    if !summary.is_clean() {
        tracing::warn!(
            dead_lettered = summary.totals.dead_lettered,
            late = summary.totals.late,
            "records were dead-lettered (see the summary and the dead-letter output); a service still exits 0 after a clean stop"
        );
    }
    Ok(Outcome::Clean)
}

pub(super) fn print_history(args: &RunArgs, (access, tokens, alerts): (u64, u64, u64)) {
    if !args.history.no_history {
        let data = &args.history.data;
        eprintln!(
            "history: {access} access rows, {tokens} token rows, {alerts} alerts written to {data} (scopewatch sql --data {data})"
        );
    }
}

pub(super) fn history_json((access, tokens, alerts): (u64, u64, u64)) -> serde_json::Value {
    serde_json::json!({ "access": access, "tokens": tokens, "alerts": alerts })
}

/// Dead letters appended across restarts (never truncated: earlier runs' records stay) and
/// synced before each checkpoint.
pub(super) fn dead_letter_file(path: &str) -> DeadLetterWriter {
    if path == "-" {
        DeadLetterWriter::new(Box::new(Output::new("-")))
    } else {
        DeadLetterWriter::new(Box::new(AppendFile::new(path)))
    }
}

pub(super) fn serve_metrics(addr: Option<std::net::SocketAddr>) -> anyhow::Result<Option<Metrics>> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    let m = Metrics::default();
    let bound =
        serve(addr, m.clone()).with_context(|| format!("--metrics-addr {addr}: cannot listen"))?;
    eprintln!("scopewatch run: serving /metrics, /healthz and /readyz on http://{bound}");
    Ok(Some(m))
}

/// A flag set by SIGINT or SIGTERM: the service stops consuming, checkpoints and exits 0.
pub(super) fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing the signal handlers")?;
    }
    Ok(stop)
}

/// `run --input … --follow`.
fn follow(args: RunArgs, log_format: LogFormat) -> anyhow::Result<Outcome> {
    let Some(state_root) = args.state.clone() else {
        anyhow::bail!("run --follow needs --state DIR: the files' positions are kept in its checkpoint, so a restart continues where the last checkpoint ended");
    };
    let _state_lock = crate::pipeline::StateLock::acquire(&state_root)?;
    let (registry, config) = args.engine.setup(&args.input_options)?;
    let inputs = args.input_options.input_formats(&args.input)?;
    let options = args.input_options.options_for(&inputs, args.input_format)?;
    let sink = FileSink::open(&args.output.alerts, args.output.alert_format())
        .with_context(|| format!("opening the alert output {}", args.output.alerts))?;
    let settings = FollowSettings {
        inputs,
        state_root,
        checkpoint_every: Duration::from_secs(args.checkpoint_interval.max(1)),
        lateness_seconds: args.engine.lateness,
        max_line_bytes: options.max_line_bytes,
        poll: Duration::from_millis(args.poll_interval_ms.max(10)),
        metrics: serve_metrics(args.metrics_addr)?,
        history: args
            .history
            .settings(args.input_options.fhir_base.as_deref())?,
        exit_at_end: args.exit_at_end,
        own_outputs: own_outputs(&args.output, args.state.as_ref(), &args.history),
    };
    let report = run_follow(
        settings,
        config,
        registry,
        options.decode,
        Box::new(sink),
        dead_letter_file(&args.output.dead_letter),
        stop_on_signals()?,
    )?;
    let mut summary = IngestSummary::default();
    for counts in report.sources.into_values() {
        summary.push(counts);
    }
    for skipped in report.skipped_files {
        summary.skip(skipped);
    }
    let json = serde_json::json!({
        "ingest": &summary,
        "alert_records": report.alerts,
        "suppressed_alert_records": report.suppressed,
        "checkpoints": report.checkpoints,
        "files_opened": report.files_opened,
        "files_closed": report.files_closed,
        "history_rows": history_json(report.history_rows),
    });
    match log_format {
        LogFormat::Json => eprintln!("{}", serde_json::json!({ "summary": &json })),
        LogFormat::Text => {
            eprint!("{}", summary.render_table());
            eprintln!(
                "alerts: {} record(s); checkpoints: {}; files opened: {}, done: {}",
                report.alerts, report.checkpoints, report.files_opened, report.files_closed
            );
            print_history(&args, report.history_rows);
        }
    }
    write_summary(args.output.summary.as_deref(), &json, &summary)
}
