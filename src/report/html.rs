//! The report's page: escaping, the frame (inline CSS, no script, nothing fetched) and the
//! sections. Written with `format!`: a template engine would add a dependency and a build step
//! for one page whose every value goes through [`escape`].

use std::fmt::Write;

use crate::event::Timestamp;

/// Text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An id usable in `id=` and `#` links: the id's safe characters and a hash of the whole id, so
/// two ids that differ only in unsafe characters never share an anchor.
pub fn anchor(prefix: &str, s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // FNV-1a: stable across runs and platforms (the report is reproducible).
    let hash = s.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{prefix}-{clean}-{:08x}", hash & 0xffff_ffff)
}

/// Search-parameter names whose values identify a patient (or any resource by id).
const IDENTIFYING_PARAMS: [&str; 6] = [
    "patient",
    "subject",
    "_id",
    "identifier",
    "beneficiary",
    "member",
];

/// Text with the values of identifying search parameters (`?patient=…`, `&subject=Patient/…`)
/// and `Type/id` references in query strings replaced by `…`: a granular scope or a logged
/// scope string may carry a patient id in its constraint, and nothing in the report may.
pub fn redact_ids(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(['?', '&']) {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let end = rest
            .find(|c: char| c == '&' || c == '"' || c == ',' || c.is_whitespace())
            .unwrap_or(rest.len());
        let (pair, tail) = rest.split_at(end);
        match pair.split_once('=') {
            Some((name, value)) if identifies(name, value) => {
                out.push_str(name);
                out.push_str("=…");
            }
            _ => out.push_str(pair),
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

fn identifies(name: &str, value: &str) -> bool {
    let base = name.split(':').next().unwrap_or(name);
    let reference = value
        .split_once('/')
        .is_some_and(|(t, id)| t.starts_with(|c: char| c.is_ascii_uppercase()) && !id.is_empty());
    IDENTIFYING_PARAMS.contains(&base) || reference
}

/// `YYYY-MM-DD HH:MM` UTC.
pub fn minute(t: Timestamp) -> String {
    format_utc(t, "%Y-%m-%d %H:%M")
}

pub fn format_utc(t: Timestamp, pattern: &str) -> String {
    jiff::Timestamp::from_microsecond(t.0)
        .map_or_else(|_| t.0.to_string(), |ts| ts.strftime(pattern).to_string())
}

const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header,main{max-width:1000px;margin:0 auto;padding:0 20px}
header{padding-top:18px}
h1{font-size:22px;margin:8px 0}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ccd}
h3{font-size:15px;margin:0 0 6px}
section.incident,section.app{background:#fff;border:1px solid #dde;border-radius:6px;padding:12px 14px;margin:12px 0}
.sev{display:inline-block;border-radius:3px;padding:0 6px;color:#fff;font-size:12px;text-transform:uppercase}
.sev-critical{background:#7b1020}.sev-high{background:#c0392b}.sev-medium{background:#d68910}.sev-low{background:#2471a3}.sev-info{background:#7f8c8d}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #dde;padding:2px 8px;text-align:left;font-size:13px}
th{background:#eef0f4}td.n{text-align:right}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px;margin:6px 0}dt{color:#556}dd{margin:0}
pre{background:#f0f2f5;padding:6px;overflow-x:auto;font-size:12px}
code{font-size:12px;background:#f0f2f5;padding:0 3px}
ul.callouts li{color:#8a3b00}
svg.plot{display:block;max-width:100%;height:auto;margin:6px 0}
svg .plot-title{font-size:12px;font-weight:600;fill:#1d2430}
svg .tick{font-size:10px;fill:#556}
svg .grid{stroke:#e3e6ea;stroke-width:1}
svg .band{fill:#0072B2;fill-opacity:.15}
svg .highlight{fill:#D55E00;fill-opacity:.10}
p.note{color:#556;font-size:13px}
";

/// The whole page around `body`.
pub fn page(title: &str, body: &str) -> String {
    let mut s = String::with_capacity(body.len() + 4096);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>\n",
        escape(title)
    );
    s
}

pub fn severity_badge(severity: &str) -> String {
    format!("<span class=\"sev sev-{0}\">{0}</span>", escape(severity))
}

/// A definition list from (term, already-escaped HTML) pairs.
pub fn definitions(items: &[(&str, String)]) -> String {
    let mut s = String::from("<dl>");
    for (term, value) in items {
        let _ = write!(s, "<dt>{}</dt><dd>{value}</dd>", escape(term));
    }
    s.push_str("</dl>");
    s
}

/// A table cell: escaped HTML, or a number (right-aligned).
pub enum Cell {
    Html(String),
    Number(String),
}

/// A table from a header and rows of cells.
pub fn table(header: &[&str], rows: &[Vec<Cell>]) -> String {
    let mut s = String::from("<table><tr>");
    for h in header {
        let _ = write!(s, "<th>{}</th>", escape(h));
    }
    s.push_str("</tr>");
    for row in rows {
        s.push_str("<tr>");
        for cell in row {
            let _ = match cell {
                Cell::Number(n) => write!(s, "<td class=\"n\">{}</td>", escape(n)),
                Cell::Html(h) => write!(s, "<td>{h}</td>"),
            };
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
    s
}

/// A JSON document (observed / baseline) pretty-printed for a `<pre>`.
pub fn json_block(text: &str) -> String {
    let pretty = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| text.to_string());
    format!("<pre>{}</pre>", escape(&redact_ids(&pretty)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert!(anchor("app", "a b/c").starts_with("app-a_b_c-"));
        assert_ne!(anchor("app", "acme.app"), anchor("app", "acme_app"));
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(minute(Timestamp(0)), "1970-01-01 00:00");
    }

    #[test]
    fn identifying_constraint_values_are_redacted() {
        // SMART 2.x granular scopes are search parameters; one naming a patient must not show.
        assert_eq!(
            redact_ids("user/Observation.rs?patient=pat-00003&category=laboratory"),
            "user/Observation.rs?patient=…&category=laboratory"
        );
        assert_eq!(
            redact_ids(r#"["user/Observation.rs?subject=Patient/p9", "patient/*.rs"]"#),
            r#"["user/Observation.rs?subject=…", "patient/*.rs"]"#
        );
        assert_eq!(
            redact_ids("patient/Observation.rs?code=http://loinc.org|8867-4"),
            "patient/Observation.rs?code=http://loinc.org|8867-4"
        );
        assert_eq!(redact_ids("no query at all"), "no query at all");
    }
}
