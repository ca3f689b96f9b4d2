//! A PHI-free shape of a request for evidence and logs: the FHIR path with ids replaced by `…`
//! and query values replaced by `…` (except page-size and type lists, which carry no identity).

use super::classify::{is_anchor, strip_scheme_and_host};
use super::compartment::known_resource_type;
use super::method::Method;
use super::query;

/// Query parameters whose values are kept: they shape volume, not identity.
const KEPT_VALUES: &[&str] = &[
    "_count",
    "_type",
    "_summary",
    "_total",
    "_sort",
    "_elements",
    "_format",
];

/// Whether a query parameter name is shaped like a FHIR search parameter (`code`,
/// `clinical-status`, `_lastUpdated`, `subject:Patient.name`, `_has:Observation:patient:code`):
/// segments of letters and hyphens joined by `:` or `.`. Anything else — `PHIA06`,
/// `patient=PHIA03` from a `%3D` — may be an identifier a client put where a name goes, and is
/// masked like a value.
fn is_parameter_name(name: &str) -> bool {
    name.len() <= 64
        && name.split([':', '.']).enumerate().all(|(i, segment)| {
            let segment = if i == 0 {
                segment.strip_prefix('_').unwrap_or(segment)
            } else {
                segment
            };
            segment.starts_with(|c: char| c.is_ascii_alphabetic())
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphabetic() || b == b'-')
                && (i > 0
                    || segment.starts_with(|c: char| c.is_ascii_lowercase())
                    || name.starts_with('_'))
        })
}

/// Whether a kept parameter's (decoded) value may be shown: short, and only the characters
/// counts, type lists, sort keys and formats use. A decoded `&`, `=` or `%` would make the shape
/// ambiguous (`_count=1%26x%3D5` must not read as `_count=1&x=5`).
fn is_plain_value(value: &str) -> bool {
    value.len() <= 64
        && value.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b',' | b'-' | b':' | b'.' | b'_' | b'/' | b'+')
        })
}

/// `GET Patient/…/Observation?category=…&_count=50` for
/// `GET https://ehr/fhir/Patient/123/Observation?category=laboratory&_count=50`.
pub fn request_shape(method: Method, url: &str) -> String {
    let url = url.trim();
    let url = url.split_once('#').map_or(url, |(u, _)| u);
    let (path, query_text) = match url.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (url, None),
    };
    let path = strip_scheme_and_host(path).unwrap_or(path);
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let start = segments
        .iter()
        .position(|s| is_anchor(s))
        .unwrap_or(segments.len());
    let mut out = String::from(method.as_str());
    out.push(' ');
    let mut first = true;
    for (i, segment) in segments[start..].iter().enumerate() {
        if !first {
            out.push('/');
        }
        first = false;
        let keep = known_resource_type(segment).is_some()
            || segment.starts_with('$')
            || segment.starts_with('_')
            || (i == 0 && is_anchor(segment))
            || *segment == "*";
        out.push_str(if keep { segment } else { "…" });
    }
    if let Some(q) = query_text.filter(|q| !q.is_empty()) {
        out.push('?');
        for (i, (name, value)) in query::pairs(q).enumerate() {
            if i > 0 {
                out.push('&');
            }
            out.push_str(if is_parameter_name(&name) {
                &name
            } else {
                "…"
            });
            out.push('=');
            if KEPT_VALUES.contains(&name.as_ref()) && is_plain_value(&value) {
                out.push_str(&value);
            } else {
                out.push('…');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_ids_and_values() {
        let cases = [
            (Method::Get, "Patient/123", "GET Patient/…"),
            (Method::Get, "https://ehr.example.org/fhir/r4/Patient/123/Observation?category=laboratory&_count=50", "GET Patient/…/Observation?category=…&_count=50"),
            (Method::Get, "Observation?patient=Patient/9&_type=x", "GET Observation?patient=…&_type=x"),
            (Method::Get, "Patient/p1/_history/3", "GET Patient/…/_history/…"),
            (Method::Post, "Patient/$export", "POST Patient/$export"),
            (Method::Get, "?_getpages=abc&_count=20", "GET ?_getpages=…&_count=20"),
            (Method::Get, "Patient/123/$everything", "GET Patient/…/$everything"),
            (Method::Get, "metadata", "GET metadata"),
            // A kept value that decodes to separators is masked (seen while writing the fuzz
            // target's oracle).
            (Method::Get, "Observation?_count=1%26x%3D5", "GET Observation?_count=…"),
            (Method::Get, "Observation?_format=application/fhir%2Bjson&_sort=-date", "GET Observation?_format=application/fhir+json&_sort=-date"),
            // Issue #16: names that may be identifiers are masked like values.
            (Method::Get, "Condition?PHIA06", "GET Condition?…=…"),
            (Method::Get, "Condition?patient%3DPHIA03", "GET Condition?…=…"),
            (Method::Get, "Observation?subject:Patient.name=x&_lastUpdated=gt1", "GET Observation?subject:Patient.name=…&_lastUpdated=…"),
            (Method::Get, "Observation?clinical-status=active&code:text=a", "GET Observation?clinical-status=…&code:text=…"),
        ];
        for (m, url, want) in cases {
            assert_eq!(request_shape(m, url), want, "{url}");
        }
    }
}
