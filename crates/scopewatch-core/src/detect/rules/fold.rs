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

/// Folds the findings of one request, from `from` on.
pub fn one_incident_per_act(findings: &mut Vec<Finding>, from: usize) {
    let Some(new) = findings.get(from..) else {
        return;
    };
    if !new.iter().any(|f| f.rule == RuleId::PopulationAccessNew) {
        return;
    }
    let mut index = 0;
    findings.retain(|f| {
        index += 1;
        index <= from || !(f.rule == RuleId::EnforcementGap && reaches_other_patients(f))
    });
}

fn reaches_other_patients(gap: &Finding) -> bool {
    gap.observed["launch_context"] == "other-patient"
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
        one_incident_per_act(&mut findings, 1);
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
        one_incident_per_act(&mut alone, 0);
        assert_eq!(alone.len(), 1);
    }
}
