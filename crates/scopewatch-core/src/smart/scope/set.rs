//! A granted (or requested) scope string as a normalised set, and what it covers.

use std::collections::BTreeMap;

use super::constraint::{fit_pairs, split_by_value, Pairs, QueryFit};
use super::parse::{Context, ResourceScope, ResourceTarget, Scope};
use super::perms::Perms;
use crate::smart::request::query::pairs;

/// A space-separated scope string, parsed and normalised: order and duplicates do not matter,
/// v1 and v2 spellings of the same permission are equal, and a scope implied by a broader one
/// in the same set is folded into it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeSet {
    resources: Vec<ResourceScope>,
    /// Non-resource scopes (launch, identity, refresh, custom), in canonical spelling.
    /// Keyed by canonical spelling (computed once per insert, not per comparison).
    others: BTreeMap<String, Scope>,
    /// Tokens that are not valid SMART scopes, with the reason.
    invalid: Vec<(String, String)>,
}

impl PartialOrd for Scope {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scope {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.normalized().cmp(&other.normalized())
    }
}

/// Which scopes of a set allow a request, and what is missing when they don't.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coverage {
    /// Letters the request needs that no applicable scope grants (empty = covered).
    pub missing: Perms,
    /// Indices into [`ScopeSet::resources`] of the scopes that contributed letters (names via
    /// [`ScopeSet::names_of`]; kept as indices so the per-access check allocates nothing).
    pub by: Vec<usize>,
    /// Covered only through scopes with search constraints: the server has to filter results.
    pub constrained: bool,
}

impl Coverage {
    pub fn is_covered(&self) -> bool {
        self.missing.is_empty()
    }
}

impl ScopeSet {
    /// Roughly the memory this set holds: an estimate from its contents (the same for the same
    /// set, so budgets built on it are deterministic), not a measurement.
    pub fn approx_bytes(&self) -> usize {
        let resources: usize = self
            .resources
            .iter()
            .map(|r| {
                let target = match &r.resource {
                    ResourceTarget::Any => 0,
                    ResourceTarget::Type(t) => t.len(),
                };
                let constraints: usize = r
                    .constraints
                    .iter()
                    .map(|(n, v)| n.len() + v.len() + 48)
                    .sum();
                std::mem::size_of::<ResourceScope>() + target + constraints
            })
            .sum();
        let others: usize = self
            .others
            .keys()
            .map(|k| 2 * k.len() + 64 + std::mem::size_of::<Scope>())
            .sum();
        let invalid: usize = self
            .invalid
            .iter()
            .map(|(r, why)| r.len() + why.len() + 48)
            .sum();
        std::mem::size_of::<Self>() + resources + others + invalid
    }

    /// Parses a space-separated scope string. Never fails: invalid tokens are kept with a reason.
    pub fn parse(scope_string: &str) -> ScopeSet {
        ScopeSet::from_scopes(scope_string.split_ascii_whitespace().map(Scope::parse))
    }

    pub fn from_scopes(scopes: impl IntoIterator<Item = Scope>) -> ScopeSet {
        let mut set = ScopeSet::default();
        for scope in scopes {
            set.insert(scope);
        }
        set.fold_subsumed();
        set
    }

    fn insert(&mut self, scope: Scope) {
        match scope {
            Scope::Resource(r) => {
                // Same context, target and constraints: union the letters.
                if let Some(existing) = self.resources.iter_mut().find(|e| {
                    e.context == r.context
                        && e.resource == r.resource
                        && e.constraints == r.constraints
                }) {
                    existing.perms = existing.perms.union(r.perms);
                } else {
                    self.resources.push(r);
                }
            }
            Scope::Invalid { raw, reason } => {
                if !self.invalid.iter().any(|(r, _)| *r == raw) {
                    self.invalid.push((raw, reason));
                }
            }
            other => {
                self.others.entry(other.normalized()).or_insert(other);
            }
        }
    }

    /// Drops letters already granted by a broader scope in the same set, and scopes left empty.
    fn fold_subsumed(&mut self) {
        let snapshot = self.resources.clone();
        for (i, scope) in self.resources.iter_mut().enumerate() {
            let mut implied = Perms::NONE;
            for (j, other) in snapshot.iter().enumerate() {
                let broader = i != j
                    && other.applies_to(scope.context, &scope.resource)
                    && other.constraints_within(&scope.constraints)
                    && (other.context != scope.context
                        || other.resource != scope.resource
                        || other.constraints.len() < scope.constraints.len());
                if broader {
                    implied = implied.union(other.perms);
                }
            }
            scope.perms = scope.perms.minus(implied);
        }
        self.resources.retain(|r| !r.perms.is_empty());
        self.resources.sort_by_cached_key(|r| r.normalized());
    }

