//! `scopewatch least-privilege`: per app, the scopes granted against the permissions its served
//! requests exercised (from the history store `detect` writes), unused scopes, wildcards a
//! short explicit list replaces, and a recommended SMART v2 scope string. The judgement is the
//! core's (`scopewatch_core::least_privilege`); this file reads the store and prints.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Int64Type, TimestampMicrosecondType};

use super::Outcome;
use crate::event::Timestamp;
use crate::least_privilege::{AppAdvice, ServedAccess, UsageLedger};
use crate::smart::request::{Classifier, Method};
use crate::smart::scope::Scope;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AdviceFormat {
    /// One block per app, callouts first.
    Table,
    /// One row per app and scope: client_id,scope,kind,grants,requests.
    Csv,
    /// One JSON document: the window and one object per app.
    Json,
}

#[derive(Debug, clap::Args)]
pub struct LeastPrivilegeArgs {
    /// History store written by `detect --data` or `run --data`.
    #[arg(long, value_name = "DIR", default_value = "scopewatch-data", value_parser = super::output::local_store)]
    pub data: PathBuf,

    /// Only grants and requests at or after this time (RFC 3339, or a date for its midnight UTC).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<Timestamp>,

    /// Only grants and requests before this time (RFC 3339, or a date for its midnight UTC).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<Timestamp>,

    /// Only this app (repeatable).
    #[arg(long = "client", value_name = "CLIENT_ID")]
    pub clients: Vec<String>,

    #[arg(long = "output-format", value_enum, default_value = "table")]
    pub output_format: AdviceFormat,

    /// FHIR base URL the access log's absolute URLs start with (as given to `detect`).
    #[arg(long, value_name = "URL")]
    pub fhir_base: Option<String>,
}

fn parse_time(text: &str) -> Result<Timestamp, String> {
    let full = if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text.to_string()
    };
    Timestamp::parse_rfc3339(&full)
        .map_err(|e| format!("`{text}`: {e} (expected RFC 3339 or YYYY-MM-DD)"))
}

pub fn run(args: LeastPrivilegeArgs) -> anyhow::Result<Outcome> {
    if !args.data.is_dir() {
        anyhow::bail!(
            "--data {}: not a history store directory",
            args.data.display()
        );
    }
    // A pseudonymised store keeps request shapes, not URLs: granular scopes and the launch
    // patient cannot be judged from them, and advice built on them would be wrong.
    if crate::sql::history::is_pseudonymized(&args.data)? {
        anyhow::bail!(
            "--data {}: the store was written with pseudonymised ids, so its URLs are request shapes; least-privilege needs a store written without a pseudonymisation key",
            args.data.display()
        );
    }
    let classifier = match &args.fhir_base {
        Some(base) => Classifier::with_base(base),
        None => Classifier::new(),
    };
    let mut ledger = UsageLedger::new(classifier);
    let filter = time_filter(&args);
    read_grants(&args, &filter, &mut ledger)?;
    read_accesses(&args, &filter, &mut ledger)?;
    let advice: Vec<AppAdvice> = ledger
        .advice()
        .into_iter()
        .filter(|a| args.clients.is_empty() || args.clients.contains(&a.client_id))
        .collect();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match args.output_format {
        AdviceFormat::Table => write_table(&mut out, &advice)?,
        AdviceFormat::Csv => write_csv(&mut out, &advice)?,
        AdviceFormat::Json => write_json(&mut out, &advice, &args)?,
    }
    out.flush()?;
    Ok(Outcome::Clean)
}

/// `AND time >= … AND time < …` for the window (timestamps are printed by us, not the user).
fn time_filter(args: &LeastPrivilegeArgs) -> String {
    let mut out = String::new();
    if let Some(t) = args.since {
        out.push_str(&format!(" AND time >= to_timestamp_micros({})", t.0));
    }
    if let Some(t) = args.until {
        out.push_str(&format!(" AND time < to_timestamp_micros({})", t.0));
    }
    out
}

fn query(args: &LeastPrivilegeArgs, sql: &str) -> anyhow::Result<Vec<RecordBatch>> {
    crate::sql::session::query_blocking(&args.data, sql)
        .with_context(|| format!("reading {}", args.data.display()))
}

fn read_grants(
    args: &LeastPrivilegeArgs,
    filter: &str,
    ledger: &mut UsageLedger,
) -> anyhow::Result<()> {
    // Revocations count from before the window too: a token revoked earlier and used in the
    // window was not honestly used.
    let until = args.until.map_or_else(String::new, |t| {
        format!(" AND time < to_timestamp_micros({})", t.0)
    });
    let sql = format!(
        "SELECT client_id, event, scope_granted, patient IS NOT NULL, token_id, time FROM tokens \
         WHERE (event IN ('issued', 'refreshed'){filter}) OR (event = 'revoked'{until}) \
         ORDER BY time, client_id"
    );
    for b in query(args, &sql)? {
        let (Some(client), Some(event), Some(scope), Some(patient), Some(token)) = (
            b.column(0).as_string_opt::<i32>(),
            b.column(1).as_string_opt::<i32>(),
            b.column(2).as_string_opt::<i32>(),
            b.column(3).as_boolean_opt(),
            b.column(4).as_string_opt::<i32>(),
        ) else {
            anyhow::bail!(
                "{}: the tokens table has unexpected column types",
                args.data.display()
            );
        };
        for row in 0..b.num_rows() {
            match event.value(row) {
                "revoked" => {
                    if let (Some(id), Some(time)) = (opt(token, row), time_of(&b, row)) {
                        ledger.revoke(id, time);
                    }
                }
                kind => ledger.grant(
                    client.value(row),
                    opt(scope, row),
                    kind == "refreshed",
                    patient.value(row),
                ),
            }
        }
    }
    Ok(())
}

