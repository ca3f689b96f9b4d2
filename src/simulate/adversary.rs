//! The adversary: legitimate traffic that real deployments produce and that looks most like an
//! anomaly (typed Bulk Data exports with token renewal, `$everything`, modifier searches,
//! granular scopes, one patient on two devices, user-level chart rounds, small-hours calls,
//! writes), plus a few labelled anomalies hidden in it.
//!
//! Everything here comes from its own random stream and its own token numbers, so the apps,
//! background and injected anomalies of `generate.rs` stay exactly as they were.

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
/// Chance a night has one small-hours (03:00–04:59) triage call besides Wednesdays'.
const SMALL_HOURS_CALL: f64 = 0.3;
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

/// A backend asks for a fresh 300 s token once it has used four minutes of the last one.
fn renew(g: &mut Gen, app: &Archetype, t: Timestamp, token: &mut Text, issued: &mut Timestamp) {
    if t.0 - issued.0 >= 240 * MICROS_PER_SECOND {
        *token = grant(g, t, app, app.scopes, NOBODY);
        *issued = t;
    }
}

/// The nightly cohort export: read the Group, kick off (GET with `_type`, some nights POST),
/// poll until done (202s, then 200), download one file per type from the file server.
fn cohort_export(g: &mut Gen, app: &Archetype, t0: Timestamp) {
    let mut token = grant(g, t0, app, app.scopes, NOBODY);
    let mut issued = t0;
    let job = g.rng.range(1, 1 << 40);
    let mut t = after(t0, 2);
    g.access(
        t,
        app.client_id,
        &token,
        "GET",
        format!("Group/{COHORT}"),
        200,
        1,
        40_000,
        None,
        app.purpose,
    );
    t = after(t, 3);
    let (method, url) = if g.rng.unit() < 0.25 {
        ("POST", format!("Group/{COHORT}/$export"))
    } else {
        (
            "GET",
            format!("Group/{COHORT}/$export?_type=Patient,Observation,Condition"),
        )
    };
    g.access(
        t,
        app.client_id,
        &token,
        method,
        url,
        202,
        0,
        0,
        None,
        app.purpose,
    );
    let polls = g.rng.range(2, 9);
    for i in 0..=polls {
        t = after(t, g.rng.range(45, 75) as i64);
        renew(g, app, t, &mut token, &mut issued);
        let (status, bytes) = if i < polls { (202, 0) } else { (200, 600) };
        g.access(
            t,
            app.client_id,
            &token,
            "GET",
            format!("$export-poll-status?_jobId={job:x}"),
            status,
            0,
            bytes,
            None,
            app.purpose,
        );
    }
    let files: [(&str, u64, u64, u64); 3] = [
        ("Patient", 2_000, 4_000, 1_800),
        ("Observation", 80_000, 200_000, 900),
        ("Condition", 5_000, 15_000, 1_100),
    ];
    for (ty, lo, hi, per) in files {
        t = after(t, g.rng.range(20, 90) as i64);
        renew(g, app, t, &mut token, &mut issued);
        let n = g.rng.range(lo, hi);
        g.access(
            t,
            app.client_id,
            &token,
            "GET",
            format!("https://files.example.org/bulk/{job:x}/{ty}.ndjson"),
            200,
            n,
            n * per,
            None,
            app.purpose,
        );
    }
}

/// One `$everything` for the launch patient, then modifier searches (restricted to it).
fn chart_summary(g: &mut Gen, app: &Archetype, t0: Timestamp) {
    let p = patient_id(g);
    let user = format!("Practitioner/c{}", g.rng.range(1, 80));
    let who = Holder {
        patient: Some(p.as_str()),
        user: Some(user.as_str()),
    };
    let token = grant(g, t0, app, app.scopes, who);
    let t = step(g, t0);
    let n = g.rng.range(40, 400);
    g.access(
        t,
        app.client_id,
        &token,
        "GET",
        format!("Patient/{p}/$everything"),
        200,
        n,
        n * 1_400,
        Some(p.as_str()),
        app.purpose,
    );
    weighted_requests(g, app, &token, &p, t);
}

/// Opens a lab viewer session for a patient: the demographics, then lab searches.
fn lab_open(g: &mut Gen, app: &Archetype, t0: Timestamp, p: &str) -> (Text, Timestamp) {
    let user = format!("Patient/{p}");
    let who = Holder {
        patient: Some(p),
        user: Some(user.as_str()),
    };
    let token = grant(g, t0, app, app.scopes, who);
    let t = step(g, t0);
    g.access(
        t,
        app.client_id,
        &token,
        "GET",
        format!("Patient/{p}"),
        200,
        1,
        2_000,
        Some(p),
        app.purpose,
    );
    (token, t)
}

