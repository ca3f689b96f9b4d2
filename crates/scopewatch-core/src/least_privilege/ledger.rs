//! What each app was granted and what its served requests used, judged access by access with
//! detection's own `explain`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::detect::explain::{
    classify_access, explain_with_token, first_patient_of, needed_context, ExplainContext,
    Explained, LaunchFit, ScopeFit, Verdict,
};
use crate::detect::tokens::TokenInfo;
use crate::event::{AccessEvent, Common, Text, Timestamp};
use crate::smart::request::{query, Classifier, Method};
use crate::smart::scope::{Context, Perms, ResourceScope, ResourceTarget, ScopeSet, Syntax};

/// One stored access; identical ones may be folded into `count`.
#[derive(Clone, Debug)]
pub struct ServedAccess<'a> {
    pub time: Timestamp,
    pub client_id: &'a str,
    pub token_id: Option<&'a str>,
    pub method: Method,
    pub url: &'a str,
    pub status: u16,
    /// The token's granted scopes as recorded with the access (None: the token was unknown).
    pub granted: Option<&'a str>,
    /// The token's launch patient (PHI: only compared, never kept).
    pub token_patient: Option<&'a str>,
    /// The patient the log says was served (PHI: only compared, never kept).
    pub patient: Option<&'a str>,
    pub patient_count: Option<u64>,
    pub count: u64,
}

/// A granted scope (canonical spelling) and what it served.
#[derive(Clone, Debug, Default)]
pub(super) struct Granted {
    /// Grants (issued or refreshed tokens) that carried it.
    pub grants: u64,
    pub requests: u64,
    /// The exercised permissions this scope served, as canonical scopes.
    pub served: BTreeSet<String>,
}

/// Everything the ledger knows about one app.
#[derive(Clone, Debug, Default)]
pub(super) struct AppUsage {
    /// Tokens issued or refreshed with a recorded scope.
    pub grants: u64,
    pub refreshes: u64,
    /// A token came with a launch patient, or a request stayed inside one.
    pub launch_used: bool,
    pub served: u64,
    /// Served requests whose permission the log cannot show (unknown token, batch, unknown
    /// operation, revoked token).
    pub unassessed: u64,
    pub granted: BTreeMap<String, Granted>,
    /// The narrowest scopes that serve what was served, by canonical spelling.
    pub exercised: BTreeMap<String, ResourceScope>,
    /// Served although no granted scope allowed it: `context/Type.letters` → requests.
    pub beyond: BTreeMap<String, u64>,
}

/// What a request needed from its token, as detection reads it.
struct Need {
    target: ResourceTarget,
    perms: Perms,
    context: Context,
    /// Any scope that applies and grants one of the letters served it (Bulk Data export and
    /// all-types searches: the server returns only what the token may read).
    loose: bool,
}

/// Grants and served accesses, folded per app.
#[derive(Debug)]
pub struct UsageLedger {
    classifier: Classifier,
    parsed: BTreeMap<String, Arc<ScopeSet>>,
    /// Apps that started a Bulk Data export: their status polls and files need no scope.
    exporting: BTreeSet<String>,
    /// Revocations by token id: a revoked token's later requests are not counted as use.
    revoked: BTreeMap<String, Timestamp>,
    /// For patient launches whose patient was not recorded (Keycloak), the first patient each
    /// token named, as detection keeps it (PHI: memory only, never printed).
    first_patients: BTreeMap<String, Text>,
    pub(super) apps: BTreeMap<String, AppUsage>,
}

impl UsageLedger {
    pub fn new(classifier: Classifier) -> UsageLedger {
        UsageLedger {
            classifier,
            parsed: BTreeMap::new(),
            exporting: BTreeSet::new(),
            revoked: BTreeMap::new(),
            first_patients: BTreeMap::new(),
            apps: BTreeMap::new(),
        }
    }

    fn scopes(&mut self, scope_string: &str) -> Arc<ScopeSet> {
        self.parsed
            .entry(scope_string.to_string())
            .or_insert_with(|| Arc::new(ScopeSet::parse(scope_string)))
            .clone()
    }

    /// A token issued or refreshed; `scope_granted` None when the log recorded none (a refresh
    /// response may omit `scope`, RFC 6749 §5.1); `patient_launch`: it came with a launch
    /// patient.
    pub fn grant(
        &mut self,
        client_id: &str,
        scope_granted: Option<&str>,
        refreshed: bool,
        patient_launch: bool,
    ) {
        let scopes = scope_granted.map(|s| self.scopes(s));
        let app = self.apps.entry(client_id.to_string()).or_default();
        app.refreshes += u64::from(refreshed);
        app.launch_used |= patient_launch;
        let Some(scopes) = scopes else { return };
        app.grants += 1;
        for name in scopes.normalized() {
            app.granted.entry(name).or_default().grants += 1;
        }
    }

    /// A token revoked at `time` (RFC 7009): requests it makes afterwards are not use.
    pub fn revoke(&mut self, token_id: &str, time: Timestamp) {
        self.revoked.entry(token_id.to_string()).or_insert(time);
    }

