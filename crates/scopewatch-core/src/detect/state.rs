//! The whole engine state outside the baselines, as one serialisable value: buffered events,
//! the token cache, per-token usage, open hours and days, open incidents, remembered grants and
//! counters. With the baselines (Arrow tables, snapshotted to Parquet) it is everything needed
//! to continue exactly where a run stopped: a restored engine fed the rest of the input emits
//! the same alerts, with the same ids, as one that never stopped.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::baseline::Baselines;
use crate::event::{Text, Timestamp};
use crate::registry::Registry;
use crate::smart::scope::ScopeSet;

use super::engine::{Engine, EngineConfig, EngineStats};
use super::incidents::{IncidentState, Incidents};
use super::night::{HourAccounts, NightAccounts};
use super::order::{OrderState, ReorderBuffer};
use super::rules::catalog::RuleId;
use super::rules::volume::{ExportRun, TokenUsage};
use super::tokens::{TokenCache, TokenCacheState};

/// Bumped when the layout changes; a state of another version is refused, not misread.
pub const STATE_VERSION: u32 = 1;

#[derive(Debug, Error)]
pub enum StateError {
    #[error("state version {found} is not supported (this build reads version {STATE_VERSION})")]
    Version { found: u32 },
    #[error("state is inconsistent: {0}")]
    Invalid(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngineState {
    pub version: u32,
    pub now: Option<Timestamp>,
    pub stats: EngineStats,
    pub order: OrderState,
    pub tokens: TokenCacheState,
    pub usage: Vec<UsageState>,
    pub grants: Vec<GrantState>,
    pub hours: Vec<HourState>,
    pub days: Vec<DayState>,
    pub incidents: Vec<IncidentState>,
    /// Last served Bulk Data kick-off per app.
    #[serde(default)]
    pub exports: Vec<(Text, Timestamp)>,
    /// First hour of each app's last night of activity at a normally silent time.
    #[serde(default)]
    pub off_hours: Vec<(Text, Timestamp)>,
    /// Each app's latest Bulk Data export and what its files returned so far.
    #[serde(default)]
    pub export_runs: Vec<(Text, ExportRun)>,
    /// The accounts each app served at silent times on its recent nights (identities: the
    /// state directory is owner-only).
    #[serde(default)]
    pub night_accounts: Vec<(Text, NightAccounts)>,
    /// The accounts served in each app's open hour.
    #[serde(default)]
    pub hour_accounts: Vec<(Text, HourAccounts)>,
}

/// What one live token has done so far (patients are PHI: the state directory holds PHI).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UsageState {
    pub token_id: Text,
    pub requests: u64,
    pub pages: u64,
    pub max_count: u32,
    pub patients: Vec<Text>,
    pub fired: Vec<RuleId>,
    #[serde(default)]
    pub retrieved: u64,
    /// The incident (rule, cause) of an act new to its app this token performed.
    #[serde(default)]
    pub new_act: Option<(RuleId, String)>,
}

/// The latest issued grant of an (app, user, launch patient).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GrantState {
    pub client_id: Text,
    pub user: Option<Text>,
    pub patient: Option<Text>,
    pub scopes: Vec<String>,
}

/// The hour an app is in and its requests so far.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HourState {
    pub client_id: Text,
    pub start: Timestamp,
    pub requests: u64,
}

/// The day an app is in and its served requests by resource type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DayState {
    pub client_id: Text,
    pub start: Timestamp,
    pub by_type: BTreeMap<String, u64>,
}

