//! Explain before you score: what an access did, relative to the token it used. An access that
//! its token's scopes and launch patient account for is explained; what is left over (outside
//! the scopes, outside the launch context) is what the rules weigh.

use crate::event::AccessEvent;
use crate::smart::request::{Classifier, FhirRequest, PatientScope, Requirement};
use crate::smart::scope::{Context, Coverage, Scope, ScopeSet};

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
    /// The request needs no SMART permission (capabilities, discovery, status polling) or is
    /// judged per entry (batch/transaction) or server-defined (unknown operation).
    NoRequirement,
    /// The access names no token, or a token the cache does not know (never issued in the
    /// input, or evicted): its scopes cannot be checked.
    UnknownToken,
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
    /// The response was a success (2xx): the data was actually served.
    pub served: bool,
}

impl Explained<'_> {
    /// Served although the token's scopes do not allow it: the server (or a gateway that
    /// flattened scopes) did not enforce them.
    pub fn is_enforcement_gap(&self) -> bool {
        self.served && matches!(self.scopes, ScopeFit::NotCovered { .. })
    }

    /// Fully accounted for by the token: covered scopes and inside the launch context.
    pub fn is_explained(&self) -> bool {
        matches!(self.scopes, ScopeFit::Covered(_) | ScopeFit::NoRequirement)
            && !matches!(self.launch, LaunchFit::OtherPatient)
            && !self.token_expired
    }
}

/// Classifies an access and checks it against its token.
pub fn explain<'a>(
    access: &'a AccessEvent,
    tokens: &'a TokenCache,
    classifier: &Classifier,
) -> Explained<'a> {
    let request = classifier.classify(access.method, &access.url);
    let token = match access.token_id.as_deref() {
        Some(id) => tokens
            .get(id)
            .filter(|t| t.client_id == access.common.client_id),
        // Joined by client id: only an unambiguous, unexpired sole token of the app.
        None => tokens.sole_live_token(&access.common.client_id, access.common.time),
    };
    let launch = launch_fit(&request, token);
    let scopes = match (token, request.requirement()) {
        (_, None) => ScopeFit::NoRequirement,
        (None, Some(_)) => ScopeFit::UnknownToken,
        (Some(t), Some(requirement)) => {
            let needed = needed_context(launch);
            let coverage = t
                .scopes
                .coverage_for(needed, &requirement.resource, requirement.perms);
            if coverage.is_covered() {
                ScopeFit::Covered(coverage)
            } else {
                ScopeFit::NotCovered {
                    needed,
                    requirement,
                    coverage,
                }
            }
        }
    };
    Explained {
        token_expired: token.is_some_and(|t| t.is_expired_at(access.common.time)),
        served: (200..300).contains(&access.status),
        request,
        token,
        launch,
        scopes,
    }
}