fn lab_session(g: &mut Gen, app: &Archetype, t0: Timestamp) {
    let p = patient_id(g);
    let (token, t) = lab_open(g, app, t0, &p);
    weighted_requests(g, app, &token, &p, t);
}

/// A clinician's round: an EHR launch on the first chart, then 3–8 charts under user scopes.
fn nurse_round(g: &mut Gen, app: &Archetype, t0: Timestamp) {
    let nurse = format!("Practitioner/n{}", g.rng.range(1, 60));
    let (lo, hi) = app.requests_per_session;
    let charts = g.rng.range(lo, hi);
    let patients: Vec<String> = (0..charts).map(|_| patient_id(g)).collect();
    let Some(launch) = patients.first() else {
        return;
    };
    let who = Holder {
        patient: Some(launch.as_str()),
        user: Some(nurse.as_str()),
    };
    let token = grant(g, t0, app, app.scopes, who);
    let mut t = t0;
    for q in &patients {
        for kind in app.kinds {
            t = step(g, t);
            request(g, t, app, &token, kind, Some(q.as_str()));
        }
    }
}

/// A telehealth call: the on-call clinician reviews the patient's vitals and problems.
fn triage_call(g: &mut Gen, app: &Archetype, t0: Timestamp) {
    let p = patient_id(g);
    let clinician = format!("Practitioner/t{}", g.rng.range(1, 12));
    let who = Holder {
        patient: Some(p.as_str()),
        user: Some(clinician.as_str()),
    };
    let token = grant(g, t0, app, app.scopes, who);
    weighted_requests(g, app, &token, &p, t0);
}

/// Now and then one call in the small hours, always on Wednesdays so every week (the learning
/// weeks included) has some: normal for a telehealth service.
fn small_hours_call(g: &mut Gen, app: &Archetype, day: i64) {
    if day % 7 == 2 || g.rng.unit() < SMALL_HOURS_CALL {
        let hour = g.rng.range(3, 4) as i64;
        let t0 = after(g.at(day, hour), g.rng.range(0, 3_300) as i64);
        triage_call(g, app, t0);
    }
}

/// Slot searches, then a booking (POST, 201), a rescheduling (read, then PUT), or neither.
fn booking(g: &mut Gen, app: &Archetype, t0: Timestamp) {
    let p = patient_id(g);
    let user = format!("Patient/{p}");
    let who = Holder {
        patient: Some(p.as_str()),
        user: Some(user.as_str()),
    };
    let token = grant(g, t0, app, app.scopes, who);
    let mut t = step(g, t0);
    let write = |g: &mut Gen, t: Timestamp, method: &str, url: String, status: u16| {
        g.access(
            t,
            app.client_id,
            &token,
            method,
            url,
            status,
            1,
            900,
            Some(p.as_str()),
            app.purpose,
        );
    };
    g.access(
        t,
        app.client_id,
        &token,
        "GET",
        format!("Patient/{p}"),
        200,
        1,
        2_000,
        Some(p.as_str()),
        app.purpose,
    );
    t = weighted_requests(g, app, &token, &p, t);
    let choice = g.rng.unit();
    let n = g.rng.range(1, 300);
    if choice < 0.45 {
        t = step(g, t);
        write(g, t, "POST", "Appointment".into(), 201);
    } else if choice < 0.6 {
        t = step(g, t);
        write(g, t, "GET", format!("Appointment/a{n}"), 200);
        t = step(g, t);
        write(g, t, "PUT", format!("Appointment/a{n}"), 200);
    }
}

/// One of a `mobile-health` patient's two devices, each with its own grant and refresh chain.
struct Device {
    patient: String,
    user: String,
    scopes: &'static str,
    /// Device A's grant also covers Conditions.
    conditions: bool,
    granted: Timestamp,
    /// The access token in hand and when it lapses (None once the user signed out).
    token: Option<(Text, Timestamp)>,
}

impl Device {
    fn holder(&self) -> Holder<'_> {
        Holder {
            patient: Some(self.patient.as_str()),
            user: Some(self.user.as_str()),
        }
    }
}

