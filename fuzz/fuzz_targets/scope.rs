//! The SMART scope parser and algebra: any scope string parses (invalid tokens are kept with
//! a reason), normalisation is idempotent on valid tokens, and a set covers its own grants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopewatch_core::smart::scope::{normalize, ScopeSet};

fuzz_target!(|text: &str| {
    let set = ScopeSet::parse(text);
    let again = ScopeSet::parse(text);
    assert_eq!(
        set.normalized_string(),
        again.normalized_string(),
        "parsing is not deterministic"
    );
    for token in text.split_ascii_whitespace() {
        let once = normalize(token);
        if !once.starts_with('!') {
            assert_eq!(
                normalize(&once),
                once,
                "normalize is not idempotent on {token:?}"
            );
        }
    }
    let _ = set.additions_over(&again);
});
