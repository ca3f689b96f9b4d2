//! Real log formats → canonical events (issue #5). Every fixture in tests/fixtures/formats
//! (official HL7 FHIR R4/R5 and IHE BALP AuditEvent examples, Keycloak listener lines; origin
//! and licence in its MANIFEST.tsv) is read and its canonical event, skip reason or
//! dead-letter reason asserted field by field.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use scopewatch::event::Event;
use scopewatch::ingest::format::{DecodeOptions, GatewayMapping, InputFormat, KeycloakOptions};
use scopewatch::ingest::{
    expand_inputs, DeadLetter, DeadLetterWriter, IngestOptions, IngestSummary, Ingestor,
};
use serde_json::{json, Value};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/formats")
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Read {
    events: Vec<Value>,
    summary: IngestSummary,
    dead: Vec<DeadLetter>,
}

fn read(inputs: &[PathBuf], format: InputFormat, log_date: Option<&str>) -> Read {
    let names: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    let (sources, _) = expand_inputs(&names).expect("inputs");
    let sink = Shared::default();
    let options = IngestOptions {
        decode: DecodeOptions {
            format,
            keycloak: KeycloakOptions {
                log_date: log_date.map(|d| {
                    scopewatch::event::Timestamp::parse_rfc3339(&format!("{d}T00:00:00Z"))
                        .expect("date")
                }),
            },
        },
        ..IngestOptions::default()
    };
    let mut ingestor = Ingestor::new(options, DeadLetterWriter::new(Box::new(sink.clone())));
    let mut events = Vec::new();
    for s in &sources {
        ingestor
            .ingest(s, &mut |e: Event, _| {
                events.push(serde_json::to_value(&e).expect("json"))
            })
            .expect("ingest");
    }
    let summary = ingestor.finish().expect("finish");
    let bytes = sink.0.lock().expect("lock").clone();
    let dead = String::from_utf8(bytes)
        .expect("utf8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("dead letter"))
        .collect();
    Read {
        events,
        summary,
        dead,
    }
}

fn one_event(path: &str) -> Value {
    let r = read(&[fixtures().join(path)], InputFormat::AuditEvent, None);
    assert_eq!(r.dead, vec![], "{path}");
    assert_eq!(r.events.len(), 1, "{path}: {:?}", r.summary);
    r.events.into_iter().next().expect("event")
}

fn skip_reason(path: &str) -> String {
    let r = read(&[fixtures().join(path)], InputFormat::AuditEvent, None);
    assert!(r.events.is_empty() && r.dead.is_empty(), "{path}");
    let s = &r.summary.sources[0];
    assert_eq!((s.read, s.skipped), (1, 1), "{path}");
    s.skipped_by_reason.keys().next().expect("reason").clone()
}

#[test]
fn r4_core_rest_examples_map_to_access_events() {
    assert_eq!(
        one_event("auditevent-r4/AuditEvent-example-rest.json"),
        json!({"type":"access","time":"2013-06-20T23:42:24.000000Z","client_id":"2.16.840.1.113883.4.2",
               "user":"95","method":"GET","url":"Patient/example/_history/1","status":200})
    );
    // The query entity is base64 of the request URL.
    assert_eq!(
        one_event("auditevent-r4/AuditEvent-example-search.json"),
        json!({"type":"access","time":"2015-08-22T23:42:24.000000Z","client_id":"2.16.840.1.113883.4.2",
               "user":"95","method":"GET",
               "url":"http://fhir-dev.healthintersections.com.au/open/Encounter?participant=13","status":200})
    );
}

#[test]
fn r4_core_examples_that_are_not_rest_access_are_skipped_with_their_type() {
    for (file, reason) in [
        (
            "AuditEvent-example.json",
            "(type 110100 Application Activity)",
        ),
        (
            "AuditEvent-example-login.json",
            "(type 110114 User Authentication)",
        ),
        (
            "AuditEvent-example-logout.json",
            "(type 110114 User Authentication)",
        ),
        ("AuditEvent-example-disclosure.json", "(type 110106 Export)"),
        ("AuditEvent-example-media.json", "(type 110106 Export)"),
        ("AuditEvent-example-pixQuery.json", "(type 110112 Query)"),
    ] {
        let r = skip_reason(&format!("auditevent-r4/{file}"));
        assert_eq!(
            r,
            format!("AuditEvent is not a RESTful access or token event {reason}"),
            "{file}"
        );
    }
}

#[test]
fn r4_failed_create_without_a_resource_is_dead_lettered_with_the_missing_element() {
    let r = read(
        &[fixtures().join("auditevent-r4/AuditEvent-example-error.json")],
        InputFormat::AuditEvent,
        None,
    );
    assert!(r.events.is_empty());
    assert_eq!(r.dead.len(), 1);
    assert_eq!(r.dead[0].line, Some(1));
    assert_eq!(
        r.dead[0].reason,
        "AuditEvent has no entity naming the resource (rest create: no `what` reference or `query`)"
    );
    assert!(r.dead[0].raw.contains("\"example-error\""));
}

#[test]
fn r5_examples_read_the_renamed_elements() {
    // R5: category/code instead of type/subtype, outcome as an object.
    assert_eq!(
        one_event("auditevent-r5/AuditEvent-example-search.json"),
        json!({"type":"access","time":"2015-08-22T23:42:24.000000Z","client_id":"2.16.840.1.113883.4.2",
               "user":"95","method":"GET",
               "url":"http://fhir-dev.healthintersections.com.au/open/Encounter?participant=13","status":200})
    );
    assert_eq!(
        skip_reason("auditevent-r5/AuditEvent-example-disclosure.json"),
        "AuditEvent is not a RESTful access or token event (type 110106 Export)"
    );
    assert_eq!(
        skip_reason("auditevent-r5/AuditEvent-example-consent-permit-authz.json"),
        "AuditEvent is not a RESTful access or token event (type 110112 Query)"
    );
}

#[test]
fn balp_examples_map_client_user_patient_token_and_request() {
    let ip = "2001:0db8:85a3:0000:0000:8a2e:0370:7334";
    assert_eq!(
        one_event("balp/AuditEvent-ex-auditBasicCreateNoUserReport.json"),
        json!({"type":"access","time":"2020-04-29T09:49:00.000000Z","client_id":"myMachine.example.org",
               "source_ip":ip,"method":"POST","url":"DocumentReference","status":201,"patient":"ex-patient"})
    );
    // Delete: the client is the 110150 Application agent; the AUT agent is the user.
    assert_eq!(
        one_event("balp/AuditEvent-ex-auditBasicDeleteNoPatient.json"),
        json!({"type":"access","time":"2020-04-06T09:49:00.000000Z","client_id":"myMachine.example.org",
               "user":"John Smith","source_ip":ip,"method":"DELETE","url":"MeasureReport/ex-measurereport","status":200})
    );
    // Query: the request line comes from the base64 query entity (method and URL).
    assert_eq!(
        one_event("balp/AuditEvent-ex-auditBasicQueryGetServer.json"),
        json!({"type":"access","time":"2020-04-29T09:49:00.000000Z","client_id":"myMachine.example.org",
               "user":"John Smith","source_ip":ip,"method":"GET",
               "url":"https://test.fhir.org/r4/Observation?patient=ex-patient&_lastUpdated=gt2020-11-06T21:52:30.300Z&_sort=_lastUpdated&_count=10",
               "status":200,"patient":"ex-patient"})
    );
    // Read: data flows to the client, so the client is the 110152 Destination agent.
    assert_eq!(
        one_event("balp/AuditEvent-ex-auditBasicReadClient.json"),
        json!({"type":"access","time":"2020-04-29T09:49:00.000000Z","client_id":"myMachine.example.org",
               "user":"John Smith","source_ip":ip,"method":"GET","url":"List/ex-list","status":200,"patient":"ex-patient"})
    );
    assert_eq!(
        one_event("balp/AuditEvent-ex-auditBasicReadNoPatient.json"),
        json!({"type":"access","time":"2020-04-29T09:49:00.000000Z","client_id":"myMachine.example.org",
               "user":"John Smith","source_ip":ip,"method":"GET","url":"MeasureReport/ex-measurereport","status":200})
    );
    // OAuth Minimal: the token id is the OAuth user agent's policy.
    assert_eq!(
        one_event("balp/AuditEvent-ex-auditBasicReadOServerMin.json"),
        json!({"type":"access","time":"2020-04-29T09:49:00.000000Z","client_id":"myMachine.example.org",
               "source_ip":ip,"method":"GET","url":"List/ex-list","status":200,
               "token_id":"C187CC480FAC40A0936902D8BC324F5F","patient":"ex-patient"})
    );
    // Privacy disclosure with a REST read: purpose of use from purposeOfEvent; the requestor
    // is the patient's advocate (Patient/…), which must not become `user`.
    assert_eq!(
        one_event("balp/AuditEvent-ex-auditPrivacyDisclosure-source.json"),
        json!({"type":"access","time":"2020-04-29T09:49:00.000000Z","client_id":"myMachine.example.org",
               "method":"GET","url":"DocumentReference/ex-documentreference","status":200,
               "patient":"ex-patient","purpose_of_use":"PATRQT"})
    );
}

#[test]
fn keycloak_listener_lines_map_to_token_events_and_the_rest_is_counted() {
    let file =
        fixtures().join("keycloak/kill9zombie-keycloak_jsonlog_eventlistener-README-examples.log");
    let r = read(
        std::slice::from_ref(&file),
        InputFormat::Keycloak,
        Some("2020-01-15"),
    );
    assert_eq!(r.dead, vec![]);
    assert_eq!(
        r.events,
        vec![
            json!({"type":"token","event":"issued","time":"2020-01-15T15:58:08.312000Z",
                    "client_id":"security-admin-console","user":"804807dd-c991-4712-8ec1-c6d4ff3f0e73",
                    "source_ip":"172.17.0.1","token_id":"733a2efb-4094-4dc1-90a4-194858ce08b0",
                    "grant_type":"authorization_code","scope_granted":"openid profile email"})
        ]
    );
    let s = &r.summary.sources[0];
    assert_eq!(
        (s.read, s.accepted, s.skipped, s.dead_lettered),
        (6, 1, 5, 0)
    );
    assert_eq!(
        s.skipped_by_reason["Keycloak admin event (not a token event)"],
        3
    );
    assert_eq!(
        s.skipped_by_reason["Keycloak event type LOGOUT is not a token event"],
        1
    );

    // Without a date, the console prefix's time of day is not enough: the token event is
    // dead-lettered saying so, never dated by guess.
    let r = read(&[file], InputFormat::Auto, None);
    assert_eq!(r.events.len(), 0);
    assert_eq!(r.dead.len(), 1);
    assert_eq!(r.dead[0].line, Some(4));
    assert!(
        r.dead[0].reason.contains("need --log-date"),
        "{}",
        r.dead[0].reason
    );
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

/// A BALP-style REST AuditEvent with the OAuth "comprehensive" agents (client id, jti).
fn audit_event(
    time: &str,
    client: &str,
    jti: &str,
    interaction: &str,
    what: &str,
    patient: &str,
) -> Value {
    json!({
        "resourceType": "AuditEvent",
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": interaction}],
        "action": "R", "recorded": time, "outcome": "0",
        "agent": [
            {"type": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110150"}]},
             "who": {"identifier": {"value": client}}, "requestor": false,
             "network": {"address": "10.20.30.40", "type": "2"}},
            {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
             "who": {"identifier": {"system": "https://auth.example.org", "value": "dr-jones"}},
             "requestor": true,
             "policy": if jti.is_empty() { vec![] } else { vec![format!("urn:ietf:params:oauth:jti:{jti}")] },
             "purposeOfUse": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}]}]}
        ],
        "source": {"observer": {"reference": "Device/fhir-server"}},
        "entity": [
            {"what": {"reference": what}, "type": {"code": "2"}, "role": {"code": "4"}},
            {"what": {"reference": format!("Patient/{patient}")}, "type": {"code": "1"}, "role": {"code": "1"}}
        ]
    })
}

