//! Input formats: the canonical NDJSON contract, FHIR AuditEvent (R4/R5/BALP), Keycloak
//! events and gateway JSON access logs. Every format decodes to canonical events, so detection
//! and the history store never see the difference.

mod auditevent;
mod fhir;
mod gateway;
mod keycloak;

use std::sync::Arc;

use serde::Deserialize as _;
use serde_json::Value;

use crate::event::{json_reject, parse_event_str, within_bounds, Event, Reject, RejectKind};

pub use gateway::{GatewayMapping, MappingError, TimeFormat, BUILT_IN_MAPPINGS};
pub use keycloak::KeycloakOptions;

/// What one record (a line, or one entry of a Bundle or JSON array) became.
// Events are the common case: boxing them would add an allocation per record.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Decoded {
    Event(Event),
    /// A valid record that is not an event scopewatch uses (a login AuditEvent, a Keycloak
    /// admin event); counted by reason, not dead-lettered.
    Skipped(String),
    Rejected(Reject),
}

/// How to read input records.
#[derive(Clone, Debug, Default)]
pub enum InputFormat {
    /// Per record: a canonical event if it is one; otherwise, by top-level key, FHIR resources
    /// (`resourceType`) or Keycloak events (`realmId`). Gateway logs need a mapping and are
    /// never guessed.
    #[default]
    Auto,
    Canonical,
    AuditEvent,
    Keycloak,
    Gateway(Arc<GatewayMapping>),
}

impl InputFormat {
    pub fn name(&self) -> &'static str {
        match self {
            InputFormat::Auto => "auto",
            InputFormat::Canonical => "ndjson",
            InputFormat::AuditEvent => "auditevent",
            InputFormat::Keycloak => "keycloak",
            InputFormat::Gateway(_) => "gateway",
        }
    }

    /// Whether a source may be one pretty-printed JSON document (a FHIR Bundle, a JSON array of
    /// Keycloak events from the admin REST API, …) instead of one record per line.
    pub fn allows_documents(&self) -> bool {
        !matches!(self, InputFormat::Canonical)
    }
}

/// Everything decoding needs besides the record.
#[derive(Clone, Debug, Default)]
pub struct DecodeOptions {
    pub format: InputFormat,
    pub keycloak: KeycloakOptions,
}

enum Sniffed {
    Fhir,
    Keycloak,
    Canonical,
}

/// The top-level keys that tell the formats apart; values are skipped, not built.
#[derive(serde::Deserialize)]
struct TopLevelKeys<'a> {
    #[serde(rename = "realmId")]
    realm_id: Option<serde::de::IgnoredAny>,
    #[serde(rename = "resourceType")]
    resource_type: Option<serde::de::IgnoredAny>,
    /// ECS JSON logs carry Keycloak's jboss line in `message`.
    #[serde(borrow)]
    message: Option<std::borrow::Cow<'a, str>>,
}

/// What a line that is not a canonical event is, by its structure: a JSON object by its
/// top-level keys (`realmId`: Keycloak, `resourceType`: FHIR), never by text inside values a
/// client controls (a URL or user agent holding `realmId=` must not turn an access event into
/// a skipped Keycloak record). Only lines that are not a JSON object — Keycloak's log lines
/// with a prefix, FHIR arrays — are judged by their text.
fn sniff(text: &str) -> Sniffed {
    let trimmed = text.trim_start();
    let has = |needle: &[u8]| memchr::memmem::find(text.as_bytes(), needle).is_some();
    if trimmed.starts_with('{') {
        return match serde_json::from_str::<TopLevelKeys>(trimmed) {
            Ok(k) if k.realm_id.is_some() => Sniffed::Keycloak,
            Ok(k) if k.message.as_deref().is_some_and(|m| m.contains("realmId=")) => {
                Sniffed::Keycloak
            }
            Ok(k) if k.resource_type.is_some() => Sniffed::Fhir,
            _ => Sniffed::Canonical,
        };
    }
    if trimmed.starts_with('[') && has(b"\"resourceType\"") {
        return Sniffed::Fhir;
    }
    // A log prefix, then Keycloak's JSON (`… JSON_EVENT::{…}`): its top-level keys decide.
    if let Some(brace) = text.find('{') {
        let json = &text[brace..];
        return match serde_json::from_str::<TopLevelKeys>(json) {
            Ok(k) if k.realm_id.is_some() => Sniffed::Keycloak,
            _ if text[..brace].contains("realmId=") => Sniffed::Keycloak,
            _ => Sniffed::Canonical,
        };
    }
    // The jboss-logging line `type=…, realmId=…` holds no JSON at all.
    if has(b"realmId=") {
        Sniffed::Keycloak
    } else {
        Sniffed::Canonical
    }
}

