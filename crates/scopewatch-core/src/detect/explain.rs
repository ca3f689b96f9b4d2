//! Explain before you score: what an access did, relative to the token it used. An access that
//! its token's scopes and launch patient account for is explained; what is left over (outside
//! the scopes, outside the launch context) is what the rules weigh.

use crate::event::{AccessEvent, Text};
use crate::smart::request::{Classifier, FhirRequest, Interaction, PatientScope, Requirement};
use crate::smart::scope::{Context, Coverage, Perms, ResourceTarget, Scope, ScopeSet};

use super::tokens::{TokenCache, TokenInfo};

/// Whether the request stayed inside the token's launch patient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LaunchFit {
    /// The token has no launch patient (user-level or backend token).
    NoLaunchPatient,
    /// The request names only the launch patient, or names none and the server restricts it
    /// to the launch patient (SMART patient-context rule).
    InLaunchPatient,
    /// The request names another patient than the launch patient.
    OtherPatient,
    /// The request reaches all patients or a cohort (`$export`, `Patient/$everything`).
    AllPatients,
    /// Not patient data.
    NotPatientData,
    /// The token was granted a patient launch (`launch/patient`, `launch`) but its source
    /// did not record which patient (Keycloak events carry no claims): a request naming at
    /// most one patient is given the benefit of the doubt.
    UnrecordedLaunchPatient,
}

/// Whether the token's granted scopes allow the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScopeFit {
    Covered(Coverage),
    /// The scopes do not allow it: `coverage.missing` says which letters are missing.
    NotCovered {
        needed: Context,
        requirement: Requirement,
        coverage: Coverage,
    },
    /// The request needs no SMART permission (capabilities, discovery, a page of a search), or
    /// it is part of a Bulk Data export the client started.
    NoRequirement,
    /// Allowed or not, the log cannot tell: a read by id under a query-constrained scope, or
    /// `_include` / `_type` naming types the token cannot read (a well-behaved server filters
    /// them out).
    Unverified {
        reason: Unverified,
        requirement: Requirement,
    },
    /// The URL hides what was done (batch/transaction, an unknown operation or path, a bulk
    /// status or file with no export behind it): never counted as explained.
    Unexplained,
    /// The access names no token, or a token the cache does not know (never issued in the
    /// input, or evicted): its scopes cannot be checked.
    UnknownToken,
}

/// Why a served request could not be decided from the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unverified {
    /// Covered only by a granular (query-constrained) scope, and the request has no query
    /// that shows the constraint held.
    ConstrainedScope,
    /// `_include` / `_revinclude` asks for a type the token cannot read.
    IncludedType,
    /// A Bulk Data `_type` names a type the token cannot read.
    ExportType,
    /// A search over all types (`Patient/p1/*`, a system search without `_type`) by a token
    /// with per-type scopes: the server has to drop the other types.
    AllTypes,
    /// A read of a `Binary` without a Binary scope, by a token that may read resources whose
    /// attachments are served as Binary (a note's content): FHIR R4 `Binary.securityContext`
    /// lets the server authorise it as that resource, which the log does not show.
    BinaryAttachment,
}

impl Unverified {
    pub fn as_str(self) -> &'static str {
        match self {
            Unverified::ConstrainedScope => "constrained-scope",
            Unverified::IncludedType => "included-type",
            Unverified::ExportType => "export-type",
            Unverified::AllTypes => "all-types",
            Unverified::BinaryAttachment => "binary-attachment",
        }
    }
}

/// What the log shows about a served request, relative to its token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Explained,
    /// Refused (non-2xx): nothing was served.
    NotServed,
    /// Served although the token does not allow it.
    Gap,
    /// Served with a revoked token.
    Revoked,
    Unverified(Unverified),
    Unexplained,
    /// The token is unknown: nothing can be said.
    UnknownToken,
}

impl Verdict {
    /// The word the history store's `scope_fit` column holds.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Explained => "explained",
            Verdict::NotServed => "not_served",
            Verdict::Gap => "gap",
            Verdict::Revoked => "revoked",
            Verdict::Unverified(_) => "unverified",
            Verdict::Unexplained => "unexplained",
            Verdict::UnknownToken => "unknown_token",
        }
    }
}

