//! `scopewatch least-privilege` on the history `detect` writes from `sample-data/`: for every
//! app the recommended scopes still serve every request its grants served, and drop every
//! resource scope it never used. The check re-reads the raw events independently of the store
//! and re-judges each served access with the recommended grant in place of the real one.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use crate::command::{root, sample_store, scopewatch};
use scopewatch::detect::explain::{
    classify_access, explain, explain_with_token, ExplainContext, Verdict,
};
use scopewatch::detect::{TokenCache, TokenCacheConfig};
use scopewatch::event::{parse_event_str, AccessEvent, Event};
use scopewatch::smart::request::Classifier;
use scopewatch::smart::scope::{Scope, ScopeSet};
use serde_json::Value;

/// A store built by `detect` from sample-data, and the least-privilege JSON over it.
fn advice_over_sample(dir: &Path) -> Value {
    sample_store(dir);
    let out = scopewatch(
        &[
            "least-privilege",
            "--data",
            "store",
            "--output-format",
            "json",
        ],
        dir,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("least-privilege JSON")
}

fn sample_events() -> Vec<Event> {
    let file = std::fs::File::open(root("sample-data/events.ndjson.gz")).expect("sample data");
    std::io::BufReader::new(flate2::read::GzDecoder::new(file))
        .lines()
        .map(|l| parse_event_str(&l.expect("line")).expect("sample events are canonical"))
        .collect()
}

fn apps(advice: &Value) -> BTreeMap<String, &Value> {
    advice["apps"]
        .as_array()
        .expect("apps")
        .iter()
        .map(|a| (a["client_id"].as_str().expect("client_id").to_string(), a))
        .collect()
}

#[test]
fn recommended_scopes_serve_every_request_the_grants_served_on_sample_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let advice = advice_over_sample(dir.path());
    let apps = apps(&advice);
    assert!(
        apps.len() >= 10,
        "one entry per app of sample-data: {}",
        apps.len()
    );
    let recommended: BTreeMap<&str, Arc<ScopeSet>> = apps
        .iter()
        .map(|(c, a)| {
            let s = a["recommended"].as_str().expect("recommended");
            (c.as_str(), Arc::new(ScopeSet::parse(s)))
        })
        .collect();

    let classifier = Classifier::new();
    let mut tokens = TokenCache::new(TokenCacheConfig::default());
    let mut exporting = BTreeSet::new();
    let (mut checked, mut per_app) = (0usize, BTreeMap::<String, usize>::new());
    for event in sample_events() {
        let access = match event {
            Event::Token(t) => {
                tokens.apply(&t);
                continue;
            }
            Event::Access(a) => a,
        };
        let context = ExplainContext {
            export_in_progress: exporting.contains(access.common.client_id.as_str()),
        };
        let real = explain(&access, &tokens, &classifier, context);
        if real.request.is_bulk_export() && real.served {
            exporting.insert(access.common.client_id.to_string());
        }
        // Explained accesses must stay explained; unverified ones (the server had to filter)
        // must not turn into gaps.
        let before = real.verdict();
        if !matches!(before, Verdict::Explained | Verdict::Unverified(_)) {
            continue;
        }
        let Some(token) = real.token else { continue };
        let client = access.common.client_id.as_str();
        let scopes = recommended
            .get(client)
            .unwrap_or_else(|| panic!("{client}: no advice"));
        let narrowed = scopewatch::detect::TokenInfo {
            scopes: scopes.clone(),
            ..token.clone()
        };
        let request = classify_access(&classifier, &access, context);
        let again = explain_with_token(&access, Some(&narrowed), request, context).verdict();
        let still_served = match before {
            Verdict::Explained => again == Verdict::Explained,
            _ => !matches!(again, Verdict::Gap),
        };
        assert!(
            still_served,
            "{client}: recommended `{}` turns {before:?} into {again:?} for {}",
            apps[client]["recommended"],
            shape(&access)
        );
        checked += 1;
        *per_app.entry(client.to_string()).or_default() += 1;
    }
    assert!(checked > 50_000, "served accesses re-judged: {checked}");
    // Every app whose grants served something had its accesses re-judged.
    for (client, app) in &apps {
        let used = app["granted"]
            .as_array()
            .expect("granted")
            .iter()
            .any(|g| g["usage"] == "used" && g["requests"].as_u64() > Some(0));
        if used {
            assert!(
                per_app.get(client).copied().unwrap_or(0) > 0,
                "{client}: nothing re-judged"
            );
        }
    }
}

