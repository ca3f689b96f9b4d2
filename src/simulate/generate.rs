//! The seeded generator: normal behaviour for every archetype, benign changes that must stay
//! quiet, and injected anomalies with labels saying which app, category, rule and window.

use serde::Serialize;

use super::adversary;
use super::apps::{Archetype, ADVERSARY_ARCHETYPES, ARCHETYPES};
use super::rng::Rng;
use crate::alert::Category;
use crate::event::{
    AccessEvent, Common, Event, Text, Timestamp, TokenAction, TokenEvent, MICROS_PER_SECOND,
};
use crate::smart::request::Method;

/// Day 0 is Monday 2024-03-04 (UTC).
pub const START: &str = "2024-03-04T00:00:00Z";
const HOUR: i64 = 3600 * MICROS_PER_SECOND;
/// First day of the injected slow drip (Monday of week 4).
const DRIP_FROM: i64 = 21;
const DAY: i64 = 24 * HOUR;

#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    /// Days to simulate (anomalies start in week 3, so at least 28 covers them all).
    pub days: i64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig { seed: 1, days: 28 }
    }
}

/// An injected anomaly: what a detector should report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Label {
    pub client_id: String,
    pub category: Category,
    /// The rule expected to catch it (others of the same category count as found too).
    pub rule: &'static str,
    pub start: Timestamp,
    pub end: Timestamp,
    pub description: &'static str,
}

/// A change that is normal and must not raise medium or above.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BenignChange {
    pub client_id: String,
    pub start: Timestamp,
    pub end: Timestamp,
    pub description: &'static str,
}

pub struct Simulation {
    /// In event-time order.
    pub events: Vec<Event>,
    pub labels: Vec<Label>,
    pub benign: Vec<BenignChange>,
    pub registry_toml: String,
}

/// The generator's state; `adversary.rs` plays its apps through it with its own stream.
pub(super) struct Gen {
    pub(super) rng: Rng,
    start: Timestamp,
    events: Vec<(Timestamp, u64, Event)>,
    seq: u64,
    /// The last token number handed out (ids are `tok-NNNNNNN`).
    pub(super) tokens: u64,
}

pub(super) fn common(time: Timestamp, client: &str) -> Common {
    Common {
        time,
        client_id: client.into(),
        user: None,
        source_ip: None,
        user_agent: None,
    }
}

impl Gen {
    pub(super) fn at(&self, day: i64, hour: i64) -> Timestamp {
        Timestamp(self.start.0 + day * DAY + hour * HOUR)
    }

    pub(super) fn push(&mut self, event: Event) {
        self.seq += 1;
        self.events.push((event.time(), self.seq, event));
    }

    fn token(
        &mut self,
        t: Timestamp,
        client: &str,
        grant: &str,
        scopes: &str,
        patient: Option<&str>,
        lifetime: i64,
    ) -> Text {
        self.tokens += 1;
        let id: Text = format!("tok-{:07}", self.tokens).as_str().into();
        let mut c = common(t, client);
        if patient.is_some() {
            c.user = Some(
                format!("Practitioner/u{}", self.rng.range(1, 40))
                    .as_str()
                    .into(),
            );
        }
        self.push(Event::Token(TokenEvent {
            common: c,
            event: TokenAction::Issued,
            token_id: Some(id.clone()),
            grant_type: Some(grant.into()),
            scope_requested: Some(scopes.into()),
            scope_granted: Some(scopes.into()),
            patient: patient.map(Text::from),
            expires_in: Some(lifetime),
        }));
        id
    }

    /// Sets the account of the token just issued to `user` when given; returns its account.
    fn set_last_token_user(&mut self, user: Option<Text>) -> Option<Text> {
        let Some((_, _, Event::Token(token))) = self.events.last_mut() else {
            return user;
        };
        if let Some(user) = user {
            token.common.user = Some(user);
        }
        token.common.user.clone()
    }

