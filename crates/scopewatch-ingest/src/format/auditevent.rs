//! FHIR AuditEvent (R4, R5, IHE BALP) → canonical events.
//!
//! A RESTful AuditEvent becomes an access event; an IHE IUA token AuditEvent (ITI-71 Get
//! Access Token, ITI-102 Introspect Token) becomes a token event; anything else (login, logout,
//! application start, disclosures without a REST interaction, …) is skipped with a counted reason.
//! AuditEvent carries no byte or resource counts: those canonical fields stay empty and the
//! volume rules (which count requests) work from request counts.

use base64::Engine as _;

use super::fhir::{purpose_code, Agent, Entity, Resource};
use super::Decoded;
use crate::event::{
    AccessEvent, Common, Event, Reject, RejectKind, Text, Timestamp, TokenAction, TokenEvent,
};
use crate::smart::request::Method;

const RESTFUL_INTERACTION: &str = "http://hl7.org/fhir/restful-interaction";
/// DICOM agent roles: 110150 Application, 110153 Source Role ID, 110152 Destination Role ID.
const DCM_APPLICATION: &str = "110150";
const DCM_SOURCE: &str = "110153";
const DCM_DESTINATION: &str = "110152";
/// BALP OAuth user agent type (its `policy` holds the token id).
const BALP_OAUTH_USER: &str = "UserOauthAgent";
const JTI_PREFIX: &str = "urn:ietf:params:oauth:jti:";

/// Decodes one AuditEvent (already known to have `resourceType: AuditEvent`).
pub fn decode(ae: &Resource) -> Decoded {
    match classify(ae) {
        Kind::Rest(interaction) => match access(ae, interaction) {
            Ok(a) => Decoded::Event(Event::Access(a)),
            Err(r) => Decoded::Rejected(r),
        },
        Kind::Token(action) => match token(ae, action) {
            Ok(t) => Decoded::Event(Event::Token(t)),
            Err(r) => Decoded::Rejected(r),
        },
        Kind::Other(code) => Decoded::Skipped(format!(
            "AuditEvent is not a RESTful access or token event (type {code}{})",
            dicom_name(&code).map_or(String::new(), |n| format!(" {n}"))
        )),
    }
}

enum Kind {
    Rest(Option<String>),
    Token(TokenAction),
    Other(String),
}

/// The event's type and subtype codes, R4 (`type`, `subtype`) or R5 (`category`, `code`), as
/// (system, code).
fn codes<'r>(ae: &'r Resource<'_>) -> Vec<(Option<&'r str>, &'r str)> {
    let pair = |c: &'r super::fhir::Coding<'_>| (c.system.as_deref(), c.code.as_deref());
    ae.type_
        .iter()
        .flat_map(|t| t.codings())
        .chain(ae.subtype.iter().map(pair))
        .chain(ae.category.iter().flat_map(|c| &c.coding).map(pair))
        .chain(ae.code.iter().flat_map(|c| &c.coding).map(pair))
        .filter_map(|(system, code)| Some((system, code?)))
        .collect()
}

fn classify(ae: &Resource) -> Kind {
    let codes = codes(ae);
    let interaction = codes
        .iter()
        .find(|(system, _)| *system == Some(RESTFUL_INTERACTION))
        .map(|(_, code)| code.to_string());
    let is_rest = codes.iter().any(|(_, code)| *code == "rest");
    if interaction.is_some() || is_rest {
        return Kind::Rest(interaction);
    }
    let failed = ae
        .outcome
        .as_ref()
        .and_then(|o| o.code())
        .is_some_and(|c| c != "0");
    if codes.iter().any(|(_, code)| *code == "ITI-71") {
        return Kind::Token(if failed {
            TokenAction::Denied
        } else {
            TokenAction::Issued
        });
    }
    if codes.iter().any(|(_, code)| *code == "ITI-102") {
        return Kind::Token(TokenAction::Introspected);
    }
    // Reasons are counted by text: keep only short code-like values so input cannot create
    // an unbounded set of reasons.
    let code = codes
        .first()
        .map(|(_, c)| *c)
        .filter(|c| c.len() <= 24 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .unwrap_or("unrecognised");
    Kind::Other(code.to_string())
}

/// Names of the DICOM audit event types seen outside REST, for readable skip reasons.
fn dicom_name(code: &str) -> Option<&'static str> {
    Some(match code {
        "110100" => "Application Activity",
        "110101" => "Audit Log Used",
        "110104" => "DICOM Instances Transferred",
        "110106" => "Export",
        "110107" => "Import",
        "110110" => "Patient Record",
        "110112" => "Query",
        "110113" => "Security Alert",
        "110114" => "User Authentication",
        _ => return None,
    })
}

