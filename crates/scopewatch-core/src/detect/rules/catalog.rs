//! Every rule id the core can raise. Findings carry `&'static str` rule ids; a snapshot names
//! them as text and is mapped back through this list, so an unknown id in a state file is an
//! error rather than a silently different rule.

use serde::{Deserialize, Serialize};

use crate::alert::Category;

/// A rule's id: what findings, alerts, snapshots and rules files name it by. Declared in
/// catalog order (`CATALOG[id as usize]` is its entry); serialised as its snake_case name.
/// Ordered by name, as the text ids it replaces were (incident maps and their output order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleId {
    EnforcementGap,
    NewScope,
    WildcardBroadening,
    ContextEscalation,
    OfflineAccessNew,
    RefreshBroadening,
    RegistryScopeViolation,
    RegistryModeViolation,
    RegistryPurposeViolation,
    NewGrantType,
    NewPurpose,
    BulkExportNew,
    EverythingNew,
    PopulationAccessNew,
    PatientFanout,
    ResourceMixShift,
    OffHours,
    DormantAppActive,
    NewApp,
    HourlyBurst,
    TokenOutlier,
    SlowDrip,
    PagingSweep,
    ExpiredTokenUse,
    RevokedTokenUse,
    UnverifiedAccess,
}

impl RuleId {
    pub const fn as_str(self) -> &'static str {
        match self {
            RuleId::EnforcementGap => "enforcement_gap",
            RuleId::NewScope => "new_scope",
            RuleId::WildcardBroadening => "wildcard_broadening",
            RuleId::ContextEscalation => "context_escalation",
            RuleId::OfflineAccessNew => "offline_access_new",
            RuleId::RefreshBroadening => "refresh_broadening",
            RuleId::RegistryScopeViolation => "registry_scope_violation",
            RuleId::RegistryModeViolation => "registry_mode_violation",
            RuleId::RegistryPurposeViolation => "registry_purpose_violation",
            RuleId::NewGrantType => "new_grant_type",
            RuleId::NewPurpose => "new_purpose",
            RuleId::BulkExportNew => "bulk_export_new",
            RuleId::EverythingNew => "everything_new",
            RuleId::PopulationAccessNew => "population_access_new",
            RuleId::PatientFanout => "patient_fanout",
            RuleId::ResourceMixShift => "resource_mix_shift",
            RuleId::OffHours => "off_hours",
            RuleId::DormantAppActive => "dormant_app_active",
            RuleId::NewApp => "new_app",
            RuleId::HourlyBurst => "hourly_burst",
            RuleId::TokenOutlier => "token_outlier",
            RuleId::SlowDrip => "slow_drip",
            RuleId::PagingSweep => "paging_sweep",
            RuleId::ExpiredTokenUse => "expired_token_use",
            RuleId::RevokedTokenUse => "revoked_token_use",
            RuleId::UnverifiedAccess => "unverified_access",
        }
    }

    /// The catalog entry.
    pub fn info(self) -> &'static RuleInfo {
        &CATALOG[self as usize]
    }
}

impl std::fmt::Display for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Ord for RuleId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for RuleId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// What the catalog says about one rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RuleInfo {
    pub id: RuleId,
    pub category: Category,
    /// The severity the rule gives (some rules choose between two by what they saw).
    pub severity: &'static str,
    /// One sentence: when it fires.
    pub summary: &'static str,
    /// The thresholds a rules file may set.
    pub params: &'static [Param],
}

/// A rule's tunable threshold: a number with its default.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Param {
    pub name: &'static str,
    pub default: f64,
    /// The smallest value a rules file may set (below it a rule would fire on normal use:
    /// `dormant_days = 0` would report every event).
    pub min: f64,
    /// The largest (infinite but for rates: a smoothing weight above 1 overshoots).
    pub max: f64,
    pub summary: &'static str,
}

const fn rule(
    id: RuleId,
    category: Category,
    severity: &'static str,
    summary: &'static str,
) -> RuleInfo {
    RuleInfo {
        id,
        category,
        severity,
        summary,
        params: &[],
    }
}

