//! data_volume (and patient fan-out) rules over per-token usage and hourly totals.
//!
//! - `token_outlier`: one token pulls far more than the app's tokens normally do, even when the
//!   app's total looks normal: requests above 5 × the app's p99 per token (at least 200), or
//!   data retrieved (resources returned where logged, else served requests) above 10 × the
//!   typical (median) token's and 3 × the p99 token's (at least 200).
//!   Output files of a Bulk Data export do not count here: an export is judged as a whole.
//! - `export_outlier`: one Bulk Data export's files return far more than the app's exports
//!   kicked off on the same kind of day (weekday, weekend) do: above 10 × the typical export
//!   and 3 × the p99 one (at least 1 000), once the app has finished 8 such exports. The files
//!   belong to the kick-off, not to a token (Bulk Data Access IG, "Bulk Data Output File
//!   Request": backends renew short-lived tokens while they download).
//! - `paging_sweep`: one token follows far more large pages (page follow-ups with `_count` ≥
//!   100) than the app's tokens do (5 × p99, at least 20).
//! - `patient_fanout` (purpose_drift): one token touches many distinct patients: more than 3
//!   for a token with a launch patient, else 3 × the app's p99 (at least 20).
//! - `hourly_burst`: requests in an hour far above the seasonal expectation for that hour
//!   (weekday/weekend × hour of day): negative-binomial tail probability below
//!   `max_tail_probability`, and at least 4 × the expected count, 6 standard deviations above
//!   it and 100 requests, so sparse or bursty apps don't flap. The standard deviation is taken
//!   as at least `min_cv` × the mean:
//!   hourly totals of session-driven apps are over-dispersed, and a few weeks of history
//!   underestimate their spread.

use std::collections::BTreeSet;

use serde_json::json;
use statrs::distribution::{DiscreteCDF, NegativeBinomial, Poisson};

use crate::baseline::{AppProfile, LogHistogram, SlotStats};
use crate::event::{AccessEvent, Text, Timestamp, MICROS_PER_SECOND};
use crate::smart::request::FhirRequest;

use super::super::finding::Finding;
use super::catalog::RuleId;
use super::hooks::{AccessContext, HourContext};
use super::novelty::access_finding;
use super::settings::RuleSettings;

/// Histograms need this many finished tokens before per-token thresholds are trusted.
pub const MIN_TOKENS: u64 = 20;
/// Seasonal slots need this many hourly observations before bursts are judged.
pub const MIN_SLOT_OBSERVATIONS: u32 = 6;
const MAX_TRACKED_PATIENTS: usize = 1024;
/// A page of at least this many resources is a large page.
pub const LARGE_PAGE: u32 = 100;

/// What one token has done so far.
#[derive(Clone, Debug, Default)]
pub struct TokenUsage {
    pub requests: u64,
    /// Page follow-ups with a large page size.
    pub pages: u64,
    pub max_count: u32,
    /// Distinct patients named by its requests (capped; PHI — never logged).
    pub patients: BTreeSet<Text>,
    pub fired: BTreeSet<RuleId>,
    /// Data retrieved: resources returned where the source logs them, else served requests.
    pub retrieved: u64,
    /// The incident (rule, cause) of an act new to the app this token performed (an export or
    /// population search its app never ran): the token's volume belongs to that incident.
    pub new_act: Option<(RuleId, String)>,
}

impl TokenUsage {
    /// Counts an access; `counted_by_export`: an output file its export counted (`ExportRun`),
    /// that export's volume rather than the token's.
    pub fn record(
        &mut self,
        access: &AccessEvent,
        request: &FhirRequest<'_>,
        counted_by_export: bool,
    ) {
        self.requests += 1;
        if (200..300).contains(&access.status) && !counted_by_export {
            // Saturating: a hostile count must neither wrap nor panic.
            self.retrieved = self
                .retrieved
                .saturating_add(access.resources_returned.unwrap_or(1));
        }
        if request.is_page_followup() && request.count.unwrap_or(0) >= LARGE_PAGE {
            self.pages += 1;
        }
        self.max_count = self.max_count.max(request.count.unwrap_or(0));
        let named = request
            .patient_ids()
            .into_iter()
            .map(Text::from)
            .chain(access.patient.clone());
        for p in named {
            if self.patients.len() < MAX_TRACKED_PATIENTS {
                self.patients.insert(p);
            }
        }
    }

