//! What a scope set adds over another: the semantic comparison behind scope-creep findings.

use std::collections::BTreeSet;

use serde::Serialize;

use super::parse::{Context, ResourceTarget, Scope};
use super::perms::Perms;
use super::set::ScopeSet;

/// Permissions present in the newer set that the older set did not grant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AddedGrant {
    /// The scope of the newer set that brings the addition (canonical spelling).
    pub scope: String,
    pub context: Context,
    /// `*` when the addition is a resource wildcard.
    pub resource: String,
    /// The letters added (v2 spelling).
    pub perms: String,
    /// For wildcard additions: types the older set already granted these letters on
    /// (the wildcard adds "all other types").
    pub except_types: Vec<String>,
}

/// The difference `newer − older`, semantically.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ScopeDelta {
    pub added: Vec<AddedGrant>,
    /// Broadest context before and after, when the newer set reaches further
    /// (patient → user → system). `from` is None when the older set had no resource scope.
    pub context_escalation: Option<(Option<Context>, Context)>,
    /// Added grants whose resource is the `*` wildcard.
    pub new_wildcards: Vec<String>,
    /// Launch, identity, refresh and custom scopes that are new.
    pub new_other: Vec<String>,
    /// Invalid tokens that are new.
    pub new_invalid: Vec<String>,
}

impl ScopeDelta {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.context_escalation.is_none()
            && self.new_other.is_empty()
            && self.new_invalid.is_empty()
    }
    pub fn adds_offline_access(&self) -> bool {
        self.new_other.iter().any(|s| s == "offline_access")
    }
}

impl ScopeSet {
    /// What `self` grants that `older` did not. A v1→v2 re-spelling of the same permissions
    /// adds nothing; `patient/*.read` over `patient/Observation.read` adds all other types;
    /// `user/` over `patient/` is a context escalation.
    pub fn additions_over(&self, older: &ScopeSet) -> ScopeDelta {
        let mut delta = ScopeDelta::default();
        for scope in self.resources() {
            let mut already = Perms::NONE;
            for old in older.resources() {
                if old.applies_to(scope.context, &scope.resource)
                    && old.constraints_within(&scope.constraints)
                {
                    already = already.union(old.perms);
                }
            }
            let added = scope.perms.minus(already);
            if added.is_empty() {
                continue;
            }
            let except_types = if scope.is_wildcard() {
                older
                    .resources()
                    .iter()
                    .filter(|old| old.context >= scope.context && old.perms.contains(added))
                    .filter_map(|old| match &old.resource {
                        ResourceTarget::Type(t) => Some(t.clone()),
                        ResourceTarget::Any => None,
                    })
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect()
            } else {
                Vec::new()
            };
            if scope.is_wildcard() {
                delta.new_wildcards.push(scope.normalized());
            }
            delta.added.push(AddedGrant {
                scope: scope.normalized(),
                context: scope.context,
                resource: scope.resource.as_str().to_string(),
                perms: added.letters(),
                except_types,
            });
        }
        if let Some(new_max) = self.max_context() {
            let old_max = older.max_context();
            let escalated = match old_max {
                Some(old) => new_max > old,
                None => new_max > Context::Patient,
            };
            if escalated {
                delta.context_escalation = Some((old_max, new_max));
            }
        }
        let older_other: BTreeSet<String> = older.others().map(Scope::normalized).collect();
        delta.new_other = self
            .others()
            .map(Scope::normalized)
            .filter(|s| !older_other.contains(s))
            .collect();
        delta.new_invalid = self
            .invalid()
            .iter()
            .filter(|(raw, _)| !older.invalid().iter().any(|(o, _)| o == raw))
            .map(|(raw, _)| raw.clone())
            .collect();
        delta
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(old: &str, new: &str) -> ScopeDelta {
        ScopeSet::parse(new).additions_over(&ScopeSet::parse(old))
    }

    #[test]
    fn v1_to_v2_respelling_adds_nothing() {
        assert!(delta(
            "patient/Observation.read patient/Patient.write user/*.*",
            "patient/Observation.rs patient/Patient.cud user/*.cruds"
        )
        .is_empty());
        assert!(delta("system/*.read", "system/*.rs").is_empty());
    }

    #[test]
    fn wildcard_over_single_type_adds_all_other_types() {
        let d = delta("patient/Observation.read", "patient/*.read");
        assert_eq!(d.added.len(), 1);
        assert_eq!(d.added[0].resource, "*");
        assert_eq!(d.added[0].perms, "rs");
        assert_eq!(d.added[0].except_types, vec!["Observation"]);
        assert_eq!(d.new_wildcards, vec!["patient/*.rs"]);
        assert_eq!(d.context_escalation, None);
    }

    #[test]
    fn context_escalation_is_reported() {
        let d = delta("patient/Observation.rs", "user/Observation.rs");
        assert_eq!(
            d.context_escalation,
            Some((Some(Context::Patient), Context::User))
        );
        let d = delta("user/Observation.rs", "system/*.rs");
        assert_eq!(
            d.context_escalation,
            Some((Some(Context::User), Context::System))
        );
        // Narrowing is not an escalation and adds nothing.
        assert!(delta("user/Observation.rs", "patient/Observation.rs").is_empty());
    }

    #[test]
    fn new_letters_and_offline_access() {
        let d = delta(
            "patient/Observation.rs",
            "patient/Observation.rs patient/Observation.c offline_access",
        );
        assert_eq!(d.added.len(), 1);
        assert_eq!(d.added[0].perms, "c");
        assert!(d.adds_offline_access());
    }

    #[test]
    fn dropping_a_constraint_is_broader() {
        let d = delta(
            "patient/Observation.rs?category=laboratory",
            "patient/Observation.rs",
        );
        assert_eq!(d.added.len(), 1);
        assert_eq!(d.added[0].perms, "rs");
        assert!(delta(
            "patient/Observation.rs",
            "patient/Observation.rs?category=laboratory"
        )
        .is_empty());
    }
}
