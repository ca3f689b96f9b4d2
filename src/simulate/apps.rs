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