    /// Folds a finished token into the app's per-token histograms.
    pub fn fold_into(&self, profile: &mut AppProfile) {
        profile.token_requests.add(self.requests);
        profile.token_patients.add(self.patients.len() as u64);
        profile.token_pages.add(self.pages);
        profile.token_retrieved.add(self.retrieved);
    }
}

/// One Bulk Data export of an app, from its kick-off to the next: what its files returned.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExportRun {
    /// Kicked off on a weekend day (in the engine's time zone).
    pub weekend: bool,
    /// Resources its output files returned (one per served file without a count).
    pub retrieved: u64,
    /// Served output files.
    #[serde(default)]
    pub files: u64,
    pub fired: bool,
    /// The limit it crossed when it fired: it is learned capped there, so one anomalous export
    /// does not raise the bar for the next (as `hourly_burst` learns a burst hour capped).
    #[serde(default)]
    pub cap: Option<u64>,
    /// The incident (rule, cause) of its kick-off when that was new to the app.
    #[serde(default)]
    pub new_act: Option<(RuleId, String)>,
}

impl ExportRun {
    pub fn new(weekend: bool) -> ExportRun {
        ExportRun {
            weekend,
            ..ExportRun::default()
        }
    }

    /// Counts a served output file.
    pub fn record(&mut self, access: &AccessEvent) {
        if (200..300).contains(&access.status) {
            let n = access.resources_returned.unwrap_or(1);
            self.retrieved = self.retrieved.saturating_add(n);
            self.files += 1;
        }
    }

    /// Folds a finished export into the app's exports on its kind of day, capped at the limit
    /// it crossed. An export without a served file (cancelled, failed, or replaced by the next
    /// kick-off before its files came) says nothing about the app's usual exports.
    pub fn fold_into(&self, profile: &mut AppProfile) {
        if self.files == 0 {
            return;
        }
        let value = self
            .cap
            .map_or(self.retrieved, |cap| self.retrieved.min(cap));
        if self.weekend {
            profile.export_retrieved_weekend.add(value);
        } else {
            profile.export_retrieved_weekday.add(value);
        }
    }
}

/// The exports an export kicked off on a weekend day (or a weekday) is judged against: those
/// of its kind of day once there are `min_exports`, else all the app's exports once there are
/// (an app that exports on weekdays only is still judged on a Saturday); None before that.
fn export_peers(
    profile: &AppProfile,
    weekend: bool,
    min_exports: u64,
) -> Option<(std::borrow::Cow<'_, LogHistogram>, &'static str)> {
    let same_kind = profile.exports_on(weekend);
    if same_kind.total() >= min_exports {
        let peers = if weekend {
            "weekend exports"
        } else {
            "weekday exports"
        };
        return Some((std::borrow::Cow::Borrowed(same_kind), peers));
    }
    let all = same_kind.merged(profile.exports_on(!weekend));
    (all.total() >= min_exports).then_some((std::borrow::Cow::Owned(all), "exports"))
}

/// `export_outlier`: an export's files return far more than the app's exports on that kind of
/// day; fires once per export, on the file that crosses the limit. An export whose kick-off was
/// new to the app has no such peers and is its own incident (`bulk_export_new`): not judged.
pub fn export_outlier(context: &mut AccessContext<'_>, findings: &mut Vec<Finding>) {
    let (access, profile, settings) = (context.access, context.profile, context.settings);
    let Some(run) = context.export_run.as_deref_mut() else {
        return;
    };
    let param = |name| settings.param(RuleId::ExportOutlier, name);
    if run.fired || run.new_act.is_some() {
        return;
    }
    let min_exports = param("min_exports") as u64;
    let Some((exports, peers)) = export_peers(profile, run.weekend, min_exports) else {
        return;
    };
    // Bucket middles, not tops: an export's volume is steadier than a token's, and a top can
    // be twice the real median, which would make ten times it twenty.
    let typical = exports.quantile_mid(0.5);
    let p99 = exports.quantile_mid(0.99);
    let limit = ((param("median_multiple") * typical as f64) as u64)
        .max((param("p99_multiple") * p99 as f64) as u64)
        .max(param("min_retrieved") as u64);
    if run.retrieved <= limit {
        return;
    }
    run.fired = true;
    run.cap = Some(limit);
    let client = &access.common.client_id;
    let day = if run.weekend { "weekend" } else { "weekday" };
    findings.push(access_finding(
        access,
        RuleId::ExportOutlier,
        format!(
            "One {client} export's files returned {} resources, far more than its {peers} normally do (typical {typical}, p99 {p99}).",
            run.retrieved
        ),
        json!({ "retrieved": run.retrieved, "kicked_off_on": day }),
        json!({ "retrieved_per_export_median": typical, "retrieved_per_export_p99": p99, "exports": exports.total() }),
    ));
}

