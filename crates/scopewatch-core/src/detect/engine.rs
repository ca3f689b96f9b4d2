//! The detection core: events in (in any order within the allowed lateness), alerts out.
//! Synchronous and deterministic; batch, streaming and tests drive the same code.

use super::budget::StateBudget;
use crate::alert::Alert;
use crate::baseline::{AppProfile, Baselines, DEFAULT_LEARNING_DAYS};
use crate::event::{AccessEvent, Event, Timestamp, TokenAction, TokenEvent};
use crate::registry::Registry;
use crate::smart::request::{Classifier, Interaction};

use super::explain::{explain, ExplainContext};
use super::finding::Finding;
use super::incidents::Incidents;
use super::learn;
use super::night::{HourAccounts, NightAccounts};
use super::order::{LateEvent, ReorderBuffer, DEFAULT_LATENESS_SECONDS};
use super::rules::hooks::{
    self, AccessContext, DayContext, EventContext, GrantContext, HourContext,
};
use super::rules::settings::RuleSettings;
use super::rules::volume::{ExportRun, TokenUsage};
use super::tokens::{TokenCache, TokenCacheConfig, TokenInfo};
use crate::alert::silence::Silences;
use crate::baseline::{seasonal_slot, LocalClock};
use crate::event::{Text, MICROS_PER_SECOND};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

const MICROS_PER_HOUR: i64 = 3600 * MICROS_PER_SECOND;
/// Most grants remembered for refresh comparison; beyond it the map starts over (a refresh
/// whose original grant was forgotten is then not compared).
const MAX_REMEMBERED_GRANTS: usize = 200_000;
/// Distinct grants remembered per (app, user, launch patient): a patient on several devices
/// holds one grant per device, and a refresh may come from any of them.
const MAX_GRANTS_PER_KEY: usize = 8;
use super::explain::EXPORT_FOLLOWUP_SECONDS;

type GrantKey = (Text, Option<Text>, Option<Text>);

#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub lateness_seconds: i64,
    pub token_cache: TokenCacheConfig,
    /// Incident windows align to buckets of this size.
    pub bucket_seconds: i64,
    /// An incident closes after this long without findings.
    pub quiet_seconds: i64,
    pub fhir_base: Option<String>,
    /// Days of an app's own activity before baseline-driven rules fire for it.
    pub learning_days: i64,
    /// Time zone for seasonality (hours of the week, days); default UTC.
    pub clock: LocalClock,
    /// Events dated further ahead of `wall_clock` than this are dead-lettered.
    pub max_ahead_seconds: i64,
    /// Now, for `max_ahead_seconds` (a parameter so tests can fix it).
    pub wall_clock: fn() -> Timestamp,
    /// Apps watched at most; events of further new apps are dead-lettered (`over_limit`).
    pub max_apps: usize,
    /// Per-rule settings (`--rules FILE`): disabled rules raise no alerts, severities and
    /// scores overridden.
    pub rules: Arc<RuleSettings>,
    /// Active silences (`--silences FILE`): matching alert records are marked
    /// `suppressed_by`, for the drivers to keep out of the outputs.
    pub silences: Arc<Silences>,
    /// One byte budget for the state (`--max-state-bytes`), shared out as `budget` says.
    pub max_state_bytes: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            lateness_seconds: DEFAULT_LATENESS_SECONDS,
            token_cache: TokenCacheConfig::default(),
            bucket_seconds: 3600,
            quiet_seconds: super::incidents::DEFAULT_QUIET_SECONDS,
            fhir_base: None,
            learning_days: DEFAULT_LEARNING_DAYS,
            clock: LocalClock::utc(),
            max_ahead_seconds: DEFAULT_MAX_AHEAD_SECONDS,
            wall_clock: Timestamp::now,
            max_apps: DEFAULT_MAX_APPS,
            rules: Arc::default(),
            silences: Arc::default(),
            max_state_bytes: super::budget::DEFAULT_MAX_STATE_BYTES,
        }
    }
}

/// Default for `max_apps`: far above any real deployment's app count, far below what would
/// exhaust memory (each app holds a baseline of a few kilobytes to a few hundred).
pub const DEFAULT_MAX_APPS: usize = 20_000;

/// Default for `max_ahead_seconds`: a day.
pub const DEFAULT_MAX_AHEAD_SECONDS: i64 = 24 * 3600;

impl EngineConfig {
    /// Sets the lifetime of tokens logged without `expires_in` (`--token-lifetime`).
    pub fn with_token_lifetime(mut self, seconds: Option<i64>) -> EngineConfig {
        self.token_cache.configured_ttl_seconds = seconds;
        self
    }

    /// Sets the one byte budget of the state (`--max-state-bytes`; shared out by `budget`).
    pub fn with_max_state_bytes(mut self, bytes: usize) -> EngineConfig {
        self.max_state_bytes = bytes;
        self
    }

    /// Sets the most apps watched (`--max-apps`).
    pub fn with_max_apps(mut self, max_apps: usize) -> EngineConfig {
        self.max_apps = max_apps.max(1);
        self
    }

    /// Sets how far ahead of the clock an event may be dated (`--max-ahead-hours`).
    pub fn with_max_ahead_hours(mut self, hours: u32) -> EngineConfig {
        self.max_ahead_seconds = i64::from(hours) * 3600;
        self
    }
}

/// Counts of what the core did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EngineStats {
    pub events: u64,
    pub late: u64,
    pub accesses: u64,
    pub explained: u64,
    pub unknown_token: u64,
    pub findings: u64,
    /// Access events folded into the event of the same request (BALP's AuditEvent per patient).
    #[serde(default)]
    pub folded: u64,
    /// Events refused: a time before 1970 or too far ahead of the clock, an app over the limit.
    #[serde(default)]
    pub refused: u64,
    /// The baselines' bytes at the last count (`budget`; counted every 4096 events).
    #[serde(default)]
    pub baseline_bytes: u64,
}

pub struct Engine {
    pub(super) learning_days: i64,
    pub(super) budget: StateBudget,
    max_apps: usize,
    /// Apps whose first events wait in the reorder buffer (they count towards `max_apps`).
    pub(super) new_apps_pending: std::collections::HashSet<Text>,
    max_ahead_seconds: i64,
    wall_clock: fn() -> Timestamp,
    /// The latest acceptable event time, as last computed from the clock.
    ahead_limit: std::cell::Cell<i64>,
    pub(super) clock: LocalClock,
    rules: Arc<RuleSettings>,
    silences: Arc<Silences>,
    pub(super) registry: Registry,
    pub(super) baselines: Baselines,
    pub(super) classifier: Classifier,
    pub(super) order: ReorderBuffer,
    pub(super) tokens: TokenCache,
    pub(super) incidents: Incidents,
    pub(super) stats: EngineStats,
    pub(super) now: Option<Timestamp>,
    /// What each live token has done (folded into the app's histograms when it ends).
    pub(super) usage: HashMap<Text, TokenUsage>,
    /// The distinct grants issued per (app, user, launch patient), newest last: what a refresh
    /// is compared with (SMART: a refresh may grant only a subset of the original grant, and
    /// a user on two devices refreshes either of two grants).
    pub(super) grants: BTreeMap<GrantKey, Vec<Arc<crate::smart::scope::ScopeSet>>>,
    /// The estimated bytes of `grants`, kept as grants are remembered: summing them at every
    /// budget count walked every remembered grant (a third of the engine's time on 1 M events).
    pub(super) grants_bytes: usize,
    /// The last served Bulk Data kick-off per app: its status polls and files follow.
    pub(super) exports: BTreeMap<Text, Timestamp>,
    /// Each app's latest Bulk Data export and what its files returned so far.
    pub(super) export_runs: BTreeMap<Text, ExportRun>,
    /// The first hour of each app's last night of activity at a normally silent time
    /// (`off_hours` recurrence).
    pub(super) off_hours: BTreeMap<Text, Timestamp>,
    /// The accounts each app served at a silent time on its recent nights.
    pub(super) night_accounts: BTreeMap<Text, NightAccounts>,
    /// The hour each app is in, and its requests so far.
    pub(super) hours: BTreeMap<Text, (Timestamp, u64)>,
    /// The accounts served in each app's open hour (tokens that name a `user`).
    pub(super) hour_accounts: BTreeMap<Text, HourAccounts>,
    /// The day each app is in, and its served requests by resource type.
    pub(super) days: BTreeMap<Text, (Timestamp, BTreeMap<String, u64>)>,
}

