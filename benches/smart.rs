//! Micro-benchmarks of the two grammars: scope-set normalisation and URL classification.
//! Run: `cargo bench --bench smart`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use scopewatch::smart::request::{classify, Method};
use scopewatch::smart::scope::{Context, Perms, ResourceTarget, ScopeSet};

#[path = "common.rs"]
mod common;

const SCOPE_STRINGS: [&str; 6] = [
    "launch/patient patient/Observation.rs patient/Patient.rs offline_access",
    "launch openid fhirUser offline_access user/*.rs",
    "system/*.read",
    "patient/Observation.read patient/Condition.read patient/MedicationRequest.read patient/Patient.read launch/patient openid fhirUser",
    "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory patient/Condition.rs?category=http://terminology.hl7.org/CodeSystem/condition-category|problem-list-item",
    "user/Appointment.cruds user/Slot.rs user/Schedule.rs user/Practitioner.rs",
];

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("scope");
    g.throughput(Throughput::Elements(SCOPE_STRINGS.len() as u64));
    g.bench_function("normalise_set", |b| {
        b.iter(|| {
            SCOPE_STRINGS
                .iter()
                .map(|s| ScopeSet::parse(black_box(s)).resources().len())
                .sum::<usize>()
        })
    });
    let sets: Vec<ScopeSet> = SCOPE_STRINGS.iter().map(|s| ScopeSet::parse(s)).collect();
    let obs = ResourceTarget::Type("Observation".into());
    g.bench_function("covers", |b| {
        b.iter(|| {
            sets.iter()
                .filter(|s| s.covers(Context::Patient, black_box(&obs), Perms::SEARCH))
                .count()
        })
    });
    g.bench_function("additions_over", |b| {
        b.iter(|| {
            sets.windows(2)
                .map(|w| w[1].additions_over(black_box(&w[0])).added.len())
                .sum::<usize>()
        })
    });
    g.finish();

    let urls: Vec<String> = common::access_lines(10_000)
        .iter()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            v["url"].as_str().map(str::to_string)
        })
        .collect();
    let mut g = c.benchmark_group("url");
    g.throughput(Throughput::Elements(urls.len() as u64));
    g.bench_function("classify", |b| {
        b.iter(|| {
            urls.iter()
                .filter(|u| classify(Method::Get, black_box(u)).is_population_level())
                .count()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
