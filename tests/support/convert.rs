//! Converts canonical scopewatch events (one JSON object per line, docs/event-contract.md) into
//! the real formats scopewatch reads, so a test can compare the alerts from canonical input with
//! those from the same events written as Keycloak, IHE BALP and nginx logs.
//!
//! Token events go to Keycloak (admin REST `EventRepresentation`); access events go to both
//! BALP AuditEvents (FHIR R4) and the nginx JSON access log of the built-in mapping
//! (`src/ingest/format/mappings/nginx.toml`). Each format loses what it cannot carry, which is
//! what such a test measures:
//!
//! What Keycloak does not carry (token events):
//! - `patient` (launch patient) and `expires_in`: Keycloak events have neither.
//! - `user_agent`: the decoder never reads one.
//! - `scope_requested` of a non-denied event (Keycloak logs one `scope`: the granted one), and
//!   `scope_granted` of a denied event (its `scope` becomes `scope_requested`).
//! - sub-millisecond time: `time` is epoch milliseconds (microseconds are truncated).
//! - an absent `grant_type` of issued/denied/refreshed events: the decoder fills it in from the
//!   event type (`CODE_TO_TOKEN` → authorization_code, `REFRESH_TOKEN` → refresh_token).
//! - `issued` with grant `refresh_token` is logged as `REFRESH_TOKEN`, which reads back as
//!   `refreshed`; an event that is not one of the five canonical actions yields no line.
//!
//! What BALP does not carry (access events):
//! - `resources_returned`, `bytes`, `patient_count`, `user_agent`: the decoder leaves them empty.
//! - the exact `status`: `outcome` is 0 (below 400), 4 (4xx) or 8 (5xx) and reads back as 200
//!   (201 for a `create` interaction), 400 or 500; 1xx/3xx become 200, 202 becomes 200.
//! - the URL's spelling: relative URLs are logged as BALP's `GET host/path` request line and
//!   read back absolute (`https://fhir.example.org/r4/<url>`); absolute URLs are kept as is.
//! - `source_ip` when it is not an IP address (written with network type 1, which is not read).
//! - a second patient: the canonical event names at most one, so one AuditEvent per event.
//!
//! What nginx does not carry (access events):
//! - `patient`, `patient_count`, `resources_returned`: the mapping has no field for them.
//! - the scheme and host of absolute URLs (`$request_uri` is the path); a path under `/fhir`
//!   loses that prefix, as every request through the mapping does.
//! - whitespace around values, and anything after the first comma of `source_ip` (the decoder
//!   trims values and reads `remote_addr` as an X-Forwarded-For list).

#![allow(dead_code)]

use serde_json::{json, Value};

const REALM: &str = "smart";
/// Host and base path used in BALP request lines for URLs relative to the FHIR base.
const BALP_BASE: &str = "fhir.example.org/r4";
/// Path prefix the nginx mapping removes (`fhir_base`).
const NGINX_BASE: &str = "/fhir";

const AUDIT_EVENT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";
const RESTFUL_INTERACTION: &str = "http://hl7.org/fhir/restful-interaction";
const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
const BALP_USER_TYPES: &str = "https://profiles.ihe.net/ITI/BALP/CodeSystem/UserAgentTypes";
const ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
const ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
const OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";

/// Canonical token event -> one Keycloak admin-REST EventRepresentation JSON line (no newline), or None for token events Keycloak cannot express.
pub fn token_to_keycloak(event: &Value) -> Option<String> {
    let action = text(event, "event")?;
    let grant = text(event, "grant_type");
    let kind = keycloak_type(action, grant)?;
    let denied = action == "denied";
    let mut details = serde_json::Map::new();
    let mut put = |key: &str, value: Option<&str>| {
        if let Some(v) = value {
            details.insert(key.to_string(), json!(v));
        }
    };
    put("token_id", text(event, "token_id"));
    put("grant_type", grant);
    let scope_field = if denied {
        "scope_requested"
    } else {
        "scope_granted"
    };
    put("scope", text(event, scope_field));
    if kind.starts_with("LOGIN") {
        // A LOGIN issues a token only when the response type asks for one (implicit flow).
        put("response_type", Some("token"));
    }
    let time = epoch_millis(text(event, "time")?)?;
    let client_id = text(event, "client_id")?;
    let mut out = json!({
        "time": time,
        "type": kind,
        "realmId": REALM,
        "clientId": client_id,
        "details": details,
    });
    set(&mut out, "userId", text(event, "user"));
    set(&mut out, "ipAddress", text(event, "source_ip"));
    if denied {
        out["error"] = json!("invalid_scope");
    }
    Some(out.to_string())
}