fn missing(what: &str) -> Reject {
    Reject::new(
        RejectKind::MissingField,
        format!("AuditEvent has no {what}"),
    )
}

fn invalid(reason: String) -> Reject {
    Reject::new(RejectKind::InvalidValue, reason)
}

fn recorded(ae: &Resource) -> Result<Timestamp, Reject> {
    let text = ae
        .recorded
        .as_deref()
        .ok_or_else(|| missing("recorded time"))?;
    Timestamp::parse_rfc3339(text)
        .map_err(|why| invalid(format!("AuditEvent.recorded is not a FHIR instant ({why})")))
}

/// The agent that is the client application. BALP: `110150 Application` when present;
/// otherwise the data-flow role (the client is the destination of a read and the source of
/// everything else); pre-BALP R4 examples name the requesting system `110153` whatever the
/// direction, so the other role is the fallback.
fn client_agent<'r, 'a>(ae: &'r Resource<'a>, read: bool) -> Option<&'r Agent<'a>> {
    let named = |a: &&Agent| a.who.as_ref().and_then(|w| w.name()).is_some();
    let by_type = |code: &str| ae.agent.iter().filter(named).find(|a| a.has_type(code));
    let (first, second) = if read {
        (DCM_DESTINATION, DCM_SOURCE)
    } else {
        (DCM_SOURCE, DCM_DESTINATION)
    };
    by_type(DCM_APPLICATION)
        .or_else(|| by_type(first))
        .or_else(|| by_type(second))
}

fn client_id(agent: Option<&Agent>) -> Result<Text, Reject> {
    agent
        .and_then(|a| a.who.as_ref())
        .and_then(|w| w.name())
        .map(|s| Text::from(s.trim()))
        .ok_or_else(|| {
            missing("agent with a client identifier (DICOM 110150, 110153 or 110152 with who.identifier or who.display)")
        })
}

/// The human (or other) requestor, unless it is the client itself or a patient (a patient id
/// must never land in the non-PHI `user` field).
fn user(ae: &Resource, client: Option<&Agent>) -> Option<Text> {
    ae.agent
        .iter()
        .filter(|a| a.requestor == Some(true))
        .filter(|a| !client.is_some_and(|c| std::ptr::eq(*a, c)))
        .filter_map(|a| a.who.as_ref())
        .filter(|w| {
            !w.reference
                .as_deref()
                .is_some_and(|r| r.starts_with("Patient/") || r.contains("/Patient/"))
        })
        .find_map(|w| w.name())
        .map(Text::from)
}

/// BALP records the token id in the OAuth user agent's `policy` (jti or the token's last 32
/// characters); other policies are consent or policy URIs, not tokens.
fn token_id(ae: &Resource) -> Option<Text> {
    ae.agent.iter().find_map(|a| {
        let oauth = a.has_type(BALP_OAUTH_USER);
        a.policy.iter().find_map(|p| {
            if let Some(jti) = p.strip_prefix(JTI_PREFIX) {
                Some(Text::from(jti))
            } else if oauth && !p.trim().is_empty() {
                Some(Text::from(p.trim()))
            } else {
                None
            }
        })
    })
}

fn purpose(ae: &Resource, client: Option<&Agent>) -> Option<Text> {
    purpose_code(&ae.purpose_of_event)
        .or_else(|| purpose_code(&ae.authorization))
        .or_else(|| {
            // Agent-level purpose: the requestor's first (BALP user slice), then any agent's.
            let requestor = |a: &&Agent| a.requestor == Some(true);
            (ae.agent.iter().filter(requestor).find_map(agent_purpose)).or_else(|| {
                ae.agent
                    .iter()
                    .filter(|a| !requestor(a))
                    .find_map(agent_purpose)
            })
        })
        .or_else(|| client.and_then(|c| purpose_code(&c.purpose_of_use)))
        .map(Text::from)
}

