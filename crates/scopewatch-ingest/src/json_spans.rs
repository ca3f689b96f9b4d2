//! Where the parts of a JSON value lie in its text, without building it: the elements of an
//! array, the members of an object. Document mode uses them to decode a large array or Bundle
//! one element at a time, so memory holds the document's bytes and one element's tree, never a
//! `serde_json::Value` of the whole document (about 80 times its size).
//!
//! The text must already be valid JSON (serde has checked it); on anything else these return
//! what they found so far and never panic.

use std::ops::Range;

fn skip_whitespace(text: &[u8], mut at: usize) -> usize {
    while text.get(at).is_some_and(|b| b.is_ascii_whitespace()) {
        at += 1;
    }
    at
}

/// The end of the string whose opening quote is at `at` (one past its closing quote).
fn string_end(text: &[u8], at: usize) -> usize {
    let mut i = at + 1;
    while let Some(&b) = text.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    text.len()
}

/// The end of the value starting at `at` (after whitespace).
fn value_end(text: &[u8], at: usize) -> usize {
    match text.get(at) {
        Some(b'"') => string_end(text, at),
        Some(b'[' | b'{') => {
            let mut depth = 0usize;
            let mut i = at;
            while let Some(&b) = text.get(i) {
                match b {
                    b'"' => {
                        i = string_end(text, i);
                        continue;
                    }
                    b'[' | b'{' => depth += 1,
                    b']' | b'}' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            text.len()
        }
        _ => {
            let mut i = at;
            while text
                .get(i)
                .is_some_and(|b| !matches!(b, b',' | b']' | b'}') && !b.is_ascii_whitespace())
            {
                i += 1;
            }
            i
        }
    }
}

/// The spans of an array's elements, given the array's text (which starts with `[`).
pub fn array_elements(text: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut at = skip_whitespace(text, 1);
    while at < text.len() && text[at] != b']' {
        let end = value_end(text, at);
        if end <= at {
            break;
        }
        out.push(at..end);
        at = skip_whitespace(text, end);
        if text.get(at) == Some(&b',') {
            at = skip_whitespace(text, at + 1);
        }
    }
    out
}

/// The members of an object, given its text (which starts with `{`): the key's span (inside
/// its quotes, escapes left as written) and the value's span.
pub fn object_members(text: &[u8]) -> Vec<(Range<usize>, Range<usize>)> {
    let mut out = Vec::new();
    let mut at = skip_whitespace(text, 1);
    while text.get(at) == Some(&b'"') {
        let key_end = string_end(text, at);
        let key = at + 1..key_end.saturating_sub(1).max(at + 1);
        let colon = skip_whitespace(text, key_end);
        if text.get(colon) != Some(&b':') {
            break;
        }
        let value_start = skip_whitespace(text, colon + 1);
        let value_end = value_end(text, value_start);
        if value_end <= value_start {
            break;
        }
        out.push((key, value_start..value_end));
        at = skip_whitespace(text, value_end);
        if text.get(at) == Some(&b',') {
            at = skip_whitespace(text, at + 1);
        }
    }
    out
}

/// A FHIR Bundle's `entry` array as element spans (relative to `text`), or `None` when `text`
/// is not an object whose `resourceType` is `"Bundle"` with an array of entries. `None` too
/// when a key is escaped or given twice (serde keeps the last of a repeated key: the caller's
/// whole-value path then decides as it always did) or when the object has a `realmId` (a
/// Keycloak event, whatever else it holds).
pub fn bundle_entries(text: &[u8]) -> Option<Vec<Range<usize>>> {
    if text.first() != Some(&b'{') {
        return None;
    }
    let members = object_members(text);
    let mut keys: Vec<&[u8]> = members.iter().map(|(k, _)| &text[k.clone()]).collect();
    if keys.iter().any(|k| k.contains(&b'\\') || *k == b"realmId") {
        return None;
    }
    keys.sort_unstable();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return None;
    }
    let value_of = |name: &[u8]| {
        members
            .iter()
            .find(|(k, _)| &text[k.clone()] == name)
            .map(|(_, v)| v.clone())
    };
    let kind = value_of(b"resourceType")?;
    if &text[kind] != b"\"Bundle\"" {
        return None;
    }
    let entry = value_of(b"entry")?;
    if text.get(entry.start) != Some(&b'[') {
        return None;
    }
    let offset = entry.start;
    Some(
        array_elements(&text[entry])
            .into_iter()
            .map(|r| r.start + offset..r.end + offset)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts<'a>(text: &'a str, spans: &[Range<usize>]) -> Vec<&'a str> {
        spans.iter().map(|r| &text[r.clone()]).collect()
    }

    #[test]
    fn array_elements_are_found_across_strings_and_nesting() {
        let text = r#"[ {"a": "x]}\"", "b": [1, {"c": 2}]},
  "s,t", 12.5e3 , null, true, [ ], {} ]"#;
        let spans = array_elements(text.as_bytes());
        assert_eq!(
            texts(text, &spans),
            [
                r#"{"a": "x]}\"", "b": [1, {"c": 2}]}"#,
                r#""s,t""#,
                "12.5e3",
                "null",
                "true",
                "[ ]",
                "{}"
            ]
        );
        assert!(array_elements(b"[]").is_empty());
        assert!(array_elements(b"[ \n ]").is_empty());
    }

    #[test]
    fn object_members_give_key_and_value_spans() {
        let text = r#"{ "resourceType" : "Bundle", "e\"x": {"y": [1]}, "n": -1 }"#;
        let members = object_members(text.as_bytes());
        let pairs: Vec<(&str, &str)> = members
            .iter()
            .map(|(k, v)| (&text[k.clone()], &text[v.clone()]))
            .collect();
        assert_eq!(
            pairs,
            [
                ("resourceType", r#""Bundle""#),
                (r#"e\"x"#, r#"{"y": [1]}"#),
                ("n", "-1")
            ]
        );
    }

    #[test]
    fn bundle_entries_only_for_a_bundle_with_an_entry_array() {
        let text = r#"{"entry": [{"resource": {"id": "a"}}, {}], "resourceType": "Bundle"}"#;
        let spans = bundle_entries(text.as_bytes()).unwrap();
        assert_eq!(texts(text, &spans), [r#"{"resource": {"id": "a"}}"#, "{}"]);
        assert!(bundle_entries(br#"{"resourceType": "AuditEvent", "entry": []}"#).is_none());
        assert!(bundle_entries(br#"{"resourceType": "Bundle"}"#).is_none());
        assert!(bundle_entries(br#"{"resourceType": "Bundle", "entry": {}}"#).is_none());
        assert!(bundle_entries(b"[1]").is_none());
        // Repeated or escaped keys, and Keycloak's `realmId`, leave the decision to serde.
        for text in [
            &br#"{"resourceType": "Bundle", "entry": [{}], "resourceType": "AuditEvent"}"#[..],
            br#"{"resourceType": "Bundle", "entry": [{}], "entry": [{}, {}]}"#,
            br#"{"resourceType": "Bundle", "entr\u0079": [{}]}"#,
            br#"{"resourceType": "Bundle", "entry": [{}], "realmId": "r"}"#,
        ] {
            assert!(
                bundle_entries(text).is_none(),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn broken_text_ends_the_scan_without_a_panic() {
        for text in [
            &b"["[..],
            b"[\"abc",
            b"[{\"a\":",
            b"{\"a\"",
            b"{\"a\" 1}",
            b"{",
            b"[1,",
            b"{\"\\",
        ] {
            let _ = array_elements(text);
            let _ = object_members(text);
            let _ = bundle_entries(text);
        }
    }
}
