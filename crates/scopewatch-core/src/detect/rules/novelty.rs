//! Rules that compare an event with the app's established baseline (after its learning period):
//! something the app was never seen doing. New behaviour stays in quarantine (see
//! `baseline::profile`) until it recurs on several days, so these rules keep firing for a new
//! behaviour until it has genuinely become normal; incidents stop them repeating.
//!
//! scope_creep: `new_scope`, `wildcard_broadening`, `context_escalation`, `offline_access_new`.
//! purpose_drift: `new_grant_type`, `new_purpose`, `bulk_export_new`, `everything_new`,
//! `population_access_new`. Info: `new_app` on an app's first event.

use serde_json::json;

use crate::event::{AccessEvent, Common, TokenAction};
use crate::smart::request::{request_shape, EXPORT_LEVELS};
use crate::smart::scope::ScopeSet;

use super::super::explain::LaunchFit;
use super::super::finding::Finding;
use super::catalog::RuleId;
use super::hooks::{AccessContext, EventContext, GrantContext};

fn finding(
    common: &Common,
    rule: RuleId,
    summary: String,
    observed: serde_json::Value,
    baseline: serde_json::Value,
) -> Finding {
    Finding {
        summary,
        observed,
        baseline,
        ..Finding::new(rule, common.client_id.clone(), common.time)
    }
}

/// `new_app`: the first event of an app scopewatch has never seen.
pub fn new_app(context: &mut EventContext<'_>, findings: &mut Vec<Finding>) {
    if context.profile.is_some() {
        return;
    }
    let common = context.common;
    let client = &common.client_id;
    findings.push(finding(
        common,
        RuleId::NewApp,
        format!("{client} appeared for the first time; its baseline is being learned before other rules apply."),
        json!({ "first_seen": common.time }),
        serde_json::Value::Null,
    ));
}

/// `refresh_broadening`: a refresh granted more than the grant it refreshes (SMART requires a
/// refresh to grant a subset). Checked in learning too: it is never normal.
pub fn refresh_broadening(context: &mut GrantContext<'_>, findings: &mut Vec<Finding>) {
    let (event, granted) = (context.event, context.granted);
    let Some(originals) = context.refreshable else {
        return;
    };
    if event.event != TokenAction::Refreshed {
        return;
    }
    // Any grant of this user (and launch patient) may be the one refreshed: a patient on two
    // devices holds two. Broadening only when no grant contains the refresh.
    let mut narrowest: Option<(&ScopeSet, crate::smart::scope::ScopeDelta)> = None;
    let mut compared = 0;
    for original in originals.iter().filter(|o| may_have_issued(o, granted)) {
        compared += 1;
        let delta = granted.additions_over(original);
        if delta.added.is_empty()
            && delta.context_escalation.is_none()
            && delta.new_other.is_empty()
        {
            return;
        }
        let size = delta.added.len() + delta.new_other.len();
        if narrowest
            .as_ref()
            .is_none_or(|(_, d)| size < d.added.len() + d.new_other.len())
        {
            narrowest = Some((original, delta));
        }
    }
    let Some((original, delta)) = narrowest else {
        return;
    };
    let client = &event.common.client_id;
    let mut f = finding(
        &event.common,
        RuleId::RefreshBroadening,
        format!("A refresh gave {client} more than any grant it could have refreshed; refreshes may only narrow a grant."),
        json!({ "granted_scopes": granted.normalized(), "added": delta.added, "new_scopes": delta.new_other }),
        json!({ "original_scopes": original.normalized(), "grants_compared": compared }),
    );
    f.token_id = event.token_id.clone();
    findings.push(f);
}

/// The scopes that ask for a refresh token (SMART App Launch 2.x, "Scopes for requesting a
/// refresh token").
const REFRESH_SCOPES: [&str; 2] = ["offline_access", "online_access"];

/// Whether `original` can be the grant a refresh holding `refreshed` continues: a refresh keeps
/// the original's `offline_access` / `online_access` (it may only narrow it), so a refresh
/// holding one that a known grant lacks continues a grant issued before the log began (a
/// patient's offline chain outlives any log window) and is not compared with it.
fn may_have_issued(original: &ScopeSet, refreshed: &ScopeSet) -> bool {
    let holds = |set: &ScopeSet, name: &str| set.others().any(|s| s.normalized() == name);
    REFRESH_SCOPES
        .iter()
        .all(|name| !holds(refreshed, name) || holds(original, name))
}

/// `dormant_app_active`: an established app acts again after `dormant_days` (30 unless a
/// rules file says otherwise) of silence.
pub fn dormant(context: &mut EventContext<'_>, findings: &mut Vec<Finding>) {
    let (common, settings) = (context.common, context.settings);
    let Some(profile) = context.profile else {
        return;
    };
    let silent_days =
        (common.time.0 - profile.last_seen.0) / (86_400 * crate::event::MICROS_PER_SECOND);
    if (silent_days as f64) < settings.param(RuleId::DormantAppActive, "dormant_days") {
        return;
    }
    let client = &common.client_id;
    findings.push(finding(
        common,
        RuleId::DormantAppActive,
        format!("{client} is active again after {silent_days} days of silence; check that it is still meant to have access."),
        json!({ "silent_days": silent_days }),
        json!({ "last_seen": profile.last_seen }),
    ));
}