#[test]
fn bundles_and_pretty_printed_documents_count_each_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let entries = vec![
        json!({"resource": audit_event("2024-03-05T09:00:00Z", "app", "j1", "read", "Observation/o1", "p1")}),
        json!({"resource": {"resourceType": "OperationOutcome"}}),
        json!({"resource": {"resourceType": "AuditEvent", "recorded": "2024-03-05T09:01:00Z",
                            "type": {"code": "rest"}, "agent": []}}),
        json!({"fullUrl": "urn:uuid:x"}),
    ];
    let bundle = json!({"resourceType": "Bundle", "type": "searchset", "entry": entries});
    let pretty_text = serde_json::to_string_pretty(&bundle).expect("json");
    // In a pretty-printed Bundle each entry is read (and dead-lettered) on its own lines.
    let entry_lines: Vec<u64> = (1..)
        .zip(pretty_text.lines())
        .filter(|(_, l)| *l == "    {")
        .map(|(n, _)| n)
        .collect();
    assert_eq!(entry_lines.len(), 4, "{pretty_text}");
    let pretty = write(dir.path(), "bundle.json", &pretty_text);
    let ndjson = write(
        dir.path(),
        "bundle.ndjson",
        &format!(
            "{}\n{}\n",
            bundle,
            audit_event(
                "2024-03-05T09:05:00Z",
                "app",
                "j2",
                "vread",
                "Patient/p2/_history/3",
                "p2"
            )
        ),
    );
    for path in [pretty, ndjson.clone()] {
        let r = read(std::slice::from_ref(&path), InputFormat::Auto, None);
        let s = &r.summary.sources[0];
        let extra = u64::from(path == ndjson);
        assert_eq!(
            (s.read, s.accepted, s.skipped, s.dead_lettered),
            (4 + extra, 1 + extra, 1, 2),
            "{}",
            path.display()
        );
        assert_eq!(r.events[0]["token_id"], "j1");
        assert_eq!(r.events[0]["user"], "dr-jones");
        assert_eq!(r.events[0]["purpose_of_use"], "TREAT");
        assert_eq!(r.events[0]["url"], "Observation/o1");
        let reasons: Vec<&str> = r.dead.iter().map(|d| d.reason.as_str()).collect();
        assert_eq!(
            reasons,
            vec![
                "Bundle entry 3: AuditEvent has no agent with a client identifier (DICOM 110150, 110153 or 110152 with who.identifier or who.display)",
                "Bundle entry 4 has no resource",
            ]
        );
        let lines: Vec<Option<u64>> = r.dead.iter().map(|d| d.line).collect();
        if extra == 1 {
            assert_eq!(lines, [Some(1), Some(1)], "the NDJSON Bundle is line 1");
        } else {
            assert_eq!(lines, [Some(entry_lines[2]), Some(entry_lines[3])]);
        }
        assert_eq!(
            s.skipped_by_reason.keys().collect::<Vec<_>>(),
            vec!["FHIR OperationOutcome resource is not an AuditEvent"]
        );
        if extra == 1 {
            assert_eq!(r.events[1]["url"], "Patient/p2/_history/3");
        }
    }
}

