//! Every rule id the core can raise. Findings carry `&'static str` rule ids; a snapshot names
//! them as text and is mapped back through this list, so an unknown id in a state file is an
//! error rather than a silently different rule.

pub const RULE_IDS: [&str; 26] = [
    "enforcement_gap",
    "new_scope",
    "wildcard_broadening",
    "context_escalation",
    "offline_access_new",
    "refresh_broadening",
    "registry_scope_violation",
    "registry_mode_violation",
    "registry_purpose_violation",
    "new_grant_type",
    "new_purpose",
    "bulk_export_new",
    "everything_new",
    "population_access_new",
    "patient_fanout",
    "resource_mix_shift",
    "off_hours",
    "dormant_app_active",
    "new_app",
    "hourly_burst",
    "token_outlier",
    "slow_drip",
    "paging_sweep",
    "expired_token_use",
    "revoked_token_use",
    "unverified_access",
];

/// The static id for a rule named in a snapshot.
pub fn rule_id(name: &str) -> Option<&'static str> {
    RULE_IDS.iter().copied().find(|r| *r == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's rule table and this list name the same rules (apart from rules the README
    /// groups in one row, which are listed there too).
    #[test]
    fn readme_documents_every_rule() {
        let readme = include_str!("../../../README.md");
        for id in RULE_IDS {
            assert!(
                readme.contains(&format!("`{id}`")),
                "README's rule table does not mention `{id}`"
            );
        }
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
