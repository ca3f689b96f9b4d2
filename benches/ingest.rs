//! Parse + classify throughput of canonical access events on one core.
//! Run: `cargo bench --bench ingest`. Criterion prints events/s (elements) and MB/s (bytes).

use std::hint::black_box;
use std::io::Cursor;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use scopewatch::event::{parse_event, Event};
use scopewatch::ingest::{DeadLetterWriter, IngestOptions, Ingestor, LineReader, Source};
use scopewatch::smart::request::classify;

#[path = "common.rs"]
mod common;

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
    g.bench_function("ingest_classify", |b| {
        b.iter(|| {
            let mut ingestor = Ingestor::new(
                IngestOptions::default(),
                DeadLetterWriter::new(Box::new(std::io::sink())),
            );
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
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
