//! SMART App Launch scope algebra: parse (v1, v2, launch, identity, refresh, custom),
//! normalise, check coverage, and compare sets semantically.

mod constraint;
mod diff;
mod memo;
mod parse;
mod perms;
mod set;

pub use diff::{AddedGrant, ScopeDelta};
pub use memo::{ScopeMemo, MAX_SCOPE_STRINGS};
pub use parse::{Context, ResourceScope, ResourceTarget, Scope, Syntax};
pub use perms::Perms;
pub use set::{Coverage, ScopeSet};

/// `scope_is_wildcard` for one token.
pub fn is_wildcard(token: &str) -> bool {
    Scope::parse(token).is_wildcard()
}

/// Canonical spelling of one token (v2 letters for resource scopes).
pub fn normalize(token: &str) -> String {
    Scope::parse(token).normalized()
}
