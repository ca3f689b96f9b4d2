//! The app archetypes the simulator plays, with their normal behaviour.

/// One kind of request an app makes; `{p}` is the session's patient, `{n}` a small number.
pub struct RequestKind {
    pub method: &'static str,
    pub url: &'static str,
    pub weight: u32,
    pub resources: (u64, u64),
    pub bytes_per_resource: u64,
}

pub struct Archetype {
    pub client_id: &'static str,
    pub name: &'static str,
    pub grant_type: &'static str,
    pub scopes: &'static str,
    /// Scopes the registry allows (may differ in spelling from `scopes`).
    pub allowed_scopes: &'static str,
    pub modes: &'static [&'static str],
    pub purpose: &'static str,
    /// Sessions have a launch patient.
    pub patient_context: bool,
    /// Mean sessions per active hour, by hour of day (0 = inactive).
    pub hourly_sessions: [f64; 24],
    pub weekend_factor: f64,
    pub requests_per_session: (u64, u64),
    pub token_lifetime: i64,
    pub kinds: &'static [RequestKind],
    /// Page follow-ups (Microsoft `ct=` style) after a search, per session.
    pub pages_per_session: (u64, u64),
}

const fn hours(from: usize, to: usize, mean: f64) -> [f64; 24] {
    let mut h = [0.0; 24];
    let mut i = from;
    while i < to {
        h[i] = mean;
        i += 1;
    }
    h
}

const fn evening_peak() -> [f64; 24] {
    let mut h = hours(7, 23, 1.5);
    h[18] = 4.0;
    h[19] = 5.0;
    h[20] = 4.0;
    h[21] = 3.0;
    h
}