    /// One served (or refused) access, with the grant of the token it used.
    pub fn access(&mut self, access: &ServedAccess<'_>) {
        if !(200..300).contains(&access.status) {
            return;
        }
        let scopes = access.granted.map(|g| self.scopes(g));
        let context = ExplainContext {
            export_in_progress: self.exporting.contains(access.client_id),
        };
        let event = access_event(access);
        let request = classify_access(&self.classifier, &event, context);
        let token = scopes.as_ref().map(|s| self.token_of(access, s.clone()));
        let explained = explain_with_token(&event, token.as_ref(), request, context);
        if explained.request.is_bulk_export() {
            self.exporting.insert(access.client_id.to_string());
        }
        if let Some((token_id, patient)) = first_patient_of(&explained, &event) {
            self.first_patients.insert(token_id.to_string(), patient);
        }
        let app = self.apps.entry(access.client_id.to_string()).or_default();
        app.served += access.count;
        let Some(scopes) = scopes else {
            app.unassessed += access.count;
            return;
        };
        for name in scopes.normalized() {
            app.granted.entry(name).or_default();
        }
        app.launch_used |= matches!(
            explained.launch,
            LaunchFit::InLaunchPatient | LaunchFit::UnrecordedLaunchPatient
        );
        let query = (explained.request.is_search() && !explained.request.body_params)
            .then(|| event.url.split_once('?').map_or("", |(_, q)| q));
        record(app, &scopes, &explained, query, access.count);
    }

    /// The token as the access row recorded it, with what the ledger learnt of it (revocation,
    /// first patient). Its lifetime is unknown here (`lifetime_assumed`), so it is never judged
    /// expired: expiry is detection's business, not a permission question.
    fn token_of(&self, access: &ServedAccess<'_>, scopes: Arc<ScopeSet>) -> TokenInfo {
        let id = access.token_id.unwrap_or("");
        TokenInfo {
            token_id: Text::from(id),
            client_id: Text::from(access.client_id),
            grant_type: None,
            scopes,
            patient: access.token_patient.map(Text::from),
            user: None,
            issued_at: access.time,
            expires_at: access.time,
            lifetime_assumed: true,
            revoked_at: access.token_id.and_then(|t| self.revoked.get(t).copied()),
            first_patient: self.first_patients.get(id).cloned(),
        }
    }
}

fn access_event(access: &ServedAccess<'_>) -> AccessEvent {
    AccessEvent {
        common: Common {
            time: access.time,
            client_id: Text::from(access.client_id),
            user: None,
            source_ip: None,
            user_agent: None,
        },
        method: access.method,
        url: access.url.to_string(),
        status: access.status,
        token_id: access.token_id.map(Text::from),
        resources_returned: None,
        bytes: None,
        patient: access.patient.map(Text::from),
        patient_count: access.patient_count,
        purpose_of_use: None,
    }
}

fn record(
    app: &mut AppUsage,
    scopes: &ScopeSet,
    explained: &Explained<'_>,
    query: Option<&str>,
    count: u64,
) {
    match explained.verdict() {
        Verdict::NotServed => {}
        Verdict::Gap => {
            if let ScopeFit::NotCovered {
                needed,
                requirement,
                coverage,
            } = &explained.scopes
            {
                let permission = format!(
                    "{needed}/{}.{}",
                    requirement.resource.as_str(),
                    coverage.missing.letters()
                );
                *app.beyond.entry(permission).or_default() += count;
            }
        }
        Verdict::Revoked | Verdict::Unexplained | Verdict::UnknownToken => {
            app.unassessed += count;
        }
        Verdict::Explained | Verdict::Unverified(_) => {
            // One request credits each scope that served it once, however many needs it had.
            let mut credited = BTreeSet::new();
            for need in needs(explained, query) {
                credited.extend(serve(app, scopes, &need, query));
            }
            for name in credited {
                app.granted.entry(name).or_default().requests += count;
            }
        }
    }
}

/// The permissions a served request used: its requirement, each `_type` / `_include` type,
/// and for `$everything` and untyped includes read on whatever the token could read.
fn needs(explained: &Explained<'_>, query: Option<&str>) -> Vec<Need> {
    let request = &explained.request;
    let Some(requirement) = request.requirement() else {
        return Vec::new();
    };
    let types = |perms, context, loose| -> Vec<Need> {
        request
            .types
            .iter()
            .map(|t| Need {
                target: ResourceTarget::Type((*t).to_string()),
                perms,
                context,
                loose,
            })
            .collect()
    };
    if request.is_bulk_export() {
        // Bulk Data: the server limits the output to what the client may read.
        if request.types.is_empty() {
            return vec![loose_any(Perms::V1_READ, Context::User)];
        }
        return types(Perms::V1_READ, Context::User, true);
    }
    // A search that reached beyond the launch patient needs `user/` whatever its launch.
    let context = match needed_context(explained.launch) {
        Context::Patient if explained.reaches_population() => Context::User,
        context => context,
    };
    let mut out = if requirement.resource != ResourceTarget::Any {
        vec![Need {
            target: requirement.resource,
            perms: requirement.perms,
            context,
            loose: false,
        }]
    } else if request.types.is_empty() {
        vec![loose_any(requirement.perms, context)]
    } else {
        types(requirement.perms, context, false)
    };
    out.extend(request.included.iter().map(|t| Need {
        target: ResourceTarget::Type((*t).to_string()),
        perms: Perms::READ,
        context,
        loose: false,
    }));
    // FHIR R4 Patient-$everything returns every compartment resource the token may read;
    // `_include=*` and an `_include` naming no target type may bring any readable type.
    if request.includes_any
        || request.is_operation("$everything")
        || (request.included.is_empty() && names_includes(query))
    {
        out.push(loose_any(Perms::READ, context));
    }
    out
}