fn agent_purpose<'r>(a: &'r Agent<'_>) -> Option<&'r str> {
    purpose_code(&a.purpose_of_use).or_else(|| purpose_code(&a.authorization))
}

/// The client's network address when it is an IP address (R4 network type 2, or anything that
/// parses as one; R5 networkString).
fn source_ip(client: Option<&Agent>) -> Option<Text> {
    let client = client?;
    let candidates = [
        client.network.as_ref().and_then(|n| n.address.as_deref()),
        client.network_string.as_deref(),
    ];
    candidates
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|a| a.parse::<std::net::IpAddr>().is_ok())
        .map(Text::from)
}

fn is_patient_entity(e: &Entity) -> bool {
    e.has_role("1")
        || (e.type_code() == Some("1")
            && e.what
                .as_ref()
                .and_then(|w| w.reference.as_deref())
                .is_some_and(|r| r.starts_with("Patient/") || r.contains("/Patient/")))
}

/// The id in `Patient/<id>` (or a `…/Patient/<id>` absolute reference).
fn patient_id_of(reference: &str) -> Option<&str> {
    let at = reference.rfind("Patient/")?;
    let rest = &reference[at + "Patient/".len()..];
    let id = rest.split(['/', '?']).next()?;
    (!id.is_empty()).then_some(id)
}

fn patient(ae: &Resource) -> Option<Text> {
    let from_entity = ae
        .entity
        .iter()
        .filter(|e| is_patient_entity(e))
        .filter_map(|e| e.what.as_ref())
        .find_map(|w| {
            w.reference
                .as_deref()
                .and_then(patient_id_of)
                .or_else(|| w.identifier.as_ref().and_then(|i| i.value.as_deref()))
        });
    from_entity
        .or_else(|| {
            ae.patient
                .as_ref()
                .and_then(|p| p.reference.as_deref())
                .and_then(patient_id_of)
        })
        .map(Text::from)
}

/// A request taken from a BALP query entity: base64 of the raw request line (+ headers), or of
/// a URL (core R4 example).
struct RequestLine {
    method: Option<Method>,
    target: String,
}

fn decode_query(e: &Entity) -> Result<Option<RequestLine>, Reject> {
    let Some(encoded) = e.query.as_deref() else {
        return Ok(None);
    };
    // Line-wrapped base64 is rare: copy only then.
    let compact: std::borrow::Cow<'_, str> = if encoded.bytes().any(|b| b.is_ascii_whitespace()) {
        encoded.split_ascii_whitespace().collect::<String>().into()
    } else {
        encoded.into()
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| invalid("AuditEvent query entity is not valid base64".to_string()))?;
    // Only the request line is used: headers after it are not decoded as text.
    let first = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let text = String::from_utf8_lossy(first);
    Ok(parse_request_line(&text))
}

fn parse_request_line(text: &str) -> Option<RequestLine> {
    let first = text.lines().next()?.trim();
    if first.is_empty() {
        return None;
    }
    let (method, rest) = match first.split_once(' ') {
        Some((m, rest)) => match m.parse::<Method>() {
            Ok(method) => (Some(method), rest.trim()),
            Err(()) => (None, first),
        },
        None => (None, first),
    };
    // Drop a trailing " HTTP/1.1".
    let target = rest
        .rsplit_once(" HTTP/")
        .map_or(rest, |(t, _)| t)
        .trim()
        .to_string();
    if target.is_empty() {
        return None;
    }
    let target = if is_host_form(&target) {
        format!("https://{target}")
    } else {
        target
    };
    Some(RequestLine {
        method: Some(method).flatten(),
        target,
    })
}

/// BALP's published example writes `host/path?query` without a scheme. Judged on the part
/// before `?`: a query may carry a URL of its own (`code=http://loinc.org|8867-4`).
fn is_host_form(target: &str) -> bool {
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    if path.starts_with('/') || path.contains("://") {
        return false;
    }
    // A host has a dot (`test.fhir.org`) or a port (`localhost:8080`); a resource type or
    // operation never has either.
    let first = path.split('/').next().unwrap_or("");
    first.contains('.') || first.contains(':')
}

