//! Every rule id the core can raise. Findings carry `&'static str` rule ids; a snapshot names
//! them as text and is mapped back through this list, so an unknown id in a state file is an
//! error rather than a silently different rule.

use serde::{Deserialize, Serialize};

use crate::alert::{
    Category, FrameworkRef, Severity, ATTACK_T1213, ATTACK_T1530, ATTACK_T1567, CSF_DE_CM_03,
    CSF_PR_AA_05, NHI10_HUMAN_USE, NHI1_IMPROPER_OFFBOARDING, NHI5_OVERPRIVILEGED,
    NHI7_LONG_LIVED_SECRETS,
};

use super::hooks::Hook;
use super::{drift, enforcement, novelty, registry, slow_drip, volume};

/// A rule's id: what findings, alerts, snapshots and rules files name it by. Declared in
/// catalog order (`CATALOG[id as usize]` is its entry); serialised as its snake_case name.
/// Ordered by name, as the text ids it replaces were (incident maps and their output order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleId {
    NewApp,
    DormantAppActive,
    RegistryScopeViolation,
    RegistryModeViolation,
    RefreshBroadening,
    ContextEscalation,
    WildcardBroadening,
    NewScope,
    OfflineAccessNew,
    NewGrantType,
    EnforcementGap,
    ExpiredTokenUse,
    RevokedTokenUse,
    UnverifiedAccess,
    RegistryPurposeViolation,
    NewPurpose,
    BulkExportNew,
    EverythingNew,
    PopulationAccessNew,
    PatientFanout,
    TokenOutlier,
    ExportOutlier,
    PagingSweep,
    HourlyBurst,
    OffHours,
    ResourceMixShift,
    SlowDrip,
}

impl RuleId {
    pub const fn as_str(self) -> &'static str {
        match self {
            RuleId::EnforcementGap => "enforcement_gap",
            RuleId::NewScope => "new_scope",
            RuleId::WildcardBroadening => "wildcard_broadening",
            RuleId::ContextEscalation => "context_escalation",
            RuleId::OfflineAccessNew => "offline_access_new",
            RuleId::RefreshBroadening => "refresh_broadening",
            RuleId::RegistryScopeViolation => "registry_scope_violation",
            RuleId::RegistryModeViolation => "registry_mode_violation",
            RuleId::RegistryPurposeViolation => "registry_purpose_violation",
            RuleId::NewGrantType => "new_grant_type",
            RuleId::NewPurpose => "new_purpose",
            RuleId::BulkExportNew => "bulk_export_new",
            RuleId::EverythingNew => "everything_new",
            RuleId::PopulationAccessNew => "population_access_new",
            RuleId::PatientFanout => "patient_fanout",
            RuleId::ResourceMixShift => "resource_mix_shift",
            RuleId::OffHours => "off_hours",
            RuleId::DormantAppActive => "dormant_app_active",
            RuleId::NewApp => "new_app",
            RuleId::HourlyBurst => "hourly_burst",
            RuleId::TokenOutlier => "token_outlier",
            RuleId::ExportOutlier => "export_outlier",
            RuleId::SlowDrip => "slow_drip",
            RuleId::PagingSweep => "paging_sweep",
            RuleId::ExpiredTokenUse => "expired_token_use",
            RuleId::RevokedTokenUse => "revoked_token_use",
            RuleId::UnverifiedAccess => "unverified_access",
        }
    }

    /// The id's position among all ids ordered by name: `Ord` compares these instead of the
    /// names (the comparison sits on the hot path of every parameter lookup).
    const fn name_rank(self) -> u8 {
        match self {
            RuleId::BulkExportNew => 0,
            RuleId::ContextEscalation => 1,
            RuleId::DormantAppActive => 2,
            RuleId::EnforcementGap => 3,
            RuleId::EverythingNew => 4,
            RuleId::ExpiredTokenUse => 5,
            RuleId::ExportOutlier => 6,
            RuleId::HourlyBurst => 7,
            RuleId::NewApp => 8,
            RuleId::NewGrantType => 9,
            RuleId::NewPurpose => 10,
            RuleId::NewScope => 11,
            RuleId::OffHours => 12,
            RuleId::OfflineAccessNew => 13,
            RuleId::PagingSweep => 14,
            RuleId::PatientFanout => 15,
            RuleId::PopulationAccessNew => 16,
            RuleId::RefreshBroadening => 17,
            RuleId::RegistryModeViolation => 18,
            RuleId::RegistryPurposeViolation => 19,
            RuleId::RegistryScopeViolation => 20,
            RuleId::ResourceMixShift => 21,
            RuleId::RevokedTokenUse => 22,
            RuleId::SlowDrip => 23,
            RuleId::TokenOutlier => 24,
            RuleId::UnverifiedAccess => 25,
            RuleId::WildcardBroadening => 26,
        }
    }

    /// The catalog entry.
    pub fn info(self) -> &'static RuleInfo {
        &CATALOG[self as usize]
    }
}

