//! What each app was granted and what its served requests used, judged access by access with
//! detection's own `explain`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::detect::explain::{
    explain_with_token, needed_context, ExplainContext, Explained, LaunchFit, ScopeFit, Verdict,
};
use crate::detect::tokens::TokenInfo;
use crate::event::{AccessEvent, Common, Text, Timestamp};
use crate::smart::request::{Classifier, Method};
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
    pub tokens: u64,
    pub requests: u64,
    /// The exercised permissions this scope served, as canonical scopes.
    pub served: BTreeSet<String>,
}

/// Everything the ledger knows about one app.
#[derive(Clone, Debug, Default)]
pub(super) struct AppUsage {
    pub tokens: u64,
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
    pub(super) apps: BTreeMap<String, AppUsage>,
}

impl UsageLedger {
    pub fn new(classifier: Classifier) -> UsageLedger {
        UsageLedger {
            classifier,
            parsed: BTreeMap::new(),
            exporting: BTreeSet::new(),
            apps: BTreeMap::new(),
        }
    }

    fn scopes(&mut self, scope_string: &str) -> Arc<ScopeSet> {
        self.parsed
            .entry(scope_string.to_string())
            .or_insert_with(|| Arc::new(ScopeSet::parse(scope_string)))
            .clone()
    }

    /// A token issued (or refreshed) with `scope_granted`; `patient_launch`: it came with a
    /// launch patient.
    pub fn grant(
        &mut self,
        client_id: &str,
        scope_granted: &str,
        refreshed: bool,
        patient_launch: bool,
    ) {
        let scopes = self.scopes(scope_granted);
        let app = self.apps.entry(client_id.to_string()).or_default();
        app.tokens += 1;
        app.refreshes += u64::from(refreshed);
        app.launch_used |= patient_launch;
        for name in scopes.normalized() {
            app.granted.entry(name).or_default().tokens += 1;
        }
    }

    /// One served (or refused) access, with the grant of the token it used.
    pub fn access(&mut self, access: &ServedAccess<'_>) {
        if !(200..300).contains(&access.status) {
            return;
        }
        let scopes = access.granted.map(|g| self.scopes(g));
        let export_in_progress = self.exporting.contains(access.client_id);
        let event = access_event(access);
        let request = self.classifier.classify(access.method, &event.url);
        let token = scopes.as_ref().map(|s| token_of(access, s.clone()));
        let context = ExplainContext { export_in_progress };
        let explained = explain_with_token(&event, token.as_ref(), request, context);
        if explained.request.is_bulk_export() {
            self.exporting.insert(access.client_id.to_string());
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

/// The token as the access row recorded it. Its lifetime is unknown here (`lifetime_assumed`),
/// so it is never judged expired: expiry is detection's business, not a permission question.
fn token_of(access: &ServedAccess<'_>, scopes: Arc<ScopeSet>) -> TokenInfo {
    TokenInfo {
        token_id: Text::from(access.token_id.unwrap_or("")),
        client_id: Text::from(access.client_id),
        grant_type: None,
        scopes,
        patient: access.token_patient.map(Text::from),
        user: None,
        issued_at: access.time,
        expires_at: access.time,
        lifetime_assumed: true,
        revoked_at: None,
        first_patient: None,
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
            for need in needs(explained) {
                serve(app, scopes, &need, query, count);
            }
        }
    }
}

/// The permissions a served request used: its requirement, each `_type` / `_include` type.
fn needs(explained: &Explained<'_>) -> Vec<Need> {
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
    let context = needed_context(explained.launch);
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
    if request.includes_any {
        out.push(loose_any(Perms::READ, context));
    }
    out
}

fn loose_any(perms: Perms, context: Context) -> Need {
    Need {
        target: ResourceTarget::Any,
        perms,
        context,
        loose: true,
    }
}

/// Credits the granted scopes that served `need` and notes the narrowest scope that would
/// have served it too.
fn serve(app: &mut AppUsage, scopes: &ScopeSet, need: &Need, query: Option<&str>, count: u64) {
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
            return;
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
    for scope in &by {
        let granted = app.granted.entry(scope.normalized()).or_default();
        granted.requests += count;
        granted.served.extend(names.iter().cloned());
    }
    for (name, scope) in names.into_iter().zip(exercised) {
        app.exercised.entry(name).or_insert(scope);
    }
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
        perms: scope.perms.minus(scope.perms.minus(need.perms)),
        constraints: scope.constraints.clone(),
        syntax: Syntax::V2,
    }
}

/// The scope a covered request needs: its type and letters in the narrowest granted context
/// that allowed it. Served only through granular (query-constrained) scopes, those scopes
/// themselves, constraints included: the constraint is what kept the request narrow.
fn exact_exercise(by: &[&ResourceScope], need: &Need) -> Vec<ResourceScope> {
    let unconstrained = by.iter().filter(|s| s.constraints.is_empty());
    match unconstrained.map(|s| s.context).min() {
        Some(context) => vec![ResourceScope {
            context,
            resource: need.target.clone(),
            perms: need.perms,
            constraints: Vec::new(),
            syntax: Syntax::V2,
        }],
        None => by.iter().map(|s| narrowed(s, need)).collect(),
    }
}
