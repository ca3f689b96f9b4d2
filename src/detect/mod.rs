//! The detection core: synchronous, deterministic, free of I/O. Events go in (in any order
//! within the allowed lateness), are released in event-time order, joined to their token's
//! granted scopes, explained, checked by the rules, and grouped into incidents that become
//! alerts.
//!
//! Built so far: ordering, the token cache, explanation, incidents, and the rules that need no
//! learned baseline (`enforcement_gap`, the registry rules). Baseline-driven rules, Arrow
//! baselines and snapshots are issue #3's remaining work; `scopewatch detect` stays unavailable
//! until they exist.

pub mod engine;
pub mod explain;
pub mod finding;
pub mod incidents;
pub mod order;
pub mod rules;
pub mod tokens;

pub use engine::{Engine, EngineConfig, EngineStats};
pub use explain::{explain, Explained, LaunchFit, ScopeFit};
pub use finding::Finding;
pub use incidents::Incidents;
pub use order::{LateEvent, ReorderBuffer, DEFAULT_LATENESS_SECONDS};
pub use tokens::{TokenCache, TokenCacheConfig, TokenInfo};