impl std::fmt::Display for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, not `write_str`: `scopewatch rules` aligns ids in a column.
        f.pad(self.as_str())
    }
}

impl Ord for RuleId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.name_rank().cmp(&other.name_rank())
    }
}

impl PartialOrd for RuleId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// What the catalog says about one rule.
#[derive(Clone, Copy, Debug)]
pub struct RuleInfo {
    pub id: RuleId,
    /// When the rule runs, and the function the engine calls then.
    pub hook: Hook,
    /// Judged only once the app has passed its learning days (it compares with a baseline).
    pub after_learning: bool,
    pub category: Category,
    /// How its findings are graded.
    pub grade: Grade,
    /// The grade of the case its summary calls out (broad scopes, a patient-bound token, an
    /// interactive login), for rules that tell such a case apart.
    pub marked: Option<Grade>,
    /// One sentence: when it fires.
    pub summary: &'static str,
    /// The thresholds a rules file may set.
    pub params: &'static [Param],
}

/// A finding's severity, score and the framework references it maps to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Grade {
    pub severity: Severity,
    pub score: Score,
    pub references: &'static [FrameworkRef],
}

/// How a rule scores its findings (0 to 100).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Score {
    Fixed(u8),
    /// From how improbable the observation was under the baseline: see `Score::of_tail`.
    TailProbability,
}

impl Score {
    /// A statistical finding's score: 40 at p = 1, five more for each factor of ten p falls,
    /// up to 100 (p ≤ 1e-12 gives 100).
    pub fn of_tail(p: f64) -> u8 {
        let bits = -p.max(1e-300).log10();
        (40.0 + 5.0 * bits).clamp(0.0, 100.0) as u8
    }
}

impl std::fmt::Display for Score {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Score::Fixed(score) => write!(f, "{score}"),
            Score::TailProbability => f.write_str("by p-value"),
        }
    }
}

impl RuleInfo {
    /// The severities it gives: "medium", or "medium or high" for a rule with a marked case.
    pub fn severity_text(&self) -> String {
        match self.marked {
            Some(m) if m.severity != self.grade.severity => {
                format!(
                    "{} or {}",
                    self.grade.severity.as_str(),
                    m.severity.as_str()
                )
            }
            _ => self.grade.severity.as_str().to_string(),
        }
    }

    /// The scores it gives: "65", "65 or 80", "by p-value".
    pub fn score_text(&self) -> String {
        match self.marked {
            Some(m) if m.score != self.grade.score => {
                format!("{} or {}", self.grade.score, m.score)
            }
            _ => self.grade.score.to_string(),
        }
    }

    /// The framework references of any of its findings, each once.
    pub fn references(&self) -> Vec<FrameworkRef> {
        let marked = self.marked.map_or(&[][..], |m| m.references);
        let mut all: Vec<FrameworkRef> = self.grade.references.to_vec();
        for r in marked {
            if !all.contains(r) {
                all.push(r.clone());
            }
        }
        all
    }
}

/// A rule's tunable threshold: a number with its default.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Param {
    pub name: &'static str,
    pub default: f64,
    /// The smallest value a rules file may set (below it a rule would fire on normal use:
    /// `dormant_days = 0` would report every event).
    pub min: f64,
    /// The largest (infinite but for rates: a smoothing weight above 1 overshoots).
    pub max: f64,
    pub summary: &'static str,
}

const fn rule(
    id: RuleId,
    hook: Hook,
    after_learning: bool,
    category: Category,
    grade: Grade,
    summary: &'static str,
) -> RuleInfo {
    RuleInfo {
        id,
        hook,
        after_learning,
        category,
        grade,
        marked: None,
        summary,
        params: &[],
    }
}

const fn grade(severity: Severity, score: u8, references: &'static [FrameworkRef]) -> Grade {
    Grade {
        severity,
        score: Score::Fixed(score),
        references,
    }
}

