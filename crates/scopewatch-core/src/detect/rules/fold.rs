//! One act, one incident. Several rules can see the same request from different sides; a SOC
//! works one incident per act, so after the rules have judged a request its findings are
//! folded: a population search new to its app (`population_access_new`, marked when the token
//! was bound to one patient and the answer reached others) is not reported again as an
//! `enforcement_gap` for reaching other patients.
//!
//! A token's volume is not folded into the act that caused it: Bulk Data exports and
//! population searches that also take ten times a usual token's data are two findings (what
//! was reached, and how much): a token taking ten times its app's usual data is an incident
//! of its own.

use super::super::finding::Finding;
use super::catalog::RuleId;
use super::settings::RuleSettings;

/// Folds the findings of one request, from `from` on. Only into a finding that will be
/// reported: with `population_access_new` disabled (`--rules`), the gap stands.
pub fn one_incident_per_act(findings: &mut Vec<Finding>, from: usize, settings: &RuleSettings) {
    let Some(new) = findings.get(from..) else {
        return;
    };
    let unenforced_search = new
        .iter()
        .any(|f| f.rule == RuleId::PopulationAccessNew && reaches_other_patients(f));
    if !unenforced_search || !settings.enabled(RuleId::PopulationAccessNew.as_str()) {
        return;
    }
    let mut index = 0;
    findings.retain(|f| {
        index += 1;
        index <= from || !(f.rule == RuleId::EnforcementGap && reaches_other_patients(f))
    });
}

/// A gap beyond the launch patient, or a population search marked for one.
fn reaches_other_patients(finding: &Finding) -> bool {
    finding.observed["launch_context"] == "other-patient"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Timestamp;

    fn finding(rule: RuleId, launch: &str) -> Finding {
        let mut f = Finding::new(rule, "app".into(), Timestamp(0));
        f.observed = serde_json::json!({ "launch_context": launch });
        f
    }

    #[test]
    fn a_new_population_search_is_not_also_a_gap_for_the_same_request() {
        let earlier = finding(RuleId::EnforcementGap, "other-patient");
        let mut findings = vec![
            earlier.clone(),
            finding(RuleId::EnforcementGap, "other-patient"),
            finding(RuleId::EnforcementGap, "launch-patient"),
            finding(RuleId::TokenOutlier, ""),
            finding(RuleId::PopulationAccessNew, "other-patient"),
        ];
        one_incident_per_act(&mut findings, 1, &RuleSettings::default());
        let rules: Vec<RuleId> = findings.iter().map(|f| f.rule).collect();
        assert_eq!(
            rules,
            [
                RuleId::EnforcementGap,
                RuleId::EnforcementGap,
                RuleId::TokenOutlier,
                RuleId::PopulationAccessNew
            ]
        );
        assert_eq!(findings[0], earlier, "an earlier request's findings stay");
        assert_eq!(findings[1].observed["launch_context"], "launch-patient");
        // Without a new population search, a cross-patient gap stands.
        let mut alone = vec![finding(RuleId::EnforcementGap, "other-patient")];
        one_incident_per_act(&mut alone, 0, &RuleSettings::default());
        assert_eq!(alone.len(), 1);
    }

    /// A token with a `user/` scope is not bound to one patient: its population search is not
    /// marked, and the high gap for the same request is not folded into a medium finding.
    #[test]
    fn only_a_marked_population_search_takes_the_gap() {
        let mut findings = vec![
            finding(RuleId::EnforcementGap, "other-patient"),
            finding(RuleId::PopulationAccessNew, ""),
        ];
        one_incident_per_act(&mut findings, 0, &RuleSettings::default());
        assert_eq!(findings.len(), 2);
    }

    /// Disabled by a rules file, `population_access_new` reports nothing: the gap stays.
    #[test]
    fn a_disabled_population_rule_does_not_take_the_gap() {
        let settings =
            RuleSettings::parse("[population_access_new]\nenabled = false\n", "rules.toml")
                .expect("rules file");
        let mut findings = vec![
            finding(RuleId::EnforcementGap, "other-patient"),
            finding(RuleId::PopulationAccessNew, "other-patient"),
        ];
        one_incident_per_act(&mut findings, 0, &settings);
        assert_eq!(findings.len(), 2);
    }
}