/// A pretty-printed array of AuditEvents read with `--input-format auto` (it was one
/// `not_an_object` reject), and a large Bundle, are decoded element by element: every element
/// is counted and a bad one is dead-lettered alone, naming its own line.
#[test]
fn pretty_printed_arrays_and_bundles_are_read_element_by_element() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = |i: usize| {
        audit_event(
            &format!("2024-03-05T09:{:02}:00Z", i % 60),
            "app",
            &format!("j{i}"),
            "read",
            "Observation/o1",
            "p1",
        )
    };
    let mut items: Vec<Value> = (0..300).map(good).collect();
    items[150] = json!({"resourceType": "AuditEvent", "recorded": "2024-03-05T09:01:00Z",
                        "type": {"code": "rest"}, "agent": []});
    let text = serde_json::to_string_pretty(&items).expect("json");
    let array = write(dir.path(), "array.json", &text);
    let r = read(&[array], InputFormat::Auto, None);
    let s = &r.summary.sources[0];
    assert_eq!((s.read, s.accepted, s.dead_lettered), (300, 299, 1));
    let element_lines: Vec<u64> = (1..)
        .zip(text.lines())
        .filter(|(_, l)| *l == "  {")
        .map(|(n, _)| n)
        .collect();
    assert_eq!(r.dead[0].line, Some(element_lines[150]));
    assert!(r.dead[0].raw.len() < 1024, "only the bad element is kept");

    let entries: Vec<Value> = (0..300).map(|i| json!({"resource": good(i)})).collect();
    let bundle = json!({"entry": entries, "resourceType": "Bundle", "type": "collection"});
    let path = write(
        dir.path(),
        "bundle.json",
        &serde_json::to_string_pretty(&bundle).expect("json"),
    );
    let r = read(&[path], InputFormat::AuditEvent, None);
    let s = &r.summary.sources[0];
    assert_eq!((s.read, s.accepted, s.dead_lettered), (300, 300, 0));
    assert_eq!(r.events[299]["token_id"], "j299");
}