/// The grade of a statistical rule, scored by the tail probability of what it saw.
const fn by_tail(severity: Severity, references: &'static [FrameworkRef]) -> Grade {
    Grade {
        severity,
        score: Score::TailProbability,
        references,
    }
}

const fn with_marked(r: RuleInfo, marked: Grade) -> RuleInfo {
    RuleInfo {
        marked: Some(marked),
        ..r
    }
}

// The references rules share.
const OVERPRIVILEGED: &[FrameworkRef] = &[NHI5_OVERPRIVILEGED, CSF_PR_AA_05];
const COLLECTION: &[FrameworkRef] = &[ATTACK_T1213, CSF_DE_CM_03];
const EXFILTRATION: &[FrameworkRef] = &[ATTACK_T1213, ATTACK_T1567, CSF_DE_CM_03];
const UNENFORCED_LIFETIME: &[FrameworkRef] = &[NHI7_LONG_LIVED_SECRETS, CSF_PR_AA_05];
const UNENFORCED_CONTEXT: &[FrameworkRef] = &[ATTACK_T1213, CSF_PR_AA_05, CSF_DE_CM_03];

/// Judged from the app's first event on (it needs no baseline).
const JUDGED_ALWAYS: bool = false;
/// Judged once the app has a baseline (after its learning days).
const JUDGED_AFTER_LEARNING: bool = true;

const fn with_params(r: RuleInfo, params: &'static [Param]) -> RuleInfo {
    RuleInfo { params, ..r }
}

/// A count or a multiple of a baseline: at least 1.
const fn param(name: &'static str, default: f64, summary: &'static str) -> Param {
    Param {
        name,
        default,
        min: 1.0,
        max: f64::INFINITY,
        summary,
    }
}

/// A fraction or a number of standard deviations, with the smallest value that still makes
/// sense for it.
const fn fraction(name: &'static str, default: f64, min: f64, summary: &'static str) -> Param {
    Param {
        name,
        default,
        min,
        max: f64::INFINITY,
        summary,
    }
}

/// A share of something, from `min` to 1.
const fn share(name: &'static str, default: f64, min: f64, summary: &'static str) -> Param {
    Param {
        name,
        default,
        min,
        max: 1.0,
        summary,
    }
}

/// The weight of each new day in an exponentially weighted average: from 0.01 (a day barely
/// counts) to 1 (only the last day counts).
const fn rate(name: &'static str, default: f64, summary: &'static str) -> Param {
    Param {
        name,
        default,
        min: 0.01,
        max: 1.0,
        summary,
    }
}

pub const PATIENT_FANOUT_PARAMS: [Param; 3] = [
    param(
        "patient_bound_limit",
        3.0,
        "distinct patients a patient-bound token may touch",
    ),
    param(
        "p99_multiple",
        3.0,
        "other tokens: this many times the app's p99 of patients per token",
    ),
    param("min_limit", 20.0, "other tokens: never a limit below this"),
];

pub const TOKEN_OUTLIER_PARAMS: [Param; 5] = [
    param(
        "p99_multiple",
        5.0,
        "requests per token beyond this many times the app's p99",
    ),
    param(
        "min_requests",
        200.0,
        "and beyond at least this many requests",
    ),
    param(
        "retrieved_median_multiple",
        10.0,
        "or data retrieved (resources, else served requests) beyond this many times the typical token's",
    ),
    param(
        "retrieved_p99_multiple",
        3.0,
        "and beyond this many times the app's p99",
    ),
    param(
        "min_retrieved",
        200.0,
        "and beyond at least this much",
    ),
];

pub const EXPORT_OUTLIER_PARAMS: [Param; 4] = [
    param(
        "median_multiple",
        10.0,
        "resources an export's files return beyond this many times the app's typical export on the same kind of day (weekday, weekend)",
    ),
    param(
        "p99_multiple",
        3.0,
        "and beyond this many times its p99 export on that kind of day",
    ),
    param(
        "min_retrieved",
        1000.0,
        "and beyond at least this many resources",
    ),
    param(
        "min_exports",
        8.0,
        "exports on that kind of day the app must have finished before its exports are judged",
    ),
];