/// Canonical access event -> IHE BALP AuditEvent (FHIR R4) JSON lines, one per patient the request concerned (BALP writes one AuditEvent per patient); one line when no patient.
pub fn access_to_balp(event: &Value) -> Vec<String> {
    let method = method(event);
    let url = text(event, "url").unwrap_or_default();
    let interaction = interaction(&method, url);
    let outcome = int_text(event, "status")
        .and_then(|s| s.parse::<u16>().ok())
        .map_or("0", outcome_for);
    let target = if is_absolute(url) {
        url.to_string()
    } else {
        format!("{BALP_BASE}/{}", url.trim_start_matches('/'))
    };
    let mut entities = vec![json!({
        "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
        "role": {"system": OBJECT_ROLE, "code": "24", "display": "Query"},
        "query": base64(format!("{method} {target}").as_bytes()),
    })];
    entities.extend(text(event, "patient").map(patient_entity));
    let audit = json!({
        "resourceType": "AuditEvent",
        "type": {"system": AUDIT_EVENT_TYPE, "code": "rest", "display": "Restful Operation"},
        "subtype": [{"system": RESTFUL_INTERACTION, "code": interaction}],
        "action": action_for(interaction),
        "recorded": text(event, "time").unwrap_or_default(),
        "outcome": outcome,
        "agent": balp_agents(event),
        "source": {"observer": {"display": BALP_BASE}},
        "entity": entities,
    });
    vec![audit.to_string()]
}

/// Canonical access event -> one nginx JSON access-log line matching the built-in mapping src/ingest/format/mappings/nginx.toml (fhir_base "/fhir", time_format rfc3339).
pub fn access_to_nginx(event: &Value) -> String {
    let dash = |key: &str| text(event, key).unwrap_or("-");
    let url = text(event, "url").unwrap_or_default();
    json!({
        "time_iso8601": dash("time"),
        "remote_addr": dash("source_ip"),
        "remote_user": dash("user"),
        "request_method": method(event),
        "request_uri": nginx_uri(url),
        "status": int_text(event, "status").unwrap_or_else(|| "-".to_string()),
        "body_bytes_sent": int_text(event, "bytes").unwrap_or_else(|| "-".to_string()),
        "http_user_agent": dash("user_agent"),
        "client_id": dash("client_id"),
        "token_jti": dash("token_id"),
        "purpose_of_use": dash("purpose_of_use"),
    })
    .to_string()
}

/// Converts a whole canonical NDJSON text: returns (keycloak_lines, balp_lines, nginx_lines), token events going to Keycloak, access events to both BALP and nginx. Lines joined with "\n" and ending in "\n".
///
/// Blank lines, lines that are not JSON, and objects of another `type` are left out (the
/// canonical reader rejects them too).
pub fn convert_ndjson(text: &str) -> (String, String, String) {
    let (mut keycloak, mut balp, mut nginx) = (String::new(), String::new(), String::new());
    let push = |out: &mut String, line: &str| {
        out.push_str(line);
        out.push('\n');
    };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        match event.get("type").and_then(Value::as_str) {
            Some("token") => {
                if let Some(l) = token_to_keycloak(&event) {
                    push(&mut keycloak, &l);
                }
            }
            Some("access") => {
                for l in access_to_balp(&event) {
                    push(&mut balp, &l);
                }
                push(&mut nginx, &access_to_nginx(&event));
            }
            _ => {}
        }
    }
    (keycloak, balp, nginx)
}