    /// A refresh of the session with the given launch patient (same user as the grant).
    fn refresh(&mut self, t: Timestamp, client: &str, scopes: &str, patient: Option<&str>) {
        self.tokens += 1;
        let id: Text = format!("tok-{:07}", self.tokens).as_str().into();
        let user = self.events.iter().rev().find_map(|(_, _, e)| match e {
            Event::Token(tok)
                if tok.common.client_id == client && tok.patient.as_deref() == patient =>
            {
                tok.common.user.clone()
            }
            _ => None,
        });
        let mut c = common(t, client);
        c.user = user;
        self.push(Event::Token(TokenEvent {
            common: c,
            event: TokenAction::Refreshed,
            token_id: Some(id),
            grant_type: Some("refresh_token".into()),
            scope_requested: None,
            scope_granted: Some(scopes.into()),
            patient: patient.map(Text::from),
            expires_in: Some(3600),
        }));
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn access(
        &mut self,
        t: Timestamp,
        client: &str,
        token: &Text,
        method: &str,
        url: String,
        status: u16,
        resources: u64,
        bytes: u64,
        patient: Option<&str>,
        purpose: &str,
    ) {
        let method: Method = method.parse().unwrap_or(Method::Get);
        self.push(Event::Access(AccessEvent {
            common: common(t, client),
            method,
            url,
            status,
            token_id: Some(token.clone()),
            resources_returned: Some(resources),
            bytes: Some(bytes),
            patient: patient.map(Text::from),
            patient_count: patient.map(|_| 1),
            purpose_of_use: Some(purpose.into()),
        }));
    }

    /// One normal session of `app` starting at `t0`.
    /// A well-behaved client gets a new token two minutes before the old one lapses.
    fn renew_if_lapsing(
        &mut self,
        app: &Archetype,
        t: Timestamp,
        scopes: &str,
        patient: Option<&str>,
        token: &mut Text,
        expires: &mut i64,
    ) {
        if t.0 + 2 * 60 * MICROS_PER_SECOND > *expires {
            *token = self.token(
                t,
                app.client_id,
                app.grant_type,
                scopes,
                patient,
                app.token_lifetime,
            );
            *expires = t.0 + app.token_lifetime * MICROS_PER_SECOND;
        }
    }

    fn session(&mut self, app: &Archetype, t0: Timestamp, scopes: &str, request_factor: f64) {
        let patient = app
            .patient_context
            .then(|| format!("pat-{:05}", self.rng.range(1, 20_000)));
        let mut token = self.token(
            t0,
            app.client_id,
            app.grant_type,
            scopes,
            patient.as_deref(),
            app.token_lifetime,
        );
        let mut expires = t0.0 + app.token_lifetime * MICROS_PER_SECOND;
        let (lo, hi) = app.requests_per_session;
        let n = ((self.rng.range(lo, hi) as f64) * request_factor).round() as u64;
        let total_weight: u32 = app.kinds.iter().map(|k| k.weight).sum();
        let mut t = t0;
        for _ in 0..n {
            t = Timestamp(t.0 + self.rng.range(1, 20) as i64 * MICROS_PER_SECOND);
            self.renew_if_lapsing(app, t, scopes, patient.as_deref(), &mut token, &mut expires);
            let mut pick = self.rng.range(0, u64::from(total_weight.max(1)) - 1) as u32;
            let Some(kind) = app.kinds.iter().find(|k| {
                if pick < k.weight {
                    true
                } else {
                    pick -= k.weight;
                    false
                }
            }) else {
                continue;
            };
            let url = kind
                .url
                .replace("{p}", patient.as_deref().unwrap_or(""))
                .replace("{n}", &self.rng.range(1, 300).to_string());
            let resources = self.rng.range(kind.resources.0, kind.resources.1);
            let status = if self.rng.unit() < 0.01 {
                404
            } else if kind.method == "POST" {
                201
            } else {
                200
            };
            self.access(
                t,
                app.client_id,
                &token,
                kind.method,
                url.clone(),
                status,
                resources,
                resources * kind.bytes_per_resource,
                patient.as_deref(),
                app.purpose,
            );
            if url.contains("_count=") && app.pages_per_session.1 > 0 {
                let pages = self
                    .rng
                    .range(app.pages_per_session.0, app.pages_per_session.1);
                for page in 0..pages {
                    t = Timestamp(t.0 + 2 * MICROS_PER_SECOND);
                    self.renew_if_lapsing(
                        app,
                        t,
                        scopes,
                        patient.as_deref(),
                        &mut token,
                        &mut expires,
                    );
                    let next = format!("{url}&ct=c{page}x{}", self.rng.range(1, 1 << 30));
                    self.access(
                        t,
                        app.client_id,
                        &token,
                        "GET",
                        next,
                        200,
                        50,
                        50 * kind.bytes_per_resource,
                        None,
                        app.purpose,
                    );
                }
            }
        }
    }

    /// The nightly export: kick-off, status polls, file downloads.
    fn bulk_export(&mut self, client: &str, t0: Timestamp, scopes: &str, purpose: &str) {
        let token = self.token(t0, client, "client_credentials", scopes, None, 300);
        let job = self.rng.range(1, 1 << 40);
        let mut t = Timestamp(t0.0 + 2 * MICROS_PER_SECOND);
        self.access(
            t,
            client,
            &token,
            "POST",
            "Patient/$export".into(),
            202,
            0,
            0,
            None,
            purpose,
        );
        for i in 0..5 {
            t = Timestamp(t.0 + 30 * MICROS_PER_SECOND);
            let status = if i < 4 { 202 } else { 200 };
            self.access(
                t,
                client,
                &token,
                "GET",
                format!("$export-poll-status?_jobId={job:x}"),
                status,
                0,
                300,
                None,
                purpose,
            );
        }
        for ty in ["Patient", "Observation", "Condition", "Encounter"] {
            t = Timestamp(t.0 + 20 * MICROS_PER_SECOND);
            let n = self.rng.range(20_000, 60_000);
            self.access(
                t,
                client,
                &token,
                "GET",
                format!("https://files.example.org/fhir/bulkfiles/{job:x}.{ty}.ndjson"),
                200,
                n,
                n * 900,
                None,
                purpose,
            );
        }
    }
}

/// Runs the simulation.
pub fn simulate(config: &SimConfig) -> Simulation {
    let start = Timestamp::parse_rfc3339(START).unwrap_or_default();
    let mut g = Gen {
        rng: Rng::new(config.seed),
        start,
        events: Vec::new(),
        seq: 0,
        tokens: 0,
    };
    let mut benign = Vec::new();
    let holiday = 16; // Wednesday of week 3
    let respelled_from = 18;
    benign.push(BenignChange {
        client_id: "ehr-charts".into(),
        start: g.at(holiday, 0),
        end: g.at(holiday + 1, 0),
        description: "holiday: no clinician activity on a weekday",
    });
    benign.push(BenignChange {
        client_id: "ehr-charts".into(),
        start: g.at(respelled_from, 0),
        end: g.at(config.days, 0),
        description:
            "the EHR starts granting the same scopes in SMART v2 spelling (.rs instead of .read)",
    });
    benign.push(BenignChange {
        client_id: "sched-sync".into(),
        start: g.at(0, 0),
        end: g.at(config.days, 0),
        description: "steady growth of 3 % a day in scheduling traffic",
    });
    let [(night, hour), (next_night, next_hour)] = adversary::ON_CALL_NIGHTS;
    if next_night < config.days {
        benign.push(BenignChange {
            client_id: "chart-summary".into(),
            start: g.at(night, hour),
            end: g.at(next_night, next_hour + 1),
            description:
                "the clinician on call opens ten charts at night, two nights running, a different clinician each night (a rota)",
        });
    }

    for day in 0..config.days {
        let weekend = day % 7 >= 5;
        for app in ARCHETYPES {
            if app.client_id == "ehr-charts" && day == holiday {
                continue;
            }
            let scopes = if app.client_id == "ehr-charts" && day >= respelled_from {
                "launch openid fhirUser patient/Observation.rs patient/Condition.rs patient/Patient.rs"
            } else {
                app.scopes
            };
            let factor = if app.client_id == "sched-sync" {
                1.03f64.powi(day as i32)
            } else {
                1.0
            };
            // Injected slow drip: the payer app pulls 3.5× its usual volume for four days.
            let drip = if app.client_id == "payer-link" && (DRIP_FROM..DRIP_FROM + 4).contains(&day)
            {
                3.5
            } else {
                1.0
            };
            for hour in 0..24 {
                let mean = drip
                    * app.hourly_sessions[hour as usize]
                    * if weekend { app.weekend_factor } else { 1.0 };
                if mean <= 0.0 {
                    continue;
                }
                let sessions = if app.client_id == "bulk-warehouse"
                    || app.client_id == "sparse-directory"
                    || app.client_id == "sched-sync"
                {
                    1
                } else {
                    g.rng.poisson(mean)
                };
                for _ in 0..sessions {
                    let t0 = Timestamp(
                        g.at(day, hour).0 + g.rng.range(0, 3_300) as i64 * MICROS_PER_SECOND,
                    );
                    if app.client_id == "bulk-warehouse" {
                        g.bulk_export(app.client_id, t0, app.scopes, app.purpose);
                    } else {
                        g.session(app, t0, scopes, factor);
                    }
                }
            }
        }
    }

    // Background that no rule should weigh heavily, from a separate random stream so the rest
    // of the data (and every injected anomaly) stays exactly as it was.
    let main_rng = std::mem::replace(&mut g.rng, Rng::new(config.seed ^ 0x5EED_DE41));
    background(&mut g, config.days);
    g.rng = main_rng;
    // Legitimate traffic that looks anomalous, and a few anomalies of its own: again from its
    // own stream (and token numbers), so `inject` below generates exactly what it did before.
    let adversarial = adversary::adversary(&mut g, config.seed, config.days);
    let mut labels = inject(&mut g, config.days);
    labels.extend(adversarial);
    g.events.sort_by_key(|(t, seq, _)| (*t, *seq));
    Simulation {
        events: g.events.into_iter().map(|(_, _, e)| e).collect(),
        labels,
        benign,
        registry_toml: registry_toml(),
    }
}

/// Consent the user declined (denied authorization requests) for the interactive apps, and a
/// new app (`trial-reader`, not in the registry) that appears in the last four days.
fn background(g: &mut Gen, days: i64) {
    for day in 0..days {
        for client in ["patient-portal", "ehr-charts"] {
            if g.rng.unit() < 0.3 {
                let t = Timestamp(
                    g.at(day, 9).0 + g.rng.range(0, 10 * 3600) as i64 * MICROS_PER_SECOND,
                );
                g.push(Event::Token(TokenEvent {
                    common: common(t, client),
                    event: TokenAction::Denied,
                    token_id: None,
                    grant_type: Some("authorization_code".into()),
                    scope_requested: Some(app(client).scopes.into()),
                    scope_granted: None,
                    patient: None,
                    expires_in: None,
                }));
            }
        }
    }
    for day in days.saturating_sub(4)..days {
        for hour in [10, 14] {
            let t0 = Timestamp(g.at(day, hour).0 + g.rng.range(0, 3000) as i64 * MICROS_PER_SECOND);
            let patient = format!("pat-{:05}", g.rng.range(1, 20_000));
            let token = g.token(
                t0,
                TRIAL_APP,
                "authorization_code",
                "launch/patient openid fhirUser patient/Observation.rs",
                Some(&patient),
                3600,
            );
            for i in 0..3 {
                g.access(
                    Timestamp(t0.0 + (i + 1) * 20 * MICROS_PER_SECOND),
                    TRIAL_APP,
                    &token,
                    "GET",
                    format!("Observation?patient={patient}&category=vital-signs"),
                    200,
                    12,
                    14_400,
                    Some(&patient),
                    "TREAT",
                );
            }
        }
    }
}

/// The app that appears late in the simulated period (unregistered).
pub const TRIAL_APP: &str = "trial-reader";

fn app(id: &str) -> &'static Archetype {
    ARCHETYPES
        .iter()
        .find(|a| a.client_id == id)
        .unwrap_or(&ARCHETYPES[0])
}

