//! The R4 patient compartment: which search parameters link a resource type to the patient.
//! Source: HL7 FHIR R4 4.0.1 CompartmentDefinition-patient (CC0), copied beside this file.

use std::sync::OnceLock;

use super::resource_types::RESOURCE_TYPES;

static COMPARTMENT_TSV: &str = include_str!("patient-compartment-r4.tsv");

/// Linking parameters per entry of [`RESOURCE_TYPES`] (same index), parsed once from the TSV.
fn table() -> &'static [Vec<&'static str>] {
    static TABLE: OnceLock<Vec<Vec<&'static str>>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut by_index: Vec<Vec<&'static str>> = vec![Vec::new(); RESOURCE_TYPES.len()];
        for line in COMPARTMENT_TSV
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("resourceType"))
        {
            let Some((ty, params)) = line.split_once('\t') else {
                continue;
            };
            if let Some(i) = type_index(ty) {
                by_index[i] = params.split(',').filter(|p| !p.is_empty()).collect();
            }
        }
        by_index
    })
}

/// Search parameters that link `resource_type` to the patient (empty when it is not in the compartment).
pub fn patient_link_params(resource_type: &str) -> &'static [&'static str] {
    type_index(resource_type).map_or(&[], |i| table()[i].as_slice())
}

/// True when resources of this type belong to a patient's compartment (Patient itself included).
pub fn is_patient_compartment_type(resource_type: &str) -> bool {
    !patient_link_params(resource_type).is_empty()
}

/// For each upper-case first letter, the range of [`RESOURCE_TYPES`] starting with it
/// (this lookup runs for every path segment of every request).
fn letter_ranges() -> &'static [(usize, usize); 26] {
    static RANGES: OnceLock<[(usize, usize); 26]> = OnceLock::new();
    RANGES.get_or_init(|| {
        let mut ranges = [(0, 0); 26];
        for (letter, range) in ranges.iter_mut().enumerate() {
            let first = b'A' + letter as u8;
            let start = RESOURCE_TYPES.partition_point(|t| t.as_bytes()[0] < first);
            let end = RESOURCE_TYPES.partition_point(|t| t.as_bytes()[0] <= first);
            *range = (start, end);
        }
        ranges
    })
}

fn type_index(name: &str) -> Option<usize> {
    let first = *name.as_bytes().first()?;
    if !first.is_ascii_uppercase() {
        return None;
    }
    let (start, end) = letter_ranges()[usize::from(first - b'A')];
    RESOURCE_TYPES[start..end]
        .iter()
        .position(|t| t.len() == name.len() && *t == name)
        .map(|i| start + i)
}

/// The interned name when `name` is a FHIR resource type.
pub fn known_resource_type(name: &str) -> Option<&'static str> {
    type_index(name).map(|i| RESOURCE_TYPES[i])
}

pub fn is_known_resource_type(name: &str) -> bool {
    known_resource_type(name).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_the_fixture() {
        assert_eq!(
            patient_link_params("Observation"),
            &["subject", "performer"]
        );
        assert_eq!(patient_link_params("Encounter"), &["patient"]);
        assert!(patient_link_params("Coverage").contains(&"beneficiary"));
        assert!(patient_link_params("Medication").is_empty());
        assert!(is_patient_compartment_type("Patient"));
        assert!(!is_patient_compartment_type("CodeSystem"));
        // 66 types carry linking parameters in R4.
        assert_eq!(table().iter().filter(|p| !p.is_empty()).count(), 66);
    }

    #[test]
    fn resource_type_list_is_sorted_and_complete() {
        assert!(RESOURCE_TYPES.windows(2).all(|w| w[0] < w[1]));
        assert!(is_known_resource_type("Observation"));
        assert!(is_known_resource_type("SubscriptionTopic"));
        assert!(!is_known_resource_type("observation"));
        assert!(!is_known_resource_type("Foo"));
    }
}