/// The resource the event acted on: the first `what` reference that is not the patient
/// subject and not a contained resource; the patient entity when it is the only one.
fn subject_reference<'r>(ae: &'r Resource<'_>) -> Option<&'r str> {
    let references = |patients: bool| {
        ae.entity
            .iter()
            .filter(move |e| is_patient_entity(e) == patients)
            .filter_map(|e| e.what.as_ref()?.reference.as_deref())
            .filter(|r| !r.starts_with('#') && r.contains('/'))
    };
    references(false).next().or_else(|| references(true).next())
}

/// Builds the request URL from the acted-on reference and the interaction.
fn url_for(reference: &str, interaction: &str) -> String {
    let (resource, history) = match reference.split_once("/_history/") {
        Some((r, v)) => (r, Some(v)),
        None => (reference, None),
    };
    let type_only = || {
        resource
            .rsplit_once('/')
            .map_or(resource, |(t, _)| t)
            .to_string()
    };
    match interaction {
        "create" | "search" | "search-type" => type_only(),
        "vread" => match history {
            Some(v) => format!("{resource}/_history/{v}"),
            None => resource.to_string(),
        },
        "history" | "history-instance" => format!("{resource}/_history"),
        _ => resource.to_string(),
    }
}

fn method_for(interaction: Option<&str>, action: Option<&str>) -> Method {
    match interaction {
        Some(
            "read" | "vread" | "search" | "search-type" | "search-system" | "history"
            | "history-instance" | "history-type" | "history-system" | "capabilities",
        ) => Method::Get,
        Some("update") => Method::Put,
        Some("patch") => Method::Patch,
        Some("delete") => Method::Delete,
        Some(_) => Method::Post,
        None => match action {
            Some("R") | Some("E") => Method::Get,
            Some("U") => Method::Put,
            Some("D") => Method::Delete,
            _ => Method::Post,
        },
    }
}

/// HTTP status class from the audit outcome: 0 success, 4 minor failure (client-side),
/// 8 serious and 12 major failure (server-side). No outcome: success (BALP fixes it to 0).
fn status_for(outcome: Option<&str>, interaction: Option<&str>) -> Result<u16, Reject> {
    match outcome.map(str::trim) {
        None | Some("0") => Ok(if interaction == Some("create") {
            201
        } else {
            200
        }),
        Some("4") => Ok(400),
        Some("8") | Some("12") => Ok(500),
        Some(other) => Err(invalid(format!(
            "AuditEvent.outcome {} is not an audit outcome code (0, 4, 8, 12)",
            short(other)
        ))),
    }
}

fn short(value: &str) -> String {
    let cut: String = value.chars().take(16).collect();
    format!("'{cut}'")
}

fn access(ae: &Resource, interaction: Option<String>) -> Result<AccessEvent, Reject> {
    let time = recorded(ae)?;
    let interaction = interaction.as_deref();
    let read = matches!(interaction, Some("read" | "vread")) || ae.action.as_deref() == Some("R");
    let client = client_agent(ae, read);
    let client_id = client_id(client)?;
    let mut request = None;
    for e in &ae.entity {
        if let Some(line) = decode_query(e)? {
            request = Some(line);
            break;
        }
    }
    let (method, url) = match request {
        Some(line) => (
            line.method
                .unwrap_or_else(|| method_for(interaction, ae.action.as_deref())),
            line.target,
        ),
        None => {
            let reference = subject_reference(ae).ok_or_else(|| {
                missing(&format!(
                    "entity naming the resource (rest {}: no `what` reference or `query`)",
                    interaction.unwrap_or("interaction")
                ))
            })?;
            (
                method_for(interaction, ae.action.as_deref()),
                url_for(reference, interaction.unwrap_or("")),
            )
        }
    };
    let status = status_for(ae.outcome.as_ref().and_then(|o| o.code()), interaction)?;
    Ok(AccessEvent {
        common: Common {
            time,
            client_id,
            user: user(ae, client),
            source_ip: source_ip(client),
            user_agent: None,
        },
        method,
        url,
        status,
        token_id: token_id(ae),
        resources_returned: None,
        bytes: None,
        patient: patient(ae),
        patient_count: None,
        purpose_of_use: purpose(ae, client),
    })
}

