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
//! min_requests = 50      # a threshold the catalog declares for the rule
//! ```
//!
//! A disabled rule raises no alert, and an overridden severity or score replaces the rule's
//! own. Rules still run (their baselines and state evolve as before), so turning a rule back
//! on resumes it where it would have been. An unknown rule or key stops the run, naming the
//! file and the key.

use std::collections::BTreeMap;
use std::path::Path;

use super::catalog::{info, rule_id, Param, RuleId, CATALOG};
use crate::alert::Severity;
use crate::detect::finding::Finding;

/// The settings of one rule; what is absent keeps the catalog's behaviour.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleOverride {
    pub enabled: Option<bool>,
    pub severity: Option<Severity>,
    pub score: Option<u8>,
}

/// Every rule's settings (rules not named keep their defaults).
#[derive(Clone, Debug, PartialEq)]
pub struct RuleSettings {
    overrides: BTreeMap<RuleId, RuleOverride>,
    /// Every declared threshold, resolved once (the file's value, else the catalog's
    /// default), indexed by rule in catalog order: rules read them per access, so the lookup
    /// is an index and a scan of a rule's few names (a map keyed by name compared strings
    /// dozens of times per event).
    thresholds: Vec<Vec<(&'static str, f64)>>,
}

impl Default for RuleSettings {
    fn default() -> Self {
        let thresholds = CATALOG
            .iter()
            .map(|r| r.params.iter().map(|p| (p.name, p.default)).collect())
            .collect();
        RuleSettings {
            overrides: BTreeMap::new(),
            thresholds,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("rules {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("rules {path}: unknown rule `{rule}` (`scopewatch rules` lists them)")]
    UnknownRule { path: String, rule: String },
    #[error("rules {path}: [{rule}] {key}: {reason}")]
    Key {
        path: String,
        rule: String,
        key: String,
        reason: String,
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
        let tables: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| RulesError::Read {
                path: path.to_string(),
                reason: e.to_string(),
            })?;
        let mut settings = RuleSettings::default();
        for (name, value) in tables {
            let Some(info) = info(&name) else {
                return Err(RulesError::UnknownRule {
                    path: path.to_string(),
                    rule: name,
                });
            };
            let key_error = |key: &str, reason: String| RulesError::Key {
                path: path.to_string(),
                rule: name.clone(),
                key: key.to_string(),
                reason,
            };
            let toml::Value::Table(keys) = value else {
                return Err(key_error("", "expected a table of settings".into()));
            };
            let mut o = RuleOverride::default();
            for (key, v) in keys {
                match key.as_str() {
                    "enabled" => {
                        o.enabled = Some(
                            v.as_bool()
                                .ok_or_else(|| key_error(&key, "expected true or false".into()))?,
                        );
                    }
                    "severity" => {
                        let text = v.as_str().unwrap_or_default();
                        o.severity = Some(Severity::parse(text).ok_or_else(|| {
                            key_error(
                                &key,
                                format!("`{v}`: expected info, low, medium, high or critical"),
                            )
                        })?);
                    }
                    "score" => {
                        let score = v
                            .as_integer()
                            .and_then(|n| u8::try_from(n).ok())
                            .filter(|n| *n <= 100)
                            .ok_or_else(|| {
                                key_error(&key, format!("`{v}`: scores run from 0 to 100"))
                            })?;
                        o.score = Some(score);
                    }
                    other => {
                        let Some(param) = info.params.iter().find(|p| p.name == other) else {
                            let known: Vec<&str> = ["enabled", "severity", "score"]
                                .into_iter()
                                .chain(info.params.iter().map(|p| p.name))
                                .collect();
                            return Err(key_error(
                                other,
                                format!("unknown key (known: {})", known.join(", ")),
                            ));
                        };
                        let n = v
                            .as_float()
                            .or_else(|| v.as_integer().map(|i| i as f64))
                            .filter(|n| n.is_finite() && (param.min..=param.max).contains(n))
                            .ok_or_else(|| key_error(other, expected_number(&v, param)))?;
                        settings.set_param(info.id, param.name, n);
                    }
                }
            }
            settings.overrides.insert(info.id, o);
        }
        Ok(settings)
    }

    /// A rule's threshold: the file's value, else the catalog's default (0 for a name the
    /// catalog does not declare).
    pub fn param(&self, rule: RuleId, name: &'static str) -> f64 {
        self.thresholds[rule as usize]
            .iter()
            .find(|(declared, _)| *declared == name)
            .map_or(0.0, |(_, value)| *value)
    }

    fn set_param(&mut self, rule: RuleId, name: &'static str, value: f64) {
        let declared = self.thresholds[rule as usize]
            .iter_mut()
            .find(|(declared, _)| *declared == name);
        if let Some((_, v)) = declared {
            *v = value;
        }
    }

    pub fn get(&self, rule: &str) -> Option<&RuleOverride> {
        self.overrides.get(&rule_id(rule)?)
    }

    pub fn enabled(&self, rule: &str) -> bool {
        self.get(rule).and_then(|o| o.enabled).unwrap_or(true)
    }

    /// The finding as the settings want it, or None when its rule is disabled.
    pub fn apply(&self, mut finding: Finding) -> Option<Finding> {
        let Some(o) = self.overrides.get(&finding.rule) else {
            return Some(finding);
        };
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

/// Why a parameter's value was refused, with the range it must be in.
fn expected_number(value: &toml::Value, param: &Param) -> String {
    if param.max.is_finite() {
        format!(
            "`{value}`: expected a number from {} to {}",
            param.min, param.max
        )
    } else {
        format!("`{value}`: expected a number ≥ {}", param.min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_above_one_is_refused_naming_its_range() {
        let e = RuleSettings::parse("[slow_drip]\nlevel_rate = 1.5\n", "r.toml")
            .expect_err("refused")
            .to_string();
        assert!(
            e.contains("level_rate") && e.contains("from 0.01 to 1"),
            "{e}"
        );
        let s =
            RuleSettings::parse("[slow_drip]\nlevel_rate = 1\n", "r.toml").expect("1 is a rate");
        assert_eq!(s.param(RuleId::SlowDrip, "level_rate"), 1.0);
    }

    #[test]
    fn tables_set_enabled_severity_and_score() {
        let s = RuleSettings::parse(
            "[unverified_access]\nenabled = false\n[off_hours]\nseverity = \"low\"\nscore = 30\n",
            "r.toml",
        )
        .expect("parse");
        assert!(!s.enabled("unverified_access"));
        assert!(s.enabled("enforcement_gap"));
        let o = s.get("off_hours").expect("off_hours");
        assert_eq!((o.severity, o.score), (Some(Severity::Low), Some(30)));
        assert_eq!(
            s.param(RuleId::OffHours, "min_requests"),
            5.0,
            "the catalog's default"
        );
        let s = RuleSettings::parse("[off_hours]\nmin_requests = 50\n", "r.toml").expect("parse");
        assert_eq!(s.param(RuleId::OffHours, "min_requests"), 50.0);
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
        let e = err("[off_hours]\nmin_request = 5\n");
        assert!(
            e.contains("min_request")
                && e.contains("known: enabled, severity, score, min_requests"),
            "{e}"
        );
        let e = err("[off_hours]\nmin_requests = -1\n");
        assert!(e.contains("≥ 1"), "{e}");
        let e = err("[dormant_app_active]\ndormant_days = 0\n");
        assert!(e.contains("dormant_days") && e.contains("≥ 1"), "{e}");
    }
}
