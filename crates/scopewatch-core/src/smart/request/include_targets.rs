//! The resource types an `_include` brings in when its value names no target type:
//! FHIR R4 search §3.1.1.5.5 ("_include"): `_include=Observation:performer` includes every
//! resource the `performer` references point to, whatever their type, so the targets are the
//! search parameter's declared target types (FHIR R4 search parameter registry,
//! `SearchParameter.target`). Parameters not listed here have targets this table does not
//! know: the include may bring any type.

/// `(source type or "*", parameter, target types)`; a source-specific row wins over `*`.
const TARGETS: &[(&str, &str, &[&str])] = &[
    ("*", "patient", &["Patient"]),
    ("*", "beneficiary", &["Patient"]),
    ("*", "encounter", &["Encounter"]),
    (
        "DocumentReference",
        "encounter",
        &["Encounter", "EpisodeOfCare"],
    ),
    ("*", "medication", &["Medication"]),
    ("*", "organization", &["Organization"]),
    ("*", "service-provider", &["Organization"]),
    ("*", "practitioner", &["Practitioner"]),
    ("*", "location", &["Location"]),
    ("*", "specimen", &["Specimen"]),
    ("*", "device", &["Device"]),
    ("Observation", "device", &["Device", "DeviceMetric"]),
    ("*", "care-team", &["CareTeam"]),
    ("*", "result", &["Observation"]),
    ("*", "schedule", &["Schedule"]),
    ("*", "slot", &["Slot"]),
    ("*", "subject", &["Patient", "Group"]),
    (
        "Observation",
        "subject",
        &["Patient", "Group", "Device", "Location"],
    ),
    (
        "DiagnosticReport",
        "subject",
        &["Patient", "Group", "Device", "Location"],
    ),
    (
        "ServiceRequest",
        "subject",
        &["Patient", "Group", "Device", "Location"],
    ),
    (
        "DocumentReference",
        "subject",
        &["Patient", "Practitioner", "Group", "Device"],
    ),
    ("Goal", "subject", &["Patient", "Group", "Organization"]),
    (
        "*",
        "performer",
        &[
            "Practitioner",
            "PractitionerRole",
            "Organization",
            "CareTeam",
            "Patient",
            "RelatedPerson",
            "Device",
        ],
    ),
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
        "*",
        "requester",
        &[
            "Practitioner",
            "PractitionerRole",
            "Organization",
            "Patient",
            "RelatedPerson",
            "Device",
        ],
    ),
    (
        "*",
        "author",
        &[
            "Practitioner",
            "PractitionerRole",
            "Organization",
            "Patient",
            "RelatedPerson",
            "Device",
        ],
    ),
    (
        "*",
        "asserter",
        &[
            "Practitioner",
            "PractitionerRole",
            "Patient",
            "RelatedPerson",
        ],
    ),
    (
        "*",
        "recorder",
        &[
            "Practitioner",
            "PractitionerRole",
            "Patient",
            "RelatedPerson",
        ],
    ),
    (
        "*",
        "general-practitioner",
        &["Practitioner", "PractitionerRole", "Organization"],
    ),
    (
        "*",
        "participant",
        &["Practitioner", "PractitionerRole", "RelatedPerson"],
    ),
    ("*", "link", &["Patient", "RelatedPerson"]),
    ("*", "payor", &["Organization", "Patient", "RelatedPerson"]),
    (
        "*",
        "has-member",
        &["Observation", "QuestionnaireResponse", "MolecularSequence"],
    ),
    (
        "*",
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
        "*",
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
    fn a_source_specific_row_wins() {
        assert_eq!(
            include_targets("MedicationRequest", "medication"),
            Some(&["Medication"][..])
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
