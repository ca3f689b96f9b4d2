//! Issue #16, property tests of the scope algebra (SMART App Launch 2.x §"Scopes for
//! requesting clinical data"; v1 `read`/`write`/`*` ≡ v2 `rs`/`cud`/`cruds`):
//! normalisation is idempotent, coverage is monotone in the scope set, the v1 and v2 spellings
//! of a grant cover exactly the same requests, and no scope string makes the parser panic.

use proptest::prelude::*;
use scopewatch::smart::scope::{Context, Perms, ResourceTarget, ScopeSet};

const CONTEXTS: [&str; 3] = ["patient", "user", "system"];
const TYPES: [&str; 5] = [
    "Observation",
    "Patient",
    "Condition",
    "MedicationRequest",
    "*",
];
const V2: [&str; 8] = ["c", "r", "s", "rs", "cud", "cruds", "ru", "d"];
const CONTEXT_VALUES: [Context; 3] = [Context::Patient, Context::User, Context::System];
const PERMS: [Perms; 6] = [
    Perms::CREATE,
    Perms::READ,
    Perms::UPDATE,
    Perms::DELETE,
    Perms::SEARCH,
    Perms::V1_READ,
];

/// One resource scope in v2 letters, or (true) with its v1 spelling when it has one.
fn resource_scope() -> impl Strategy<Value = (String, Option<String>)> {
    (0..3usize, 0..5usize, 0..8usize).prop_map(|(c, t, p)| {
        let (context, ty, letters) = (CONTEXTS[c], TYPES[t], V2[p]);
        let v1 = match letters {
            "rs" => Some("read"),
            "cud" => Some("write"),
            "cruds" => Some("*"),
            _ => None,
        };
        (
            format!("{context}/{ty}.{letters}"),
            v1.map(|v| format!("{context}/{ty}.{v}")),
        )
    })
}

/// A scope string: resource scopes, launch and identity scopes, and some noise.
fn scope_string() -> impl Strategy<Value = Vec<String>> {
    let token = prop_oneof![
        4 => resource_scope().prop_map(|(v2, _)| v2),
        1 => Just("launch/patient".to_string()),
        1 => Just("openid".to_string()),
        1 => Just("offline_access".to_string()),
        1 => "[a-z/.*?=&|:0-9]{0,24}",
    ];
    prop::collection::vec(token, 0..8)
}

/// Every (context, resource, perms) a grant may be asked about.
fn every_request() -> impl Iterator<Item = (Context, ResourceTarget, Perms)> {
    CONTEXT_VALUES.into_iter().flat_map(|c| {
        TYPES[..4].iter().flat_map(move |t| {
            PERMS
                .into_iter()
                .map(move |p| (c, ResourceTarget::Type((*t).to_string()), p))
        })
    })
}

proptest! {
    // No regression files written from CI: a failure prints its minimal input instead.
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn normalisation_is_idempotent(tokens in scope_string()) {
        let once = ScopeSet::parse(&tokens.join(" "));
        let twice = ScopeSet::from_tokens(&once.to_tokens());
        prop_assert_eq!(once.normalized(), twice.normalized());
        // Invalid tokens are shown with a `!` marker, which is not a scope: the law holds for
        // the valid part.
        let valid: Vec<String> = once.normalized().into_iter().filter(|t| !t.starts_with('!')).collect();
        let again = ScopeSet::parse(&valid.join(" "));
        prop_assert_eq!(again.normalized(), valid);
    }

    #[test]
    fn coverage_is_monotone_in_the_scope_set(a in scope_string(), b in scope_string()) {
        let small = ScopeSet::parse(&a.join(" "));
        let big = ScopeSet::parse(&[a.clone(), b].concat().join(" "));
        for (context, resource, perms) in every_request() {
            if small.covers(context, &resource, perms) {
                prop_assert!(big.covers(context, &resource, perms), "{a:?} + more lost {context:?} {resource:?} {perms:?}");
            }
        }
    }

    #[test]
    fn v1_and_v2_spellings_cover_the_same_requests(scopes in prop::collection::vec(resource_scope(), 1..5)) {
        let v2: Vec<&str> = scopes.iter().map(|(v2, _)| v2.as_str()).collect();
        let mixed: Vec<&str> = scopes.iter().map(|(v2, v1)| v1.as_deref().unwrap_or(v2)).collect();
        let (a, b) = (ScopeSet::parse(&v2.join(" ")), ScopeSet::parse(&mixed.join(" ")));
        for (context, resource, perms) in every_request() {
            prop_assert_eq!(a.covers(context, &resource, perms), b.covers(context, &resource, perms), "{:?} vs {:?}", v2, mixed);
        }
    }

    #[test]
    fn no_scope_string_panics(text in "\\PC{0,200}") {
        let set = ScopeSet::parse(&text);
        let _ = set.normalized_string();
        let _ = set.covers(Context::Patient, &ResourceTarget::Any, Perms::READ);
    }
}
