//! Table-driven tests of the FHIR request grammar: method + URL → interaction, type, patient
//! compartment, population level and the SMART permission needed.

#[path = "semantics/mod.rs"]
mod semantics;

use scopewatch::smart::request::{
    classify, Classifier, FhirRequest, Interaction, Method, Paging, PatientScope,
};

/// (method, url, interaction, resource type, patient, population-level, requirement)
/// patient: `patient:<id>`, `patients:<id,id>` or a PatientScope name; requirement: `Type.letters`,
/// `*.letters` or `-` for none.
type Row = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    bool,
    &'static str,
);

const TABLE: &[Row] = &[
    // Instance-level reads.
    (
        "GET",
        "Patient/123",
        "read",
        Some("Patient"),
        "patient:123",
        false,
        "Patient.r",
    ),
    (
        "HEAD",
        "Patient/123",
        "read",
        Some("Patient"),
        "patient:123",
        false,
        "Patient.r",
    ),
    (
        "GET",
        "Observation/abc-1",
        "read",
        Some("Observation"),
        "instance",
        false,
        "Observation.r",
    ),
    (
        "GET",
        "Medication/m1",
        "read",
        Some("Medication"),
        "not-patient-data",
        false,
        "Medication.r",
    ),
    (
        "GET",
        "Patient/123/_history/2",
        "vread",
        Some("Patient"),
        "patient:123",
        false,
        "Patient.r",
    ),
    (
        "GET",
        "Observation/o1/_history",
        "history-instance",
        Some("Observation"),
        "instance",
        false,
        "Observation.r",
    ),
    (
        "GET",
        "Patient/123/_history",
        "history-instance",
        Some("Patient"),
        "patient:123",
        false,
        "Patient.r",
    ),
    // Writes.
    (
        "PUT",
        "Observation/o1",
        "update",
        Some("Observation"),
        "instance",
        false,
        "Observation.u",
    ),
    (
        "PATCH",
        "Observation/o1",
        "patch",
        Some("Observation"),
        "instance",
        false,
        "Observation.u",
    ),
    (
        "DELETE",
        "Observation/o1",
        "delete",
        Some("Observation"),
        "instance",
        false,
        "Observation.d",
    ),
    (
        "POST",
        "Observation",
        "create",
        Some("Observation"),
        "unknown",
        false,
        "Observation.c",
    ),
    (
        "POST",
        "Organization",
        "create",
        Some("Organization"),
        "not-patient-data",
        false,
        "Organization.c",
    ),
    (
        "PUT",
        "Patient?identifier=http://mrn|42",
        "update",
        Some("Patient"),
        "patient-by-identifier",
        false,
        "Patient.us",
    ),
    (
        "DELETE",
        "Observation?code=1234-5",
        "delete",
        Some("Observation"),
        "unconstrained",
        true,
        "Observation.ds",
    ),
    (
        "DELETE",
        "Observation?patient=9",
        "delete",
        Some("Observation"),
        "patient:9",
        false,
        "Observation.ds",
    ),
    (
        "PATCH",
        "Observation?subject=Patient/9&code=x",
        "patch",
        Some("Observation"),
        "patient:9",
        false,
        "Observation.us",
    ),
    // Type searches and the patient compartment.
    (
        "GET",
        "Observation?patient=123",
        "search-type",
        Some("Observation"),
        "patient:123",
        false,
        "Observation.s",
    ),
    (
        "GET",
        "Observation?subject=Patient/123&category=laboratory",
        "search-type",
        Some("Observation"),
        "patient:123",
        false,
        "Observation.s",
    ),
    (
        "GET",
        "Observation?subject:Patient=123",
        "search-type",
        Some("Observation"),
        "patient:123",
        false,
        "Observation.s",
    ),
    (
        "GET",
        "Observation?subject=https://ehr.example.org/fhir/Patient/123",
        "search-type",
        Some("Observation"),
        "patient:123",
        false,
        "Observation.s",
    ),
    (
        "GET",
        "Observation?subject=Group/7",
        "search-type",
        Some("Observation"),
        "unconstrained",
        true,
        "Observation.s",
    ),
    // A bare id is a local reference to any target type (FHIR R4 search, reference
    // `[parameter]=[id]`): Observation's subject may be a Device or Location, Condition's only
    // a Patient or Group, so there it names the patient as `subject=Patient/123` does.
    (
        "GET",
        "Observation?subject=123",
        "search-type",
        Some("Observation"),
        "unconstrained",
        true,
        "Observation.s",
    ),
    (
        "GET",
        "Condition?subject=123",
        "search-type",
        Some("Condition"),
        "patient:123",
        false,
        "Condition.s",
    ),
    (
        "GET",
        "Observation?patient.identifier=http://mrn|42",
        "search-type",
        Some("Observation"),
        "patient-by-identifier",
        false,
        "Observation.s",
    ),
    (
        "GET",
        "Observation?subject:Patient.identifier=http://mrn|42",
        "search-type",
        Some("Observation"),
        "patient-by-identifier",
        false,
        "Observation.s",
    ),
    (
        "GET",
        "Observation?patient=1,2,3",
        "search-type",
        Some("Observation"),
        "patients:1,2,3",
        false,
        "Observation.s",
    ),
    (
        "GET",
        "Observation?patient=Patient%2F123",
        "search-type",
        Some("Observation"),
        "patient:123",
        false,
        "Observation.s",
    ),
    (
        "GET",
        "Observation?code=http://loinc.org|2345-7",
        "search-type",
        Some("Observation"),
        "unconstrained",
        true,
        "Observation.s",
    ),
    (
        "GET",
        "Observation",
        "search-type",
        Some("Observation"),
        "unconstrained",
        true,
        "Observation.s",
    ),
    (
        "GET",
        "Encounter?patient=77&_count=50",
        "search-type",
        Some("Encounter"),
        "patient:77",
        false,
        "Encounter.s",
    ),
    (
        "GET",
        "Coverage?beneficiary=5",
        "search-type",
        Some("Coverage"),
        "patient:5",
        false,
        "Coverage.s",
    ),
    (
        "GET",
        "Appointment?actor=Patient/5",
        "search-type",
        Some("Appointment"),
        "patient:5",
        false,
        "Appointment.s",
    ),
    (
        "GET",
        "Appointment?actor=Practitioner/5",
        "search-type",
        Some("Appointment"),
        "unconstrained",
        true,
        "Appointment.s",
    ),
    (
        "GET",
        "Patient?name=smith",
        "search-type",
        Some("Patient"),
        "unconstrained",
        true,
        "Patient.s",
    ),
    (
        "GET",
        "Patient?_id=123",
        "search-type",
        Some("Patient"),
        "patient:123",
        false,
        "Patient.s",
    ),
    (
        "GET",
        "Patient?identifier=http://mrn|42",
        "search-type",
        Some("Patient"),
        "patient-by-identifier",
        false,
        "Patient.s",
    ),
    (
        "GET",
        "Medication?code=123",
        "search-type",
        Some("Medication"),
        "not-patient-data",
        false,
        "Medication.s",
    ),
    (
        "GET",
        "ValueSet?url=http://x",
        "search-type",
        Some("ValueSet"),
        "not-patient-data",
        false,
        "ValueSet.s",
    ),
    (
        "POST",
        "Observation/_search",
        "search-type",
        Some("Observation"),
        "unknown",
        false,
        "Observation.s",
    ),
    (
        "POST",
        "Observation/_search?patient=4",
        "search-type",
        Some("Observation"),
        "patient:4",
        false,
        "Observation.s",
    ),
    (
        "GET",
        "Observation/_history",
        "history-type",
        Some("Observation"),
        "unconstrained",
        true,
        "Observation.s",
    ),
    // Compartment searches.
    (
        "GET",
        "Patient/123/Observation?category=laboratory",
        "search-compartment",
        Some("Observation"),
        "patient:123",
        false,
        "Observation.s",
    ),
    (
        "GET",
        "Patient/123/*",
        "search-compartment",
        None,
        "patient:123",
        false,
        "*.s",
    ),
    (
        "POST",
        "Patient/123/Condition/_search",
        "search-compartment",
        Some("Condition"),
        "patient:123",
        false,
        "Condition.s",
    ),
    (
        "GET",
        "Encounter/e1/Observation",
        "search-compartment",
        Some("Observation"),
        "unknown",
        false,
        "Observation.s",
    ),
    // System level.
    (
        "GET",
        "metadata",
        "capabilities",
        None,
        "not-patient-data",
        false,
        "-",
    ),
    (
        "GET",
        ".well-known/smart-configuration",
        "discovery",
        None,
        "not-patient-data",
        false,
        "-",
    ),
    (
        "GET",
        "?_type=Observation,Condition&patient=5",
        "search-system",
        None,
        "patient:5",
        false,
        "*.s",
    ),
    (
        "GET",
        "?_type=Medication",
        "search-system",
        None,
        "not-patient-data",
        false,
        "*.s",
    ),
    (
        "GET",
        "?_lastUpdated=gt2024-01-01",
        "search-system",
        None,
        "unconstrained",
        true,
        "*.s",
    ),
    (
        "POST",
        "_search",
        "search-system",
        None,
        "unknown",
        false,
        "*.s",
    ),
    (
        "GET",
        "_history",
        "history-system",
        None,
        "unconstrained",
        true,
        "*.s",
    ),
    ("POST", "", "unknown", None, "unknown", false, "-"),
    // Operations.
    (
        "GET",
        "Patient/123/$everything",
        "operation",
        Some("Patient"),
        "patient:123",
        false,
        "Patient.r",
    ),
    (
        "GET",
        "Patient/$everything",
        "operation",
        Some("Patient"),
        "all-patients",
        true,
        "Patient.r",
    ),
    (
        "POST",
        "Patient/$export",
        "operation",
        Some("Patient"),
        "all-patients",
        true,
        "*.rs",
    ),
    (
        "GET",
        "$export?_type=Patient,Observation",
        "operation",
        None,
        "all-patients",
        true,
        "*.rs",
    ),
    (
        "POST",
        "Group/g1/$export",
        "operation",
        Some("Group"),
        "all-patients",
        true,
        "*.rs",
    ),
    (
        "GET",
        "$export-poll-status?_jobId=0b6c",
        "operation",
        None,
        "not-patient-data",
        false,
        "-",
    ),
    (
        "GET",
        "Observation/$lastn?patient=5&max=3",
        "operation",
        Some("Observation"),
        "patient:5",
        false,
        "Observation.s",
    ),
    (
        "GET",
        "Observation/$lastn?code=x",
        "operation",
        Some("Observation"),
        "unconstrained",
        true,
        "Observation.s",
    ),
    (
        "GET",
        "ValueSet/$expand?url=http://x",
        "operation",
        Some("ValueSet"),
        "not-patient-data",
        false,
        "-",
    ),
    (
        "POST",
        "Observation/o1/$meta-add",
        "operation",
        Some("Observation"),
        "instance",
        false,
        "Observation.u",
    ),
    (
        "POST",
        "$graphql",
        "operation",
        None,
        "unknown",
        false,
        "*.rs",
    ),
    (
        "POST",
        "Patient/$match",
        "operation",
        Some("Patient"),
        "unconstrained",
        true,
        "Patient.s",
    ),
    (
        "POST",
        "$custom-thing",
        "operation",
        None,
        "unknown",
        false,
        "-",
    ),
    // Batch / transaction.
    (
        "POST",
        "?_format=json",
        "batch-transaction",
        None,
        "unknown",
        false,
        "-",
    ),
    // Paging follow-ups.
    (
        "GET",
        "?_getpages=5a3f&_getpagesoffset=20&_count=20&_bundletype=searchset",
        "page",
        None,
        "unknown",
        false,
        "-",
    ),
    (
        "GET",
        "Observation?patient=5&ct=W3sidG9rZW4iOiIrUklEOn4",
        "search-type",
        Some("Observation"),
        "patient:5",
        false,
        "Observation.s",
    ),
    (
        "GET",
        "Observation?_page_token=abc",
        "search-type",
        Some("Observation"),
        "unconstrained",
        true,
        "Observation.s",
    ),
    // Absolute URLs: base recognised from the first FHIR segment.
    (
        "GET",
        "https://ehr.example.org/fhir/r4/Patient/123",
        "read",
        Some("Patient"),
        "patient:123",
        false,
        "Patient.r",
    ),
    (
        "GET",
        "https://ehr.example.org/api/fhir/Observation?patient=9",
        "search-type",
        Some("Observation"),
        "patient:9",
        false,
        "Observation.s",
    ),
    (
        "GET",
        "http://localhost:8080/fhir/metadata",
        "capabilities",
        None,
        "not-patient-data",
        false,
        "-",
    ),
    (
        "GET",
        "https://ehr.example.org/fhir/.well-known/smart-configuration",
        "discovery",
        None,
        "not-patient-data",
        false,
        "-",
    ),
    (
        "GET",
        "https://hapi.example.org/fhir?_getpages=abc&_getpagesoffset=40",
        "page",
        None,
        "unknown",
        false,
        "-",
    ),
    (
        "GET",
        "https://bulk.example.org/fhir/bulkstatus/j-1",
        "bulk-status",
        None,
        "not-patient-data",
        false,
        "-",
    ),
    (
        "GET",
        "https://bulk.example.org/fhir/bulkfiles/1.Patient.ndjson",
        "bulk-download",
        None,
        "unconstrained",
        true,
        "-",
    ),
    (
        "GET",
        "/fhir/Patient/123/Observation",
        "search-compartment",
        Some("Observation"),
        "patient:123",
        false,
        "Observation.s",
    ),
    (
        "GET",
        "/Patient/123#frag",
        "read",
        Some("Patient"),
        "patient:123",
        false,
        "Patient.r",
    ),
    // Malformed or unclassifiable.
    ("GET", "", "unknown", None, "unknown", false, "-"),
    ("GET", "patient/123", "unknown", None, "unknown", false, "-"),
    ("GET", "Foo/123", "unknown", None, "unknown", false, "-"),
    (
        "GET",
        "Patient//123",
        "unknown",
        None,
        "unknown",
        false,
        "-",
    ),
    (
        "GET",
        "Patient/bad id",
        "unknown",
        None,
        "unknown",
        false,
        "-",
    ),
    (
        "GET",
        "Patient/",
        "search-type",
        Some("Patient"),
        "unconstrained",
        true,
        "Patient.s",
    ),
    ("GET", "Patient/a_b", "unknown", None, "unknown", false, "-"),
    (
        "GET",
        "Patient/1/Observation/2/3",
        "unknown",
        None,
        "unknown",
        false,
        "-",
    ),
    (
        "POST",
        "Patient/123",
        "unknown",
        None,
        "unknown",
        false,
        "-",
    ),
    (
        "DELETE",
        "Observation",
        "unknown",
        None,
        "unknown",
        false,
        "-",
    ),
    ("DELETE", "metadata", "unknown", None, "unknown", false, "-"),
    (
        "GET",
        "https://ehr.example.org/portal/home",
        "unknown",
        None,
        "unknown",
        false,
        "-",
    ),
    (
        "GET",
        "https://ehr.example.org/fhir/Foo?x=1",
        "unknown",
        None,
        "unknown",
        false,
        "-",
    ),
    (
        "GET",
        "Patient/123/_history/v 2",
        "unknown",
        None,
        "unknown",
        false,
        "-",
    ),
    ("GET", "Patient/1/$", "unknown", None, "unknown", false, "-"),
    (
        "GET",
        "Patient/123/Foo",
        "unknown",
        None,
        "unknown",
        false,
        "-",
    ),
    (
        "PUT",
        "Patient/123/_history",
        "unknown",
        None,
        "unknown",
        false,
        "-",
    ),
];