pub const HOURLY_BURST_PARAMS: [Param; 6] = [
    share(
        "max_tail_probability",
        1e-6,
        1e-15,
        "the hour's requests are less likely than this under the slot's negative-binomial model (at most 1; from 1e-15)",
    ),
    param(
        "min_multiple",
        4.0,
        "requests in the hour at least this many times the seasonal expectation",
    ),
    param(
        "min_sigmas",
        6.0,
        "and this many standard deviations above it",
    ),
    param("min_requests", 100.0, "and at least this many requests"),
    fraction(
        "min_peak_multiple",
        3.0,
        0.0,
        "and at least this many times the app's busiest usual hour (an hour only as busy as the app's peak hours, at another time of day, is a change of rhythm, not of volume; 0 turns this off)",
    ),
    fraction(
        "min_cv",
        0.5,
        0.05,
        "smallest spread assumed for an hour's total, as a fraction of its mean (an hour varies more than a few weeks of its history show; at least 0.05)",
    ),
];

pub const SLOW_DRIP_PARAMS: [Param; 12] = [
    param(
        "threshold",
        2.5,
        "CUSUM of the days' excess over the usual level, in the app's spreads (a day adds at most `max_step`, less `allowance`)",
    ),
    // On day-to-day noise that is Gaussian in the app's spreads: a false drip every ~290
    // app-days (`allowance = 0.5, max_step = 1.5`, the defaults until stop 41: every ~180;
    // `0.75, 1.9`: every ~550, but a calm app's 1.4× drip in its third week is then mostly
    // missed: docs/detection.md).
    fraction(
        "allowance",
        0.65,
        0.0,
        "spreads a day's excess must pass before it adds to the CUSUM (at least 0)",
    ),
    fraction(
        "max_step",
        1.8,
        0.5,
        "most spreads one day counts: a drip is sustained, a spike of a day or two is `hourly_burst`'s (at least 0.5)",
    ),
    fraction(
        "min_spread",
        0.12,
        0.01,
        "smallest relative day-to-day spread assumed for an app (a few weeks of history underestimate it; at least 0.01)",
    ),
    param(
        "min_rise",
        1.2,
        "the day that raises the alert is at least this many times the usual level",
    ),
    param(
        "min_excess",
        50.0,
        "and at least this many requests above it",
    ),
    fraction(
        "session_dispersion",
        2.5,
        0.0,
        "requests come a handful per session, so a day's relative spread is at least this over √(expected requests) (√6 ≈ 2.5: six requests a session; at least 0)",
    ),
    rate(
        "spread_rate",
        0.1,
        "weight of each day in the app's spread estimate (slower than the level: a spread needs many days; 0.01 to 1)",
    ),
    fraction(
        "spread_prior_days",
        2.0,
        0.0,
        "the spread a new app starts with (±25 %) counts as this many days: until `spread_rate` takes over, the spread is the plain mean of the app's own days and this start, so a calm app's spread is its own within its first weeks (at least 0)",
    ),
    fraction(
        "spread_clip",
        2.0,
        0.5,
        "one day widens the spread as if it were at most this many spreads from the usual level, so a drip's first day cannot hide the next; a day far below it (a holiday, an outage) lowers the expectation as if it were at most this many spreads below (at least 0.5)",
    ),
    rate(
        "level_rate",
        0.2,
        "weight of each day in the app's usual level, the ratio of a day to its weekday expectation (0.01 to 1)",
    ),
    param(
        "level_step",
        1.1,
        "while a rise builds up, one day moves the usual level and the expectation by at most this factor (at least 1)",
    ),
];

pub const PAGING_SWEEP_PARAMS: [Param; 2] = [
    param(
        "p99_multiple",
        5.0,
        "large pages followed by one token beyond this many times the app's p99",
    ),
    param("min_pages", 20.0, "and beyond at least this many pages"),
];

pub const RESOURCE_MIX_SHIFT_PARAMS: [Param; 5] = [
    param(
        "min_baseline_requests",
        100.0,
        "requests in the app's established resource mix before a day is judged against it",
    ),
    param(
        "min_day_requests",
        20.0,
        "requests in the day before it is judged",
    ),
    param(
        "min_rare_requests",
        20.0,
        "requests that day of types under 1 % of the baseline",
    ),
    share(
        "min_rare_share",
        0.2,
        0.01,
        "and at least this share of the day (0.01 to 1)",
    ),
    share(
        "min_sensitive_share",
        0.05,
        0.01,
        "or at least this share of the day to notes and billing types (DocumentReference, DiagnosticReport, Composition, Binary, Claim, ExplanationOfBenefit, Coverage; 0.01 to 1)",
    ),
];

