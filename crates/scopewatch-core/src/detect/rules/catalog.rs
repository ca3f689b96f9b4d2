//! Every rule id the core can raise. Findings carry `&'static str` rule ids; a snapshot names
//! them as text and is mapped back through this list, so an unknown id in a state file is an
//! error rather than a silently different rule.

use crate::alert::Category;

/// What the catalog says about one rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RuleInfo {
    pub id: &'static str,
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
    pub summary: &'static str,
}

const fn rule(
    id: &'static str,
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

/// Every threshold declared so far is a count or a multiple of a baseline: at least 1.
const fn param(name: &'static str, default: f64, summary: &'static str) -> Param {
    Param {
        name,
        default,
        min: 1.0,
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

pub const TOKEN_OUTLIER_PARAMS: [Param; 2] = [
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

pub const SLOW_DRIP_PARAMS: [Param; 3] = [
    param(
        "threshold",
        2.5,
        "CUSUM of the days' excess over the usual level, in the app's spreads (a day adds at most 1.5, less 0.5)",
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
        "enforcement_gap",
        Category::ScopeCreep,
        "high",
        "An access served (2xx) that the token's granted scopes do not cover as SMART defines coverage.",
    ),
    rule(
        "new_scope",
        Category::ScopeCreep,
        "medium",
        "A grant adds permissions the app never held.",
    ),
    rule(
        "wildcard_broadening",
        Category::ScopeCreep,
        "high",
        "A grant adds a `*` resource scope.",
    ),
    rule(
        "context_escalation",
        Category::ScopeCreep,
        "high",
        "Scopes move up a context: patient, then user, then system.",
    ),
    rule(
        "offline_access_new",
        Category::ScopeCreep,
        "medium",
        "`offline_access` granted for the first time.",
    ),
    rule(
        "refresh_broadening",
        Category::ScopeCreep,
        "high",
        "A refresh grants more than any grant it could have refreshed.",
    ),
    rule(
        "registry_scope_violation",
        Category::ScopeCreep,
        "medium or high",
        "Granted scopes outside the app's registry entry (high when broad).",
    ),
    rule(
        "registry_mode_violation",
        Category::ScopeCreep,
        "high",
        "A launch context or grant type the registry does not allow the app.",
    ),
    rule(
        "registry_purpose_violation",
        Category::PurposeDrift,
        "medium",
        "A purpose of use the registry does not allow the app.",
    ),
    rule(
        "new_grant_type",
        Category::PurposeDrift,
        "medium",
        "A grant type the app never used.",
    ),
    rule(
        "new_purpose",
        Category::PurposeDrift,
        "medium",
        "A purpose of use the app never used.",
    ),
    rule(
        "bulk_export_new",
        Category::PurposeDrift,
        "high",
        "A Bulk Data `$export` by an app that never ran one.",
    ),
    rule(
        "everything_new",
        Category::PurposeDrift,
        "medium",
        "`$everything` by an app that never ran it.",
    ),
    rule(
        "population_access_new",
        Category::PurposeDrift,
        "medium",
        "A search across all patients by an app that worked one patient at a time.",
    ),
    with_params(
        rule(
            "patient_fanout",
            Category::PurposeDrift,
            "medium or high",
            "One token touches many distinct patients (high for a patient-bound token).",
        ),
        &PATIENT_FANOUT_PARAMS,
    ),
    rule(
        "resource_mix_shift",
        Category::PurposeDrift,
        "medium or high",
        "A day's resource-type mix diverges from the baseline (high for notes and billing types).",
    ),
    with_params(
        rule(
            "off_hours",
            Category::PurposeDrift,
            "medium",
            "Many requests in an hour where the app is normally silent.",
        ),
        &OFF_HOURS_PARAMS,
    ),
    with_params(
        rule(
            "dormant_app_active",
            Category::PurposeDrift,
            "medium",
            "An app acts again after 30 days of silence.",
        ),
        &DORMANT_PARAMS,
    ),
    rule(
        "new_app",
        Category::PurposeDrift,
        "info",
        "An app's first event.",
    ),
    with_params(
        rule(
            "hourly_burst",
            Category::DataVolume,
            "medium or high",
            "Requests in an hour far above the seasonal expectation.",
        ),
        &HOURLY_BURST_PARAMS,
    ),
    with_params(
        rule(
            "token_outlier",
            Category::DataVolume,
            "medium",
            "One token makes far more requests, or retrieves far more data, than the app's tokens do.",
        ),
        &TOKEN_OUTLIER_PARAMS,
    ),
    with_params(
        rule(
            "slow_drip",
            Category::DataVolume,
            "medium",
            "Daily totals sustained above the app's usual level for days.",
        ),
        &SLOW_DRIP_PARAMS,
    ),
    rule(
        "paging_sweep",
        Category::DataVolume,
        "medium",
        "One token follows far more large pages than usual.",
    ),
    rule(
        "expired_token_use",
        Category::ScopeCreep,
        "medium",
        "An access served with a token past its lifetime.",
    ),
    rule(
        "revoked_token_use",
        Category::ScopeCreep,
        "high",
        "An access served with a token after its revocation.",
    ),
    rule(
        "unverified_access",
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
        ids[i] = CATALOG[i].id;
        i += 1;
    }
    ids
};

/// The static id for a rule named in a snapshot or a rules file.
pub fn rule_id(name: &str) -> Option<&'static str> {
    RULE_IDS.iter().copied().find(|r| *r == name)
}

/// The catalog entry of a rule id.
pub fn info(id: &str) -> Option<&'static RuleInfo> {
    CATALOG.iter().find(|r| r.id == id)
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

    #[test]
    fn every_rule_id_in_the_sources_is_catalogued() {
        // Rule ids appear in the sources as `id: "…"` / `rule: "…"` / quoted in rule tuples.
        let sources = [
            include_str!("drift.rs"),
            include_str!("enforcement.rs"),
            include_str!("novelty.rs"),
            include_str!("registry.rs"),
            include_str!("volume.rs"),
        ];
        for src in sources {
            for line in src.lines() {
                let t = line.trim();
                let quoted = t
                    .strip_prefix("id: \"")
                    .or_else(|| t.strip_prefix("rule: \""))
                    .or_else(|| t.strip_prefix("pub const RULE: &str = \""))
                    .or_else(|| t.strip_prefix("pub const SCOPE_RULE: &str = \""))
                    .or_else(|| t.strip_prefix("pub const MODE_RULE: &str = \""))
                    .or_else(|| t.strip_prefix("pub const PURPOSE_RULE: &str = \""));
                let quoted =
                    quoted.or_else(|| t.split_once("fired.insert(\"").map(|(_, rest)| rest));
                if let Some(rest) = quoted {
                    let id = rest.split('"').next().unwrap_or_default();
                    assert!(rule_id(id).is_some(), "rule `{id}` missing from RULE_IDS");
                }
            }
        }
        assert_eq!(rule_id("no_such_rule"), None);
    }
}
