//! Classifying a FHIR request from its method and URL.

use std::borrow::Cow;

use super::compartment::{is_patient_compartment_type, known_resource_type, patient_link_params};
use super::include_targets::include_targets;
use super::method::Method;
use super::query;
use super::types::{FhirRequest, Interaction, OperationLevel, Paging, PatientScope};

/// Path segments that are not resource types but show where the FHIR base ends.
const NON_RESOURCE_ANCHORS: &[&str] = &[
    "metadata",
    "_history",
    "_search",
    ".well-known",
    "bulkstatus",
    "bulkfiles",
];

/// Classifies requests, optionally against an explicitly configured FHIR base URL.
#[derive(Clone, Debug, Default)]
pub struct Classifier {
    /// Path part of the configured base (e.g. `/fhir/r4`), without trailing slash.
    base_path: Option<String>,
}

impl Classifier {
    /// Recognises the base of absolute URLs from the first FHIR segment.
    pub fn new() -> Classifier {
        Classifier::default()
    }

    /// Uses `base` (absolute URL or path, e.g. `https://ehr.example.org/fhir/r4`) as the FHIR base.
    pub fn with_base(base: &str) -> Classifier {
        let path = strip_scheme_and_host(base).unwrap_or(base);
        let path = path.trim_end_matches('/');
        Classifier {
            base_path: Some(path.to_string()),
        }
    }

    pub fn classify<'a>(&self, method: Method, url: &'a str) -> FhirRequest<'a> {
        let url = url.trim();
        if url.is_empty() {
            return FhirRequest::unknown("empty URL");
        }
        if has_space_or_control(url) {
            return FhirRequest::unknown("URL contains whitespace or control characters");
        }
        let url = query::split_once_ascii(url, b'#').map_or(url, |(u, _)| u);
        let (path, query) = match query::split_once_ascii(url, b'?') {
            Some((p, q)) => (p, Some(q)),
            None => (url, None),
        };
        // Servers decode the path before routing (`Patient/p%32` is served as `Patient/p2`):
        // judge what they serve, not what the client spelled. Decoded once, as servers do.
        if memchr::memchr(b'%', path.as_bytes()).is_some() {
            let decoded = query::decode(path);
            // What classify_path will take as the path: the decoded text up to its first `?`.
            let decoded_path =
                query::split_once_ascii(&decoded, b'?').map_or(&*decoded, |(p, _)| p);
            if has_space_or_control(decoded_path) {
                return FhirRequest::unknown(
                    "URL path decodes to whitespace or control characters",
                );
            }
            let url = match query {
                Some(q) => format!("{decoded}?{q}"),
                None => decoded.into_owned(),
            };
            return self.classify_path(method, &url).into_owned();
        }
        self.classify_path(method, url)
    }

    /// Classifies a URL whose path is already decoded and checked for whitespace and control
    /// characters.
    fn classify_path<'a>(&self, method: Method, url: &'a str) -> FhirRequest<'a> {
        let (path, query) = match query::split_once_ascii(url, b'?') {
            Some((p, q)) => (p, Some(q)),
            None => (url, None),
        };
        let segments = match self.fhir_segments(path, query.is_some()) {
            Ok(s) => s,
            // Bulk Data output files live where the server puts them (manifest `output[].url`,
            // often another host); their name is all that shows.
            Err(_) if method.is_read() && is_ndjson_file(path) => {
                return FhirRequest::new(Interaction::BulkDownload)
            }
            Err(problem) => return FhirRequest::unknown(problem),
        };
        let mut request = route(method, segments.as_slice(), query.unwrap_or(""));
        if request.interaction != Interaction::Unknown {
            apply_query_facts(&mut request, query.unwrap_or(""));
        }
        request
    }

    /// The path segments after the FHIR base.
    fn fhir_segments<'a>(&self, path: &'a str, has_query: bool) -> Result<Segments<'a>, String> {
        let absolute = strip_scheme_and_host(path);
        let rooted = absolute.is_some() || path.starts_with('/');
        let path = absolute.unwrap_or(path);
        if let (Some(base), true) = (&self.base_path, rooted) {
            let rest = path
                .strip_prefix(base.as_str())
                .filter(|r| r.is_empty() || r.starts_with('/'))
                .ok_or("URL is outside the configured FHIR base")?;
            return Segments::parse(trim_slashes(rest));
        }
        let trimmed = trim_slashes(path);
        if trimmed.is_empty() {
            return if has_query || rooted {
                Ok(Segments::default())
            } else {
                Err("empty path".into())
            };
        }
        if !rooted {
            let first = trimmed.split('/').next().unwrap_or_default();
            return if is_anchor(first) {
                Segments::parse(trimmed)
            } else {
                Err(not_a_type(first))
            };
        }
        // Absolute or rooted: the base ends before the first FHIR segment.
        let mut start = 0;
        for segment in trimmed.split('/') {
            if is_anchor(segment) {
                return Segments::parse(&trimmed[start..]);
            }
            start += segment.len() + 1;
        }
        if trimmed.split('/').any(str::is_empty) {
            return Err(EMPTY_SEGMENT.into());
        }
        // `[base]?…` (system search, HAPI paging) has no segment after the base.
        match trimmed.split('/').find(|s| looks_like_type(s)) {
            None if has_query => Ok(Segments::default()),
            Some(s) => Err(not_a_type(s)),
            None => Err("no FHIR resource type, operation or known endpoint in the path".into()),
        }
    }
}