/// The token's usage and whether the app has finished enough tokens for per-token limits
/// (per-token rules run only for accesses of a known token).
fn usage_and_trust<'c>(context: &'c mut AccessContext<'_>) -> Option<(&'c mut TokenUsage, bool)> {
    let trusted = context.profile.token_requests.total() >= MIN_TOKENS;
    context.usage.as_deref_mut().map(|usage| (usage, trusted))
}

/// `patient_fanout` (purpose_drift): one token touches many distinct patients; fires once per
/// token.
pub fn patient_fanout(context: &mut AccessContext<'_>, findings: &mut Vec<Finding>) {
    let (access, profile, settings) = (context.access, context.profile, context.settings);
    let has_launch_patient = context.patient_bound;
    let Some((usage, trusted)) = usage_and_trust(context) else {
        return;
    };
    let client = &access.common.client_id;
    let patients = usage.patients.len() as u64;
    let fanout = |name| settings.param(RuleId::PatientFanout, name);
    let limit = if has_launch_patient {
        fanout("patient_bound_limit") as u64
    } else if trusted {
        let p99 = profile.token_patients.quantile_upper(0.99) as f64;
        ((fanout("p99_multiple") * p99) as u64).max(fanout("min_limit") as u64)
    } else {
        return;
    };
    if patients <= limit || !usage.fired.insert(RuleId::PatientFanout) {
        return;
    }
    let f = access_finding(
        access,
        RuleId::PatientFanout,
        format!(
            "One {client} token touched {patients} distinct patients; its tokens normally touch at most {limit}."
        ),
        json!({ "distinct_patients": patients, "launch_patient": has_launch_patient }),
        json!({ "patients_per_token_limit": limit }),
    );
    // One patient's token reaching others breaks the launch context: marked high.
    findings.push(f.marked_if(has_launch_patient));
}

/// `token_outlier`: one token makes far more requests, or retrieves far more data, than the
/// app's tokens do; fires once per token.
pub fn token_outlier(context: &mut AccessContext<'_>, findings: &mut Vec<Finding>) {
    let (access, profile, settings) = (context.access, context.profile, context.settings);
    let Some((usage, true)) = usage_and_trust(context) else {
        return;
    };
    let client = &access.common.client_id;
    let outlier_param = |name| settings.param(RuleId::TokenOutlier, name);
    let request_limit = ((outlier_param("p99_multiple")
        * profile.token_requests.quantile_upper(0.99) as f64) as u64)
        .max(outlier_param("min_requests") as u64);
    if usage.requests > request_limit && usage.fired.insert(RuleId::TokenOutlier) {
        findings.push(access_finding(
            access,
            RuleId::TokenOutlier,
            format!(
                "One {client} token made {} requests, far more than the app's tokens normally do (p99 × {} = {request_limit}).",
                usage.requests,
                outlier_param("p99_multiple")
            ),
            json!({ "requests": usage.requests }),
            json!({ "requests_per_token_p99": profile.token_requests.quantile_upper(0.99), "tokens": profile.token_requests.total() }),
        ));
    }
    let retrieved_trusted = profile.token_retrieved.total() >= MIN_TOKENS;
    let typical = profile.token_retrieved.quantile_upper(0.5);
    let p99 = profile.token_retrieved.quantile_upper(0.99);
    let retrieved_limit = ((outlier_param("retrieved_median_multiple") * typical as f64) as u64)
        .max((outlier_param("retrieved_p99_multiple") * p99 as f64) as u64)
        .max(outlier_param("min_retrieved") as u64);
    if retrieved_trusted
        && usage.retrieved > retrieved_limit
        && usage.fired.insert(RuleId::TokenOutlier)
    {
        findings.push(access_finding(
            access,
            RuleId::TokenOutlier,
            format!(
                "One {client} token retrieved {} resources, far more than the app's tokens normally do (typical {typical}, p99 {p99}).",
                usage.retrieved
            ),
            json!({ "retrieved": usage.retrieved, "requests": usage.requests }),
            json!({ "retrieved_per_token_median": typical, "retrieved_per_token_p99": p99, "tokens": profile.token_retrieved.total() }),
        ));
    }
}

