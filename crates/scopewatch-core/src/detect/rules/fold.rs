//! One act, one incident. Several rules can see the same request from different sides; a SOC
//! works one incident per act, so after the rules have judged a request its findings are
//! folded: a population search new to its app (`population_access_new`, marked when the token
//! was bound to one patient and the answer reached others) is not reported again as an
//! `enforcement_gap` for reaching other patients.
//!
//! A token's volume joins the act that caused it when that act was new to its app: a first
//! Bulk Data export, `$everything` or population search is an incident, and the data its token
//! then takes (ten times a usual token's) is how much that act reached, not a second incident
//! (`new_act`, and `volume::token_outlier`). A token of an established kind of act that takes
//! ten times its app's usual data is an incident of its own.

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

/// Acts whose first occurrence in an app is an incident of its own; the token's later volume
/// joins it.
const NEW_ACT_RULES: [RuleId; 3] = [
    RuleId::BulkExportNew,
    RuleId::EverythingNew,
    RuleId::PopulationAccessNew,
];

/// The (rule, cause) of the first reported new-act finding among those of one request, from
/// `from` on: the incident its token's volume joins.
pub fn new_act(
    findings: &[Finding],
    from: usize,
    settings: &RuleSettings,
) -> Option<(RuleId, String)> {
    findings
        .get(from..)?
        .iter()
        .find(|f| NEW_ACT_RULES.contains(&f.rule) && settings.enabled(f.rule.as_str()))
        .map(|f| (f.rule, f.cause.clone()))
}

/// Joins the volume findings of one request (from `from` on) to its token's new act: the one
/// place they join, after the request's rules have run (its own act included).
pub fn join_volume_to_new_act(
    findings: &mut [Finding],
    from: usize,
    settings: &RuleSettings,
    act: &(RuleId, String),
) {
    let Some(new) = findings.get_mut(from..) else {
        return;
    };
    for f in new.iter_mut().filter(|f| f.rule == RuleId::TokenOutlier) {
        join(act, f, VOLUME_OF_NEW_ACT, settings);
    }
}

/// A finding that is part of an act already reported joins the act's incident (app × rule ×
/// cause) as evidence, at its own grade, instead of opening a second one (issue #13,
/// "Incidents a SOC can work": one incident per cause); `why` says so in its summary. A token
/// that did something its app never did (a first export, a first population search) has no
/// peers to be an outlier among: its volume joins the act, whose closing alert carries it.
pub fn join(act: &(RuleId, String), finding: &mut Finding, why: &str, settings: &RuleSettings) {
    // Its own rule's settings first: disabled, it stays its own (and is dropped as such);
    // a severity or score override of its own rule still counts inside the act's incident.
    if !settings.enabled(finding.rule.as_str()) {
        return;
    }
    if let Some(tuned) = settings.apply(finding.clone()) {
        *finding = tuned;
    }
    let (rule, cause) = act;
    finding.rule = *rule;
    finding.cause.clone_from(cause);
    finding.category = rule.info().category;
    finding.summary = format!("{} {why}", finding.summary);
}

/// Why a first refresh joined the offline_access incident.
const FIRST_REFRESH: &str = "The refresh continues the grant that opened this incident: a refresh token is what offline_access asks for.";

/// Why a volume finding joined its token's new act.
const VOLUME_OF_NEW_ACT: &str = "It is the token whose new act opened this incident: its volume is reported here, not as an incident of its own.";

/// A first refresh (`new_grant_type` for `refresh_token`) while the app's `offline_access_new`
/// incident is open joins that incident: a refresh token is what `offline_access` asks for
/// (SMART App Launch 2.x, "Scopes for requesting a refresh token"), so the app starting to
/// refresh is the same change, not a second one. `open_offline_access` finds the cause of the
/// app's open `offline_access_new` incident (asked only when there is a first refresh: it scans
/// the open incidents); a finding of this grant counts too. A first refresh with no such
/// incident open (an app that held the scope for long) stands.
pub fn join_first_refresh_to_offline_access(
    findings: &mut [Finding],
    from: usize,
    settings: &RuleSettings,
    open_offline_access: impl FnOnce() -> Option<String>,
) {
    let Some(new) = findings.get_mut(from..) else {
        return;
    };
    let first_refresh =
        |f: &Finding| f.rule == RuleId::NewGrantType && f.observed["grant_type"] == "refresh_token";
    if !new.iter().any(first_refresh) || !settings.enabled(RuleId::OfflineAccessNew.as_str()) {
        return;
    }
    let Some(cause) = new
        .iter()
        .find(|f| f.rule == RuleId::OfflineAccessNew)
        .map(|f| f.cause.clone())
        .or_else(open_offline_access)
    else {
        return;
    };
    let act = (RuleId::OfflineAccessNew, cause);
    for f in new.iter_mut().filter(|f| first_refresh(f)) {
        join(&act, f, FIRST_REFRESH, settings);
    }
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

    #[test]
    fn the_first_reported_new_act_of_a_request_is_what_its_volume_joins() {
        let mut export = finding(RuleId::BulkExportNew, "");
        export.cause = "$export".into();
        let findings = vec![
            finding(RuleId::PopulationAccessNew, ""),
            finding(RuleId::TokenOutlier, ""),
            export,
        ];
        let defaults = RuleSettings::default();
        assert_eq!(
            new_act(&findings, 1, &defaults),
            Some((RuleId::BulkExportNew, "$export".to_string()))
        );
        assert_eq!(
            new_act(&findings, 0, &defaults).map(|a| a.0),
            Some(RuleId::PopulationAccessNew)
        );
        assert_eq!(new_act(&findings[..2], 1, &defaults), None);
        // A disabled rule reports nothing, so nothing joins it: the volume stays its own.
        let off = RuleSettings::parse("[bulk_export_new]\nenabled = false\n", "r.toml")
            .expect("rules file");
        assert_eq!(new_act(&findings, 1, &off), None);
    }

    #[test]
    fn a_first_refresh_joins_only_a_reported_offline_access_incident() {
        let refresh = || {
            let mut f = finding(RuleId::NewGrantType, "");
            f.observed = serde_json::json!({ "grant_type": "refresh_token" });
            f
        };
        let defaults = RuleSettings::default();
        let mut open = vec![refresh()];
        join_first_refresh_to_offline_access(&mut open, 0, &defaults, || Some(String::new()));
        assert_eq!(open[0].rule, RuleId::OfflineAccessNew);
        assert_eq!(open[0].category, crate::alert::Category::ScopeCreep);
        let mut none_open = vec![refresh()];
        join_first_refresh_to_offline_access(&mut none_open, 0, &defaults, || None);
        assert_eq!(none_open[0].rule, RuleId::NewGrantType);
        let off = RuleSettings::parse("[offline_access_new]\nenabled = false\n", "r.toml")
            .expect("rules file");
        let mut disabled = vec![refresh()];
        join_first_refresh_to_offline_access(&mut disabled, 0, &off, || Some(String::new()));
        assert_eq!(disabled[0].rule, RuleId::NewGrantType, "nothing to join");
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
