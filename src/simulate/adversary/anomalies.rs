//! The adversary's labelled anomalies, hidden in its legitimate traffic (weeks 3–4).

use super::mobile::{mobile_reads, Device};
use super::sessions::{cohort_export_of, lab_open};
use super::*;

/// The labelled anomalies, in time order; each only when its day is simulated.
pub(super) fn anomalies(g: &mut Gen, days: i64, devices: &[Device]) -> Vec<Label> {
    [
        nurse_drip_label(g, days),
        granular_violation(g, days),
        revoked_token_use(g, days, devices),
        cross_patient_reads(g, days),
        lab_token_outlier(g, days),
        swapped_cohort_export(g, days),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Days 15–17 — `nurse-station` serves 1.4 times its usual requests and resources (the extra
/// sessions are played by `daily`).
pub(super) fn nurse_drip_label(g: &Gen, days: i64) -> Option<Label> {
    (DRIP_FROM < days).then(|| Label {
        client_id: NURSE_STATION.into(),
        category: Category::DataVolume,
        rule: "slow_drip",
        start: g.at(DRIP_FROM, 0),
        end: g.at((DRIP_FROM + DRIP_DAYS).min(days), 0),
        description: "nurse station serves 1.4 times its usual requests for three days",
    })
}

/// Day 16 15:00 — a lab-viewer token (laboratory Observations only) is served social history.
pub(super) fn granular_violation(g: &mut Gen, days: i64) -> Option<Label> {
    let (d, h) = (16, 15);
    if d >= days {
        return None;
    }
    let app = app(LAB_VIEWER);
    let p = "pat-01204";
    let t0 = after(g.at(d, h), 900);
    let (token, mut t) = lab_open(g, app, t0, p);
    for _ in 0..4 {
        t = step(g, t);
        let n = g.rng.range(1, 5);
        g.access(
            t,
            app.client_id,
            &token,
            "GET",
            format!("Observation?patient={p}&category={LAB_CATEGORY}|social-history"),
            200,
            n,
            n * 1_100,
            Some(p),
            app.purpose,
        );
    }
    Some(Label {
        client_id: LAB_VIEWER.into(),
        category: Category::ScopeCreep,
        rule: "enforcement_gap",
        start: g.at(d, h),
        end: g.at(d, h + 1),
        description: "lab viewer (laboratory-only scope) served social-history Observations",
    })
}

/// Day 17 20:00 — a mobile token is revoked, and ten minutes later still honoured five times.
pub(super) fn revoked_token_use(g: &mut Gen, days: i64, devices: &[Device]) -> Option<Label> {
    let (d, h) = (17, 20);
    if d >= days {
        return None;
    }
    let app = app(MOBILE_HEALTH);
    // Patient 7's device A.
    let device = devices.get(14)?;
    let t0 = after(g.at(d, h), 600);
    let token = refresh(g, t0, app, device.scopes, device.holder());
    let t = mobile_reads(g, app, device, &token, t0);
    let revoked = after(t, 60);
    revoke(g, revoked, app, &token, device.holder());
    for i in 0..5 {
        let n = g.rng.range(5, 30);
        g.access(
            after(revoked, 600 + i * 12),
            app.client_id,
            &token,
            "GET",
            format!("Observation?patient={}", device.patient),
            200,
            n,
            n * 1_200,
            Some(device.patient.as_str()),
            app.purpose,
        );
    }
    Some(Label {
        client_id: MOBILE_HEALTH.into(),
        category: Category::ScopeCreep,
        rule: "revoked_token_use",
        start: g.at(d, h),
        end: g.at(d, h + 1),
        description: "a revoked mobile token is honoured for five reads ten minutes later",
    })
}

/// Day 18 11:00 — a chart-summary token for one patient is served another patient's
/// Observations by id.
pub(super) fn cross_patient_reads(g: &mut Gen, days: i64) -> Option<Label> {
    let (d, h) = (18, 11);
    if d >= days {
        return None;
    }
    let app = app(CHART_SUMMARY);
    let (p, q) = ("pat-00731", "pat-00732");
    let who = Holder {
        patient: Some(p),
        user: Some("Practitioner/c17"),
    };
    let t0 = after(g.at(d, h), 420);
    let token = grant(g, t0, app, app.scopes, who);
    let mut t = step(g, t0);
    everything(g, app, &token, p, t);
    for _ in 0..6 {
        t = step(g, t);
        let id = g.rng.range(10_000, 99_999);
        g.access(
            t,
            app.client_id,
            &token,
            "GET",
            format!("Observation/o{id}"),
            200,
            1,
            1_100,
            Some(q),
            app.purpose,
        );
    }
    Some(Label {
        client_id: CHART_SUMMARY.into(),
        category: Category::ScopeCreep,
        rule: "enforcement_gap",
        start: g.at(d, h),
        end: g.at(d, h + 1),
        description: "a chart-summary token is served six Observations of another patient",
    })
}

/// Day 22 (Tuesday) 10:00–12:00 — one lab-viewer token pulls 40 year-by-year searches of 200
/// lab results (~35 times a usual token), inside its scopes; the day's total stays ~1.4×.
pub(super) fn lab_token_outlier(g: &mut Gen, days: i64) -> Option<Label> {
    let (d, h) = (22, 10);
    if d >= days {
        return None;
    }
    let app = app(LAB_VIEWER);
    let p = "pat-02417";
    let t0 = after(g.at(d, h), 300);
    let (token, t) = lab_open(g, app, t0, p);
    for i in 0..40 {
        let year = 2024 - i;
        g.access(
            after(t, (i + 1) * 160),
            app.client_id,
            &token,
            "GET",
            format!(
                "Observation?patient={p}&category={LAB_CATEGORY}|laboratory&date=ge{year}-01-01&date=lt{}-01-01&_count=200",
                year + 1
            ),
            200,
            200,
            200 * 1_100,
            Some(p),
            app.purpose,
        );
    }
    Some(Label {
        client_id: LAB_VIEWER.into(),
        category: Category::DataVolume,
        rule: "token_outlier",
        start: g.at(d, h),
        end: g.at(d, h + 2),
        description: "one lab-viewer token pulls 8,000 lab results in two hours",
    })
}

/// Day 24 03:00 — `warehouse-typed` runs a second export in the night; behind the usual Group
/// id its files hold twenty times the cohort, downloaded under the app's usual renewed tokens.
/// The kick-off is the one the app runs every night (nothing new to report about the act), so
/// the volume is the incident (`export_outlier`): the look-alike of a first export, which is
/// one incident (`bulk_export_new`) whatever its files hold.
pub(super) fn swapped_cohort_export(g: &mut Gen, days: i64) -> Option<Label> {
    let (d, h) = (24, 3);
    if d >= days {
        return None;
    }
    cohort_export_of(g, app(WAREHOUSE_TYPED), after(g.at(d, h), 120), 20);
    Some(Label {
        client_id: WAREHOUSE_TYPED.into(),
        category: Category::DataVolume,
        rule: "export_outlier",
        start: g.at(d, h),
        end: g.at(d, h + 2),
        description: "a second export in the night whose files hold twenty times the cohort",
    })
}
