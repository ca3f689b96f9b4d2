//! The authorization specification table (tests/data/authorization-semantics.tsv): granted
//! scopes, launch context, token state, an earlier request of the same token, method + URL,
//! the patient the log names and the status → the verdict the specifications give (explained,
//! gap with the missing permission, unverified, unexplained, not served). Each row cites the
//! section it comes from; each is played through the detection engine as token and access
//! events, and the verdict is read from what the engine reports.

use scopewatch::alert::Alert;
use scopewatch::detect::{Engine, EngineConfig};
use scopewatch::event::parse_event_str;
use scopewatch::registry::Registry;

const HEADER: &str = "scopes\tlaunch_patient\ttoken\tprior\tmethod\turl\tlogged_patient\tstatus\tverdict\tdetail\tsource";

struct Row {
    line: usize,
    scopes: String,
    launch_patient: Option<String>,
    /// `live`, `revoked` (a revocation logged before the request), `lapsed` (expired long
    /// before the request: gone from the token cache, remembered as lapsed) or `requested`
    /// (live, its scopes logged only as requested).
    token: String,
    prior: Option<(String, String)>,
    method: String,
    url: String,
    logged_patient: Option<String>,
    status: u16,
    verdict: String,
    detail: String,
    source: String,
}

fn dash(s: &str) -> Option<String> {
    (s != "-" && !s.is_empty()).then(|| s.to_string())
}

fn table() -> Vec<Row> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/authorization-semantics.tsv"
    ))
    .expect("tests/data/authorization-semantics.tsv");
    let mut lines = text.lines().enumerate();
    assert_eq!(lines.next().map(|(_, l)| l), Some(HEADER));
    lines
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|(i, l)| {
            let c: Vec<&str> = l.split('\t').collect();
            assert_eq!(c.len(), 11, "line {}: {l:?}", i + 1);
            assert!(
                matches!(c[2], "live" | "revoked" | "lapsed" | "requested"),
                "line {}: token",
                i + 1
            );
            Row {
                line: i + 1,
                scopes: c[0].to_string(),
                launch_patient: dash(c[1]),
                token: c[2].to_string(),
                prior: dash(c[3]).map(|p| {
                    let (m, u) = p.split_once(' ').expect("prior is 'METHOD url'");
                    (m.to_string(), u.to_string())
                }),
                method: c[4].to_string(),
                url: c[5].to_string(),
                logged_patient: dash(c[6]),
                status: c[7].parse().expect("status"),
                verdict: c[8].to_string(),
                detail: c[9].to_string(),
                source: c[10].to_string(),
            }
        })
        .collect()
}