/// An access with its classification and its fit to its token.
#[derive(Debug)]
pub struct Explained<'a> {
    pub request: FhirRequest<'a>,
    pub token: Option<&'a TokenInfo>,
    pub launch: LaunchFit,
    pub scopes: ScopeFit,
    /// The token had expired (beyond its `expires_in`) when the access happened.
    pub token_expired: bool,
    /// The token had been revoked before the access.
    pub token_revoked: bool,
    /// The response was a success (2xx): the data was actually served.
    pub served: bool,
}

impl Explained<'_> {
    /// Served although the token's scopes do not allow it: the server (or a gateway that
    /// flattened scopes) did not enforce them.
    pub fn is_enforcement_gap(&self) -> bool {
        self.served && matches!(self.scopes, ScopeFit::NotCovered { .. })
    }

    /// Fully accounted for by the token: covered scopes (in the context the launch needs) and
    /// a live token.
    pub fn is_explained(&self) -> bool {
        matches!(self.scopes, ScopeFit::Covered(_) | ScopeFit::NoRequirement)
            && !self.token_expired
            && !self.token_revoked
    }

    /// Reaches beyond one patient. A search without a patient that only a `patient/` scope
    /// allows does not: the server restricts it to the launch patient (SMART patient-specific
    /// scopes); one that a `user/` or `system/` scope allows does.
    pub fn reaches_population(&self) -> bool {
        if !self.request.is_population_level() {
            return false;
        }
        let in_launch = matches!(
            self.launch,
            LaunchFit::InLaunchPatient | LaunchFit::UnrecordedLaunchPatient
        );
        let beyond_patient_scopes = |t: &TokenInfo| {
            self.request
                .requirement()
                .is_some_and(|r| t.scopes.covers(Context::User, &r.resource, r.perms))
        };
        !in_launch || self.token.is_none_or(beyond_patient_scopes)
    }

    /// For an enforcement gap, the permission the token lacked, as a scope
    /// (`patient/DocumentReference.rs`): the context the launch needed, the type, the missing
    /// letters.
    pub fn missing_permission(&self) -> Option<String> {
        match &self.scopes {
            ScopeFit::NotCovered {
                needed,
                requirement,
                coverage,
            } if self.verdict() == Verdict::Gap => Some(format!(
                "{needed}/{}.{}",
                requirement.resource.as_str(),
                coverage.missing.letters()
            )),
            _ => None,
        }
    }

    /// The one-word verdict of the specification table.
    pub fn verdict(&self) -> Verdict {
        if !self.served {
            return Verdict::NotServed;
        }
        if self.token_revoked {
            return Verdict::Revoked;
        }
        match &self.scopes {
            ScopeFit::Covered(_) | ScopeFit::NoRequirement => Verdict::Explained,
            ScopeFit::NotCovered { .. } => Verdict::Gap,
            ScopeFit::Unverified { reason, .. } => Verdict::Unverified(*reason),
            ScopeFit::Unexplained => Verdict::Unexplained,
            ScopeFit::UnknownToken => Verdict::UnknownToken,
        }
    }
}

/// How long after a served `$export` kick-off the client's status polls and files belong to it
/// (exports of large populations run for hours; output files stay for a day or more).
pub const EXPORT_FOLLOWUP_SECONDS: i64 = 48 * 3600;

/// What the engine knows beyond the token cache when it explains an access.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExplainContext {
    /// The client kicked off a Bulk Data export recently: its status polls and files belong to it.
    pub export_in_progress: bool,
}

/// Classifies an access and checks it against its token.
pub fn explain<'a>(
    access: &'a AccessEvent,
    tokens: &'a TokenCache,
    classifier: &Classifier,
    context: ExplainContext,
) -> Explained<'a> {
    let request = classify_access(classifier, access, context);
    let token = match access.token_id.as_deref() {
        Some(id) => tokens
            .get(id)
            .filter(|t| t.client_id == access.common.client_id),
        // Joined by client id: only an unambiguous, unexpired sole token of the app.
        None => tokens.sole_live_token(&access.common.client_id, access.common.time),
    };
    explain_with_token(access, token, request, context)
}

/// Classifies an access's request as detection reads it (see [`read_in_context`]).
pub fn classify_access<'a>(
    classifier: &Classifier,
    access: &'a AccessEvent,
    context: ExplainContext,
) -> FhirRequest<'a> {
    read_in_context(classifier.classify(access.method, &access.url), context)
}