#[test]
fn a_broken_document_names_its_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "broken.json",
        "{\n  \"resourceType\": \"Bundle\",\n  \"entry\": [\n    {\"resource\": }\n  ]\n}\n",
    );
    let r = read(&[path], InputFormat::AuditEvent, None);
    assert_eq!(r.dead.len(), 1);
    assert_eq!(r.dead[0].line, Some(1));
    assert!(
        r.dead[0]
            .reason
            .starts_with("invalid JSON at line 4, column 18"),
        "{}",
        r.dead[0].reason
    );
    assert_eq!(r.summary.sources[0].read, 1);
}

#[test]
fn gateway_logs_read_through_the_built_in_mappings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nginx = write(
        dir.path(),
        "access.log",
        concat!(
            r#"{"time_iso8601":"2024-03-05T10:00:00+01:00","remote_addr":"10.1.2.3","remote_user":"","request_method":"GET","request_uri":"/fhir/Observation?patient=p1","status":"200","body_bytes_sent":"5120","http_user_agent":"curl/8","request_id":"r1","client_id":"growth-chart","token_jti":"t-1"}"#,
            "\n",
            r#"{"time_iso8601":"2024-03-05T10:00:01+01:00","remote_addr":"10.1.2.3","request_method":"GET","request_uri":"/fhir/Patient/p1","status":"200","body_bytes_sent":"100","client_id":"-"}"#,
            "\n"
        ),
    );
    let mapping = Arc::new(GatewayMapping::load("nginx").expect("nginx"));
    let r = read(&[nginx], InputFormat::Gateway(mapping), None);
    assert_eq!(
        r.events,
        vec![
            json!({"type":"access","time":"2024-03-05T09:00:00.000000Z","client_id":"growth-chart",
                    "source_ip":"10.1.2.3","user_agent":"curl/8","method":"GET",
                    "url":"Observation?patient=p1","status":200,"token_id":"t-1","bytes":5120})
        ]
    );
    assert_eq!(r.dead.len(), 1);
    assert_eq!(r.dead[0].line, Some(2));
    assert_eq!(
        r.dead[0].reason,
        "gateway record has no client_id (field 'client_id' in the mapping)"
    );

    let envoy = write(
        dir.path(),
        "envoy.ndjson",
        concat!(
            r#"{"start_time":"2024-03-05T09:00:00.120Z","method":"GET","path":"/fhir/Condition?patient=p7","response_code":200,"bytes_sent":812,"x_forwarded_for":"203.0.113.9","user_agent":"okhttp","request_id":"q","jwt":{"client_id":"sync-svc","jti":"j-9","sub":"u-4","patient":"p7"}}"#,
            "\n"
        ),
    );
    let mapping = Arc::new(GatewayMapping::load("envoy").expect("envoy"));
    let r = read(&[envoy], InputFormat::Gateway(mapping), None);
    assert_eq!(
        r.events,
        vec![
            json!({"type":"access","time":"2024-03-05T09:00:00.120000Z","client_id":"sync-svc",
                    "user":"u-4","source_ip":"203.0.113.9","user_agent":"okhttp","method":"GET",
                    "url":"Condition?patient=p7","status":200,"token_id":"j-9","bytes":812,"patient":"p7"})
        ]
    );
}

