//! Does a request's own query satisfy a granular scope's search constraints? SMART 2.x
//! ("Finer-grained resource constraints using search parameters"): a scope such as
//! `patient/Observation.rs?category=http://…/observation-category|laboratory` allows only
//! requests that the server can restrict by that search; a search whose parameters carry the
//! same restriction is inside it, anything else is outside.

use crate::smart::request::query::{decode, pairs};

/// True when, for every constraint `name=value`, the query has a parameter `name` (no
/// modifier) whose comma-separated values all match `value` (a comma is OR, FHIR R4 search
/// §2.21.1.1: `category=laboratory,vital-signs` asks for vital signs too).
pub fn query_satisfies(constraints: &[(String, String)], query: &str) -> bool {
    constraints.iter().all(|(name, value)| {
        let wanted = decode(value);
        pairs(query)
            .any(|(n, v)| n == name.as_str() && v.split(',').all(|v| same_token(v, &wanted)))
    })
}

/// True when the query uses any constrained parameter itself (with or without a modifier).
pub fn query_names(constraints: &[(String, String)], query: &str) -> bool {
    pairs(query).any(|(n, _)| {
        let base = n.split(':').next().unwrap_or(&n);
        constraints.iter().any(|(name, _)| name == base)
    })
}

/// Token values match when system and code agree, or when one side names no system and the
/// codes agree (FHIR R4 search §2.21.1.4 token: `code` alone matches the code in any system).
fn same_token(given: &str, wanted: &str) -> bool {
    let split = |v: &'_ str| -> (Option<String>, String) {
        match v.rsplit_once('|') {
            Some((system, code)) => (Some(system.to_string()), code.to_string()),
            None => (None, v.to_string()),
        }
    };
    let (given_system, given_code) = split(given);
    let (wanted_system, wanted_code) = split(wanted);
    given_code == wanted_code
        && (given_system.is_none() || wanted_system.is_none() || given_system == wanted_system)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, value: &str) -> Vec<(String, String)> {
        vec![(name.to_string(), value.to_string())]
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
