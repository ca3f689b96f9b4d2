//! Keycloak events → canonical token events.
//!
//! Three shapes: the admin REST `EventRepresentation` (`time` epoch ms, `details{…}`), the
//! flattened JSON written by JSON event-listener plugins (details at the top level, usually
//! after a log prefix such as `… [org.keycloak.events] (task) JSON_EVENT::{…}`), and the
//! default jboss-logging line `type=…, realmId=…, clientId=…, scope='a b', …`. An ECS JSON log
//! record whose `message` holds such a line is read too.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::Decoded;
use crate::event::{Common, Event, Reject, RejectKind, Text, Timestamp, TokenAction, TokenEvent};

/// What Keycloak lines need beyond their text.
#[derive(Clone, Copy, Debug, Default)]
pub struct KeycloakOptions {
    /// Date for log lines whose prefix has only a time of day (WildFly/Quarkus console format).
    pub log_date: Option<Timestamp>,
}

/// Decodes one Keycloak log line or JSON event.
pub fn decode_line(line: &str, options: KeycloakOptions) -> Decoded {
    let brace = line.find('{');
    let kv = line.find("type=");
    let result = match (brace, kv) {
        (Some(b), k) if k.is_none_or(|k| b < k) => {
            let prefix = &line[..b];
            match serde_json::from_str::<Map<String, Value>>(&line[b..]) {
                Ok(object) => return decode_object(&object, prefix, options),
                Err(e) => Err(Reject::new(
                    RejectKind::InvalidJson,
                    format!(
                        "Keycloak event JSON is invalid at column {}: {}",
                        b + e.column(),
                        e.to_string()
                            .rsplit_once(" at line ")
                            .map_or(e.to_string(), |(m, _)| m.to_string())
                    ),
                )),
            }
        }
        (_, Some(k)) => {
            let fields = parse_key_values(&line[k..]);
            let lookup = |key: &str| {
                fields
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| Cow::Borrowed(*v))
            };
            build(&lookup, &line[..k], options)
        }
        _ => Err(Reject::new(
            RejectKind::NotAnObject,
            "not a Keycloak event: no JSON object and no `type=` field",
        )),
    };
    result.unwrap_or_else(Decoded::Rejected)
}

/// Decodes a Keycloak event already parsed as a JSON object.
pub fn decode_object(
    object: &Map<String, Value>,
    prefix: &str,
    options: KeycloakOptions,
) -> Decoded {
    // ECS JSON logs carry the jboss line in `message`.
    if !object.contains_key("type") {
        if let Some(Value::String(message)) = object.get("message") {
            if let Some(k) = message.find("type=") {
                let fields = parse_key_values(&message[k..]);
                let ts = object
                    .get("@timestamp")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let lookup = |key: &str| {
                    fields
                        .iter()
                        .find(|(k, _)| *k == key)
                        .map(|(_, v)| Cow::Borrowed(*v))
                };
                return build(&lookup, ts, options).unwrap_or_else(Decoded::Rejected);
            }
        }
    }
    let details = object.get("details").and_then(Value::as_object);
    let lookup = |key: &str| -> Option<Cow<'_, str>> {
        let value = object
            .get(key)
            .filter(|v| !v.is_null())
            .or_else(|| details.and_then(|d| d.get(key)))?;
        match value {
            Value::String(s) => Some(Cow::Borrowed(s.as_str())),
            Value::Number(n) => Some(Cow::Owned(n.to_string())),
            Value::Bool(b) => Some(Cow::Owned(b.to_string())),
            _ => None,
        }
    };
    build(&lookup, prefix, options).unwrap_or_else(Decoded::Rejected)
}