// ---- canonical field access -------------------------------------------------------------

/// An optional string field; `null` and `""` are absent, as in the canonical parser.
fn text<'a>(event: &'a Value, key: &str) -> Option<&'a str> {
    event
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// An integer field as text: a JSON number or a string of digits (`"status":"200"`).
fn int_text(event: &Value, key: &str) -> Option<String> {
    match event.get(key)? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Some(s.clone())
        }
        _ => None,
    }
}

fn method(event: &Value) -> String {
    text(event, "method").unwrap_or("GET").to_ascii_uppercase()
}

fn set(object: &mut Value, key: &str, value: Option<&str>) {
    if let Some(v) = value {
        object[key] = json!(v);
    }
}

/// `http://…` or `https://…` (any case), as the request classifier reads absolute URLs.
fn is_absolute(url: &str) -> bool {
    url.split_once("://").is_some_and(|(scheme, _)| {
        scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
    })
}

// ---- Keycloak ---------------------------------------------------------------------------

/// The Keycloak event type for a canonical action; denials are the issuing type + `_ERROR`.
fn keycloak_type(action: &str, grant: Option<&str>) -> Option<String> {
    let issuing = match grant {
        Some("client_credentials") => "CLIENT_LOGIN",
        Some("refresh_token") => "REFRESH_TOKEN",
        Some("urn:ietf:params:oauth:grant-type:token-exchange") => "TOKEN_EXCHANGE",
        Some("urn:ietf:params:oauth:grant-type:device_code") => "OAUTH2_DEVICE_CODE_TO_TOKEN",
        Some("implicit") => "LOGIN",
        _ => "CODE_TO_TOKEN",
    };
    Some(match action {
        "issued" => issuing.to_string(),
        "refreshed" => "REFRESH_TOKEN".to_string(),
        "revoked" => "REVOKE_GRANT".to_string(),
        "introspected" => "INTROSPECT_TOKEN".to_string(),
        "denied" => format!("{issuing}_ERROR"),
        _ => return None,
    })
}

/// RFC 3339 (as the canonical contract reads it) -> epoch milliseconds, sub-ms truncated.
fn epoch_millis(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let shaped = b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b'T' | b't' | b' ')
        && b[13] == b':'
        && b[16] == b':';
    if !shaped {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let digits = text.get(from..to)?;
        digits
            .bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| digits.parse().ok())?
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, mut second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let mut rest = &text[19..];
    let mut micros = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        let kept = &fraction[..digits.min(6)];
        micros = format!("{kept:0<6}").parse::<i64>().ok()?;
        rest = &fraction[digits..];
    }
    if second == 60 {
        // A leap second reads as :59.999999.
        second = 59;
        micros = 999_999;
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let part = |r: std::ops::Range<usize>| rest.get(r)?.parse::<i64>().ok();
            let minutes = part(1..3)? * 60 + part(4..6)?;
            match rest.as_bytes()[0] {
                b'+' => minutes * 60,
                b'-' => -minutes * 60,
                _ => return None,
            }
        }
        _ => return None,
    };
    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some((seconds * 1_000_000 + micros).div_euclid(1000))
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// ---- BALP -------------------------------------------------------------------------------

/// The client (DICOM 110150 Application) and, when there is a user, token or purpose, the
/// BALP OAuth user agent (requestor; `policy` = token id, `purposeOfUse`).
fn balp_agents(event: &Value) -> Vec<Value> {
    let mut client = json!({
        "type": {"coding": [{"system": DCM, "code": "110150", "display": "Application"}]},
        "who": {"identifier": {"value": text(event, "client_id").unwrap_or_default()}},
        "requestor": false,
    });
    if let Some(ip) = text(event, "source_ip") {
        // Network type 2 is an IP address, 1 a machine name (which the decoder does not read).
        let kind = if ip.parse::<std::net::IpAddr>().is_ok() {
            "2"
        } else {
            "1"
        };
        client["network"] = json!({"address": ip, "type": kind});
    }
    let (user, token, purpose) = (
        text(event, "user"),
        text(event, "token_id"),
        text(event, "purpose_of_use"),
    );
    if user.is_none() && token.is_none() && purpose.is_none() {
        return vec![client];
    }
    let mut oauth = json!({
        "type": {"coding": [{"system": BALP_USER_TYPES, "code": "UserOauthAgent"}]},
        "requestor": true,
    });
    if let Some(u) = user {
        // An identifier, not a reference: a `Patient/…` reference would be dropped as PHI.
        oauth["who"] = json!({"identifier": {"value": u}});
    }
    if let Some(t) = token {
        oauth["policy"] = json!([t]);
    }
    if let Some(p) = purpose {
        oauth["purposeOfUse"] = json!([{"coding": [{"system": ACT_REASON, "code": p}]}]);
    }
    vec![client, oauth]
}