const fn with_params(r: RuleInfo, params: &'static [Param]) -> RuleInfo {
    RuleInfo { params, ..r }
}

/// A count or a multiple of a baseline: at least 1.
const fn param(name: &'static str, default: f64, summary: &'static str) -> Param {
    Param {
        name,
        default,
        min: 1.0,
        max: f64::INFINITY,
        summary,
    }
}

/// A fraction or a number of standard deviations, with the smallest value that still makes
/// sense for it.
const fn fraction(name: &'static str, default: f64, min: f64, summary: &'static str) -> Param {
    Param {
        name,
        default,
        min,
        max: f64::INFINITY,
        summary,
    }
}

/// The weight of each new day in an exponentially weighted average: from 0.01 (a day barely
/// counts) to 1 (only the last day counts).
const fn rate(name: &'static str, default: f64, summary: &'static str) -> Param {
    Param {
        name,
        default,
        min: 0.01,
        max: 1.0,
        summary,
    }
}

pub const PATIENT_FANOUT_PARAMS: [Param; 3] = [
    param(
        "patient_bound_limit",
        3.0,
        "distinct patients a patient-bound token may touch",
    ),
    param(
        "p99_multiple",
        3.0,
        "other tokens: this many times the app's p99 of patients per token",
    ),
    param("min_limit", 20.0, "other tokens: never a limit below this"),
];

pub const TOKEN_OUTLIER_PARAMS: [Param; 5] = [
    param(
        "p99_multiple",
        5.0,
        "requests per token beyond this many times the app's p99",
    ),
    param(
        "min_requests",
        200.0,
        "and beyond at least this many requests",
    ),
    param(
        "retrieved_median_multiple",
        10.0,
        "or data retrieved (resources, else served requests) beyond this many times the typical token's",
    ),
    param(
        "retrieved_p99_multiple",
        3.0,
        "and beyond this many times the app's p99",
    ),
    param(
        "min_retrieved",
        200.0,
        "and beyond at least this much",
    ),
];

pub const HOURLY_BURST_PARAMS: [Param; 3] = [
    param(
        "min_multiple",
        4.0,
        "requests in the hour at least this many times the seasonal expectation",
    ),
    param(
        "min_sigmas",
        6.0,
        "and this many standard deviations above it",
    ),
    param("min_requests", 100.0, "and at least this many requests"),
];

pub const SLOW_DRIP_PARAMS: [Param; 11] = [
    param(
        "threshold",
        2.5,
        "CUSUM of the days' excess over the usual level, in the app's spreads (a day adds at most `max_step`, less `allowance`)",
    ),
    fraction(
        "allowance",
        0.5,
        0.0,
        "spreads a day's excess must pass before it adds to the CUSUM (at least 0)",
    ),
    fraction(
        "max_step",
        1.5,
        0.5,
        "most spreads one day counts: a drip is sustained, a spike of a day or two is `hourly_burst`'s (at least 0.5)",
    ),
    fraction(
        "min_spread",
        0.12,
        0.01,
        "smallest relative day-to-day spread assumed for an app (a few weeks of history underestimate it; at least 0.01)",
    ),
    param(
        "min_rise",
        1.2,
        "the day that raises the alert is at least this many times the usual level",
    ),
    param(
        "min_excess",
        50.0,
        "and at least this many requests above it",
    ),
    fraction(
        "session_dispersion",
        2.5,
        0.0,
        "requests come a handful per session, so a day's relative spread is at least this over √(expected requests) (√6 ≈ 2.5: six requests a session; at least 0)",
    ),
    rate(
        "spread_rate",
        0.1,
        "weight of each day in the app's spread estimate (slower than the level: a spread needs many days; 0.01 to 1)",
    ),
    fraction(
        "spread_clip",
        2.0,
        0.5,
        "one day widens the spread as if it were at most this many spreads from the usual level, so a drip's first day cannot hide the next (at least 0.5)",
    ),
    rate(
        "level_rate",
        0.2,
        "weight of each day in the app's usual level, the ratio of a day to its weekday expectation (0.01 to 1)",
    ),
    param(
        "level_step",
        1.1,
        "while a rise builds up, one day moves the usual level and the expectation by at most this factor (at least 1)",
    ),
];