fn patient_text(p: &PatientScope<'_>) -> String {
    match p {
        PatientScope::Patient(id) => format!("patient:{id}"),
        PatientScope::Patients(ids) => format!(
            "patients:{}",
            ids.iter().map(|i| i.as_ref()).collect::<Vec<_>>().join(",")
        ),
        other => other.as_str().to_string(),
    }
}

fn requirement_text(r: &FhirRequest<'_>) -> String {
    match r.requirement() {
        None => "-".into(),
        Some(req) => format!("{}.{}", req.resource.as_str(), req.perms.letters()),
    }
}

#[test]
fn table_of_requests() {
    assert!(TABLE.len() >= 60, "at least 60 URLs");
    let mut failures = Vec::new();
    for &(method, url, interaction, ty, patient, population, requirement) in TABLE {
        let m: Method = method.parse().expect("method");
        let r = classify(m, url);
        let got = (
            r.interaction.as_str(),
            r.resource_type,
            patient_text(&r.patient),
            r.is_population_level(),
            requirement_text(&r),
        );
        let want = (
            interaction,
            ty,
            patient.to_string(),
            population,
            requirement.to_string(),
        );
        if got != want {
            failures.push(format!(
                "{method} {url}\n   got  {got:?}\n   want {want:?} (problem {:?})",
                r.problem
            ));
        }
        if r.interaction == Interaction::Unknown && r.problem.is_none() {
            failures.push(format!("{method} {url}: unknown without a problem"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn problems_never_quote_ids() {
    for url in [
        "Patient/bad id",
        "Patient/a_b",
        "Patient/1/Observation/2/3",
        "Patient/123/_history/v 2",
    ] {
        let r = classify(Method::Get, url);
        let problem = r.problem.expect("problem");
        assert!(
            !problem.contains("123") && !problem.contains("a_b") && !problem.contains("bad"),
            "{problem}"
        );
    }
}

#[test]
fn count_paging_and_types() {
    let r = classify(Method::Get, "Observation?patient=5&_count=1000&ct=abc");
    assert_eq!(r.count, Some(1000));
    assert_eq!(r.paging, Some(Paging::ContinuationToken));
    assert!(r.is_page_followup());
    let r = classify(Method::Get, "?_getpages=x&_count=20");
    assert_eq!(r.paging, Some(Paging::HapiGetPages));
    let r = classify(Method::Get, "$export?_type=Patient,Observation,Nope");
    assert_eq!(r.types, vec!["Patient", "Observation"]);
    assert!(r.is_bulk_export());
    assert_eq!(classify(Method::Get, "Observation?_count=abc").count, None);
}

/// Bulk Data Access IG 2.0, "Bulk Data Kick-off Request": the three kick-off endpoints reach a
/// Group's members, every patient, all data; baselines learn which an app uses
/// (`bulk_export_new` finds one that reaches further). Other requests have no level.
#[test]
fn export_levels_follow_the_kick_off_endpoints() {
    let level = |method, url| classify(method, url).export_level();
    assert_eq!(
        level(Method::Get, "Group/g1/$export?_type=Patient"),
        Some("$export Group")
    );
    assert_eq!(
        level(Method::Post, "Group/g1/$export"),
        Some("$export Group")
    );
    assert_eq!(
        level(Method::Get, "Patient/$export"),
        Some("$export Patient")
    );
    assert_eq!(
        level(Method::Get, "$export?_type=Observation"),
        Some("$export system")
    );
    assert_eq!(level(Method::Post, "$export"), Some("$export system"));
    // `$export` on an endpoint the IG does not define, a status poll, a read: no level.
    assert_eq!(level(Method::Get, "Observation/$export"), None);
    assert_eq!(level(Method::Get, "$export-poll-status?_jobId=1"), None);
    assert_eq!(level(Method::Get, "Group/g1"), None);
}

#[test]
fn explicit_base() {
    let c = Classifier::with_base("https://ehr.example.org/custom/base/");
    let r = c.classify(
        Method::Get,
        "https://ehr.example.org/custom/base/Observation?patient=1",
    );
    assert_eq!(r.interaction, Interaction::SearchType);
    let r = c.classify(
        Method::Get,
        "https://ehr.example.org/custom/base?_getpages=1",
    );
    assert_eq!(r.interaction, Interaction::Page);
    let r = c.classify(Method::Get, "https://ehr.example.org/other/Observation");
    assert_eq!(
        r.problem.as_deref(),
        Some("URL is outside the configured FHIR base")
    );
    // Relative URLs are already relative to the base.
    assert_eq!(
        c.classify(Method::Get, "Patient/1").interaction,
        Interaction::Read
    );
}

#[test]
fn ids_borrow_from_the_url() {
    let url = String::from("Observation?patient=abc");
    let r = classify(Method::Get, &url);
    let ids = r.patient_ids();
    assert_eq!(ids, vec!["abc"]);
    assert!(
        std::ptr::eq(ids[0].as_ptr(), url[20..].as_ptr()),
        "no copy for plain ids"
    );
}

/// Raw UTF-8 in a logged URL (RFC 3986 allows only ASCII, logs do not care) is classified or
/// rejected, never a panic.
#[test]
fn non_ascii_urls_never_panic() {
    for url in [
        "Observa€ion",
        "htt€s://x/Patient/1",
        "/fhir/Patient/p€",
        "https://ü/Patient/1",
    ] {
        let r = classify(Method::Get, url);
        assert!(
            r.problem.is_some() || r.interaction != Interaction::Unknown,
            "{url}"
        );
    }
}

/// A percent-encoded path is judged as the server serves it, decoded (`Patient/p%32` is
/// `Patient/p2`), so an id cannot hide behind its encoding (RFC 3986 §2.1, §6.2.2.2).
#[test]
fn percent_encoded_paths_are_classified_decoded() {
    let r = classify(Method::Get, "Patient/p%32");
    assert_eq!(r.interaction, Interaction::Read);
    assert_eq!(r.patient, PatientScope::Patient("p2".into()));
    let r = classify(Method::Get, "/fhir/Observation%2Fo1?_elements=code");
    assert_eq!(
        (r.interaction, r.resource_type),
        (Interaction::Read, Some("Observation"))
    );
    let r = classify(Method::Get, "Patient/p%0A1");
    assert!(
        r.problem.is_some(),
        "a control character after decoding is not an id"
    );
    let decodes_to_space = Some("URL path decodes to whitespace or control characters");
    let r = classify(Method::Get, "Patient/p%201");
    assert_eq!(r.problem.as_deref(), decodes_to_space);
    // Only the decoded path is judged: an encoded `?` ends it, what follows is the query.
    let r = classify(Method::Get, "Patient%3F%20x");
    assert_ne!(r.problem.as_deref(), decodes_to_space);
}