impl Engine {
    /// Everything but the baselines (see `baselines()`), without disturbing the engine.
    pub fn snapshot(&self) -> EngineState {
        let mut usage: Vec<UsageState> = self
            .usage
            .iter()
            .map(|(token_id, u)| UsageState {
                token_id: token_id.clone(),
                requests: u.requests,
                pages: u.pages,
                max_count: u.max_count,
                patients: u.patients.iter().cloned().collect(),
                fired: u.fired.iter().copied().collect(),
                retrieved: u.retrieved,
                new_act: u.new_act.clone(),
            })
            .collect();
        usage.sort_by(|a, b| a.token_id.cmp(&b.token_id));
        EngineState {
            version: STATE_VERSION,
            now: self.now,
            stats: self.stats.clone(),
            order: self.order.to_state(),
            tokens: self.tokens.to_state(),
            usage,
            grants: self
                .grants
                .iter()
                .flat_map(|((client_id, user, patient), list)| {
                    list.iter().map(move |scopes| GrantState {
                        client_id: client_id.clone(),
                        user: user.clone(),
                        patient: patient.clone(),
                        scopes: scopes.to_tokens(),
                    })
                })
                .collect(),
            exports: self.exports.iter().map(|(c, t)| (c.clone(), *t)).collect(),
            export_runs: self
                .export_runs
                .iter()
                .map(|(c, run)| (c.clone(), run.clone()))
                .collect(),
            off_hours: self
                .off_hours
                .iter()
                .map(|(c, t)| (c.clone(), *t))
                .collect(),
            night_accounts: self
                .night_accounts
                .iter()
                .map(|(c, n)| (c.clone(), n.clone()))
                .collect(),
            hour_accounts: self
                .hour_accounts
                .iter()
                .map(|(c, h)| (c.clone(), h.clone()))
                .collect(),
            hours: self
                .hours
                .iter()
                .map(|(client_id, (start, requests))| HourState {
                    client_id: client_id.clone(),
                    start: *start,
                    requests: *requests,
                })
                .collect(),
            days: self
                .days
                .iter()
                .map(|(client_id, (start, by_type))| DayState {
                    client_id: client_id.clone(),
                    start: *start,
                    by_type: by_type.clone(),
                })
                .collect(),
            incidents: self.incidents.to_state(),
        }
    }

    /// An engine that continues from `baselines` and `state` as if it had never stopped.
    pub fn restore(
        config: EngineConfig,
        registry: Registry,
        baselines: Baselines,
        state: EngineState,
    ) -> Result<Engine, StateError> {
        if state.version != STATE_VERSION {
            return Err(StateError::Version {
                found: state.version,
            });
        }
        let mut engine = Engine::new(config.clone(), registry);
        engine.baselines = baselines;
        engine.now = state.now;
        engine.stats = state.stats;
        // Apps whose first events wait in the buffer count towards `max_apps`, as they did.
        engine.new_apps_pending = state
            .order
            .pending
            .iter()
            .map(|p| p.event.client_id())
            .filter(|c| !engine.baselines.apps.contains_key(*c))
            .map(crate::event::Text::from)
            .collect();
        engine.order = ReorderBuffer::from_state(config.lateness_seconds, state.order)
            .with_max_pending_bytes(engine.budget.reorder_bytes);
        let token_cache = engine.budget.token_cache(&config.token_cache);
        engine.tokens = TokenCache::from_state(token_cache, state.tokens);
        for u in state.usage {
            let fired = u.fired.into_iter().collect();
            engine.usage.insert(
                u.token_id,
                TokenUsage {
                    requests: u.requests,
                    pages: u.pages,
                    max_count: u.max_count,
                    patients: u.patients.into_iter().collect(),
                    fired,
                    retrieved: u.retrieved,
                    new_act: u.new_act,
                },
            );
        }
        for g in state.grants {
            engine
                .grants
                .entry((g.client_id, g.user, g.patient))
                .or_default()
                .push(Arc::new(ScopeSet::from_tokens(&g.scopes)));
        }
        engine.grants_bytes = engine
            .grants
            .values()
            .map(|list| super::engine::grant_list_bytes(list))
            .sum();
        engine.exports = state.exports.into_iter().collect();
        engine.export_runs = state.export_runs.into_iter().collect();
        engine.off_hours = state.off_hours.into_iter().collect();
        engine.night_accounts = state.night_accounts.into_iter().collect();
        engine.hour_accounts = state.hour_accounts.into_iter().collect();
        for h in state.hours {
            engine.hours.insert(h.client_id, (h.start, h.requests));
        }
        for d in state.days {
            engine.days.insert(d.client_id, (d.start, d.by_type));
        }
        engine.incidents =
            Incidents::from_state(config.bucket_seconds, config.quiet_seconds, state.incidents)
                .map_err(StateError::Invalid)?;
        Ok(engine)
    }

    /// How much is carried over in the state (for the end-of-run report).
    pub fn carried_over(&self) -> CarriedOver {
        CarriedOver {
            buffered_events: self.order.len(),
            live_tokens: self.tokens.len(),
            open_incidents: self.incidents.open_count(),
            open_hours: self.hours.len(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CarriedOver {
    pub buffered_events: usize,
    pub live_tokens: usize,
    pub open_incidents: usize,
    pub open_hours: usize,
}
