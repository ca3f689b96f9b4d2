//! Document mode's span finder (`scopewatch_ingest::json_spans`), checked against serde_json:
//! on any valid JSON, an array's element spans are exactly its elements and an object's member
//! spans are exactly its members, so splitting a large document never loses or merges a record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopewatch_ingest::json_spans::{array_elements, bundle_entries, object_members};
use serde_json::Value;

fn parse(bytes: &[u8]) -> Value {
    match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => panic!(
            "span {:?} is not a JSON value: {e}",
            String::from_utf8_lossy(bytes)
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        // Not JSON: the finder must still end without a panic.
        let _ = (
            array_elements(data),
            object_members(data),
            bundle_entries(data),
        );
        return;
    };
    let start = data
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    let end = data.len()
        - data
            .iter()
            .rev()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(0);
    let text = &data[start..end];
    match &value {
        Value::Array(items) => {
            let spans = array_elements(text);
            assert_eq!(spans.len(), items.len(), "element count");
            for (span, item) in spans.iter().zip(items) {
                assert_eq!(&parse(&text[span.clone()]), item);
            }
        }
        Value::Object(map) => {
            let members = object_members(text);
            // A key given twice is one member of the map (the last value wins).
            let mut last = serde_json::Map::new();
            for (key, span) in &members {
                let key: String = parse(&[b"\"", &text[key.clone()], b"\""].concat())
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_default();
                last.insert(key, parse(&text[span.clone()]));
            }
            assert_eq!(&last, map, "members");
            if let Some(entries) = bundle_entries(text) {
                let Some(Value::Array(items)) = map.get("entry") else {
                    panic!("bundle_entries found entries serde does not");
                };
                assert_eq!(entries.len(), items.len());
            }
        }
        _ => {}
    }
});
