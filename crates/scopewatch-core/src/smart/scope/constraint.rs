//! Does a request's own query satisfy a granular scope's search constraints? SMART 2.x
//! ("Finer-grained resource constraints using search parameters"): a scope such as
//! `patient/Observation.rs?category=http://…/observation-category|laboratory` allows only
//! requests that the server can restrict by that search. A search whose parameters carry the
//! same restriction is inside it; one asking for other values of a constrained parameter is
//! outside; one that leaves a constraint unnamed leaves it to the server (unverified).

use std::borrow::Cow;

use crate::smart::request::query::decode;

/// One decoded `name=value` pair of a query, and a query's pairs.
pub type Pair<'q> = (Cow<'q, str>, Cow<'q, str>);
pub type Pairs<'q> = [Pair<'q>];

/// What a request's own query says about a granular scope's constraints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryFit {
    /// Every constraint is carried by the query: the request is inside the scope.
    Satisfied,
    /// The query asks for a constrained parameter with other values (or a modifier): the
    /// request is outside the scope.
    Contradicted,
    /// No constraint is contradicted, but some are not named: the server alone applies them
    /// (SMART 2.x: the scope limits what the server returns).
    Silent,
}

/// How `query` fits `constraints` (each `name=value`). Each constraint is judged on its own
/// ([`fit_one`]); any contradicted one puts the request outside the scope, any the query
/// leaves open leaves the request to the server.
pub fn fit_pairs(constraints: &[(String, String)], query: &Pairs<'_>) -> QueryFit {
    let mut fit = QueryFit::Satisfied;
    for (name, value) in constraints {
        match fit_one(name, &decode(value), query) {
            QueryFit::Contradicted => return QueryFit::Contradicted,
            QueryFit::Silent => fit = QueryFit::Silent,
            QueryFit::Satisfied => {}
        }
    }
    fit
}

/// What one query parameter says about one constraint, from least to most decisive when
/// parameters repeat: repeated parameters are AND (FHIR R4 search §2.21.1.1), so one that
/// keeps the result inside the constraint decides, then one that may keep it inside, then one
/// that asks for other values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum PairFit {
    /// Restricts nothing the constraint names (`:missing=false`): left to the server.
    Open,
    /// Asks for other values: outside the constraint.
    Other,
    /// Restricts by a match the URL cannot list (`:text`, `:in`, `:below` …): the result may
    /// lie inside the constraint; left to the server.
    Near,
    /// Asks only for the constraint's value: inside it.
    Carried,
}

/// One constraint `name=wanted` against the query (FHIR R4 search): carried when a parameter
/// named exactly `name` asks only for `wanted`; else left to the server when one restricts it
/// by a match the URL cannot list (`:text`, `:in`, `:below`, `:above`: ANDed with the rest,
/// the result may lie inside); else contradicted when one asks for other values (`name`
/// naming another code — a comma is OR, §2.21.1.1: `category=laboratory,vital-signs` asks
/// for vital signs too —, `:not`, `:not-in`, `:missing=true`); otherwise left to the server
/// (`name` unnamed, `:missing=false`).
fn fit_one(name: &str, wanted: &str, query: &Pairs<'_>) -> QueryFit {
    let best = query
        .iter()
        .filter(|(_, v)| !is_empty(v))
        .filter_map(|(param, v)| {
            // A scope may constrain a modified name itself (`code:in=…`).
            if param.as_ref() == name {
                return Some(values_fit(v, wanted));
            }
            let (base, modifier) = param.split_once(':')?;
            (base == name).then(|| match modifier {
                "not" | "not-in" => PairFit::Other,
                "missing" if v.as_ref() == "false" => PairFit::Open,
                "missing" => PairFit::Other,
                _ => PairFit::Near,
            })
        })
        .max()
        .unwrap_or(PairFit::Open);
    match best {
        PairFit::Carried => QueryFit::Satisfied,
        PairFit::Other => QueryFit::Contradicted,
        PairFit::Near | PairFit::Open => QueryFit::Silent,
    }
}

/// The values of an unmodified parameter (OR) against the constraint's value: carried when
/// every one is the same token, else other values.
fn values_fit(v: &str, wanted: &str) -> PairFit {
    if values(v).all(|item| same_token(item, wanted)) {
        PairFit::Carried
    } else {
        PairFit::Other
    }
}