/// A classified request as detection reads it: some servers hand export output out as Binary
/// resources (manifest `output[].url`), so a Binary read during an export is a download.
pub fn read_in_context(request: FhirRequest<'_>, context: ExplainContext) -> FhirRequest<'_> {
    if context.export_in_progress
        && request.interaction == Interaction::Read
        && request.resource_type == Some("Binary")
    {
        return FhirRequest::new(Interaction::BulkDownload);
    }
    request
}

/// Checks an access already classified against the token it used (None: the token is not
/// known). Used by [`explain`] and by whatever replays stored accesses with their tokens.
pub fn explain_with_token<'a>(
    access: &'a AccessEvent,
    token: Option<&'a TokenInfo>,
    request: FhirRequest<'a>,
    context: ExplainContext,
) -> Explained<'a> {
    let launch = match launch_fit(&request, token, access.patient.as_deref()) {
        // The log says the response touched several patients: beyond a single launch patient.
        LaunchFit::InLaunchPatient | LaunchFit::UnrecordedLaunchPatient
            if access.patient_count.is_some_and(|n| n > 1) =>
        {
            LaunchFit::OtherPatient
        }
        fit => fit,
    };
    let scopes = match (token, request.requirement()) {
        // A page continues a search: only the token that searched may fetch it.
        (None, None) if request.interaction == Interaction::Page => ScopeFit::UnknownToken,
        (_, None) => no_requirement_fit(&request, context),
        (None, Some(_)) => ScopeFit::UnknownToken,
        (Some(t), Some(requirement)) if request.is_bulk_export() => {
            export_fit(&t.scopes, &request, requirement)
        }
        (Some(t), Some(requirement)) => scope_fit(&t.scopes, &request, launch, access, requirement),
    };
    Explained {
        token_expired: token.is_some_and(|t| t.is_known_expired_at(access.common.time)),
        token_revoked: token.is_some_and(|t| t.is_revoked_at(access.common.time)),
        served: (200..300).contains(&access.status),
        request,
        token,
        launch,
        scopes,
    }
}

/// Requests that need no scope of their own: explained when the FHIR spec or SMART says so,
/// otherwise unexplained (the URL hides what was done).
fn no_requirement_fit(request: &FhirRequest<'_>, context: ExplainContext) -> ScopeFit {
    match request.interaction {
        Interaction::Capabilities | Interaction::Discovery | Interaction::Page => {
            ScopeFit::NoRequirement
        }
        _ if request.is_bulk_followup() && context.export_in_progress => ScopeFit::NoRequirement,
        _ => ScopeFit::Unexplained,
    }
}

/// The letters a request needs, checked in the context its launch allows; a search checks
/// granular scopes against its own query; `_include` of unreadable types is unverified.
fn scope_fit(
    scopes: &ScopeSet,
    request: &FhirRequest<'_>,
    launch: LaunchFit,
    access: &AccessEvent,
    requirement: Requirement,
) -> ScopeFit {
    let needed = needed_context(launch);
    // A search's own parameters decide granular scopes; POST `_search` hides them in the body.
    let query = (request.is_search() && !request.body_params)
        .then(|| access.url.split_once('?').map_or("", |(_, q)| q));
    let coverage =
        scopes.coverage_for_query(needed, &requirement.resource, requirement.perms, query);
    if !coverage.is_covered() {
        if requirement.resource == ResourceTarget::Any {
            return all_types_fit(scopes, request, needed, query, requirement, coverage);
        }
        if attachment_read(scopes, request, needed) {
            return ScopeFit::Unverified {
                reason: Unverified::BinaryAttachment,
                requirement,
            };
        }
        return ScopeFit::NotCovered {
            needed,
            requirement,
            coverage,
        };
    }
    if coverage.constrained {
        return ScopeFit::Unverified {
            reason: Unverified::ConstrainedScope,
            requirement,
        };
    }
    if includes_unreadable(scopes, request, needed) {
        return ScopeFit::Unverified {
            reason: Unverified::IncludedType,
            requirement,
        };
    }
    ScopeFit::Covered(coverage)
}

/// Types whose attachments a server may serve as `Binary` resources (FHIR R4 Attachment.url
/// in `DocumentReference.content`, `DiagnosticReport.presentedForm`, `Media.content`,
/// `Communication.payload`, `Consent.sourceAttachment`).
const ATTACHMENT_TYPES: [&str; 5] = [
    "DocumentReference",
    "DiagnosticReport",
    "Media",
    "Communication",
    "Consent",
];