/// A grant finding against the app's established scopes, naming the token.
fn grant_finding(
    context: &GrantContext<'_>,
    rule: RuleId,
    summary: String,
    observed: serde_json::Value,
) -> Finding {
    let (baseline, _) = context.over_established();
    let mut f = finding(
        &context.event.common,
        rule,
        summary,
        observed,
        json!({ "established_scopes": baseline.normalized() }),
    );
    f.token_id = context.event.token_id.clone();
    f
}

/// `context_escalation`: a grant one context above what the app held (patient → user → system).
pub fn context_escalation(context: &mut GrantContext<'_>, findings: &mut Vec<Finding>) {
    let Some((from, to)) = context.over_established().1.context_escalation else {
        return;
    };
    let client = &context.event.common.client_id;
    findings.push(grant_finding(
        context,
        RuleId::ContextEscalation,
        format!(
            "{client} was granted {}-level scopes; until now it only held {}-level access.",
            to.as_str(),
            from.map_or("no resource", |c| c.as_str())
        ),
        json!({ "context": to.as_str(), "granted_scopes": context.granted.normalized() }),
    ));
}

/// `wildcard_broadening`: a grant adds a `*` resource scope the app never held.
pub fn wildcard_broadening(context: &mut GrantContext<'_>, findings: &mut Vec<Finding>) {
    let delta = &context.over_established().1;
    if delta.new_wildcards.is_empty() {
        return;
    }
    let client = &context.event.common.client_id;
    findings.push(grant_finding(
        context,
        RuleId::WildcardBroadening,
        format!(
            "{client} was granted wildcard scope(s) {} covering every resource type, beyond its usual scopes.",
            delta.new_wildcards.join(" ")
        ),
        json!({ "new_wildcards": delta.new_wildcards, "added": delta.added }),
    ));
}

/// `new_scope`: a grant adds specific permissions the app never held (what a wildcard or a
/// context escalation already reports is left to those rules).
pub fn new_scope(context: &mut GrantContext<'_>, findings: &mut Vec<Finding>) {
    let delta = &context.over_established().1;
    let specific: Vec<&str> = delta
        .added
        .iter()
        .filter(|a| {
            a.resource != "*"
                && delta
                    .context_escalation
                    .is_none_or(|(_, to)| a.context < to)
        })
        .map(|a| a.scope.as_str())
        .collect();
    if specific.is_empty() {
        return;
    }
    let client = &context.event.common.client_id;
    findings.push(grant_finding(
        context,
        RuleId::NewScope,
        format!(
            "{client} was granted permissions it never held before: {}.",
            specific.join(" ")
        ),
        json!({ "added": delta.added }),
    ));
}

/// `offline_access_new`: the app obtains `offline_access` for the first time.
pub fn offline_access_new(context: &mut GrantContext<'_>, findings: &mut Vec<Finding>) {
    let delta = &context.over_established().1;
    if !delta.adds_offline_access() {
        return;
    }
    let client = &context.event.common.client_id;
    findings.push(grant_finding(
        context,
        RuleId::OfflineAccessNew,
        format!("{client} obtained offline_access (long-lived refresh tokens) for the first time."),
        json!({ "new_scopes": delta.new_other }),
    ));
}

/// `new_grant_type`: a token through a grant type the app never used.
pub fn new_grant_type(context: &mut GrantContext<'_>, findings: &mut Vec<Finding>) {
    let (event, profile) = (context.event, context.profile);
    let Some(grant) = event.grant_type.as_deref() else {
        return;
    };
    if !profile.grant_types.has_established() || profile.grant_types.is_established(grant) {
        return;
    }
    let usual: Vec<&String> = profile.grant_types.established_keys().collect();
    let client = &event.common.client_id;
    let mut f = finding(
        &event.common,
        RuleId::NewGrantType,
        format!("{client} obtained a token through {grant}, a grant type it has not used before."),
        json!({ "grant_type": grant }),
        json!({ "grant_types": usual }),
    )
    // A backend client suddenly used through an interactive login is human use of an NHI.
    .marked_if(grant == "authorization_code");
    f.token_id = event.token_id.clone();
    findings.push(f);
}

/// An access finding, naming its token and request shape (the per-token volume and registry
/// purpose rules build theirs with it too).
pub(super) fn access_finding(
    access: &AccessEvent,
    rule: RuleId,
    summary: String,
    observed: serde_json::Value,
    baseline: serde_json::Value,
) -> Finding {
    let mut f = finding(&access.common, rule, summary, observed, baseline);
    f.token_id = access.token_id.clone();
    f.example_request = Some(request_shape(access.method, &access.url));
    f
}