/// The items of a comma-separated value, empty ones skipped (`a,,b` asks for a and b).
fn values(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').filter(|item| !item.is_empty())
}

/// A value that names nothing (`category=`, `category=,`): the parameter is not used.
fn is_empty(v: &str) -> bool {
    values(v).next().is_none()
}

/// Most single-value queries a request is split into ([`split_by_value`]).
const MAX_VARIANTS: usize = 64;

/// The query once for each combination of the values of its comma-separated parameters that
/// granular scopes constrain (`category=a,b` → `category=a`, `category=b`), so that scopes
/// can be combined: a grant is the union of its scopes (RFC 6749 §3.3: "each string adds an
/// additional access range"). None when no such parameter has several values, or when the
/// combinations exceed [`MAX_VARIANTS`].
pub fn split_by_value<'q>(constrained: &[&str], query: &Pairs<'q>) -> Option<Vec<Vec<Pair<'q>>>> {
    let mut variants = vec![query.to_vec()];
    let mut split = false;
    for (at, (name, value)) in query.iter().enumerate() {
        if !constrained.contains(&name.as_ref()) || values(value).nth(1).is_none() {
            continue;
        }
        split = true;
        let mut next = Vec::new();
        for variant in &variants {
            for single in values(value) {
                let mut one = variant.clone();
                one[at] = (name.clone(), Cow::Owned(single.to_string()));
                next.push(one);
            }
        }
        if next.len() > MAX_VARIANTS {
            return None;
        }
        variants = next;
    }
    split.then_some(variants)
}

/// Token values match when system and code agree, or when one side names no system and the
/// codes agree. FHIR R4 search §2.21.1.4 token: `[code]` alone matches the code "irrespective
/// of the value of the system property", strictly wider than a scope naming the system; but
/// category codes are unique to their code system in practice, and reading
/// `category=laboratory` as the scope's own code keeps the most common spelling of a lab search
/// from raising a low finding on every app with a granular scope (docs/detection.md).
fn same_token(given: &str, wanted: &str) -> bool {
    let (given_system, given_code) = system_and_code(given);
    let (wanted_system, wanted_code) = system_and_code(wanted);
    given_code == wanted_code
        && (given_system.is_none() || wanted_system.is_none() || given_system == wanted_system)
}