/// The patient entity (role 1 Patient, type 1 Person): a `Patient/<id>` reference when the id
/// is a FHIR id, else an identifier so the value reads back unchanged.
fn patient_entity(patient: &str) -> Value {
    let what = if is_fhir_id(patient) {
        json!({"reference": format!("Patient/{patient}")})
    } else {
        json!({"identifier": {"value": patient}})
    };
    json!({
        "what": what,
        "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
        "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
    })
}

fn is_fhir_id(id: &str) -> bool {
    id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Audit outcome for an HTTP status: 0 success, 4 minor (client) failure, 8 serious failure.
fn outcome_for(status: u16) -> &'static str {
    match status {
        400..=499 => "4",
        500.. => "8",
        _ => "0",
    }
}

/// The path segments after the FHIR base: all of a relative URL's; for an absolute or rooted
/// one, from the first segment shaped like a resource type, operation or `_…`/`metadata`.
fn fhir_segments(url: &str) -> Vec<&str> {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let rooted = is_absolute(path) || path.starts_with('/');
    let path = match path.split_once("://") {
        Some((_, rest)) if is_absolute(url) => rest.split_once('/').map_or("", |(_, p)| p),
        _ => path,
    };
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let anchor = |s: &&str| {
        s.starts_with(|c: char| c.is_ascii_uppercase() || c == '$' || c == '_') || *s == "metadata"
    };
    let start = if rooted {
        segments.iter().position(anchor).unwrap_or(segments.len())
    } else {
        0
    };
    segments[start..].to_vec()
}

/// The FHIR RESTful interaction code of a request.
fn interaction(method: &str, url: &str) -> &'static str {
    let segments = fhir_segments(url);
    let last = segments.last().copied().unwrap_or_default();
    let has_query = url.contains('?');
    if segments.iter().any(|s| s.starts_with('$')) {
        return "operation";
    }
    match method {
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => "delete",
        "POST" if last == "_search" => "search-type",
        "POST" if segments.is_empty() => "transaction",
        "POST" if segments.len() == 1 => "create",
        "POST" => "operation",
        "OPTIONS" => "capabilities",
        _ if last == "metadata" => "capabilities",
        _ if last == "_history" => "history",
        _ if segments.contains(&"_history") => "vread",
        _ if segments.len() == 2 && !has_query => "read",
        _ if segments.is_empty() => "search-system",
        _ => "search-type",
    }
}

/// AuditEvent.action (C/R/U/D/E) for an interaction.
fn action_for(interaction: &str) -> &'static str {
    match interaction {
        "create" => "C",
        "read" | "vread" => "R",
        "update" | "patch" => "U",
        "delete" => "D",
        _ => "E",
    }
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---- nginx ------------------------------------------------------------------------------

/// `$request_uri`: the FHIR base path + a relative URL; the path (and query) of an absolute one.
fn nginx_uri(url: &str) -> String {
    if !is_absolute(url) {
        return format!("{NGINX_BASE}/{}", url.trim_start_matches('/'));
    }
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    match after_scheme.find(['/', '?']) {
        Some(i) if after_scheme[i..].starts_with('/') => after_scheme[i..].to_string(),
        Some(i) => format!("/{}", &after_scheme[i..]),
        None => "/".to_string(),
    }
}