/// An event over the size bounds (`event::within_bounds`) becomes a reject. The canonical
/// parser bounds its own events; the other formats' events pass through here.
fn bounded(decoded: Decoded) -> Decoded {
    match decoded {
        Decoded::Event(e) => match within_bounds(e) {
            Ok(e) => Decoded::Event(e),
            Err(r) => Decoded::Rejected(r),
        },
        other => other,
    }
}

/// Decodes one line (UTF-8, without its newline) into zero or more records.
pub fn decode_line(text: &str, options: &DecodeOptions, out: &mut dyn FnMut(Decoded)) {
    let one = |r: Result<Event, Reject>| match r {
        Ok(e) => Decoded::Event(e),
        Err(r) => Decoded::Rejected(r),
    };
    match &options.format {
        InputFormat::Canonical => out(one(parse_event_str(text))),
        // A line that is a canonical event is one, whatever its values hold.
        InputFormat::Auto => match parse_event_str(text) {
            Ok(event) => out(Decoded::Event(event)),
            Err(canonical) => match sniff(text) {
                Sniffed::Fhir => decode_fhir_text(text, &mut |d| out(bounded(d))),
                Sniffed::Keycloak => out(bounded(keycloak::decode_line(text, options.keycloak))),
                Sniffed::Canonical => out(Decoded::Rejected(canonical)),
            },
        },
        InputFormat::AuditEvent => decode_fhir_text(text, &mut |d| out(bounded(d))),
        InputFormat::Keycloak => out(bounded(keycloak::decode_line(text, options.keycloak))),
        InputFormat::Gateway(mapping) => {
            match serde_json::from_str::<serde_json::Map<String, Value>>(text) {
                Ok(object) => out(bounded(mapping.decode_object(&object))),
                Err(e) => out(Decoded::Rejected(json_reject(e))),
            }
        }
    }
}

/// Decodes one JSON value read from a multi-line document.
pub fn decode_value(value: Value, options: &DecodeOptions, out: &mut dyn FnMut(Decoded)) {
    decode_value_unbounded(value, options, &mut |d| out(bounded(d)));
}

