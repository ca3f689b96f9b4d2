//! Rules that compare behaviour with the app registry (`--registry`); silent for apps the
//! registry does not list and for fields an entry does not state.
//!
//! - `registry_scope_violation` (scope_creep): a token granted scopes outside the app's
//!   registered `allowed_scopes` (semantically: a v1/v2 re-spelling is not a violation).
//! - `registry_mode_violation` (scope_creep): a token whose broadest context (patient, user,
//!   system) is not one of the app's registered `modes`.
//! - `registry_purpose_violation` (purpose_drift): an access whose `purpose_of_use` is not one of
//!   the app's registered purposes.

use serde_json::json;

use super::catalog::RuleId;
use super::hooks::{AccessContext, GrantContext};
use super::novelty::access_finding;

use super::super::finding::Finding;

pub const SCOPE_RULE: RuleId = RuleId::RegistryScopeViolation;
pub const MODE_RULE: RuleId = RuleId::RegistryModeViolation;
pub const PURPOSE_RULE: RuleId = RuleId::RegistryPurposeViolation;

/// `registry_scope_violation`: a grant outside the app's registered scopes.
pub fn scope_violation(context: &mut GrantContext<'_>, findings: &mut Vec<Finding>) {
    let (event, granted) = (context.event, context.granted);
    let client = &event.common.client_id;
    let Some(app) = context.registry.get(client) else {
        return;
    };
    if let Some(allowed) = &app.allowed_scopes {
        let delta = granted.additions_over(allowed);
        let outside: Vec<String> = delta
            .added
            .iter()
            .map(|a| a.scope.clone())
            .chain(delta.new_other.iter().cloned())
            .chain(delta.new_invalid.iter().cloned())
            .collect();
        if !outside.is_empty() {
            let broad = !delta.new_wildcards.is_empty() || delta.context_escalation.is_some();
            let f = Finding {
                summary: format!(
                    "{client} was granted {} scope(s) outside its registration ({}).",
                    outside.len(),
                    outside.join(" ")
                ),
                observed: json!({ "granted_scopes": granted.normalized(), "outside_registration": outside }),
                baseline: json!({ "allowed_scopes": allowed.normalized() }),
                token_id: event.token_id.clone(),
                ..Finding::new(SCOPE_RULE, client.clone(), event.common.time)
            };
            findings.push(f.marked_if(broad));
        }
    }
}

/// `registry_mode_violation`: a grant in a context the app is not registered for.
pub fn mode_violation(context: &mut GrantContext<'_>, findings: &mut Vec<Finding>) {
    let (event, granted) = (context.event, context.granted);
    let client = &event.common.client_id;
    let Some(app) = context.registry.get(client) else {
        return;
    };
    if let Some(held) = granted.max_context() {
        if !app.modes.is_empty() && !app.modes.contains(&held) {
            let modes: Vec<&str> = app.modes.iter().map(|m| m.as_str()).collect();
            findings.push(Finding {
                summary: format!(
                    "{client} holds a {} context token but is registered for {} access only.",
                    held.as_str(),
                    modes.join("/")
                ),
                observed: json!({ "context": held.as_str(), "grant_type": event.grant_type }),
                baseline: json!({ "modes": modes }),
                token_id: event.token_id.clone(),
                ..Finding::new(MODE_RULE, client.clone(), event.common.time)
            });
        }
    }
}

/// `registry_purpose_violation`: an access for a purpose the app is not registered for.
pub fn purpose_violation(context: &mut AccessContext<'_>, findings: &mut Vec<Finding>) {
    let access = context.access;
    let Some(purpose) = access.purpose_of_use.as_deref() else {
        return;
    };
    let client = &access.common.client_id;
    let Some(app) = context.registry.get(client) else {
        return;
    };
    if app.purpose.is_empty() || app.purpose.iter().any(|p| p == purpose) {
        return;
    }
    findings.push(access_finding(
        access,
        PURPOSE_RULE,
        format!(
            "{client} accessed data for purpose {purpose}, which is not among its registered purposes ({}).",
            app.purpose.join(", ")
        ),
        json!({ "purpose_of_use": purpose }),
        json!({ "registered_purposes": app.purpose }),
    ));
}
