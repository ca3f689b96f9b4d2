//! The recommendation per app: which granted scopes were used, which were not, which wildcards
//! a short explicit list replaces, and the scope string that would have served every request
//! the grants allowed.

use serde::Serialize;

use super::ledger::{AppUsage, UsageLedger};
use crate::smart::scope::{Scope, ScopeSet};

/// Whether a granted scope was needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Usage {
    Used,
    Unused,
    /// Identity and custom scopes: an access log cannot show whether the app needed them, so
    /// they are kept.
    NotObservable,
}

impl Usage {
    pub fn as_str(self) -> &'static str {
        match self {
            Usage::Used => "used",
            Usage::Unused => "unused",
            Usage::NotObservable => "not-observable",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GrantedScopeUse {
    pub scope: String,
    /// Grants (tokens issued or refreshed) in the window that carried it (0: only seen on
    /// accesses of tokens granted before the window).
    pub grants: u64,
    /// Served requests it allowed.
    pub requests: u64,
    pub usage: Usage,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WildcardReplacement {
    pub scope: String,
    pub replace_with: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BeyondGrant {
    /// `context/Type.letters` the token lacked.
    pub permission: String,
    pub requests: u64,
}

/// The least-privilege view of one app.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AppAdvice {
    pub client_id: String,
    /// Tokens issued or refreshed with a recorded scope.
    pub grants: u64,
    pub refreshes: u64,
    pub served_requests: u64,
    /// Served requests the log cannot tie to a permission (unknown token, batch, unknown
    /// operation, revoked token): not reflected in the recommendation.
    pub unassessed_requests: u64,
    /// What to look at first: unneeded wildcards and `offline_access`, then service beyond
    /// the grant.
    pub callouts: Vec<String>,
    pub granted: Vec<GrantedScopeUse>,
    pub unused: Vec<String>,
    pub wildcards: Vec<WildcardReplacement>,
    /// Served although the grant did not allow it (enforcement gaps): never recommended.
    pub beyond_grant: Vec<BeyondGrant>,
    /// The narrowest SMART v2 scope string that serves every request the grants allowed.
    pub recommended: String,
}

impl UsageLedger {
    /// One recommendation per app seen, ordered by client id.
    pub fn advice(&self) -> Vec<AppAdvice> {
        self.apps
            .iter()
            .map(|(client, usage)| advise(client, usage))
            .collect()
    }
}

fn advise(client_id: &str, app: &AppUsage) -> AppAdvice {
    let granted: Vec<GrantedScopeUse> = app
        .granted
        .iter()
        .map(|(scope, g)| GrantedScopeUse {
            scope: scope.clone(),
            grants: g.grants,
            requests: g.requests,
            usage: usage_of(scope, g.requests, app),
        })
        .collect();
    let unused: Vec<String> = granted
        .iter()
        .filter(|g| g.usage == Usage::Unused)
        .map(|g| g.scope.clone())
        .collect();
    let wildcards = wildcard_replacements(app);
    let beyond_grant: Vec<BeyondGrant> = app
        .beyond
        .iter()
        .map(|(permission, &requests)| BeyondGrant {
            permission: permission.clone(),
            requests,
        })
        .collect();
    let callouts = callouts(&granted, &wildcards, &beyond_grant, app.unassessed);
    AppAdvice {
        client_id: client_id.to_string(),
        grants: app.grants,
        refreshes: app.refreshes,
        served_requests: app.served,
        unassessed_requests: app.unassessed,
        recommended: recommended(&granted, app),
        callouts,
        granted,
        unused,
        wildcards,
        beyond_grant,
    }
}

/// Resource scopes are used when they allowed a served request; refresh scopes when a token
/// was refreshed; `launch/patient` when a token came with (or stayed inside) a launch patient,
/// or when a `patient/` scope is kept (it needs the patient context). `launch` (SMART 2.x: the
/// permission to obtain an EHR launch context) and other launch contexts leave no trace in an
/// access log.
fn usage_of(scope: &str, requests: u64, app: &AppUsage) -> Usage {
    let used = |yes: bool| if yes { Usage::Used } else { Usage::Unused };
    let patient_scope_kept = || {
        app.exercised
            .values()
            .any(|s| s.context == crate::smart::scope::Context::Patient)
    };
    match Scope::parse(scope.trim_start_matches('!')) {
        _ if scope.starts_with('!') => Usage::Unused,
        Scope::Resource(_) => used(requests > 0),
        Scope::OfflineAccess | Scope::OnlineAccess => used(app.refreshes > 0),
        Scope::Launch {
            context: Some(c), ..
        } if c.eq_ignore_ascii_case("patient") => used(app.launch_used || patient_scope_kept()),
        Scope::Launch { .. }
        | Scope::OpenId
        | Scope::FhirUser
        | Scope::Profile
        | Scope::Custom(_) => Usage::NotObservable,
        Scope::Invalid { .. } => Usage::Unused,
    }
}

/// A wildcard that served only some types: the explicit scopes that served them instead.
fn wildcard_replacements(app: &AppUsage) -> Vec<WildcardReplacement> {
    app.granted
        .iter()
        .filter(|(scope, g)| Scope::parse(scope).is_wildcard() && g.requests > 0)
        .filter_map(|(scope, g)| {
            let served: Vec<String> = g.served.iter().cloned().collect();
            let replace_with = ScopeSet::from_tokens(&served).normalized();
            // A request over all types needed the wildcard itself: nothing narrower to offer.
            let needs_wildcard = replace_with.iter().any(|s| Scope::parse(s).is_wildcard());
            (!needs_wildcard).then(|| WildcardReplacement {
                scope: scope.clone(),
                replace_with,
            })
        })
        .collect()
}

fn callouts(
    granted: &[GrantedScopeUse],
    wildcards: &[WildcardReplacement],
    beyond: &[BeyondGrant],
    unassessed: u64,
) -> Vec<String> {
    let mut out = Vec::new();
    for g in granted.iter().filter(|g| g.usage == Usage::Unused) {
        if Scope::parse(&g.scope).is_wildcard() {
            out.push(format!(
                "wildcard {} granted {} time(s) and never needed",
                g.scope, g.grants
            ));
        }
    }
    for g in granted.iter().filter(|g| g.usage == Usage::Unused) {
        if matches!(Scope::parse(&g.scope), Scope::OfflineAccess) {
            out.push(format!(
                "offline_access granted {} time(s) and no token was refreshed",
                g.grants
            ));
        }
    }
    if unassessed > 0 {
        out.push(format!(
            "{unassessed} served request(s) could not be tied to a permission (unknown token, batch/transaction, unknown operation, revoked token): a scope marked unused may have served them"
        ));
    }
    for w in wildcards {
        out.push(format!(
            "wildcard {} served only: {}",
            w.scope,
            w.replace_with.join(" ")
        ));
    }
    let beyond_total: u64 = beyond.iter().map(|b| b.requests).sum();
    if beyond_total > 0 {
        out.push(format!(
            "{beyond_total} request(s) served beyond the grant (see the enforcement_gap alerts); not recommended"
        ));
    }
    out
}

/// Every exercised permission, plus the non-resource scopes that were used or cannot be
/// judged from an access log, folded and spelled as SMART v2.
fn recommended(granted: &[GrantedScopeUse], app: &AppUsage) -> String {
    let resources = app.exercised.values().cloned().map(Scope::Resource);
    let others = granted
        .iter()
        .filter(|g| g.usage != Usage::Unused)
        .map(|g| Scope::parse(&g.scope))
        .filter(|s| s.as_resource().is_none() && s.is_valid());
    ScopeSet::from_scopes(resources.chain(others)).normalized_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Timestamp;
    use crate::least_privilege::ServedAccess;
    use crate::smart::request::{Classifier, Method};

    fn get<'a>(client: &'a str, url: &'a str, granted: &'a str) -> ServedAccess<'a> {
        ServedAccess {
            time: Timestamp(0),
            client_id: client,
            token_id: Some("t1"),
            method: Method::Get,
            url,
            status: 200,
            granted: Some(granted),
            token_patient: None,
            patient: None,
            patient_count: None,
            count: 1,
        }
    }

    fn advise_one(grant: &str, urls: &[&str]) -> AppAdvice {
        let mut ledger = UsageLedger::new(Classifier::new());
        ledger.grant("app", Some(grant), false, false);
        for url in urls {
            ledger.access(&get("app", url, grant));
        }
        ledger.advice().remove(0)
    }

    #[test]
    fn a_wildcard_is_replaced_by_the_types_and_letters_served() {
        // SMART App Launch 2.x, Scopes and Launch Context: `user/*.cruds` grants every type;
        // reads and searches of two types need only `user/Observation.rs user/Patient.r`.
        let a = advise_one(
            "openid fhirUser user/*.cruds offline_access",
            &["Observation?patient=p1", "Observation/o1", "Patient/p1"],
        );
        assert_eq!(
            a.recommended,
            "user/Observation.rs user/Patient.r fhirUser openid"
        );
        assert_eq!(a.wildcards.len(), 1);
        assert_eq!(a.wildcards[0].scope, "user/*.cruds");
        assert_eq!(a.unused, vec!["offline_access".to_string()]);
        assert!(a.callouts[0].starts_with("offline_access granted 1 time(s)"));
        assert!(a.callouts[1].starts_with("wildcard user/*.cruds served only"));
    }

    #[test]
    fn unused_scopes_and_an_unused_wildcard_are_called_out_first() {
        let a = advise_one(
            "launch/patient patient/Observation.rs patient/*.r",
            &["Observation?category=vital-signs"],
        );
        // The launch was used: the search stayed inside the (unrecorded) launch patient.
        assert_eq!(a.unused, vec!["patient/*.r"]);
        assert!(a.callouts[0].starts_with("wildcard patient/*.r granted 1 time(s)"));
        assert_eq!(a.recommended, "patient/Observation.s launch/patient");
    }

    #[test]
    fn an_enforcement_gap_is_listed_and_never_recommended() {
        // A read the grant does not allow (SMART: the token lacks `Condition`), served anyway.
        let a = advise_one("user/Observation.rs", &["Condition/c1", "Observation/o1"]);
        assert_eq!(a.recommended, "user/Observation.r");
        assert_eq!(
            a.beyond_grant,
            vec![BeyondGrant {
                permission: "user/Condition.r".into(),
                requests: 1
            }]
        );
    }

    #[test]
    fn a_granular_scope_that_served_a_request_is_kept_with_its_constraint() {
        // SMART 2.x "Finer-grained resource constraints using search parameters".
        let grant = "user/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory";
        let a = advise_one(
            grant,
            &["Observation?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"],
        );
        assert_eq!(
            a.recommended,
            "user/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
        );
    }

    #[test]
    fn a_bulk_export_with_type_keeps_read_on_the_named_types_only() {
        // Bulk Data Access IG, kick-off `_type`: the output is limited to the listed types.
        let a = advise_one(
            "system/Patient.rs system/Observation.rs system/Condition.rs",
            &[
                "Group/g1/$export?_type=Patient,Observation",
                "$export-poll-status?_jobId=1",
            ],
        );
        assert_eq!(a.recommended, "system/Observation.rs system/Patient.rs");
        assert_eq!(a.unused, vec!["system/Condition.rs"]);
    }

    #[test]
    fn refresh_and_launch_make_their_scopes_used() {
        let mut ledger = UsageLedger::new(Classifier::new());
        let grant = "launch/patient offline_access patient/Observation.rs";
        ledger.grant("app", Some(grant), false, true);
        ledger.grant("app", None, true, true);
        ledger.access(&ServedAccess {
            token_patient: Some("p1"),
            ..get("app", "Observation?patient=p1", grant)
        });
        let a = ledger.advice().remove(0);
        assert!(a.unused.is_empty(), "{:?}", a.unused);
        assert_eq!(
            a.recommended,
            "patient/Observation.rs launch/patient offline_access"
        );
        // A refresh response without `scope` (RFC 6749 §5.1) still counts as a refresh.
        assert_eq!((a.grants, a.refreshes), (1, 1));
    }

    #[test]
    fn refused_requests_use_nothing_and_unknown_tokens_are_unassessed() {
        let mut ledger = UsageLedger::new(Classifier::new());
        ledger.grant("app", Some("user/Observation.rs"), false, false);
        ledger.access(&ServedAccess {
            status: 403,
            ..get("app", "Observation/o1", "user/Observation.rs")
        });
        ledger.access(&ServedAccess {
            granted: None,
            ..get("app", "Observation/o1", "")
        });
        let a = ledger.advice().remove(0);
        assert_eq!((a.served_requests, a.unassessed_requests), (1, 1));
        assert_eq!(a.unused, vec!["user/Observation.rs"]);
        assert_eq!(a.recommended, "");
    }

    #[test]
    fn everything_keeps_read_on_every_type_the_grant_could_read() {
        // FHIR R4 Patient-$everything: the compartment resources the caller may see.
        let a = advise_one(
            "user/Patient.rs user/Condition.rs user/Observation.rs",
            &["Patient/p1/$everything"],
        );
        assert_eq!(
            a.recommended,
            "user/Condition.r user/Observation.r user/Patient.r"
        );
        assert!(a.unused.is_empty(), "{:?}", a.unused);
    }

    #[test]
    fn an_include_naming_no_target_type_keeps_read_on_what_could_be_included() {
        // FHIR R4 search §3.1.1.5.4: `_include=Observation:performer` may bring any type the
        // reference allows.
        let a = advise_one(
            "user/Observation.rs user/Practitioner.rs",
            &["Observation?code=x&_include=Observation:performer"],
        );
        assert_eq!(a.recommended, "user/Observation.rs user/Practitioner.r");
    }

    #[test]
    fn export_files_served_as_binary_need_no_binary_scope() {
        // Bulk Data: output URLs are server-chosen; some servers serve them as Binary.
        let a = advise_one(
            "system/Observation.rs",
            &["Group/g1/$export?_type=Observation", "Binary/file-1"],
        );
        assert!(a.beyond_grant.is_empty(), "{:?}", a.beyond_grant);
        assert_eq!(a.recommended, "system/Observation.rs");
    }

    #[test]
    fn an_unrecorded_launch_walking_patients_is_served_beyond_its_grant() {
        // SMART patient-specific scopes: one patient per launch. Keycloak logs no patient, so
        // the first patient named stands for it, as in detection.
        let a = advise_one(
            "launch/patient patient/Observation.rs",
            &["Observation?patient=p1", "Observation?patient=p2"],
        );
        assert_eq!(
            a.beyond_grant,
            vec![BeyondGrant {
                permission: "user/Observation.s".into(),
                requests: 1
            }]
        );
        assert_eq!(a.recommended, "patient/Observation.rs launch/patient");
    }

    #[test]
    fn an_ehr_launch_scope_is_not_judged_from_an_access_log() {
        // SMART 2.x: `launch` lets an EHR-launched app obtain its launch context, with or
        // without a patient; nothing in an access log shows it was needed or not.
        let a = advise_one("launch user/Observation.rs", &["Observation/o1"]);
        assert!(a.unused.is_empty(), "{:?}", a.unused);
        assert_eq!(a.recommended, "user/Observation.r launch");
    }

    #[test]
    fn letters_split_across_a_granular_scope_are_never_merged_into_a_broader_one() {
        // A conditional update needs `u` and `s` (FHIR R4 §3.1.0.10.2); `s` only under a
        // category constraint. `user/Observation.us` was never granted, so it is not advised.
        let grant = "user/Observation.u user/Observation.s?category=vital-signs";
        let a = advise_one(grant, &[]);
        let mut ledger = UsageLedger::new(Classifier::new());
        ledger.grant("app", Some(grant), false, false);
        ledger.access(&ServedAccess {
            method: Method::Put,
            ..get("app", "Observation?category=vital-signs&code=x", grant)
        });
        let advice = ledger.advice().remove(0);
        assert_eq!(a.recommended, "");
        assert_eq!(
            advice.recommended,
            "user/Observation.s?category=vital-signs user/Observation.u"
        );
    }

    #[test]
    fn a_request_credits_each_scope_once() {
        let a = advise_one(
            "user/*.rs",
            &["Observation?code=x&_include=Observation:subject:Patient&_include=Observation:encounter:Encounter"],
        );
        assert_eq!(a.granted[0].requests, 1);
    }

    #[test]
    fn a_revoked_token_uses_nothing() {
        // RFC 7009 §2: a revoked token must no longer be honoured; what it was served is not use.
        let mut ledger = UsageLedger::new(Classifier::new());
        ledger.grant("app", Some("user/Observation.rs"), false, false);
        ledger.revoke("t1", Timestamp(0));
        ledger.access(&ServedAccess {
            time: Timestamp(1),
            ..get("app", "Observation/o1", "user/Observation.rs")
        });
        let a = ledger.advice().remove(0);
        assert_eq!(a.unassessed_requests, 1);
        assert_eq!(a.unused, vec!["user/Observation.rs"]);
        assert!(a.callouts[0].starts_with("1 served request(s) could not be tied"));
    }
}
