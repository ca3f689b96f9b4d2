//! The detection core's building blocks (issue #3 builds the rules and baselines on them):
//! event-time ordering with bounded lateness, the token cache that joins accesses to the scopes
//! their token was granted, and the explanation of each access against its token.
//! Everything here is synchronous, deterministic and free of I/O.

pub mod explain;
pub mod order;
pub mod tokens;

pub use explain::{explain, Explained, LaunchFit, ScopeFit};
pub use order::{LateEvent, ReorderBuffer, DEFAULT_LATENESS_SECONDS};
pub use tokens::{TokenCache, TokenCacheConfig, TokenInfo};
