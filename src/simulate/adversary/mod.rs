//! The adversary: legitimate traffic that real deployments produce and that looks most like an
//! anomaly (typed Bulk Data exports with token renewal, `$everything`, modifier searches,
//! granular scopes, one patient on two devices, user-level chart rounds, small-hours calls,
//! writes, a clinic closed on a public holiday), plus a few labelled anomalies hidden in it.
//!
//! Everything here comes from its own random stream and its own token numbers, so the apps,
//! background and injected anomalies of `generate.rs` stay exactly as they were.

mod anomalies;
mod mobile;
mod sessions;

use anomalies::anomalies;
use mobile::{enrol, mobile_session, Device};
use sessions::{
    booking, chart_summary, chart_summary_as, cohort_export, lab_session, nurse_round,
    small_hours_call, triage_call,
};

use super::apps::{
    Archetype, RequestKind, ADVERSARY_ARCHETYPES, BOOKING_APP, CHART_SUMMARY, LAB_VIEWER,
    MOBILE_HEALTH, NIGHT_TRIAGE, NURSE_STATION, WAREHOUSE_TYPED,
};
use super::generate::{common, Gen, Label};
use super::rng::Rng;
use crate::alert::Category;
use crate::event::{Event, Text, Timestamp, TokenAction, TokenEvent, MICROS_PER_SECOND};

/// Seeds the adversary's random stream (xor the run's seed).
const ADVERSARY_STREAM: u64 = 0xAD7E_25A2_1E61_7105;
/// Its token numbers start here, far above the main counter, so ids never collide and the
/// anomalies injected afterwards keep theirs.
const ADVERSARY_TOKENS: u64 = 90_000_000;
/// Device B of `mobile-health` (a watch companion) holds a subset of device A's grant.
const DEVICE_B_SCOPES: &str =
    "launch/patient openid offline_access patient/Observation.rs patient/Patient.r";
/// Patients using `mobile-health` (each on two devices).
const MOBILE_PATIENTS: u64 = 30;
/// The cohort `warehouse-typed` exports.
const COHORT: &str = "g-cohort1";
/// Days 15–17: `nurse-station` serves 1.4 times its usual load (injected slow drip).
const DRIP_FROM: i64 = 15;
const DRIP_DAYS: i64 = 3;
const DRIP_FACTOR: f64 = 1.4;
/// Day 21 (a Monday) is a public holiday: the clinic behind `chart-summary` is closed and
/// serves a twentieth of its usual sessions, then catches up (a third more the next day); the
/// days after it are not a drip.
const CLINIC_HOLIDAY: i64 = 21;
const HOLIDAY_FACTOR: f64 = 0.05;
const CATCH_UP_FACTOR: f64 = 1.3;
/// Chance a night has one small-hours (03:00–04:59) triage call besides Wednesdays'.
const SMALL_HOURS_CALL: f64 = 0.3;
/// Days 10 and 11 (Thursday and Friday), 02:00 and 03:00: the clinician on call opens ten
/// charts with `chart-summary`, an app of office hours, a different clinician each night (a
/// rota). One night session is routine (issue #13: "single night-time sessions"), and so is a
/// rota: `off_hours` records them at info; only an account back on another night is a habit.
pub(super) const ON_CALL_NIGHTS: [(i64, i64); 2] = [(10, 2), (11, 3)];
const ON_CALL_CHARTS: i64 = 10;
/// Chance a mobile session ends with the user signing out (token revoked, next use signs in).
const SIGN_OUT: f64 = 0.04;
const LAB_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

