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

/// An id usable in `id=` and `#` links (the incident and client ids are free text).
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
    format!("{prefix}-{clean}")
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

/// A table from a header and rows of already-escaped cells (`n:` prefix: a number, right-aligned).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = String::from("<table><tr>");
    for h in header {
        let _ = write!(s, "<th>{}</th>", escape(h));
    }
    s.push_str("</tr>");
    for row in rows {
        s.push_str("<tr>");
        for cell in row {
            match cell.strip_prefix("n:") {
                Some(n) => {
                    let _ = write!(s, "<td class=\"n\">{n}</td>");
                }
                None => {
                    let _ = write!(s, "<td>{cell}</td>");
                }
            }
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
    format!("<pre>{}</pre>", escape(&pretty))
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
        assert_eq!(anchor("app", "a b/c"), "app-a_b_c");
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(minute(Timestamp(0)), "1970-01-01 00:00");
    }
}