fn decode_value_unbounded(value: Value, options: &DecodeOptions, out: &mut dyn FnMut(Decoded)) {
    if let Value::Array(items) = value {
        for item in items {
            decode_value_unbounded(item, options, out);
        }
        return;
    }
    let format = match &options.format {
        InputFormat::Auto if value.get("realmId").is_some() => &InputFormat::Keycloak,
        InputFormat::Auto if value.get("resourceType").is_some() => &InputFormat::AuditEvent,
        InputFormat::Auto => &InputFormat::Canonical,
        f => f,
    };
    match (format, value) {
        (InputFormat::AuditEvent, value) => decode_fhir_value(&value, out),
        (InputFormat::Keycloak, Value::Object(object)) => {
            out(keycloak::decode_object(&object, "", options.keycloak))
        }
        (InputFormat::Gateway(mapping), Value::Object(object)) => {
            out(mapping.decode_object(&object))
        }
        (_, Value::Object(object)) => {
            // The canonical parser reads text: the rare pretty-printed canonical event goes back
            // through it so its checks stay in one place.
            let text = Value::Object(object).to_string();
            out(match parse_event_str(&text) {
                Ok(e) => Decoded::Event(e),
                Err(r) => Decoded::Rejected(r),
            })
        }
        (_, other) => out(Decoded::Rejected(Reject::new(
            RejectKind::NotAnObject,
            format!("expected a JSON object, found {}", describe(&other)),
        ))),
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One line of FHIR JSON: a resource, a Bundle, or an array of them.
fn decode_fhir_text(text: &str, out: &mut dyn FnMut(Decoded)) {
    // One resource per line is the common case: no Vec for it.
    let parsed = if text.trim_start().starts_with('[') {
        serde_json::from_str::<Vec<fhir::Resource>>(text)
            .map(|resources| resources.into_iter().for_each(|r| decode_resource(r, out)))
    } else {
        serde_json::from_str::<fhir::Resource>(text).map(|r| decode_resource(r, out))
    };
    match parsed {
        Ok(()) => {}
        // Valid JSON that one entry spoils (a wrong type deep inside): read entry by entry, so
        // the other entries are kept and only the bad one is dead-lettered.
        Err(e) => match serde_json::from_str::<Value>(text) {
            Ok(value) => decode_fhir_value(&value, out),
            Err(_) => out(Decoded::Rejected(json_reject(e))),
        },
    }
}

/// A FHIR resource, Bundle or array of them held as a JSON value, decoded entry by entry.
fn decode_fhir_value(value: &Value, out: &mut dyn FnMut(Decoded)) {
    if let Value::Array(items) = value {
        for item in items {
            decode_fhir_value(item, out);
        }
        return;
    }
    let entries = match value.get("entry") {
        Some(Value::Array(entries))
            if value.get("resourceType").and_then(Value::as_str) == Some("Bundle") =>
        {
            entries
        }
        _ => {
            return match fhir::Resource::deserialize(value) {
                Ok(resource) => decode_resource(resource, out),
                Err(e) => out(Decoded::Rejected(Reject::new(
                    RejectKind::WrongType,
                    format!(
                        "not a readable FHIR resource: {}",
                        without_values(&e.to_string())
                    ),
                ))),
            }
        }
    };
    if entries.is_empty() {
        out(empty_bundle());
    }
    for (i, entry) in entries.iter().enumerate() {
        decode_entry(i + 1, entry, out);
    }
}

/// What a Bundle without entries gives.
pub fn empty_bundle() -> Decoded {
    Decoded::Skipped("FHIR Bundle with no entries".to_string())
}

/// Decodes entry `n` (from 1) of a FHIR Bundle; document mode reads a large Bundle's entries
/// one at a time through this.
pub fn decode_bundle_entry(n: usize, entry: &Value, out: &mut dyn FnMut(Decoded)) {
    decode_entry(n, entry, &mut |d| out(bounded(d)));
}

fn decode_entry(n: usize, entry: &Value, out: &mut dyn FnMut(Decoded)) {
    match entry.get("resource") {
        None | Some(Value::Null) => out(Decoded::Rejected(Reject::new(
            RejectKind::MissingField,
            format!("Bundle entry {n} has no resource"),
        ))),
        Some(resource) => decode_fhir_value(resource, &mut |d| out(in_entry(n, d))),
    }
}

/// serde's message without the values it quotes (`invalid type: string "PHIA06", expected …`
/// → `invalid type: string "…", expected …`): a value in the wrong element may be a patient id.
fn without_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    for c in message.chars() {
        match (c, quoted) {
            ('"', false) => {
                out.push_str("\"…");
                quoted = true;
            }
            ('"', true) => {
                out.push('"');
                quoted = false;
            }
            (_, true) => {}
            (c, false) => out.push(c),
        }
    }
    out
}

/// A decoded Bundle entry, its reject naming the entry.
fn in_entry(n: usize, decoded: Decoded) -> Decoded {
    match decoded {
        Decoded::Rejected(r) => Decoded::Rejected(Reject::new(
            r.kind,
            format!("Bundle entry {n}: {}", r.reason),
        )),
        other => other,
    }
}

fn decode_resource(resource: fhir::Resource, out: &mut dyn FnMut(Decoded)) {
    match resource.resource_type.as_deref() {
        None => out(Decoded::Rejected(Reject::new(
            RejectKind::MissingField,
            "not a FHIR resource: no resourceType",
        ))),
        Some("AuditEvent") => out(auditevent::decode(&resource)),
        Some("Bundle") => {
            if resource.entry.is_empty() {
                out(Decoded::Skipped("FHIR Bundle with no entries".to_string()));
            }
            for (i, entry) in resource.entry.into_iter().enumerate() {
                let n = i + 1;
                match entry.resource {
                    None => out(Decoded::Rejected(Reject::new(
                        RejectKind::MissingField,
                        format!("Bundle entry {n} has no resource"),
                    ))),
                    Some(r) => decode_resource(*r, &mut |d| out(in_entry(n, d))),
                }
            }
        }
        Some(other) => {
            let name = if other.len() <= 40 && other.bytes().all(|b| b.is_ascii_alphabetic()) {
                other
            } else {
                "unrecognised"
            };
            out(Decoded::Skipped(format!(
                "FHIR {name} resource is not an AuditEvent"
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_lose_their_values() {
        assert_eq!(
            without_values(r#"invalid type: string "PHIA06", expected a boolean"#),
            r#"invalid type: string "…", expected a boolean"#
        );
        assert_eq!(without_values("missing field `x`"), "missing field `x`");
    }
}