/// Plays the adversarial apps from day 0 and injects their anomalies (week 3 on); returns the
/// anomalies' labels. Restores the main stream and token counter before returning.
pub(super) fn adversary(g: &mut Gen, seed: u64, days: i64) -> Vec<Label> {
    let main_rng = std::mem::replace(&mut g.rng, Rng::new(seed ^ ADVERSARY_STREAM));
    let main_tokens = std::mem::replace(&mut g.tokens, ADVERSARY_TOKENS);
    let mut devices = enrol(g, app(MOBILE_HEALTH), days);
    for day in 0..days {
        for app in ADVERSARY_ARCHETYPES {
            daily(g, app, day, &mut devices);
        }
    }
    let labels = anomalies(g, days, &devices);
    // Last, so every earlier draw of this stream stays as it was.
    on_call_night(g, days);
    g.rng = main_rng;
    g.tokens = main_tokens;
    labels
}

fn app(id: &str) -> &'static Archetype {
    ADVERSARY_ARCHETYPES
        .iter()
        .find(|a| a.client_id == id)
        .unwrap_or(&ADVERSARY_ARCHETYPES[0])
}

fn after(t: Timestamp, seconds: i64) -> Timestamp {
    Timestamp(t.0 + seconds * MICROS_PER_SECOND)
}

/// The think time between two requests of a session.
fn step(g: &mut Gen, t: Timestamp) -> Timestamp {
    after(t, g.rng.range(2, 25) as i64)
}

fn patient_id(g: &mut Gen) -> String {
    format!("pat-{:05}", g.rng.range(1, 20_000))
}

/// Who a token is for: its launch patient and its end user.
#[derive(Clone, Copy)]
struct Holder<'a> {
    patient: Option<&'a str>,
    user: Option<&'a str>,
}

/// A backend's token: no patient, no end user.
const NOBODY: Holder<'static> = Holder {
    patient: None,
    user: None,
};

#[allow(clippy::too_many_arguments)]
fn token_event(
    g: &mut Gen,
    t: Timestamp,
    client: &str,
    action: TokenAction,
    grant: &str,
    scopes: &str,
    who: Holder<'_>,
    lifetime: i64,
) -> Text {
    g.tokens += 1;
    let id: Text = format!("tok-{:07}", g.tokens).as_str().into();
    let mut c = common(t, client);
    c.user = who.user.map(Text::from);
    g.push(Event::Token(TokenEvent {
        common: c,
        event: action,
        token_id: Some(id.clone()),
        grant_type: Some(grant.into()),
        // A refresh requests nothing new: it gets (at most) its own grant back.
        scope_requested: (action == TokenAction::Issued).then(|| scopes.to_string()),
        scope_granted: Some(scopes.to_string()),
        patient: who.patient.map(Text::from),
        expires_in: Some(lifetime),
    }));
    id
}

/// A token issued with the app's grant type and lifetime.
fn grant(g: &mut Gen, t: Timestamp, app: &Archetype, scopes: &str, who: Holder<'_>) -> Text {
    token_event(
        g,
        t,
        app.client_id,
        TokenAction::Issued,
        app.grant_type,
        scopes,
        who,
        app.token_lifetime,
    )
}

/// A refresh with an explicit user (`Gen::refresh` takes the user of the client's last token
/// for the patient, which for two devices may be the other grant's).
fn refresh(g: &mut Gen, t: Timestamp, app: &Archetype, scopes: &str, who: Holder<'_>) -> Text {
    token_event(
        g,
        t,
        app.client_id,
        TokenAction::Refreshed,
        "refresh_token",
        scopes,
        who,
        app.token_lifetime,
    )
}

/// An RFC 7009 revocation of `token`.
fn revoke(g: &mut Gen, t: Timestamp, app: &Archetype, token: &Text, who: Holder<'_>) {
    let mut c = common(t, app.client_id);
    c.user = who.user.map(Text::from);
    g.push(Event::Token(TokenEvent {
        common: c,
        event: TokenAction::Revoked,
        token_id: Some(token.clone()),
        grant_type: None,
        scope_requested: None,
        scope_granted: None,
        patient: who.patient.map(Text::from),
        expires_in: None,
    }));
}

/// `GET Patient/{p}`: the patient's own record, one resource, served.
fn read_patient(g: &mut Gen, app: &Archetype, token: &Text, p: &str, t: Timestamp) {
    let url = format!("Patient/{p}");
    g.access(
        t,
        app.client_id,
        token,
        "GET",
        url,
        200,
        1,
        2_000,
        Some(p),
        app.purpose,
    );
}