const EMPTY_SEGMENT: &str = "empty path segment ('//')";
/// More segments than any FHIR request shape has (`Patient/1/Observation/_search` is four).
const MAX_SEGMENTS: usize = 6;

/// The path segments after the base, without allocating.
#[derive(Default)]
struct Segments<'a> {
    items: [&'a str; MAX_SEGMENTS],
    len: usize,
}

impl<'a> Segments<'a> {
    fn parse(trimmed: &'a str) -> Result<Segments<'a>, String> {
        let mut out = Segments::default();
        if trimmed.is_empty() {
            return Ok(out);
        }
        for segment in query::split_ascii(trimmed, b'/') {
            if segment.is_empty() {
                return Err(EMPTY_SEGMENT.into());
            }
            if out.len == MAX_SEGMENTS {
                return Err(format!(
                    "more than {MAX_SEGMENTS} path segments after the FHIR base"
                ));
            }
            out.items[out.len] = segment;
            out.len += 1;
        }
        Ok(out)
    }
    fn as_slice(&self) -> &[&'a str] {
        &self.items[..self.len]
    }
}

/// Whether `s` holds ASCII whitespace or a control character (every byte up to the space, and
/// DEL). Every URL is asked this: no early exit, so the loop runs a vector at a time.
fn has_space_or_control(s: &str) -> bool {
    s.bytes()
        .fold(false, |found, b| found | (b <= b' ') | (b == 0x7f))
}

fn is_ndjson_file(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.ends_with(".ndjson") || lower.ends_with(".ndjson.gz")
}

fn trim_slashes(path: &str) -> &str {
    path.trim_start_matches('/').trim_end_matches('/')
}

/// Classifies with base recognition and no configuration.
pub fn classify(method: Method, url: &str) -> FhirRequest<'_> {
    Classifier::new().classify(method, url)
}

/// The path of an absolute `http(s)://host/…` URL (empty when it has none); None when `url`
/// is not absolute.
pub(super) fn strip_scheme_and_host(url: &str) -> Option<&str> {
    // Byte comparison: a URL may carry raw UTF-8, and slicing at a byte inside a character
    // would panic.
    let starts = |prefix: &str| {
        url.as_bytes()
            .get(..prefix.len())
            .is_some_and(|b| b.eq_ignore_ascii_case(prefix.as_bytes()))
    };
    let scheme_len = if starts("https://") {
        8
    } else if starts("http://") {
        7
    } else {
        return None;
    };
    let rest = &url[scheme_len..];
    Some(rest.find('/').map_or("", |i| &rest[i..]))
}

pub(super) fn is_anchor(segment: &str) -> bool {
    segment.starts_with('$')
        || NON_RESOURCE_ANCHORS.contains(&segment)
        || known_resource_type(segment).is_some()
}

/// Letters only, upper-case first: shaped like a resource type (ids usually carry digits).
fn looks_like_type(segment: &str) -> bool {
    segment.starts_with(|c: char| c.is_ascii_uppercase())
        && segment.chars().all(|c| c.is_ascii_alphabetic())
}