/// Splits `k=v, k='v with, commas', …` (values with spaces are single-quoted by Keycloak).
fn parse_key_values(text: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = text.trim_end();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim();
        let after = &rest[eq + 1..];
        let (value, next) = if let Some(quoted) = after.strip_prefix('\'') {
            match quoted.find("'") {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(", ") {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        out.push((key, value));
        rest = next.trim_start_matches(',').trim_start();
    }
    out
}

fn missing(reason: &str) -> Reject {
    Reject::new(RejectKind::MissingField, reason.to_string())
}

/// Maps an event type (without `_ERROR`) to a token action; `None` for non-token events.
fn action_for(kind: &str, response_type: Option<&str>) -> Option<TokenAction> {
    match kind {
        "CODE_TO_TOKEN"
        | "CLIENT_LOGIN"
        | "TOKEN_EXCHANGE"
        | "OAUTH2_DEVICE_CODE_TO_TOKEN"
        | "AUTHREQID_TO_TOKEN"
        | "PERMISSION_TOKEN"
        | "JWT_BEARER"
        | "OAUTH2_EXTENSION_GRANT" => Some(TokenAction::Issued),
        // LOGIN is the authorize step: it issues a token only in implicit/hybrid flows
        // (response_type containing `token`); with `code` the token comes with CODE_TO_TOKEN and
        // counting LOGIN too would double every issuance.
        "LOGIN" => response_type
            .is_some_and(|r| r.split([' ', '+']).any(|p| p == "token"))
            .then_some(TokenAction::Issued),
        "REFRESH_TOKEN" => Some(TokenAction::Refreshed),
        "REVOKE_GRANT" => Some(TokenAction::Revoked),
        "INTROSPECT_TOKEN" => Some(TokenAction::Introspected),
        _ => None,
    }
}

fn default_grant(kind: &str) -> Option<&'static str> {
    match kind {
        "CODE_TO_TOKEN" => Some("authorization_code"),
        "CLIENT_LOGIN" => Some("client_credentials"),
        "REFRESH_TOKEN" => Some("refresh_token"),
        "TOKEN_EXCHANGE" => Some("urn:ietf:params:oauth:grant-type:token-exchange"),
        "OAUTH2_DEVICE_CODE_TO_TOKEN" => Some("urn:ietf:params:oauth:grant-type:device_code"),
        "LOGIN" => Some("implicit"),
        _ => None,
    }
}

/// Event types are counted as skip reasons: keep only short upper-case names.
fn reason_name(kind: &str) -> &str {
    if kind.len() <= 40 && kind.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
        kind
    } else {
        "unrecognised"
    }
}

type Lookup<'a> = dyn Fn(&str) -> Option<Cow<'a, str>> + 'a;

fn build<'a>(get: &Lookup<'a>, prefix: &str, options: KeycloakOptions) -> Result<Decoded, Reject> {
    let kind = get("type").ok_or_else(|| missing("Keycloak event has no type"))?;
    if kind.eq_ignore_ascii_case("ADMIN_EVENT") || kind.eq_ignore_ascii_case("AdminEvent") {
        return Ok(Decoded::Skipped(
            "Keycloak admin event (not a token event)".to_string(),
        ));
    }
    let (base, is_error) = match kind.strip_suffix("_ERROR") {
        Some(base) => (base, true),
        None => (kind.as_ref(), false),
    };
    let response_type = get("response_type");
    let Some(action) = action_for(base, response_type.as_deref()) else {
        // A failed LOGIN (consent refused, bad credentials) is a denied token request.
        if base == "LOGIN" && !is_error {
            return Ok(Decoded::Skipped(
                "Keycloak LOGIN without a token response (the code flow's token event is CODE_TO_TOKEN)"
                    .to_string(),
            ));
        }
        if !(is_error && base == "LOGIN") {
            return Ok(Decoded::Skipped(format!(
                "Keycloak event type {} is not a token event",
                reason_name(&kind)
            )));
        }
        return token_event(get, prefix, options, base, TokenAction::Denied);
    };
    let action = if is_error || get("error").is_some_and(|e| !e.is_empty()) {
        TokenAction::Denied
    } else {
        action
    };
    token_event(get, prefix, options, base, action)
}