/// `GET Patient/{p}/$everything`, returning 40–400 resources.
fn everything(g: &mut Gen, app: &Archetype, token: &Text, p: &str, t: Timestamp) {
    let n = g.rng.range(40, 400);
    let url = format!("Patient/{p}/$everything");
    g.access(
        t,
        app.client_id,
        token,
        "GET",
        url,
        200,
        n,
        n * 1_400,
        Some(p),
        app.purpose,
    );
}

/// A weighted pick among the kinds `ok` allows.
fn pick_where<'a>(
    g: &mut Gen,
    kinds: &'a [RequestKind],
    ok: impl Fn(&RequestKind) -> bool,
) -> Option<&'a RequestKind> {
    let total: u64 = kinds
        .iter()
        .filter(|k| ok(k))
        .map(|k| u64::from(k.weight))
        .sum();
    if total == 0 {
        return None;
    }
    let mut x = g.rng.range(0, total - 1);
    for kind in kinds.iter().filter(|k| ok(k)) {
        let w = u64::from(kind.weight);
        if x < w {
            return Some(kind);
        }
        x -= w;
    }
    None
}

fn pick<'a>(g: &mut Gen, kinds: &'a [RequestKind]) -> Option<&'a RequestKind> {
    pick_where(g, kinds, |_| true)
}

/// Slots belong to schedules, not to a patient: the server logs no patient for them.
fn concerns_patient(url: &str) -> bool {
    !url.starts_with("Slot")
}

/// One request of `kind` about patient `p`; 1 % of reads find nothing (404).
fn request(
    g: &mut Gen,
    t: Timestamp,
    app: &Archetype,
    token: &Text,
    kind: &RequestKind,
    p: Option<&str>,
) {
    let url = kind
        .url
        .replace("{p}", p.unwrap_or(""))
        .replace("{n}", &g.rng.range(1, 300).to_string());
    let resources = g.rng.range(kind.resources.0, kind.resources.1);
    let (status, resources) = if kind.method == "POST" {
        (201, resources)
    } else if g.rng.unit() < 0.01 {
        (404, 0)
    } else {
        (200, resources)
    };
    let logged = if concerns_patient(kind.url) { p } else { None };
    g.access(
        t,
        app.client_id,
        token,
        kind.method,
        url,
        status,
        resources,
        resources * kind.bytes_per_resource,
        logged,
        app.purpose,
    );
}

/// `requests_per_session` weighted requests about `p` after `t`; returns the last one's time.
fn weighted_requests(
    g: &mut Gen,
    app: &Archetype,
    token: &Text,
    p: &str,
    t: Timestamp,
) -> Timestamp {
    let (lo, hi) = app.requests_per_session;
    let mut t = t;
    for _ in 0..g.rng.range(lo, hi) {
        t = step(g, t);
        if let Some(kind) = pick(g, app.kinds) {
            request(g, t, app, token, kind, Some(p));
        }
    }
    t
}

/// One day of `app`: Poisson sessions per hour of its rhythm, in time order within each hour
/// (the mobile devices' token state follows them).
fn daily(g: &mut Gen, app: &'static Archetype, day: i64, devices: &mut [Device]) {
    let weekend = day % 7 >= 5;
    let drip =
        if app.client_id == NURSE_STATION && (DRIP_FROM..DRIP_FROM + DRIP_DAYS).contains(&day) {
            DRIP_FACTOR
        } else if app.client_id == CHART_SUMMARY && day == CLINIC_HOLIDAY {
            HOLIDAY_FACTOR
        } else if app.client_id == CHART_SUMMARY && day == CLINIC_HOLIDAY + 1 {
            CATCH_UP_FACTOR
        } else {
            1.0
        };
    for hour in 0..24usize {
        let mean =
            drip * app.hourly_sessions[hour] * if weekend { app.weekend_factor } else { 1.0 };
        if mean <= 0.0 {
            continue;
        }
        let sessions = if app.client_id == WAREHOUSE_TYPED {
            1
        } else {
            g.rng.poisson(mean)
        };
        let mut offsets: Vec<i64> = (0..sessions)
            .map(|_| g.rng.range(0, 3_300) as i64)
            .collect();
        offsets.sort_unstable();
        for offset in offsets {
            let t0 = after(g.at(day, hour as i64), offset);
            play(g, app, t0, devices);
        }
    }
    if app.client_id == NIGHT_TRIAGE {
        small_hours_call(g, app, day);
    }
}