fn not_a_type(segment: &str) -> String {
    if looks_like_type(segment) {
        format!("'{segment}' is not a FHIR resource type")
    } else if segment.chars().all(|c| c.is_ascii_alphabetic())
        && known_resource_type(&capitalise(segment)).is_some()
    {
        format!("'{segment}' is not a FHIR resource type (types are case-sensitive)")
    } else {
        "first path segment is not a FHIR resource type".into()
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// FHIR logical id: 1–64 of `A-Z a-z 0-9 - .`.
fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

fn resource_type(segment: &str) -> Result<&'static str, String> {
    known_resource_type(segment).ok_or_else(|| not_a_type(segment))
}

fn route<'a>(method: Method, segs: &[&'a str], query: &'a str) -> FhirRequest<'a> {
    use Interaction as I;
    let method = if method == Method::Head {
        Method::Get
    } else {
        method
    };
    let has_query = !query.is_empty();
    let mut r = match segs {
        [] => match method {
            Method::Get if query_has(query, "_getpages") => FhirRequest::new(I::Page),
            Method::Get if has_query => FhirRequest::new(I::SearchSystem),
            Method::Post => FhirRequest::new(I::BatchTransaction),
            Method::Options => FhirRequest::new(I::Capabilities),
            _ => return FhirRequest::unknown(format!("{method} on the FHIR base")),
        },
        ["metadata"] if method == Method::Get => FhirRequest::new(I::Capabilities),
        [".well-known", ..] => FhirRequest::new(I::Discovery),
        ["bulkstatus", ..] => FhirRequest::new(I::BulkStatus),
        ["bulkfiles", ..] => FhirRequest::new(I::BulkDownload),
        ["_history"] if method == Method::Get => FhirRequest::new(I::HistorySystem),
        ["_search"] if method == Method::Post => {
            let mut r = FhirRequest::new(I::SearchSystem);
            r.body_params = true;
            r
        }
        [op] if op.starts_with('$') => operation(op, OperationLevel::System, None, None),
        [ty] => {
            let ty = match resource_type(ty) {
                Ok(t) => t,
                Err(p) => return FhirRequest::unknown(p),
            };
            let mut r = match method {
                Method::Get => FhirRequest::new(I::SearchType),
                Method::Post => FhirRequest::new(I::Create),
                Method::Put | Method::Patch | Method::Delete if has_query => {
                    let mut r = FhirRequest::new(match method {
                        Method::Put => I::Update,
                        Method::Patch => I::Patch,
                        _ => I::Delete,
                    });
                    r.conditional = true;
                    r
                }
                _ => {
                    return FhirRequest::unknown(format!(
                        "{method} on a resource type needs an id or search parameters"
                    ))
                }
            };
            r.resource_type = Some(ty);
            r
        }
        // POST _search carries its parameters in the body: the patient is not visible.
        [ty, "_search"] if method == Method::Post => {
            let mut r = typed(I::SearchType, ty);
            if r.resource_type.is_some_and(is_patient_compartment_type) {
                r.patient = PatientScope::Unknown;
                r.body_params = true;
            }
            r
        }
        [ty, "_history"] if method == Method::Get => typed(I::HistoryType, ty),
        [ty, op] if op.starts_with('$') => match resource_type(ty) {
            Ok(t) => operation(op, OperationLevel::Type, Some(t), None),
            Err(p) => FhirRequest::unknown(p),
        },
        [ty, id] => {
            let interaction = match method {
                Method::Get => I::Read,
                Method::Put => I::Update,
                Method::Patch => I::Patch,
                Method::Delete => I::Delete,
                _ => return FhirRequest::unknown(format!("{method} on a resource instance")),
            };
            instance(interaction, ty, id)
        }
        [ty, id, "_history"] if method == Method::Get => instance(I::HistoryInstance, ty, id),
        [ty, id, "_history", vid] if method == Method::Get => {
            if !is_valid_id(vid) {
                return FhirRequest::unknown("version id is not a valid FHIR id");
            }
            instance(I::Vread, ty, id)
        }
        [ty, id, op] if op.starts_with('$') => {
            let mut r = instance(I::Operation, ty, id);
            if r.interaction == I::Unknown {
                return r;
            }
            let (t, i) = (r.resource_type, r.resource_id.take());
            r = operation(op, OperationLevel::Instance, t, i);
            r
        }
        [compartment, id, target] if method.is_read() && COMPARTMENTS.contains(compartment) => {
            compartment_search(compartment, id, target)
        }
        [compartment, id, target, "_search"]
            if method == Method::Post && COMPARTMENTS.contains(compartment) =>
        {
            compartment_search(compartment, id, target)
        }
        _ => {
            return FhirRequest::unknown(format!(
                "{method} with an unrecognised path shape ({} segments)",
                segs.len()
            ))
        }
    };
    if r.interaction != I::Unknown && r.patient == PatientScope::Unknown && !r.body_params {
        r.patient = default_patient_scope(&r);
    }
    r
}

