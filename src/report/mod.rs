//! `scopewatch report`: one self-contained HTML file over the history store — the incidents by
//! severity and app, each incident with its evidence drawn from the store (hourly volume
//! against the seasonal band, the scope timeline, the resource mix before and during, the
//! per-token distribution), and per app its baseline and least-privilege advice.
//!
//! No script, no stylesheet or font fetched, no patient id: plots are inline SVG of counts,
//! resource types and scopes. The same store and window give the same bytes.

mod data;
pub mod html;
mod plots;
pub mod svg;

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use data::{Incident, Store};
use html::{
    anchor, definitions, escape, json_block, minute, redact_ids, severity_badge, table, Cell,
};

use crate::least_privilege::AppAdvice;
use crate::sql::session::SqlError;
use crate::sql::usage::{usage_ledger, TimeWindow};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Sql(#[from] SqlError),
    #[error("{0}")]
    Store(String),
}

/// What to put in the report.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    pub window: TimeWindow,
    /// Incidents drawn with their plots (by severity, then time); the rest are listed.
    pub max_plots: usize,
    pub fhir_base: Option<String>,
}

/// The page and what it holds.
#[derive(Debug)]
pub struct Report {
    pub html: String,
    pub incidents: usize,
    pub plotted: usize,
    pub apps: usize,
}

const SEVERITIES: [&str; 5] = ["critical", "high", "medium", "low", "info"];

/// Reads the store at `data` and renders the report.
pub fn build(data: &Path, options: &ReportOptions) -> Result<Report, ReportError> {
    let store = Store::open(data)?;
    let incidents = data::incidents(&store, &options.window.sql())?;
    let baselines = data::app_baselines(&store)?;
    let (advice, advice_note) = least_privilege(data, options)?;
    let mut apps: Vec<String> = baselines.keys().cloned().collect();
    apps.extend(incidents.iter().map(|i| i.client_id.clone()));
    apps.extend(advice.keys().cloned());
    apps.sort();
    apps.dedup();

    let mut body = String::new();
    let _ = write!(
        body,
        "<header><h1>scopewatch report</h1><p>Store <code>{}</code>, {}: {} incident(s) over {} app(s). \
         <a href=\"#incidents\">Incidents</a> · <a href=\"#apps\">Apps</a></p></header><main>",
        escape(&data.display().to_string()),
        window_text(&options.window),
        incidents.len(),
        apps.len()
    );
    body.push_str(&summary_section(&incidents, &apps));
    let plotted = incidents.len().min(options.max_plots);
    body.push_str("<h2 id=\"incidents\">Incidents</h2>");
    if incidents.is_empty() {
        body.push_str("<p class=\"note\">No incident in the window.</p>");
    }
    for incident in incidents.iter().take(plotted) {
        body.push_str(&incident_section(&store, incident)?);
    }
    if plotted < incidents.len() {
        body.push_str(&remaining_incidents(
            &incidents[plotted..],
            options.max_plots,
        ));
    }
    body.push_str("<h2 id=\"apps\">Apps</h2>");
    if let Some(note) = &advice_note {
        let _ = write!(body, "<p class=\"note\">{}</p>", escape(note));
    }
    let with_incidents: std::collections::BTreeSet<&str> =
        incidents.iter().map(|i| i.client_id.as_str()).collect();
    for app in &apps {
        let draw = with_incidents.contains(app.as_str());
        body.push_str(&app_section(app, baselines.get(app), advice.get(app), draw));
    }
    body.push_str("</main>");
    Ok(Report {
        html: html::page("scopewatch report", &body),
        incidents: incidents.len(),
        plotted,
        apps: apps.len(),
    })
}

fn window_text(w: &TimeWindow) -> String {
    match (w.since, w.until) {
        (None, None) => "all stored history".to_string(),
        (Some(s), None) => format!("from {} UTC", minute(s)),
        (None, Some(u)) => format!("until {} UTC", minute(u)),
        (Some(s), Some(u)) => format!("{} to {} UTC", minute(s), minute(u)),
    }
}

/// Least-privilege advice per app; a pseudonymised store keeps only request shapes, so the
/// advice is left out with a note rather than given wrong.
fn least_privilege(
    data: &Path,
    options: &ReportOptions,
) -> Result<(BTreeMap<String, AppAdvice>, Option<String>), ReportError> {
    let pseudonymised = crate::sql::history::is_pseudonymized(data)
        .map_err(|e| ReportError::Store(e.to_string()))?;
    if pseudonymised {
        let note = "The store holds pseudonymised request shapes: least-privilege advice needs the URLs and is left out.";
        return Ok((BTreeMap::new(), Some(note.to_string())));
    }
    let ledger = usage_ledger(data, &options.window, options.fhir_base.as_deref())?;
    let advice = ledger
        .advice()
        .into_iter()
        .map(|a| (a.client_id.clone(), a))
        .collect();
    Ok((advice, None))
}