/// The request without ids, for assertion messages (no patient ids in test output either).
fn shape(access: &AccessEvent) -> String {
    scopewatch::smart::request::request_shape(access.method, &access.url)
}

#[test]
fn unused_scopes_are_dropped_and_called_out_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let advice = advice_over_sample(dir.path());
    let mut unused_resource_scopes = 0;
    let mut offline_callouts = 0;
    for (client, app) in apps(&advice) {
        let recommended = ScopeSet::parse(app["recommended"].as_str().expect("recommended"));
        let callouts: Vec<&str> = app["callouts"]
            .as_array()
            .expect("callouts")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for g in app["granted"].as_array().expect("granted") {
            let (scope, usage) = (g["scope"].as_str().expect("scope"), g["usage"].as_str());
            let parsed = Scope::parse(scope);
            if usage == Some("unused") {
                // Exact spelling: another scope of the app may still imply it (a wildcard that
                // served the same type on another token).
                assert!(
                    !recommended.normalized().iter().any(|r| r == scope),
                    "{client}: unused {scope} is still recommended"
                );
                unused_resource_scopes += usize::from(parsed.as_resource().is_some());
                if matches!(parsed, Scope::OfflineAccess) || parsed.is_wildcard() {
                    // Unneeded wildcards and offline_access come before everything else.
                    let first = callouts.first().copied().unwrap_or_default();
                    assert!(
                        first.starts_with("wildcard") || first.starts_with("offline_access"),
                        "{client}: first callout is {first:?}"
                    );
                    offline_callouts += usize::from(matches!(parsed, Scope::OfflineAccess));
                }
            }
            if usage == Some("used") && parsed.as_resource().is_some() {
                assert!(
                    g["requests"].as_u64() > Some(0),
                    "{client}: {scope} used by nothing"
                );
            }
        }
        // Never broader than what was granted.
        let all_grants = ScopeSet::parse(
            &app["granted"]
                .as_array()
                .expect("granted")
                .iter()
                .filter_map(|g| g["scope"].as_str())
                .collect::<Vec<_>>()
                .join(" "),
        );
        for scope in recommended.resources() {
            assert!(
                all_grants.contains(&Scope::Resource(scope.clone())),
                "{client}: recommends {} beyond its grants",
                scope.normalized()
            );
        }
        // Served beyond the grant is listed, never recommended on its own account: only when
        // another token of the app held it and used it (the advice is per app).
        let used_grants = ScopeSet::parse(
            &app["granted"]
                .as_array()
                .expect("granted")
                .iter()
                .filter(|g| g["usage"] == "used")
                .filter_map(|g| g["scope"].as_str())
                .collect::<Vec<_>>()
                .join(" "),
        );
        for b in app["beyond_grant"].as_array().expect("beyond_grant") {
            let permission = Scope::parse(b["permission"].as_str().expect("permission"));
            assert!(
                !recommended.contains(&permission) || used_grants.contains(&permission),
                "{client}: {permission:?} served beyond the grant but recommended"
            );
        }
    }
    // In sample-data patient-portal's tokens carry offline_access and none is refreshed, and
    // sched-sync was granted system/Patient.rs twice and never read a Patient.
    assert!(offline_callouts >= 1, "no offline_access callout");
    assert!(unused_resource_scopes >= 1, "no unused resource scope");
}

