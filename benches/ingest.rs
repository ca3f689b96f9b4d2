//! Parse + classify throughput of canonical access events on one core, and decoding
//! throughput of FHIR AuditEvent (BALP-style REST records) NDJSON.
//! Run: `cargo bench --bench ingest`. Criterion prints events/s (elements) and MB/s (bytes).

use std::hint::black_box;
use std::io::Cursor;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use scopewatch::event::{parse_event, Event};
use scopewatch::ingest::format::{decode_line, DecodeOptions, Decoded, InputFormat};
use scopewatch::ingest::{DeadLetterWriter, IngestOptions, Ingestor, LineReader, Source};
use scopewatch::smart::request::classify;

#[path = "common.rs"]
mod common;
#[path = "../tests/support/convert.rs"]
mod convert;

const EVENTS: usize = 100_000;

fn parse_and_classify(lines: &[String]) -> usize {
    let mut patient_level = 0;
    for line in lines {
        if let Ok(Event::Access(a)) = parse_event(line.as_bytes()) {
            let r = classify(a.method, &a.url);
            patient_level += usize::from(!r.is_population_level());
        }
    }
    patient_level
}

fn bench(c: &mut Criterion) {
    let lines = common::access_lines(EVENTS);
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    let ndjson: Vec<u8> = lines
        .iter()
        .flat_map(|l| l.bytes().chain(std::iter::once(b'\n')))
        .collect();

    for (name, throughput) in [
        ("events", Throughput::Elements(EVENTS as u64)),
        ("bytes", Throughput::Bytes(bytes as u64)),
    ] {
        let mut g = c.benchmark_group(format!("access_{name}"));
        g.throughput(throughput);
        g.sample_size(20);
        g.bench_function("parse", |b| {
            b.iter(|| {
                lines
                    .iter()
                    .filter(|l| parse_event(black_box(l.as_bytes())).is_ok())
                    .count()
            })
        });
        g.bench_function("parse_classify", |b| {
            b.iter(|| parse_and_classify(black_box(&lines)))
        });
        g.bench_function("lines_parse_classify", |b| {
            b.iter(|| {
                let mut reader = LineReader::new(Cursor::new(black_box(&ndjson)), 1 << 20);
                let mut n = 0usize;
                while let Ok(Some(line)) = reader.next_line() {
                    if let Ok(Event::Access(a)) = parse_event(line.bytes) {
                        n += usize::from(classify(a.method, &a.url).resource_type.is_some());
                    }
                }
                n
            })
        });
        g.finish();
    }

    // The whole file path (open, gzip sniffing, counting, dead-letter writer) from a temp file.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.ndjson");
    std::fs::write(&path, &ndjson).expect("write");
    let source = Source::File(path);
    let mut g = c.benchmark_group("ingest_file");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.sample_size(20);
    for (name, format) in [
        ("ingest_classify", InputFormat::Auto),
        ("ingest_classify_format_ndjson", InputFormat::Canonical),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut ingestor = ingestor(&format);
                let mut n = 0usize;
                ingestor
                    .ingest(&source, &mut |e, _| {
                        if let Event::Access(a) = e {
                            n += usize::from(classify(a.method, &a.url).resource_type.is_some());
                        }
                    })
                    .expect("ingest");
                n
            })
        });
    }
    g.finish();
    bench_auditevent(c);
    same_traffic(c);
}

/// An ingestor reading `format`, its dead letters discarded.
fn ingestor(format: &InputFormat) -> Ingestor {
    Ingestor::new(
        IngestOptions {
            decode: DecodeOptions {
                format: format.clone(),
                ..DecodeOptions::default()
            },
            ..IngestOptions::default()
        },
        DeadLetterWriter::new(Box::new(std::io::sink())),
    )
}

/// Events/s of the whole file path (`Ingestor`: lines, decode, counts) over `path`, best of 5.
fn file_events_per_second(path: &std::path::Path, format: InputFormat, expect: usize) -> f64 {
    let source = Source::File(path.to_path_buf());
    let mut best = f64::MAX;
    for _ in 0..5 {
        let mut ingestor = ingestor(&format);
        let started = std::time::Instant::now();
        let mut n = 0usize;
        ingestor
            .ingest(&source, &mut |e, _| {
                n += usize::from(black_box(&e).time().0 > 0)
            })
            .expect("ingest");
        best = best.min(started.elapsed().as_secs_f64());
        assert_eq!(n, expect);
    }
    expect as f64 / best
}

