//! Helpers shared by the tests that run `scopewatch run` as a process: the sample data, alert
//! ids, metrics over HTTP, waiting for a child.

#![allow(dead_code)]

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub fn scopewatch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scopewatch"))
}

pub fn manifest_path(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The sample data's lines, in file order.
pub fn sample_lines() -> Vec<String> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(manifest_path("sample-data/events.ndjson.gz")).expect("sample data"),
    )
    .read_to_string(&mut text)
    .expect("gunzip");
    text.lines().map(str::to_string).collect()
}

pub fn alert_ids(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("alert json");
            v["id"].as_str().expect("id").to_string()
        })
        .collect()
}

/// Waits for `child` to exit successfully (at most 300 s).
pub fn wait_ok(mut child: Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "{what} exited with {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not finish within 300 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// One HTTP GET on loopback: the whole response, status line first.
pub fn http_get(port: u16, path: &str) -> String {
    use std::io::Write;
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("metrics endpoint");
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").expect("request");
    let mut response = String::new();
    s.read_to_string(&mut response).expect("response");
    response
}

/// Figures of a history store, read through `scopewatch sql`.
#[derive(Debug, PartialEq, Eq)]
pub struct HistoryFigures {
    pub access: u64,
    /// Access rows that know their token's granted scopes.
    pub with_grant: u64,
    pub tokens: u64,
    pub alerts: u64,
    pub alert_ids: u64,
}

pub fn history_figures(dir: &Path, data: &str) -> HistoryFigures {
    history_figures_with(dir, data, &[])
}

/// [`history_figures`] with environment variables set for `scopewatch sql` (an object
/// store's endpoint and credentials).
pub fn history_figures_with(dir: &Path, data: &str, env: &[(&str, String)]) -> HistoryFigures {
    let out = scopewatch()
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .args(["sql", "--data", data, "--output", "csv", "-c"])
        .arg(
            "SELECT (SELECT count(*) FROM access) AS access, \
                    (SELECT count(*) FROM access WHERE granted_scopes IS NOT NULL) AS with_grant, \
                    (SELECT count(*) FROM tokens) AS tokens, \
                    (SELECT count(*) FROM alerts) AS alerts, \
                    (SELECT count(DISTINCT id) FROM alerts) AS alert_ids",
        )
        .output()
        .expect("sql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<u64> = text
        .lines()
        .nth(1)
        .expect("a row")
        .split(',')
        .map(|v| v.parse().expect("number"))
        .collect();
    HistoryFigures {
        access: v[0],
        with_grant: v[1],
        tokens: v[2],
        alerts: v[3],
        alert_ids: v[4],
    }
}