    pub fn resources(&self) -> &[ResourceScope] {
        &self.resources
    }
    pub fn others(&self) -> impl Iterator<Item = &Scope> {
        self.others.values()
    }
    pub fn invalid(&self) -> &[(String, String)] {
        &self.invalid
    }
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty() && self.others.is_empty() && self.invalid.is_empty()
    }
    pub fn contains(&self, scope: &Scope) -> bool {
        match scope {
            Scope::Resource(r) => self
                .coverage_for(r.context, &r.resource, r.perms)
                .is_covered(),
            Scope::Invalid { raw, .. } => self.invalid.iter().any(|(r, _)| r == raw),
            other => self.others.contains_key(&other.normalized()),
        }
    }

    /// The broadest context any resource scope reaches.
    pub fn max_context(&self) -> Option<Context> {
        self.resources.iter().map(|r| r.context).max()
    }
    pub fn has_wildcard(&self) -> bool {
        self.resources.iter().any(ResourceScope::is_wildcard)
    }

    /// Canonical spellings: resource scopes (v2 letters), then other scopes, then invalid tokens
    /// prefixed with `!`.
    pub fn normalized(&self) -> Vec<String> {
        let mut out: Vec<String> = self.resources.iter().map(|r| r.normalized()).collect();
        out.extend(self.others.keys().cloned());
        out.extend(self.invalid.iter().map(|(raw, _)| format!("!{raw}")));
        out
    }

    /// The scope tokens that rebuild this exact set with `from_tokens` (canonical spellings,
    /// invalid tokens as they were written): what a snapshot stores.
    pub fn to_tokens(&self) -> Vec<String> {
        let mut out: Vec<String> = self.resources.iter().map(|r| r.normalized()).collect();
        out.extend(self.others.keys().cloned());
        out.extend(self.invalid.iter().map(|(raw, _)| raw.clone()));
        out
    }

    pub fn from_tokens(tokens: &[String]) -> ScopeSet {
        ScopeSet::from_scopes(tokens.iter().map(|t| Scope::parse(t)))
    }

    /// Normalised names of the resource scopes at `indices` (as in [`Coverage::by`]).
    pub fn names_of(&self, indices: &[usize]) -> Vec<String> {
        indices
            .iter()
            .filter_map(|&i| self.resources.get(i))
            .map(ResourceScope::normalized)
            .collect()
    }

    /// The normalised set as one space-separated string.
    pub fn normalized_string(&self) -> String {
        self.normalized().join(" ")
    }

    /// Does the set allow `perms` on `resource` for a request that needs `context`?
    /// A request inside the launch patient's compartment needs `Patient`; one outside it needs
    /// `User` (or `System` for a backend). Broader contexts cover narrower ones.
    pub fn covers(&self, context: Context, resource: &ResourceTarget, perms: Perms) -> bool {
        self.coverage_for(context, resource, perms).is_covered()
    }

    /// Like [`ScopeSet::covers`], with the scopes that justify the decision.
    pub fn coverage_for(
        &self,
        context: Context,
        resource: &ResourceTarget,
        perms: Perms,
    ) -> Coverage {
        self.coverage_for_query(context, resource, perms, None)
    }

    /// Like [`ScopeSet::coverage_for`] for a request whose own search parameters are `query`
    /// (a search): a query-constrained scope (`patient/Observation.rs?category=…`) then counts
    /// only when the query carries every constraint (SMART 2.x "Finer-grained resource
    /// constraints using search parameters"), or leaves some unnamed for the server to apply
    /// (`constrained`); asking for other values is outside it. Scopes combine (RFC 6749
    /// §3.3, each scope "adds an additional access range"): `category=a,b` is inside
    /// `…?category=a` and `…?category=b` together. With `None` (a read by id, a write)
    /// constrained scopes count, and `constrained` says the server alone could check them.
    pub fn coverage_for_query(
        &self,
        context: Context,
        resource: &ResourceTarget,
        perms: Perms,
        query: Option<&str>,
    ) -> Coverage {
        let mut unconstrained = Perms::NONE;
        let mut constrained = Perms::NONE;
        let mut by = Vec::new();
        // The query's pairs, decoded only once a constrained scope needs them (most tokens
        // hold none, and this runs for every access).
        let mut parsed: Option<Vec<_>> = None;
        for (index, scope) in self.applicable(context, resource, perms) {
            let fit = match (scope.constraints.is_empty(), query) {
                (true, _) => QueryFit::Satisfied,
                (false, None) => QueryFit::Silent,
                (false, Some(q)) => fit_pairs(
                    &scope.constraints,
                    parsed.get_or_insert_with(|| pairs(q).collect()),
                ),
            };
            match fit {
                // Checked against the request itself: as good as unconstrained.
                QueryFit::Satisfied => unconstrained = unconstrained.union(scope.perms),
                QueryFit::Silent => constrained = constrained.union(scope.perms),
                QueryFit::Contradicted => continue,
            }
            by.push(index);
        }
        if let (false, Some(q)) = (unconstrained.contains(perms), &parsed) {
            let combined = self.combined_by_value(context, resource, perms, q);
            unconstrained = unconstrained.union(combined.carried);
            constrained = constrained.union(combined.left_to_server);
            by.extend(combined.used);
            by.sort_unstable();
            by.dedup();
        }
        let missing = perms.minus(unconstrained.union(constrained));
        Coverage {
            missing,
            by,
            constrained: missing.is_empty() && !unconstrained.contains(perms),
        }
    }

    /// The scopes that apply to `resource` in `context` with some of `perms`, with their index.
    fn applicable<'s>(
        &'s self,
        context: Context,
        resource: &'s ResourceTarget,
        perms: Perms,
    ) -> impl Iterator<Item = (usize, &'s ResourceScope)> + 's {
        self.resources
            .iter()
            .enumerate()
            .filter(move |(_, s)| s.applies_to(context, resource) && s.perms.intersects(perms))
    }

    /// Permissions that scopes grant together to a query whose constrained parameters list
    /// several values (`category=a,b`): each single-value query must be inside one of them.
    /// Returns the permissions every such query carries, those each is at least left to the
    /// server for (a scope constraint it does not name), and the scopes used.
    fn combined_by_value(
        &self,
        context: Context,
        resource: &ResourceTarget,
        perms: Perms,
        query: &Pairs<'_>,
    ) -> Combined {
        let scopes: Vec<_> = self.applicable(context, resource, perms).collect();
        let names: Vec<&str> = scopes
            .iter()
            .flat_map(|(_, s)| s.constraints.iter().map(|(n, _)| n.as_str()))
            .collect();
        let Some(variants) = split_by_value(&names, query) else {
            return Combined::default();
        };
        let mut carried = perms;
        let mut reached = perms;
        let mut used = Vec::new();
        for variant in &variants {
            let (mut here, mut left) = (Perms::NONE, Perms::NONE);
            for (index, scope) in &scopes {
                match fit_pairs(&scope.constraints, variant) {
                    QueryFit::Satisfied => here = here.union(scope.perms),
                    QueryFit::Silent => left = left.union(scope.perms),
                    QueryFit::Contradicted => continue,
                }
                used.push(*index);
            }
            carried = carried.intersection(here);
            reached = reached.intersection(here.union(left));
        }
        if reached.is_empty() {
            return Combined::default();
        }
        used.sort_unstable();
        used.dedup();
        Combined {
            carried,
            left_to_server: reached.minus(carried),
            used,
        }
    }
}