pub const ARCHETYPES: &[Archetype] = &[
    Archetype {
        client_id: "patient-portal",
        name: "Patient portal (standalone patient launch)",
        grant_type: "authorization_code",
        scopes: "launch/patient openid fhirUser offline_access patient/Observation.rs patient/MedicationRequest.rs patient/Condition.rs patient/Patient.r",
        allowed_scopes: "launch/patient openid fhirUser offline_access patient/Observation.rs patient/MedicationRequest.rs patient/Condition.rs patient/Patient.r",
        modes: &["patient"],
        purpose: "PATRQT",
        patient_context: true,
        hourly_sessions: evening_peak(),
        weekend_factor: 0.8,
        requests_per_session: (3, 8),
        token_lifetime: 3600,
        kinds: &[
            RequestKind { method: "GET", url: "Patient/{p}", weight: 2, resources: (1, 1), bytes_per_resource: 2_000 },
            RequestKind { method: "GET", url: "Observation?patient={p}&category=vital-signs&_count=50", weight: 4, resources: (5, 50), bytes_per_resource: 1_200 },
            RequestKind { method: "GET", url: "MedicationRequest?patient={p}&status=active", weight: 2, resources: (1, 10), bytes_per_resource: 1_500 },
            RequestKind { method: "GET", url: "Condition?patient={p}", weight: 1, resources: (1, 8), bytes_per_resource: 1_300 },
        ],
        pages_per_session: (0, 0),
    },
    Archetype {
        client_id: "ehr-charts",
        name: "Clinician charting app (EHR launch, SMART v1 scopes)",
        grant_type: "authorization_code",
        scopes: "launch openid fhirUser patient/Observation.read patient/Condition.read patient/Patient.read",
        allowed_scopes: "launch openid fhirUser offline_access patient/Observation.rs patient/Condition.rs patient/Patient.rs",
        modes: &["patient"],
        purpose: "TREAT",
        patient_context: true,
        hourly_sessions: hours(8, 18, 6.0),
        weekend_factor: 0.0,
        requests_per_session: (4, 10),
        token_lifetime: 3600,
        kinds: &[
            RequestKind { method: "GET", url: "Patient/{p}", weight: 1, resources: (1, 1), bytes_per_resource: 2_000 },
            RequestKind { method: "GET", url: "Observation?patient={p}&category=laboratory&_count=100", weight: 4, resources: (10, 100), bytes_per_resource: 1_100 },
            RequestKind { method: "GET", url: "Condition?patient={p}&clinical-status=active", weight: 2, resources: (1, 12), bytes_per_resource: 1_300 },
        ],
        pages_per_session: (0, 0),
    },
    Archetype {
        client_id: "bulk-warehouse",
        name: "Nightly Bulk Data export to the warehouse (backend services)",
        grant_type: "client_credentials",
        scopes: "system/*.read",
        allowed_scopes: "system/*.rs",
        modes: &["system"],
        purpose: "HOPERAT",
        patient_context: false,
        hourly_sessions: {
            let mut h = [0.0; 24];
            h[2] = 1.0;
            h
        },
        weekend_factor: 1.0,
        requests_per_session: (0, 0),
        token_lifetime: 300,
        kinds: &[],
        pages_per_session: (0, 0),
    },
    Archetype {
        client_id: "sched-sync",
        name: "Scheduling sync (backend services)",
        grant_type: "client_credentials",
        scopes: "system/Appointment.cruds system/Slot.rs system/Schedule.rs",
        allowed_scopes: "system/Appointment.cruds system/Slot.rs system/Schedule.rs",
        modes: &["system"],
        purpose: "HOPERAT",
        patient_context: false,
        hourly_sessions: hours(0, 24, 1.0),
        weekend_factor: 1.0,
        requests_per_session: (8, 20),
        token_lifetime: 300,
        kinds: &[
            RequestKind { method: "GET", url: "Slot?schedule=Schedule/s{n}&status=free", weight: 5, resources: (0, 30), bytes_per_resource: 600 },
            RequestKind { method: "GET", url: "Schedule/s{n}", weight: 1, resources: (1, 1), bytes_per_resource: 700 },
            RequestKind { method: "PUT", url: "Appointment/a{n}", weight: 2, resources: (1, 1), bytes_per_resource: 900 },
            RequestKind { method: "POST", url: "Appointment", weight: 1, resources: (1, 1), bytes_per_resource: 900 },
        ],
        pages_per_session: (0, 0),
    },
    Archetype {
        client_id: "pop-analytics",
        name: "Population health analytics (user-level)",
        grant_type: "authorization_code",
        scopes: "openid fhirUser user/Observation.rs user/Patient.rs user/Encounter.rs",
        allowed_scopes: "openid fhirUser user/Observation.rs user/Patient.rs user/Encounter.rs",
        modes: &["user"],
        purpose: "HOPERAT",
        patient_context: false,
        hourly_sessions: hours(9, 17, 2.0),
        weekend_factor: 0.0,
        requests_per_session: (5, 15),
        token_lifetime: 3600,
        kinds: &[
            RequestKind { method: "GET", url: "Observation?code=http://loinc.org|4548-4&date=ge2024-01-01&_count=50", weight: 3, resources: (20, 50), bytes_per_resource: 1_000 },
            RequestKind { method: "GET", url: "Patient?birthdate=le1960-01-01&_count=50", weight: 1, resources: (20, 50), bytes_per_resource: 1_800 },
            RequestKind { method: "GET", url: "Encounter?date=ge2024-02-01&class=AMB&_count=50", weight: 1, resources: (20, 50), bytes_per_resource: 1_400 },
        ],
        pages_per_session: (0, 4),
    },
    Archetype {
        client_id: "payer-link",
        name: "Payer data exchange (patient-directed)",
        grant_type: "authorization_code",
        scopes: "launch/patient patient/Coverage.rs patient/ExplanationOfBenefit.rs patient/Patient.r",
        allowed_scopes: "launch/patient patient/Coverage.rs patient/ExplanationOfBenefit.rs patient/Patient.r",
        modes: &["patient"],
        purpose: "HPAYMT",
        patient_context: true,
        hourly_sessions: hours(9, 17, 2.0),
        weekend_factor: 0.2,
        requests_per_session: (2, 6),
        token_lifetime: 3600,
        kinds: &[
            RequestKind { method: "GET", url: "Coverage?patient={p}", weight: 2, resources: (1, 2), bytes_per_resource: 1_500 },
            RequestKind { method: "GET", url: "ExplanationOfBenefit?patient={p}&_count=20", weight: 3, resources: (1, 20), bytes_per_resource: 4_000 },
            RequestKind { method: "GET", url: "Patient/{p}", weight: 1, resources: (1, 1), bytes_per_resource: 2_000 },
        ],
        pages_per_session: (0, 0),
    },
    Archetype {
        client_id: "sparse-directory",
        name: "Provider directory lookups (sparse)",
        grant_type: "client_credentials",
        scopes: "system/Organization.rs system/Practitioner.rs",
        allowed_scopes: "system/Organization.rs system/Practitioner.rs",
        modes: &["system"],
        purpose: "HOPERAT",
        patient_context: false,
        hourly_sessions: {
            let mut h = [0.0; 24];
            h[6] = 1.0;
            h[13] = 1.0;
            h[21] = 1.0;
            h
        },
        weekend_factor: 1.0,
        requests_per_session: (1, 3),
        token_lifetime: 300,
        kinds: &[
            RequestKind { method: "GET", url: "Organization?name=clinic{n}", weight: 1, resources: (0, 3), bytes_per_resource: 800 },
            RequestKind { method: "GET", url: "Practitioner/pr{n}", weight: 1, resources: (1, 1), bytes_per_resource: 900 },
        ],
        pages_per_session: (0, 0),
    },
];