fn launch_fit(request: &FhirRequest<'_>, token: Option<&TokenInfo>) -> LaunchFit {
    if matches!(request.patient, PatientScope::NotPatientData) {
        return LaunchFit::NotPatientData;
    }
    let Some(launch_patient) = token.and_then(|t| t.patient.as_deref()) else {
        if token.is_some_and(|t| launches_patient(&t.scopes)) {
            return match &request.patient {
                PatientScope::AllPatients => LaunchFit::AllPatients,
                PatientScope::Patients(ids) if ids.iter().any(|id| *id != ids[0]) => {
                    LaunchFit::OtherPatient
                }
                _ => LaunchFit::UnrecordedLaunchPatient,
            };
        }
        return LaunchFit::NoLaunchPatient;
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

/// Whether the scopes ask for a patient launch context (`launch/patient`, or `launch` in an
/// EHR launch, which brings the patient in context).
pub fn launches_patient(scopes: &ScopeSet) -> bool {
    scopes.others().any(|s| {
        matches!(s, Scope::Launch { context, .. }
            if context.as_deref().is_none_or(|c| c.eq_ignore_ascii_case("patient")))
    })
}

/// The scope context a request needs: inside the launch patient a `patient/` scope suffices;
/// anything beyond it needs `user/` (or `system/`, which covers `user/`).
fn needed_context(launch: LaunchFit) -> Context {
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
            let e = explain(&a, &c, &cl);
            assert!(e.is_explained(), "{url}: {:?} {:?}", e.launch, e.scopes);
            assert!(!e.is_enforcement_gap());
        }
    }

    #[test]
    fn served_access_outside_the_scopes_is_an_enforcement_gap() {
        let c = cache(&[PATIENT_TOKEN]);
        let cl = Classifier::new();
        let a = access("pt", "GET", "Condition?patient=p1", 200, T);
        let e = explain(&a, &c, &cl);
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
        assert!(!explain(&a, &c, &cl).is_enforcement_gap());
        // A write with a read-only token.
        let a = access("pt", "PUT", "Observation/o1", 200, T);
        assert!(explain(&a, &c, &cl).is_enforcement_gap());
    }

    #[test]
    fn another_patient_needs_user_context() {
        let c = cache(&[PATIENT_TOKEN]);
        let cl = Classifier::new();
        let a = access("pt", "GET", "Observation?patient=p2", 200, T);
        let e = explain(&a, &c, &cl);
        assert_eq!(e.launch, LaunchFit::OtherPatient);
        assert!(e.is_enforcement_gap());
        assert!(!e.is_explained());
        let a = access("pt", "GET", "Patient/$everything", 200, T);
        assert_eq!(explain(&a, &c, &cl).launch, LaunchFit::AllPatients);
    }

    /// Keycloak-style grant: launch/patient scopes, but the event does not say which patient.
    const UNRECORDED_TOKEN: &str = r#"{"type":"token","event":"issued","time":"2024-03-01T12:00:00Z","client_id":"app","token_id":"kt","scope_granted":"launch/patient patient/Observation.rs","expires_in":3600}"#;

    #[test]
    fn an_unrecorded_launch_patient_gets_the_benefit_of_the_doubt_for_one_patient_only() {
        let cl = Classifier::new();
        // (launch fit, explained, enforcement gap) of a served GET.
        let judge = |c: &TokenCache, url: &str| {
            let a = access("kt", "GET", url, 200, T);
            let e = explain(&a, c, &cl);
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
        assert_eq!(judge(&c, "Patient/$everything").0, LaunchFit::AllPatients);
        // Scopes still count: a resource type outside them is a gap.
        assert!(judge(&c, "Condition?patient=p7").2);
        // Without a launch scope, a missing patient means no patient context at all.
        let c = cache(&[&UNRECORDED_TOKEN.replace("launch/patient ", "")]);
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
        let e = explain(&a, &c, &cl);
        assert_eq!(e.token.map(|t| t.token_id.as_str()), Some("st"));
        assert!(e.is_explained());
        // Expired (the system token lives 300 s): no guess, and no expired-token finding.
        let a = no_token("Condition?code=x", "2024-03-01T12:06:00Z");
        let e = explain(&a, &c, &cl);
        assert!(e.token.is_none());
        assert_eq!(e.scopes, ScopeFit::UnknownToken);
        // Two live tokens: which one was used is unknown.
        let c = cache(&[SYSTEM_TOKEN, &SYSTEM_TOKEN.replace(r#""st""#, r#""st2""#)]);
        let a = no_token("Condition?code=x", T);
        assert!(explain(&a, &c, &cl).token.is_none());
    }

    #[test]
    fn backend_token_covers_population_and_export() {
        let c = cache(&[SYSTEM_TOKEN]);
        let cl = Classifier::new();
        for url in [
            "Patient/$export",
            "Observation?code=x",
            "$export-poll-status?_jobId=1",
        ] {
            let a = access("st", "GET", url, 200, "2024-03-01T12:01:00Z");
            let e = explain(&a, &c, &cl);
            assert!(e.is_explained(), "{url}: {:?}", e.scopes);
        }
        let a = access("st", "POST", "Observation", 201, "2024-03-01T12:01:00Z");
        assert!(explain(&a, &c, &cl).is_enforcement_gap());
        // After expiry the access is no longer explained even though the scopes fit.
        let a = access(
            "st",
            "GET",
            "Observation?code=x",
            200,
            "2024-03-01T12:06:00Z",
        );
        let e = explain(&a, &c, &cl);
        assert!(e.token_expired && !e.is_explained());
    }

    #[test]
    fn unknown_tokens_and_other_apps_tokens_are_not_trusted() {
        let c = cache(&[SYSTEM_TOKEN]);
        let cl = Classifier::new();
        let a = access("nope", "GET", "Observation?code=x", 200, T);
        assert_eq!(explain(&a, &c, &cl).scopes, ScopeFit::UnknownToken);
        let mut other = access("st", "GET", "Observation?code=x", 200, T);
        other.common.client_id = "other-app".into();
        assert_eq!(explain(&other, &c, &cl).scopes, ScopeFit::UnknownToken);
        let a = access("nope", "GET", "metadata", 200, T);
        assert_eq!(explain(&a, &c, &cl).scopes, ScopeFit::NoRequirement);
    }
}