/// `paging_sweep`: one token follows far more large pages than the app's tokens do; fires once
/// per token.
pub fn paging_sweep(context: &mut AccessContext<'_>, findings: &mut Vec<Finding>) {
    let (access, profile, settings) = (context.access, context.profile, context.settings);
    let Some((usage, true)) = usage_and_trust(context) else {
        return;
    };
    let client = &access.common.client_id;
    let paging = |name| settings.param(RuleId::PagingSweep, name);
    let page_limit = ((paging("p99_multiple") * profile.token_pages.quantile_upper(0.99) as f64)
        as u64)
        .max(paging("min_pages") as u64);
    if usage.pages <= page_limit || !usage.fired.insert(RuleId::PagingSweep) {
        return;
    }
    findings.push(access_finding(
        access,
        RuleId::PagingSweep,
        format!(
            "One {client} token paged through {} result pages of up to {} resources each, a deep sweep its tokens don't normally make.",
            usage.pages, usage.max_count
        ),
        json!({ "pages": usage.pages, "max_count": usage.max_count }),
        json!({ "pages_per_token_p99": profile.token_pages.quantile_upper(0.99) }),
    ));
}

/// P(X ≥ observed) for a count with the slot's mean and variance, the spread at least
/// `min_cv` of the mean: negative binomial when over-dispersed, Poisson otherwise.
pub fn upper_tail(observed: u64, slot: &SlotStats, min_cv: f64) -> f64 {
    if observed == 0 {
        return 1.0;
    }
    // A floor keeps near-silent slots from making every request look impossible.
    let mean = slot.mean.max(1.0);
    let var = slot.var.max(mean).max((min_cv * mean).powi(2));
    let p = if var > mean * 1.05 {
        let success = mean / var;
        let r = mean * mean / (var - mean);
        NegativeBinomial::new(r, success)
            .map(|d| d.sf(observed - 1))
            .ok()
    } else {
        Poisson::new(mean).map(|d| d.sf(observed - 1)).ok()
    };
    p.unwrap_or(1.0)
}

/// `hourly_burst`: judges one finished hour of an app; a burst marks the hour anomalous, so
/// it is learned capped (`detect::learn::learn_hour`).
pub fn hourly_burst(context: &mut HourContext<'_>, findings: &mut Vec<Finding>) {
    let (finding, anomalous) = check_hour(
        context.client_id,
        (context.start, context.requests),
        (&context.slot, context.profile.busiest_hour_mean()),
        context.settings,
    );
    findings.extend(finding);
    context.anomalous |= anomalous;
}