pub const PAGING_SWEEP_PARAMS: [Param; 2] = [
    param(
        "p99_multiple",
        5.0,
        "large pages followed by one token beyond this many times the app's p99",
    ),
    param("min_pages", 20.0, "and beyond at least this many pages"),
];

pub const RESOURCE_MIX_SHIFT_PARAMS: [Param; 3] = [
    param(
        "min_baseline_requests",
        100.0,
        "requests in the app's established resource mix before a day is judged against it",
    ),
    param(
        "min_day_requests",
        20.0,
        "requests in the day before it is judged",
    ),
    param(
        "min_rare_requests",
        20.0,
        "requests that day of types under 1 % of the baseline (and at least 20 % of the day)",
    ),
];

pub const OFF_HOURS_PARAMS: [Param; 1] = [param(
    "min_requests",
    20.0,
    "requests in a normally silent hour before it counts",
)];

pub const DORMANT_PARAMS: [Param; 1] = [param(
    "dormant_days",
    30.0,
    "days of silence after which activity is reported",
)];

/// Every rule, once: `scopewatch rules` prints it, `--rules FILE` tunes it, `docs/rules.md`
/// is generated from it.
pub const CATALOG: [RuleInfo; 26] = [
    rule(
        RuleId::EnforcementGap,
        Category::ScopeCreep,
        "high",
        "An access served (2xx) that the token's granted scopes do not cover as SMART defines coverage.",
    ),
    rule(
        RuleId::NewScope,
        Category::ScopeCreep,
        "medium",
        "A grant adds permissions the app never held.",
    ),
    rule(
        RuleId::WildcardBroadening,
        Category::ScopeCreep,
        "high",
        "A grant adds a `*` resource scope.",
    ),
    rule(
        RuleId::ContextEscalation,
        Category::ScopeCreep,
        "high",
        "Scopes move up a context: patient, then user, then system.",
    ),
    rule(
        RuleId::OfflineAccessNew,
        Category::ScopeCreep,
        "medium",
        "`offline_access` granted for the first time.",
    ),
    rule(
        RuleId::RefreshBroadening,
        Category::ScopeCreep,
        "high",
        "A refresh grants more than any grant it could have refreshed.",
    ),
    rule(
        RuleId::RegistryScopeViolation,
        Category::ScopeCreep,
        "medium or high",
        "Granted scopes outside the app's registry entry (high when broad).",
    ),
    rule(
        RuleId::RegistryModeViolation,
        Category::ScopeCreep,
        "high",
        "A launch context or grant type the registry does not allow the app.",
    ),
    rule(
        RuleId::RegistryPurposeViolation,
        Category::PurposeDrift,
        "medium",
        "A purpose of use the registry does not allow the app.",
    ),
    rule(
        RuleId::NewGrantType,
        Category::PurposeDrift,
        "medium",
        "A grant type the app never used.",
    ),
    rule(
        RuleId::NewPurpose,
        Category::PurposeDrift,
        "medium",
        "A purpose of use the app never used.",
    ),
    rule(
        RuleId::BulkExportNew,
        Category::PurposeDrift,
        "high",
        "A Bulk Data `$export` by an app that never ran one.",
    ),
    rule(
        RuleId::EverythingNew,
        Category::PurposeDrift,
        "medium",
        "`$everything` by an app that never ran it.",
    ),
    rule(
        RuleId::PopulationAccessNew,
        Category::PurposeDrift,
        "medium",
        "A search across all patients by an app that worked one patient at a time.",
    ),
    with_params(
        rule(
            RuleId::PatientFanout,
            Category::PurposeDrift,
            "medium or high",
            "One token touches many distinct patients (high for a patient-bound token).",
        ),
        &PATIENT_FANOUT_PARAMS,
    ),
    with_params(
        rule(
            RuleId::ResourceMixShift,
            Category::PurposeDrift,
            "medium or high",
            "A day's resource-type mix diverges from the baseline (high for notes and billing types).",
        ),
        &RESOURCE_MIX_SHIFT_PARAMS,
    ),
    with_params(
        rule(
            RuleId::OffHours,
            Category::PurposeDrift,
            "medium",
            "Many requests in an hour where the app is normally silent.",
        ),
        &OFF_HOURS_PARAMS,
    ),
    with_params(
        rule(
            RuleId::DormantAppActive,
            Category::PurposeDrift,
            "medium",
            "An app acts again after 30 days of silence.",
        ),
        &DORMANT_PARAMS,
    ),
    rule(
        RuleId::NewApp,
        Category::PurposeDrift,
        "info",
        "An app's first event.",
    ),
    with_params(
        rule(
            RuleId::HourlyBurst,
            Category::DataVolume,
            "medium or high",
            "Requests in an hour far above the seasonal expectation.",
        ),
        &HOURLY_BURST_PARAMS,
    ),
    with_params(
        rule(
            RuleId::TokenOutlier,
            Category::DataVolume,
            "medium",
            "One token makes far more requests, or retrieves far more data, than the app's tokens do.",
        ),
        &TOKEN_OUTLIER_PARAMS,
    ),
    with_params(
        rule(
            RuleId::SlowDrip,
            Category::DataVolume,
            "medium",
            "Daily totals sustained above the app's usual level for days.",
        ),
        &SLOW_DRIP_PARAMS,
    ),
    with_params(
        rule(
            RuleId::PagingSweep,
            Category::DataVolume,
            "medium",
            "One token follows far more large pages than usual.",
        ),
        &PAGING_SWEEP_PARAMS,
    ),
    rule(
        RuleId::ExpiredTokenUse,
        Category::ScopeCreep,
        "medium",
        "An access served with a token past its lifetime.",
    ),
    rule(
        RuleId::RevokedTokenUse,
        Category::ScopeCreep,
        "high",
        "An access served with a token after its revocation.",
    ),
    rule(
        RuleId::UnverifiedAccess,
        Category::ScopeCreep,
        "low",
        "An access served that the log cannot decide (a constrained scope, `_include`, a Bulk `_type`).",
    ),
];