/// Injects every anomaly whose day is inside the simulated range; returns their labels.
fn inject(g: &mut Gen, days: i64) -> Vec<Label> {
    let mut labels = Vec::new();
    let mut label = |g: &Gen, client: &str, category, rule, day, hour, description| {
        if day < days {
            labels.push(Label {
                client_id: client.to_string(),
                category,
                rule,
                start: g.at(day, hour),
                end: g.at(day, hour + 1),
                description,
            });
        }
    };
    use Category::*;

    // Day 15 20:00 — the patient portal is granted a wildcard.
    let (d, h) = (15, 20);
    if d < days {
        let portal = app("patient-portal");
        let scopes = format!("{} patient/*.rs", portal.scopes);
        g.session(
            portal,
            Timestamp(g.at(d, h).0 + 600 * MICROS_PER_SECOND),
            &scopes,
            1.0,
        );
    }
    label(
        g,
        "patient-portal",
        ScopeCreep,
        "wildcard_broadening",
        d,
        h,
        "patient portal granted patient/*.rs",
    );

    // Day 16 11:00 — the analytics app runs a Bulk Data export it never ran before.
    let (d, h) = (16, 11);
    if d < days {
        g.bulk_export(
            "pop-analytics",
            Timestamp(g.at(d, h).0 + 900 * MICROS_PER_SECOND),
            app("pop-analytics").scopes,
            "HOPERAT",
        );
    }
    label(
        g,
        "pop-analytics",
        PurposeDrift,
        "bulk_export_new",
        d,
        h,
        "analytics app starts a Patient/$export",
    );
    // No enforcement_gap here: Bulk Data "SHALL limit the data returned to only those FHIR
    // resources for which the client is authorized", so user/ per-type read scopes cover the
    // kick-off (the first wave labelled it a gap). Its downloads (over 10 times what the app's
    // tokens normally take) are how much this new export reached: no second incident (one
    // act, one incident), and export files are the export's volume, not the token's.

    // Day 17 14:00 — the charting app gets user-level access and searches the population.
    let (d, h) = (17, 14);
    if d < days {
        let t0 = Timestamp(g.at(d, h).0 + 300 * MICROS_PER_SECOND);
        let tok = g.token(
            t0,
            "ehr-charts",
            "authorization_code",
            "launch openid fhirUser user/Observation.read patient/Condition.read",
            None,
            3600,
        );
        for i in 0..30 {
            let t = Timestamp(t0.0 + (i + 1) * 10 * MICROS_PER_SECOND);
            g.access(
                t,
                "ehr-charts",
                &tok,
                "GET",
                "Observation?code=http://loinc.org|2345-7&_count=200".into(),
                200,
                200,
                220_000,
                None,
                "TREAT",
            );
        }
    }
    label(
        g,
        "ehr-charts",
        ScopeCreep,
        "context_escalation",
        d,
        h,
        "charting app granted user/Observation.read",
    );
    label(
        g,
        "ehr-charts",
        PurposeDrift,
        "population_access_new",
        d,
        h,
        "charting app searches Observations of all patients",
    );
    // The search token then retrieves 6 000 Observations, over 10 times a usual token: how much
    // the new population search reached, evidence in its incident (one act, one incident).

    // Day 18 10:00 — the payer app uses patient data for marketing.
    let (d, h) = (18, 10);
    if d < days {
        let payer = app("payer-link");
        let t0 = Timestamp(g.at(d, h).0 + 1200 * MICROS_PER_SECOND);
        let tok = g.token(
            t0,
            "payer-link",
            "authorization_code",
            payer.scopes,
            Some("pat-00042"),
            3600,
        );
        for i in 0..4 {
            let t = Timestamp(t0.0 + (i + 1) * 15 * MICROS_PER_SECOND);
            g.access(
                t,
                "payer-link",
                &tok,
                "GET",
                "ExplanationOfBenefit?patient=pat-00042".into(),
                200,
                12,
                48_000,
                Some("pat-00042"),
                "HMARKT",
            );
        }
    }
    label(
        g,
        "payer-link",
        PurposeDrift,
        "new_purpose",
        d,
        h,
        "payer app accesses claims for marketing (HMARKT)",
    );

    // Day 19 03:00 — the scheduling backend is granted Patient access outside its registration.
    let (d, h) = (19, 3);
    if d < days {
        let sched = app("sched-sync");
        let scopes = format!("{} system/Patient.rs", sched.scopes);
        g.session(
            sched,
            Timestamp(g.at(d, h).0 + 1800 * MICROS_PER_SECOND),
            &scopes,
            1.0,
        );
    }
    label(
        g,
        "sched-sync",
        ScopeCreep,
        "registry_scope_violation",
        d,
        h,
        "scheduling backend granted system/Patient.rs",
    );

    // Day 20 10:00 — the charting app starts asking for offline access.
    let (d, h) = (20, 10);
    if d < days {
        let t0 = Timestamp(g.at(d, h).0 + 100 * MICROS_PER_SECOND);
        let tok = g.token(t0, "ehr-charts", "authorization_code", "launch openid fhirUser offline_access patient/Observation.rs patient/Condition.rs patient/Patient.rs", Some("pat-00077"), 3600);
        g.access(
            Timestamp(t0.0 + 5 * MICROS_PER_SECOND),
            "ehr-charts",
            &tok,
            "GET",
            "Observation?patient=pat-00077&category=laboratory".into(),
            200,
            20,
            22_000,
            Some("pat-00077"),
            "TREAT",
        );
    }
    label(
        g,
        "ehr-charts",
        ScopeCreep,
        "offline_access_new",
        d,
        h,
        "charting app obtains offline_access",
    );

    // Day 21 13:00 — one scheduling token pulls 2,500 requests.
    let (d, h) = (21, 13);
    if d < days {
        let sched = app("sched-sync");
        let t0 = Timestamp(g.at(d, h).0 + 60 * MICROS_PER_SECOND);
        let tok = g.token(
            t0,
            "sched-sync",
            "client_credentials",
            sched.scopes,
            None,
            3600,
        );
        for i in 0..2500 {
            let t = Timestamp(t0.0 + (i + 1) * 1_000_000);
            g.access(
                t,
                "sched-sync",
                &tok,
                "GET",
                format!("Slot?schedule=Schedule/s{}&status=free", i % 300),
                200,
                30,
                18_000,
                None,
                "HOPERAT",
            );
        }
    }
    label(
        g,
        "sched-sync",
        DataVolume,
        "token_outlier",
        d,
        h,
        "one scheduling token makes 2,500 requests in an hour",
    );

    // Day 22 19:00 — the portal is served DocumentReferences its token does not allow.
    let (d, h) = (22, 19);
    if d < days {
        let portal = app("patient-portal");
        let t0 = Timestamp(g.at(d, h).0 + 700 * MICROS_PER_SECOND);
        let tok = g.token(
            t0,
            "patient-portal",
            "authorization_code",
            portal.scopes,
            Some("pat-00123"),
            3600,
        );
        for i in 0..5 {
            let t = Timestamp(t0.0 + (i + 1) * 10 * MICROS_PER_SECOND);
            g.access(
                t,
                "patient-portal",
                &tok,
                "GET",
                "DocumentReference?patient=pat-00123".into(),
                200,
                3,
                300_000,
                Some("pat-00123"),
                "PATRQT",
            );
        }
    }
    label(
        g,
        "patient-portal",
        ScopeCreep,
        "enforcement_gap",
        d,
        h,
        "portal served DocumentReference outside its token's scopes",
    );

    // Day 24 09:00 — the portal is served with a five-minute token seven minutes after it lapsed.
    let (d, h) = (24, 9);
    if d < days {
        let t0 = Timestamp(g.at(d, h).0 + 300 * MICROS_PER_SECOND);
        let tok = g.token(
            t0,
            "patient-portal",
            "authorization_code",
            app("patient-portal").scopes,
            Some("pat-00456"),
            300,
        );
        for i in 0..4 {
            let t = Timestamp(t0.0 + (720 + i * 15) * MICROS_PER_SECOND);
            g.access(
                t,
                "patient-portal",
                &tok,
                "GET",
                "Observation?patient=pat-00456&category=vital-signs&_count=50".into(),
                200,
                20,
                24_000,
                Some("pat-00456"),
                "PATRQT",
            );
        }
    }
    label(
        g,
        "patient-portal",
        ScopeCreep,
        "expired_token_use",
        d,
        h,
        "portal served with a token seven minutes past its expiry",
    );

    // Day 23 15:00 — one charting token reads 25 other patients.
    let (d, h) = (23, 15);
    if d < days {
        let t0 = Timestamp(g.at(d, h).0 + 400 * MICROS_PER_SECOND);
        let charts = app("ehr-charts");
        let tok = g.token(
            t0,
            "ehr-charts",
            "authorization_code",
            "launch openid fhirUser patient/Observation.rs patient/Condition.rs patient/Patient.rs",
            Some("pat-00500"),
            3600,
        );
        let _ = charts;
        for i in 0..25 {
            let t = Timestamp(t0.0 + (i + 1) * 8 * MICROS_PER_SECOND);
            let p = format!("pat-{:05}", 600 + i);
            g.access(
                t,
                "ehr-charts",
                &tok,
                "GET",
                format!("Observation?patient={p}&category=laboratory"),
                200,
                30,
                33_000,
                None,
                "TREAT",
            );
        }
    }
    label(
        g,
        "ehr-charts",
        PurposeDrift,
        "patient_fanout",
        d,
        h,
        "one patient-context token reads 25 other patients",
    );
    label(
        g,
        "ehr-charts",
        ScopeCreep,
        "enforcement_gap",
        d,
        h,
        "the other patients are outside the token's launch context",
    );

    // Day 24 03:00 — the portal's client id is used with client_credentials.
    let (d, h) = (24, 3);
    if d < days {
        let t0 = Timestamp(g.at(d, h).0 + 500 * MICROS_PER_SECOND);
        let tok = g.token(
            t0,
            "patient-portal",
            "client_credentials",
            "patient/Observation.rs",
            None,
            300,
        );
        g.access(
            Timestamp(t0.0 + 3 * MICROS_PER_SECOND),
            "patient-portal",
            &tok,
            "GET",
            "Observation?category=vital-signs".into(),
            200,
            50,
            60_000,
            None,
            "PATRQT",
        );
    }
    label(
        g,
        "patient-portal",
        PurposeDrift,
        "new_grant_type",
        d,
        h,
        "patient portal client used with client_credentials",
    );
    label(
        g,
        "patient-portal",
        ScopeCreep,
        "enforcement_gap",
        d,
        h,
        "a patient/ scope without a launch patient is served a population search",
    );

    // Day 25 10:00 — an analytics token sweeps 150 pages of 500.
    let (d, h) = (25, 10);
    if d < days {
        let analytics = app("pop-analytics");
        let t0 = Timestamp(g.at(d, h).0 + 200 * MICROS_PER_SECOND);
        let tok = g.token(
            t0,
            "pop-analytics",
            "authorization_code",
            analytics.scopes,
            None,
            3600,
        );
        for i in 0..150 {
            let t = Timestamp(t0.0 + (i + 1) * 4 * MICROS_PER_SECOND);
            let url = if i == 0 {
                "Observation?code=http://loinc.org|4548-4&_count=500".to_string()
            } else {
                format!("Observation?code=http://loinc.org|4548-4&_count=500&ct=sweep{i}")
            };
            g.access(
                t,
                "pop-analytics",
                &tok,
                "GET",
                url,
                200,
                500,
                500_000,
                None,
                "HOPERAT",
            );
        }
    }
    label(
        g,
        "pop-analytics",
        DataVolume,
        "paging_sweep",
        d,
        h,
        "one analytics token pages through 150 pages of 500",
    );

    // Day 24 16:00 — a charting token is refreshed into more than its original grant.
    let (d, h) = (24, 16);
    if d < days {
        let t0 = Timestamp(g.at(d, h).0 + 900 * MICROS_PER_SECOND);
        let original =
            "launch openid fhirUser patient/Observation.rs patient/Condition.rs patient/Patient.rs";
        g.token(
            t0,
            "ehr-charts",
            "authorization_code",
            original,
            Some("pat-00888"),
            3600,
        );
        let t1 = Timestamp(t0.0 + 1800 * MICROS_PER_SECOND);
        g.refresh(
            t1,
            "ehr-charts",
            &format!("{original} patient/MedicationRequest.rs"),
            Some("pat-00888"),
        );
    }
    label(
        g,
        "ehr-charts",
        ScopeCreep,
        "refresh_broadening",
        d,
        h,
        "a refresh grants MedicationRequest on top of the original grant",
    );
    label(
        g,
        "ehr-charts",
        PurposeDrift,
        "new_grant_type",
        d,
        h,
        "the charting app never refreshed a token before",
    );

    if DRIP_FROM < days {
        labels.push(Label {
            client_id: "payer-link".into(),
            category: DataVolume,
            rule: "slow_drip",
            start: g.at(DRIP_FROM, 0),
            end: g.at((DRIP_FROM + 4).min(days), 0),
            description: "payer app pulls 3.5 times its usual volume for four days",
        });
    }

    // Day 25 (Friday) — the payer app is granted clinical notes and spends the day reading them.
    let d = 25;
    if d < days {
        let payer = app("payer-link");
        let scopes = format!("{} patient/DocumentReference.rs", payer.scopes);
        for (i, hour) in [9, 11, 13, 15].into_iter().enumerate() {
            let t0 = Timestamp(g.at(d, hour).0 + 300 * MICROS_PER_SECOND);
            let patient = format!("pat-{:05}", 900 + i);
            let tok = g.token(
                t0,
                "payer-link",
                "authorization_code",
                &scopes,
                Some(&patient),
                3600,
            );
            for k in 0..20 {
                let t = Timestamp(t0.0 + (k + 1) * 20 * MICROS_PER_SECOND);
                g.access(
                    t,
                    "payer-link",
                    &tok,
                    "GET",
                    format!("DocumentReference?patient={patient}&category=clinical-note"),
                    200,
                    4,
                    400_000,
                    Some(&patient),
                    "HPAYMT",
                );
            }
        }
    }
    if d < days {
        labels.push(Label {
            client_id: "payer-link".into(),
            category: PurposeDrift,
            rule: "resource_mix_shift",
            start: g.at(d, 0),
            end: g.at(d + 1, 0),
            description: "payer app shifts its day to reading clinical notes (DocumentReference)",
        });
        labels.push(Label {
            client_id: "payer-link".into(),
            category: ScopeCreep,
            rule: "registry_scope_violation",
            start: g.at(d, 9),
            end: g.at(d, 16),
            description:
                "payer app granted patient/DocumentReference.rs (four times, 09:00 to 15:00)",
        });
    }

    // Days 25 and 26 (Friday and Saturday) 02:00 — the payer app syncs at night, when it is
    // normally silent, two nights running under one account: a habit, not one night session
    // (which is routine) nor a rota of accounts (`adversary::ON_CALL_NIGHTS`).
    // The first night's sync is small (20 requests of 5 claims); the second pulls 800 claims.
    let (d, h) = (26, 2);
    if d < days {
        // Both nights' syncs run under one account: the habit is that account's.
        let account = payer_night_sync(
            g,
            Timestamp(g.at(d - 1, h).0 + 600 * MICROS_PER_SECOND),
            (20, 5),
            None,
        );
        payer_night_sync(
            g,
            Timestamp(g.at(d, h).0 + 600 * MICROS_PER_SECOND),
            (40, 20),
            account,
        );
    }
    if d < days {
        labels.push(Label {
            client_id: "payer-link".into(),
            category: PurposeDrift,
            rule: "off_hours",
            start: g.at(d, h),
            end: g.at(d, h + 1),
            description:
                "payer app syncs at 02:00 a second night running under the same account (Friday, Saturday)",
        });
        labels.push(Label {
            client_id: "payer-link".into(),
            category: DataVolume,
            rule: "token_outlier",
            start: g.at(d, h),
            end: g.at(d, h + 1),
            description:
                "the night sync's one token retrieves 800 claims, over 10 times a usual token",
        });
    }

    labels
}