/// `system|code` → (Some(system), code); a bare `code` → (None, code).
fn system_and_code(v: &str) -> (Option<&str>, &str) {
    match v.rsplit_once('|') {
        Some((system, code)) => (Some(system), code),
        None => (None, v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smart::request::query::pairs;

    fn c(name: &str, value: &str) -> Vec<(String, String)> {
        vec![(name.to_string(), value.to_string())]
    }

    fn query_fit(constraints: &[(String, String)], query: &str) -> QueryFit {
        let query: Vec<_> = pairs(query).collect();
        fit_pairs(constraints, &query)
    }

    fn query_satisfies(constraints: &[(String, String)], query: &str) -> bool {
        query_fit(constraints, query) == QueryFit::Satisfied
    }

    /// SMART 2.x "Finer-grained resource constraints": a scope may carry several `param=value`
    /// items joined by `&`; a query naming some of them (and no other value) leaves the rest to
    /// the server, which is not a request outside the scope.
    #[test]
    fn a_query_naming_some_constraints_leaves_the_rest_to_the_server() {
        let two = vec![
            ("category".to_string(), "http://sys|laboratory".to_string()),
            ("status".to_string(), "final".to_string()),
        ];
        assert_eq!(
            query_fit(&two, "category=http://sys|laboratory&status=final"),
            QueryFit::Satisfied
        );
        assert_eq!(query_fit(&two, "category=laboratory"), QueryFit::Silent);
        assert_eq!(query_fit(&two, "status=final"), QueryFit::Silent);
        assert_eq!(query_fit(&two, "code=1234-5"), QueryFit::Silent);
        assert_eq!(
            query_fit(&two, "category=laboratory&status=preliminary"),
            QueryFit::Contradicted
        );
        assert_eq!(query_fit(&two, "status:not=final"), QueryFit::Contradicted);
    }

    #[test]
    fn listed_constrained_parameters_split_into_one_query_per_combination() {
        let query: Vec<_> = pairs("patient=p1&category=a,,b&code=c,d").collect();
        let variants = split_by_value(&["category"], &query).unwrap();
        let categories: Vec<_> = variants.iter().map(|v| v[1].1.to_string()).collect();
        assert_eq!(categories, ["a", "b"], "empty items skipped");
        assert!(variants.iter().all(|v| v[2].1 == "c,d" && v[0].1 == "p1"));
        let both = split_by_value(&["category", "code"], &query).unwrap();
        let pairs_of: Vec<_> = both
            .iter()
            .map(|v| format!("{}{}", v[1].1, v[2].1))
            .collect();
        assert_eq!(pairs_of, ["ac", "ad", "bc", "bd"]);
        assert!(split_by_value(&["status"], &query).is_none());
        let wide = format!("category={}", vec!["x"; 65].join(","));
        let wide: Vec<_> = pairs(&wide).collect();
        assert!(split_by_value(&["category"], &wide).is_none(), "bounded");
    }

    #[test]
    fn an_empty_value_names_nothing_and_empty_items_are_skipped() {
        let lab = c("category", "laboratory");
        assert_eq!(query_fit(&lab, "category="), QueryFit::Silent);
        assert_eq!(
            query_fit(&lab, "category=laboratory,,"),
            QueryFit::Satisfied
        );
        assert_eq!(
            query_fit(&lab, "category=,vital-signs"),
            QueryFit::Contradicted
        );
    }

    /// FHIR R4 search §2.21.1.4: `:not` negates and `:missing=true` asks for resources without
    /// the parameter (outside the scope); `:text`, `:in`, `:below`, `:above` and
    /// `:missing=false` match sets the URL cannot list (left to the server).
    #[test]
    fn modifiers_contradict_only_when_they_ask_for_other_values() {
        let lab = c("category", "http://sys|laboratory");
        for q in [
            "category:not=http://sys|laboratory",
            "category:missing=true",
            "category:missing=yes",
        ] {
            assert_eq!(query_fit(&lab, q), QueryFit::Contradicted, "{q}");
        }
        for q in [
            "category:text=lab",
            "category:in=http://vs",
            "category:below=http://sys|laboratory",
            "category:above=http://sys|laboratory",
            "category:missing=false",
        ] {
            assert_eq!(query_fit(&lab, q), QueryFit::Silent, "{q}");
        }
        assert_eq!(
            query_fit(&lab, "category:text=lab&category=http://sys|laboratory"),
            QueryFit::Satisfied
        );
        assert_eq!(
            query_fit(
                &lab,
                "category:missing=false&category=http://sys|vital-signs"
            ),
            QueryFit::Contradicted
        );
        // Repeated parameters are AND: lab and not vital signs is still only lab; a match the
        // URL cannot list, narrowed further, may still be lab; a scope on a modified name.
        assert_eq!(
            query_fit(
                &lab,
                "category:text=lab&category:not=http://sys|vital-signs"
            ),
            QueryFit::Silent
        );
        assert_eq!(
            query_fit(&lab, "category:not-in=http://vs"),
            QueryFit::Contradicted
        );
        let in_set = c("code:in", "http://vs");
        assert!(query_satisfies(&in_set, "code:in=http://vs"));
        assert_eq!(
            query_fit(&in_set, "code:in=http://other"),
            QueryFit::Contradicted
        );
        assert_eq!(
            query_fit(
                &lab,
                "category:not=http://sys|vital-signs&category=http://sys|laboratory"
            ),
            QueryFit::Satisfied
        );
    }

    #[test]
    fn tokens_match_with_or_without_system() {
        let lab = c("category", "http://sys|laboratory");
        assert!(query_satisfies(&lab, "category=http://sys|laboratory"));
        assert!(query_satisfies(&lab, "category=laboratory"));
        assert!(!query_satisfies(&lab, "category=vital-signs,laboratory"));
        assert!(query_satisfies(
            &lab,
            "category=laboratory,http://sys|laboratory"
        ));
        assert!(!query_satisfies(&lab, "category=http://other|laboratory"));
        assert!(!query_satisfies(&lab, "category=vital-signs"));
        assert!(!query_satisfies(&lab, "code=laboratory"));
        assert!(!query_satisfies(&lab, "category:not=laboratory"));
        let bare = c("category", "laboratory");
        assert!(query_satisfies(&bare, "category=laboratory"));
        assert!(query_satisfies(&bare, "category=http://sys|laboratory"));
        assert!(query_satisfies(&bare, "category=|laboratory"));
    }
}
