//! `scopewatch eval`: score an alerts file against a labels file.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use serde_json::Value;

use super::Outcome;
use crate::alert::Severity;
use crate::eval::{estimate_app_days, evaluate, EvalAlert, EvalLabel};
use crate::event::Timestamp;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SeverityArg {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl From<SeverityArg> for Severity {
    fn from(s: SeverityArg) -> Severity {
        match s {
            SeverityArg::Info => Severity::Info,
            SeverityArg::Low => Severity::Low,
            SeverityArg::Medium => Severity::Medium,
            SeverityArg::High => Severity::High,
            SeverityArg::Critical => Severity::Critical,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Labelled incidents, NDJSON: client_id, category, rule, start, end (RFC 3339).
    #[arg(long, value_name = "FILE", required_unless_present = "feedback")]
    pub labels: Option<PathBuf>,

    /// Alerts written by `scopewatch detect` (NDJSON format, not OCSF) to score.
    #[arg(
        long = "alert-input",
        alias = "alerts",
        value_name = "FILE",
        required_unless_present = "feedback"
    )]
    pub alerts: Option<PathBuf>,

    /// Score from analysts' verdicts instead (`scopewatch triage`): precision per rule over
    /// the incidents triaged in this history store (each incident's latest verdict).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["labels", "alerts"], value_parser = super::output::local_store)]
    pub feedback: Option<PathBuf>,

    /// Alerts below this severity are not counted; each incident counts once, at its first
    /// alert at or above it (its opening alert, or the update that escalated it there).
    #[arg(long, value_enum, default_value_t = SeverityArg::Low)]
    pub min_severity: SeverityArg,

    /// Apps × days observed, for false alerts per 100 app-days (default: estimated from the
    /// apps and the time span in the two files).
    #[arg(long)]
    pub app_days: Option<f64>,

    /// Print the evaluation as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn lines(path: &Path) -> anyhow::Result<Vec<(usize, Value)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map(|v| (i + 1, v))
                .with_context(|| format!("{}:{}: not JSON", path.display(), i + 1))
        })
        .collect()
}

fn field<'a>(v: &'a Value, name: &str, path: &Path, line: usize) -> anyhow::Result<&'a str> {
    v.get(name)
        .and_then(Value::as_str)
        .with_context(|| format!("{}:{line}: missing string field {name}", path.display()))
}

fn time(v: &Value, name: &str, path: &Path, line: usize) -> anyhow::Result<Timestamp> {
    let text = field(v, name, path, line)?;
    Timestamp::parse_rfc3339(text)
        .map_err(|e| anyhow::anyhow!("{}:{line}: {name} is not RFC 3339 ({e})", path.display()))
}

pub fn run(args: EvalArgs) -> anyhow::Result<Outcome> {
    if let Some(data) = &args.feedback {
        return super::eval_feedback::run(data, args.json);
    }
    let (Some(labels_path), Some(alerts_path)) = (&args.labels, &args.alerts) else {
        bail!("eval needs --labels and --alert-input, or --feedback DIR");
    };
    let mut labels = Vec::new();
    for (line, v) in lines(labels_path)? {
        let p = labels_path;
        labels.push(EvalLabel {
            client_id: field(&v, "client_id", p, line)?.to_string(),
            category: field(&v, "category", p, line)?.to_string(),
            rule: field(&v, "rule", p, line)?.to_string(),
            start: time(&v, "start", p, line)?,
            end: time(&v, "end", p, line)?,
        });
    }
    let mut alerts = Vec::new();
    for (line, v) in lines(alerts_path)? {
        let p = alerts_path;
        if v.get("class_uid").is_some() {
            bail!(
                "{}:{line}: this is an OCSF record; eval reads alerts written with --alert-format ndjson",
                p.display()
            );
        }
        let window = v
            .get("window")
            .with_context(|| format!("{}:{line}: missing window", p.display()))?;
        let sev = field(&v, "severity", p, line)?;
        alerts.push(EvalAlert {
            client_id: field(&v, "client_id", p, line)?.to_string(),
            category: field(&v, "category", p, line)?.to_string(),
            rule: field(&v, "rule", p, line)?.to_string(),
            severity: Severity::parse(sev)
                .with_context(|| format!("{}:{line}: unknown severity {sev}", p.display()))?,
            opens_incident: field(&v, "activity", p, line)? == "create",
            incident_id: field(&v, "incident_id", p, line)?.to_string(),
            time: time(&v, "time", p, line)?,
            start: time(window, "start", p, line)?,
            end: time(window, "end", p, line)?,
        });
    }
    let app_days = args
        .app_days
        .unwrap_or_else(|| estimate_app_days(&labels, &alerts));
    let e = evaluate(&labels, &alerts, args.min_severity.into(), app_days);
    let mut out = String::new();
    if args.json {
        let text = serde_json::to_string_pretty(&e)? + "\n";
        std::io::stdout().write_all(text.as_bytes())?;
        return Ok(Outcome::Clean);
    }
    let _ = writeln!(
        out,
        "{:<28} {:>6} {:>6} {:>7} {:>7} {:>6} {:>9}",
        "category / rule", "labels", "found", "recall", "alerts", "true", "precision"
    );
    for (title, map) in [("by category", &e.by_category), ("by rule", &e.by_rule)] {
        let _ = writeln!(out, "-- {title}");
        for (name, s) in map {
            let _ = writeln!(
                out,
                "{name:<28} {:>6} {:>6} {:>7.2} {:>7} {:>6} {:>9.2}",
                s.labels, s.found, s.recall, s.alerts, s.true_alerts, s.precision
            );
        }
    }
    let _ = writeln!(
        out,
        "false alerts per 100 app-days: {:.2} (app-days: {app_days:.0})",
        e.false_alerts_per_100_app_days
    );
    let _ = writeln!(
        out,
        "alerts per incident: {:.2}; per detected label: {:.2} (max {})",
        e.alerts_per_incident, e.alerts_per_detected_label, e.max_alerts_per_detected_label
    );
    if let (Some(median), Some(max)) = (e.median_delay_seconds, e.max_delay_seconds) {
        let _ = writeln!(out, "detection delay: median {median} s, max {max} s");
    }
    for m in &e.missed {
        let _ = writeln!(out, "missed: {m}");
    }
    for f in &e.false_alerts {
        let _ = writeln!(out, "false alert: {f}");
    }
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(Outcome::Clean)
}
