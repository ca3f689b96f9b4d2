//! `enforcement_gap` (scope_creep, high): an access answered 2xx whose resource type and
//! interaction the token's granted scopes do not cover — the "gateway flattened the scopes"
//! failure. The data was served although the authorization server never granted it.

use serde_json::json;

use crate::baseline::AppProfile;
use crate::event::{AccessEvent, Timestamp, MICROS_PER_SECOND};
use crate::smart::request::request_shape;
use crate::smart::scope::{Context, Perms, ResourceTarget, ScopeSet};

use super::super::explain::{Explained, LaunchFit, ScopeFit, Unverified};
use super::super::finding::Finding;
use super::super::tokens::TokenInfo;
use super::catalog::RuleId;
use super::hooks::AccessContext;

pub const RULE: RuleId = RuleId::EnforcementGap;

/// `enforcement_gap`: see the module's doc.
pub fn gap(context: &mut AccessContext<'_>, findings: &mut Vec<Finding>) {
    findings.extend(gap_finding(context.access, context.explained));
}

fn gap_finding(access: &AccessEvent, explained: &Explained<'_>) -> Option<Finding> {
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
    if explained.token_revoked {
        // Reported once, as use of a revoked token.
        return None;
    }
    let resource = requirement.resource.as_str();
    let interaction = explained.request.interaction.as_str();
    let client = &access.common.client_id;
    Some(Finding {
        cause: gap_cause(needed.as_str(), resource, interaction, explained.launch),
        summary: gap_summary(
            client,
            interaction,
            resource,
            access.status,
            explained.launch,
        ),
        observed: json!({
            "resource_type": resource,
            "interaction": interaction,
            "missing_permission": coverage.missing.letters(),
            "needed_context": needed.as_str(),
            "launch_context": launch_fit_name(explained.launch),
            "status": access.status,
        }),
        baseline: gap_baseline(token, explained.launch),
        token_id: Some(token.token_id.clone()),
        example_request: Some(request_shape(access.method, &access.url)),
        ..Finding::new(RULE, client.clone(), access.common.time)
    })
}

pub const EXPIRED_RULE: RuleId = RuleId::ExpiredTokenUse;
/// Clock skew between the authorization server and the FHIR server is tolerated up to this.
const EXPIRY_SKEW_SECONDS: i64 = 60;

/// `expired_token_use` (scope_creep, medium): an access served with a token more than a minute
/// past its `expires_in` — the server accepted a token the authorization server had already let
/// lapse. Seen while the token cache holds the token (its expiry plus the grace period), and
/// after it left, while it is remembered as lapsed (a day by default).
pub fn expired(context: &mut AccessContext<'_>, findings: &mut Vec<Finding>) {
    findings.extend(expired_finding(
        context.access,
        context.explained,
        context.lapsed_expiry,
    ));
}

fn expired_finding(
    access: &AccessEvent,
    explained: &Explained<'_>,
    lapsed_expiry: Option<Timestamp>,
) -> Option<Finding> {
    let (expires_at, token_id) = match explained.token {
        // Nobody logged or configured how long it was valid.
        Some(token) if token.lifetime_assumed => return None,
        Some(token) => (token.expires_at, token.token_id.clone()),
        None => (lapsed_expiry?, access.token_id.clone()?),
    };
    let late_by = access.common.time.0 - expires_at.0;
    if !explained.served || late_by <= EXPIRY_SKEW_SECONDS * MICROS_PER_SECOND {
        return None;
    }
    let client = &access.common.client_id;
    let late_seconds = late_by / MICROS_PER_SECOND;
    Some(Finding {
        summary: format!(
            "{client} was served (HTTP {}) with a token that had expired {late_seconds} s earlier: the server is not enforcing token lifetimes.",
            access.status
        ),
        observed: json!({ "seconds_past_expiry": late_seconds, "status": access.status }),
        baseline: json!({ "expires_at": expires_at.to_rfc3339(), "allowed_skew_seconds": EXPIRY_SKEW_SECONDS }),
        token_id: Some(token_id),
        example_request: Some(request_shape(access.method, &access.url)),
        ..Finding::new(EXPIRED_RULE, client.clone(), access.common.time)
    })
}