fn names_includes(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        query::pairs(q)
            .any(|(name, _)| name.starts_with("_include") || name.starts_with("_revinclude"))
    })
}

fn loose_any(perms: Perms, context: Context) -> Need {
    Need {
        target: ResourceTarget::Any,
        perms,
        context,
        loose: true,
    }
}

/// Notes the narrowest scope that would have served `need` and returns the granted scopes
/// that served it.
fn serve(app: &mut AppUsage, scopes: &ScopeSet, need: &Need, query: Option<&str>) -> Vec<String> {
    let (by, exercised): (Vec<&ResourceScope>, Vec<ResourceScope>) = if need.loose {
        let by: Vec<&ResourceScope> = scopes
            .resources()
            .iter()
            .filter(|s| loosely_serves(s, need))
            .collect();
        let exercised = by.iter().map(|s| narrowed(s, need)).collect();
        (by, exercised)
    } else {
        let coverage = scopes.coverage_for_query(need.context, &need.target, need.perms, query);
        if !coverage.is_covered() {
            // Unverified (`_include` of a type the token cannot read): nothing of it was used.
            return Vec::new();
        }
        let by: Vec<&ResourceScope> = coverage
            .by
            .iter()
            .filter_map(|&i| scopes.resources().get(i))
            .collect();
        let exercised = exact_exercise(&by, need);
        (by, exercised)
    };
    let names: Vec<String> = exercised.iter().map(ResourceScope::normalized).collect();
    let credited: Vec<String> = by.iter().map(|s| s.normalized()).collect();
    for scope in &credited {
        let granted = app.granted.entry(scope.clone()).or_default();
        granted.served.extend(names.iter().cloned());
    }
    for (name, scope) in names.into_iter().zip(exercised) {
        app.exercised.entry(name).or_insert(scope);
    }
    credited
}

fn loosely_serves(scope: &ResourceScope, need: &Need) -> bool {
    let applies = match need.target {
        ResourceTarget::Any => scope.context >= need.context,
        _ => scope.applies_to(need.context, &need.target),
    };
    applies && scope.perms.intersects(need.perms)
}

/// A granted scope cut down to the letters (and, for a wildcard, the type) a request used.
fn narrowed(scope: &ResourceScope, need: &Need) -> ResourceScope {
    ResourceScope {
        context: scope.context,
        resource: match need.target {
            ResourceTarget::Any => scope.resource.clone(),
            _ => need.target.clone(),
        },
        perms: kept_letters(scope.perms, need.perms),
        constraints: scope.constraints.clone(),
        syntax: Syntax::V2,
    }
}

/// The letters of `granted` a request needing `needed` keeps. A search keeps `r` beside `s` when
/// the grant had it: SMART 2.x defines the two apart but does not say whether `s` alone lets a
/// server return the matches, and servers differ, so the advice never takes that bet.
fn kept_letters(granted: Perms, needed: Perms) -> Perms {
    let mut want = needed;
    if needed.contains(Perms::SEARCH) {
        want = want.union(Perms::READ);
    }
    granted.minus(granted.minus(want))
}

/// The scope a covered request needs: its type and letters in the narrowest granted context
/// that allowed it, when unconstrained scopes alone allowed it. Otherwise each scope that served
/// it, cut down, constraints included: the constraint is what kept the request narrow (and a
/// merged unconstrained scope would grant what was never granted).
fn exact_exercise(by: &[&ResourceScope], need: &Need) -> Vec<ResourceScope> {
    let unconstrained: Vec<&&ResourceScope> =
        by.iter().filter(|s| s.constraints.is_empty()).collect();
    let letters = unconstrained
        .iter()
        .fold(Perms::NONE, |acc, s| acc.union(s.perms));
    match unconstrained.iter().map(|s| s.context).min() {
        Some(context) if letters.contains(need.perms) => vec![ResourceScope {
            context,
            resource: need.target.clone(),
            perms: kept_letters(letters, need.perms),
            constraints: Vec::new(),
            syntax: Syntax::V2,
        }],
        _ => by.iter().map(|s| narrowed(s, need)).collect(),
    }
}