fn scopewatch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scopewatch"))
}

#[test]
fn validate_reads_each_format_from_the_command_line() {
    let out = scopewatch()
        .args(["validate", "--input-format", "auditevent", "--summary", "-"])
        .arg(fixtures().join("balp"))
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).expect("summary");
    assert_eq!(summary["totals"]["accepted"], 7);
    assert_eq!(summary["events"]["access"], 7);

    let out = scopewatch()
        .args([
            "validate",
            "--input-format",
            "keycloak",
            "--log-date",
            "2020-01-15",
            "--summary",
            "-",
        ])
        .arg(fixtures().join("keycloak"))
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).expect("summary");
    assert_eq!(summary["totals"]["skipped"], 5);
    assert_eq!(summary["events"]["token"], 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("skipped: Keycloak admin event (not a token event): 3"),
        "{stderr}"
    );

    // Flags that do not fit together are refused before anything is read.
    let out = scopewatch()
        .args(["validate", "--input-format", "gateway"])
        .arg(fixtures().join("balp"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a mapping: --mapping"));
    let out = scopewatch()
        .args(["validate", "--mapping", "/nonexistent/m.toml", "-"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot read mapping /nonexistent/m.toml")
    );
}

/// Keycloak issues tokens with scopes, the FHIR server audits accesses with the token's jti:
/// detect joins them by token id, so an access the granted scopes do not cover is an
/// enforcement gap of that app, in that hour, naming that token.
#[test]
fn keycloak_tokens_and_auditevent_accesses_join_in_detect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("mkdir");
    let keycloak = [
        json!({"time": 1_709_629_200_000_i64, "type": "CODE_TO_TOKEN", "realmId": "ehr", "clientId": "growth-chart",
               "userId": "dr-jones", "ipAddress": "10.20.30.40", "details": {"token_id": "jti-a", "grant_type": "authorization_code",
               "scope": "launch/patient patient/Observation.rs"}}),
        json!({"time": 1_709_629_260_000_i64, "type": "CODE_TO_TOKEN", "realmId": "ehr", "clientId": "med-rec",
               "userId": "dr-lee", "ipAddress": "10.20.30.41", "details": {"token_id": "jti-b", "grant_type": "authorization_code",
               "scope": "launch/patient patient/MedicationRequest.rs patient/Observation.rs"}}),
    ];
    write(
        &logs,
        "keycloak-events.log",
        &keycloak
            .iter()
            .map(|v| format!("{v}\n"))
            .collect::<String>(),
    );
    let audits = [
        audit_event(
            "2024-03-05T09:05:00Z",
            "growth-chart",
            "jti-a",
            "read",
            "Observation/o1",
            "p1",
        ),
        // Not covered by jti-a's scopes: growth-chart reads a MedicationRequest.
        audit_event(
            "2024-03-05T09:20:00Z",
            "growth-chart",
            "jti-a",
            "read",
            "MedicationRequest/m1",
            "p1",
        ),
        // Covered by jti-b: med-rec's read is fine.
        audit_event(
            "2024-03-05T09:21:00Z",
            "med-rec",
            "jti-b",
            "read",
            "MedicationRequest/m2",
            "p2",
        ),
        // No token id recorded: joined by client id to med-rec's only live token, whose
        // scopes do not cover Condition.
        audit_event(
            "2024-03-05T09:40:00Z",
            "med-rec",
            "",
            "read",
            "Condition/c1",
            "p2",
        ),
    ];
    write(
        &logs,
        "fhir-audit.ndjson",
        &audits.iter().map(|v| format!("{v}\n")).collect::<String>(),
    );
    let alerts = dir.path().join("alerts.ndjson");
    let out = scopewatch()
        .current_dir(dir.path())
        .args([
            "detect",
            "--no-history",
            "--summary",
            "summary.json",
            "--alerts",
        ])
        .arg(&alerts)
        .arg(&logs)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("summary.json")).expect("summary"),
    )
    .expect("json");
    assert_eq!(summary["ingest"]["totals"]["accepted"], 6, "{summary}");
    let alerts: Vec<Value> = std::fs::read_to_string(&alerts)
        .expect("alerts")
        .lines()
        .map(|l| serde_json::from_str(l).expect("alert"))
        .filter(|a: &Value| a["rule"] == "enforcement_gap")
        .collect();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(a["client_id"], "growth-chart");
    assert_eq!(a["category"], "scope_creep");
    assert!(
        a["window"]["start"]
            .as_str()
            .expect("start")
            .starts_with("2024-03-05T09:"),
        "{a}"
    );
    assert_eq!(a["evidence"]["token_ids"], json!(["jti-a"]));
    assert_eq!(a["observed"]["resource_type"], "MedicationRequest");
    let b = &alerts[1];
    assert_eq!(b["client_id"], "med-rec");
    assert_eq!(b["category"], "scope_creep");
    assert!(
        b["window"]["start"]
            .as_str()
            .expect("start")
            .starts_with("2024-03-05T09:"),
        "{b}"
    );
    assert_eq!(b["observed"]["resource_type"], "Condition");
}