/// What one gap incident is about: the context needed, type and interaction; or, when another
/// patient was reached, only that. A cross-patient read is its own incident, never folded into a
/// recurring scope gap of the same type, and one incident whatever types it reaches: the cause
/// is the server not holding the app's tokens to their patient.
fn gap_cause(needed: &str, resource: &str, interaction: &str, launch: LaunchFit) -> String {
    match launch {
        LaunchFit::OtherPatient => format!("{needed} other-patient"),
        _ => format!("{needed}/{resource} {interaction}"),
    }
}

fn gap_summary(
    client: &str,
    interaction: &str,
    resource: &str,
    status: u16,
    launch: LaunchFit,
) -> String {
    let why = match launch {
        LaunchFit::OtherPatient => "reaching patients other than its token's launch patient: the server or gateway is not holding patient-context tokens to their patient",
        _ => "that its token's scopes do not allow: the server or gateway is not enforcing SMART scopes",
    };
    format!("{client} was served a {interaction} on {resource} (HTTP {status}) {why}.")
}

/// The grant, and where the launch patient came from when the token log did not record one.
fn gap_baseline(token: &TokenInfo, launch: LaunchFit) -> serde_json::Value {
    let mut baseline = json!({ "granted_scopes": token.scopes.normalized() });
    if launch == LaunchFit::OtherPatient && token.patient.is_none() {
        baseline["launch_patient"] = json!(
            "presumed: the first patient this token's requests named (its token log records no launch patient)"
        );
    }
    baseline
}

/// How the request stood to the token's launch patient, PHI-free.
fn launch_fit_name(launch: LaunchFit) -> &'static str {
    match launch {
        LaunchFit::NoLaunchPatient => "no-launch-patient",
        LaunchFit::InLaunchPatient => "launch-patient",
        LaunchFit::OtherPatient => "other-patient",
        LaunchFit::AllPatients => "all-patients",
        LaunchFit::NotPatientData => "not-patient-data",
        LaunchFit::UnrecordedLaunchPatient => "unrecorded-launch-patient",
    }
}

pub const REVOKED_RULE: RuleId = RuleId::RevokedTokenUse;

/// `revoked_token_use` (scope_creep, high): an access served with a token after its revocation
/// was logged. RFC 7009 §2: after a revocation request the token is invalid and the resource
/// server must not honour it; a 2xx means revocation is not enforced (often a cached
/// introspection result, or a self-contained JWT the server never checks).
pub fn revoked(context: &mut AccessContext<'_>, findings: &mut Vec<Finding>) {
    findings.extend(revoked_finding(context.access, context.explained));
}

fn revoked_finding(access: &AccessEvent, explained: &Explained<'_>) -> Option<Finding> {
    let token = explained.token?;
    let revoked_at = token.revoked_at?;
    if !explained.served || !explained.token_revoked {
        return None;
    }
    let client = &access.common.client_id;
    let after_seconds = (access.common.time.0 - revoked_at.0) / MICROS_PER_SECOND;
    Some(Finding {
        summary: format!(
            "{client} was served (HTTP {}) with a token revoked {after_seconds} s earlier: the server still honours revoked tokens.",
            access.status
        ),
        observed: json!({ "seconds_after_revocation": after_seconds, "status": access.status }),
        baseline: json!({ "revoked_at": revoked_at.to_rfc3339() }),
        token_id: Some(token.token_id.clone()),
        example_request: Some(request_shape(access.method, &access.url)),
        ..Finding::new(REVOKED_RULE, client.clone(), access.common.time)
    })
}

pub const UNVERIFIED_RULE: RuleId = RuleId::UnverifiedAccess;