/// Issue #15's goal: the same accesses as canonical NDJSON and as BALP AuditEvents (one per
/// line, written by tests/support/convert.rs as a FHIR server's audit export would), read
/// through the same file path. Prints both rates and their ratio (goal: at most 1.5).
fn same_traffic(c: &mut Criterion) {
    let lines = common::access_lines(EVENTS);
    let audit: Vec<String> = lines
        .iter()
        .flat_map(|l| convert::access_to_balp(&serde_json::from_str(l).expect("json")))
        .collect();
    assert_eq!(
        audit.len(),
        EVENTS,
        "one AuditEvent per access (one patient each)"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let canonical_path = dir.path().join("canonical.ndjson");
    let audit_path = dir.path().join("audit.ndjson");
    std::fs::write(&canonical_path, lines.join("\n") + "\n").expect("write");
    std::fs::write(&audit_path, audit.join("\n") + "\n").expect("write");
    let canonical = file_events_per_second(&canonical_path, InputFormat::Canonical, EVENTS);
    let balp = file_events_per_second(&audit_path, InputFormat::AuditEvent, EVENTS);
    let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len()) as f64 / 1e6;
    println!(
        "same traffic, {EVENTS} accesses: canonical NDJSON {canonical:.0} events/s ({:.1} MB), BALP AuditEvent {balp:.0} events/s ({:.1} MB); canonical/AuditEvent = {:.2} (goal <= 1.5)",
        size(&canonical_path),
        size(&audit_path),
        canonical / balp
    );
    let mut g = c.benchmark_group("same_traffic");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.sample_size(10);
    for (name, path, format) in [
        ("canonical", &canonical_path, InputFormat::Canonical),
        ("balp_auditevent", &audit_path, InputFormat::AuditEvent),
    ] {
        let source = Source::File(path.clone());
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut ingestor = ingestor(&format);
                let mut n = 0usize;
                ingestor
                    .ingest(&source, &mut |_, _| n += 1)
                    .expect("ingest");
                n
            })
        });
    }
    g.finish();
}

/// BALP-style REST AuditEvents (client application agent, OAuth user agent with the jti,
/// data and patient entities), one per line, as a FHIR server's audit export writes them.
fn audit_event_lines(n: usize) -> Vec<String> {
    let types = [
        "Observation",
        "Condition",
        "MedicationRequest",
        "DocumentReference",
    ];
    (0..n)
        .map(|i| {
            let ty = types[i % types.len()];
            format!(
                concat!(
                    r#"{{"resourceType":"AuditEvent","id":"ae-{i}","type":{{"system":"http://terminology.hl7.org/CodeSystem/audit-event-type","code":"rest"}},"#,
                    r#""subtype":[{{"system":"http://hl7.org/fhir/restful-interaction","code":"read"}}],"action":"R","recorded":"2024-03-05T09:{m:02}:{s:02}.{ms:03}Z","outcome":"0","#,
                    r#""agent":[{{"type":{{"coding":[{{"system":"http://dicom.nema.org/resources/ontology/DCM","code":"110150"}}]}},"who":{{"identifier":{{"value":"app-{app}"}}}},"requestor":false,"network":{{"address":"10.0.{app}.7","type":"2"}}}},"#,
                    r#"{{"type":{{"coding":[{{"system":"http://terminology.hl7.org/CodeSystem/v3-ParticipationType","code":"IRCP"}}]}},"who":{{"identifier":{{"system":"https://auth.example.org","value":"user-{user}"}}}},"requestor":true,"policy":["urn:ietf:params:oauth:jti:tok-{tok}"],"#,
                    r#""purposeOfUse":[{{"coding":[{{"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"TREAT"}}]}}]}}],"#,
                    r#""source":{{"observer":{{"reference":"Device/fhir-server"}}}},"#,
                    r#""entity":[{{"what":{{"reference":"{ty}/r{i}"}},"type":{{"code":"2"}},"role":{{"code":"4"}}}},{{"what":{{"reference":"Patient/pat-{pat}"}},"type":{{"code":"1"}},"role":{{"code":"1"}}}}]}}"#
                ),
                i = i,
                m = (i / 60) % 60,
                s = i % 60,
                ms = i % 1000,
                app = i % 7,
                user = i % 40,
                tok = i / 50,
                ty = ty,
                pat = i % 997,
            )
        })
        .collect()
}

fn bench_auditevent(c: &mut Criterion) {
    const AUDIT_EVENTS: usize = 20_000;
    let lines = audit_event_lines(AUDIT_EVENTS);
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    for (name, format) in [
        ("format_auditevent", InputFormat::AuditEvent),
        ("format_auto", InputFormat::Auto),
    ] {
        let options = DecodeOptions {
            format,
            ..DecodeOptions::default()
        };
        for (unit, throughput) in [
            ("events", Throughput::Elements(AUDIT_EVENTS as u64)),
            ("bytes", Throughput::Bytes(bytes as u64)),
        ] {
            let mut g = c.benchmark_group(format!("auditevent_{unit}"));
            g.throughput(throughput);
            g.sample_size(20);
            g.bench_function(name, |b| {
                b.iter(|| {
                    let mut accepted = 0usize;
                    for line in &lines {
                        decode_line(black_box(line), &options, &mut |d| {
                            accepted += usize::from(matches!(d, Decoded::Event(_)));
                        });
                    }
                    assert_eq!(accepted, AUDIT_EVENTS);
                    accepted
                })
            });
            g.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