/// The alerts `detect` writes for `inputs` (paths relative to `dir`), with its summary; the
/// run must succeed.
fn detect_alerts(dir: &Path, inputs: &[&str], extra: &[&str]) -> (Vec<Value>, Value) {
    let (alerts, summary, clean) = detect_run(dir, inputs, extra);
    assert!(clean, "{summary}");
    (alerts, summary)
}

/// As [`detect_alerts`], also saying whether the run exited 0.
fn detect_run(dir: &Path, inputs: &[&str], extra: &[&str]) -> (Vec<Value>, Value, bool) {
    let out = scopewatch()
        .current_dir(dir)
        .args([
            "detect",
            "--no-history",
            "--summary",
            "summary.json",
            "--alerts",
            "alerts.ndjson",
            "--dead-letter",
            "dead.ndjson",
        ])
        .args(extra)
        .args(inputs)
        .output()
        .expect("run");
    let alerts = std::fs::read_to_string(dir.join("alerts.ndjson"))
        .expect("alerts")
        .lines()
        .map(|l| serde_json::from_str(l).expect("alert"))
        .collect();
    let summary = std::fs::read_to_string(dir.join("summary.json")).expect("summary");
    let summary = serde_json::from_str(&summary).expect("summary json");
    (alerts, summary, out.status.success())
}

fn rules_of<'a>(alerts: &'a [Value], client: &str) -> Vec<&'a str> {
    let mut rules: Vec<&str> = alerts
        .iter()
        .filter(|a| a["client_id"] == client && a["activity"] == "create")
        .filter_map(|a| a["rule"].as_str())
        .collect();
    rules.sort_unstable();
    rules
}

fn keycloak_issue(ms: i64, client: &str, jti: &str, scope: &str) -> String {
    json!({"time": ms, "type": "CODE_TO_TOKEN", "realmId": "ehr", "clientId": client,
           "userId": "dr-jones", "details": {"token_id": jti, "grant_type": "authorization_code", "scope": scope}})
    .to_string()
}

/// A BALP AuditEvent whose request line is in BALP's own published form (host without a
/// scheme, ex-auditBasicQueryGetServer) and carries a URL inside its query.
fn balp_query(time: &str, client: &str, jti: &str, request_line: &str, patient: &str) -> Value {
    use base64::Engine as _;
    let mut ae = audit_event(time, client, jti, "search-type", "", patient);
    ae["entity"][0] = json!({
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2"},
        "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "24"},
        "query": base64::engine::general_purpose::STANDARD.encode(request_line)});
    ae
}