fn token(ae: &Resource, action: TokenAction) -> Result<TokenEvent, Reject> {
    let time = recorded(ae)?;
    let client = client_agent(ae, false);
    Ok(TokenEvent {
        common: Common {
            time,
            client_id: client_id(client)?,
            user: user(ae, client),
            source_ip: source_ip(client),
            user_agent: None,
        },
        event: action,
        token_id: token_id(ae),
        grant_type: None,
        scope_requested: None,
        scope_granted: None,
        patient: patient(ae),
        expires_in: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every request-line form of the BALP and FHIR AuditEvent examples (BALP 1.1.4
    /// `ex-auditBasicQueryGetServer`: `GET host/path?query` with headers after it; FHIR R4/R5
    /// `example-search`: an absolute URL without a method), and the forms servers log
    /// (origin form with `HTTP/1.1`, absolute with a port, a URL inside the query), each with
    /// the resource type the classifier then finds.
    #[test]
    fn request_lines_of_every_form_are_classified() {
        use crate::smart::request::classify;
        let cases: &[(&str, Option<Method>, &str, Option<&str>)] = &[
            (
                "GET test.fhir.org/r4/Observation?patient=ex-patient&_count=10\nAccept: x",
                Some(Method::Get),
                "https://test.fhir.org/r4/Observation?patient=ex-patient&_count=10",
                Some("Observation"),
            ),
            (
                "GET fhir.example-hospital.org/r4/Observation?patient=p1&code=http://loinc.org|8867-4",
                Some(Method::Get),
                "https://fhir.example-hospital.org/r4/Observation?patient=p1&code=http://loinc.org|8867-4",
                Some("Observation"),
            ),
            (
                "GET localhost:8080/fhir/DocumentReference?patient=p1&type=http://loinc.org|34117-2 HTTP/1.1",
                Some(Method::Get),
                "https://localhost:8080/fhir/DocumentReference?patient=p1&type=http://loinc.org|34117-2",
                Some("DocumentReference"),
            ),
            (
                "POST /fhir/Patient/_search HTTP/1.1",
                Some(Method::Post),
                "/fhir/Patient/_search",
                Some("Patient"),
            ),
            (
                "GET https://ehr.example.org:8443/fhir/r4/Condition?patient=p2 HTTP/2",
                Some(Method::Get),
                "https://ehr.example.org:8443/fhir/r4/Condition?patient=p2",
                Some("Condition"),
            ),
            (
                "http://fhir-dev.healthintersections.com.au/open/Encounter?participant=13",
                None,
                "http://fhir-dev.healthintersections.com.au/open/Encounter?participant=13",
                Some("Encounter"),
            ),
            (
                "GET Observation?code=http://loinc.org|8867-4",
                Some(Method::Get),
                "Observation?code=http://loinc.org|8867-4",
                Some("Observation"),
            ),
        ];
        for &(line, method, target, resource_type) in cases {
            let l = parse_request_line(line).unwrap_or_else(|| panic!("{line}"));
            assert_eq!((l.method, l.target.as_str()), (method, target), "{line}");
            let request = classify(method.unwrap_or(Method::Get), &l.target);
            assert_eq!(request.resource_type, resource_type, "{line}");
        }
    }

    #[test]
    fn urls_follow_the_interaction() {
        assert_eq!(
            url_for("DocumentReference/d1", "create"),
            "DocumentReference"
        );
        assert_eq!(url_for("Patient/p/_history/2", "read"), "Patient/p");
        assert_eq!(
            url_for("Patient/p/_history/2", "vread"),
            "Patient/p/_history/2"
        );
        assert_eq!(
            url_for("Patient/p", "history-instance"),
            "Patient/p/_history"
        );
        assert_eq!(url_for("MeasureReport/m", "delete"), "MeasureReport/m");
        assert_eq!(
            patient_id_of("https://x.example/fhir/Patient/p9"),
            Some("p9")
        );
        assert_eq!(patient_id_of("Patient/"), None);
    }

    #[test]
    fn outcome_codes_map_to_status_classes() {
        assert_eq!(status_for(Some("0"), Some("create")).unwrap(), 201);
        assert_eq!(status_for(None, Some("read")).unwrap(), 200);
        assert_eq!(status_for(Some("4"), None).unwrap(), 400);
        assert_eq!(status_for(Some("12"), None).unwrap(), 500);
        let r = status_for(Some("x"), None).unwrap_err();
        assert!(
            r.reason.contains("not an audit outcome code"),
            "{}",
            r.reason
        );
    }
}