/// The burst finding (if any), and whether the hour was anomalous: the hour against its own
/// seasonal slot, and against the mean of the app's busiest slot (`busiest`, 0 when unknown).
/// An hour only as busy as the app's usual peak, at another time of day, is a change of
/// rhythm (`off_hours`, `resource_mix_shift`), not of volume.
fn check_hour(
    client_id: &Text,
    (hour_start, requests): (Timestamp, u64),
    (slot, busiest): (&SlotStats, f64),
    settings: &RuleSettings,
) -> (Option<Finding>, bool) {
    if slot.n < MIN_SLOT_OBSERVATIONS {
        return (None, false);
    }
    let burst = |name| settings.param(RuleId::HourlyBurst, name);
    let min_cv = burst("min_cv");
    let p = upper_tail(requests, slot, min_cv);
    let sd = slot.var.sqrt().max(min_cv * slot.mean);
    let practical = requests as f64
        >= (burst("min_multiple") * slot.mean)
            .max(slot.mean + burst("min_sigmas") * sd)
            .max(burst("min_requests"));
    if p >= burst("max_tail_probability") || !practical {
        return (None, false);
    }
    // Anomalous for its slot either way (learned capped); a finding only beyond the peak.
    if (requests as f64) < burst("min_peak_multiple") * busiest {
        return (None, true);
    }
    let peak = if busiest > 0.0 {
        format!(" and {busiest:.0} in its busiest hour")
    } else {
        String::new()
    };
    let hour_end = Timestamp(hour_start.0 + 3600 * MICROS_PER_SECOND);
    let finding = Finding {
        span: Some((hour_start, hour_end)),
        summary: format!(
            "{client_id} made {requests} requests in one hour where about {:.0} are usual for that hour{peak} (p = {p:.1e}).",
            slot.mean
        ),
        observed: json!({ "requests": requests, "hour_start": hour_start, "tail_probability": p }),
        baseline: json!({ "mean": slot.mean, "std_dev": slot.var.sqrt(), "observations": slot.n, "mean_busiest_hour": busiest }),
        ..Finding::new(RuleId::HourlyBurst, client_id.clone(), hour_end)
    }
    .marked_if(p < 1e-12)
    .tail_probability(p);
    (Some(finding), true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Category;

    #[test]
    fn tail_probabilities_behave() {
        let mut slot = SlotStats::default();
        for v in [100.0, 110.0, 90.0, 105.0, 95.0, 100.0] {
            slot.update(v);
        }
        assert!(upper_tail(100, &slot, 0.75) > 0.3);
        assert!(upper_tail(1000, &slot, 0.75) < 1e-6);
        assert!(upper_tail(200, &slot, 0.75) > 1e-6, "over-dispersion floor");
        assert!(upper_tail(200, &slot, 0.1) < 1e-6, "a smaller floor");
        assert_eq!(upper_tail(0, &slot, 0.75), 1.0);
        assert!(
            super::super::catalog::Score::of_tail(1e-6)
                > super::super::catalog::Score::of_tail(1e-3)
        );
        assert_eq!(super::super::catalog::Score::of_tail(1e-30), 100);
    }

    #[test]
    fn an_export_is_learned_capped_and_only_with_files() {
        let mut profile = AppProfile::new("etl".into(), Timestamp(0));
        let cancelled = ExportRun::new(false);
        cancelled.fold_into(&mut profile);
        assert_eq!(
            profile.export_retrieved_weekday.total(),
            0,
            "no file, nothing learned"
        );
        let fired = ExportRun {
            retrieved: 1_000_000,
            files: 4,
            fired: true,
            cap: Some(1_000),
            ..ExportRun::new(true)
        };
        fired.fold_into(&mut profile);
        let weekend = &profile.export_retrieved_weekend;
        assert_eq!(
            (weekend.total(), weekend.quantile_upper(1.0)),
            (1, 1_023),
            "capped"
        );
    }

    #[test]
    fn a_kind_of_day_without_enough_exports_is_judged_against_all_of_them() {
        let mut profile = AppProfile::new("etl".into(), Timestamp(0));
        for _ in 0..8 {
            profile.export_retrieved_weekday.add(100);
        }
        let (same, peers) = export_peers(&profile, false, 8).expect("weekday peers");
        assert_eq!((same.total(), peers), (8, "weekday exports"));
        let (all, peers) = export_peers(&profile, true, 8).expect("all exports");
        assert_eq!((all.total(), peers), (8, "exports"));
        assert!(export_peers(&profile, true, 9).is_none());
    }

    #[test]
    fn bursts_need_history_and_magnitude() {
        let id: Text = "app".into();
        let t = Timestamp(0);
        let defaults = RuleSettings::default();
        let mut slot = SlotStats::default();
        slot.update(2.0);
        assert!(
            check_hour(&id, (t, 500), (&slot, 0.0), &defaults)
                .0
                .is_none(),
            "one observation is not a baseline"
        );
        for _ in 0..10 {
            slot.update(2.0);
        }
        // Sparse app: 30 requests is very unlikely but not a practical burst.
        let (f, anomalous) = check_hour(&id, (t, 30), (&slot, 0.0), &defaults);
        assert!(f.is_none() && !anomalous);
        let (f, anomalous) = check_hour(&id, (t, 400), (&slot, 0.0), &defaults);
        let f = f.unwrap();
        assert!(anomalous);
        assert_eq!(
            (f.rule, f.category),
            (RuleId::HourlyBurst, Category::DataVolume)
        );
        assert_eq!(f.time, Timestamp(3_600_000_000));
        // An hour as busy as the app's usual peak (its busiest slot averages 200) is a change
        // of rhythm, not of volume: 400 is a burst only beyond three times that peak.
        let (f, anomalous) = check_hour(&id, (t, 400), (&slot, 200.0), &defaults);
        assert!(
            f.is_none() && anomalous,
            "not a finding, still learned capped"
        );
        assert!(check_hour(&id, (t, 601), (&slot, 200.0), &defaults)
            .0
            .is_some());
        // A rules file raises the floor without recompiling: 400 is no longer a burst.
        let tuned =
            RuleSettings::parse("[hourly_burst]\nmin_requests = 500\n", "r.toml").expect("rules");
        assert!(check_hour(&id, (t, 400), (&slot, 0.0), &tuned).0.is_none());
    }
}
