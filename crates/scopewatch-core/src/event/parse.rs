//! One NDJSON line → a canonical [`Event`], or a [`Reject`] with a specific reason.

use std::borrow::Cow;

use super::model::{AccessEvent, Common, Event, Text, TokenAction, TokenEvent};
use super::raw::{Field, RawEvent, Scalar};
use super::reject::{Reject, RejectKind};
use super::time::Timestamp;
use crate::smart::request::Method;

/// Fields required on every event, on token events and on access events (mirrored in
/// docs/event.schema.json; a test keeps the two in step).
pub const REQUIRED_COMMON: [&str; 3] = ["type", "time", "client_id"];
pub const REQUIRED_TOKEN: [&str; 1] = ["event"];
pub const REQUIRED_ACCESS: [&str; 3] = ["method", "url", "status"];

/// Parses one line (without its newline) as a canonical event.
pub fn parse_event(line: &[u8]) -> Result<Event, Reject> {
    let text = std::str::from_utf8(line).map_err(|e| {
        let at = e.valid_up_to();
        Reject::new(
            RejectKind::NotUtf8,
            format!(
                "not UTF-8: invalid byte 0x{:02x} at column {}",
                line.get(at).copied().unwrap_or(0),
                at + 1
            ),
        )
    })?;
    parse_event_str(text)
}

/// Parses one line that is already known to be UTF-8.
pub fn parse_event_str(text: &str) -> Result<Event, Reject> {
    if !text.trim_start().starts_with('{') {
        return Err(not_an_object(text));
    }
    let raw: RawEvent<'_> = serde_json::from_str(text).map_err(json_reject)?;
    build_event(raw).and_then(super::bounds::within_bounds)
}

/// Rare path: say what the line is instead of an object, or why it is not JSON at all.
fn not_an_object(text: &str) -> Reject {
    let found = match serde_json::from_str::<serde_json::Value>(text) {
        Err(e) => return json_reject(e),
        Ok(serde_json::Value::Array(_)) => "an array",
        Ok(serde_json::Value::String(_)) => "a string",
        Ok(serde_json::Value::Number(_)) => "a number",
        Ok(serde_json::Value::Bool(_)) => "a boolean",
        Ok(serde_json::Value::Null) => "null",
        Ok(serde_json::Value::Object(_)) => "an object after leading garbage",
    };
    Reject::new(
        RejectKind::NotAnObject,
        format!("expected a JSON object, found {found}"),
    )
}

/// A serde_json error as a reject with a specific kind and the column.
pub fn json_reject(e: serde_json::Error) -> Reject {
    let column = e.column();
    let message = e.to_string();
    let message = message
        .rfind(" at line ")
        .map_or(message.as_str(), |i| &message[..i])
        .to_string();
    match e.classify() {
        serde_json::error::Category::Eof => Reject::new(
            RejectKind::TruncatedJson,
            format!("truncated JSON: input ended at column {column}"),
        ),
        serde_json::error::Category::Data if message.starts_with("duplicate field") => {
            Reject::new(RejectKind::DuplicateField, message)
        }
        serde_json::error::Category::Data => Reject::new(
            RejectKind::WrongType,
            format!("{message} (column {column})"),
        ),
        _ => Reject::new(
            RejectKind::InvalidJson,
            format!("invalid JSON at column {column}: {message}"),
        ),
    }
}

fn missing(field: Field) -> Reject {
    Reject::new(
        RejectKind::MissingField,
        format!("missing field {}", field.name()),
    )
}

fn wrong_type(field: Field, expected: &str, found: &Scalar<'_>) -> Reject {
    Reject::new(
        RejectKind::WrongType,
        format!(
            "field {} must be {expected}, found {}",
            field.name(),
            found.describe()
        ),
    )
}

fn invalid(reason: String) -> Reject {
    Reject::new(RejectKind::InvalidValue, reason)
}

/// Quotes a value for a reason without its identity: a short word of letters (`'Get'`,
/// `'yesterday'`) as it is, anything else as its shape — digits as `9`, letters as `x`,
/// punctuation kept (`'99/99/9999 99:99'`) — so a patient id in the wrong field never reaches
/// a reason (reasons are kept where raw lines are not: logs, a pseudonymised store). Cut so a
/// hostile line cannot bloat the dead-letter file.
fn quoted(value: &str) -> String {
    const MAX: usize = 64;
    if value.len() <= 12 && value.bytes().all(|b| b.is_ascii_alphabetic()) {
        return format!("'{value}'");
    }
    let shape: String = value
        .chars()
        .take(MAX)
        .map(|c| match c {
            '0'..='9' => '9',
            c if c.is_alphabetic() => 'x',
            c if c.is_ascii_punctuation() || c == ' ' => c,
            _ => '?',
        })
        .collect();
    let cut = if value.chars().count() > MAX {
        "…"
    } else {
        ""
    };
    format!("shaped '{shape}{cut}'")
}