pub const OFF_HOURS_PARAMS: [Param; 2] = [
    // A handful: one account's night session is a few requests. The first night is info, and
    // a second is medium only when one of its accounts is back (tokens that name a `user`), so
    // a rota of on-call clinicians stays info however low this is (20 until stop 41).
    param(
        "min_requests",
        5.0,
        "requests in a normally silent hour before it counts",
    ),
    // One night session is routine (an on-call clinician, a patient awake at 3 am): issue #13
    // lists "single night-time sessions" among what real deployments do. A habit is not.
    fraction(
        "recurrence_days",
        3.0,
        0.0,
        "such an hour is info, and medium when the app's previous such night began 12 hours to this many days before (0 makes every one medium)",
    ),
];

pub const DORMANT_PARAMS: [Param; 1] = [param(
    "dormant_days",
    30.0,
    "days of silence after which activity is reported",
)];

/// Every rule, once: `scopewatch rules` prints it, `--rules FILE` tunes it, `docs/rules.md`
/// is generated from it, and the engine runs it from here. Grouped by trigger; within a
/// trigger, the order rules run in (and their findings within one event come out in).
pub const CATALOG: [RuleInfo; 27] = [
    rule(
        RuleId::NewApp,
        Hook::Event(novelty::new_app),
        JUDGED_ALWAYS,
        Category::PurposeDrift,
        grade(Severity::Info, 10, &[CSF_DE_CM_03]),
        "An app's first event.",
    ),
    with_params(
        rule(
            RuleId::DormantAppActive,
            Hook::Event(novelty::dormant),
            JUDGED_ALWAYS,
            Category::PurposeDrift,
            grade(Severity::Medium, 60, &[NHI1_IMPROPER_OFFBOARDING, CSF_DE_CM_03]),
            "An app acts again after 30 days of silence.",
        ),
        &DORMANT_PARAMS,
    ),
    with_marked(
        rule(
            RuleId::RegistryScopeViolation,
            Hook::Grant(registry::scope_violation),
            JUDGED_ALWAYS,
            Category::ScopeCreep,
            grade(Severity::Medium, 65, OVERPRIVILEGED),
            "Granted scopes outside the app's registry entry (high when broad).",
        ),
        grade(Severity::High, 80, OVERPRIVILEGED),
    ),
    rule(
        RuleId::RegistryModeViolation,
        Hook::Grant(registry::mode_violation),
        JUDGED_ALWAYS,
        Category::ScopeCreep,
        grade(Severity::High, 80, OVERPRIVILEGED),
        "A grant whose broadest context (patient, user, system) the registry does not allow the app.",
    ),
    rule(
        RuleId::RefreshBroadening,
        Hook::Grant(novelty::refresh_broadening),
        JUDGED_ALWAYS,
        Category::ScopeCreep,
        grade(Severity::High, 80, &[NHI7_LONG_LIVED_SECRETS, NHI5_OVERPRIVILEGED, CSF_PR_AA_05]),
        "A refresh grants more than any grant it could have refreshed.",
    ),
    rule(
        RuleId::ContextEscalation,
        Hook::Grant(novelty::context_escalation),
        JUDGED_AFTER_LEARNING,
        Category::ScopeCreep,
        grade(Severity::High, 80, OVERPRIVILEGED),
        "Scopes move up a context: patient, then user, then system.",
    ),
    rule(
        RuleId::WildcardBroadening,
        Hook::Grant(novelty::wildcard_broadening),
        JUDGED_AFTER_LEARNING,
        Category::ScopeCreep,
        grade(Severity::High, 75, OVERPRIVILEGED),
        "A grant adds a `*` resource scope.",
    ),
    rule(
        RuleId::NewScope,
        Hook::Grant(novelty::new_scope),
        JUDGED_AFTER_LEARNING,
        Category::ScopeCreep,
        grade(Severity::Medium, 55, OVERPRIVILEGED),
        "A grant adds permissions the app never held.",
    ),
    rule(
        RuleId::OfflineAccessNew,
        Hook::Grant(novelty::offline_access_new),
        JUDGED_AFTER_LEARNING,
        Category::ScopeCreep,
        grade(Severity::Medium, 60, &[NHI7_LONG_LIVED_SECRETS, NHI5_OVERPRIVILEGED]),
        "`offline_access` granted for the first time.",
    ),
    with_marked(
        rule(
            RuleId::NewGrantType,
            Hook::Grant(novelty::new_grant_type),
            JUDGED_AFTER_LEARNING,
            Category::PurposeDrift,
            grade(Severity::Medium, 60, &[NHI5_OVERPRIVILEGED, CSF_DE_CM_03]),
            "A grant type the app never used (an interactive login is marked as human use of the app's identity).",
        ),
        grade(Severity::Medium, 60, &[NHI10_HUMAN_USE, CSF_DE_CM_03]),
    ),
    rule(
        RuleId::EnforcementGap,
        Hook::Access(enforcement::gap),
        JUDGED_ALWAYS,
        Category::ScopeCreep,
        grade(Severity::High, 85, &[NHI5_OVERPRIVILEGED, ATTACK_T1213, CSF_PR_AA_05]),
        "An access served (2xx) that the token's granted scopes do not cover as SMART defines coverage.",
    ),
    rule(
        RuleId::ExpiredTokenUse,
        Hook::Access(enforcement::expired),
        JUDGED_ALWAYS,
        Category::ScopeCreep,
        grade(Severity::Medium, 70, UNENFORCED_LIFETIME),
        "An access served with a token past its lifetime.",
    ),
    rule(
        RuleId::RevokedTokenUse,
        Hook::Access(enforcement::revoked),
        JUDGED_ALWAYS,
        Category::ScopeCreep,
        grade(Severity::High, 85, UNENFORCED_LIFETIME),
        "An access served with a token after its revocation.",
    ),
    with_marked(
        rule(
            RuleId::UnverifiedAccess,
            Hook::Access(enforcement::unverified),
            JUDGED_ALWAYS,
            Category::ScopeCreep,
            grade(Severity::Low, 35, OVERPRIVILEGED),
            "An access served that the log cannot decide (a constrained scope, `_include`, a Bulk `_type`, a `Binary`); info for an `_include` of types the app's other grants hold (this token's grant was narrowed) and for a `Binary` read by a token that reads documents (an attachment).",
        ),
        grade(Severity::Info, 15, OVERPRIVILEGED),
    ),
    rule(
        RuleId::RegistryPurposeViolation,
        Hook::Access(registry::purpose_violation),
        JUDGED_ALWAYS,
        Category::PurposeDrift,
        grade(Severity::Medium, 65, &[CSF_DE_CM_03]),
        "A purpose of use the registry does not allow the app.",
    ),
    rule(
        RuleId::NewPurpose,
        Hook::Access(novelty::new_purpose),
        JUDGED_AFTER_LEARNING,
        Category::PurposeDrift,
        grade(Severity::Medium, 55, &[CSF_DE_CM_03]),
        "A purpose of use the app never used.",
    ),
    rule(
        RuleId::BulkExportNew,
        Hook::Access(novelty::bulk_export_new),
        JUDGED_AFTER_LEARNING,
        Category::PurposeDrift,
        grade(Severity::High, 80, &[ATTACK_T1530, ATTACK_T1213, CSF_DE_CM_03]),
        "A Bulk Data `$export` by an app that never ran one, or at a level reaching further than it ever did.",
    ),
    rule(
        RuleId::EverythingNew,
        Hook::Access(novelty::everything_new),
        JUDGED_AFTER_LEARNING,
        Category::PurposeDrift,
        grade(Severity::Medium, 65, COLLECTION),
        "`$everything` by an app that never ran it.",
    ),
    with_marked(
        rule(
            RuleId::PopulationAccessNew,
            Hook::Access(novelty::population_access_new),
            JUDGED_AFTER_LEARNING,
            Category::PurposeDrift,
            grade(Severity::Medium, 65, COLLECTION),
            "A search across all patients by an app that worked one patient at a time (high when a token bound to one patient was answered with other patients' data).",
        ),
        grade(Severity::High, 80, UNENFORCED_CONTEXT),
    ),
    with_params(
        with_marked(
            rule(
                RuleId::PatientFanout,
                Hook::Access(volume::patient_fanout),
                JUDGED_AFTER_LEARNING,
                Category::PurposeDrift,
                grade(Severity::Medium, 65, COLLECTION),
                "One token touches many distinct patients (high for a patient-bound token).",
            ),
            grade(Severity::High, 80, COLLECTION),
        ),
        &PATIENT_FANOUT_PARAMS,
    ),
    with_params(
        rule(
            RuleId::TokenOutlier,
            Hook::Access(volume::token_outlier),
            JUDGED_AFTER_LEARNING,
            Category::DataVolume,
            grade(Severity::Medium, 70, EXFILTRATION),
            "One token makes far more requests, or retrieves far more data, than the app's tokens do (a token whose first export or population search opened an incident adds its volume to that incident).",
        ),
        &TOKEN_OUTLIER_PARAMS,
    ),
    with_params(
        rule(
            RuleId::ExportOutlier,
            Hook::Access(volume::export_outlier),
            JUDGED_AFTER_LEARNING,
            Category::DataVolume,
            grade(Severity::Medium, 70, EXFILTRATION),
            "One Bulk Data export's files return far more than the app's exports do on that kind of day (weekday, weekend), whichever tokens download them.",
        ),
        &EXPORT_OUTLIER_PARAMS,
    ),
    with_params(
        rule(
            RuleId::PagingSweep,
            Hook::Access(volume::paging_sweep),
            JUDGED_AFTER_LEARNING,
            Category::DataVolume,
            grade(Severity::Medium, 65, COLLECTION),
            "One token follows far more large pages than usual.",
        ),
        &PAGING_SWEEP_PARAMS,
    ),
    with_params(
        with_marked(
            rule(
                RuleId::HourlyBurst,
                Hook::Hour(volume::hourly_burst),
                JUDGED_AFTER_LEARNING,
                Category::DataVolume,
                by_tail(Severity::Medium, EXFILTRATION),
                "Requests in an hour far above the seasonal expectation (high when p < 1e-12).",
            ),
            by_tail(Severity::High, EXFILTRATION),
        ),
        &HOURLY_BURST_PARAMS,
    ),
    with_params(
        with_marked(
            rule(
                RuleId::OffHours,
                Hook::Hour(drift::off_hours),
                JUDGED_AFTER_LEARNING,
                Category::PurposeDrift,
                grade(Severity::Info, 30, &[NHI10_HUMAN_USE, CSF_DE_CM_03]),
                "Many requests in an hour where the app is normally silent (info for one night; medium when it recurs on another night within a few days).",
            ),
            grade(Severity::Medium, 65, &[NHI10_HUMAN_USE, CSF_DE_CM_03]),
        ),
        &OFF_HOURS_PARAMS,
    ),
    with_params(
        with_marked(
            rule(
                RuleId::ResourceMixShift,
                Hook::Day(drift::resource_mix_shift),
                JUDGED_AFTER_LEARNING,
                Category::PurposeDrift,
                by_tail(Severity::Medium, COLLECTION),
                "A day's resource-type mix diverges from the baseline (high for notes and billing types).",
            ),
            by_tail(Severity::High, COLLECTION),
        ),
        &RESOURCE_MIX_SHIFT_PARAMS,
    ),
    with_params(
        rule(
            RuleId::SlowDrip,
            Hook::Day(slow_drip::slow_drip),
            JUDGED_AFTER_LEARNING,
            Category::DataVolume,
            grade(Severity::Medium, 65, EXFILTRATION),
            "Daily totals sustained above the app's usual level for days.",
        ),
        &SLOW_DRIP_PARAMS,
    ),
];