fn summary_section(incidents: &[Incident], apps: &[String]) -> String {
    let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for i in incidents {
        *counts
            .entry((i.client_id.as_str(), i.severity.as_str()))
            .or_default() += 1;
    }
    let with_incidents: Vec<&String> = apps
        .iter()
        .filter(|a| {
            SEVERITIES
                .iter()
                .any(|s| counts.contains_key(&(a.as_str(), *s)))
        })
        .collect();
    let rows: Vec<Vec<Cell>> = with_incidents
        .iter()
        .map(|app| {
            let mut row = vec![Cell::Html(format!(
                "<a href=\"#{}\">{}</a>",
                anchor("app", app),
                escape(app)
            ))];
            row.extend(SEVERITIES.iter().map(|s| {
                let n = counts.get(&(app.as_str(), *s)).copied().unwrap_or(0);
                Cell::Number(n.to_string())
            }));
            row
        })
        .collect();
    let labels: Vec<String> = with_incidents.iter().map(|a| (*a).clone()).collect();
    let series: Vec<(&str, Vec<f64>)> = SEVERITIES
        .iter()
        .map(|s| {
            let v = labels
                .iter()
                .map(|a| counts.get(&(a.as_str(), *s)).copied().unwrap_or(0) as f64)
                .collect();
            (*s, v)
        })
        .collect();
    let mut s = String::from("<h2 id=\"summary\">Incidents by severity and app</h2>");
    if !labels.is_empty() {
        s.push_str(&svg::bars(
            "Incidents per app by severity",
            "incidents",
            &labels,
            &series,
            None,
        ));
    }
    let mut header = vec!["app"];
    header.extend(SEVERITIES);
    s.push_str(&table(&header, &rows));
    s
}

fn incident_section(store: &Store, i: &Incident) -> Result<String, ReportError> {
    let mut s = String::new();
    let _ = write!(
        s,
        "<section class=\"incident\" id=\"{}\" data-category=\"{}\"><h3>{} {} — <a href=\"#{}\">{}</a></h3><p>{}</p>",
        anchor("incident", &i.id),
        escape(&i.category),
        severity_badge(&i.severity),
        escape(&i.rule),
        anchor("app", &i.client_id),
        escape(&i.client_id),
        escape(&redact_ids(&i.summary))
    );
    let mut items = vec![
        ("category", escape(&i.category)),
        (
            "window",
            format!("{} – {} UTC", minute(i.start), minute(i.end)),
        ),
        ("records", format!("{} (score {})", i.records, i.score)),
        ("incident id", format!("<code>{}</code>", escape(&i.id))),
    ];
    if !i.cause.is_empty() {
        items.insert(1, ("cause", escape(&redact_ids(&i.cause))));
    }
    s.push_str(&definitions(&items));
    s.push_str(&plots::for_incident(store, i)?);
    let _ = write!(
        s,
        "<details><summary>observed and baseline</summary>{}{}</details></section>",
        json_block(&i.observed),
        json_block(&i.baseline)
    );
    Ok(s)
}

fn remaining_incidents(rest: &[Incident], shown: usize) -> String {
    let rows: Vec<Vec<Cell>> = rest
        .iter()
        .map(|i| {
            vec![
                Cell::Html(severity_badge(&i.severity)),
                Cell::Html(escape(&i.rule)),
                Cell::Html(escape(&i.client_id)),
                Cell::Html(minute(i.start)),
                Cell::Html(escape(&redact_ids(&i.summary))),
            ]
        })
        .collect();
    format!(
        "<p class=\"note\">The first {shown} incidents are drawn; {} more are listed (raise --max-plots to draw them).</p>{}",
        rest.len(),
        table(&["severity", "rule", "app", "start (UTC)", "summary"], &rows)
    )
}

/// An app's section; its learnt activity is drawn when it has incidents (a plot per app of a
/// large estate would make the file heavy for no finding).
fn app_section(
    app: &str,
    baseline: Option<&data::AppBaseline>,
    advice: Option<&AppAdvice>,
    draw_activity: bool,
) -> String {
    let mut s = format!(
        "<section class=\"app\" id=\"{}\"><h3>{}</h3>",
        anchor("app", app),
        escape(app)
    );
    match baseline {
        Some(b) => {
            s.push_str(&definitions(&[
                ("first seen", format!("{} UTC", minute(b.first_seen))),
                ("last seen", format!("{} UTC", minute(b.last_seen))),
                ("active days", b.active_days.to_string()),
            ]));
            if draw_activity {
                s.push_str(&plots::activity(&b.hour_of_week));
            }
        }
        None => s.push_str("<p class=\"note\">No baseline stored for this app.</p>"),
    }
    if let Some(a) = advice {
        s.push_str(&advice_block(a));
    }
    s.push_str("</section>");
    s
}

fn advice_block(a: &AppAdvice) -> String {
    let mut s = String::from("<h4>Least privilege</h4>");
    if !a.callouts.is_empty() {
        s.push_str("<ul class=\"callouts\">");
        for c in &a.callouts {
            let _ = write!(s, "<li>{}</li>", escape(&redact_ids(c)));
        }
        s.push_str("</ul>");
    }
    let rows: Vec<Vec<Cell>> = a
        .granted
        .iter()
        .map(|g| {
            vec![
                Cell::Html(format!("<code>{}</code>", escape(&redact_ids(&g.scope)))),
                Cell::Html(escape(g.usage.as_str())),
                Cell::Number(g.grants.to_string()),
                // Only resource scopes serve requests (the others: refreshes, launches).
                Cell::Number(
                    match crate::smart::scope::Scope::parse(&g.scope).as_resource() {
                        Some(_) => g.requests.to_string(),
                        None => "—".to_string(),
                    },
                ),
            ]
        })
        .collect();
    s.push_str(&table(
        &["granted scope", "usage", "grants", "requests served"],
        &rows,
    ));
    let _ = write!(
        s,
        "<p>Recommended: <code>{}</code></p>",
        escape(if a.recommended.is_empty() {
            "(nothing served)"
        } else {
            &a.recommended
        })
    );
    s
}