/// Every pool patient signs in on device A and device B on days 0–2 (and uses it at once).
fn enrol(g: &mut Gen, app: &Archetype, days: i64) -> Vec<Device> {
    let mut devices = Vec::new();
    if days <= 0 {
        return devices;
    }
    let last = (days - 1).clamp(0, 2) as u64;
    for i in 0..MOBILE_PATIENTS {
        let patient = format!("pat-{:05}", 17_000 + i * 37);
        for (scopes, conditions) in [(app.scopes, true), (DEVICE_B_SCOPES, false)] {
            let day = g.rng.range(0, last) as i64;
            let hour = g.rng.range(7, 21) as i64;
            let t = after(g.at(day, hour), g.rng.range(0, 3_300) as i64);
            let mut device = Device {
                user: format!("Patient/{patient}"),
                patient: patient.clone(),
                scopes,
                conditions,
                granted: t,
                token: None,
            };
            let token = sign_in(g, app, &mut device, t);
            mobile_reads(g, app, &device, &token, t);
            devices.push(device);
        }
    }
    devices
}

fn sign_in(g: &mut Gen, app: &Archetype, device: &mut Device, t: Timestamp) -> Text {
    let token = grant(g, t, app, device.scopes, device.holder());
    device.token = Some((token.clone(), after(t, app.token_lifetime)));
    token
}

/// Reads within the device's own grant; returns the last one's time.
fn mobile_reads(
    g: &mut Gen,
    app: &Archetype,
    device: &Device,
    token: &Text,
    t0: Timestamp,
) -> Timestamp {
    let (lo, hi) = app.requests_per_session;
    let conditions = device.conditions;
    let mut t = t0;
    for _ in 0..g.rng.range(lo, hi) {
        t = step(g, t);
        let kind = pick_where(g, app.kinds, |k| {
            conditions || !k.url.starts_with("Condition")
        });
        if let Some(kind) = kind {
            request(g, t, app, token, kind, Some(device.patient.as_str()));
        }
    }
    t
}

/// A session on a random device: reuse its live token, refresh a lapsing one (with that
/// device's scopes), or sign in again after a sign-out.
fn mobile_session(g: &mut Gen, app: &Archetype, t0: Timestamp, devices: &mut [Device]) {
    if devices.is_empty() {
        return;
    }
    let i = g.rng.range(0, devices.len() as u64 - 1) as usize;
    let Some(device) = devices.get_mut(i) else {
        return;
    };
    if t0 < device.granted {
        return;
    }
    let token = match device.token.clone() {
        Some((token, lapses)) if lapses.0 - t0.0 > 120 * MICROS_PER_SECOND => token,
        Some(_) => {
            let token = refresh(g, t0, app, device.scopes, device.holder());
            device.token = Some((token.clone(), after(t0, app.token_lifetime)));
            token
        }
        None => sign_in(g, app, device, t0),
    };
    let t = mobile_reads(g, app, device, &token, t0);
    if g.rng.unit() < SIGN_OUT {
        revoke(g, after(t, 5), app, &token, device.holder());
        device.token = None;
    }
}

/// The labelled anomalies, in time order; each only when its day is simulated.
fn anomalies(g: &mut Gen, days: i64, devices: &[Device]) -> Vec<Label> {
    [
        nurse_drip_label(g, days),
        granular_violation(g, days),
        revoked_token_use(g, days, devices),
        cross_patient_reads(g, days),
        lab_token_outlier(g, days),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Days 15–17 — `nurse-station` serves 1.4 times its usual requests and resources (the extra
/// sessions are played by `daily`).
fn nurse_drip_label(g: &Gen, days: i64) -> Option<Label> {
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
fn granular_violation(g: &mut Gen, days: i64) -> Option<Label> {
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
fn revoked_token_use(g: &mut Gen, days: i64, devices: &[Device]) -> Option<Label> {
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
fn cross_patient_reads(g: &mut Gen, days: i64) -> Option<Label> {
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
    let n = g.rng.range(40, 400);
    g.access(
        t,
        app.client_id,
        &token,
        "GET",
        format!("Patient/{p}/$everything"),
        200,
        n,
        n * 1_400,
        Some(p),
        app.purpose,
    );
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
fn lab_token_outlier(g: &mut Gen, days: i64) -> Option<Label> {
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

        assert_eq!(check_labels(&a, 28), 5);
        for days in [9, 16, 19] {
            check_labels(&simulate(&SimConfig { seed: 5, days }), days);
        }
    }
}
