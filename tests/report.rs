//! `scopewatch report` over the history `detect` writes from `sample-data/`: every incident has
//! its section and a plot, every app its section, the page fetches nothing and names no
//! patient, the same store gives the same bytes, and headless Chromium renders it without a
//! console message (a screenshot is left in target/ for the CI log).

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::command::{root, sample_store, scopewatch};
use scopewatch::event::{parse_event_str, Event};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A store from sample-data and a report over it.
fn report_over_sample(dir: &Path) -> String {
    sample_store(dir);
    let out = scopewatch(
        &["report", "--data", "store", "--out-file", "report.html"],
        dir,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // Size and generation time, for the test log.
    eprintln!("{}", stderr(&out).trim());
    std::fs::read_to_string(dir.join("report.html")).expect("report written")
}

fn stored_incidents(dir: &Path) -> BTreeSet<String> {
    let out = scopewatch(
        &[
            "sql",
            "--data",
            "store",
            "--output-format",
            "csv",
            "-c",
            "SELECT DISTINCT incident_id FROM alerts WHERE suppressed_by IS NULL",
        ],
        dir,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect()
}

/// Patient ids of sample-data (launch patients and served patients).
fn sample_patients() -> BTreeSet<String> {
    let file = std::fs::File::open(root("sample-data/events.ndjson.gz")).expect("sample data");
    let mut out = BTreeSet::new();
    for line in std::io::BufReader::new(flate2::read::GzDecoder::new(file)).lines() {
        match parse_event_str(&line.expect("line")).expect("canonical") {
            Event::Token(t) => out.extend(t.patient.map(|p| p.to_string())),
            Event::Access(a) => out.extend(a.patient.map(|p| p.to_string())),
        }
    }
    out
}

/// The `<section class="incident" …>…</section>` blocks, with their category.
fn incident_sections(html: &str) -> Vec<(String, &str)> {
    html.split("<section class=\"incident\"")
        .skip(1)
        .map(|rest| {
            let body = rest.split("</section>").next().unwrap_or_default();
            let category = body
                .split("data-category=\"")
                .nth(1)
                .and_then(|c| c.split('"').next())
                .unwrap_or_default()
                .to_string();
            (category, body)
        })
        .collect()
}

#[test]
fn every_incident_and_app_has_its_section_with_a_plot_and_no_patient_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let html = report_over_sample(dir.path());
    let incidents = stored_incidents(dir.path());
    assert!(
        incidents.len() >= 10,
        "sample-data raises incidents: {}",
        incidents.len()
    );
    for id in &incidents {
        assert!(
            html.contains(&format!("<code>{id}</code>")),
            "incident {id} has no section"
        );
    }
    let sections = incident_sections(&html);
    assert_eq!(sections.len(), incidents.len());
    let categories: BTreeSet<&str> = sections.iter().map(|(c, _)| c.as_str()).collect();
    for category in ["scope_creep", "purpose_drift", "data_volume"] {
        assert!(
            categories.contains(category),
            "sample-data has {category} incidents"
        );
    }
    for (category, body) in &sections {
        // The plot that explains the incident, with data drawn in it.
        let rule = body
            .split("</span> ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .unwrap_or_default();
        let title = match (rule, category.as_str()) {
            ("token_outlier", _) => "per token in the incident window",
            ("slow_drip", _) => "Requests per day",
            ("off_hours" | "patient_fanout" | "dormant_app_active", _) => "Requests per hour",
            (_, "scope_creep") => "Scopes granted per day",
            (_, "purpose_drift") => "Resource mix",
            _ => "Requests per hour",
        };
        assert!(
            body.contains(title),
            "{rule} ({category}) without its plot «{title}»"
        );
        let marks = body.matches("<circle").count() + body.matches("fill=\"#").count();
        assert!(marks > 0, "{rule}: a plot with nothing drawn");
    }
    // Per app: a section, a baseline plot, and the least-privilege advice.
    let apps = html.matches("<section class=\"app\"").count();
    assert!(apps >= 10, "apps: {apps}");
    assert_eq!(html.matches("<h4>Least privilege</h4>").count(), apps);

    let patients = sample_patients();
    assert!(patients.len() > 100);
    for p in patients.iter().filter(|p| p.len() >= 6) {
        assert!(!html.contains(p.as_str()), "patient id {p} in the report");
    }
    // Self-contained: nothing fetched, nothing run.
    for needle in [
        "<script", "<link", "<img", "<iframe", " src=", "url(", "@import",
    ] {
        assert!(!html.contains(needle), "{needle} in the report");
    }

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("report.html"))
            .expect("report")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "report readable by others: {mode:o}");
    }
}