/// Issue #15: a Keycloak log, a BALP AuditEvent log and an nginx log in one run, each input
/// naming its format (`keycloak:`, `auditevent:`, `gateway+nginx:`), join by token id. The
/// BALP request line `GET host/r4/DocumentReference?…&type=http://loinc.org|…` (BALP 1.1.4's
/// host form, with a URL in the query) is classified, so a token holding only
/// `patient/Observation.rs` is an enforcement gap for that app; so is the nginx-logged
/// Condition search of the other app.
#[test]
fn keycloak_balp_and_nginx_inputs_each_read_in_their_own_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t0 = 1_709_629_200_000_i64; // 2024-03-05T09:00:00Z
    write(
        dir.path(),
        "kc.log",
        &format!(
            "{}\n{}\n",
            keycloak_issue(
                t0,
                "portal",
                "jti-p",
                "launch/patient patient/Observation.rs"
            ),
            keycloak_issue(t0, "sync", "jti-s", "user/Observation.rs")
        ),
    );
    let audits = [
        balp_query(
            "2024-03-05T09:05:00Z",
            "portal",
            "jti-p",
            "GET fhir.example-hospital.org/r4/Observation?patient=p1&code=http://loinc.org|8867-4",
            "p1",
        ),
        balp_query(
            "2024-03-05T09:06:00Z",
            "portal",
            "jti-p",
            "GET fhir.example-hospital.org/r4/DocumentReference?patient=p1&type=http://loinc.org|34117-2",
            "p1",
        ),
    ];
    write(
        dir.path(),
        "audit.ndjson",
        &audits.iter().map(|v| format!("{v}\n")).collect::<String>(),
    );
    write(
        dir.path(),
        "gw.log",
        concat!(
            r#"{"time_iso8601":"2024-03-05T09:10:00Z","remote_addr":"10.1.2.3","request_method":"GET","request_uri":"/fhir/Observation?code=8867-4","status":"200","body_bytes_sent":"512","client_id":"sync","token_jti":"jti-s"}"#,
            "\n",
            r#"{"time_iso8601":"2024-03-05T09:11:00Z","remote_addr":"10.1.2.3","request_method":"GET","request_uri":"/fhir/Condition?code=44054006","status":"200","body_bytes_sent":"512","client_id":"sync","token_jti":"jti-s"}"#,
            "\n"
        ),
    );
    let inputs = [
        "keycloak:kc.log",
        "auditevent:audit.ndjson",
        "gateway+nginx:gw.log",
    ];
    let (alerts, summary) = detect_alerts(dir.path(), &inputs, &[]);
    let totals = &summary["ingest"]["totals"];
    assert_eq!(
        (
            totals["accepted"].as_u64(),
            totals["dead_lettered"].as_u64()
        ),
        (Some(6), Some(0)),
        "{summary}"
    );
    let gap = |client: &str, resource: &str| {
        alerts.iter().any(|a| {
            a["client_id"] == client
                && a["rule"] == "enforcement_gap"
                && a["observed"]["resource_type"] == resource
        })
    };
    assert!(gap("portal", "DocumentReference"), "{alerts:#?}");
    assert!(!gap("portal", "Observation"), "{alerts:#?}");
    assert!(gap("sync", "Condition"), "{alerts:#?}");
    assert!(!gap("sync", "Observation"), "{alerts:#?}");

    // validate and sql --input read the same inputs the same way.
    let out = scopewatch()
        .current_dir(dir.path())
        .args(["validate", "--dead-letter", "vdead.ndjson"])
        .args(inputs)
        .output()
        .expect("validate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = scopewatch()
        .current_dir(dir.path())
        .args(["sql", "--output-format", "csv", "-c"])
        .arg("SELECT (SELECT count(*) FROM access) AS a, (SELECT count(*) FROM tokens) AS t")
        .arg("--input")
        .args(inputs)
        .output()
        .expect("sql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "a,t\n4,2");

    // The same files without prefixes: auto never guesses a gateway record, so the nginx lines
    // are dead-lettered (by reason), not read as something else.
    let (_, summary, clean) = detect_run(dir.path(), &["kc.log", "audit.ndjson", "gw.log"], &[]);
    assert!(!clean);
    assert_eq!(summary["ingest"]["totals"]["dead_lettered"], 2, "{summary}");
}

/// Issue #15: Keycloak logs no token lifetime. A token used 8 minutes after issue is not an
/// `expired_token_use` when nobody said how long it lived; with `--token-lifetime 300` (the
/// realm's Access Token Lifespan, Keycloak's default) it is.
#[test]
fn token_lifetime_is_configured_never_invented() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t0 = 1_709_629_200_000_i64;
    write(
        dir.path(),
        "kc.log",
        &format!(
            "{}\n",
            keycloak_issue(t0, "backend", "jti-b", "system/Observation.rs")
        ),
    );
    write(
        dir.path(),
        "gw.log",
        concat!(
            r#"{"time_iso8601":"2024-03-05T09:08:00Z","request_method":"GET","request_uri":"/fhir/Observation?code=1","status":"200","client_id":"backend","token_jti":"jti-b"}"#,
            "\n"
        ),
    );
    let inputs = ["keycloak:kc.log", "gateway+nginx:gw.log"];
    let (alerts, _) = detect_alerts(dir.path(), &inputs, &[]);
    assert!(
        !rules_of(&alerts, "backend").contains(&"expired_token_use"),
        "{alerts:#?}"
    );
    let (alerts, _) = detect_alerts(dir.path(), &inputs, &["--token-lifetime", "300"]);
    assert!(
        rules_of(&alerts, "backend").contains(&"expired_token_use"),
        "{alerts:#?}"
    );
    // A registry entry's lifetime stands for its client the same way.
    write(
        dir.path(),
        "apps.toml",
        "[[app]]\nclient_id = \"backend\"\ntoken_lifetime_seconds = 300\n",
    );
    let (alerts, _) = detect_alerts(dir.path(), &inputs, &["--registry", "apps.toml"]);
    assert!(
        rules_of(&alerts, "backend").contains(&"expired_token_use"),
        "{alerts:#?}"
    );
}

