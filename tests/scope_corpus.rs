//! Every row of the SMART scope corpus (tests/data/scopes.tsv, copied from shared/fixtures with
//! its per-row source column) is parsed and checked against its `valid?` column.

use scopewatch::smart::scope::{Scope, ScopeSet, Syntax};

struct Row {
    scope: String,
    class: String,
    meaning: String,
    source: String,
}

fn corpus() -> Vec<Row> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/scopes.tsv"
    ))
    .expect("tests/data/scopes.tsv");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("scope\tvalid?\tmeaning\tsource"));
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 4, "row {l:?}");
            let scope = if cols[0] == "\"\"" {
                String::new()
            } else {
                cols[0].to_string()
            };
            Row {
                scope,
                class: cols[1].to_string(),
                meaning: cols[2].to_string(),
                source: cols[3].to_string(),
            }
        })
        .collect()
}

fn check(row: &Row) -> Result<(), String> {
    let parsed = Scope::parse(&row.scope);
    let ok = match row.class.as_str() {
        "valid-v2" | "dubious" => {
            matches!(&parsed, Scope::Resource(r) if r.syntax == Syntax::V2)
                && parsed.policy_note().is_none()
        }
        "valid-v1" => matches!(&parsed, Scope::Resource(r) if r.syntax == Syntax::V1),
        "valid" => matches!(
            parsed,
            Scope::Launch { .. }
                | Scope::OpenId
                | Scope::FhirUser
                | Scope::OfflineAccess
                | Scope::OnlineAccess
        ),
        "valid-ext" => matches!(
            parsed,
            Scope::Launch {
                context: Some(_),
                ..
            } | Scope::Custom(_)
        ),
        "deprecated" => parsed == Scope::Profile && parsed.is_deprecated(),
        // Syntactically valid; the policy problem is the server's call (g10 rejects
        // user/Patient.read only where patient-level access was required).
        "invalid-policy" => {
            parsed.as_resource().is_some()
                && (row.scope == "user/Patient.read" || parsed.policy_note().is_some())
        }
        "valid-syntax" => parsed.as_resource().is_some() && parsed.policy_note().is_some(),
        "invalid" | "nonstandard" | "uri-form" | "invalid-single" => {
            matches!(&parsed, Scope::Invalid { reason, raw } if !reason.is_empty() && *raw == row.scope)
        }
        "scope-string" => {
            let set = ScopeSet::parse(&row.scope);
            let tokens = row.scope.split(' ').count();
            set.invalid().is_empty() && set.normalized().len() == tokens
        }
        "empty" => ScopeSet::parse(&row.scope).is_empty() && !parsed.is_valid(),
        other => return Err(format!("unknown class {other}")),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{:?} ({}; {}; {}) parsed as {parsed:?}, note {:?}",
            row.scope,
            row.class,
            row.meaning,
            row.source,
            parsed.policy_note()
        ))
    }
}

#[test]
fn every_corpus_row_agrees_with_its_validity_column() {
    let rows = corpus();
    assert_eq!(rows.len(), 108, "the corpus has 108 scope strings");
    let failures: Vec<String> = rows.iter().filter_map(|r| check(r).err()).collect();
    assert!(
        failures.is_empty(),
        "{} rows disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_row_has_a_source() {
    assert!(corpus().iter().all(|r| !r.source.trim().is_empty()));
}

#[test]
fn valid_v1_rows_normalise_to_their_v2_meaning() {
    // The meaning column spells the v2 equivalent where it gives one ("v1 read => v2 rs").
    for row in corpus().iter().filter(|r| r.class == "valid-v1") {
        let r = Scope::parse(&row.scope);
        let Some(res) = r.as_resource() else {
            panic!("{}", row.scope)
        };
        let suffix = row.scope.rsplit('.').next().unwrap_or_default();
        let expected = match suffix {
            "read" => "rs",
            "write" => "cud",
            "*" => "cruds",
            other => panic!("unexpected v1 suffix {other}"),
        };
        assert_eq!(res.perms.letters(), expected, "{}", row.scope);
    }
}

/// Snapshots store granted scope sets as `to_tokens`; restoring must give the identical set,
/// for every corpus row alone and for the whole corpus as one grant.
#[test]
fn scope_sets_round_trip_through_their_snapshot_tokens() {
    let rows = corpus();
    let all = rows
        .iter()
        .map(|r| r.scope.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    for text in rows.iter().map(|r| r.scope.clone()).chain([all]) {
        let set = ScopeSet::parse(&text);
        let back = ScopeSet::from_tokens(&set.to_tokens());
        assert_eq!(back, set, "scope string {text:?}");
    }
}