/// `unverified_access` (scope_creep, low): served, and whether the token allowed it cannot be
/// decided from the log — a read by id under a query-constrained scope (SMART 2.x granular
/// scopes), `_include`/`_revinclude` or a Bulk Data `_type` naming types the token cannot read
/// (a well-behaved server filters them out). Worth a look, never a certain gap.
pub fn unverified(context: &mut AccessContext<'_>, findings: &mut Vec<Finding>) {
    let Some(finding) = unverified_finding(context.access, context.explained) else {
        return;
    };
    let reason = match context.explained.scopes {
        ScopeFit::Unverified { reason, .. } => Some(reason),
        _ => None,
    };
    let routine = match reason {
        Some(Unverified::IncludedType) => narrowed_include(context.explained, context.profile),
        // The attachment of a note or report the token may read: how such content is served
        // (US Core DocumentReference `content.attachment.url`), recorded at info.
        Some(Unverified::BinaryAttachment) => true,
        _ => false,
    };
    findings.push(finding.marked_if(routine));
}

/// An `_include` whose types this token cannot read but the app's other grants can: this
/// token's grant was narrowed (SMART App Launch 2.x: the granted `scope` "can be different from
/// the scopes requested", a patient may decline some), the app's usual query still asks for
/// them, and the server is to leave them out. Info: the app reaches for nothing new. Asked
/// only of an access unverified for its includes.
fn narrowed_include(explained: &Explained<'_>, profile: &AppProfile) -> bool {
    let request = &explained.request;
    let (false, Some(token)) = (request.includes_any, explained.token) else {
        return false;
    };
    let unreadable: Vec<ResourceTarget> = request
        .included
        .iter()
        .map(|t| ResourceTarget::Type((*t).to_string()))
        .filter(|target| !readable(&token.scopes, target))
        .collect();
    if unreadable.is_empty() {
        return false;
    }
    let held = ScopeSet::parse(
        &profile
            .scopes
            .entries
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" "),
    );
    unreadable.iter().all(|target| readable(&held, target))
}

/// `scopes` let some context read every resource of `target`.
fn readable(scopes: &ScopeSet, target: &ResourceTarget) -> bool {
    [Context::Patient, Context::User, Context::System]
        .into_iter()
        .any(|context| {
            let c = scopes.coverage_for(context, target, Perms::READ);
            c.is_covered() && !c.constrained
        })
}

fn unverified_finding(access: &AccessEvent, explained: &Explained<'_>) -> Option<Finding> {
    let ScopeFit::Unverified {
        reason,
        requirement,
    } = &explained.scopes
    else {
        return None;
    };
    let token = explained.token?;
    if !explained.served || explained.token_revoked {
        return None;
    }
    let client = &access.common.client_id;
    let resource = requirement.resource.as_str();
    let interaction = explained.request.interaction.as_str();
    let what = match reason {
        Unverified::ConstrainedScope => {
            "only a query-constrained scope covers it and the request shows no such query"
        }
        Unverified::IncludedType => "it includes resource types the token cannot read",
        Unverified::ExportType => "its _type names resource types the token cannot read",
        Unverified::AllTypes => "it searches all resource types and the token may read only some",
        Unverified::BinaryAttachment => {
            "it reads a Binary without a Binary scope, which the server may authorise as the document or report it is an attachment of"
        }
    };
    Some(Finding {
        cause: format!("{} {resource} {interaction}", reason.as_str()),
        summary: format!(
            "{client} was served a {interaction} on {resource} (HTTP {}) that the log cannot verify: {what}.",
            access.status
        ),
        observed: json!({
            "resource_type": resource,
            "interaction": interaction,
            "reason": reason.as_str(),
            "included_types": explained.request.included,
            "export_types": explained.request.types,
            "status": access.status,
        }),
        baseline: json!({ "granted_scopes": token.scopes.normalized() }),
        token_id: Some(token.token_id.clone()),
        example_request: Some(request_shape(access.method, &access.url)),
        ..Finding::new(UNVERIFIED_RULE, client.clone(), access.common.time)
    })
}
