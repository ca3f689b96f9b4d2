//! What each app was granted and what its served requests used, judged access by access with
//! detection's own `explain` (through [`Replay`]).

use std::collections::{BTreeMap, BTreeSet};

use crate::detect::explain::{needed_context, Explained, LaunchFit, Verdict};
use crate::detect::replay::Replay;
pub use crate::detect::replay::ServedAccess;
use crate::event::Timestamp;
use crate::smart::request::{query, Classifier};
use crate::smart::scope::{Context, Perms, ResourceScope, ResourceTarget, ScopeSet, Syntax};

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
    replay: Replay,
    pub(super) apps: BTreeMap<String, AppUsage>,
}

impl UsageLedger {
    pub fn new(classifier: Classifier) -> UsageLedger {
        UsageLedger {
            replay: Replay::new(classifier),
            apps: BTreeMap::new(),
        }
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
        let scopes = scope_granted.map(|s| self.replay.scopes(s));
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
        self.replay.revoke(token_id, time);
    }

    /// One served (or refused) access, with the grant of the token it used.
    pub fn access(&mut self, access: &ServedAccess<'_>) {
        if !(200..300).contains(&access.status) {
            return;
        }
        let apps = &mut self.apps;
        self.replay.explain(access, |explained, event, scopes| {
            let app = apps.entry(access.client_id.to_string()).or_default();
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
            let query = search_query(explained, &event.url);
            record(app, scopes, explained, query, access.count);
        });
    }
}

/// A search's own query, which decides granular scopes (POST `_search` hides it in the body).
fn search_query<'u>(explained: &Explained<'_>, url: &'u str) -> Option<&'u str> {
    (explained.request.is_search() && !explained.request.body_params)
        .then(|| url.split_once('?').map_or("", |(_, q)| q))
}

/// The granted resource scopes that served an explained or unverified request, as the ledger
/// credits them, by index in `scopes.resources()` (the order of `ScopeSet::normalized`): what
/// the history store writes as `used_scopes`.
pub fn used_scopes(scopes: &ScopeSet, explained: &Explained<'_>, url: &str) -> Vec<usize> {
    if !matches!(
        explained.verdict(),
        Verdict::Explained | Verdict::Unverified(_)
    ) {
        return Vec::new();
    }
    let query = search_query(explained, url);
    let mut credited = BTreeSet::new();
    for need in needs(explained, query) {
        credited.extend(serving(scopes, &need, query));
    }
    credited.into_iter().collect()
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
            if let Some(permission) = explained.missing_permission() {
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
        // Every query is asked this: skip decoding its pairs when no name could decode to an
        // include (an escaped letter would show a `%`).
        (q.contains("include") || q.contains('%'))
            && query::pairs(q)
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
    let (by, exercised) = served_by(scopes, need, query);
    let names: Vec<String> = exercised.iter().map(ResourceScope::normalized).collect();
    let credited: Vec<String> = by
        .iter()
        .filter_map(|&i| scopes.resources().get(i))
        .map(ResourceScope::normalized)
        .collect();
    for scope in &credited {
        let granted = app.granted.entry(scope.clone()).or_default();
        granted.served.extend(names.iter().cloned());
    }
    for (name, scope) in names.into_iter().zip(exercised) {
        app.exercised.entry(name).or_insert(scope);
    }
    credited
}

/// The granted scopes that served `need` (indices in `scopes.resources()`), and the narrowest
/// scopes it exercised.
fn served_by(
    scopes: &ScopeSet,
    need: &Need,
    query: Option<&str>,
) -> (Vec<usize>, Vec<ResourceScope>) {
    let resources = scopes.resources();
    let by = serving(scopes, need, query);
    let served: Vec<&ResourceScope> = by.iter().map(|&i| &resources[i]).collect();
    let exercised = if need.loose {
        served.iter().map(|s| narrowed(s, need)).collect()
    } else {
        exact_exercise(&served, need)
    };
    (by, exercised)
}

/// The granted scopes that served `need`, by index in `scopes.resources()` (what
/// [`used_scopes`] writes; [`served_by`] adds the scopes exercised).
fn serving(scopes: &ScopeSet, need: &Need, query: Option<&str>) -> Vec<usize> {
    let resources = scopes.resources();
    if need.loose {
        return (0..resources.len())
            .filter(|&i| loosely_serves(&resources[i], need))
            .collect();
    }
    let coverage = scopes.coverage_for_query(need.context, &need.target, need.perms, query);
    if !coverage.is_covered() {
        // Unverified (`_include` of a type the token cannot read): nothing of it was used.
        return Vec::new();
    }
    coverage
        .by
        .into_iter()
        .filter(|&i| i < resources.len())
        .collect()
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