impl Engine {
    pub fn new(config: EngineConfig, registry: Registry) -> Engine {
        let budget = StateBudget::new(config.max_state_bytes);
        let token_cache = budget.token_cache(&config.token_cache);
        Engine {
            learning_days: config.learning_days,
            budget,
            max_apps: config.max_apps,
            new_apps_pending: std::collections::HashSet::new(),
            max_ahead_seconds: config.max_ahead_seconds,
            wall_clock: config.wall_clock,
            ahead_limit: std::cell::Cell::new(i64::MIN),
            clock: config.clock.clone(),
            rules: config.rules.clone(),
            silences: config.silences.clone(),
            registry,
            baselines: Baselines::default(),
            classifier: config
                .fhir_base
                .as_deref()
                .map_or_else(Classifier::new, Classifier::with_base),
            order: ReorderBuffer::new(config.lateness_seconds)
                .with_max_pending_bytes(budget.reorder_bytes),
            tokens: TokenCache::new(token_cache),
            incidents: Incidents::new(config.bucket_seconds, config.quiet_seconds),
            stats: EngineStats::default(),
            now: None,
            usage: HashMap::new(),
            grants: BTreeMap::new(),
            grants_bytes: 0,
            exports: BTreeMap::new(),
            export_runs: BTreeMap::new(),
            off_hours: BTreeMap::new(),
            night_accounts: BTreeMap::new(),
            hours: BTreeMap::new(),
            hour_accounts: BTreeMap::new(),
            days: BTreeMap::new(),
        }
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// The learned per-app baselines (for snapshots and SQL).
    pub fn baselines(&self) -> &Baselines {
        &self.baselines
    }

    /// Continues from baselines learned earlier (e.g. read from a snapshot).
    pub fn restore_baselines(&mut self, baselines: Baselines) {
        self.baselines = baselines;
    }

    /// Takes one event; processes every buffered event the watermark has passed. A late event
    /// is handed back for the caller to count and dead-letter.
    pub fn push(&mut self, event: Event, out: &mut Vec<Alert>) -> Result<(), Box<LateEvent>> {
        let before = out.len();
        let pushed = self.push_unsilenced(event, out);
        self.silences.mark(&mut out[before..], self.wall_clock);
        pushed
    }

    fn push_unsilenced(
        &mut self,
        event: Event,
        out: &mut Vec<Alert>,
    ) -> Result<(), Box<LateEvent>> {
        if let Some(refused) = self.refusal(&event) {
            self.stats.refused += 1;
            return Err(Box::new(LateEvent {
                event,
                behind_micros: 0,
                refused: Some(refused),
            }));
        }
        let new_app = (!self.baselines.apps.contains_key(event.client_id()))
            .then(|| Text::from(event.client_id()));
        if let Err(late) = self.order.push(event) {
            self.stats.late += 1;
            return Err(late);
        }
        // Only once buffered: a late event of a new app takes no slot of `max_apps`.
        self.new_apps_pending.extend(new_app);
        while let Some(ready) = self.order.pop_ready() {
            self.process(ready, out);
        }
        self.stats.folded += std::mem::take(&mut self.order.folded);
        Ok(())
    }

    /// Why an event is not taken: its time cannot be believed, or it is a new app beyond
    /// `max_apps` (each app holds a baseline: 500 k client ids would hold gigabytes).
    fn refusal(&self, event: &Event) -> Option<crate::event::Reject> {
        if let Some(why) = self.outside_time_window(event.time()) {
            return Some(crate::event::Reject::new(
                crate::event::RejectKind::TimeOutOfWindow,
                why,
            ));
        }
        let client = event.client_id();
        let is_new =
            !self.baselines.apps.contains_key(client) && !self.new_apps_pending.contains(client);
        if is_new && self.baselines_full() {
            return Some(crate::event::Reject::new(
                crate::event::RejectKind::OverLimit,
                format!(
                    "a new app while the baselines hold more than their {}-byte share of --max-state-bytes",
                    self.budget.baseline_bytes
                ),
            ));
        }
        let known = self.baselines.apps.len() + self.new_apps_pending.len();
        if known >= self.max_apps
            && !self.baselines.apps.contains_key(client)
            && !self.new_apps_pending.contains(client)
        {
            return Some(crate::event::Reject::new(
                crate::event::RejectKind::OverLimit,
                format!(
                    "a new app beyond the {} apps watched (--max-apps)",
                    self.max_apps
                ),
            ));
        }
        None
    }

    /// Why an event's time cannot be believed: before 1970, or further ahead of the wall clock
    /// than `max_ahead_seconds` (one event dated 9999 would otherwise move the frontier and make
    /// every later event late, in this run and every run continuing from its checkpoint). The
    /// wall clock, not the newest event: a gap of days in an archive is not an error.
    fn outside_time_window(&self, time: Timestamp) -> Option<String> {
        if time.0 < 0 {
            return Some("event time is before 1970".to_string());
        }
        // The limit only grows with the clock: read the clock again only for an event past the
        // limit last computed (not once per event).
        if time.0 <= self.ahead_limit.get() {
            return None;
        }
        let limit = (self.wall_clock)().0.saturating_add(
            self.max_ahead_seconds
                .saturating_mul(crate::event::MICROS_PER_SECOND),
        );
        self.ahead_limit.set(limit);
        (time.0 > limit).then(|| {
            format!(
                "event time is more than {} h ahead of the clock (--max-ahead-hours)",
                self.max_ahead_seconds / 3600
            )
        })
    }

    /// End of input: processes everything buffered and closes open incidents.
    pub fn finish(&mut self, out: &mut Vec<Alert>) {
        let before = out.len();
        self.finish_unsilenced(out);
        self.silences.mark(&mut out[before..], self.wall_clock);
    }

    fn finish_unsilenced(&mut self, out: &mut Vec<Alert>) {
        while let Some(ready) = self.order.pop_any() {
            self.process(ready, out);
        }
        self.stats.folded += std::mem::take(&mut self.order.folded);
        let hours = std::mem::take(&mut self.hours);
        for (client, (start, requests)) in hours {
            let mut findings = Vec::new();
            self.close_hour(&client, start, requests, None, &mut findings);
            self.record(findings, out);
        }
        let days = std::mem::take(&mut self.days);
        for (client, (start, mix)) in days {
            let mut findings = Vec::new();
            self.close_day(&client, start, &mix, &mut findings);
            self.record(findings, out);
        }
        for info in self.tokens.drain() {
            self.finish_token(&info);
        }
        self.incidents.close_all(out);
    }

    fn record(&mut self, findings: Vec<Finding>, out: &mut Vec<Alert>) {
        for f in findings {
            // Rules run whatever their settings (their state evolves as usual); a disabled
            // rule's findings stop here.
            let Some(f) = self.rules.apply(f) else {
                continue;
            };
            self.stats.findings += 1;
            self.incidents.record(f, out);
        }
    }

    /// Folds a finished token's usage into its app's per-token histograms.
    fn finish_token(&mut self, info: &TokenInfo) {
        if let Some(usage) = self.usage.remove(&info.token_id) {
            if let Some(profile) = self.baselines.apps.get_mut(&info.client_id) {
                usage.fold_into(profile);
            }
        }
    }

    /// Judges a finished day of an app (its resource mix and its total), then learns it.
    fn close_day(
        &mut self,
        client: &Text,
        start: Timestamp,
        mix: &BTreeMap<String, u64>,
        findings: &mut Vec<Finding>,
    ) {
        let learning_days = self.learning_days;
        let Some(profile) = self.baselines.apps.get_mut(client) else {
            return;
        };
        let weekend = self.clock.is_weekend(start);
        let mut day = DayContext {
            client_id: client,
            day: self.clock.day_span(start),
            weekend,
            learning: profile.is_learning(start, learning_days),
            mix,
            profile: &mut *profile,
            settings: &self.rules,
        };
        hooks::run(&mut day, findings);
        let total = day.total();
        learn::learn_day(profile, weekend, total, &self.rules);
    }

    /// Judges a finished hour of an app, then learns it and the silent hours up to `next`.
    fn close_hour(
        &mut self,
        client: &Text,
        start: Timestamp,
        requests: u64,
        next: Option<Timestamp>,
        findings: &mut Vec<Finding>,
    ) {
        let learning_days = self.learning_days;
        // Taken first: an hour's accounts never leak into the app's next hour.
        let accounts = self.hour_accounts.remove(client).unwrap_or_default();
        let Some(profile) = self.baselines.apps.get_mut(client) else {
            return;
        };
        let slot_index = seasonal_slot(self.clock.hour_of_week(start));
        let Some(slot) = profile.hourly_requests.get(slot_index).copied() else {
            return;
        };
        let mut hour = HourContext {
            client_id: client,
            start,
            requests,
            slot,
            slot_index,
            profile,
            learning: profile.is_learning(start, learning_days),
            settings: &self.rules,
            anomalous: false,
            last_off_hours: self.off_hours.get(client).copied(),
            accounts: accounts.known(),
            night_accounts: self.night_accounts.get(client),
            off_hours: false,
            silent: false,
        };
        hooks::run(&mut hour, findings);
        let (anomalous, off_hours, silent) = (hour.anomalous, hour.off_hours, hour.silent);
        learn::learn_hour(profile, &self.clock, (start, requests), anomalous, next);
        if off_hours {
            self.off_hours.insert(client.clone(), start);
        }
        if let (true, Some(night)) = (silent, self.off_hours.get(client)) {
            let window = self
                .rules
                .param(super::rules::catalog::RuleId::OffHours, "recurrence_days")
                * 24.0;
            self.night_accounts
                .entry(client.clone())
                .or_default()
                .remember(accounts.remembered(), *night, window);
        }
    }

    /// The state against its byte budget (`budget`).
    pub fn budget_report(&self) -> super::budget::BudgetReport {
        super::budget::BudgetReport {
            max_state_bytes: self.budget.max_state_bytes,
            baseline_bytes: self.baseline_bytes_now(),
            baselines_full: self.baselines_full(),
            token_bytes: self.tokens.bytes() + self.tokens.lapsed_bytes(),
            tokens_evicted_early: self.tokens.evicted_early,
            buffered_event_bytes: self.order.pending_bytes(),
            events_released_early: self.order.released_early,
        }
    }

    /// The baselines hold more than their share of the byte budget (at the last count).
    pub(super) fn baselines_full(&self) -> bool {
        self.stats.baseline_bytes > self.budget.baseline_bytes as u64
    }

    /// The baselines' bytes now: profiles and remembered grants (each grant charged its parsed
    /// scopes, though grants of one scope string share them: an upper bound).
    fn baseline_bytes_now(&self) -> u64 {
        let profiles: usize = self
            .baselines
            .apps
            .values()
            .map(super::budget::profile_bytes)
            .sum();
        (profiles + self.grants_bytes) as u64
    }

    /// Counts the baselines' bytes into the stats (what `baselines_full` decides on).
    pub(super) fn count_baseline_bytes(&mut self) {
        self.stats.baseline_bytes = self.baseline_bytes_now();
    }

    fn process(&mut self, event: Event, out: &mut Vec<Alert>) {
        self.stats.events += 1;
        if self
            .stats
            .events
            .is_multiple_of(super::budget::BASELINE_COUNT_EVERY)
        {
            self.count_baseline_bytes();
        }
        let time = event.time();
        if self.now.is_none_or(|n| time > n) {
            self.now = Some(time);
            for info in self.tokens.expire(time) {
                self.finish_token(&info);
            }
            self.incidents.close_quiet(time, out);
        }
        let mut findings = Vec::new();
        let client = event.client_id();
        if let Event::Access(_) = &event {
            self.advance_hour(client, time, &mut findings);
            self.advance_day(client, time, &mut findings);
        }
        let mut on_event = EventContext {
            common: event.common(),
            profile: self.baselines.apps.get(client),
            settings: &self.rules,
        };
        let known = on_event.profile.is_some();
        hooks::run(&mut on_event, &mut findings);
        if !known {
            self.new_apps_pending.remove(client);
            self.baselines
                .apps
                .insert(client.into(), AppProfile::new(client.into(), time));
        }
        // Over the byte budget, keys never seen are judged but not remembered (`budget`).
        let may_add = !self.baselines_full();
        let Some(profile) = self.baselines.apps.get_mut(client) else {
            return;
        };
        profile.touch(time);
        let learning = profile.is_learning(time, self.learning_days);
        match &event {
            Event::Token(t) => self.on_token(t, (learning, may_add), &mut findings),
            Event::Access(a) => self.on_access(a, (learning, may_add), &mut findings),
        }
        self.record(findings, out);
        // Tokens pushed out by the cache's bounds end as expired ones do.
        for info in self.tokens.take_evicted() {
            self.finish_token(&info);
        }
    }

    /// Counts an access into its app's hour, closing the hour before when it has ended.
    fn advance_hour(&mut self, client: &str, time: Timestamp, findings: &mut Vec<Finding>) {
        let hour = Timestamp(time.0 - time.0.rem_euclid(MICROS_PER_HOUR));
        // Most accesses fall in their app's open hour: one lookup, no key built.
        if let Some(open) = self.hours.get_mut(client) {
            if open.0 == hour {
                open.1 += 1;
                return;
            }
        }
        let client_key: Text = client.into();
        match self.hours.get(&client_key).copied() {
            Some((start, requests)) if start < hour => {
                self.close_hour(&client_key, start, requests, Some(hour), findings);
                self.hours.insert(client_key, (hour, 1));
            }
            Some(_) => {}
            None => {
                self.hours.insert(client_key, (hour, 1));
            }
        }
    }

    /// Opens an access's day for its app, closing the day before when it has ended.
    fn advance_day(&mut self, client: &str, time: Timestamp, findings: &mut Vec<Finding>) {
        let day = self.clock.day_start(time);
        if self
            .days
            .get(client)
            .is_some_and(|(start, _)| *start >= day)
        {
            return;
        }
        let client_key: Text = client.into();
        if let Some((start, _)) = self.days.get(&client_key) {
            if *start < day {
                if let Some((start, mix)) = self.days.remove(&client_key) {
                    self.close_day(&client_key, start, &mix, findings);
                }
            }
        }
        self.days
            .entry(client_key)
            .or_insert_with(|| (day, BTreeMap::new()));
    }

    /// A token event: the cache follows the token; a grant (issued or refreshed with scopes)
    /// is judged by the grant rules, remembered for refreshes and learned.
    fn on_token(
        &mut self,
        t: &TokenEvent,
        (learning, may_add): (bool, bool),
        findings: &mut Vec<Finding>,
    ) {
        let client = t.common.client_id.as_str();
        let lifetime = self
            .registry
            .get(client)
            .and_then(|app| app.token_lifetime_seconds);
        let revoked = self.tokens.apply_with_lifetime(t, lifetime);
        let Some(profile) = self.baselines.apps.get_mut(client) else {
            return;
        };
        if let Some(usage) = revoked.and_then(|info| self.usage.remove(&info.token_id)) {
            usage.fold_into(profile);
        }
        let grants = matches!(t.event, TokenAction::Issued | TokenAction::Refreshed);
        let (true, Some(granted)) = (grants, t.granted_scope()) else {
            return;
        };
        // The cache has just parsed this grant; parse again only for tokens without an id.
        let granted = t
            .token_id
            .as_deref()
            .and_then(|id| self.tokens.get(id))
            .map(|info| Arc::clone(&info.scopes))
            .unwrap_or_else(|| Arc::new(crate::smart::scope::ScopeSet::parse(granted)));
        let key: GrantKey = (
            t.common.client_id.clone(),
            t.common.user.clone(),
            t.patient.clone(),
        );
        let mut grant = GrantContext::new(t, &granted, &self.registry, profile, &self.rules);
        grant.learning = learning;
        let refreshable = match t.event {
            TokenAction::Refreshed => refreshable_grants(&self.grants, &key),
            _ => None,
        };
        grant.refreshable = refreshable.as_deref();
        let from = findings.len();
        hooks::run(&mut grant, findings);
        let incidents = &self.incidents;
        super::rules::fold::join_first_refresh_to_offline_access(
            findings,
            from,
            &self.rules,
            || incidents.open_cause(client, OFFLINE_ACCESS_NEW),
        );
        if t.event == TokenAction::Issued {
            remember_grant(
                &mut self.grants,
                &mut self.grants_bytes,
                key,
                &granted,
                may_add,
            );
        }
        let grant_type = t.grant_type.as_deref();
        let time = t.common.time;
        learn::learn_grant(profile, &granted, grant_type, time, (learning, may_add));
    }

    /// An access: explained against its token, judged by the access rules, counted into its
    /// token's usage and its app's day, and learned.
    fn on_access(
        &mut self,
        a: &AccessEvent,
        (learning, may_add): (bool, bool),
        findings: &mut Vec<Finding>,
    ) {
        let (client, time) = (a.common.client_id.as_str(), a.common.time);
        self.stats.accesses += 1;
        let context = ExplainContext {
            export_in_progress: self
                .exports
                .get(client)
                .is_some_and(|at| time.0 - at.0 <= EXPORT_FOLLOWUP_SECONDS * MICROS_PER_SECOND),
        };
        let explained = explain(a, &self.tokens, &self.classifier, context);
        let first_patient = super::explain::first_patient_of(&explained, a);
        let kick_off = explained.served && explained.request.is_bulk_export();
        if kick_off {
            self.exports.insert(client.into(), time);
        }
        if explained.is_explained() {
            self.stats.explained += 1;
        }
        if explained.scopes == super::explain::ScopeFit::UnknownToken {
            self.stats.unknown_token += 1;
        }
        let Some(profile) = self.baselines.apps.get_mut(client) else {
            return;
        };
        if kick_off {
            let weekend = self.clock.is_weekend(time);
            if let Some(done) = self
                .export_runs
                .insert(client.into(), ExportRun::new(weekend))
            {
                done.fold_into(profile);
            }
        }
        let export_file = context.export_in_progress
            && explained.request.interaction == Interaction::BulkDownload;
        let mut export_run = self.export_runs.get_mut(client).filter(|_| export_file);
        if let Some(run) = export_run.as_deref_mut() {
            run.record(a);
        }
        // A file its export counted is that export's volume, not its token's.
        let counted_by_export = export_run.is_some();
        if let Some(user) = explained.token.and_then(|t| t.user.as_ref()) {
            note_account(&mut self.hour_accounts, client, user);
        }
        let usage = explained.token.map(|token| {
            let usage = self.usage.entry(token.token_id.clone()).or_default();
            usage.record(a, &explained.request, counted_by_export);
            usage
        });
        let population_level = explained.reaches_population();
        let lapsed_expiry = match (explained.token, a.token_id.as_deref()) {
            (None, Some(id)) if explained.served => self.tokens.lapsed_expiry(id, client),
            _ => None,
        };
        let mut access = AccessContext {
            access: a,
            explained: &explained,
            registry: &self.registry,
            profile,
            population_level,
            usage,
            export_run,
            patient_bound: explained
                .token
                .is_some_and(super::explain::is_patient_bound),
            lapsed_expiry,
            learning,
            settings: &self.rules,
        };
        let from = findings.len();
        hooks::run(&mut access, findings);
        super::rules::fold::one_incident_per_act(findings, from, &self.rules);
        // The request's own new act, read before any volume finding is joined to an older one.
        let act = super::rules::fold::new_act(findings, from, &self.rules);
        if let Some(usage) = access.usage {
            if usage.new_act.is_none() {
                usage.new_act.clone_from(&act);
            }
            if let Some(token_act) = &usage.new_act {
                super::rules::fold::join_volume_to_new_act(findings, from, &self.rules, token_act);
            }
        }
        if kick_off {
            if let Some(run) = self.export_runs.get_mut(client) {
                run.new_act = act;
            }
        }
        let hour_of_week = self.clock.hour_of_week(time);
        let request = &explained.request;
        learn::learn_access(
            profile,
            a,
            request,
            population_level,
            hour_of_week,
            (learning, may_add),
        );
        if let (true, Some(ty)) = ((200..300).contains(&a.status), request.resource_type) {
            if let Some((_, mix)) = self.days.get_mut(client) {
                match mix.get_mut(ty) {
                    Some(n) => *n += 1,
                    None => {
                        mix.insert(ty.to_string(), 1);
                    }
                }
            }
        }
        if let Some((token_id, patient)) = first_patient {
            self.tokens.set_first_patient(&token_id, patient);
        }
    }
}

/// The incidents a first refresh joins (`fold::join_first_refresh_to_offline_access`).
const OFFLINE_ACCESS_NEW: super::rules::catalog::RuleId =
    super::rules::catalog::RuleId::OfflineAccessNew;

/// Most remembered grant keys a refresh that names no user or no patient is compared across;
/// beyond it the refresh is not judged (bounded work per event).
const MAX_KEYS_SCANNED: usize = 4096;

/// The grants a refresh may continue: those issued for its (app, user, launch patient); when
/// the refresh record leaves the user or the patient out (a gateway or an authorization server
/// that logs only some fields), every grant of the app that agrees with the fields it has
/// (RFC 6749 §6: a refresh may not exceed the grant it continues, whichever that was).
fn refreshable_grants<'g>(
    grants: &'g BTreeMap<GrantKey, Vec<Arc<crate::smart::scope::ScopeSet>>>,
    key: &GrantKey,
) -> Option<Cow<'g, [Arc<crate::smart::scope::ScopeSet>]>> {
    let (client, user, patient) = key;
    if user.is_some() && patient.is_some() {
        return grants.get(key).map(|list| Cow::Borrowed(list.as_slice()));
    }
    let agrees = |known: &Option<Text>, field: &Option<Text>| known.is_none() || known == field;
    let mut found: Vec<Arc<crate::smart::scope::ScopeSet>> = Vec::new();
    let app = grants
        .range((client.clone(), None, None)..)
        .take_while(|((c, _, _), _)| c == client);
    for (scanned, ((_, u, p), list)) in app.enumerate() {
        if scanned == MAX_KEYS_SCANNED {
            return None;
        }
        if agrees(user, u) && agrees(patient, p) {
            for g in list {
                if !found.iter().any(|f| Arc::ptr_eq(f, g) || **f == **g) {
                    found.push(Arc::clone(g));
                }
            }
        }
    }
    (!found.is_empty()).then_some(Cow::Owned(found))
}

