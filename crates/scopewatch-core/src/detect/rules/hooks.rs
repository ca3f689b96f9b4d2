//! When a rule runs and what it is given. Each catalog entry names its trigger with the
//! function to call (`Hook`); the engine builds one context per trigger and runs that
//! trigger's rules in catalog order, which is also the order of their findings (and so of
//! the alerts) within one event. Rules judge; what the baselines learn from the event is the
//! engine's (`detect::learn`), done after the rules have judged it.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::baseline::{AppProfile, SlotStats};
use crate::event::{AccessEvent, Common, Text, Timestamp, TokenEvent};
use crate::registry::Registry;
use crate::smart::scope::{ScopeDelta, ScopeSet};

use super::super::explain::Explained;
use super::super::finding::Finding;
use super::super::night::NightAccounts;
use super::catalog::CATALOG;
use super::settings::RuleSettings;
use super::volume::{ExportRun, TokenUsage};

/// A rule's trigger and the function the engine calls on it.
#[derive(Clone, Copy, Debug)]
pub enum Hook {
    /// Every event of an app, before it is learned (`profile` is `None` on the app's first).
    Event(fn(&mut EventContext<'_>, &mut Vec<Finding>)),
    /// Every grant: a token issued or refreshed with its granted scopes.
    Grant(fn(&mut GrantContext<'_>, &mut Vec<Finding>)),
    /// Every access.
    Access(fn(&mut AccessContext<'_>, &mut Vec<Finding>)),
    /// Each finished hour of an app.
    Hour(fn(&mut HourContext<'_>, &mut Vec<Finding>)),
    /// Each finished day of an app.
    Day(fn(&mut DayContext<'_>, &mut Vec<Finding>)),
}

impl Hook {
    /// What the rule runs on, as the docs say it.
    pub fn trigger(self) -> &'static str {
        match self {
            Hook::Event(_) => "each event",
            Hook::Grant(_) => "each grant",
            Hook::Access(_) => "each access",
            Hook::Hour(_) => "each finished hour",
            Hook::Day(_) => "each finished day",
        }
    }
}

/// What a trigger's rules are given; `rule_hook` picks the trigger's function out of a hook.
pub trait Trigger {
    fn rule_hook(hook: Hook) -> Option<fn(&mut Self, &mut Vec<Finding>)>;
    /// The app is still in its learning days (rules that judge against a baseline wait).
    fn learning(&self) -> bool;
}

/// Runs every catalog rule of this trigger, in catalog order. Disabled rules run too (their
/// state evolves as usual); the engine drops their findings afterwards.
pub fn run<C: Trigger>(context: &mut C, findings: &mut Vec<Finding>) {
    for info in &CATALOG {
        if info.after_learning && context.learning() {
            continue;
        }
        if let Some(check) = C::rule_hook(info.hook) {
            check(context, findings);
        }
    }
}

pub struct EventContext<'a> {
    pub common: &'a Common,
    /// The app's profile; `None` for an app never seen.
    pub profile: Option<&'a AppProfile>,
    pub settings: &'a RuleSettings,
}

impl Trigger for EventContext<'_> {
    fn rule_hook(hook: Hook) -> Option<fn(&mut Self, &mut Vec<Finding>)> {
        match hook {
            Hook::Event(check) => Some(check),
            _ => None,
        }
    }

    fn learning(&self) -> bool {
        false
    }
}

pub struct GrantContext<'a> {
    pub event: &'a TokenEvent,
    pub granted: &'a ScopeSet,
    pub registry: &'a Registry,
    pub profile: &'a AppProfile,
    /// For a refresh: the live grants of this user (and launch patient) it may refresh.
    pub refreshable: Option<&'a [Arc<ScopeSet>]>,
    pub learning: bool,
    pub settings: &'a RuleSettings,
    /// The grant against the app's established scopes, worked out for the first rule that asks.
    established: OnceCell<(ScopeSet, ScopeDelta)>,
}

impl<'a> GrantContext<'a> {
    pub fn new(
        event: &'a TokenEvent,
        granted: &'a ScopeSet,
        registry: &'a Registry,
        profile: &'a AppProfile,
        settings: &'a RuleSettings,
    ) -> GrantContext<'a> {
        GrantContext {
            event,
            granted,
            registry,
            profile,
            refreshable: None,
            learning: false,
            settings,
            established: OnceCell::new(),
        }
    }

    /// The app's established scopes, and what this grant adds to them.
    pub fn over_established(&self) -> &(ScopeSet, ScopeDelta) {
        self.established.get_or_init(|| {
            let baseline = self.profile.established_scopes();
            let delta = self.granted.additions_over(&baseline);
            (baseline, delta)
        })
    }
}

impl Trigger for GrantContext<'_> {
    fn rule_hook(hook: Hook) -> Option<fn(&mut Self, &mut Vec<Finding>)> {
        match hook {
            Hook::Grant(check) => Some(check),
            _ => None,
        }
    }

    fn learning(&self) -> bool {
        self.learning
    }
}

pub struct AccessContext<'a> {
    pub access: &'a AccessEvent,
    pub explained: &'a Explained<'a>,
    pub registry: &'a Registry,
    pub profile: &'a AppProfile,
    /// The request reaches beyond one patient (`Explained::reaches_population`).
    pub population_level: bool,
    /// What the access's (known) token has done so far, this access included.
    pub usage: Option<&'a mut TokenUsage>,
    /// The app's export this access downloads an output file of, this file counted.
    pub export_run: Option<&'a mut ExportRun>,
    /// That token is bound to one patient.
    pub patient_bound: bool,
    /// The access's token is not cached but is remembered as expired and gone: its expiry
    /// (`TokenCache::lapsed_expiry`).
    pub lapsed_expiry: Option<Timestamp>,
    pub learning: bool,
    pub settings: &'a RuleSettings,
}

impl Trigger for AccessContext<'_> {
    fn rule_hook(hook: Hook) -> Option<fn(&mut Self, &mut Vec<Finding>)> {
        match hook {
            Hook::Access(check) => Some(check),
            _ => None,
        }
    }

    fn learning(&self) -> bool {
        self.learning
    }
}

pub struct HourContext<'a> {
    pub client_id: &'a Text,
    pub start: Timestamp,
    pub requests: u64,
    /// The seasonal slot of this hour, and its index in the profile's hourly slots.
    pub slot: SlotStats,
    pub slot_index: usize,
    pub profile: &'a AppProfile,
    pub learning: bool,
    pub settings: &'a RuleSettings,
    /// Set by a rule that found the hour anomalous: it is learned capped, not as it is, so a
    /// burst is not absorbed at once.
    pub anomalous: bool,
    /// The first hour of the app's last night of activity at a normally silent time
    /// (`off_hours`), and whether this hour begins a new one (set by the rule; the engine
    /// remembers it).
    pub last_off_hours: Option<Timestamp>,
    /// The accounts this hour served, when its tokens named some and not too many, and those
    /// the app served at silent times on its recent nights.
    pub accounts: Option<&'a [Text]>,
    pub night_accounts: Option<&'a NightAccounts>,
    pub off_hours: bool,
    /// Set by `off_hours` when the hour was at a silent time: the engine remembers its accounts.
    pub silent: bool,
}

impl Trigger for HourContext<'_> {
    fn rule_hook(hook: Hook) -> Option<fn(&mut Self, &mut Vec<Finding>)> {
        match hook {
            Hook::Hour(check) => Some(check),
            _ => None,
        }
    }

    fn learning(&self) -> bool {
        self.learning
    }
}

pub struct DayContext<'a> {
    pub client_id: &'a Text,
    /// The local day: its start and end.
    pub day: (Timestamp, Timestamp),
    pub weekend: bool,
    /// Served requests by resource type.
    pub mix: &'a BTreeMap<String, u64>,
    /// A rule's own state lives in the profile (the drip's CUSUM), so the day's rules may
    /// change it.
    pub profile: &'a mut AppProfile,
    pub learning: bool,
    pub settings: &'a RuleSettings,
}

impl DayContext<'_> {
    pub fn total(&self) -> u64 {
        self.mix.values().sum()
    }
}

impl Trigger for DayContext<'_> {
    fn rule_hook(hook: Hook) -> Option<fn(&mut Self, &mut Vec<Finding>)> {
        match hook {
            Hook::Day(check) => Some(check),
            _ => None,
        }
    }

    fn learning(&self) -> bool {
        self.learning
    }
}