fn token_event<'a>(
    get: &Lookup<'a>,
    prefix: &str,
    options: KeycloakOptions,
    base: &str,
    action: TokenAction,
) -> Result<Decoded, Reject> {
    let time = event_time(get, prefix, options)?;
    let client_id = get("clientId")
        .or_else(|| get("client_id"))
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| missing("Keycloak event has no clientId"))?;
    let text = |key: &str| {
        get(key)
            .filter(|v| !v.is_empty())
            .map(|v| Text::from(v.as_ref()))
    };
    let scope = get("scope")
        .filter(|s| !s.is_empty())
        .map(|s| s.into_owned());
    let (scope_requested, scope_granted) = if action == TokenAction::Denied {
        (scope, None)
    } else {
        (None, scope)
    };
    Ok(Decoded::Event(Event::Token(TokenEvent {
        common: Common {
            time,
            client_id: Text::from(client_id.trim()),
            user: text("userId").or_else(|| text("username")),
            source_ip: text("ipAddress"),
            user_agent: None,
        },
        event: action,
        token_id: text("token_id").or_else(|| text("refresh_token_id")),
        grant_type: text("grant_type").or_else(|| default_grant(base).map(Text::from)),
        scope_requested,
        scope_granted,
        patient: None,
        expires_in: None,
    })))
}

/// `time` (epoch ms, as Keycloak stores it), else the date-time at the start of the log line.
fn event_time<'a>(
    get: &Lookup<'a>,
    prefix: &str,
    options: KeycloakOptions,
) -> Result<Timestamp, Reject> {
    if let Some(ms) = get("time") {
        let ms = ms.trim().parse::<i64>().map_err(|_| {
            Reject::new(
                RejectKind::InvalidValue,
                "Keycloak event time is not epoch milliseconds",
            )
        })?;
        return Timestamp::from_epoch_millis(ms).map_err(|why| {
            Reject::new(
                RejectKind::InvalidValue,
                format!("Keycloak event time is {why}"),
            )
        });
    }
    prefix_time(prefix.trim_start(), options.log_date).ok_or_else(|| {
        missing("Keycloak event has no time: no `time` field and no date-time at the start of the line (console lines with only a time of day need --log-date)")
    })
}

