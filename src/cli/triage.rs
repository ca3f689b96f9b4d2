//! `scopewatch triage`: an analyst's verdict on an alert or incident, appended to the store's
//! `feedback` table (queried with `scopewatch sql`, scored with `scopewatch eval --feedback`).
//! A false positive can be turned into a silence proposal to review and add to the silences
//! file.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use datafusion::arrow::array::{Array, AsArray};

use super::Outcome;
use crate::event::Timestamp;
use crate::sql::history::{write_feedback, Feedback};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Verdict {
    /// A real problem: the app took more than its purpose needs.
    TruePositive,
    /// The rule was wrong: nothing of what it says happened.
    FalsePositive,
    /// What the rule says happened, and it is allowed (a known, approved behaviour).
    Benign,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::TruePositive => "true-positive",
            Verdict::FalsePositive => "false-positive",
            Verdict::Benign => "benign",
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct TriageArgs {
    /// An alert record id or an incident id (as in the alert output and the alerts table).
    #[arg(value_name = "ALERT_OR_INCIDENT_ID")]
    pub id: String,

    #[arg(long, value_enum)]
    pub verdict: Verdict,

    /// Free text kept with the verdict (no patient identifiers, please).
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,

    /// Who gives the verdict (default: $USER).
    #[arg(long, value_name = "NAME")]
    pub analyst: Option<String>,

    /// History store holding the alert.
    #[arg(long, value_name = "DIR", default_value = super::defaults::DATA_DIR, value_parser = super::output::local_store)]
    pub data: PathBuf,

    /// With a false-positive or benign verdict: print a `[[silence]]` entry for the alert's
    /// app, rule and cause (expiring in DAYS days) to review and add to a silences file.
    #[arg(long, value_name = "DAYS")]
    pub propose_silence: Option<u32>,
}

/// What the store says about the alert the analyst named.
struct Target {
    incident_id: String,
    client_id: String,
    rule: String,
    cause: String,
}

pub fn run(args: TriageArgs) -> anyhow::Result<Outcome> {
    // Ids are hex digests: anything else is refused before it reaches a query.
    if args.id.is_empty() || !args.id.chars().all(|c| c.is_ascii_hexdigit()) || args.id.len() > 64 {
        anyhow::bail!("{:?} is not an alert or incident id (hex digits)", args.id);
    }
    let target = find(&args.data, &args.id)?;
    let analyst = args
        .analyst
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into());
    let feedback = Feedback {
        time: Timestamp::now(),
        analyst: analyst.clone(),
        target_id: args.id.clone(),
        incident_id: target.incident_id.clone(),
        client_id: target.client_id.clone(),
        rule: target.rule.clone(),
        verdict: args.verdict.as_str().into(),
        note: args.note.clone(),
    };
    let path = write_feedback(&args.data, &feedback)?;
    eprintln!(
        "recorded {} on incident {} ({} on {}) in {}",
        feedback.verdict,
        target.incident_id,
        target.rule,
        target.client_id,
        path.display()
    );
    if let Some(days) = args.propose_silence {
        if args.verdict == Verdict::TruePositive {
            anyhow::bail!("--propose-silence: a true positive is not silenced");
        }
        let expires = Timestamp(Timestamp::now().0 + i64::from(days) * 86_400 * 1_000_000);
        let reason = args.note.clone().unwrap_or_else(|| {
            format!(
                "{} in triage of incident {}",
                feedback.verdict, target.incident_id
            )
        });
        print!(
            "[[silence]]\nclient_id = {}\nrule = {}\ncause = {}\nreason = {}\nauthor = {}\nexpires = {}\n",
            toml_str(&target.client_id),
            toml_str(&target.rule),
            toml_str(&target.cause),
            toml_str(&reason),
            toml_str(&analyst),
            toml_str(&expires.to_rfc3339()),
        );
    }
    Ok(Outcome::Clean)
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The alert record or incident `id` names, from the store's alerts table.
fn find(data: &Path, id: &str) -> anyhow::Result<Target> {
    if !data.is_dir() {
        anyhow::bail!("--data {}: not a history store directory", data.display());
    }
    let sql = format!(
        "SELECT incident_id, client_id, rule, cause, evidence FROM alerts \
         WHERE id = '{id}' OR incident_id = '{id}' ORDER BY revision LIMIT 1"
    );
    let batches = crate::sql::session::query_blocking(data, &sql)?;
    let Some(b) = batches.iter().find(|b| b.num_rows() > 0) else {
        anyhow::bail!("no alert or incident {id} in {}", data.display());
    };
    let col = |i: usize| -> anyhow::Result<String> {
        let c = b
            .column(i)
            .as_string_opt::<i32>()
            .context("the alerts table has unexpected column types")?;
        Ok(if c.is_null(0) {
            String::new()
        } else {
            c.value(0).to_string()
        })
    };
    Ok(Target {
        incident_id: col(0)?,
        client_id: col(1)?,
        rule: col(2)?,
        cause: super::silences::stored_cause(
            b.column(3).as_string_opt::<i32>(),
            b.column(4).as_string_opt::<i32>(),
            0,
        ),
    })
}