/// One payer-link token at `t0` reading `requests` pages of `claims` claims of one patient,
/// 15 s apart, under `account` when given (else the one drawn); returns the token's account.
fn payer_night_sync(
    g: &mut Gen,
    t0: Timestamp,
    (requests, claims): (i64, u64),
    account: Option<Text>,
) -> Option<Text> {
    let patient = "pat-00321";
    let scopes = app("payer-link").scopes;
    let tok = g.token(
        t0,
        "payer-link",
        "authorization_code",
        scopes,
        Some(patient),
        3600,
    );
    let user = g.set_last_token_user(account);
    for k in 0..requests {
        let t = Timestamp(t0.0 + (k + 1) * 15 * MICROS_PER_SECOND);
        let url = format!("ExplanationOfBenefit?patient={patient}&_count={claims}");
        let bytes = claims * 4_000;
        g.access(
            t,
            "payer-link",
            &tok,
            "GET",
            url,
            200,
            claims,
            bytes,
            Some(patient),
            "HPAYMT",
        );
    }
    user
}

fn registry_toml() -> String {
    let mut out = String::from("# App registry for the simulated apps (scopewatch simulate).\n");
    for a in ARCHETYPES.iter().chain(ADVERSARY_ARCHETYPES) {
        let modes: Vec<String> = a.modes.iter().map(|m| format!("\"{m}\"")).collect();
        out.push_str(&format!(
            "\n[[app]]\nclient_id = \"{}\"\nname = \"{}\"\npurpose = [\"{}\"]\nallowed_scopes = \"{}\"\nmodes = [{}]\n",
            a.client_id,
            a.name,
            a.purpose,
            a.allowed_scopes,
            modes.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_data() {
        let a = simulate(&SimConfig { seed: 3, days: 9 });
        let b = simulate(&SimConfig { seed: 3, days: 9 });
        assert_eq!(a.events, b.events);
        assert!(a.events.windows(2).all(|w| w[0].time() <= w[1].time()));
        let c = simulate(&SimConfig { seed: 4, days: 9 });
        assert_ne!(a.events, c.events);
        assert!(a.labels.is_empty(), "no anomalies before week 3");
        crate::registry::Registry::parse(&a.registry_toml).unwrap();
    }
}
