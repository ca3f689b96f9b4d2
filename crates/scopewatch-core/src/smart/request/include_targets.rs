//! The resource types an `_include` brings in when its value names no target type:
//! FHIR R4 search §3.1.1.5.5 ("_include"): `_include=Observation:performer` includes every
//! resource the `performer` references point to, whatever their type, so the targets are the
//! search parameter's declared target types (FHIR R4 search parameter registry,
//! `SearchParameter.target`). Parameters not listed here have targets this table does not
//! know: the include may bring any type.

/// Targets several resources declare alike.
const PATIENT_OR_GROUP: &[&str] = &["Patient", "Group"];
const SUBJECT_WITH_DEVICE_LOCATION: &[&str] = &["Patient", "Group", "Device", "Location"];
/// Who may order: `MedicationRequest.requester`, `ServiceRequest.requester`.
const REQUESTERS: &[&str] = &[
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Patient",
    "RelatedPerson",
    "Device",
];

/// `(source type or "*", parameter, target types)`; a source-specific row wins over `*`.
const TARGETS: &[(&str, &str, &[&str])] = &[
    // The same targets on every R4 resource that has the parameter.
    ("*", "patient", &["Patient"]),
    ("*", "beneficiary", &["Patient"]),
    ("*", "encounter", &["Encounter"]),
    ("*", "medication", &["Medication"]),
    ("*", "organization", &["Organization"]),
    ("*", "service-provider", &["Organization"]),
    ("*", "practitioner", &["Practitioner"]),
    ("*", "location", &["Location"]),
    ("*", "specimen", &["Specimen"]),
    ("*", "care-team", &["CareTeam"]),
    ("*", "result", &["Observation"]),
    ("*", "schedule", &["Schedule"]),
    ("*", "slot", &["Slot"]),
    // Targets that differ by resource: only the resources listed; others may bring any type.
    (
        "DocumentReference",
        "encounter",
        &["Encounter", "EpisodeOfCare"],
    ),
    ("Observation", "subject", SUBJECT_WITH_DEVICE_LOCATION),
    ("DiagnosticReport", "subject", SUBJECT_WITH_DEVICE_LOCATION),
    ("ServiceRequest", "subject", SUBJECT_WITH_DEVICE_LOCATION),
    (
        "DocumentReference",
        "subject",
        &["Patient", "Practitioner", "Group", "Device"],
    ),
    ("Goal", "subject", &["Patient", "Group", "Organization"]),
    ("Condition", "subject", PATIENT_OR_GROUP),
    ("MedicationRequest", "subject", PATIENT_OR_GROUP),
    ("MedicationAdministration", "subject", PATIENT_OR_GROUP),
    ("MedicationDispense", "subject", PATIENT_OR_GROUP),
    ("MedicationStatement", "subject", PATIENT_OR_GROUP),
    ("Encounter", "subject", PATIENT_OR_GROUP),
    ("Procedure", "subject", PATIENT_OR_GROUP),
    ("CarePlan", "subject", PATIENT_OR_GROUP),
    ("CareTeam", "subject", PATIENT_OR_GROUP),
    ("ClinicalImpression", "subject", PATIENT_OR_GROUP),
    ("RiskAssessment", "subject", PATIENT_OR_GROUP),
    (
        "Observation",
        "performer",
        &[
            "Practitioner",
            "PractitionerRole",
            "Organization",
            "CareTeam",
            "Patient",
            "RelatedPerson",
        ],
    ),
    (
        "DiagnosticReport",
        "performer",
        &[
            "Practitioner",
            "PractitionerRole",
            "Organization",
            "CareTeam",
        ],
    ),
    (
        "Procedure",
        "performer",
        &[
            "Practitioner",
            "PractitionerRole",
            "Organization",
            "Device",
            "Patient",
            "RelatedPerson",
        ],
    ),
    (
        "Immunization",
        "performer",
        &["Practitioner", "PractitionerRole", "Organization"],
    ),
    (
        "MedicationAdministration",
        "performer",
        &[
            "Practitioner",
            "PractitionerRole",
            "Patient",
            "RelatedPerson",
            "Device",
        ],
    ),
    (
        "MedicationDispense",
        "performer",
        &[
            "Practitioner",
            "PractitionerRole",
            "Organization",
            "Patient",
            "Device",
            "RelatedPerson",
        ],
    ),
    (
        "ServiceRequest",
        "performer",
        &[
            "Practitioner",
            "PractitionerRole",
            "Organization",
            "CareTeam",
            "HealthcareService",
            "Patient",
            "Device",
            "RelatedPerson",
        ],
    ),
    ("MedicationRequest", "requester", REQUESTERS),
    ("ServiceRequest", "requester", REQUESTERS),
    (
        "DocumentReference",
        "author",
        &[
            "Practitioner",
            "PractitionerRole",
            "Organization",
            "Device",
            "Patient",
            "RelatedPerson",
        ],
    ),
    (
        "Composition",
        "author",
        &[
            "Practitioner",
            "PractitionerRole",
            "Device",
            "Patient",
            "RelatedPerson",
            "Organization",
        ],
    ),
    (
        "Condition",
        "asserter",
        &[
            "Practitioner",
            "PractitionerRole",
            "Patient",
            "RelatedPerson",
        ],
    ),
    (
        "AllergyIntolerance",
        "recorder",
        &[
            "Practitioner",
            "PractitionerRole",
            "Patient",
            "RelatedPerson",
        ],
    ),
    (
        "Patient",
        "general-practitioner",
        &["Organization", "Practitioner", "PractitionerRole"],
    ),
    (
        "Encounter",
        "participant",
        &["Practitioner", "PractitionerRole", "RelatedPerson"],
    ),
    ("Patient", "link", &["Patient", "RelatedPerson"]),
    (
        "Coverage",
        "payor",
        &["Organization", "Patient", "RelatedPerson"],
    ),
    (
        "Observation",
        "has-member",
        &["Observation", "QuestionnaireResponse", "MolecularSequence"],
    ),
    (
        "Observation",
        "derived-from",
        &[
            "DocumentReference",
            "ImagingStudy",
            "Media",
            "QuestionnaireResponse",
            "Observation",
            "MolecularSequence",
        ],
    ),
    (
        "Appointment",
        "actor",
        &[
            "Patient",
            "Practitioner",
            "PractitionerRole",
            "RelatedPerson",
            "Device",
            "HealthcareService",
            "Location",
        ],
    ),
    ("Observation", "device", &["Device", "DeviceMetric"]),
    ("DeviceRequest", "device", &["Device"]),
    ("DeviceUseStatement", "device", &["Device"]),
];

