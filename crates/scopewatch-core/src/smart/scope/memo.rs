//! Granted scope strings parsed once per distinct string and shared by every token that holds
//! it: an app's tokens nearly always carry the same string, so the engine's token cache, the
//! replay behind the history store's verdicts and the history writer's grants each keep one
//! of these instead of parsing per token.

use std::collections::HashMap;
use std::sync::Arc;

use super::ScopeSet;

/// Distinct scope strings remembered. Past it the memo starts over: input that sends a new
/// string per token costs a parse per token, never memory.
pub const MAX_SCOPE_STRINGS: usize = 4096;

/// Parsed scope strings, each kept as `V` (by default the shared `ScopeSet`; the history
/// writer keeps its normalised list beside it).
#[derive(Debug)]
pub struct ScopeMemo<V = Arc<ScopeSet>> {
    parsed: HashMap<String, V>,
}

impl<V> Default for ScopeMemo<V> {
    fn default() -> Self {
        ScopeMemo {
            parsed: HashMap::new(),
        }
    }
}

impl<V: Clone> ScopeMemo<V> {
    /// What `scope_string` parses to, made by `make` the first time the string is seen.
    pub fn get_or_parse_with(&mut self, scope_string: &str, make: impl FnOnce(ScopeSet) -> V) -> V {
        if let Some(v) = self.parsed.get(scope_string) {
            return v.clone();
        }
        if self.parsed.len() >= MAX_SCOPE_STRINGS {
            self.parsed.clear();
        }
        let v = make(ScopeSet::parse(scope_string));
        self.parsed.insert(scope_string.to_string(), v.clone());
        v
    }

    /// Distinct strings held.
    pub fn len(&self) -> usize {
        self.parsed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parsed.is_empty()
    }
}

impl ScopeMemo {
    /// The parsed form of `scope_string`, shared with earlier holders of the same string.
    pub fn parse(&mut self, scope_string: &str) -> Arc<ScopeSet> {
        self.get_or_parse_with(scope_string, Arc::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_string_is_parsed_once_and_shared() {
        let mut memo = ScopeMemo::default();
        let a = memo.parse("patient/Observation.rs launch/patient");
        let b = memo.parse("patient/Observation.rs launch/patient");
        assert!(Arc::ptr_eq(&a, &b));
        let c = memo.parse("patient/Condition.rs");
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(c.normalized(), ["patient/Condition.rs"]);
        assert_eq!(memo.len(), 2);
    }

    #[test]
    fn a_full_memo_starts_over_and_still_parses() {
        let mut memo = ScopeMemo::default();
        for i in 0..MAX_SCOPE_STRINGS + 10 {
            memo.parse(&format!("patient/Observation.rs x{i}"));
        }
        assert!(memo.len() <= MAX_SCOPE_STRINGS);
        assert_eq!(
            memo.parse("user/Patient.rs").normalized(),
            ["user/Patient.rs"]
        );
    }
}