/// Every rule id, in catalog order.
pub const RULE_IDS: [&str; CATALOG.len()] = {
    let mut ids = [""; CATALOG.len()];
    let mut i = 0;
    while i < CATALOG.len() {
        ids[i] = CATALOG[i].id.as_str();
        i += 1;
    }
    ids
};

/// The rule a snapshot, a rules file or a silence names.
pub fn rule_id(name: &str) -> Option<RuleId> {
    CATALOG.iter().map(|r| r.id).find(|id| id.as_str() == name)
}

/// The catalog entry of a rule named by text.
pub fn info(name: &str) -> Option<&'static RuleInfo> {
    rule_id(name).map(RuleId::info)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule table of docs/detection.md and this list name the same rules (apart from
    /// rules it groups in one row, which are listed there too).
    #[test]
    fn the_detection_doc_documents_every_rule() {
        let doc = include_str!("../../../../../docs/detection.md");
        for id in RULE_IDS {
            assert!(
                doc.contains(&format!("`{id}`")),
                "docs/detection.md does not mention `{id}`"
            );
        }
    }

    /// Incident maps and their output order follow the ids' names: the rank `Ord` compares
    /// must order them exactly as their names do.
    #[test]
    fn ids_are_ordered_by_name() {
        let mut by_rank: Vec<RuleId> = CATALOG.iter().map(|r| r.id).collect();
        by_rank.sort();
        let mut by_name = by_rank.clone();
        by_name.sort_by_key(|id| id.as_str());
        assert_eq!(by_rank, by_name);
        let mut ranks: Vec<u8> = by_rank.iter().map(|id| id.name_rank()).collect();
        ranks.dedup();
        assert_eq!(ranks.len(), CATALOG.len(), "every id has its own rank");
    }

    /// README's tour counts the rules; the count follows the catalog.
    #[test]
    fn the_readme_counts_the_rules() {
        let readme = include_str!("../../../../../README.md");
        let count = format!("{} rules in three categories", RULE_IDS.len());
        assert!(readme.contains(&count), "README should say \"{count}\"");
    }

    /// The catalog is grouped by trigger in the order an event meets them (its app's ended hour
    /// and day are closed first, but their rules are listed last as they judge periods), so
    /// docs/rules.md reads in the order rules run.
    #[test]
    fn rules_are_grouped_by_trigger() {
        let rank = |hook: Hook| match hook {
            Hook::Event(_) => 0,
            Hook::Grant(_) => 1,
            Hook::Access(_) => 2,
            Hook::Hour(_) => 3,
            Hook::Day(_) => 4,
        };
        for pair in CATALOG.windows(2) {
            assert!(
                rank(pair[0].hook) <= rank(pair[1].hook),
                "{} ({}) is listed before {} ({})",
                pair[0].id,
                pair[0].hook.trigger(),
                pair[1].id,
                pair[1].hook.trigger()
            );
        }
        // Rules that compare with a baseline wait for it; the ones that need none do not.
        let waits = |id: RuleId| id.info().after_learning;
        assert!(waits(RuleId::NewScope) && waits(RuleId::SlowDrip));
        assert!(!waits(RuleId::EnforcementGap) && !waits(RuleId::RefreshBroadening));
    }

    /// A finding takes its category, severity, score and references from its catalog entry;
    /// a marked case takes the marked grade, a statistical rule's score follows p.
    #[test]
    fn findings_are_graded_from_the_catalog() {
        use crate::detect::finding::Finding;
        use crate::event::{Text, Timestamp};
        let client = Text::from("app");
        for info in &CATALOG {
            let f = Finding::new(info.id, client.clone(), Timestamp(0));
            assert_eq!(
                (f.category, f.severity),
                (info.category, info.grade.severity)
            );
            assert_eq!(f.references, info.grade.references);
            if let Score::Fixed(score) = info.grade.score {
                assert_eq!(f.score, score, "{}", info.id);
            }
            assert_eq!(f.clone().marked_if(false), f, "{}", info.id);
        }
        let scope = Finding::new(RuleId::RegistryScopeViolation, client.clone(), Timestamp(0));
        assert_eq!((scope.severity, scope.score), (Severity::Medium, 65));
        let broad = scope.marked_if(true);
        assert_eq!((broad.severity, broad.score), (Severity::High, 80));
        let interactive =
            Finding::new(RuleId::NewGrantType, client.clone(), Timestamp(0)).marked_if(true);
        assert_eq!(interactive.references, [NHI10_HUMAN_USE, CSF_DE_CM_03]);
        let burst = Finding::new(RuleId::HourlyBurst, client, Timestamp(0));
        assert_eq!(burst.clone().tail_probability(1e-6).score, 70);
        assert_eq!(
            burst.marked_if(true).tail_probability(1e-13).severity,
            Severity::High
        );
        // How `scopewatch rules` and docs/rules.md describe them.
        let text = |id: RuleId| (id.info().severity_text(), id.info().score_text());
        assert_eq!(
            text(RuleId::PatientFanout),
            ("medium or high".into(), "65 or 80".into())
        );
        assert_eq!(text(RuleId::NewGrantType), ("medium".into(), "60".into()));
        assert_eq!(
            text(RuleId::ResourceMixShift),
            ("medium or high".into(), "by p-value".into())
        );
    }

    /// The catalog holds each id once, at its own index, and an id's text is its serde name.
    #[test]
    fn every_rule_id_is_catalogued_at_its_index() {
        for (i, info) in CATALOG.iter().enumerate() {
            assert_eq!(info.id as usize, i, "{} out of place", info.id);
            let json = serde_json::to_string(&info.id).expect("serialise");
            assert_eq!(json, format!("\"{}\"", info.id.as_str()));
            assert_eq!(rule_id(info.id.as_str()), Some(info.id));
        }
        assert_eq!(rule_id("no_such_rule"), None);
    }
}