/// What scopes grant together to a query split by its listed values
/// ([`ScopeSet::combined_by_value`]).
#[derive(Default)]
struct Combined {
    carried: Perms,
    left_to_server: Perms,
    used: Vec<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(t: &str) -> ResourceTarget {
        ResourceTarget::Type(t.to_string())
    }

    #[test]
    fn order_duplicates_and_spelling_do_not_matter() {
        let a = ScopeSet::parse("patient/Observation.read launch/patient patient/Observation.read");
        let b = ScopeSet::parse("launch/patient patient/Observation.r patient/Observation.s");
        assert_eq!(a, b);
        assert_eq!(
            a.normalized_string(),
            "patient/Observation.rs launch/patient"
        );
    }

    #[test]
    fn narrower_scopes_fold_into_broader_ones() {
        let s = ScopeSet::parse("patient/*.rs patient/Observation.r patient/Condition.rs?category=x user/Observation.cruds");
        assert_eq!(
            s.normalized(),
            vec!["patient/*.rs", "user/Observation.cruds"]
        );
    }

    /// RFC 6749 §3.3 ("each string adds an additional access range"); SMART 2.x
    /// finer-grained constraints: a listed value is inside the grant when one scope carries it,
    /// or leaves the rest of its constraints to the server (then unverified, not a gap).
    #[test]
    fn granular_scopes_combine_per_listed_value() {
        let obs = ty("Observation");
        let search = |scopes: &str, q: &str| {
            ScopeSet::parse(scopes).coverage_for_query(
                Context::Patient,
                &obs,
                Perms::SEARCH,
                Some(q),
            )
        };
        let two = "patient/Observation.rs?category=a patient/Observation.rs?category=b";
        let c = search(two, "patient=p1&category=b,a");
        assert!(c.is_covered() && !c.constrained, "{c:?}");
        assert_eq!(c.by.len(), 2);
        assert!(!search(two, "category=a,b,c").is_covered());
        // One value only left to the server (status unnamed): unverified, not a gap.
        let c = search(
            "patient/Observation.rs?category=a&status=final patient/Observation.rs?category=b",
            "category=a,b",
        );
        assert!(c.is_covered() && c.constrained, "{c:?}");
        // Two listed parameters: every combination must be inside one scope.
        let four = "patient/Observation.rs?category=a&code=x patient/Observation.rs?category=a&code=y patient/Observation.rs?category=b&code=x patient/Observation.rs?category=b&code=y";
        let c = search(four, "category=a,b&code=x,y");
        assert!(c.is_covered() && !c.constrained, "{c:?}");
        let three: String = four
            .rsplit_once(' ')
            .map(|(head, _)| head.to_string())
            .unwrap();
        assert!(!search(&three, "category=a,b&code=x,y").is_covered());
    }