fn typed<'a>(interaction: Interaction, ty: &str) -> FhirRequest<'a> {
    match resource_type(ty) {
        Ok(t) => {
            let mut r = FhirRequest::new(interaction);
            r.resource_type = Some(t);
            r
        }
        Err(p) => FhirRequest::unknown(p),
    }
}

fn instance<'a>(interaction: Interaction, ty: &str, id: &'a str) -> FhirRequest<'a> {
    let ty = match resource_type(ty) {
        Ok(t) => t,
        Err(p) => return FhirRequest::unknown(p),
    };
    if !is_valid_id(id) {
        return FhirRequest::unknown("resource id is not a valid FHIR id");
    }
    let mut r = FhirRequest::new(interaction);
    r.resource_type = Some(ty);
    r.resource_id = Some(Cow::Borrowed(id));
    r.patient = if ty == "Patient" {
        PatientScope::Patient(Cow::Borrowed(id))
    } else if is_patient_compartment_type(ty) {
        PatientScope::Instance
    } else {
        PatientScope::NotPatientData
    };
    r
}

/// Resource types that define compartments (`[type]/[id]/[target]` searches).
const COMPARTMENTS: &[&str] = &[
    "Patient",
    "Encounter",
    "RelatedPerson",
    "Practitioner",
    "Device",
];

fn compartment_search<'a>(compartment: &str, id: &'a str, target: &str) -> FhirRequest<'a> {
    if !is_valid_id(id) {
        return FhirRequest::unknown("compartment id is not a valid FHIR id");
    }
    let mut r = FhirRequest::new(Interaction::SearchCompartment);
    if target != "*" {
        match resource_type(target) {
            Ok(t) => r.resource_type = Some(t),
            Err(p) => return FhirRequest::unknown(p),
        }
    }
    r.patient = if compartment == "Patient" {
        PatientScope::Patient(Cow::Borrowed(id))
    } else {
        PatientScope::Unknown
    };
    r
}

fn operation<'a>(
    op: &'a str,
    level: OperationLevel,
    resource_type: Option<&'static str>,
    id: Option<Cow<'a, str>>,
) -> FhirRequest<'a> {
    let name = &op[1..];
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return FhirRequest::unknown("operation name is empty or malformed");
    }
    let mut r = FhirRequest::new(Interaction::Operation);
    r.operation = Some(Cow::Borrowed(op));
    r.operation_level = Some(level);
    r.resource_type = resource_type;
    r.patient = match (op, level, resource_type) {
        ("$export-poll-status", _, _) => PatientScope::NotPatientData,
        ("$export", _, _) => PatientScope::AllPatients,
        ("$everything", OperationLevel::Type, Some("Patient")) => PatientScope::AllPatients,
        (_, OperationLevel::Instance, Some("Patient")) => match &id {
            Some(id) => PatientScope::Patient(id.clone()),
            None => PatientScope::Unknown,
        },
        (_, OperationLevel::Instance, Some(t)) if is_patient_compartment_type(t) => {
            PatientScope::Instance
        }
        (_, _, Some(t)) if !is_patient_compartment_type(t) => PatientScope::NotPatientData,
        _ => PatientScope::Unknown,
    };
    r.resource_id = id;
    r
}

