//! The detection core: synchronous, deterministic, free of I/O. Events go in (in any order
//! within the allowed lateness), are released in event-time order, joined to their token's
//! granted scopes, explained, checked by the rules, and grouped into incidents that become
//! alerts.
//!
//! The whole state outside the baselines is one serialisable value (`state::EngineState`):
//! `Engine::snapshot` and `Engine::restore` make a stop-and-continue exact.

pub mod budget;
pub mod engine;
pub mod explain;
pub mod finding;
pub mod incidents;
pub mod lapsed;
pub mod learn;
pub mod night;
pub mod order;
pub mod replay;
pub mod rules;
pub mod state;
pub mod tokens;

pub use engine::{Engine, EngineConfig, EngineStats, DEFAULT_MAX_AHEAD_SECONDS, DEFAULT_MAX_APPS};
pub use explain::{explain, Explained, LaunchFit, ScopeFit};
pub use finding::Finding;
pub use incidents::Incidents;
pub use order::{LateEvent, ReorderBuffer, DEFAULT_LATENESS_SECONDS};
pub use state::{CarriedOver, EngineState, StateError, STATE_VERSION};
pub use tokens::{TokenCache, TokenCacheConfig, TokenInfo};
