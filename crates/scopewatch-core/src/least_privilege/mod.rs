//! Least-privilege recommendations: per app, the scopes its tokens were granted against the
//! permissions its served requests actually exercised, and the narrowest SMART v2 scope string
//! that would still have served every request its grants allowed.
//!
//! Pure, like the rest of the core: the caller feeds grants and served accesses (the CLI reads
//! them from the history store) into a [`UsageLedger`] and asks it for [`AppAdvice`]. Each
//! access is judged by the same [`explain`](crate::detect::explain) as detection, so a request
//! detection calls explained is one the recommendation keeps, and an enforcement gap is never
//! folded into a recommendation (it is listed as served beyond the grant).

mod advice;
mod ledger;

pub use advice::{AppAdvice, BeyondGrant, GrantedScopeUse, WildcardReplacement};
pub use ledger::{used_scopes, ServedAccess, UsageLedger};