/// Adds an issued grant to those a refresh may continue (distinct grants, newest last).
fn remember_grant(
    grants: &mut BTreeMap<GrantKey, Vec<Arc<crate::smart::scope::ScopeSet>>>,
    grants_bytes: &mut usize,
    key: GrantKey,
    granted: &Arc<crate::smart::scope::ScopeSet>,
    may_add: bool,
) {
    // Over the byte budget no new key is remembered (`budget`).
    if !may_add && !grants.contains_key(&key) {
        return;
    }
    if grants.len() >= MAX_REMEMBERED_GRANTS && !grants.contains_key(&key) {
        grants.clear();
        *grants_bytes = 0;
    }
    let list = grants.entry(key).or_default();
    let before = grant_list_bytes(list);
    list.retain(|g| **g != **granted);
    list.push(Arc::clone(granted));
    if list.len() > MAX_GRANTS_PER_KEY {
        list.remove(0);
    }
    *grants_bytes = *grants_bytes + grant_list_bytes(list) - before;
}

/// The estimated bytes of one remembered grant key and its list (`budget`); an empty list is
/// a key not yet remembered.
pub(super) fn grant_list_bytes(list: &[Arc<crate::smart::scope::ScopeSet>]) -> usize {
    if list.is_empty() {
        return 0;
    }
    super::budget::GRANT_KEY_BYTES + list.iter().map(|g| g.approx_bytes()).sum::<usize>()
}