/// A read of a `Binary` by id by a token that may read some type whose attachments are served
/// as Binary: FHIR R4 `Binary.securityContext` "identifies another resource that can be used as
/// a proxy of the security sensitivity … when deciding and enforcing access control", and
/// SMART names no Binary rule; which resource stands behind this Binary the log does not say.
fn attachment_read(scopes: &ScopeSet, request: &FhirRequest<'_>, needed: Context) -> bool {
    request.resource_type == Some("Binary")
        && matches!(request.interaction, Interaction::Read | Interaction::Vread)
        && ATTACHMENT_TYPES.iter().any(|t| {
            scopes
                .coverage_for(needed, &ResourceTarget::Type((*t).to_string()), Perms::READ)
                .is_covered()
        })
}

/// `_include` / `_revinclude` naming a type the token cannot read (without a query constraint),
/// or `_include=*` without a wildcard read.
fn includes_unreadable(scopes: &ScopeSet, request: &FhirRequest<'_>, needed: Context) -> bool {
    let readable = |target: &ResourceTarget| {
        let c = scopes.coverage_for(needed, target, Perms::READ);
        c.is_covered() && !c.constrained
    };
    (request.includes_any && !readable(&ResourceTarget::Any))
        || request
            .included
            .iter()
            .any(|t| !readable(&ResourceTarget::Type((*t).to_string())))
}

/// A search over several types (`[base]?_type=…`, `Patient/p1/*`, POST `[base]/_search`) by a
/// token without a wildcard: with `_type` each named type must be covered; without it the
/// server has to limit the result to the types the token may read (unverified), unless the
/// token may search no type at all.
fn all_types_fit(
    scopes: &ScopeSet,
    request: &FhirRequest<'_>,
    needed: Context,
    query: Option<&str>,
    requirement: Requirement,
    coverage: Coverage,
) -> ScopeFit {
    if request.types.is_empty() {
        let any_type = scopes
            .resources()
            .iter()
            .any(|s| s.context >= needed && s.perms.contains(requirement.perms));
        return if any_type {
            ScopeFit::Unverified {
                reason: Unverified::AllTypes,
                requirement,
            }
        } else {
            ScopeFit::NotCovered {
                needed,
                requirement,
                coverage,
            }
        };
    }
    let mut constrained = false;
    for t in &request.types {
        let target = ResourceTarget::Type((*t).to_string());
        let c = scopes.coverage_for_query(needed, &target, requirement.perms, query);
        if !c.is_covered() {
            return ScopeFit::NotCovered {
                needed,
                requirement: Requirement {
                    resource: target,
                    perms: requirement.perms,
                },
                coverage: c,
            };
        }
        constrained |= c.constrained;
    }
    if constrained {
        return ScopeFit::Unverified {
            reason: Unverified::ConstrainedScope,
            requirement,
        };
    }
    ScopeFit::Covered(coverage)
}

/// Bulk Data kick-off: "the server SHALL limit the data returned to only those FHIR resources
/// for which the client is authorized", so any population-level read scope covers it; `_type`
/// naming unreadable types is unverified; no read scope beyond the patient context is a gap.
fn export_fit(scopes: &ScopeSet, request: &FhirRequest<'_>, requirement: Requirement) -> ScopeFit {
    let population_read = scopes
        .resources()
        .iter()
        .any(|s| s.context >= Context::User && s.perms.intersects(Perms::V1_READ));
    if !population_read {
        let coverage = scopes.coverage_for(Context::User, &requirement.resource, requirement.perms);
        return ScopeFit::NotCovered {
            needed: Context::User,
            requirement,
            coverage,
        };
    }
    let readable = |t: &&str| {
        let target = ResourceTarget::Type((*t).to_string());
        scopes
            .coverage_for(Context::User, &target, Perms::V1_READ)
            .missing
            != Perms::V1_READ
    };
    if !request.types.iter().all(readable) {
        return ScopeFit::Unverified {
            reason: Unverified::ExportType,
            requirement,
        };
    }
    ScopeFit::Covered(scopes.coverage_for(Context::User, &ResourceTarget::Any, Perms::NONE))
}

