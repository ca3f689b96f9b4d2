//! `scopewatch run --kafka-brokers …`: the consumer-group service, built with the `kafka` cargo
//! feature (on by default). Without it, `run` refuses Kafka with a message naming the feature.

use std::time::Duration;

use anyhow::Context as _;
use rdkafka::config::ClientConfig;

use super::run::{
    dead_letter_file, history_json, print_history, serve_metrics, stop_on_signals, write_summary,
    RunArgs,
};
use super::{LogFormat, Outcome};
use crate::ingest::{DeadLetterWriter, IngestSummary};
use crate::pipeline::kafka::{run_kafka, KafkaSettings};
use crate::sinks::kafka_lines::KafkaLineWriter;
use crate::sinks::{AlertSink, FileSink, KafkaSink};

/// The Kafka service of `run` (inputs and --follow are handled before).
pub fn run(args: RunArgs, log_format: LogFormat) -> anyhow::Result<Outcome> {
    let Some(brokers) = args.kafka_brokers.clone() else {
        anyhow::bail!(
            "run needs --kafka-brokers HOSTS (a Kafka service) or --input PATH… (- for stdin)"
        );
    };
    let Some(state_root) = args.state.clone() else {
        anyhow::bail!("run over Kafka needs --state DIR: offsets are committed only after the state covering them is checkpointed there");
    };
    // No lock here: the instances of one consumer group share a state root by design, each
    // partition's directory written only by the instance the group assigned it to.
    let (registry, config) = args.engine.setup(&args.input_options)?;
    let decode = args.input_options.ingest_options(args.input_format)?.decode;
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &brokers)
        .set("group.id", &args.group);
    // Environment first, so the command line's --kafka-config (set after) wins.
    for (k, v) in super::env::kafka_settings(std::env::vars_os()) {
        client.set(k, v);
    }
    for kv in &args.kafka_config {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--kafka-config {kv}: expected KEY=VALUE"))?;
        client.set(k.trim(), v.trim());
    }
    let format = args.output.alert_format();
    let sink: Box<dyn AlertSink> = match &args.alerts_topic {
        Some(topic) => Box::new(KafkaSink::new(
            &client_for_producer(&client),
            topic,
            format,
        )?),
        None => Box::new(
            FileSink::open(&args.output.alerts, format)
                .with_context(|| format!("opening the alert output {}", args.output.alerts))?,
        ),
    };
    let dead_letter = match &args.dead_letter_topic {
        Some(topic) => DeadLetterWriter::new(Box::new(KafkaLineWriter::new(
            &client_for_producer(&client),
            topic,
        )?)),
        None => dead_letter_file(&args.output.dead_letter),
    };
    let metrics = serve_metrics(args.metrics_addr)?;
    let stop = stop_on_signals()?;
    let settings = KafkaSettings {
        client,
        token_topic: args.token_topic.clone(),
        access_topic: args.access_topic.clone(),
        state_root,
        checkpoint_every: Duration::from_secs(args.checkpoint_interval.max(1)),
        exit_at_end: args.exit_at_end,
        lateness_seconds: args.engine.lateness,
        metrics,
        history: args
            .history
            .settings(args.input_options.fhir_base.as_deref())?,
    };
    let report = run_kafka(settings, config, registry, decode, sink, dead_letter, stop)?;
    let mut summary = IngestSummary::default();
    for counts in report.sources.into_values() {
        summary.push(counts);
    }
    let json = serde_json::json!({
        "ingest": &summary,
        "already_in_checkpoint": report.already_in_checkpoint,
        "requeued_on_revoke": report.requeued,
        "latency_ms": {
            "events": report.latency.count(),
            "p50": report.latency.quantile_ms(0.5),
            "p99": report.latency.quantile_ms(0.99),
            "max": report.latency.max_ms(),
        },
        "alert_records": report.alerts,
        "suppressed_alert_records": report.suppressed,
        "checkpoints": report.checkpoints,
        "history_rows": history_json(report.history_rows),
    });
    match log_format {
        LogFormat::Json => eprintln!("{}", serde_json::json!({ "summary": &json })),
        LogFormat::Text => {
            eprint!("{}", summary.render_table());
            eprintln!(
                "alerts: {} record(s); checkpoints: {}; re-delivered messages already in a checkpoint: {}; \
                 records received but unprocessed at a revoke (read again, counted twice above): {}",
                report.alerts, report.checkpoints, report.already_in_checkpoint, report.requeued
            );
            print_history(&args, report.history_rows);
            if let (Some(p50), Some(p99)) = (
                report.latency.quantile_ms(0.5),
                report.latency.quantile_ms(0.99),
            ) {
                eprintln!(
                    "latency produced → processed: p50 {p50:.0} ms, p99 {p99:.0} ms, max {} ms",
                    report.latency.max_ms()
                );
            }
        }
    }
    write_summary(args.output.summary.as_deref(), &json, &summary)
}

/// The producer takes the connection and security settings, not the consumer's group ones.
fn client_for_producer(consumer: &ClientConfig) -> ClientConfig {
    let mut producer = ClientConfig::new();
    for (k, v) in consumer.config_map().iter() {
        let (k, v): (&str, &str) = (k, v);
        if !k.starts_with("group.") && !k.starts_with("enable.auto") && k != "auto.offset.reset" {
            producer.set(k, v);
        }
    }
    producer
}