/// Counts a token's account into its app's open hour (one lookup when the hour knows it).
fn note_account(hours: &mut BTreeMap<Text, HourAccounts>, client: &str, user: &Text) {
    match hours.get_mut(client) {
        Some(accounts) => accounts.add(user),
        None => {
            let mut accounts = HourAccounts::default();
            accounts.add(user);
            hours.insert(client.into(), accounts);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Activity, Category, Severity};
    use crate::event::parse_event_str;

    fn run(lines: &[String], registry: &str) -> (Vec<Alert>, EngineStats) {
        let mut engine = Engine::new(EngineConfig::default(), Registry::parse(registry).unwrap());
        let mut out = Vec::new();
        for l in lines {
            engine.push(parse_event_str(l).unwrap(), &mut out).unwrap();
        }
        engine.finish(&mut out);
        (out, engine.stats().clone())
    }

    fn of_rule<'a>(alerts: &'a [Alert], rule: &str) -> Vec<&'a Alert> {
        alerts.iter().filter(|a| a.rule == rule).collect()
    }

    fn token(at: &str, client: &str, id: &str, scopes: &str, patient: Option<&str>) -> String {
        let patient = patient.map_or(String::new(), |p| format!(r#","patient":"{p}""#));
        format!(
            r#"{{"type":"token","event":"issued","time":"{at}","client_id":"{client}","token_id":"{id}","grant_type":"authorization_code","scope_granted":"{scopes}","expires_in":3600{patient}}}"#
        )
    }
    fn access(at: &str, client: &str, id: &str, url: &str, status: u16, purpose: &str) -> String {
        format!(
            r#"{{"type":"access","time":"{at}","client_id":"{client}","token_id":"{id}","method":"GET","url":"{url}","status":{status},"purpose_of_use":"{purpose}"}}"#
        )
    }

    #[test]
    fn enforcement_gap_names_app_category_and_window() {
        let mut lines = vec![
            token(
                "2024-03-05T14:00:00Z",
                "chart",
                "t1",
                "launch/patient patient/Observation.read",
                Some("p1"),
            ),
            token(
                "2024-03-05T14:00:00Z",
                "quiet",
                "t2",
                "launch/patient patient/*.read",
                Some("p2"),
            ),
        ];
        for m in 1..20 {
            lines.push(access(
                &format!("2024-03-05T14:{m:02}:00Z"),
                "chart",
                "t1",
                "Observation?patient=p1",
                200,
                "TREAT",
            ));
            lines.push(access(
                &format!("2024-03-05T14:{m:02}:30Z"),
                "quiet",
                "t2",
                "Condition?patient=p2",
                200,
                "TREAT",
            ));
        }
        // Out of scope, served: the gap. Arrives a little out of order.
        lines.push(access(
            "2024-03-05T14:25:00Z",
            "chart",
            "t1",
            "Condition?patient=p1",
            200,
            "TREAT",
        ));
        lines.push(access(
            "2024-03-05T14:24:00Z",
            "chart",
            "t1",
            "Condition?patient=p1",
            200,
            "TREAT",
        ));
        lines.push(access(
            "2024-03-05T14:26:00Z",
            "chart",
            "t1",
            "Condition?patient=p1",
            403,
            "TREAT",
        ));
        let (alerts, stats) = run(&lines, "");
        assert_eq!(stats.late, 0);
        let alerts: Vec<Alert> = alerts.into_iter().filter(|a| a.rule != "new_app").collect();
        assert_eq!(alerts.len(), 2, "{alerts:#?}");
        let a = &alerts[0];
        assert_eq!(
            (a.client_id.as_str(), a.category, a.rule),
            ("chart", Category::ScopeCreep, "enforcement_gap")
        );
        assert_eq!(a.severity, Severity::High);
        assert_eq!(a.activity, Activity::Create);
        assert_eq!(
            a.window.start,
            Timestamp::parse_rfc3339("2024-03-05T14:00:00Z").unwrap()
        );
        assert_eq!(
            a.time,
            Timestamp::parse_rfc3339("2024-03-05T14:24:00Z").unwrap(),
            "raised at the first gap in event time"
        );
        assert_eq!(a.evidence.example_requests, vec!["GET Condition?patient=…"]);
        assert_eq!(a.observed["missing_permission"], "s");
        assert_eq!(alerts[1].activity, Activity::Update);
        assert_eq!(
            alerts[1].evidence.counts["findings"], 2,
            "the 403 is not a gap"
        );
        assert_eq!(stats.accesses, 41);
    }

    #[test]
    fn serving_an_expired_token_is_flagged_beyond_the_skew_allowance() {
        let issue = r#"{"type":"token","event":"issued","time":"2024-03-05T09:00:00Z","client_id":"portal","token_id":"t1","scope_granted":"launch/patient patient/Observation.rs","patient":"p1","expires_in":300}"#;
        let mut lines = vec![issue.to_string()];
        // Inside the lifetime, then 30 s past it (clock skew): both silent.
        for at in ["09:04:00", "09:05:30"] {
            lines.push(access(
                &format!("2024-03-05T{at}Z"),
                "portal",
                "t1",
                "Observation?patient=p1",
                200,
                "PATRQT",
            ));
        }
        // Seven minutes past expiry: served, flagged; a 401 at the same time is not.
        lines.push(access(
            "2024-03-05T09:12:00Z",
            "portal",
            "t1",
            "Observation?patient=p1",
            401,
            "PATRQT",
        ));
        lines.push(access(
            "2024-03-05T09:12:10Z",
            "portal",
            "t1",
            "Observation?patient=p1",
            200,
            "PATRQT",
        ));
        let (alerts, _) = run(&lines, "");
        let expired = of_rule(&alerts, "expired_token_use");
        assert_eq!(expired.len(), 1, "{alerts:#?}");
        let a = expired[0];
        assert_eq!(
            (a.client_id.as_str(), a.category),
            ("portal", Category::ScopeCreep)
        );
        assert_eq!(
            a.time,
            Timestamp::parse_rfc3339("2024-03-05T09:12:10Z").unwrap()
        );
        assert_eq!(
            a.window.start,
            Timestamp::parse_rfc3339("2024-03-05T09:00:00Z").unwrap()
        );
        assert_eq!(a.observed["seconds_past_expiry"], 430);
        assert_eq!(a.evidence.token_ids, vec!["t1"]);
    }

    /// RFC 6749 §1.4 (tokens represent durations of access, enforced by the resource server) and
    /// §5.1 (`expires_in`):
    /// a token honoured long after it expired, when the cache no longer holds it (its expiry
    /// plus the 600 s grace), is still found while it is remembered as lapsed (a day); a token
    /// never seen is not judged, nor one whose id was issued again.
    #[test]
    fn a_token_honoured_long_after_it_expired_is_found() {
        let issue = |at: &str, id: &str| {
            format!(
                r#"{{"type":"token","event":"issued","time":"{at}","client_id":"dash","token_id":"{id}","scope_granted":"user/Observation.rs","expires_in":300}}"#
            )
        };
        let served = |at: &str, client: &str, id: &str, status: u16| {
            access(at, client, id, "Observation?code=x", status, "TREAT")
        };
        let lines = vec![
            issue("2024-03-05T09:00:00Z", "t1"),
            issue("2024-03-05T09:00:00Z", "t2"),
            served("2024-03-05T09:01:00Z", "dash", "t1", 200),
            // t2 lapsed too, and is issued again before its next use (a token store reusing
            // ids): judged by its new lifetime, not as lapsed.
            issue("2024-03-05T09:40:00Z", "t2"),
            // 38 minutes past t1's expiry: long gone from the cache.
            served("2024-03-05T09:43:00Z", "dash", "t1", 200),
            served("2024-03-05T09:43:10Z", "dash", "t2", 200),
            served("2024-03-05T09:43:20Z", "dash", "never", 200),
            // Refused: the server did its job.
            served("2024-03-05T09:43:30Z", "dash", "t1", 401),
            // Another client presenting t1's id is not t1.
            served("2024-03-05T09:44:00Z", "other", "t1", 200),
            // Past the day t1 is remembered for: an unknown token.
            served("2024-03-06T09:06:00Z", "dash", "t1", 200),
        ];
        let (alerts, stats) = run(&lines, "");
        let expired = of_rule(&alerts, "expired_token_use");
        assert_eq!(expired.len(), 1, "{alerts:#?}");
        let a = expired[0];
        assert_eq!(
            (a.client_id.as_str(), a.category, a.severity),
            ("dash", Category::ScopeCreep, Severity::Medium)
        );
        assert_eq!(a.observed["seconds_past_expiry"], 38 * 60);
        assert_eq!(
            a.baseline["expires_at"],
            Timestamp::parse_rfc3339("2024-03-05T09:05:00Z")
                .unwrap()
                .to_rfc3339()
        );
        assert_eq!(a.evidence.token_ids, vec!["t1"]);
        // Alert windows are whole hours: the hour of the late use.
        assert_eq!(
            (a.window.start, a.window.end),
            (
                Timestamp::parse_rfc3339("2024-03-05T09:00:00Z").unwrap(),
                Timestamp::parse_rfc3339("2024-03-05T10:00:00Z").unwrap()
            )
        );
        assert_eq!(stats.unknown_token, 5, "{stats:#?}");
    }

    /// SMART App Launch 2.x, "Scopes and Launch Context": a `patient/` search is restricted to
    /// the launch patient. A patient app's first search across patients, answered with 22 of
    /// them, is one high `population_access_new` incident naming the unenforced context — not
    /// also an `enforcement_gap`; once the app's population access is established, the same
    /// answer is the gap it is.
    #[test]
    fn a_patient_search_answered_for_many_patients_is_one_incident() {
        let mut lines = learned_days(8);
        let population = |at: &str, token: &str, url: &str| {
            format!(
                r#"{{"type":"access","time":"{at}","client_id":"chart","token_id":"{token}","method":"GET","url":"{url}","status":200,"purpose_of_use":"TREAT","patient_count":22}}"#
            )
        };
        let grant = |day: u32| {
            token(
                &format!("2024-03-{day}T10:00:00Z"),
                "chart",
                &format!("p{day}"),
                "launch/patient patient/Observation.read",
                Some("p1"),
            )
        };
        lines.push(grant(10));
        lines.push(population(
            "2024-03-10T10:01:00Z",
            "p10",
            "Observation?code=4548-4",
        ));
        lines.push(population(
            "2024-03-10T10:01:30Z",
            "p10",
            "Observation?code=2345-7",
        ));
        let (alerts, _) = run(&lines, "");
        let opened: Vec<(&str, Severity, Timestamp)> = alerts
            .iter()
            .filter(|a| a.activity == Activity::Create && a.severity != Severity::Info)
            .map(|a| (a.rule, a.severity, a.window.start))
            .collect();
        // Alert windows are whole hours.
        let at = Timestamp::parse_rfc3339("2024-03-10T10:00:00Z").unwrap();
        assert_eq!(
            opened,
            vec![("population_access_new", Severity::High, at)],
            "{alerts:#?}"
        );
        assert!(
            !alerts.iter().any(|a| a.rule == "enforcement_gap"),
            "{alerts:#?}"
        );
        let found = alerts
            .iter()
            .find(|a| a.rule == "population_access_new")
            .expect("found");
        assert_eq!(
            (found.client_id.as_str(), found.category),
            ("chart", Category::PurposeDrift)
        );
        assert_eq!(found.observed["launch_context"], "other-patient");
        assert_eq!(found.observed["patients_in_response"], 22);
        // Two more days of it establish the app's population access; on the fourth the
        // server's answer is reported for what it still is, a cross-patient gap.
        for day in 11..=13 {
            lines.push(grant(day));
            lines.push(population(
                &format!("2024-03-{day}T10:02:00Z"),
                &format!("p{day}"),
                "Observation?code=4548-4",
            ));
        }
        let (alerts, _) = run(&lines, "");
        let gap = alerts
            .iter()
            .find(|a| a.rule == "enforcement_gap")
            .expect("the gap, once the search is no longer new");
        assert_eq!(
            (gap.client_id.as_str(), gap.category, gap.severity),
            ("chart", Category::ScopeCreep, Severity::High)
        );
        assert_eq!(
            gap.window.start,
            Timestamp::parse_rfc3339("2024-03-13T10:00:00Z").unwrap()
        );
        assert_eq!(gap.observed["launch_context"], "other-patient");
    }

    #[test]
    fn same_input_same_ids_in_any_order_within_lateness() {
        let lines = vec![
            token(
                "2024-03-05T14:00:00Z",
                "chart",
                "t1",
                "patient/Observation.rs",
                Some("p1"),
            ),
            access(
                "2024-03-05T14:01:00Z",
                "chart",
                "t1",
                "Condition?patient=p1",
                200,
                "TREAT",
            ),
            access(
                "2024-03-05T14:02:00Z",
                "chart",
                "t1",
                "Observation?patient=p9",
                200,
                "TREAT",
            ),
        ];
        let (a, _) = run(&lines, "");
        let reversed: Vec<String> = lines.iter().rev().cloned().collect();
        let (b, _) = run(&reversed, "");
        let ids = |v: &[Alert]| v.iter().map(|x| x.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b));
        assert!(!a.is_empty());
    }

    #[test]
    fn registry_rules() {
        let registry = r#"
[[app]]
client_id = "chart"
purpose = ["TREAT"]
allowed_scopes = "launch/patient patient/Observation.read"
modes = ["patient"]
"#;
        let lines = vec![
            // A v2 re-spelling of the registered scope: no violation.
            token(
                "2024-03-05T14:00:00Z",
                "chart",
                "t1",
                "launch/patient patient/Observation.rs",
                Some("p1"),
            ),
            access(
                "2024-03-05T14:01:00Z",
                "chart",
                "t1",
                "Observation?patient=p1",
                200,
                "TREAT",
            ),
            // Broader than registered, in user context, for marketing.
            token(
                "2024-03-05T15:00:00Z",
                "chart",
                "t2",
                "launch/patient user/*.read",
                None,
            ),
            access(
                "2024-03-05T15:01:00Z",
                "chart",
                "t2",
                "Observation?code=x",
                200,
                "HMARKT",
            ),
            // Not in the registry: silent.
            token("2024-03-05T15:00:00Z", "other", "t3", "system/*.*", None),
        ];
        let (alerts, _) = run(&lines, registry);
        let rules: Vec<(&str, &str)> = alerts
            .iter()
            .filter(|a| a.activity == Activity::Create && a.rule != "new_app")
            .map(|a| (a.client_id.as_str(), a.rule))
            .collect();
        assert_eq!(
            rules,
            vec![
                ("chart", "registry_scope_violation"),
                ("chart", "registry_mode_violation"),
                ("chart", "registry_purpose_violation"),
            ]
        );
        let find = |rule: &str| alerts.iter().find(|a| a.rule == rule).unwrap();
        let scope = find("registry_scope_violation");
        assert_eq!(
            scope.severity,
            Severity::High,
            "wildcard + context escalation"
        );
        assert_eq!(scope.observed["outside_registration"][0], "user/*.rs");
        assert_eq!(
            find("registry_purpose_violation").category,
            Category::PurposeDrift
        );
    }

    /// Eight days of a patient-facing app: a token and a few reads each day at 10:00.
    fn learned_days(days: u32) -> Vec<String> {
        let mut lines = Vec::new();
        for d in 0..days {
            let day = format!("2024-03-{:02}", d + 1);
            let tok = format!("t{d}");
            lines.push(token(
                &format!("{day}T10:00:00Z"),
                "chart",
                &tok,
                "launch/patient patient/Observation.read",
                Some("p1"),
            ));
            for m in 1..4 {
                lines.push(access(
                    &format!("{day}T10:0{m}:00Z"),
                    "chart",
                    &tok,
                    "Observation?patient=p1",
                    200,
                    "TREAT",
                ));
            }
        }
        lines
    }

    fn creates(alerts: &[Alert]) -> Vec<(String, &'static str, Category)> {
        alerts
            .iter()
            .filter(|a| a.activity == Activity::Create)
            .map(|a| (a.client_id.clone(), a.rule, a.category))
            .collect()
    }

    #[test]
    fn learning_period_then_novelty_rules() {
        let mut lines = learned_days(8);
        // Day 9: the same grant re-spelled in v2 — nothing new.
        lines.push(token(
            "2024-03-09T10:00:00Z",
            "chart",
            "a",
            "launch/patient patient/Observation.rs",
            Some("p1"),
        ));
        lines.push(access(
            "2024-03-09T10:01:00Z",
            "chart",
            "a",
            "Observation?patient=p1",
            200,
            "TREAT",
        ));
        let (quiet, _) = run(&lines, "");
        assert_eq!(
            creates(&quiet),
            vec![("chart".to_string(), "new_app", Category::PurposeDrift)]
        );
        assert_eq!(quiet[0].severity, Severity::Info);

        // Day 10: a wildcard, a population search and a bulk export, for a new purpose.
        lines.push(token(
            "2024-03-10T15:00:00Z",
            "chart",
            "b",
            "launch/patient patient/*.read offline_access",
            Some("p1"),
        ));
        lines.push(token(
            "2024-03-10T15:00:00Z",
            "chart",
            "c",
            "system/*.read",
            None,
        ));
        lines.push(access(
            "2024-03-10T15:05:00Z",
            "chart",
            "c",
            "Patient/$export",
            202,
            "HOPERAT",
        ));
        lines.push(access(
            "2024-03-10T15:06:00Z",
            "chart",
            "c",
            "Observation?code=1234-5",
            200,
            "TREAT",
        ));
        let (alerts, _) = run(&lines, "");
        let got = creates(&alerts);
        let rules: Vec<&str> = got.iter().map(|(_, r, _)| *r).collect();
        assert_eq!(
            rules,
            vec![
                "new_app",
                "wildcard_broadening",
                "offline_access_new",
                "context_escalation",
                "new_purpose",
                "bulk_export_new",
                "population_access_new",
            ],
            "{got:#?}"
        );
        for a in alerts.iter().filter(|a| a.rule != "new_app") {
            assert_eq!(a.client_id, "chart");
            assert_eq!(
                a.window.start,
                Timestamp::parse_rfc3339("2024-03-10T15:00:00Z").unwrap(),
                "{}",
                a.rule
            );
        }
        let cat = |rule: &str| got.iter().find(|(_, r, _)| *r == rule).map(|(_, _, c)| *c);
        assert_eq!(cat("wildcard_broadening"), Some(Category::ScopeCreep));
        assert_eq!(cat("context_escalation"), Some(Category::ScopeCreep));
        assert_eq!(cat("bulk_export_new"), Some(Category::PurposeDrift));
    }

    /// A backend's token at 02:00 on March `day` and its export kick-off `url` a minute later.
    fn etl_export(day: u32, url: &str) -> [String; 2] {
        let scopes = "system/Patient.rs system/Group.rs system/Observation.rs";
        let id = format!("t{day}");
        let at = format!("2024-03-{day:02}T02:00:00Z");
        let kick_off = format!("2024-03-{day:02}T02:01:00Z");
        [
            token(&at, "etl", &id, scopes, None),
            access(&kick_off, "etl", &id, url, 202, "HOPERAT"),
        ]
    }

    /// Bulk Data Access IG 2.0, "Bulk Data Kick-off Request": `Group/[id]/$export` exports a
    /// Group's members, `Patient/$export` every patient, `$export` all data. A backend that
    /// exported one Group through its learning and then exports every patient reaches a new
    /// population although `$export` is established; going back to its Group is not news.
    #[test]
    fn an_export_that_reaches_further_than_the_app_ever_did_is_found() {
        let mut lines: Vec<String> = (1..=12)
            .flat_map(|day| etl_export(day, "Group/g1/$export?_type=Patient,Observation"))
            .collect();
        lines.extend(etl_export(13, "Patient/$export?_type=Patient,Observation"));
        lines.extend(etl_export(14, "Group/g1/$export?_type=Patient"));
        let (alerts, _) = run(&lines, "");
        let exports: Vec<&Alert> = alerts
            .iter()
            .filter(|a| a.rule == "bulk_export_new" && a.activity == Activity::Create)
            .collect();
        assert_eq!(exports.len(), 1, "{:#?}", creates(&alerts));
        let found = exports[0];
        assert_eq!(
            (found.client_id.as_str(), found.category),
            ("etl", Category::PurposeDrift)
        );
        assert_eq!(
            found.window.start,
            Timestamp::parse_rfc3339("2024-03-13T02:00:00Z").unwrap()
        );
        assert_eq!(found.observed["level"], "$export Patient");
        assert_eq!(found.baseline["export_levels"][0], "$export Group");
    }

    /// A served GET of `url` that returned `n` resources.
    fn returned(at: &str, client: &str, id: &str, url: &str, n: u64) -> String {
        format!(
            r#"{{"type":"access","time":"{at}","client_id":"{client}","token_id":"{id}","method":"GET","url":"{url}","status":200,"resources_returned":{n},"purpose_of_use":"HOPERAT"}}"#
        )
    }

    /// One token of `client` on March `day` at `hour`:00: an export kick-off when `export`,
    /// then four downloads (or searches) of `n` resources each.
    fn backend_day(client: &str, (day, hour): (u32, u32), export: bool, n: u64) -> Vec<String> {
        let id = format!("{client}-{day}");
        let at = |minute: u32| format!("2024-03-{day:02}T{hour:02}:{minute:02}:00Z");
        let mut lines = vec![token(
            &at(0),
            client,
            &id,
            "system/Observation.rs system/Group.rs",
            None,
        )];
        if export {
            lines.push(access(
                &at(1),
                client,
                &id,
                "Group/g1/$export?_type=Observation",
                202,
                "HOPERAT",
            ));
        }
        for k in 0..4u32 {
            let url = if export {
                format!("bulkfiles/{id}/{k}.ndjson")
            } else {
                format!("Observation?_lastUpdated=ge2024-03-{day:02}&page={k}")
            };
            lines.push(returned(&at(2 + k), client, &id, &url, n));
        }
        lines
    }

    /// Bulk Data Access IG 2.0, "Bulk Data Kick-off Request" and "Bulk Data Output File
    /// Request": the output files belong to the kick-off. A first export is one act
    /// (`bulk_export_new`): with no earlier export to compare, its files are not a second
    /// incident (issue #13, "Incidents a SOC can work": one incident per cause), nor does its
    /// token count them as its own volume. An app that exports every night has peers for each
    /// export: twenty times their volume is an incident of its own (`export_outlier`), not a
    /// token's (`token_outlier` counts what a token retrieves outside exports).
    #[test]
    fn a_first_export_is_one_incident_and_an_established_exporters_big_export_is_its_own() {
        let mut lines: Vec<String> = (1..=24)
            .flat_map(|day| {
                let mut both = backend_day("feed", (day, 2), false, 25);
                both.extend(backend_day("nightly", (day, 3), true, 25));
                both
            })
            .collect();
        lines.extend(backend_day("feed", (25, 2), true, 2_500));
        lines.extend(backend_day("nightly", (25, 3), true, 2_500));
        let (alerts, _) = run(&lines, "");
        let mut opened = creates(&alerts);
        opened.retain(|(_, rule, _)| *rule != "new_app");
        let of_app = |app: &str| -> Vec<(&str, Category)> {
            opened
                .iter()
                .filter(|(a, _, _)| a == app)
                .map(|(_, rule, category)| (*rule, *category))
                .collect()
        };
        assert_eq!(
            of_app("feed"),
            [("bulk_export_new", Category::PurposeDrift)],
            "{opened:#?}"
        );
        assert_eq!(
            of_app("nightly"),
            [("export_outlier", Category::DataVolume)],
            "{opened:#?}"
        );
        let outlier = of_rule(&alerts, "export_outlier")[0];
        assert_eq!(
            outlier.window.start,
            Timestamp::parse_rfc3339("2024-03-25T03:00:00Z").unwrap()
        );
        assert!(outlier.summary.contains("weekday exports"), "{outlier:#?}");
        // Its first file already crosses ten times a usual export (100 resources).
        assert_eq!(outlier.observed["retrieved"], 2_500);
    }

    #[test]
    fn a_baseline_learned_before_export_levels_does_not_judge_them() {
        // The same backend, its baseline learned by a version that kept only `$export`: the
        // levels it relearns from now on say nothing of what it exported before.
        let export = |engine: &mut Engine, day: u32, url: &str, out: &mut Vec<Alert>| {
            for line in etl_export(day, url) {
                engine.push(parse_event_str(&line).unwrap(), out).unwrap();
            }
        };
        let mut engine = Engine::new(EngineConfig::default(), Registry::default());
        let mut out = Vec::new();
        for day in 1..=12 {
            export(&mut engine, day, "Group/g1/$export", &mut out);
        }
        let mut old = engine.baselines().clone();
        for profile in old.apps.values_mut() {
            profile.operations.entries.retain(|key, _| key == "$export");
        }
        engine.restore_baselines(old);
        for day in 13..=20 {
            export(&mut engine, day, "Group/g1/$export", &mut out);
        }
        export(&mut engine, 21, "Patient/$export", &mut out);
        engine.finish(&mut out);
        assert!(
            !out.iter().any(|a| a.rule == "bulk_export_new"),
            "{:#?}",
            creates(&out)
        );
    }

    #[test]
    fn nothing_fires_while_learning() {
        let mut lines = learned_days(3);
        lines.push(token(
            "2024-03-03T15:00:00Z",
            "chart",
            "x",
            "system/*.*",
            None,
        ));
        lines.push(access(
            "2024-03-03T15:01:00Z",
            "chart",
            "x",
            "Patient/$export",
            202,
            "HMARKT",
        ));
        let (alerts, _) = run(&lines, "");
        assert_eq!(
            creates(&alerts),
            vec![("chart".to_string(), "new_app", Category::PurposeDrift)]
        );
    }

    /// Issue #16 (one byte budget): once the baselines hold more than their share of
    /// `max_state_bytes`, a new app is refused (`over_limit`) and an app's scope never seen is
    /// judged but not remembered; the apps already watched go on.
    #[test]
    fn over_the_byte_budget_no_new_app_or_key_is_remembered() {
        let config = EngineConfig {
            max_state_bytes: 4 * 1024,
            ..EngineConfig::default()
        };
        let mut engine = Engine::new(config, Registry::default());
        let mut out = Vec::new();
        for l in &learned_days(2) {
            engine.push(parse_event_str(l).unwrap(), &mut out).unwrap();
        }
        assert!(!engine.baselines_full(), "not counted yet");
        engine.count_baseline_bytes();
        assert!(engine.baselines_full(), "{}", engine.stats.baseline_bytes);

        let other = token(
            "2024-03-03T10:00:00Z",
            "other",
            "x",
            "patient/Observation.rs",
            None,
        );
        let refused = engine
            .push(parse_event_str(&other).unwrap(), &mut out)
            .unwrap_err();
        let reject = refused.refused.expect("refused, not late");
        assert_eq!(reject.kind, crate::event::RejectKind::OverLimit);
        assert!(
            reject.reason.contains("--max-state-bytes"),
            "{}",
            reject.reason
        );

        let wider = token(
            "2024-03-03T11:00:00Z",
            "chart",
            "y",
            "launch/patient patient/Observation.read patient/Condition.read",
            Some("p1"),
        );
        engine
            .push(parse_event_str(&wider).unwrap(), &mut out)
            .unwrap();
        engine.finish(&mut out);
        let chart = &engine.baselines().apps["chart"];
        assert!(chart.scopes.entries.contains_key("patient/Observation.rs"));
        assert!(!chart.scopes.entries.contains_key("patient/Condition.rs"));
        assert!(!engine.baselines().apps.contains_key("other"));
    }

    #[test]
    fn restored_baselines_carry_what_was_learned() {
        let lines = learned_days(8);
        let mut engine = Engine::new(EngineConfig::default(), Registry::default());
        let mut out = Vec::new();
        for l in &lines {
            engine.push(parse_event_str(l).unwrap(), &mut out).unwrap();
        }
        engine.finish(&mut out);
        // The Parquet round trip of these tables is tested where they are written
        // (`scopewatch::baseline::tables`); here, what a restored engine does with them.
        let restored = engine.baselines().clone();
        let chart = &restored.apps["chart"];
        assert!(chart
            .scopes
            .is_established(&"patient/Observation.rs".to_string()));
        assert_eq!(chart.active_days, 8);
        assert_eq!(chart.hour_of_week.iter().sum::<u64>(), 24);
        // A restored engine knows the app: no new_app alert, and the wildcard still fires.
        let mut engine = Engine::new(EngineConfig::default(), Registry::default());
        engine.restore_baselines(restored);
        let mut out = Vec::new();
        let t = token(
            "2024-03-10T15:00:00Z",
            "chart",
            "b",
            "launch/patient patient/*.read",
            Some("p1"),
        );
        engine.push(parse_event_str(&t).unwrap(), &mut out).unwrap();
        engine.finish(&mut out);
        assert_eq!(
            creates(&out),
            vec![(
                "chart".to_string(),
                "wildcard_broadening",
                Category::ScopeCreep
            )]
        );
    }

    /// A clinician app over `days` days from Monday 2024-03-04: on weekdays, 9:00–16:59, each
    /// hour one token (5 min lifetime) makes `per_hour(day)` requests for its launch patient.
    fn steady(days: i64, per_hour: impl Fn(i64) -> u32) -> Vec<String> {
        let start = Timestamp::parse_rfc3339("2024-03-04T00:00:00Z").unwrap();
        let mut lines = Vec::new();
        for d in 0..days {
            if d % 7 >= 5 {
                continue;
            }
            for h in 9..17 {
                let t0 = Timestamp(start.0 + (d * 24 + h) * MICROS_PER_HOUR);
                let tok = format!("d{d}h{h}");
                let patient = format!("p{}", d * 24 + h);
                lines.push(format!(
                    r#"{{"type":"token","event":"issued","time":"{}","client_id":"ward","token_id":"{tok}","grant_type":"authorization_code","scope_granted":"launch/patient patient/Observation.rs","patient":"{patient}","expires_in":300}}"#,
                    t0.to_rfc3339()
                ));
                let n = per_hour(d);
                for i in 0..n {
                    let t = Timestamp(
                        t0.0 + 1_000_000 + i64::from(i) * (240_000_000 / i64::from(n.max(1))),
                    );
                    lines.push(format!(
                        r#"{{"type":"access","time":"{}","client_id":"ward","token_id":"{tok}","method":"GET","url":"Observation?patient={patient}","status":200}}"#,
                        t.to_rfc3339()
                    ));
                }
            }
        }
        lines
    }

    fn non_info(alerts: &[Alert]) -> Vec<(&'static str, Category, String)> {
        alerts
            .iter()
            .filter(|a| a.activity == Activity::Create && a.severity > Severity::Info)
            .map(|a| (a.rule, a.category, a.window.start.to_rfc3339()))
            .collect()
    }

    #[test]
    fn steady_growth_and_a_holiday_dip_stay_silent() {
        // +3 % a day for four weeks, and Wednesday of week 3 is a holiday (no activity).
        let lines = steady(28, |d| {
            if d == 16 {
                0
            } else {
                (20.0 * 1.03f64.powi(d as i32)) as u32
            }
        });
        let (alerts, _) = run(&lines, "");
        assert_eq!(non_info(&alerts), vec![], "{alerts:#?}");
    }

    #[test]
    fn an_hourly_burst_is_flagged_in_its_hour() {
        let mut lines = steady(15, |_| 20);
        // Tuesday of week 3 (day 15) at 11:00: one token pulls 600 requests.
        let t0 = Timestamp::parse_rfc3339("2024-03-19T11:00:00Z").unwrap();
        lines.push(token(
            "2024-03-19T11:00:00Z",
            "ward",
            "big",
            "launch/patient patient/Observation.rs",
            Some("px"),
        ));
        for i in 0..600 {
            let t = Timestamp(t0.0 + 1_000_000 + i * 5_000_000);
            lines.push(access(
                &t.to_rfc3339(),
                "ward",
                "big",
                "Observation?patient=px",
                200,
                "TREAT",
            ));
        }
        let (alerts, _) = run(&lines, "");
        let got = non_info(&alerts);
        assert!(
            got.contains(&(
                "hourly_burst",
                Category::DataVolume,
                "2024-03-19T11:00:00.000000Z".to_string()
            )),
            "{got:#?}"
        );
        assert!(
            got.contains(&(
                "token_outlier",
                Category::DataVolume,
                "2024-03-19T11:00:00.000000Z".to_string()
            )),
            "{got:#?}"
        );
        assert!(
            got.iter()
                .all(|(_, _, w)| w == "2024-03-19T11:00:00.000000Z"),
            "nothing else fires: {got:#?}"
        );
    }

    #[test]
    fn a_patient_token_fanning_out_is_flagged() {
        let mut lines = steady(10, |_| 5);
        lines.push(token(
            "2024-03-15T10:30:00Z",
            "ward",
            "fan",
            "launch/patient patient/Observation.rs",
            Some("p1"),
        ));
        for i in 0..6 {
            lines.push(access(
                &format!("2024-03-15T10:31:{i:02}Z"),
                "ward",
                "fan",
                &format!("Observation?patient=q{i}"),
                200,
                "TREAT",
            ));
        }
        let (alerts, _) = run(&lines, "");
        let got = non_info(&alerts);
        assert!(
            got.contains(&(
                "patient_fanout",
                Category::PurposeDrift,
                "2024-03-15T10:00:00.000000Z".to_string()
            )),
            "{got:#?}"
        );
        let fan = alerts.iter().find(|a| a.rule == "patient_fanout").unwrap();
        assert_eq!(
            fan.observed["distinct_patients"], 4,
            "fires once the fourth patient appears"
        );
        assert!(
            !serde_json::to_string(fan).unwrap().contains("q3"),
            "no patient ids in alerts"
        );
    }

    #[test]
    fn a_dormant_app_waking_up_is_flagged() {
        let mut lines = learned_days(8);
        lines.push(token(
            "2024-04-20T10:00:00Z",
            "chart",
            "late",
            "launch/patient patient/Observation.read",
            Some("p1"),
        ));
        let (alerts, _) = run(&lines, "");
        let got = creates(&alerts);
        assert_eq!(
            got.last(),
            Some(&(
                "chart".to_string(),
                "dormant_app_active",
                Category::PurposeDrift
            ))
        );
        assert_eq!(alerts.last().unwrap().observed["silent_days"], 42);
    }

    /// SMART App Launch 2.x, "Scopes for requesting a refresh token": `offline_access` asks for
    /// a refresh token. An app granted it for the first time that then refreshes is one change
    /// (`offline_access_new`), not a second incident for its first `refresh_token` grant; an app
    /// that held `offline_access` all along and starts refreshing is `new_grant_type`.
    #[test]
    fn a_first_refresh_joins_the_offline_access_incident_that_asked_for_it() {
        let refreshed = |at: &str, client: &str, id: &str, scopes: &str| {
            format!(
                r#"{{"type":"token","event":"refreshed","time":"{at}","client_id":"{client}","token_id":"{id}","grant_type":"refresh_token","scope_granted":"{scopes}","patient":"p1","expires_in":3600}}"#
            )
        };
        let chart = learned_days(20);
        // The same days for a clinic app that held offline_access from the start, at 14:00.
        let clinic: Vec<String> = chart
            .iter()
            .map(|l| {
                l.replace("\"chart\"", "\"clinic\"")
                    .replace("\"token_id\":\"t", "\"token_id\":\"c")
                    .replace("T10:0", "T14:0")
                    .replace("Observation.read\"", "Observation.read offline_access\"")
            })
            .collect();
        let mut lines: Vec<String> = chart
            .chunks(4)
            .zip(clinic.chunks(4))
            .flat_map(|(a, b)| a.iter().chain(b).cloned())
            .collect();
        let offline = "launch/patient patient/Observation.read offline_access";
        lines.push(token(
            "2024-03-21T10:00:00Z",
            "chart",
            "o1",
            offline,
            Some("p1"),
        ));
        lines.push(refreshed("2024-03-21T11:00:00Z", "chart", "o2", offline));
        lines.push(refreshed("2024-03-21T15:00:00Z", "clinic", "c21", offline));
        let (alerts, _) = run(&lines, "");
        let mut got = creates(&alerts);
        got.retain(|(_, rule, _)| *rule != "new_app");
        assert_eq!(
            got,
            [
                (
                    "chart".to_string(),
                    "offline_access_new",
                    Category::ScopeCreep
                ),
                (
                    "clinic".to_string(),
                    "new_grant_type",
                    Category::PurposeDrift
                ),
            ],
            "{alerts:#?}"
        );
        let joined = alerts
            .iter()
            .rfind(|a| a.client_id == "chart" && a.rule == "offline_access_new")
            .expect("the offline_access incident");
        assert!(joined.summary.contains("refresh_token"), "{joined:#?}");
        assert_eq!(
            joined.window.start,
            Timestamp::parse_rfc3339("2024-03-21T10:00:00Z").unwrap()
        );
    }

    #[test]
    fn a_refresh_that_broadens_the_grant_is_flagged() {
        let refreshed = |at: &str, scopes: &str| {
            format!(
                r#"{{"type":"token","event":"refreshed","time":"{at}","client_id":"chart","token_id":"r","grant_type":"refresh_token","scope_granted":"{scopes}","patient":"p1","expires_in":3600}}"#
            )
        };
        let lines = vec![
            token(
                "2024-03-01T10:00:00Z",
                "chart",
                "t",
                "launch/patient patient/Observation.read",
                Some("p1"),
            ),
            // Same grant re-spelled: fine. Narrower: fine.
            refreshed(
                "2024-03-01T11:00:00Z",
                "launch/patient patient/Observation.rs",
            ),
            refreshed("2024-03-01T12:00:00Z", "patient/Observation.r"),
            // Broader than what it refreshes.
            refreshed(
                "2024-03-01T13:00:00Z",
                "patient/Observation.rs patient/Condition.rs",
            ),
        ];
        let (alerts, _) = run(&lines, "");
        let got = creates(&alerts);
        assert_eq!(
            got.last(),
            Some(&(
                "chart".to_string(),
                "refresh_broadening",
                Category::ScopeCreep
            )),
            "{got:#?}"
        );
        let a = alerts
            .iter()
            .find(|a| a.rule == "refresh_broadening")
            .unwrap();
        assert_eq!(
            a.window.start,
            Timestamp::parse_rfc3339("2024-03-01T13:00:00Z").unwrap()
        );
        assert_eq!(a.observed["added"][0]["scope"], "patient/Condition.rs");
    }

    /// FHIR R4 search "Including other resources": `_include=MedicationRequest:medication`
    /// brings in Medication. A token that cannot read Medication leaves the server to omit
    /// them (SMART 2.x: "results have been omitted"): unverified, low; info when the app's
    /// other grants hold Medication (this token's grant was narrowed, e.g. a patient declined
    /// that scope).
    #[test]
    fn an_include_the_token_cannot_read_is_low_and_info_when_the_grant_was_narrowed() {
        let full = "launch/patient patient/MedicationRequest.rs patient/Medication.rs";
        let narrowed = "launch/patient patient/MedicationRequest.rs";
        let url = "MedicationRequest?patient=p1&_include=MedicationRequest:medication";
        let lines = vec![
            token("2024-03-01T10:00:00Z", "meds", "t1", full, Some("p1")),
            access("2024-03-01T10:01:00Z", "meds", "t1", url, 200, "PATRQT"),
            token("2024-03-01T11:00:00Z", "meds", "t2", narrowed, Some("p1")),
            access("2024-03-01T11:01:00Z", "meds", "t2", url, 200, "PATRQT"),
            token("2024-03-01T12:00:00Z", "other", "t3", narrowed, Some("p1")),
            access("2024-03-01T12:01:00Z", "other", "t3", url, 200, "PATRQT"),
            // Unverified for its granular scope, not its include: stays low.
            token(
                "2024-03-01T13:00:00Z",
                "labs",
                "t4",
                "launch/patient patient/Patient.r patient/Observation.rs",
                Some("p1"),
            ),
            token(
                "2024-03-01T13:05:00Z",
                "labs",
                "t5",
                "launch/patient patient/Patient.r patient/Observation.rs?category=laboratory",
                Some("p1"),
            ),
            access(
                "2024-03-01T13:06:00Z",
                "labs",
                "t5",
                "Observation?patient=p1&_include=Observation:patient",
                200,
                "PATRQT",
            ),
        ];
        let (alerts, _) = run(&lines, "");
        assert_eq!(
            raised(&alerts, "unverified_access"),
            [
                ("meds", Severity::Info),
                ("other", Severity::Low),
                ("labs", Severity::Low)
            ],
            "{alerts:#?}"
        );
    }

    /// The app and severity of each alert record of `rule`, in output order.
    fn raised<'a>(alerts: &'a [Alert], rule: &str) -> Vec<(&'a str, Severity)> {
        alerts
            .iter()
            .filter(|a| a.rule == rule)
            .map(|a| (a.client_id.as_str(), a.severity))
            .collect()
    }

    /// RFC 7009 §2: after a revocation the token is invalid. A token issued before the log
    /// began is known only by its revocation; a server honouring it afterwards is still
    /// `revoked_token_use`, not an unknown token.
    #[test]
    fn a_token_known_only_by_its_revocation_is_still_revoked() {
        let lines = vec![
            token("2024-03-01T10:00:00Z", "app", "t1", "launch/patient patient/Observation.rs", Some("p1")),
            r#"{"type":"token","event":"revoked","time":"2024-03-01T10:05:00Z","client_id":"app","token_id":"old"}"#.to_string(),
            access("2024-03-01T10:06:00Z", "app", "old", "Observation?patient=p1", 200, "PATRQT"),
            access("2024-03-01T10:07:00Z", "app", "never", "Observation?patient=p1", 200, "PATRQT"),
        ];
        let (alerts, _) = run(&lines, "");
        assert_eq!(
            raised(&alerts, "revoked_token_use"),
            [("app", Severity::High)],
            "{alerts:#?}"
        );
    }

    /// RFC 6749 §6 and SMART App Launch 2.x "Refresh access token": a refresh grants the
    /// same or a subset of the grant it continues. A refresh record without `user` or
    /// `patient` (docs/event-contract.md's refresh example) is compared with every grant of the
    /// app that agrees with the fields it has: broadening only when none contains it.
    #[test]
    fn a_refresh_naming_no_user_or_patient_is_compared_with_the_apps_grants() {
        let issued = |at: &str, id: &str, user: &str, patient: &str, scopes: &str| {
            format!(
                r#"{{"type":"token","event":"issued","time":"{at}","client_id":"chart","token_id":"{id}","grant_type":"authorization_code","scope_granted":"{scopes}","user":"{user}","patient":"{patient}","expires_in":3600}}"#
            )
        };
        let refreshed = |at: &str, id: &str, extra: &str, scopes: &str| {
            format!(
                r#"{{"type":"token","event":"refreshed","time":"{at}","client_id":"chart","token_id":"{id}","grant_type":"refresh_token","scope_granted":"{scopes}","expires_in":3600{extra}}}"#
            )
        };
        let narrow = "patient/Observation.rs offline_access";
        let wide = "patient/Observation.rs patient/Condition.rs offline_access";
        let lines = vec![
            issued("2024-03-01T10:00:00Z", "t1", "Patient/a", "a", narrow),
            issued("2024-03-01T10:05:00Z", "t2", "Patient/b", "b", wide),
            // Within b's grant: another user's grant may be the one refreshed.
            refreshed("2024-03-01T11:00:00Z", "r1", "", wide),
            // Naming user a: only a's grant, which it exceeds.
            refreshed("2024-03-01T12:00:00Z", "r2", r#","user":"Patient/a""#, wide),
            // Beyond every grant of the app.
            refreshed(
                "2024-03-01T13:00:00Z",
                "r3",
                "",
                "patient/*.cruds offline_access",
            ),
        ];
        let (alerts, _) = run(&lines, "");
        let broadened: Vec<_> = alerts
            .iter()
            .filter(|a| a.rule == "refresh_broadening")
            .collect();
        // r1 is silent; r2 opens the incident, r3 (beyond every grant) updates it.
        assert_eq!(broadened.len(), 2, "{alerts:#?}");
        assert_eq!(
            broadened[0].window.start,
            Timestamp::parse_rfc3339("2024-03-01T12:00:00Z").unwrap()
        );
        assert_eq!(
            broadened[0].observed["added"][0]["scope"],
            "patient/Condition.rs"
        );
        assert!(broadened[1].observed["granted_scopes"]
            .to_string()
            .contains("patient/*.cruds"));
    }

    /// SMART App Launch 2.x, "Scopes for requesting a refresh token" and "Refresh access
    /// token": a refresh grants a subset of the original, so it keeps the original's
    /// `offline_access`. A refresh holding it continues a grant that held it too: when no known
    /// grant of the user does, the chain began before the log and is not judged.
    #[test]
    fn a_refresh_of_a_chain_begun_before_the_log_is_not_judged() {
        let refreshed = |at: &str, scopes: &str| {
            format!(
                r#"{{"type":"token","event":"refreshed","time":"{at}","client_id":"portal","token_id":"r{at}","grant_type":"refresh_token","scope_granted":"{scopes}","patient":"p1","expires_in":3600}}"#
            )
        };
        let online = "launch/patient patient/Observation.rs";
        let offline = "launch/patient offline_access patient/Observation.rs";
        let lines = vec![
            // The user's only grant in the log is an online one (a second device, say).
            token("2024-03-01T10:00:00Z", "portal", "t", online, Some("p1")),
            // An offline chain issued before the log: its refreshes hold offline_access.
            refreshed("2024-03-01T11:00:00Z", offline),
            refreshed(
                "2024-03-01T12:00:00Z",
                "launch/patient offline_access patient/Observation.rs patient/Condition.rs",
            ),
        ];
        let (alerts, _) = run(&lines, "");
        assert!(
            !alerts.iter().any(|a| a.rule == "refresh_broadening"),
            "{alerts:#?}"
        );
        // Once the offline grant is in the log, a refresh broader than it is flagged.
        let mut lines = lines;
        lines.push(token(
            "2024-03-01T13:00:00Z",
            "portal",
            "t2",
            offline,
            Some("p1"),
        ));
        lines.push(refreshed(
            "2024-03-01T14:00:00Z",
            "launch/patient offline_access patient/Observation.rs patient/Condition.rs",
        ));
        let (alerts, _) = run(&lines, "");
        let broadening = of_rule(&alerts, "refresh_broadening");
        assert_eq!(broadening.len(), 1, "{alerts:#?}");
        assert_eq!(broadening[0].client_id, "portal");
        assert_eq!(
            broadening[0].observed["added"][0]["scope"],
            "patient/Condition.rs"
        );
        assert_eq!(broadening[0].baseline["grants_compared"], 1);
    }

    /// A Berlin clinic, weekdays 08:00–16:59 local time, 20 requests an hour, from Monday
    /// 2024-03-04 to Friday 2024-04-12 (clocks go forward on Sunday 2024-03-31).
    fn berlin_clinic() -> Vec<String> {
        let weekdays = (0..40).filter(|d| d % 7 < 5);
        weekdays
            .flat_map(|d| (8..17).flat_map(move |h| clinic_hour(d, h)))
            .collect()
    }

    fn run_with_clock(lines: &[String], clock: LocalClock) -> Vec<Alert> {
        run_with(
            lines,
            EngineConfig {
                clock,
                ..EngineConfig::default()
            },
        )
    }

    fn run_with(lines: &[String], config: EngineConfig) -> Vec<Alert> {
        let mut engine = Engine::new(config, Registry::default());
        let mut out = Vec::new();
        for l in lines {
            engine.push(parse_event_str(l).unwrap(), &mut out).unwrap();
        }
        engine.finish(&mut out);
        out
    }

    #[test]
    fn daylight_saving_shift_is_silent_in_the_local_time_zone() {
        let lines = berlin_clinic();
        let local = run_with_clock(&lines, LocalClock::parse("Europe/Berlin").unwrap());
        assert_eq!(non_info(&local), vec![], "{local:#?}");
        // In UTC the same clinic starts an hour earlier after the change, in an hour that was
        // silent but borders its working day: the edge of the day, not off-hours.
        let utc = run_with_clock(&lines, LocalClock::utc());
        assert_eq!(non_info(&utc), vec![], "{utc:#?}");
    }

    /// `clinic_hour`, its token naming the account `user`.
    fn clinic_hour_of(day: i64, hour: i64, user: &str) -> Vec<String> {
        let mut lines = clinic_hour(day, hour);
        lines[0] = lines[0].replacen(
            r#""event":"issued""#,
            &format!(r#""event":"issued","user":"{user}""#),
            1,
        );
        lines
    }

    /// The clinic's 20 requests in the local hour `hour` of day `day` (days from 2024-03-04).
    fn clinic_hour(day: i64, hour: i64) -> Vec<String> {
        let berlin = LocalClock::parse("Europe/Berlin").unwrap();
        let start = Timestamp::parse_rfc3339("2024-03-04T00:00:00Z").unwrap();
        // Local day and hour → UTC, using the offset in force at that moment.
        let guess = Timestamp(start.0 + (day * 24 + hour) * MICROS_PER_HOUR);
        let t0 = Timestamp(guess.0 - berlin.offset_micros(guess));
        let tok = format!("x{day}h{hour}");
        let scopes = "launch/patient patient/Observation.rs";
        let mut lines = vec![token(&t0.to_rfc3339(), "clinic", &tok, scopes, Some("p1"))];
        lines.extend((0..20).map(|i| {
            let t = Timestamp(t0.0 + 1_000_000 + i * 60_000_000);
            access(
                &t.to_rfc3339(),
                "clinic",
                &tok,
                "Observation?patient=p1",
                200,
                "TREAT",
            )
        }));
        lines
    }

    #[test]
    fn off_hours_is_activity_away_from_the_working_day_not_at_its_edge() {
        // The clinic works 08:00–16:59 local on weekdays. On Tuesday of week 5 it stays until
        // 17:59 (an hour never active before, beside its last busy hour); on Wednesday night
        // it is busy at 02:00.
        let mut lines = berlin_clinic();
        lines.extend(clinic_hour(29, 17));
        lines.extend(clinic_hour(30, 2));
        lines.sort_by_key(|l| parse_event_str(l).map(|e| e.time()).ok());
        let alerts = run_with_clock(&lines, LocalClock::parse("Europe/Berlin").unwrap());
        let off: Vec<&Alert> = alerts.iter().filter(|a| a.rule == "off_hours").collect();
        assert_eq!(off.len(), 1, "{:#?}", non_info(&alerts));
        assert_eq!(off[0].client_id, "clinic");
        // 02:00 local on Wednesday 2024-04-03 is 00:00 UTC (CEST).
        assert_eq!(
            off[0].window.start,
            Timestamp::parse_rfc3339("2024-04-03T00:00:00Z").unwrap()
        );
        // One night session is routine (issue #13 lists single night-time sessions among what
        // real deployments do): recorded, at info.
        assert_eq!(off[0].severity, Severity::Info, "{:#?}", off[0]);
    }

    #[test]
    fn off_hours_recurs_when_an_account_is_back_at_night_not_when_the_rota_moves_on() {
        // Tokens that name their account: Dr A at 02:00 on Wednesday, Dr B at 03:00 on
        // Thursday (another clinician on call: info), Dr A again at 02:00 on Friday (the same
        // account back within three days: medium, naming Wednesday's night).
        let mut lines = berlin_clinic();
        lines.extend(clinic_hour_of(30, 2, "Practitioner/a"));
        lines.extend(clinic_hour_of(31, 3, "Practitioner/b"));
        lines.extend(clinic_hour_of(32, 2, "Practitioner/a"));
        lines.sort_by_key(|l| parse_event_str(l).map(|e| e.time()).ok());
        let alerts = run_with_clock(&lines, LocalClock::parse("Europe/Berlin").unwrap());
        let off: Vec<(String, Severity)> = alerts
            .iter()
            .filter(|a| a.rule == "off_hours")
            .map(|a| (a.window.start.to_rfc3339(), a.severity))
            .collect();
        let medium: Vec<&Alert> = alerts
            .iter()
            .filter(|a| a.rule == "off_hours" && a.severity == Severity::Medium)
            .collect();
        assert_eq!(medium.len(), 1, "{off:?}");
        // Friday 02:00 local is Friday 00:00 UTC (CEST); Wednesday 02:00 local likewise.
        assert_eq!(
            medium[0].window.start,
            Timestamp::parse_rfc3339("2024-04-05T00:00:00Z").unwrap(),
            "{off:?}"
        );
        assert_eq!(
            medium[0].observed["previous_off_hours_hour"],
            "2024-04-03T00:00:00.000000Z"
        );
        assert_eq!(medium[0].observed["same_account"], true);
        // The account is not in the alert (an identity, kept in the state only).
        let text = serde_json::to_string(&alerts).unwrap();
        assert!(!text.contains("Practitioner/a"), "account in the alerts");
    }

    #[test]
    fn off_hours_is_medium_when_the_night_recurs_within_three_days() {
        // Wednesday 02:00, then Thursday 03:00 (another night, 25 hours later), then the
        // Wednesday after (6 days later: beyond the 3-day window, info again).
        let mut lines = berlin_clinic();
        for (day, hour) in [(30, 2), (31, 3), (37, 2)] {
            lines.extend(clinic_hour(day, hour));
        }
        lines.sort_by_key(|l| parse_event_str(l).map(|e| e.time()).ok());
        let alerts = run_with_clock(&lines, LocalClock::parse("Europe/Berlin").unwrap());
        let off: Vec<(String, Severity)> = alerts
            .iter()
            .filter(|a| a.rule == "off_hours")
            .map(|a| (a.window.end.to_rfc3339(), a.severity))
            .collect();
        assert!(off.len() >= 2, "{off:?}");
        // The second night is medium, naming the first night's hour.
        let second = alerts
            .iter()
            .find(|a| a.rule == "off_hours" && a.severity == Severity::Medium)
            .unwrap_or_else(|| panic!("no medium off_hours: {off:?}"));
        assert_eq!(second.client_id, "clinic");
        assert_eq!(
            second.observed["previous_off_hours_hour"],
            "2024-04-03T00:00:00.000000Z"
        );
        // Nothing in the third night's hour is medium: it is 6 days after the last one.
        let third_medium = alerts.iter().any(|a| {
            a.rule == "off_hours"
                && a.severity == Severity::Medium
                && a.window.end > Timestamp::parse_rfc3339("2024-04-09T00:00:00Z").unwrap()
        });
        assert!(!third_medium, "{off:?}");
        // `recurrence_days = 0` grades every such hour medium, as the rule did before.
        let rules = RuleSettings::parse("[off_hours]\nrecurrence_days = 0\n", "r.toml").unwrap();
        let config = EngineConfig {
            clock: LocalClock::parse("Europe/Berlin").unwrap(),
            rules: Arc::new(rules),
            ..EngineConfig::default()
        };
        let out = run_with(&lines, config);
        let first = out
            .iter()
            .find(|a| a.rule == "off_hours")
            .expect("off_hours");
        assert_eq!(first.severity, Severity::Medium, "{first:#?}");
    }
}