fn launch_fit(
    request: &FhirRequest<'_>,
    token: Option<&TokenInfo>,
    logged_patient: Option<&str>,
) -> LaunchFit {
    // The log's own word on whose data was served (BALP patient entity, a gateway claim)
    // settles what the URL cannot (an instance read by id, a search the server should have
    // restricted to the launch patient) — for a Binary too, which is outside the compartment
    // but holds a patient's document when the log says so (`Binary.securityContext`).
    let launch_patient = token.and_then(|t| t.patient.as_deref());
    let not_patient_data = matches!(request.patient, PatientScope::NotPatientData);
    if not_patient_data && request.resource_type != Some("Binary") {
        return LaunchFit::NotPatientData;
    }
    if let (Some(launch), Some(logged)) = (launch_patient, logged_patient) {
        if launch != logged && !request.is_bulk_export() {
            return LaunchFit::OtherPatient;
        }
    }
    if not_patient_data {
        return LaunchFit::NotPatientData;
    }
    // R4 Patient-everything without an id: "all patients" only when the context is not
    // associated with a single patient record; a patient launch is.
    let type_everything = request.is_operation("$everything") && request.resource_id.is_none();
    if type_everything && token.is_some_and(|t| t.patient.is_some() || brings_patient(t)) {
        return LaunchFit::InLaunchPatient;
    }
    let Some(launch_patient) = token.and_then(|t| t.patient.as_deref()) else {
        return match token {
            Some(t) if brings_patient(t) => {
                unrecorded_launch_fit(request, t.first_patient.as_deref(), logged_patient)
            }
            _ => LaunchFit::NoLaunchPatient,
        };
    };
    match &request.patient {
        PatientScope::AllPatients => LaunchFit::AllPatients,
        PatientScope::Patient(id) if id.as_ref() != launch_patient => LaunchFit::OtherPatient,
        PatientScope::Patients(ids) if ids.iter().any(|id| id.as_ref() != launch_patient) => {
            LaunchFit::OtherPatient
        }
        _ => LaunchFit::InLaunchPatient,
    }
}

/// A patient launch whose source did not record the patient (Keycloak): the first patient
/// its requests named stands for the launch patient, so a token walking through patients is
/// seen from its second patient on; until then one patient gets the benefit of the doubt.
fn unrecorded_launch_fit(
    request: &FhirRequest<'_>,
    first: Option<&str>,
    logged: Option<&str>,
) -> LaunchFit {
    let named = request.patient_ids();
    let differs = |p: &str| first.is_some_and(|f| f != p);
    match &request.patient {
        PatientScope::AllPatients => LaunchFit::AllPatients,
        _ if named.iter().any(|id| *id != named[0]) => LaunchFit::OtherPatient,
        _ if named.iter().copied().chain(logged).any(differs) => LaunchFit::OtherPatient,
        _ => LaunchFit::UnrecordedLaunchPatient,
    }
}

/// The patient an access of an unrecorded patient launch names first (URL or log), to be
/// remembered as the token's launch patient: (token id, patient).
pub fn first_patient_of(explained: &Explained<'_>, access: &AccessEvent) -> Option<(Text, Text)> {
    let token = explained.token?;
    if explained.launch != LaunchFit::UnrecordedLaunchPatient || token.first_patient.is_some() {
        return None;
    }
    let patient = match explained.request.patient_ids().as_slice() {
        [one] => Text::from(*one),
        _ => access.patient.clone()?,
    };
    Some((token.token_id.clone(), patient))
}

/// Whether the scopes ask for a patient launch context (`launch/patient`, or `launch` in an
/// EHR launch, which brings the patient in context).
pub fn launches_patient(scopes: &ScopeSet) -> bool {
    scopes.others().any(|s| {
        matches!(s, Scope::Launch { context, .. }
            if context.as_deref().is_none_or(|c| c.eq_ignore_ascii_case("patient")))
    })
}

/// Whether a token has a patient in context: its scopes ask for one, or a user-facing grant
/// holds only `patient/` resource scopes. SMART App Launch 2.x, "Scopes and Launch Context":
/// with patient-level scopes the server SHALL establish a patient in context, and MAY infer
/// `launch/patient` when the app did not ask for it. A backend's `client_credentials` grant has
/// no launch: its `patient/` scopes bring no patient.
pub fn brings_patient(token: &TokenInfo) -> bool {
    launches_patient(&token.scopes)
        || (token.scopes.max_context() == Some(Context::Patient)
            && token.grant_type.as_deref() != Some("client_credentials"))
}

