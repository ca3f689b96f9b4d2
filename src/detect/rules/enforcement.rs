//! `enforcement_gap` (scope_creep, high): an access answered 2xx whose resource type and
//! interaction the token's granted scopes do not cover — the "gateway flattened the scopes"
//! failure. The data was served although the authorization server never granted it.

use serde_json::json;

use crate::alert::{Category, Severity, ATTACK_T1213, CSF_PR_AA_05, NHI5_OVERPRIVILEGED};
use crate::event::AccessEvent;
use crate::smart::request::request_shape;

use super::super::explain::{Explained, ScopeFit};
use super::super::finding::Finding;

pub const RULE: &str = "enforcement_gap";

pub fn check(access: &AccessEvent, explained: &Explained<'_>) -> Option<Finding> {
    if !explained.is_enforcement_gap() {
        return None;
    }
    let ScopeFit::NotCovered {
        needed,
        requirement,
        coverage,
    } = &explained.scopes
    else {
        return None;
    };
    let token = explained.token?;
    let resource = requirement.resource.as_str();
    let interaction = explained.request.interaction.as_str();
    let client = &access.common.client_id;
    Some(Finding {
        client_id: client.clone(),
        rule: RULE,
        category: Category::ScopeCreep,
        severity: Severity::High,
        score: 85,
        time: access.common.time,
        span: None,
        summary: format!(
            "{client} was served a {interaction} on {resource} (HTTP {}) that its token's scopes do not allow: the server or gateway is not enforcing SMART scopes.",
            access.status
        ),
        observed: json!({
            "resource_type": resource,
            "interaction": interaction,
            "missing_permission": coverage.missing.letters(),
            "needed_context": needed.as_str(),
            "status": access.status,
        }),
        baseline: json!({ "granted_scopes": token.scopes.normalized() }),
        token_id: Some(token.token_id.clone()),
        example_request: Some(request_shape(access.method, &access.url)),
        references: &[NHI5_OVERPRIVILEGED, ATTACK_T1213, CSF_PR_AA_05],
    })
}
