//! Granted scope strings parsed once per distinct string, shared by every token that holds it.
//!
//! Why: the writer remembers up to its token limit of grants for the accesses that follow.
//! Parsed and normalised per token, those grants were most of the history run's memory and grew
//! with the number of tokens (issue #18); an app's tokens nearly always carry the same string.

use std::sync::Arc;

use crate::smart::scope::{ScopeMemo, ScopeSet};

/// A granted scope list shared by every access of the token: canonical spellings, resource
/// scopes first in `scopes.resources()` order.
pub type Granted = Arc<Vec<String>>;

/// One granted scope string, parsed and normalised.
#[derive(Clone)]
pub struct ParsedGrant {
    pub scopes: Arc<ScopeSet>,
    pub granted: Granted,
}

impl ParsedGrant {
    pub fn new(scopes: ScopeSet) -> ParsedGrant {
        ParsedGrant {
            granted: Arc::new(scopes.normalized()),
            scopes: Arc::new(scopes),
        }
    }
}

/// The core's scope memo (bounded the same way), keeping each string's normalised list too.
#[derive(Default)]
pub struct GrantMemo {
    parsed: ScopeMemo<ParsedGrant>,
}

impl GrantMemo {
    /// The parsed form of `scope_string`, shared with earlier tokens that held the same string.
    pub fn parse(&mut self, scope_string: &str) -> ParsedGrant {
        self.parsed
            .get_or_parse_with(scope_string, ParsedGrant::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_string_is_parsed_once_and_shared() {
        let mut memo = GrantMemo::default();
        let a = memo.parse("patient/Observation.rs launch/patient");
        let b = memo.parse("patient/Observation.rs launch/patient");
        assert!(Arc::ptr_eq(&a.scopes, &b.scopes));
        assert!(Arc::ptr_eq(&a.granted, &b.granted));
        let c = memo.parse("patient/Condition.rs");
        assert!(!Arc::ptr_eq(&a.granted, &c.granted));
        assert_eq!(c.granted.as_slice(), ["patient/Condition.rs"]);
    }

    #[test]
    fn a_full_memo_starts_over_and_still_parses() {
        let mut memo = GrantMemo::default();
        for i in 0..crate::smart::scope::MAX_SCOPE_STRINGS + 10 {
            memo.parse(&format!("patient/Observation.rs x{i}"));
        }
        assert!(memo.parsed.len() <= crate::smart::scope::MAX_SCOPE_STRINGS);
        let p = memo.parse("user/Patient.rs");
        assert_eq!(p.granted.as_slice(), ["user/Patient.rs"]);
    }
}