/// Issue #15 (SMART App Launch 2.x, launch context "patient": the token is bound to one
/// patient). Keycloak records no launch patient: the first patient a `launch/patient` token
/// names is presumed to be it, and a second one is an `enforcement_gap` whose evidence states
/// the presumption. BALP's one AuditEvent per patient of one request is folded into one event
/// whose `patient_count` of 2 is a cross-patient response too.
#[test]
fn presumed_launch_patient_and_balp_per_patient_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t0 = 1_709_629_200_000_i64;
    write(
        dir.path(),
        "kc.log",
        &format!(
            "{}\n{}\n",
            keycloak_issue(
                t0,
                "viewer",
                "jti-v",
                "launch/patient patient/Observation.rs"
            ),
            keycloak_issue(
                t0,
                "lister",
                "jti-l",
                "launch/patient patient/Observation.rs"
            )
        ),
    );
    let mut audits = vec![
        audit_event(
            "2024-03-05T09:01:00Z",
            "viewer",
            "jti-v",
            "read",
            "Observation/o1",
            "p1",
        ),
        audit_event(
            "2024-03-05T09:02:00Z",
            "viewer",
            "jti-v",
            "read",
            "Observation/o2",
            "p1",
        ),
        audit_event(
            "2024-03-05T09:03:00Z",
            "viewer",
            "jti-v",
            "read",
            "Observation/o9",
            "p2",
        ),
    ];
    // One search by lister, written by the server as one AuditEvent per patient it returned.
    for patient in ["p5", "p6", "p7"] {
        audits.push(balp_query(
            "2024-03-05T09:04:00Z",
            "lister",
            "jti-l",
            "GET fhir.example.org/r4/Observation?code=http://loinc.org|8867-4",
            patient,
        ));
    }
    write(
        dir.path(),
        "audit.ndjson",
        &audits.iter().map(|v| format!("{v}\n")).collect::<String>(),
    );
    let (alerts, summary) = detect_alerts(
        dir.path(),
        &["keycloak:kc.log", "auditevent:audit.ndjson"],
        &[],
    );
    let gap = alerts
        .iter()
        .find(|a| a["client_id"] == "viewer" && a["rule"] == "enforcement_gap")
        .unwrap_or_else(|| panic!("{alerts:#?}"));
    assert_eq!(gap["observed"]["launch_context"], "other-patient");
    assert!(
        gap["baseline"]["launch_patient"]
            .as_str()
            .is_some_and(|s| s.starts_with("presumed")),
        "{gap}"
    );
    assert_eq!(
        summary["detection"]["accesses_folded_into_one_request"], 2,
        "{summary}"
    );
    assert_eq!(summary["detection"]["accesses"], 4, "{summary}");
    assert!(
        alerts
            .iter()
            .any(|a| a["client_id"] == "lister"
                && a["observed"]["launch_context"] == "other-patient"),
        "{alerts:#?}"
    );
    let text = std::fs::read_to_string(dir.path().join("alerts.ndjson")).expect("alerts");
    for patient in ["p1", "p2", "p5", "p6", "p7"] {
        assert!(
            !text.contains(&format!("\"{patient}\"")),
            "{patient} in alerts"
        );
    }
}

/// 1 500 AuditEvent lines with blank, over-long, non-UTF-8 and invalid lines among them: the
/// events come in input order and every other line is counted or dead-lettered with its own
/// line number (a regression test for any batching of the decoder).
#[test]
fn batch_decoding_keeps_order_and_every_line_accounted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text: Vec<u8> = Vec::new();
    let mut expected_times = Vec::new();
    for n in 1..=1500u32 {
        match n {
            100 | 513 => text.extend_from_slice(b"   "),
            600 => text.extend_from_slice(b"{\"resourceType\":\"AuditEvent\",\"x\":\"\xff\"}"),
            1200 => text.extend_from_slice(&vec![b'x'; 5000]),
            1300 => text.extend_from_slice(b"{\"resourceType\":\"AuditEvent\","),
            _ => {
                let time = format!(
                    "2024-03-05T{:02}:{:02}:{:02}Z",
                    9 + n / 3600,
                    (n / 60) % 60,
                    n % 60
                );
                let ae = audit_event(&time, "app", "t", "read", "Observation/o1", "p1");
                text.extend_from_slice(ae.to_string().as_bytes());
                expected_times.push(time.replace('Z', ".000000Z"));
            }
        }
        text.push(b'\n');
    }
    let path = write(dir.path(), "audit.ndjson", "");
    std::fs::write(&path, &text).expect("write");
    let names = vec![path.display().to_string()];
    let (sources, _) = expand_inputs(&names).expect("inputs");
    let sink = Shared::default();
    let options = IngestOptions {
        max_line_bytes: 4096,
        decode: DecodeOptions {
            format: InputFormat::AuditEvent,
            ..DecodeOptions::default()
        },
        ..IngestOptions::default()
    };
    let mut ingestor = Ingestor::new(options, DeadLetterWriter::new(Box::new(sink.clone())));
    let mut times = Vec::new();
    let mut lines = Vec::new();
    ingestor
        .ingest(&sources[0], &mut |e: Event, p| {
            times.push(e.time().to_rfc3339());
            lines.push(p.line);
        })
        .expect("ingest");
    let summary = ingestor.finish().expect("finish");
    assert_eq!(times, expected_times, "input order");
    assert!(lines.windows(2).all(|w| w[0] < w[1]));
    let s = &summary.sources[0];
    assert_eq!(
        (s.read, s.accepted, s.dead_lettered, s.blank),
        (1498, 1495, 3, 2)
    );
    assert_eq!(s.bytes, text.len() as u64);
    let dead = String::from_utf8(sink.0.lock().expect("lock").clone()).expect("utf8");
    let dead_lines: Vec<u64> = dead
        .lines()
        .map(|l| {
            serde_json::from_str::<DeadLetter>(l)
                .expect("dead")
                .line
                .expect("line")
        })
        .collect();
    assert_eq!(dead_lines, vec![600, 1200, 1300]);
}
