//! The documented contract and the parser agree: every example in docs/event-contract.md parses,
//! and the JSON Schema's required fields are the parser's.

use scopewatch::event::{
    parse_event_str, Event, FIELD_NAMES, REQUIRED_ACCESS, REQUIRED_COMMON, REQUIRED_TOKEN,
};
use serde_json::Value;

fn doc(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).expect(path)
}

/// Lines of every ```ndjson block.
fn ndjson_examples(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            inside = line.trim() == "```ndjson";
            continue;
        }
        if inside && !line.trim().is_empty() {
            out.push(line.to_string());
        }
    }
    out
}

#[test]
fn documented_examples_parse() {
    for path in ["docs/event-contract.md", "README.md"] {
        let examples = ndjson_examples(&doc(path));
        assert!(examples.len() >= 3, "{path} has examples");
        for line in &examples {
            if let Err(e) = parse_event_str(line) {
                panic!("{path}: example does not parse ({e}): {line}");
            }
        }
    }
    let examples = ndjson_examples(&doc("docs/event-contract.md"));
    let events: Vec<Event> = examples
        .iter()
        .filter_map(|l| parse_event_str(l).ok())
        .collect();
    assert!(events.iter().any(|e| matches!(e, Event::Token(_))));
    assert!(events.iter().any(|e| matches!(e, Event::Access(_))));
}

fn strings(v: &Value) -> Vec<String> {
    let mut s: Vec<String> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_str().expect("string").to_string())
        .collect();
    s.sort();
    s
}

fn sorted(a: &[&str]) -> Vec<String> {
    let mut s: Vec<String> = a.iter().map(|x| x.to_string()).collect();
    s.sort();
    s
}

#[test]
fn schema_matches_parser() {
    let schema: Value =
        serde_json::from_str(&doc("docs/event.schema.json")).expect("schema is JSON");
    assert_eq!(strings(&schema["required"]), sorted(&REQUIRED_COMMON));
    let variants = schema["oneOf"].as_array().expect("oneOf");
    let token = variants
        .iter()
        .find(|v| v["properties"]["type"]["const"] == "token")
        .expect("token");
    let access = variants
        .iter()
        .find(|v| v["properties"]["type"]["const"] == "access")
        .expect("access");
    assert_eq!(strings(&token["required"]), sorted(&REQUIRED_TOKEN));
    assert_eq!(strings(&access["required"]), sorted(&REQUIRED_ACCESS));

    // Every field the parser knows is documented in the schema, and nothing more.
    let mut documented: Vec<String> = schema["properties"]
        .as_object()
        .expect("props")
        .keys()
        .cloned()
        .collect();
    for v in [token, access] {
        documented.extend(v["properties"].as_object().expect("props").keys().cloned());
    }
    documented.sort();
    documented.dedup();
    assert_eq!(documented, sorted(&FIELD_NAMES));
}