/// The on-call charts at night (`ON_CALL_NIGHTS`), five minutes apart, each night under that
/// night's on-call account.
fn on_call_night(g: &mut Gen, days: i64) {
    for (day, hour) in ON_CALL_NIGHTS {
        if day >= days {
            continue;
        }
        let account = format!("Practitioner/on-call-{day}");
        for k in 0..ON_CALL_CHARTS {
            let t0 = after(g.at(day, hour), 60 + k * 300);
            chart_summary_as(g, app(CHART_SUMMARY), t0, Some(&account));
        }
    }
}

fn play(g: &mut Gen, app: &'static Archetype, t0: Timestamp, devices: &mut [Device]) {
    match app.client_id {
        WAREHOUSE_TYPED => cohort_export(g, app, t0),
        CHART_SUMMARY => chart_summary(g, app, t0),
        LAB_VIEWER => lab_session(g, app, t0),
        MOBILE_HEALTH => mobile_session(g, app, t0, devices),
        NURSE_STATION => nurse_round(g, app, t0),
        NIGHT_TRIAGE => triage_call(g, app, t0),
        BOOKING_APP => booking(g, app, t0),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::{simulate, SimConfig, Simulation, START};

    const DAY: i64 = 24 * 3600 * MICROS_PER_SECOND;

    fn is_new(client: &str) -> bool {
        ADVERSARY_ARCHETYPES.iter().any(|a| a.client_id == client)
    }

    /// The new labels lie in week 3 or later, inside the simulated days, after the old ones.
    fn check_labels(sim: &Simulation, days: i64) -> usize {
        let start = Timestamp::parse_rfc3339(START).unwrap_or_default().0;
        let new: Vec<&Label> = sim.labels.iter().filter(|l| is_new(&l.client_id)).collect();
        for l in &new {
            assert!(l.start.0 >= start + 14 * DAY, "{l:?} in week 3 or later");
            assert!(l.start < l.end, "{l:?} non-empty");
            assert!(l.end.0 <= start + days * DAY, "{l:?} inside {days} days");
        }
        if let Some(i) = sim.labels.iter().position(|l| is_new(&l.client_id)) {
            assert!(sim.labels[i..].iter().all(|l| is_new(&l.client_id)));
        }
        new.len()
    }

    #[test]
    fn deterministic_registered_and_labelled_from_week_three() {
        let a = simulate(&SimConfig { seed: 5, days: 28 });
        let b = simulate(&SimConfig { seed: 5, days: 28 });
        assert_eq!(a.events, b.events);
        assert_eq!(a.labels, b.labels);

        let registry = crate::registry::Registry::parse(&a.registry_toml).unwrap();
        let week1 = Timestamp::parse_rfc3339(START).unwrap_or_default().0 + 7 * DAY;
        for app in ADVERSARY_ARCHETYPES {
            assert!(
                registry.get(app.client_id).is_some(),
                "{} registered",
                app.client_id
            );
            assert!(
                a.events
                    .iter()
                    .any(|e| e.client_id() == app.client_id && e.time().0 < week1),
                "{} plays from the first week",
                app.client_id
            );
        }

        assert_eq!(check_labels(&a, 28), 6);
        for days in [9, 16, 19] {
            check_labels(&simulate(&SimConfig { seed: 5, days }), days);
        }
    }
}