/// A token that reaches one patient only: a patient launch and no `user/` or `system/` scope.
/// A clinician's `launch` + `user/` token may open many charts; a patient token may not.
pub fn is_patient_bound(token: &TokenInfo) -> bool {
    (token.patient.is_some() || brings_patient(token))
        && token.scopes.max_context() == Some(Context::Patient)
}

/// The scope context a request needs: inside the launch patient a `patient/` scope suffices;
/// anything beyond it needs `user/` (or `system/`, which covers `user/`).
pub fn needed_context(launch: LaunchFit) -> Context {
    match launch {
        LaunchFit::InLaunchPatient
        | LaunchFit::NotPatientData
        | LaunchFit::UnrecordedLaunchPatient => Context::Patient,
        LaunchFit::OtherPatient | LaunchFit::AllPatients | LaunchFit::NoLaunchPatient => {
            Context::User
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::tokens::TokenCacheConfig;
    use crate::event::{parse_event_str, Event};

    fn cache(tokens: &[&str]) -> TokenCache {
        let mut c = TokenCache::new(TokenCacheConfig::default());
        for line in tokens {
            if let Event::Token(t) = parse_event_str(line).unwrap() {
                c.apply(&t);
            }
        }
        c
    }

    fn access(token: &str, method: &str, url: &str, status: u16, at: &str) -> AccessEvent {
        match parse_event_str(&format!(
            r#"{{"type":"access","time":"{at}","client_id":"app","method":"{method}","url":"{url}","status":{status},"token_id":"{token}"}}"#
        ))
        .unwrap()
        {
            Event::Access(a) => a,
            Event::Token(_) => panic!("not access"),
        }
    }

    const PATIENT_TOKEN: &str = r#"{"type":"token","event":"issued","time":"2024-03-01T12:00:00Z","client_id":"app","token_id":"pt","scope_granted":"launch/patient patient/Observation.read patient/Patient.read","patient":"p1","expires_in":3600}"#;
    const SYSTEM_TOKEN: &str = r#"{"type":"token","event":"issued","time":"2024-03-01T12:00:00Z","client_id":"app","token_id":"st","scope_granted":"system/*.rs","expires_in":300}"#;
    const T: &str = "2024-03-01T12:01:00Z";

    #[test]
    fn access_inside_scopes_and_launch_patient_is_explained() {
        let c = cache(&[PATIENT_TOKEN]);
        let cl = Classifier::new();
        for url in [
            "Observation?patient=p1",
            "Observation?code=x",
            "Patient/p1",
            "Observation/o9",
        ] {
            let a = access("pt", "GET", url, 200, T);
            let e = explain(&a, &c, &cl, ExplainContext::default());
            assert!(e.is_explained(), "{url}: {:?} {:?}", e.launch, e.scopes);
            assert!(!e.is_enforcement_gap());
        }
    }

    #[test]
    fn served_access_outside_the_scopes_is_an_enforcement_gap() {
        let c = cache(&[PATIENT_TOKEN]);
        let cl = Classifier::new();
        let a = access("pt", "GET", "Condition?patient=p1", 200, T);
        let e = explain(&a, &c, &cl, ExplainContext::default());
        assert!(e.is_enforcement_gap());
        let ScopeFit::NotCovered {
            needed, coverage, ..
        } = &e.scopes
        else {
            panic!("{:?}", e.scopes)
        };
        assert_eq!(*needed, Context::Patient);
        assert_eq!(coverage.missing.letters(), "s");
        // The same request refused by the server is not a gap.
        let a = access("pt", "GET", "Condition?patient=p1", 403, T);
        assert!(!explain(&a, &c, &cl, ExplainContext::default()).is_enforcement_gap());
        // A write with a read-only token.
        let a = access("pt", "PUT", "Observation/o1", 200, T);
        assert!(explain(&a, &c, &cl, ExplainContext::default()).is_enforcement_gap());
    }

    #[test]
    fn another_patient_needs_user_context() {
        let c = cache(&[PATIENT_TOKEN]);
        let cl = Classifier::new();
        let a = access("pt", "GET", "Observation?patient=p2", 200, T);
        let e = explain(&a, &c, &cl, ExplainContext::default());
        assert_eq!(e.launch, LaunchFit::OtherPatient);
        assert!(e.is_enforcement_gap());
        assert!(!e.is_explained());
        let a = access("pt", "GET", "Patient/$export", 200, T);
        assert_eq!(
            explain(&a, &c, &cl, ExplainContext::default()).launch,
            LaunchFit::AllPatients
        );
        // R4 Patient-everything: a patient launch is "associated with a single patient record".
        let a = access("pt", "GET", "Patient/$everything", 200, T);
        assert_eq!(
            explain(&a, &c, &cl, ExplainContext::default()).launch,
            LaunchFit::InLaunchPatient
        );
    }

    /// Keycloak-style grant: launch/patient scopes, but the event does not say which patient.
    const UNRECORDED_TOKEN: &str = r#"{"type":"token","event":"issued","time":"2024-03-01T12:00:00Z","client_id":"app","token_id":"kt","scope_granted":"launch/patient patient/Observation.rs","expires_in":3600}"#;

    #[test]
    fn an_unrecorded_launch_patient_gets_the_benefit_of_the_doubt_for_one_patient_only() {
        let cl = Classifier::new();
        // (launch fit, explained, enforcement gap) of a served GET.
        let judge = |c: &TokenCache, url: &str| {
            let a = access("kt", "GET", url, 200, T);
            let e = explain(&a, c, &cl, ExplainContext::default());
            (e.launch, e.is_explained(), e.is_enforcement_gap())
        };
        let c = cache(&[UNRECORDED_TOKEN]);
        for url in [
            "Observation?patient=p7",
            "Observation/o1",
            "Observation?code=x",
        ] {
            assert_eq!(
                judge(&c, url),
                (LaunchFit::UnrecordedLaunchPatient, true, false),
                "{url}"
            );
        }
        // Two patients cannot both be the launch patient; all patients never are.
        assert_eq!(
            judge(&c, "Observation?patient=p7,p8"),
            (LaunchFit::OtherPatient, false, true)
        );
        assert_eq!(judge(&c, "Patient/$export").0, LaunchFit::AllPatients);
        // Scopes still count: a resource type outside them is a gap.
        assert!(judge(&c, "Condition?patient=p7").2);
        // SMART 2.x: patient-level scopes alone still bring a patient in context (the server
        // "MAY infer launch/patient"): the same benefit of the doubt, the same second patient.
        let c = cache(&[&UNRECORDED_TOKEN.replace("launch/patient ", "")]);
        assert_eq!(
            judge(&c, "Observation?patient=p7"),
            (LaunchFit::UnrecordedLaunchPatient, true, false)
        );
        assert!(judge(&c, "Observation?patient=p7,p8").2);
        // A backend's client_credentials grant has no launch: no patient in context.
        let c = cache(&[&UNRECORDED_TOKEN.replace(
            r#""scope_granted":"launch/patient "#,
            r#""grant_type":"client_credentials","scope_granted":""#,
        )]);
        assert_eq!(
            judge(&c, "Observation?code=x"),
            (LaunchFit::NoLaunchPatient, false, true)
        );
        // With user/ scopes beside them and no launch scope, no patient is in context.
        let c = cache(&[&UNRECORDED_TOKEN.replace("launch/patient ", "user/Patient.rs ")]);
        assert_eq!(
            judge(&c, "Observation?patient=p7"),
            (LaunchFit::NoLaunchPatient, false, true)
        );
    }

    #[test]
    fn an_access_without_a_token_id_joins_the_apps_sole_live_token() {
        let cl = Classifier::new();
        let no_token = |url: &str, at: &str| {
            match parse_event_str(&format!(
            r#"{{"type":"access","time":"{at}","client_id":"app","method":"GET","url":"{url}","status":200}}"#
        ))
        .unwrap()
        {
            Event::Access(a) => a,
            Event::Token(_) => panic!("not access"),
        }
        };
        let c = cache(&[SYSTEM_TOKEN]);
        let a = no_token("Condition?code=x", T);
        let e = explain(&a, &c, &cl, ExplainContext::default());
        assert_eq!(e.token.map(|t| t.token_id.as_str()), Some("st"));
        assert!(e.is_explained());
        // Expired (the system token lives 300 s): no guess, and no expired-token finding.
        let a = no_token("Condition?code=x", "2024-03-01T12:06:00Z");
        let e = explain(&a, &c, &cl, ExplainContext::default());
        assert!(e.token.is_none());
        assert_eq!(e.scopes, ScopeFit::UnknownToken);
        // Two live tokens: which one was used is unknown.
        let c = cache(&[SYSTEM_TOKEN, &SYSTEM_TOKEN.replace(r#""st""#, r#""st2""#)]);
        let a = no_token("Condition?code=x", T);
        assert!(explain(&a, &c, &cl, ExplainContext::default())
            .token
            .is_none());
    }

    #[test]
    fn backend_token_covers_population_and_export() {
        let c = cache(&[SYSTEM_TOKEN]);
        let cl = Classifier::new();
        for url in ["Patient/$export", "Observation?code=x"] {
            let a = access("st", "GET", url, 200, "2024-03-01T12:01:00Z");
            let e = explain(&a, &c, &cl, ExplainContext::default());
            assert!(e.is_explained(), "{url}: {:?}", e.scopes);
        }
        // Bulk Data status and files belong to the export the client started.
        let exporting = ExplainContext {
            export_in_progress: true,
        };
        for url in [
            "$export-poll-status?_jobId=1",
            "bulkfiles/1.Patient.ndjson",
            "https://files.example.org/out/1/Patient.ndjson",
            "Binary/out-1",
        ] {
            let a = access("st", "GET", url, 200, "2024-03-01T12:01:00Z");
            let e = explain(&a, &c, &cl, exporting);
            assert_eq!(e.verdict(), Verdict::Explained, "{url}: {:?}", e.scopes);
            if url != "Binary/out-1" {
                let e = explain(&a, &c, &cl, ExplainContext::default());
                assert_eq!(
                    e.verdict(),
                    Verdict::Unexplained,
                    "{url}: no export behind it"
                );
            }
        }
        let a = access("st", "POST", "Observation", 201, "2024-03-01T12:01:00Z");
        assert!(explain(&a, &c, &cl, ExplainContext::default()).is_enforcement_gap());
        // After expiry the access is no longer explained even though the scopes fit.
        let a = access(
            "st",
            "GET",
            "Observation?code=x",
            200,
            "2024-03-01T12:06:00Z",
        );
        let e = explain(&a, &c, &cl, ExplainContext::default());
        assert!(e.token_expired && !e.is_explained());
    }

    /// SMART patient-specific scopes: the server restricts a patient-context search to the
    /// launch patient, so only a `user/`/`system/` scope makes it population-level.
    #[test]
    fn a_search_without_a_patient_reaches_the_population_only_beyond_patient_scopes() {
        let cl = Classifier::new();
        let mixed = PATIENT_TOKEN.replace("patient/Observation.read", "user/Observation.rs");
        let judge = |token: &str, url: &str| {
            let c = cache(&[token]);
            let id = if token.contains(r#""st""#) {
                "st"
            } else {
                "pt"
            };
            let a = access(id, "GET", url, 200, T);
            explain(&a, &c, &cl, ExplainContext::default()).reaches_population()
        };
        assert!(!judge(PATIENT_TOKEN, "Observation?code=x"));
        assert!(!judge(PATIENT_TOKEN, "Observation?patient:missing=false"));
        assert!(judge(SYSTEM_TOKEN, "Observation?code=x"));
        assert!(
            judge(&mixed, "Observation?code=x"),
            "user/Observation.rs reaches further"
        );
        assert!(
            !judge(&mixed, "Patient?name=smith"),
            "patient/Patient.read does not"
        );
    }

    #[test]
    fn unknown_tokens_and_other_apps_tokens_are_not_trusted() {
        let c = cache(&[SYSTEM_TOKEN]);
        let cl = Classifier::new();
        let a = access("nope", "GET", "Observation?code=x", 200, T);
        assert_eq!(
            explain(&a, &c, &cl, ExplainContext::default()).scopes,
            ScopeFit::UnknownToken
        );
        let mut other = access("st", "GET", "Observation?code=x", 200, T);
        other.common.client_id = "other-app".into();
        assert_eq!(
            explain(&other, &c, &cl, ExplainContext::default()).scopes,
            ScopeFit::UnknownToken
        );
        let a = access("nope", "GET", "metadata", 200, T);
        assert_eq!(
            explain(&a, &c, &cl, ExplainContext::default()).scopes,
            ScopeFit::NoRequirement
        );
    }
}