#[test]
fn the_same_store_gives_the_same_bytes_and_a_window_narrows_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = report_over_sample(dir.path());
    let again = scopewatch(
        &["report", "--data", "store", "--out-file", "again.html"],
        dir.path(),
    );
    assert!(again.status.success(), "{}", stderr(&again));
    let again = std::fs::read_to_string(dir.path().join("again.html")).expect("again");
    assert!(first == again, "two reports over one store differ");

    let narrow = scopewatch(
        &[
            "report",
            "--data",
            "store",
            "--out-file",
            "narrow.html",
            "--since",
            "2024-03-25",
            "--max-plots",
            "3",
        ],
        dir.path(),
    );
    assert!(narrow.status.success(), "{}", stderr(&narrow));
    let narrow = std::fs::read_to_string(dir.path().join("narrow.html")).expect("narrow");
    assert_eq!(
        incident_sections(&narrow).len(),
        3,
        "--max-plots draws three"
    );
    assert!(narrow.contains("more are listed"), "the rest are listed");
    // The header counts the incidents of the window: fewer from the 25th on.
    let count = |html: &str| -> usize {
        html.split(" incident(s) over")
            .next()
            .and_then(|h| h.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .expect("incident count in the header")
    };
    let (all, late) = (count(&first), count(&narrow));
    assert_eq!(all, incident_sections(&first).len());
    assert!(
        late > 3 && late < all,
        "window from 2024-03-25: {late} of {all}"
    );

    let missing = scopewatch(&["report", "--data", "no-store"], dir.path());
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("no-store"));
}

fn chromium() -> PathBuf {
    let path =
        std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("chromium"), PathBuf::from);
    let found = Command::new(&path).arg("--version").output();
    assert!(
        found.as_ref().is_ok_and(|o| o.status.success()),
        "this test needs Chromium (`apt-get install chromium`, as .ci/run does, or CHROMIUM=path)"
    );
    path
}

/// Headless Chromium with the flags a closed network needs (no background connections).
fn headless(profile: &Path) -> Command {
    let mut c = Command::new(chromium());
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
    ]);
    c.arg(format!("--user-data-dir={}", profile.display()));
    c
}

#[test]
fn chromium_renders_the_report_without_console_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let html = report_over_sample(dir.path());
    let url = format!("file://{}", dir.path().join("report.html").display());

    let dom = headless(&dir.path().join("profile-dom"))
        .args(["--dump-dom", &url])
        .output()
        .expect("chromium --dump-dom");
    assert!(dom.status.success(), "{}", stderr(&dom));
    let rendered = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(
        incident_sections(&rendered).len(),
        incident_sections(&html).len(),
        "every incident section survives parsing"
    );
    assert_eq!(
        rendered.matches("<svg").count(),
        html.matches("<svg").count(),
        "every plot survives parsing"
    );
    let log = stderr(&dom);
    for line in log.lines() {
        assert!(
            !line.contains("CONSOLE") && !line.contains("Uncaught"),
            "console message: {line}"
        );
    }

    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-screenshot.png");
    // A screenshot left by an earlier run must not pass for this one.
    let _ = std::fs::remove_file(&shot);
    let out = headless(&dir.path().join("profile-shot"))
        .arg("--window-size=1100,2400")
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .expect("chromium --screenshot");
    assert!(out.status.success(), "{}", stderr(&out));
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    eprintln!(
        "report screenshot: {} ({} bytes)",
        shot.display(),
        png.len()
    );
}
