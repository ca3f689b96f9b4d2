//! `--data s3://bucket/prefix` against a local S3-compatible server (moto_server, installed by
//! .ci/run) on loopback: detect writes the store there, sql reads it in place with the same
//! results as a local store, a re-run replaces the run's objects, `run --follow` publishes its
//! segments, a missing bucket stops a writer before it reads. (Unknown URL schemes are refused with exit 2: `cli.rs`.)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::command::root;
use super::process::{
    free_port, history_figures, history_figures_with, sample_lines, scopewatch, wait_ok,
};

/// A moto S3 server on a free loopback port, stopped when dropped.
struct S3Server {
    child: Child,
    port: u16,
}

impl S3Server {
    fn start() -> S3Server {
        let port = free_port();
        // `python3 -m moto.server`: the module, not the `moto_server` script, which pip may
        // install outside PATH.
        let mut child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m moto.server (pip install \"moto[server]\"; .ci/run installs it)");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("python3 -m moto.server exited ({status}): pip install \"moto[server]\"");
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen in 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        S3Server { child, port }
    }

    /// The environment a client needs: endpoint, any credentials (moto accepts them), HTTP.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", format!("http://127.0.0.1:{}", self.port)),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", "scopewatch-test".into()),
            ("AWS_SECRET_ACCESS_KEY", "scopewatch-test".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_CONFIG_FILE", "/nonexistent/aws-config".into()),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/aws-credentials".into(),
            ),
        ]
    }

    /// One plain HTTP request (moto takes unsigned ones): status code and body.
    fn request(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        self.request_with(method, path, "", body)
    }

    /// Copies the object `from` to `to` in `bucket` (S3 CopyObject).
    fn copy(&self, bucket: &str, from: &str, to: &str) -> (u16, String) {
        let header = format!("x-amz-copy-source: /{bucket}/{from}\r\n");
        self.request_with("PUT", &format!("/{bucket}/{to}"), &header, b"")
    }

    fn request_with(&self, method: &str, path: &str, headers: &str, body: &[u8]) -> (u16, String) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.port,
            body.len()
        )
        .expect("request");
        s.write_all(body).expect("body");
        let mut response = Vec::new();
        s.read_to_end(&mut response).expect("response");
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_string();
        (status, body)
    }

    /// The keys under `prefix` in `bucket`, sorted.
    fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let (status, body) = self.request(
            "GET",
            &format!("/{bucket}?list-type=2&max-keys=1000&prefix={prefix}"),
            b"",
        );
        assert_eq!(status, 200, "{body}");
        let mut keys: Vec<String> = body
            .split("<Key>")
            .skip(1)
            .filter_map(|k| k.split_once("</Key>").map(|(k, _)| k.to_string()))
            .collect();
        keys.sort();
        keys
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_with(env: &[(&str, String)], dir: &Path, args: &[&str]) -> Output {
    scopewatch()
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .args(args)
        .output()
        .expect("run scopewatch")
}

fn detect_into(env: &[(&str, String)], dir: &Path, data: &str) -> Output {
    run_with(
        env,
        dir,
        &[
            "detect",
            &root("sample-data/events.ndjson.gz"),
            "--registry",
            &root("sample-data/registry.toml"),
            "--data",
            data,
            "--alerts",
            "alerts.ndjson",
        ],
    )
}

