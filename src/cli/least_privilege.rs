//! `scopewatch least-privilege`: per app, the scopes granted against the permissions its served
//! requests exercised (from the history store `detect` writes), unused scopes, wildcards a
//! short explicit list replaces, and a recommended SMART v2 scope string. The judgement is the
//! core's (`scopewatch_core::least_privilege`); this file reads the store and prints.

use std::io::Write;
use std::path::PathBuf;

use super::Outcome;
use crate::event::Timestamp;
use crate::least_privilege::AppAdvice;
use crate::smart::scope::Scope;
use crate::sql::usage::{usage_ledger, TimeWindow};

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
    #[arg(long, value_name = "DIR", default_value = super::defaults::DATA_DIR, value_parser = super::output::local_store)]
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

pub fn parse_time(text: &str) -> Result<Timestamp, String> {
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
    let window = TimeWindow {
        since: args.since,
        until: args.until,
    };
    let ledger = usage_ledger(&args.data, &window, args.fhir_base.as_deref())?;
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