/// `new_purpose`: an access for a purpose of use the app never used.
pub fn new_purpose(context: &mut AccessContext<'_>, findings: &mut Vec<Finding>) {
    let (access, profile) = (context.access, context.profile);
    let Some(purpose) = access.purpose_of_use.as_deref() else {
        return;
    };
    if !profile.purposes.has_established() || profile.purposes.is_established(purpose) {
        return;
    }
    let usual: Vec<&String> = profile.purposes.established_keys().collect();
    let client = &access.common.client_id;
    findings.push(access_finding(
        access,
        RuleId::NewPurpose,
        format!("{client} accessed data for purpose {purpose}, which it has not used before."),
        json!({ "purpose_of_use": purpose }),
        json!({ "purposes": usual }),
    ));
}

/// `bulk_export_new`: a served Bulk Data `$export` by an app that never ran one.
/// Also an app that exports further than it ever did: from a Group to every patient, or to all
/// data (a new population, though the operation is known).
pub fn bulk_export_new(context: &mut AccessContext<'_>, findings: &mut Vec<Finding>) {
    if !new_operation(context, "$export", RuleId::BulkExportNew, findings) {
        broader_export(context, findings);
    }
}

fn broader_export(context: &AccessContext<'_>, findings: &mut Vec<Finding>) {
    let (access, profile) = (context.access, context.profile);
    let Some(level) = context.explained.request.export_level() else {
        return;
    };
    if !context.explained.served {
        return;
    }
    let reach = |level: &str| EXPORT_LEVELS.iter().position(|l| *l == level);
    let established: Vec<&str> = EXPORT_LEVELS
        .into_iter()
        .filter(|l| profile.operations.is_established(*l))
        .collect();
    let Some(widest) = established.iter().filter_map(|l| reach(l)).max() else {
        return;
    };
    // Levels are judged only when they were learned from the app's first export: a baseline
    // learned before levels were (only `$export`) would otherwise take the first level it
    // relearns for all it ever did.
    let first_seen = |key: &str| profile.operations.entries.get(key).map(|s| s.first_seen);
    let levels_since = EXPORT_LEVELS.into_iter().filter_map(first_seen).min();
    if levels_since > first_seen("$export") {
        return;
    }
    if reach(level).is_none_or(|r| r <= widest) {
        return;
    }
    let client = &access.common.client_id;
    findings.push(access_finding(
        access,
        RuleId::BulkExportNew,
        format!("{client} ran a Bulk Data export at a level that reaches further than any it has used ({level}, after {})." , established.join(", ")),
        json!({ "operation": "$export", "level": level, "population_level": context.population_level }),
        json!({ "export_levels": established }),
    ));
}

/// `everything_new`: a served `$everything` by an app that never ran it.
pub fn everything_new(context: &mut AccessContext<'_>, findings: &mut Vec<Finding>) {
    new_operation(context, "$everything", RuleId::EverythingNew, findings);
}

/// Returns whether it found the operation new.
fn new_operation(
    context: &AccessContext<'_>,
    operation: &str,
    rule: RuleId,
    findings: &mut Vec<Finding>,
) -> bool {
    let (access, profile) = (context.access, context.profile);
    let request = &context.explained.request;
    if !context.explained.served
        || request.operation.as_deref() != Some(operation)
        || profile.operations.is_established(operation)
    {
        return false;
    }
    let client = &access.common.client_id;
    findings.push(access_finding(
        access,
        rule,
        format!("{client} ran {operation}, a bulk operation it has never used before."),
        json!({ "operation": operation, "population_level": context.population_level }),
        json!({ "operations": profile.operations.established_keys().collect::<Vec<_>>() }),
    ));
    true
}

/// `population_access_new`: a served search across patients by an app that worked one
/// patient at a time (a Bulk export is `bulk_export_new`'s). Marked (high) when the token was
/// bound to one patient and the log shows the answer reached others: SMART restricts a
/// patient-context search to the launch patient, so the server did not enforce the context
/// (the same request's `enforcement_gap` is folded into this finding: `fold`).
pub fn population_access_new(context: &mut AccessContext<'_>, findings: &mut Vec<Finding>) {
    let (access, profile) = (context.access, context.profile);
    let request = &context.explained.request;
    if !context.explained.served
        || !context.population_level
        || request.is_bulk_export()
        || !profile.resources.has_established()
        || profile.population.has_established()
    {
        return;
    }
    let client = &access.common.client_id;
    let unenforced = context.patient_bound && context.explained.launch == LaunchFit::OtherPatient;
    let mut summary = format!(
        "{client} searched {} across all patients; it has only worked one patient at a time before.",
        request.resource_type.unwrap_or("data")
    );
    let mut observed = json!({ "resource_type": request.resource_type, "interaction": request.interaction.as_str() });
    if unenforced {
        summary.push_str(" The server answered a token bound to one patient with other patients' data: it is not restricting patient-context searches to the launch patient.");
        observed["launch_context"] = json!("other-patient");
        observed["patients_in_response"] = json!(access.patient_count);
    }
    findings.push(
        access_finding(
            access,
            RuleId::PopulationAccessNew,
            summary,
            observed,
            json!({ "population_level_access": false }),
        )
        .marked_if(unenforced),
    );
}
