//! The adversarial apps' sessions: typed Bulk exports, `$everything`, lab views, chart rounds,
//! triage calls and bookings.

use super::*;

/// A backend asks for a fresh 300 s token once it has used four minutes of the last one.
pub(super) fn renew(
    g: &mut Gen,
    app: &Archetype,
    t: Timestamp,
    token: &mut Text,
    issued: &mut Timestamp,
) {
    if t.0 - issued.0 >= 240 * MICROS_PER_SECOND {
        *token = grant(g, t, app, app.scopes, NOBODY);
        *issued = t;
    }
}

/// The nightly cohort export: read the Group, kick off (GET with `_type`, some nights POST),
/// poll until done (202s, then 200), download one file per type from the file server.
pub(super) fn cohort_export(g: &mut Gen, app: &Archetype, t0: Timestamp) {
    cohort_export_of(g, app, t0, 1);
}

/// The cohort export with files `scale` times their usual size (1: the nightly export).
pub(super) fn cohort_export_of(g: &mut Gen, app: &Archetype, t0: Timestamp, scale: u64) {
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
        let n = g.rng.range(lo, hi) * scale;
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
pub(super) fn chart_summary(g: &mut Gen, app: &Archetype, t0: Timestamp) {
    chart_summary_as(g, app, t0, None);
}

/// `chart_summary` under the account `account` when given (the random one is still drawn, so
/// the stream stays as it was).
pub(super) fn chart_summary_as(g: &mut Gen, app: &Archetype, t0: Timestamp, account: Option<&str>) {
    let p = patient_id(g);
    let drawn = format!("Practitioner/c{}", g.rng.range(1, 80));
    let user = account.map_or(drawn, str::to_string);
    let who = Holder {
        patient: Some(p.as_str()),
        user: Some(user.as_str()),
    };
    let token = grant(g, t0, app, app.scopes, who);
    let t = step(g, t0);
    everything(g, app, &token, &p, t);
    weighted_requests(g, app, &token, &p, t);
}

/// Opens a lab viewer session for a patient: the demographics, then lab searches.
pub(super) fn lab_open(g: &mut Gen, app: &Archetype, t0: Timestamp, p: &str) -> (Text, Timestamp) {
    let user = format!("Patient/{p}");
    let who = Holder {
        patient: Some(p),
        user: Some(user.as_str()),
    };
    let token = grant(g, t0, app, app.scopes, who);
    let t = step(g, t0);
    read_patient(g, app, &token, p, t);
    (token, t)
}

pub(super) fn lab_session(g: &mut Gen, app: &Archetype, t0: Timestamp) {
    let p = patient_id(g);
    let (token, t) = lab_open(g, app, t0, &p);
    weighted_requests(g, app, &token, &p, t);
}

/// A clinician's round: an EHR launch on the first chart, then 3–8 charts under user scopes.
pub(super) fn nurse_round(g: &mut Gen, app: &Archetype, t0: Timestamp) {
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
pub(super) fn triage_call(g: &mut Gen, app: &Archetype, t0: Timestamp) {
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
pub(super) fn small_hours_call(g: &mut Gen, app: &Archetype, day: i64) {
    if day % 7 == 2 || g.rng.unit() < SMALL_HOURS_CALL {
        let hour = g.rng.range(3, 4) as i64;
        let t0 = after(g.at(day, hour), g.rng.range(0, 3_300) as i64);
        triage_call(g, app, t0);
    }
}

/// Slot searches, then a booking (POST, 201), a rescheduling (read, then PUT), or neither.
pub(super) fn booking(g: &mut Gen, app: &Archetype, t0: Timestamp) {
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
    read_patient(g, app, &token, &p, t);
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