/// Patient scope when the path alone did not decide it (query facts may refine it).
fn default_patient_scope(r: &FhirRequest<'_>) -> PatientScope<'static> {
    use Interaction as I;
    match r.interaction {
        I::Capabilities | I::Discovery | I::BulkStatus => PatientScope::NotPatientData,
        I::SearchSystem | I::HistorySystem | I::BulkDownload => PatientScope::Unconstrained,
        I::SearchType | I::HistoryType | I::Update | I::Patch | I::Delete | I::Operation => {
            match r.resource_type {
                Some(t) if is_patient_compartment_type(t) => PatientScope::Unconstrained,
                Some(_) => PatientScope::NotPatientData,
                None => PatientScope::Unknown,
            }
        }
        I::Create => match r.resource_type {
            Some(t) if !is_patient_compartment_type(t) => PatientScope::NotPatientData,
            _ => PatientScope::Unknown,
        },
        _ => PatientScope::Unknown,
    }
}

fn query_has(query: &str, name: &str) -> bool {
    query::pairs(query).any(|(n, _)| n == name)
}

/// Reads `_count`, paging, `_type` and patient-linking parameters from the query.
fn apply_query_facts<'a>(r: &mut FhirRequest<'a>, query: &'a str) {
    if query.is_empty() {
        return;
    }
    let mut ids: Vec<Cow<'a, str>> = Vec::new();
    let mut by_identifier = false;
    let link_params = r.resource_type.map(patient_link_params).unwrap_or(&[]);
    let system_level = r.resource_type.is_none();
    for (name, value) in query::pairs(query) {
        match name.as_ref() {
            "_count" => r.count = value.parse().ok(),
            "_getpages" | "_getpagesoffset" => r.paging = Some(Paging::HapiGetPages),
            "ct" => r.paging = Some(Paging::ContinuationToken),
            "_page_token" | "page_token" => r.paging = Some(Paging::PageToken),
            "_offset" | "page" => r.paging = r.paging.or(Some(Paging::Offset)),
            "_type" => {
                r.types = value.split(',').filter_map(known_resource_type).collect();
            }
            "_id" if r.resource_type == Some("Patient") => {
                push_patient_ids(value, true, &mut ids);
            }
            "identifier" if r.resource_type == Some("Patient") => by_identifier = true,
            // `_include:iterate` and `_revinclude:iterate` include as much (FHIR R4 search).
            n if matches!(before_colon(n), "_include" | "_revinclude") => {
                let base = before_colon(n);
                let targets: &[&'static str] = match included(base, &value) {
                    Included::Any => {
                        r.includes_any = true;
                        &[]
                    }
                    Included::One(t) => &[t],
                    Included::Targets(ts) => ts,
                    Included::Nothing => &[],
                };
                for t in targets {
                    if !r.included.contains(t) {
                        r.included.push(t);
                    }
                }
            }
            _ => {
                let (base, modifier, chain) = split_param_name(&name);
                let subject = (base == "subject")
                    .then(|| r.resource_type.and_then(|t| include_targets(t, "subject")))
                    .flatten();
                // `patient` is a search parameter on most compartment types even where the
                // compartment definition links through `subject` (e.g. Observation), and
                // `subject` may reference a Patient where the compartment links through
                // `patient` (e.g. Condition).
                let links = link_params.contains(&base)
                    || base == "patient"
                    || subject.is_some_and(|targets| targets.contains(&"Patient"));
                if !links {
                    continue;
                }
                // A chain searches the referenced patient's own fields: only `.identifier`
                // singles one out; `patient.name=smith` is a population search (FHIR R4 search
                // §2.21.1.6 chaining).
                if let Some(chain) = chain {
                    // `patient._id=p2` names the patient by id as plainly as `patient=p2`.
                    if chain == "_id" {
                        push_patient_ids(value, true, &mut ids);
                    }
                    by_identifier |= chain == "identifier";
                    continue;
                }
                // Modifiers other than a type (`:missing`, `:not`, `:identifier`, `:text`, …)
                // never carry a logical id (FHIR R4 search §2.21.1.4 reference modifiers).
                let type_modifier =
                    modifier.filter(|m| m.starts_with(|c: char| c.is_ascii_uppercase()));
                if modifier.is_some() && type_modifier.is_none() {
                    by_identifier |= modifier == Some("identifier");
                    continue;
                }
                let bare_ok = matches!(base, "patient" | "beneficiary")
                    || type_modifier == Some("Patient")
                    || subject.is_some_and(patient_or_group);
                push_patient_ids(value, bare_ok, &mut ids);
            }
        }
    }
    if r.interaction == Interaction::Page {
        r.paging = Some(Paging::HapiGetPages);
    }
    if system_level
        && !r.types.is_empty()
        && r.patient == PatientScope::Unconstrained
        && !r.types.iter().any(|t| is_patient_compartment_type(t))
    {
        r.patient = PatientScope::NotPatientData;
    }
    let refinable = matches!(
        r.patient,
        PatientScope::Unconstrained | PatientScope::Unknown
    ) && r.interaction != Interaction::Page
        && !(r.is_bulk_export());
    if !refinable {
        return;
    }
    ids.dedup();
    if ids.len() == 1 {
        r.patient = PatientScope::Patient(ids.remove(0));
    } else if ids.len() > 1 {
        r.patient = PatientScope::Patients(ids);
    } else if by_identifier {
        r.patient = PatientScope::PatientByIdentifier;
    }
}