pub const WAREHOUSE_TYPED: &str = "warehouse-typed";
pub const CHART_SUMMARY: &str = "chart-summary";
pub const LAB_VIEWER: &str = "lab-viewer";
pub const MOBILE_HEALTH: &str = "mobile-health";
pub const NURSE_STATION: &str = "nurse-station";
pub const NIGHT_TRIAGE: &str = "night-triage";
pub const BOOKING_APP: &str = "booking-app";

/// The telehealth service is busiest from 20:00 to 02:00 (its single small-hours calls,
/// 03:00–04:59, are drawn separately: at most one a night).
const fn late_evening() -> [f64; 24] {
    let mut h = hours(20, 24, 2.0);
    h[0] = 1.5;
    h[1] = 1.0;
    h
}

/// Clinicians chart around the clock, most in the day shift.
const fn ward_shifts() -> [f64; 24] {
    let mut h = hours(0, 24, 1.0);
    let mut i = 7;
    while i < 19 {
        h[i] = 3.0;
        i += 1;
    }
    h
}

/// Patients open their health app from morning to late evening, most after dinner.
const fn app_evenings() -> [f64; 24] {
    let mut h = hours(6, 23, 1.0);
    h[19] = 2.5;
    h[20] = 2.5;
    h[21] = 2.0;
    h
}

