//! `scopewatch eval --feedback DIR`: precision per rule from analysts' verdicts on real
//! alerts (the `feedback` table `scopewatch triage` writes), each incident counted once with
//! its latest verdict.

use std::collections::BTreeMap;
use std::path::Path;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Int64Type;

use super::Outcome;

/// Verdicts on one rule's incidents.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RuleVerdicts {
    pub true_positive: i64,
    pub benign: i64,
    pub false_positive: i64,
}

impl RuleVerdicts {
    fn total(&self) -> i64 {
        self.true_positive + self.benign + self.false_positive
    }

    /// The rule said what happened (true positives and benign ones) over all verdicts.
    pub fn precision(&self) -> f64 {
        (self.true_positive + self.benign) as f64 / self.total().max(1) as f64
    }

    /// Worth acting on: true positives over all verdicts.
    pub fn actionable(&self) -> f64 {
        self.true_positive as f64 / self.total().max(1) as f64
    }
}

const LATEST_VERDICTS: &str = "\
    SELECT rule, verdict, count(*) AS n FROM ( \
      SELECT rule, verdict, row_number() OVER (PARTITION BY incident_id ORDER BY time DESC) AS k \
      FROM feedback) \
    WHERE k = 1 GROUP BY rule, verdict ORDER BY rule, verdict";

pub fn run(data: &Path, json: bool) -> anyhow::Result<Outcome> {
    let per_rule = verdicts(data)?;
    if json {
        let rows: Vec<serde_json::Value> = per_rule
            .iter()
            .map(|(rule, v)| {
                serde_json::json!({
                    "rule": rule, "verdicts": v,
                    "precision": v.precision(), "actionable": v.actionable(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(Outcome::Clean);
    }
    println!(
        "{:<28} {:>9} {:>6} {:>6} {:>6} {:>10} {:>10}",
        "rule", "incidents", "tp", "benign", "fp", "precision", "actionable"
    );
    for (rule, v) in &per_rule {
        println!(
            "{:<28} {:>9} {:>6} {:>6} {:>6} {:>10.2} {:>10.2}",
            rule,
            v.total(),
            v.true_positive,
            v.benign,
            v.false_positive,
            v.precision(),
            v.actionable()
        );
    }
    if per_rule.is_empty() {
        eprintln!(
            "no verdicts in {} (record some with `scopewatch triage`)",
            data.display()
        );
    }
    Ok(Outcome::Clean)
}

/// Each triaged incident's latest verdict, counted per rule.
pub fn verdicts(data: &Path) -> anyhow::Result<BTreeMap<String, RuleVerdicts>> {
    if !data.is_dir() {
        anyhow::bail!(
            "--feedback {}: not a history store directory",
            data.display()
        );
    }
    let batches = crate::sql::session::query_blocking(data, LATEST_VERDICTS)?;
    let mut out: BTreeMap<String, RuleVerdicts> = BTreeMap::new();
    for b in &batches {
        let (Some(rule), Some(verdict), Some(n)) = (
            b.column(0).as_string_opt::<i32>(),
            b.column(1).as_string_opt::<i32>(),
            b.column(2).as_primitive_opt::<Int64Type>(),
        ) else {
            anyhow::bail!("unexpected result types reading the feedback table");
        };
        for row in 0..b.num_rows() {
            let e = out.entry(rule.value(row).to_string()).or_default();
            match verdict.value(row) {
                "true-positive" => e.true_positive += n.value(row),
                "benign" => e.benign += n.value(row),
                "false-positive" => e.false_positive += n.value(row),
                _ => {}
            }
        }
    }
    Ok(out)
}