/// Every rule id, in catalog order.
pub const RULE_IDS: [&str; CATALOG.len()] = {
    let mut ids = [""; CATALOG.len()];
    let mut i = 0;
    while i < CATALOG.len() {
        ids[i] = CATALOG[i].id.as_str();
        i += 1;
    }
    ids
};

/// The rule a snapshot, a rules file or a silence names.
pub fn rule_id(name: &str) -> Option<RuleId> {
    CATALOG.iter().map(|r| r.id).find(|id| id.as_str() == name)
}

/// The catalog entry of a rule named by text.
pub fn info(name: &str) -> Option<&'static RuleInfo> {
    rule_id(name).map(RuleId::info)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule table of docs/detection.md and this list name the same rules (apart from
    /// rules it groups in one row, which are listed there too).
    #[test]
    fn the_detection_doc_documents_every_rule() {
        let doc = include_str!("../../../../../docs/detection.md");
        for id in RULE_IDS {
            assert!(
                doc.contains(&format!("`{id}`")),
                "docs/detection.md does not mention `{id}`"
            );
        }
    }

    /// README's tour counts the rules; the count follows the catalog.
    #[test]
    fn the_readme_counts_the_rules() {
        let readme = include_str!("../../../../../README.md");
        let count = format!("{} rules in three categories", RULE_IDS.len());
        assert!(readme.contains(&count), "README should say \"{count}\"");
    }

    /// The catalog holds each id once, at its own index, and an id's text is its serde name.
    #[test]
    fn every_rule_id_is_catalogued_at_its_index() {
        for (i, info) in CATALOG.iter().enumerate() {
            assert_eq!(info.id as usize, i, "{} out of place", info.id);
            let json = serde_json::to_string(&info.id).expect("serialise");
            assert_eq!(json, format!("\"{}\"", info.id.as_str()));
            assert_eq!(rule_id(info.id.as_str()), Some(info.id));
        }
        assert_eq!(rule_id("no_such_rule"), None);
    }
}