fn required_str<'a>(raw: &mut RawEvent<'a>, field: Field) -> Result<Cow<'a, str>, Reject> {
    match raw.take(field) {
        None => Err(missing(field)),
        Some(Scalar::Str(s)) if s.trim().is_empty() => {
            Err(invalid(format!("field {} is empty", field.name())))
        }
        Some(Scalar::Str(s)) => Ok(s),
        Some(other) => Err(wrong_type(field, "a string", &other)),
    }
}

/// Optional string: absent, null and "" all mean "not given".
fn optional_str(raw: &mut RawEvent<'_>, field: Field) -> Result<Option<String>, Reject> {
    Ok(optional_text(raw, field)?.map(String::from))
}

fn optional_text(raw: &mut RawEvent<'_>, field: Field) -> Result<Option<Text>, Reject> {
    match raw.take(field) {
        None => Ok(None),
        Some(Scalar::Str(s)) if s.is_empty() => Ok(None),
        Some(Scalar::Str(s)) => Ok(Some(Text::from(s.as_ref()))),
        Some(other) => Err(wrong_type(field, "a string", &other)),
    }
}

/// Integer, or a string of digits (gateways often quote numbers, e.g. nginx `$status`).
fn integer(raw: &mut RawEvent<'_>, field: Field) -> Result<Option<i64>, Reject> {
    match raw.take(field) {
        None => Ok(None),
        Some(Scalar::Int(v)) => Ok(Some(v)),
        Some(Scalar::UInt(v)) => i64::try_from(v)
            .map(Some)
            .map_err(|_| invalid(format!("field {} is out of range", field.name()))),
        Some(Scalar::Str(s)) if s.is_empty() => Ok(None),
        Some(Scalar::Str(s)) => {
            let digits = s.strip_prefix('-').unwrap_or(&s);
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                s.parse()
                    .map(Some)
                    .map_err(|_| invalid(format!("field {} is out of range", field.name())))
            } else {
                Err(wrong_type(field, "an integer", &Scalar::Str(s)))
            }
        }
        Some(other) => Err(wrong_type(field, "an integer", &other)),
    }
}

fn count(raw: &mut RawEvent<'_>, field: Field) -> Result<Option<u64>, Reject> {
    match integer(raw, field)? {
        None => Ok(None),
        Some(v) if v < 0 => Err(invalid(format!(
            "field {} must not be negative",
            field.name()
        ))),
        Some(v) => Ok(Some(v.unsigned_abs())),
    }
}

fn build_event(mut raw: RawEvent<'_>) -> Result<Event, Reject> {
    let kind = required_str(&mut raw, Field::Type)?;
    let kind = match kind.as_ref() {
        "token" => Kind::Token,
        "access" => Kind::Access,
        other => {
            return Err(invalid(format!(
                "type must be \"token\" or \"access\", found {}",
                quoted(other)
            )))
        }
    };
    let time_text = required_str(&mut raw, Field::Time)?;
    let time = Timestamp::parse_rfc3339(&time_text).map_err(|why| {
        invalid(format!(
            "time is not RFC 3339: {} ({why})",
            quoted(&time_text)
        ))
    })?;
    let common = Common {
        time,
        client_id: Text::from(required_str(&mut raw, Field::ClientId)?.as_ref()),
        user: optional_text(&mut raw, Field::User)?,
        source_ip: optional_text(&mut raw, Field::SourceIp)?,
        user_agent: optional_text(&mut raw, Field::UserAgent)?,
    };
    match kind {
        Kind::Token => build_token(common, raw).map(Event::Token),
        Kind::Access => build_access(common, raw).map(Event::Access),
    }
}

enum Kind {
    Token,
    Access,
}

fn build_token(common: Common, mut raw: RawEvent<'_>) -> Result<TokenEvent, Reject> {
    let action = required_str(&mut raw, Field::Event)?;
    let event = TokenAction::parse(&action).ok_or_else(|| {
        invalid(format!(
            "event must be one of issued, refreshed, revoked, denied, introspected; found {}",
            quoted(&action)
        ))
    })?;
    Ok(TokenEvent {
        common,
        event,
        token_id: optional_text(&mut raw, Field::TokenId)?,
        grant_type: optional_text(&mut raw, Field::GrantType)?,
        scope_requested: optional_str(&mut raw, Field::ScopeRequested)?,
        scope_granted: optional_str(&mut raw, Field::ScopeGranted)?,
        patient: optional_text(&mut raw, Field::Patient)?,
        expires_in: integer(&mut raw, Field::ExpiresIn)?,
    })
}