fn access_line(at: &str, method: &str, url: &str, status: u16, patient: Option<&str>) -> String {
    let patient = patient.map_or(String::new(), |p| format!(r#","patient":"{p}""#));
    let url = serde_json::to_string(url).expect("url");
    format!(
        r#"{{"type":"access","time":"{at}","client_id":"app","token_id":"t","method":"{method}","url":{url},"status":{status}{patient}}}"#
    )
}

/// The events of a row, without and with the request under test.
fn events(row: &Row) -> (Vec<String>, String) {
    let patient = row
        .launch_patient
        .as_deref()
        .map_or(String::new(), |p| format!(r#","patient":"{p}""#));
    let scopes = serde_json::to_string(&row.scopes).expect("scopes");
    // A lapsed token was issued for five minutes almost two hours before the request.
    let (issued, lifetime) = match row.token.as_str() {
        "lapsed" => ("2024-03-05T08:00:00Z", 300),
        _ => ("2024-03-05T10:00:00Z", 3600),
    };
    // A `requested` token logged its scopes only as requested (RFC 6749 §5.1).
    let field = if row.token == "requested" {
        "scope_requested"
    } else {
        "scope_granted"
    };
    let mut before = vec![format!(
        r#"{{"type":"token","event":"issued","time":"{issued}","client_id":"app","user":"Practitioner/u1","token_id":"t","{field}":{scopes},"expires_in":{lifetime}{patient}}}"#
    )];
    if row.token == "revoked" {
        before.push(r#"{"type":"token","event":"revoked","time":"2024-03-05T10:00:10Z","client_id":"app","token_id":"t"}"#.to_string());
    }
    if let Some((m, u)) = &row.prior {
        let status = if u.contains("$export") && !u.contains("poll") {
            202
        } else {
            200
        };
        before.push(access_line("2024-03-05T10:00:20Z", m, u, status, None));
    }
    let request = access_line(
        "2024-03-05T10:01:00Z",
        &row.method,
        &row.url,
        row.status,
        row.logged_patient.as_deref(),
    );
    (before, request)
}

/// Alerts and the count of explained accesses for these events.
fn play(lines: &[String]) -> (Vec<Alert>, u64) {
    let mut engine = Engine::new(EngineConfig::default(), Registry::default());
    let mut out = Vec::new();
    for l in lines {
        let event = parse_event_str(l).unwrap_or_else(|e| panic!("{l}: {e:?}"));
        engine.push(event, &mut out).expect("in order");
    }
    engine.finish(&mut out);
    let explained = engine.stats().explained;
    (out, explained)
}

const JUDGING_RULES: [&str; 4] = [
    "enforcement_gap",
    "revoked_token_use",
    "expired_token_use",
    "unverified_access",
];

/// The verdict the engine gives the row's request, and the detail of a gap.
fn engine_verdict(row: &Row) -> (String, String) {
    let (before, request) = events(row);
    let (_, explained_before) = play(&before);
    let mut all = before.clone();
    all.push(request);
    let (alerts, explained_after) = play(&all);
    let judged: Vec<&Alert> = alerts
        .iter()
        .filter(|a| JUDGING_RULES.contains(&a.rule) && a.revision == 0)
        .collect();
    let rules: Vec<&str> = judged.iter().map(|a| a.rule).collect();
    let served = (200..300).contains(&row.status);
    if rules.contains(&"revoked_token_use") {
        return ("gap".into(), "revoked".into());
    }
    if rules.contains(&"expired_token_use") {
        return ("gap".into(), "expired".into());
    }
    if let Some(gap) = judged.iter().find(|a| a.rule == "enforcement_gap") {
        let o = &gap.observed;
        let detail = if o["launch_context"] == "other-patient" {
            "other-patient".to_string()
        } else {
            format!(
                "{}.{}",
                o["resource_type"].as_str().unwrap_or("?"),
                o["missing_permission"].as_str().unwrap_or("?")
            )
        };
        return ("gap".into(), detail);
    }
    if rules.contains(&"unverified_access") {
        return ("unverified".into(), "-".into());
    }
    if !served {
        return ("not-served".into(), "-".into());
    }
    if explained_after > explained_before {
        ("explained".into(), "-".into())
    } else {
        ("unexplained".into(), "-".into())
    }
}

#[test]
fn the_specification_table_holds() {
    let rows = table();
    assert!(rows.len() >= 60, "the table has {} rows", rows.len());
    let mut wrong = Vec::new();
    for row in &rows {
        assert!(
            !row.source.trim().is_empty(),
            "line {}: no source",
            row.line
        );
        let (verdict, detail) = engine_verdict(row);
        let detail_ok = row.verdict != "gap" || row.detail == detail;
        if verdict != row.verdict || !detail_ok {
            wrong.push(format!(
                "line {}: {} {} with [{}] → {verdict} {detail}, the table says {} {} ({})",
                row.line, row.method, row.url, row.scopes, row.verdict, row.detail, row.source
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong verdicts:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn every_verdict_is_in_the_table() {
    let rows = table();
    for verdict in [
        "explained",
        "gap",
        "unverified",
        "unexplained",
        "not-served",
    ] {
        assert!(
            rows.iter().filter(|r| r.verdict == verdict).count() >= 3,
            "fewer than three '{verdict}' rows"
        );
    }
}
