//! `--rules FILE`: per-rule settings a SOC changes without recompiling. One TOML table per
//! rule id:
//!
//! ```toml
//! [unverified_access]
//! enabled = false
//!
//! [off_hours]
//! severity = "low"
//! score = 30
//! ```
//!
//! A disabled rule raises no alert, and an overridden severity or score replaces the rule's
//! own. Rules still run (their baselines and state evolve as before), so turning a rule back
//! on resumes it where it would have been. An unknown rule or key stops the run, naming the
//! file and the key.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::catalog::rule_id;
use crate::alert::Severity;
use crate::detect::finding::Finding;

/// The settings of one rule; what is absent keeps the catalog's behaviour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleOverride {
    pub enabled: Option<bool>,
    pub severity: Option<Severity>,
    pub score: Option<u8>,
}

/// Every rule's settings (rules not named keep their defaults).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleSettings {
    overrides: BTreeMap<&'static str, RuleOverride>,
}

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("rules {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("rules {path}: unknown rule `{rule}` (`scopewatch rules` lists them)")]
    UnknownRule { path: String, rule: String },
    #[error("rules {path}: [{rule}] score = {score}: scores run from 0 to 100")]
    Score {
        path: String,
        rule: String,
        score: u8,
    },
}

impl RuleSettings {
    pub fn load(path: &Path) -> Result<RuleSettings, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|e| RulesError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        RuleSettings::parse(&text, &path.display().to_string())
    }

    /// Parses a rules file's text; `path` names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<RuleSettings, RulesError> {
        let tables: BTreeMap<String, RuleOverride> =
            toml::from_str(text).map_err(|e| RulesError::Read {
                path: path.to_string(),
                reason: e.to_string(),
            })?;
        let mut overrides = BTreeMap::new();
        for (name, o) in tables {
            let Some(id) = rule_id(&name) else {
                return Err(RulesError::UnknownRule {
                    path: path.to_string(),
                    rule: name,
                });
            };
            if let Some(score) = o.score.filter(|s| *s > 100) {
                return Err(RulesError::Score {
                    path: path.to_string(),
                    rule: name,
                    score,
                });
            }
            overrides.insert(id, o);
        }
        Ok(RuleSettings { overrides })
    }

    pub fn get(&self, rule: &str) -> RuleOverride {
        self.overrides.get(rule).copied().unwrap_or_default()
    }

    pub fn enabled(&self, rule: &str) -> bool {
        self.get(rule).enabled.unwrap_or(true)
    }

    /// The finding as the settings want it, or None when its rule is disabled.
    pub fn apply(&self, mut finding: Finding) -> Option<Finding> {
        let o = self.get(finding.rule);
        if o.enabled == Some(false) {
            return None;
        }
        if let Some(severity) = o.severity {
            finding.severity = severity;
        }
        if let Some(score) = o.score {
            finding.score = score;
        }
        Some(finding)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_set_enabled_severity_and_score() {
        let s = RuleSettings::parse(
            "[unverified_access]\nenabled = false\n[off_hours]\nseverity = \"low\"\nscore = 30\n",
            "r.toml",
        )
        .expect("parse");
        assert!(!s.enabled("unverified_access"));
        assert!(s.enabled("enforcement_gap"));
        assert_eq!(s.get("off_hours").severity, Some(Severity::Low));
        assert_eq!(s.get("off_hours").score, Some(30));
    }

    #[test]
    fn unknown_rules_keys_and_values_name_the_file_and_the_key() {
        let err = |text: &str| {
            RuleSettings::parse(text, "r.toml")
                .expect_err("refused")
                .to_string()
        };
        let e = err("[enforcement_gapp]\nenabled = false\n");
        assert!(
            e.contains("r.toml") && e.contains("enforcement_gapp"),
            "{e}"
        );
        let e = err("[off_hours]\nenabld = false\n");
        assert!(e.contains("r.toml") && e.contains("enabld"), "{e}");
        let e = err("[off_hours]\nseverity = \"urgent\"\n");
        assert!(e.contains("urgent"), "{e}");
        let e = err("[off_hours]\nscore = 101\n");
        assert!(e.contains("0 to 100"), "{e}");
    }
}