fn build_access(common: Common, mut raw: RawEvent<'_>) -> Result<AccessEvent, Reject> {
    let method_text = required_str(&mut raw, Field::Method)?;
    let method: Method = method_text.parse().map_err(|()| {
        invalid(format!(
            "method {} is not an HTTP method FHIR uses (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS)",
            quoted(&method_text)
        ))
    })?;
    let url = required_str(&mut raw, Field::Url)?.into_owned();
    let status = integer(&mut raw, Field::Status)?.ok_or_else(|| missing(Field::Status))?;
    if !(100..=599).contains(&status) {
        return Err(invalid(format!(
            "status {status} is not an HTTP status code (100-599)"
        )));
    }
    Ok(AccessEvent {
        common,
        method,
        url,
        status: status as u16,
        token_id: optional_text(&mut raw, Field::TokenId)?,
        resources_returned: count(&mut raw, Field::ResourcesReturned)?,
        bytes: count(&mut raw, Field::Bytes)?,
        patient: optional_text(&mut raw, Field::Patient)?,
        patient_count: count(&mut raw, Field::PatientCount)?,
        purpose_of_use: optional_text(&mut raw, Field::PurposeOfUse)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCESS: &str = r#"{"type":"access","time":"2024-03-01T12:00:00Z","client_id":"app","method":"GET","url":"Observation?patient=1","status":200,"bytes":"512","extra":{"x":[1,2]}}"#;

    fn reject(line: &str) -> Reject {
        parse_event(line.as_bytes()).unwrap_err()
    }

    #[test]
    fn accepts_access_with_unknown_fields_and_quoted_numbers() {
        let Event::Access(a) = parse_event(ACCESS.as_bytes()).unwrap() else {
            panic!("not access")
        };
        assert_eq!(a.status, 200);
        assert_eq!(a.bytes, Some(512));
        assert_eq!(a.method, Method::Get);
        assert_eq!(a.common.client_id, "app");
    }

    #[test]
    fn accepts_token_with_escaped_strings() {
        let line = r#"{"type":"token","event":"issued","time":"2024-03-01T12:00:00+02:00","client_id":"a\u0062c","scope_granted":"patient/*.rs openid","expires_in":3600,"patient":null}"#;
        let Event::Token(t) = parse_event(line.as_bytes()).unwrap() else {
            panic!("not token")
        };
        assert_eq!(t.common.client_id, "abc");
        assert_eq!(t.expires_in, Some(3600));
        assert_eq!(t.patient, None);
        assert_eq!(t.event, TokenAction::Issued);
    }

    #[test]
    fn reasons_are_specific() {
        let r = reject(
            r#"{"type":"access","time":"2024-03-01T12:00:00Z","method":"GET","url":"x","status":200}"#,
        );
        assert_eq!(
            (r.kind, r.reason.as_str()),
            (RejectKind::MissingField, "missing field client_id")
        );

        let r = reject(
            r#"{"type":"access","time":"yesterday","client_id":"a","method":"GET","url":"x","status":200}"#,
        );
        assert_eq!(r.kind, RejectKind::InvalidValue);
        assert!(
            r.reason.starts_with("time is not RFC 3339: 'yesterday'"),
            "{}",
            r.reason
        );

        let r = reject(
            r#"{"type":"access","time":"2024-03-01T12:00:00Z","client_id":"a","method":"GET","url":"x","status":"OK"}"#,
        );
        assert_eq!(r.reason, "field status must be an integer, found a string");

        let r = reject(
            r#"{"type":"access","time":"2024-03-01T12:00:00Z","client_id":["a"],"method":"GET","url":"x","status":200}"#,
        );
        assert_eq!(r.reason, "field client_id must be a string, found an array");

        let r = reject(r#"{"type":"access", "time" "x"}"#);
        assert_eq!(r.kind, RejectKind::InvalidJson);
        assert!(
            r.reason
                .starts_with("invalid JSON at column 26: expected `:`"),
            "{}",
            r.reason
        );

        let r = reject(r#"{"type":"access","time":"2024"#);
        assert_eq!(r.kind, RejectKind::TruncatedJson);

        let r = reject(r#"{"type":"access","type":"token"}"#);
        assert_eq!(
            (r.kind, r.reason.as_str()),
            (RejectKind::DuplicateField, "duplicate field type")
        );

        let r = reject(r#"[1,2]"#);
        assert_eq!(r.reason, "expected a JSON object, found an array");

        let r = parse_event(b"{\"type\":\"acc\xffess\"}").unwrap_err();
        assert_eq!(r.reason, "not UTF-8: invalid byte 0xff at column 13");

        let r = reject(
            r#"{"type":"access","time":"2024-03-01T12:00:00Z","client_id":"a","method":"GET","url":"x","status":700}"#,
        );
        assert!(r.reason.contains("not an HTTP status"));

        let r = reject(
            r#"{"type":"token","time":"2024-03-01T12:00:00Z","client_id":"a","event":"minted"}"#,
        );
        assert!(r.reason.starts_with("event must be one of"));

        let r = reject(
            r#"{"type":"access","time":"2024-03-01T12:00:00Z","client_id":"a","method":"GET","url":"x","status":200,"bytes":-5}"#,
        );
        assert_eq!(r.reason, "field bytes must not be negative");

        let r = reject(
            r#"{"type":"access","time":"2024-03-01T12:00:00Z","client_id":"  ","method":"GET","url":"x","status":200}"#,
        );
        assert_eq!(r.reason, "field client_id is empty");
    }
}