/// Legitimate apps whose normal traffic looks most like an anomaly (played by `adversary.rs`,
/// each from day 0): typed Bulk Data exports, `$everything`, modifier searches, granular
/// scopes, two devices per patient, user-level chart rounds, night shifts and writes.
pub const ADVERSARY_ARCHETYPES: &[Archetype] = &[
    Archetype {
        client_id: WAREHOUSE_TYPED,
        name: "Nightly cohort export with per-type system scopes (backend services)",
        grant_type: "client_credentials",
        scopes: "system/Patient.rs system/Observation.rs system/Condition.rs system/Group.rs",
        allowed_scopes: "system/Patient.rs system/Observation.rs system/Condition.rs system/Group.rs",
        modes: &["system"],
        purpose: "HOPERAT",
        patient_context: false,
        hourly_sessions: {
            let mut h = [0.0; 24];
            h[1] = 1.0;
            h
        },
        weekend_factor: 1.0,
        requests_per_session: (0, 0),
        token_lifetime: 300,
        kinds: &[],
        pages_per_session: (0, 0),
    },
    Archetype {
        client_id: CHART_SUMMARY,
        name: "Chart summary (patient launch, $everything)",
        grant_type: "authorization_code",
        scopes: "launch/patient openid fhirUser patient/Patient.rs patient/Observation.rs patient/Condition.rs patient/MedicationRequest.rs patient/AllergyIntolerance.rs",
        allowed_scopes: "launch/patient openid fhirUser patient/Patient.rs patient/Observation.rs patient/Condition.rs patient/MedicationRequest.rs patient/AllergyIntolerance.rs",
        modes: &["patient"],
        purpose: "TREAT",
        patient_context: true,
        hourly_sessions: hours(8, 18, 3.0),
        weekend_factor: 0.2,
        // After the one `$everything` per session.
        requests_per_session: (1, 4),
        token_lifetime: 3600,
        kinds: &[
            RequestKind { method: "GET", url: "Observation?patient={p}&code:missing=false", weight: 3, resources: (5, 80), bytes_per_resource: 1_100 },
            RequestKind { method: "GET", url: "AllergyIntolerance?patient:missing=false", weight: 2, resources: (0, 6), bytes_per_resource: 900 },
            RequestKind { method: "GET", url: "Condition?patient={p}", weight: 1, resources: (1, 10), bytes_per_resource: 1_300 },
            RequestKind { method: "GET", url: "MedicationRequest?patient={p}&status=active", weight: 1, resources: (0, 10), bytes_per_resource: 1_500 },
        ],
        pages_per_session: (0, 0),
    },
    Archetype {
        client_id: LAB_VIEWER,
        name: "Lab results viewer (patient launch, granular category scope)",
        grant_type: "authorization_code",
        scopes: "launch/patient openid patient/Patient.r patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
        allowed_scopes: "launch/patient openid patient/Patient.r patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
        modes: &["patient"],
        purpose: "PATRQT",
        patient_context: true,
        hourly_sessions: hours(7, 22, 6.0),
        weekend_factor: 0.5,
        // After the `Patient/{p}` read.
        requests_per_session: (4, 10),
        // This server gives two-hour tokens.
        token_lifetime: 7200,
        kinds: &[
            RequestKind { method: "GET", url: "Observation?patient={p}&category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory&_count=50", weight: 7, resources: (10, 50), bytes_per_resource: 1_100 },
            RequestKind { method: "GET", url: "Observation?patient={p}&category=laboratory&_count=50", weight: 3, resources: (10, 50), bytes_per_resource: 1_100 },
        ],
        pages_per_session: (0, 0),
    },
    Archetype {
        client_id: MOBILE_HEALTH,
        name: "Mobile health app (patient, two devices each with its own grant)",
        grant_type: "authorization_code",
        // Device A's grant; device B holds a subset (see `adversary::DEVICE_B_SCOPES`).
        scopes: "launch/patient openid offline_access patient/Observation.rs patient/Patient.r patient/Condition.rs",
        allowed_scopes: "launch/patient openid offline_access patient/Observation.rs patient/Patient.r patient/Condition.rs",
        modes: &["patient"],
        purpose: "PATRQT",
        patient_context: true,
        hourly_sessions: app_evenings(),
        weekend_factor: 1.0,
        requests_per_session: (2, 6),
        token_lifetime: 3600,
        kinds: &[
            RequestKind { method: "GET", url: "Observation?patient={p}&category=vital-signs&_count=50", weight: 4, resources: (5, 50), bytes_per_resource: 1_200 },
            RequestKind { method: "GET", url: "Observation?patient={p}&code=http://loinc.org|8867-4&_sort=-date&_count=20", weight: 2, resources: (1, 20), bytes_per_resource: 900 },
            RequestKind { method: "GET", url: "Patient/{p}", weight: 1, resources: (1, 1), bytes_per_resource: 2_000 },
            // Device A only.
            RequestKind { method: "GET", url: "Condition?patient={p}", weight: 2, resources: (0, 8), bytes_per_resource: 1_300 },
        ],
        pages_per_session: (0, 0),
    },
    Archetype {
        client_id: NURSE_STATION,
        name: "Nurse station (EHR launch, user-level chart rounds)",
        grant_type: "authorization_code",
        scopes: "launch openid fhirUser user/Patient.rs user/Observation.rs user/Encounter.rs",
        allowed_scopes: "launch openid fhirUser user/Patient.rs user/Observation.rs user/Encounter.rs",
        modes: &["user"],
        purpose: "TREAT",
        patient_context: true,
        hourly_sessions: ward_shifts(),
        weekend_factor: 0.8,
        // Charts opened per session; each chart is every kind once.
        requests_per_session: (3, 8),
        token_lifetime: 3600,
        kinds: &[
            RequestKind { method: "GET", url: "Patient/{p}", weight: 1, resources: (1, 1), bytes_per_resource: 2_000 },
            RequestKind { method: "GET", url: "Observation?patient={p}&_count=20", weight: 1, resources: (5, 20), bytes_per_resource: 1_000 },
            RequestKind { method: "GET", url: "Encounter?patient={p}", weight: 1, resources: (1, 6), bytes_per_resource: 1_400 },
        ],
        pages_per_session: (0, 0),
    },
    Archetype {
        client_id: NIGHT_TRIAGE,
        name: "Night telehealth triage (patient launch)",
        grant_type: "authorization_code",
        scopes: "launch/patient patient/Observation.rs patient/Condition.rs patient/Patient.r",
        allowed_scopes: "launch/patient patient/Observation.rs patient/Condition.rs patient/Patient.r",
        modes: &["patient"],
        purpose: "TREAT",
        patient_context: true,
        hourly_sessions: late_evening(),
        weekend_factor: 1.0,
        requests_per_session: (3, 8),
        token_lifetime: 3600,
        kinds: &[
            RequestKind { method: "GET", url: "Patient/{p}", weight: 1, resources: (1, 1), bytes_per_resource: 2_000 },
            RequestKind { method: "GET", url: "Observation?patient={p}&category=vital-signs&_sort=-date&_count=10", weight: 3, resources: (1, 10), bytes_per_resource: 1_200 },
            RequestKind { method: "GET", url: "Condition?patient={p}&clinical-status=active", weight: 2, resources: (0, 8), bytes_per_resource: 1_300 },
            RequestKind { method: "GET", url: "Observation?patient={p}&code=http://loinc.org|8310-5&_sort=-date&_count=5", weight: 1, resources: (0, 5), bytes_per_resource: 900 },
        ],
        pages_per_session: (0, 0),
    },
    Archetype {
        client_id: BOOKING_APP,
        name: "Appointment booking (patient launch, writes)",
        grant_type: "authorization_code",
        scopes: "launch/patient openid patient/Appointment.cru patient/Slot.rs patient/Patient.r",
        allowed_scopes: "launch/patient openid patient/Appointment.cru patient/Slot.rs patient/Patient.r",
        modes: &["patient"],
        purpose: "PATRQT",
        patient_context: true,
        hourly_sessions: hours(8, 21, 1.0),
        weekend_factor: 0.6,
        // Slot searches per session, before a booking or a rescheduling (or neither).
        requests_per_session: (1, 3),
        token_lifetime: 3600,
        kinds: &[
            RequestKind { method: "GET", url: "Slot?schedule=Schedule/s{n}&status=free&_count=20", weight: 1, resources: (0, 20), bytes_per_resource: 600 },
        ],
        pages_per_session: (0, 0),
    },
];
