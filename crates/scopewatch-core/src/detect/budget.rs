//! One byte budget for the engine's state (`--max-state-bytes`), shared out between the parts
//! that grow with the input. Each part counts an estimate of its bytes from its contents (the
//! same input gives the same figures, so the limits act the same in batch and streaming) and
//! meets its share in its own way — never by failing:
//! - the reorder buffer (a quarter) releases its earliest events early;
//! - the token cache (a quarter) drops the tokens soonest to expire;
//! - the baselines (half: app profiles and remembered grants), once over their share, take no
//!   new app (its events are dead-lettered `over_limit`) and remember no new key (a scope,
//!   resource or purpose never seen is still judged and alerted on, only not learned; a grant
//!   of a new app × user × patient is not kept for judging its refreshes).
//!
//! Not counted: per-token usage (bounded by the live tokens), the open hour and day of each
//! app and their incidents (bounded by the apps), the last export (its kick-off time and what
//! its files returned) and the last off-hours night per app with its accounts (at most 16 in
//! the open hour and 16 across recent nights), and the per-export histograms (like the
//! per-token ones, a fixed number of buckets per app).

use super::tokens::TokenCacheConfig;
use crate::baseline::{AppProfile, SeenMap};

/// Default budget: 8 GiB.
pub const DEFAULT_MAX_STATE_BYTES: usize = 8 << 30;

/// How often (in processed events) the baselines' bytes are counted again: counting walks every
/// profile, so it is not done per event.
pub const BASELINE_COUNT_EVERY: u64 = 4096;

/// Estimated bytes of one remembered grant key (app, user, launch patient) and its list, besides
/// the grants' parsed scopes.
pub const GRANT_KEY_BYTES: usize = 256;

/// The shares of one budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateBudget {
    pub max_state_bytes: usize,
    pub reorder_bytes: usize,
    pub token_bytes: usize,
    pub baseline_bytes: usize,
}

impl StateBudget {
    pub fn new(max_state_bytes: usize) -> StateBudget {
        StateBudget {
            max_state_bytes,
            reorder_bytes: max_state_bytes / 4,
            token_bytes: max_state_bytes / 4,
            baseline_bytes: max_state_bytes / 2,
        }
    }
}

impl StateBudget {
    /// The token cache's settings with its share of the budget (a smaller `max_bytes` given
    /// there stays).
    pub fn token_cache(&self, config: &TokenCacheConfig) -> TokenCacheConfig {
        TokenCacheConfig {
            max_bytes: config.max_bytes.min(self.token_bytes),
            ..config.clone()
        }
    }
}

fn seen_map_bytes<K: Ord>(map: &SeenMap<K>, key_len: impl Fn(&K) -> usize) -> usize {
    // A B-tree entry: the key's struct and heap, the `Seen` record, node overhead.
    map.entries.keys().map(|k| 96 + key_len(k)).sum()
}

/// Roughly what one app's profile holds.
pub fn profile_bytes(p: &AppProfile) -> usize {
    let strings = [
        &p.scopes,
        &p.grant_types,
        &p.contexts,
        &p.purposes,
        &p.operations,
        &p.population,
    ]
    .into_iter()
    .map(|m| seen_map_bytes(m, String::len))
    .sum::<usize>();
    let resources = seen_map_bytes(&p.resources, |(t, i)| t.len() + i.len() + 24);
    let slots = (p.hourly_requests.len() + p.daily_requests.len()) * 24 + p.hour_of_week.len() * 8;
    std::mem::size_of::<AppProfile>() + 2 * p.client_id.len() + strings + resources + slots
}

/// Where the state stands against its budget (for the run summary).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BudgetReport {
    pub max_state_bytes: usize,
    /// The baselines' bytes now, and whether the last count (every 4 096 events) was over
    /// their share (no new app, no new key remembered).
    pub baseline_bytes: u64,
    pub baselines_full: bool,
    pub token_bytes: usize,
    pub tokens_evicted_early: u64,
    pub buffered_event_bytes: usize,
    pub events_released_early: u64,
}
