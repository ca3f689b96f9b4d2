//! Shared generator of realistic canonical access lines for the benchmarks.

/// `n` access-event lines (~300 bytes each), a realistic mix of reads, searches and operations.
pub fn access_lines(n: usize) -> Vec<String> {
    const URLS: [&str; 8] = [
        "Observation?patient=pat-{i}&category=vital-signs&_count=50",
        "Patient/pat-{i}",
        "https://ehr.example.org/fhir/r4/MedicationRequest?patient=Patient/pat-{i}&status=active",
        "Patient/pat-{i}/Condition?clinical-status=active",
        "Encounter?patient=pat-{i}&date=ge2024-01-01",
        "DocumentReference/doc-{i}",
        "Observation?code=http://loinc.org|2345-7&_count=200",
        "?_getpages=5a3f-{i}&_getpagesoffset=40&_count=20",
    ];
    (0..n)
        .map(|i| {
            let url = URLS[i % URLS.len()].replace("{i}", &(i % 5000).to_string());
            format!(
                r#"{{"type":"access","time":"2024-03-{:02}T{:02}:{:02}:{:02}.{:03}Z","client_id":"app-{}","user":"Practitioner/dr-{}","source_ip":"10.0.{}.{}","method":"GET","url":"{url}","status":200,"token_id":"tok-{:06}","resources_returned":{},"bytes":{},"patient":"pat-{}","purpose_of_use":"TREAT"}}"#,
                1 + i % 28,
                i % 24,
                i % 60,
                (i / 60) % 60,
                i % 1000,
                i % 12,
                i % 40,
                i % 256,
                (i / 256) % 256,
                i % 100_000,
                i % 50,
                1000 + (i * 37) % 60_000,
                i % 5000
            )
        })
        .collect()
}