/// `2024-01-15 10:23:45,123 …`, `2024-01-15T10:23:45.123Z …`, or `10:23:45,123 …` with a
/// configured date. Prefix times are read as UTC.
fn prefix_time(prefix: &str, log_date: Option<Timestamp>) -> Option<Timestamp> {
    let head: String = prefix.chars().take(40).collect();
    if head.len() >= 19 && head.as_bytes().get(4) == Some(&b'-') {
        let mut text = head.get(..19)?.replace(' ', "T");
        let rest = &head[19..];
        let fraction: String = rest
            .strip_prefix([',', '.'])
            .map(|r| r.chars().take_while(char::is_ascii_digit).collect())
            .unwrap_or_default();
        if !fraction.is_empty() {
            text.push('.');
            text.push_str(&fraction);
        }
        let after = &rest[rest.len().min(if fraction.is_empty() {
            0
        } else {
            fraction.len() + 1
        })..];
        let zone = match after.chars().next() {
            Some('Z') => "Z".to_string(),
            // `get`: the offset's sixth byte may fall inside a multi-byte character.
            Some('+' | '-') if after.as_bytes().get(3) == Some(&b':') => {
                after.get(..6).unwrap_or("Z").to_string()
            }
            _ => "Z".to_string(),
        };
        text.push_str(&zone);
        return Timestamp::parse_rfc3339(&text).ok();
    }
    let date = log_date?;
    let b = head.as_bytes();
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| head.get(r)?.parse::<i64>().ok();
    let (h, m, s) = (num(0..2)?, num(3..5)?, num(6..8)?);
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    let millis = match b.get(8) {
        Some(b',' | b'.') => num(9..12).unwrap_or(0),
        _ => 0,
    };
    Some(Timestamp(
        date.0 + ((h * 3600 + m * 60 + s) * 1000 + millis) * 1000,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(d: Decoded) -> TokenEvent {
        match d {
            Decoded::Event(Event::Token(t)) => t,
            other => panic!("expected a token event, got {other:?}"),
        }
    }

    /// Found by `fuzz/run.sh` (target `keycloak`): a prefix whose "offset" ends inside a
    /// multi-byte character must not panic; the time is read as UTC.
    #[test]
    fn a_prefix_offset_cut_inside_a_character_does_not_panic() {
        let prefix = "2024-03-05 09:00:01-c8:\u{f}\u{43d}reas";
        let at = prefix_time(prefix, None);
        assert_eq!(
            at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2024-03-05T09:00:01.000000Z")
        );
        assert_eq!(prefix_time("4z2:-8:\u{43d}ream=", None), None);
    }

    #[test]
    fn jboss_lines_parse_quoted_values() {
        let line = "2024-03-05 09:00:01,250 INFO  [org.keycloak.events] (executor-thread-3) type=CODE_TO_TOKEN, realmId=ehr, clientId=growth-chart, userId=u1, ipAddress=10.0.0.7, token_id=jti-1, grant_type=authorization_code, scope='openid launch/patient patient/Observation.rs', code_id=c1";
        let t = token(decode_line(line, KeycloakOptions::default()));
        assert_eq!(t.common.time.to_rfc3339(), "2024-03-05T09:00:01.250000Z");
        assert_eq!(t.common.client_id, "growth-chart");
        assert_eq!(t.event, TokenAction::Issued);
        assert_eq!(t.token_id.as_deref(), Some("jti-1"));
        assert_eq!(
            t.scope_granted.as_deref(),
            Some("openid launch/patient patient/Observation.rs")
        );
        assert_eq!(t.common.source_ip.as_deref(), Some("10.0.0.7"));
    }

    #[test]
    fn admin_rest_representation_with_nested_details() {
        let json = r#"{"time":1709629200000,"type":"REFRESH_TOKEN_ERROR","realmId":"ehr","clientId":"sync","userId":"u2","ipAddress":"10.0.0.9","error":"invalid_token","details":{"grant_type":"refresh_token","scope":"offline_access patient/*.rs","refresh_token_id":"r-9"}}"#;
        let t = token(decode_line(json, KeycloakOptions::default()));
        assert_eq!(t.event, TokenAction::Denied);
        assert_eq!(t.common.time.to_rfc3339(), "2024-03-05T09:00:00.000000Z");
        assert_eq!(
            t.scope_requested.as_deref(),
            Some("offline_access patient/*.rs")
        );
        assert_eq!(t.scope_granted, None);
        assert_eq!(t.token_id.as_deref(), Some("r-9"));
        assert_eq!(t.grant_type.as_deref(), Some("refresh_token"));
    }

    #[test]
    fn login_issues_only_in_implicit_flows_and_other_types_are_skipped() {
        let code = r#"{"time":1,"type":"LOGIN","clientId":"a","details":{"response_type":"code"}}"#;
        match decode_line(code, KeycloakOptions::default()) {
            Decoded::Skipped(r) => assert!(
                r.starts_with("Keycloak LOGIN without a token response"),
                "{r}"
            ),
            other => panic!("{other:?}"),
        }
        let implicit = r#"{"time":1,"type":"LOGIN","clientId":"a","details":{"response_type":"id_token token"}}"#;
        assert_eq!(
            token(decode_line(implicit, KeycloakOptions::default())).event,
            TokenAction::Issued
        );
        let refused = "10:00:00,000 WARN  [org.keycloak.events] (t-1) type=LOGIN_ERROR, realmId=r, clientId=a, error=consent_denied";
        let t = token(decode_line(
            refused,
            KeycloakOptions {
                log_date: Some(Timestamp(0)),
            },
        ));
        assert_eq!(t.event, TokenAction::Denied);
    }

    #[test]
    fn time_of_day_prefixes_need_a_date() {
        let line = r#"15:58:08,312 INFO  [org.keycloak.events] (default task-7) JSON_EVENT::{"type":"CODE_TO_TOKEN","clientId":"c"}"#;
        match decode_line(line, KeycloakOptions::default()) {
            Decoded::Rejected(r) => assert!(r.reason.contains("--log-date"), "{}", r.reason),
            other => panic!("{other:?}"),
        }
        let day = Timestamp::parse_rfc3339("2020-01-15T00:00:00Z").unwrap();
        let t = token(decode_line(
            line,
            KeycloakOptions {
                log_date: Some(day),
            },
        ));
        assert_eq!(t.common.time.to_rfc3339(), "2020-01-15T15:58:08.312000Z");
        assert_eq!(t.grant_type.as_deref(), Some("authorization_code"));
    }

    #[test]
    fn missing_client_is_a_clear_reject() {
        let json = r#"{"time":1,"type":"CLIENT_LOGIN"}"#;
        match decode_line(json, KeycloakOptions::default()) {
            Decoded::Rejected(r) => assert_eq!(r.reason, "Keycloak event has no clientId"),
            other => panic!("{other:?}"),
        }
    }
}