/// A bare id is a local reference to any target type with that id (FHIR R4 search, reference:
/// `[parameter]=[id]`). Through `subject` of a type whose subject is a Patient or a Group
/// (Condition, Encounter, MedicationRequest …) it names the patient as plainly as
/// `subject=Patient/[id]` (a Group is not the launch patient either). Where `subject` may also
/// be a Device, Location or Organization (Observation, DocumentReference, Goal …), or is not
/// tabled, a bare id may be any of them — the spec has servers reject a bare id that matches
/// several types —, and other linking parameters (`performer`, `author`) name practitioners by
/// bare id as often: there only a typed reference names a patient.
fn patient_or_group(targets: &[&str]) -> bool {
    targets.contains(&"Patient") && targets.iter().all(|t| matches!(*t, "Patient" | "Group"))
}

/// A parameter name without its modifier (`_include:iterate` → `_include`).
fn before_colon(name: &str) -> &str {
    query::split_once_ascii(name, b':').map_or(name, |(base, _)| base)
}

/// `subject:Patient.identifier` → (`subject`, Some(`Patient`), Some(`identifier`)).
fn split_param_name(name: &str) -> (&str, Option<&str>, Option<&str>) {
    let (head, chain) = match query::split_once_ascii(name, b'.') {
        Some((h, rest)) => (h, Some(rest)),
        None => (name, None),
    };
    match query::split_once_ascii(head, b':') {
        Some((base, modifier)) => (base, Some(modifier), chain),
        None => (head, None, chain),
    }
}

/// What an `_include` / `_revinclude` adds to the result.
enum Included {
    /// One type: `_revinclude=Provenance:target` → Provenance (the source);
    /// `_include=Observation:subject:Patient` → Patient (a target type).
    One(&'static str),
    /// The parameter's target types: `_include=MedicationRequest:medication` → Medication.
    Targets(&'static [&'static str]),
    /// `_include=*`, or a parameter whose targets this table does not know (for that
    /// source): any type.
    Any,
    /// Not an include value (no `source:param`, an empty parameter, or an unknown type named
    /// as source of a `_revinclude` or as target).
    Nothing,
}

fn included(name: &str, value: &str) -> Included {
    if value == "*" {
        return Included::Any;
    }
    let mut parts = value.split(':');
    let (Some(source), Some(param)) = (parts.next(), parts.next()) else {
        return Included::Nothing;
    };
    if param.is_empty() {
        return Included::Nothing;
    }
    let one = |t: Option<&'static str>| t.map_or(Included::Nothing, Included::One);
    match (name, parts.next()) {
        ("_revinclude", _) => one(known_resource_type(source)),
        (_, Some(target)) => one(known_resource_type(target)),
        _ => include_targets(source, param).map_or(Included::Any, Included::Targets),
    }
}

/// Adds the patient ids of a (comma-separated) parameter value.
fn push_patient_ids<'a>(value: Cow<'a, str>, bare_ok: bool, out: &mut Vec<Cow<'a, str>>) {
    match value {
        Cow::Borrowed(v) => out.extend(
            v.split(',')
                .filter_map(|item| patient_reference(item, bare_ok))
                .map(Cow::Borrowed),
        ),
        Cow::Owned(v) => out.extend(
            v.split(',')
                .filter_map(|item| patient_reference(item, bare_ok))
                .map(|id| Cow::Owned(id.to_string())),
        ),
    }
}

/// `Patient/123`, `https://x/fhir/Patient/123` or (where the parameter can only mean a patient)
/// a bare `123` → `123`.
fn patient_reference(v: &str, bare_ok: bool) -> Option<&str> {
    let id_start = match memchr::memmem::rfind(v.as_bytes(), b"Patient/") {
        Some(i) if i == 0 || v[..i].ends_with('/') => i + "Patient/".len(),
        Some(_) => return None,
        // A logical id has no `/`: `Group/7` is a reference to another type, not a bare id.
        None if bare_ok && !v.contains('/') => 0,
        None => return None,
    };
    let id = v[id_start..].split('/').next().unwrap_or("");
    is_valid_id(id).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_or_control_is_what_the_ascii_predicates_say() {
        for b in 0u8..=127 {
            let text = format!("Patient/{}1", char::from(b));
            let expected = b.is_ascii_whitespace() || b.is_ascii_control();
            assert_eq!(has_space_or_control(&text), expected, "byte {b:#04x}");
        }
        assert!(!has_space_or_control("Patient/é1"));
    }
}