fn saved_query(env: &[(&str, String)], dir: &Path, data: &str, query: &str) -> String {
    let out = run_with(
        env,
        dir,
        &[
            "sql",
            "--data",
            data,
            "--output",
            "csv",
            "--file",
            &root(&format!("queries/{query}.sql")),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_history_store_on_s3_is_written_queried_and_replaced_like_a_directory() {
    let s3 = S3Server::start();
    let env = s3.env();
    assert_eq!(s3.request("PUT", "/history", b"").0, 200, "create bucket");
    let dir = tempfile::tempdir().expect("tempdir");

    let local = detect_into(&[], dir.path(), "local");
    assert!(
        local.status.success(),
        "{}",
        String::from_utf8_lossy(&local.stderr)
    );
    // The staging directory lives under TMPDIR: point it at a directory of the test's.
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).expect("tmp");
    let mut env = env;
    env.push(("TMPDIR", tmp.display().to_string()));
    let remote = detect_into(&env, dir.path(), "s3://history/team/store");
    let stderr = String::from_utf8_lossy(&remote.stderr);
    assert!(remote.status.success(), "{stderr}");
    assert!(
        stderr.contains("written to s3://history/team/store"),
        "{stderr}"
    );
    assert!(!dir.path().join("s3:").exists(), "nothing written locally");
    let staged: Vec<_> = std::fs::read_dir(&tmp).expect("tmp").collect();
    assert!(
        staged.is_empty(),
        "the staging directory is gone: {staged:?}"
    );

    // Every table and the baselines are objects under the prefix.
    let keys = s3.keys("history", "team/store/");
    for table in ["access/date=", "tokens/date=", "alerts/date=", "baseline/"] {
        assert!(
            keys.iter()
                .any(|k| k.starts_with(&format!("team/store/{table}"))),
            "{table} in {keys:?}"
        );
    }
    assert!(
        keys.contains(&"team/store/store.json".to_string()),
        "{keys:?}"
    );

    // sql reads the objects in place with the results of the local store.
    let figures = history_figures(dir.path(), "local");
    assert!(figures.access > 0 && figures.alerts > 0, "{figures:?}");
    assert_eq!(
        history_figures_with(dir.path(), "s3://history/team/store", &env),
        figures
    );
    for query in [
        "enforcement_gaps",
        "alerts_by_severity",
        "least_privilege_candidates",
    ] {
        assert_eq!(
            saved_query(&env, dir.path(), "s3://history/team/store", query),
            saved_query(&[], dir.path(), "local", query),
            "{query}"
        );
    }

    // A re-run replaces the run's objects: a stale object of the same run (a part the
    // earlier run wrote beyond what this one writes) is deleted, the rows are there once.
    let part = keys
        .iter()
        .find(|k| k.contains("/access/date=") && k.contains("/part-"))
        .expect("an access part");
    let (stem, _) = part.rsplit_once('-').expect("part-<run>-<n>.parquet");
    let stale = format!("{stem}-999.parquet");
    let copied = s3.copy("history", part, &stale);
    assert_eq!(copied.0, 200, "{}", copied.1);
    assert!(s3.keys("history", "team/store/").contains(&stale));
    // Another run's object (same table and date) is not the re-run's to delete.
    let (date_dir, _) = part.rsplit_once('/').expect("key");
    let other = format!("{date_dir}/part-0123456789abcdef-0.parquet");
    assert_eq!(s3.copy("history", part, &other).0, 200);
    let again = detect_into(&env, dir.path(), "s3://history/team/store");
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let after = s3.keys("history", "team/store/");
    assert!(
        !after.contains(&stale),
        "the stale part of the run is deleted"
    );
    assert!(after.contains(&other), "another run's object is kept");
    let mut expected = keys.clone();
    expected.push(other.clone());
    expected.sort();
    assert_eq!(
        after, expected,
        "the first run's objects and the other run's"
    );
    // The rows are there once, plus the other run's copy of one part.
    let copied_rows = history_figures_with(dir.path(), "s3://history/team/store", &env);
    assert_eq!(copied_rows.tokens, figures.tokens);
    assert_eq!(copied_rows.alerts, figures.alerts);
    assert!(copied_rows.access > figures.access, "{copied_rows:?}");
}

#[test]
fn a_following_service_publishes_its_history_to_s3() {
    let s3 = S3Server::start();
    let env = s3.env();
    assert_eq!(s3.request("PUT", "/stream", b"").0, 200, "create bucket");
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("logs");
    std::fs::write(logs.join("events.ndjson"), sample_lines().join("\n") + "\n").expect("write");
    let registry = root("sample-data/registry.toml");
    let follow = scopewatch()
        .current_dir(dir.path())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .args(["run", "--follow", "--exit-at-end", "--input", "logs"])
        .args(["--state", "state", "--alerts", "followed.ndjson"])
        .args(["--data", "s3://stream/svc", "--registry", &registry])
        .stderr(Stdio::null())
        .spawn()
        .expect("run --follow");
    wait_ok(follow, "run --follow --exit-at-end");
    let local = detect_into(&[], dir.path(), "local");
    assert!(local.status.success());
    let streamed = history_figures_with(dir.path(), "s3://stream/svc", &env);
    let batch = history_figures(dir.path(), "local");
    assert_eq!(streamed.access, batch.access);
    assert_eq!(streamed.tokens, batch.tokens);
    assert!(streamed.alerts > 0, "{streamed:?}");
    assert!(
        !s3.keys("stream", "svc/access/").is_empty(),
        "the segments are objects"
    );
}

#[test]
fn a_missing_bucket_stops_a_writer_and_an_empty_prefix_is_not_a_store() {
    let s3 = S3Server::start();
    let env = s3.env();
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = detect_into(&env, dir.path(), "s3://no-such-bucket/x");
    assert_eq!(missing.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("s3://no-such-bucket/x") && stderr.contains("cannot list the store"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("alerts.ndjson").exists(),
        "stopped before reading"
    );

    assert_eq!(s3.request("PUT", "/empty", b"").0, 200, "create bucket");
    let typo = run_with(
        &env,
        dir.path(),
        &["sql", "--data", "s3://empty/typo", "-c", "SELECT 1"],
    );
    assert_eq!(typo.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&typo.stderr);
    assert!(stderr.contains("holds no scopewatch store"), "{stderr}");
}