/// The types `_include=source:param` (no target type) may bring in; None when unknown.
pub fn include_targets(source: &str, param: &str) -> Option<&'static [&'static str]> {
    let row = |wanted: &str| {
        TARGETS
            .iter()
            .find(|(s, p, _)| *s == wanted && *p == param)
            .map(|(_, _, targets)| *targets)
    };
    row(source).or_else(|| row("*"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smart::request::known_resource_type;

    #[test]
    fn targets_are_known_resource_types() {
        for (_, _, targets) in TARGETS {
            for t in *targets {
                assert_eq!(known_resource_type(t), Some(*t), "{t}");
            }
        }
    }

    #[test]
    fn a_source_specific_row_wins_and_varying_targets_are_not_guessed() {
        assert_eq!(
            include_targets("MedicationRequest", "medication"),
            Some(&["Medication"][..])
        );
        assert_eq!(
            include_targets("DocumentReference", "encounter").map(<[_]>::len),
            Some(2)
        );
        assert_eq!(
            include_targets("Composition", "subject"),
            None,
            "any type in R4"
        );
        assert_eq!(
            include_targets("Observation", "subject").map(<[_]>::len),
            Some(4)
        );
        assert_eq!(
            include_targets("Condition", "subject").map(<[_]>::len),
            Some(2)
        );
        assert_eq!(include_targets("Provenance", "target"), None);
    }
}