fn read_accesses(
    args: &LeastPrivilegeArgs,
    filter: &str,
    ledger: &mut UsageLedger,
) -> anyhow::Result<()> {
    // Identical requests of one token fold into one row; the first time keeps exports before
    // their status polls and files.
    let sql = format!(
        "SELECT min(time) AS first, client_id, token_id, method, url, status, \
                array_to_string(granted_scopes, ' ') AS granted, token_patient, patient, \
                patient_count, count(*) AS n \
         FROM access WHERE status >= 200 AND status < 300{filter} \
         GROUP BY client_id, token_id, method, url, status, granted, token_patient, patient, patient_count \
         ORDER BY first, client_id, token_id, url"
    );
    for b in query(args, &sql)? {
        for access in
            rows(&b).with_context(|| format!("{}: the access table", args.data.display()))?
        {
            ledger.access(&access);
        }
    }
    Ok(())
}

fn rows(b: &RecordBatch) -> anyhow::Result<Vec<ServedAccess<'_>>> {
    let text = |i: usize| {
        b.column(i)
            .as_string_opt::<i32>()
            .context("unexpected column type")
    };
    let (client, token, method, url, granted) = (text(1)?, text(2)?, text(3)?, text(4)?, text(6)?);
    let (token_patient, patient) = (text(7)?, text(8)?);
    let time = b
        .column(0)
        .as_primitive_opt::<TimestampMicrosecondType>()
        .context("time is not a timestamp")?;
    let status = b
        .column(5)
        .as_primitive_opt::<datafusion::arrow::datatypes::Int32Type>();
    let status = status.context("status is not an integer")?;
    let patient_count = b
        .column(9)
        .as_primitive_opt::<Int64Type>()
        .context("patient_count")?;
    let n = b
        .column(10)
        .as_primitive_opt::<Int64Type>()
        .context("count")?;
    let mut out = Vec::with_capacity(b.num_rows());
    for row in 0..b.num_rows() {
        // The store only holds methods the event contract accepted.
        let Ok(m) = method.value(row).parse::<Method>() else {
            continue;
        };
        out.push(ServedAccess {
            time: Timestamp(time.value(row)),
            client_id: client.value(row),
            token_id: opt(token, row),
            method: m,
            url: url.value(row),
            status: u16::try_from(status.value(row)).unwrap_or(0),
            granted: opt(granted, row).filter(|g| !g.is_empty()),
            token_patient: opt(token_patient, row),
            patient: opt(patient, row),
            patient_count: (!patient_count.is_null(row))
                .then(|| u64::try_from(patient_count.value(row)).unwrap_or(0)),
            count: u64::try_from(n.value(row)).unwrap_or(0),
        });
    }
    Ok(out)
}

fn time_of(b: &RecordBatch, row: usize) -> Option<Timestamp> {
    let times = b.column(5).as_primitive_opt::<TimestampMicrosecondType>()?;
    (!times.is_null(row)).then(|| Timestamp(times.value(row)))
}

fn opt(a: &datafusion::arrow::array::StringArray, row: usize) -> Option<&str> {
    (!a.is_null(row)).then(|| a.value(row))
}

fn write_table(out: &mut impl Write, advice: &[AppAdvice]) -> anyhow::Result<()> {
    if advice.is_empty() {
        writeln!(out, "no grants or served requests in the window")?;
    }
    for a in advice {
        writeln!(
            out,
            "{}  ({} grant(s), {} refresh(es), {} served request(s), {} not assessable)",
            a.client_id, a.grants, a.refreshes, a.served_requests, a.unassessed_requests
        )?;
        for c in &a.callouts {
            writeln!(out, "  ! {c}")?;
        }
        for g in &a.granted {
            // Only resource scopes serve requests; the others are judged by refreshes/launches.
            let requests = match Scope::parse(&g.scope).as_resource() {
                Some(_) => format!(" {:>8} request(s)", g.requests),
                None => String::new(),
            };
            writeln!(
                out,
                "  {:<14} {:<48} {:>6} grant(s){requests}",
                g.usage.as_str(),
                g.scope,
                g.grants,
            )?;
        }
        for b in &a.beyond_grant {
            writeln!(
                out,
                "  {:<14} {:<48} {:>24} request(s)",
                "beyond-grant", b.permission, b.requests
            )?;
        }
        writeln!(out, "  recommended: {}", a.recommended)?;
        writeln!(out)?;
    }
    Ok(())
}

fn write_csv(out: &mut impl Write, advice: &[AppAdvice]) -> anyhow::Result<()> {
    writeln!(out, "client_id,scope,kind,grants,requests")?;
    let mut row = |client: &str, scope: &str, kind: &str, grants: u64, requests: u64| {
        writeln!(
            out,
            "{},{},{kind},{grants},{requests}",
            csv_field(client),
            csv_field(scope)
        )
    };
    for a in advice {
        for g in &a.granted {
            row(
                &a.client_id,
                &g.scope,
                g.usage.as_str(),
                g.grants,
                g.requests,
            )?;
        }
        for b in &a.beyond_grant {
            row(&a.client_id, &b.permission, "beyond-grant", 0, b.requests)?;
        }
        for scope in a.recommended.split_ascii_whitespace() {
            row(&a.client_id, scope, "recommended", 0, 0)?;
        }
    }
    Ok(())
}

/// RFC 4180 quoting where a field needs it (granular scopes carry `,` and `"` is possible).
fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

fn write_json(
    out: &mut impl Write,
    advice: &[AppAdvice],
    args: &LeastPrivilegeArgs,
) -> anyhow::Result<()> {
    let doc = serde_json::json!({
        "since": args.since,
        "until": args.until,
        "apps": advice,
    });
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)?;
    Ok(())
}