    #[test]
    fn covers_checks_context_type_and_letters() {
        let s = ScopeSet::parse("patient/Observation.rs patient/Patient.r user/Appointment.cud");
        let obs = ty("Observation");
        assert!(s.covers(Context::Patient, &obs, Perms::READ));
        assert!(s.covers(Context::Patient, &obs, Perms::SEARCH));
        assert!(!s.covers(Context::Patient, &obs, Perms::CREATE));
        // A patient/ scope does not cover access outside the launch patient's compartment.
        assert!(!s.covers(Context::User, &obs, Perms::SEARCH));
        assert!(!s.covers(Context::Patient, &ty("Patient"), Perms::SEARCH));
        // user/ covers the narrower patient context.
        assert!(s.covers(Context::Patient, &ty("Appointment"), Perms::UPDATE));
        // A specific type never covers a request on all types.
        assert!(!s.covers(Context::Patient, &ResourceTarget::Any, Perms::READ));
    }

    #[test]
    fn wildcard_and_split_letters_cover() {
        let s = ScopeSet::parse("system/*.r system/Observation.s");
        let c = s.coverage_for(Context::System, &ty("Observation"), Perms::V1_READ);
        assert!(c.is_covered());
        assert_eq!(
            s.names_of(&c.by),
            vec!["system/*.r", "system/Observation.s"]
        );
        let c = s.coverage_for(Context::System, &ty("Condition"), Perms::V1_READ);
        assert_eq!(c.missing, Perms::SEARCH);
    }

    #[test]
    fn constrained_coverage_is_marked() {
        let s = ScopeSet::parse("patient/Observation.rs?category=laboratory");
        let c = s.coverage_for(Context::Patient, &ty("Observation"), Perms::SEARCH);
        assert!(c.is_covered());
        assert!(c.constrained);
    }

    /// SMART 2.2 scopes-and-launch-context, "Finer-grained resource constraints using search
    /// parameters": the request's own parameters must satisfy the constraint.
    #[test]
    fn a_search_must_satisfy_a_granular_constraint() {
        let s = ScopeSet::parse("patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory");
        let obs = ty("Observation");
        let search = |q: &str| {
            s.coverage_for_query(Context::Patient, &obs, Perms::SEARCH, Some(q))
                .is_covered()
        };
        assert!(search("patient=p1&category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"));
        assert!(search("category=laboratory&_count=50"));
        assert!(search("category=http%3A%2F%2Fterminology.hl7.org%2FCodeSystem%2Fobservation-category%7Claboratory"));
        assert!(!search("patient=p1&category=social-history"));
        assert!(!search("category:not=laboratory"));
        // Not naming the category leaves the server to apply the constraint: covered, but
        // only by it (the verdict is unverified, never a certain gap).
        let open = s.coverage_for_query(Context::Patient, &obs, Perms::SEARCH, Some("patient=p1"));
        assert!(open.is_covered() && open.constrained);
        // A read by id cannot be checked from the URL: covered, but only by the constraint.
        let read = s.coverage_for(Context::Patient, &obs, Perms::READ);
        assert!(read.is_covered() && read.constrained);
    }

    #[test]
    fn invalid_tokens_are_kept_with_reason() {
        let s = ScopeSet::parse("patient/*.readx openid");
        assert_eq!(s.invalid().len(), 1);
        assert!(s.invalid()[0].1.contains("unknown permission"));
        assert_eq!(s.normalized(), vec!["openid", "!patient/*.readx"]);
    }

    #[test]
    fn empty_string_is_empty_set() {
        assert!(ScopeSet::parse("").is_empty());
        assert!(ScopeSet::parse("   ").is_empty());
    }
}
