//! Issue #15, format fidelity: the sample data (`scopewatch simulate` output) written as the
//! logs operators have — Keycloak events for tokens, IHE BALP AuditEvents or an nginx JSON
//! access log for accesses — gives the canonical alerts, except the losses each format
//! explains (what it does not carry: tests/support/convert.rs lists it field by field).
//! Compared per rule, as the set of apps an incident of that rule was opened for.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::convert;
use crate::process;
use process::{manifest_path, sample_lines};

type ByRule = BTreeMap<String, BTreeSet<String>>;

/// Apps with an incident opened, per rule, from `detect` over `inputs` (relative to `dir`).
fn incidents(dir: &Path, inputs: &[&str], extra: &[&str]) -> ByRule {
    let out = Command::new(env!("CARGO_BIN_EXE_scopewatch"))
        .current_dir(dir)
        .args(["detect", "--no-history", "--alerts", "alerts.ndjson"])
        .args(["--dead-letter", "dead.ndjson", "--summary", "summary.json"])
        .arg("--registry")
        .arg(manifest_path("sample-data/registry.toml"))
        .args(extra)
        .args(inputs)
        .output()
        .expect("run detect");
    assert!(
        out.status.success(),
        "{inputs:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut by_rule = ByRule::new();
    for line in std::fs::read_to_string(dir.join("alerts.ndjson"))
        .expect("alerts")
        .lines()
    {
        let alert: Value = serde_json::from_str(line).expect("alert");
        if alert["activity"] == "create" {
            let rule = alert["rule"].as_str().expect("rule").to_string();
            let app = alert["client_id"].as_str().expect("app").to_string();
            by_rule.entry(rule).or_default().insert(app);
        }
    }
    by_rule
}

/// Rules whose apps differ between the canonical and the converted run, with both sets.
fn differences(canonical: &ByRule, converted: &ByRule) -> BTreeMap<String, (usize, usize)> {
    let rules: BTreeSet<&String> = canonical.keys().chain(converted.keys()).collect();
    let empty = BTreeSet::new();
    rules
        .into_iter()
        .filter_map(|rule| {
            let a = canonical.get(rule).unwrap_or(&empty);
            let b = converted.get(rule).unwrap_or(&empty);
            (a != b).then(|| (rule.clone(), (a.len(), b.len())))
        })
        .collect()
}

struct Converted {
    dir: tempfile::TempDir,
    canonical: ByRule,
}

fn converted_sample() -> Converted {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = sample_lines().join("\n") + "\n";
    std::fs::write(dir.path().join("events.ndjson"), &text).expect("write");
    let (keycloak, balp, nginx) = convert::convert_ndjson(&text);
    std::fs::write(dir.path().join("keycloak.log"), keycloak).expect("write");
    std::fs::write(dir.path().join("audit.ndjson"), balp).expect("write");
    std::fs::write(dir.path().join("access.log"), nginx).expect("write");
    let canonical = incidents(dir.path(), &["events.ndjson"], &[]);
    assert!(
        canonical.len() >= 10,
        "the sample data raises many rules: {canonical:?}"
    );
    Converted { dir, canonical }
}

/// What Keycloak cannot carry, and the rules that lose alerts because of it (plus the access
/// format's own losses). Every other rule must give exactly the canonical apps.
const KEYCLOAK_LOSSES: &[(&str, &str)] = &[
    // No expires_in: lifetimes are unknown (and not configured here: the simulated apps'
    // lifetimes differ), so expiry is never judged.
    ("expired_token_use", "Keycloak logs no token lifetime"),
];

const BALP_LOSSES: &[(&str, &str)] = &[
    // No resources_returned: one token pulling far more data than its peers in the same
    // number of requests is not seen.
    (
        "token_outlier",
        "BALP carries no count of resources returned",
    ),
    // Likewise an export whose files hold twenty times the usual resources in as many files.
    (
        "export_outlier",
        "BALP carries no count of resources returned",
    ),
];

const NGINX_LOSSES: &[(&str, &str)] = &[
    ("token_outlier", "nginx logs no count of resources returned"),
    (
        "export_outlier",
        "nginx logs no count of resources returned",
    ),
    // No patient: a read by id of another patient's resource (`Observation/o9`) shows whose
    // data it was only through a logged patient (BALP's patient entity).
    ("enforcement_gap", "nginx logs no patient"),
];

fn assert_only_explained(
    name: &str,
    canonical: &ByRule,
    converted: &ByRule,
    losses: &[&[(&str, &str)]],
) {
    let diff = differences(canonical, converted);
    eprintln!(
        "{name}: rules whose apps differ from canonical (canonical apps, converted apps): {diff:?}"
    );
    let explained: BTreeSet<&str> = losses
        .iter()
        .flat_map(|l| l.iter().map(|(r, _)| *r))
        .collect();
    for rule in diff.keys() {
        assert!(
            explained.contains(rule.as_str()),
            "{name}: {rule} differs without an explained loss: canonical {:?}, converted {:?}",
            canonical.get(rule),
            converted.get(rule)
        );
    }
    // Losses lose: a format never adds an app to a rule the canonical run did not raise
    // for it, except through the documented presumption.
    for (rule, apps) in converted {
        let extra: Vec<&String> = apps
            .iter()
            .filter(|a| !canonical.get(rule).is_some_and(|c| c.contains(*a)))
            .collect();
        assert!(
            extra.is_empty() || explained.contains(rule.as_str()),
            "{name}: {rule} raised for {extra:?} only in this format"
        );
    }
}

#[test]
fn keycloak_and_balp_give_the_canonical_alerts_but_for_explained_losses() {
    let c = converted_sample();
    let converted = incidents(
        c.dir.path(),
        &["keycloak:keycloak.log", "auditevent:audit.ndjson"],
        &[],
    );
    assert_only_explained(
        "keycloak+balp",
        &c.canonical,
        &converted,
        &[KEYCLOAK_LOSSES, BALP_LOSSES],
    );
}

#[test]
fn keycloak_and_nginx_give_the_canonical_alerts_but_for_explained_losses() {
    let c = converted_sample();
    let inputs = ["keycloak:keycloak.log", "gateway+nginx:access.log"];
    let converted = incidents(c.dir.path(), &inputs, &[]);
    assert_only_explained(
        "keycloak+nginx",
        &c.canonical,
        &converted,
        &[KEYCLOAK_LOSSES, NGINX_LOSSES],
    );
    // Followed as files, each input in its own format, the same alerts as detect.
    let followed = Command::new(env!("CARGO_BIN_EXE_scopewatch"))
        .current_dir(c.dir.path())
        .args(["run", "--follow", "--exit-at-end", "--no-history"])
        .args(["--input", inputs[0], "--input", inputs[1]])
        .args(["--state", "state", "--alerts", "followed.ndjson"])
        .args(["--dead-letter", "followed-dead.ndjson"])
        .arg("--registry")
        .arg(manifest_path("sample-data/registry.toml"))
        .output()
        .expect("run --follow");
    assert!(
        followed.status.success(),
        "{}",
        String::from_utf8_lossy(&followed.stderr)
    );
    let ids = |name: &str| process::alert_ids(&c.dir.path().join(name));
    assert_eq!(ids("followed.ndjson"), ids("alerts.ndjson"));
}