#[test]
fn csv_and_table_list_the_same_apps_and_bad_arguments_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let advice = advice_over_sample(dir.path());
    let clients: BTreeSet<String> = apps(&advice).into_keys().collect();

    let csv = scopewatch(
        &[
            "least-privilege",
            "--data",
            "store",
            "--output-format",
            "csv",
        ],
        dir.path(),
    );
    assert!(csv.status.success());
    let text = String::from_utf8(csv.stdout).expect("utf-8");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("client_id,scope,kind,grants,requests"));
    let csv_clients: BTreeSet<String> = lines
        .map(|l| l.split(',').next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(csv_clients, clients);

    let table = scopewatch(
        &[
            "least-privilege",
            "--data",
            "store",
            "--client",
            "patient-portal",
        ],
        dir.path(),
    );
    assert!(table.status.success());
    let table = String::from_utf8(table.stdout).expect("utf-8");
    assert!(table.starts_with("patient-portal "), "{table}");
    assert!(table.contains("  recommended: "), "{table}");
    assert_eq!(
        table.matches("recommended:").count(),
        1,
        "only the one app: {table}"
    );

    let missing = scopewatch(&["least-privilege", "--data", "no-such-store"], dir.path());
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no-such-store"));

    let bad_time = scopewatch(
        &["least-privilege", "--data", "store", "--since", "yesterday"],
        dir.path(),
    );
    assert_eq!(bad_time.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_time.stderr).contains("RFC 3339"));

    // A window in the middle of the data holds part of it; the two halves add up.
    let served = |extra: &[&str]| -> u64 {
        let mut args = vec![
            "least-privilege",
            "--data",
            "store",
            "--output-format",
            "json",
        ];
        args.extend_from_slice(extra);
        let out = scopewatch(&args, dir.path());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("json");
        v["apps"]
            .as_array()
            .expect("apps")
            .iter()
            .filter_map(|a| a["served_requests"].as_u64())
            .sum()
    };
    let (all, early, late) = (
        served(&[]),
        served(&["--until", "2024-03-15"]),
        served(&["--since", "2024-03-15T00:00:00Z"]),
    );
    assert!(
        early > 0 && late > 0,
        "both halves hold requests: {early} + {late}"
    );
    assert_eq!(early + late, all);

    // A window after the data: nothing was granted or served in it.
    let later = scopewatch(
        &[
            "least-privilege",
            "--data",
            "store",
            "--since",
            "2099-01-01",
            "--output-format",
            "json",
        ],
        dir.path(),
    );
    assert!(later.status.success());
    let later: Value = serde_json::from_slice(&later.stdout).expect("json");
    assert_eq!(later["apps"].as_array().map(Vec::len), Some(0));
}

#[test]
fn a_pseudonymised_store_is_refused_with_the_reason() {
    // Its URLs are request shapes: granular scopes and launch patients cannot be judged.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("e.ndjson"),
        concat!(
            r#"{"type":"token","time":"2024-03-01T08:00:00Z","client_id":"a","event":"issued","token_id":"t1","scope_granted":"user/Observation.rs"}"#,
            "\n",
            r#"{"type":"access","time":"2024-03-01T08:00:10Z","client_id":"a","method":"GET","url":"Observation/o1","status":200,"token_id":"t1"}"#,
            "\n"
        ),
    )
    .expect("write");
    let detect = Command::new(env!("CARGO_BIN_EXE_scopewatch"))
        .current_dir(dir.path())
        .env("SW_KEY", "a-test-key-of-at-least-16-bytes")
        .args([
            "detect",
            "--data",
            "store",
            "--alerts",
            "a.ndjson",
            "--pseudonymize-key-env",
            "SW_KEY",
            "e.ndjson",
        ])
        .output()
        .expect("detect");
    assert!(
        detect.status.success(),
        "{}",
        String::from_utf8_lossy(&detect.stderr)
    );
    let out = scopewatch(&["least-privilege", "--data", "store"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pseudonymised") && stderr.contains("request shapes"),
        "{stderr}"
    );
}
