//! The foundation's acceptance test: a file mixing good lines with every kind of bad line, and a
//! gzip file cut short. Every good event is accepted, every bad line is dead-lettered with its
//! reason and line number, and the counts add up — through the library and through the CLI.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use flate2::write::GzEncoder;
use scopewatch::event::{Event, RejectKind};
use scopewatch::ingest::{expand_inputs, DeadLetter, DeadLetterWriter, IngestOptions, Ingestor};

fn access(client: &str, i: usize) -> String {
    format!(
        r#"{{"type":"access","time":"2024-03-01T12:{:02}:00Z","client_id":"{client}","method":"GET","url":"Observation?patient=p{i}","status":200,"bytes":1024,"token_id":"t{i}"}}"#,
        i % 60
    )
}

fn token(client: &str) -> String {
    format!(
        r#"{{"type":"token","event":"issued","time":"2024-03-01T11:59:00.250+01:00","client_id":"{client}","token_id":"t1","grant_type":"authorization_code","scope_granted":"launch/patient patient/Observation.rs"}}"#
    )
}

/// (line content, expected outcome): Ok(client_id) or Err((kind, reason fragment)).
type Expect = Result<&'static str, (RejectKind, &'static str)>;

fn mixed_lines() -> Vec<(Vec<u8>, Expect)> {
    let mut long = br#"{"type":"access","padding":""#.to_vec();
    long.extend(std::iter::repeat_n(b'x', 2 * 1024 * 1024));
    long.extend_from_slice(br#""}"#);
    vec![
        (token("good-token").into_bytes(), Ok("good-token")),
        (access("good-1", 1).into_bytes(), Ok("good-1")),
        (br#"{"type":"access","time":"2024-03-01T12:00:00Z","client_id":"trunc","meth"#.to_vec(), Err((RejectKind::TruncatedJson, "truncated JSON"))),
        (br#"{"type":"access","time":"2024-03-01T12:00:00Z","client_id":"wt","method":"GET","url":"Patient/1","status":"two hundred"}"#.to_vec(), Err((RejectKind::WrongType, "field status must be an integer, found a string"))),
        (br#"{"type":"access","time":"2024-03-01T12:00:00Z","client_id":42,"method":"GET","url":"Patient/1","status":200}"#.to_vec(), Err((RejectKind::WrongType, "field client_id must be a string, found an integer"))),
        (br#"{"type":"access","time":"2024-03-01T12:00:00Z","method":"GET","url":"Patient/1","status":200}"#.to_vec(), Err((RejectKind::MissingField, "missing field client_id"))),
        (br#"{"type":"token","time":"2024-03-01T12:00:00Z","client_id":"noevent"}"#.to_vec(), Err((RejectKind::MissingField, "missing field event"))),
        (b"".to_vec(), Ok("")),
        (access("good-2", 2).into_bytes(), Ok("good-2")),
        (long, Err((RejectKind::LineTooLong, "longer than the 1048576-byte limit"))),
        (b"{\"type\":\"access\",\"client_id\":\"caf\xe9\"}".to_vec(), Err((RejectKind::NotUtf8, "not UTF-8: invalid byte 0xe9"))),
        (br#"{"type":"access","time":"01/03/2024 12:00","client_id":"t","method":"GET","url":"Patient/1","status":200}"#.to_vec(), Err((RejectKind::InvalidValue, "time is not RFC 3339: shaped '99/99/9999 99:99'"))),
        (br#"{"type":"access" "time":"x"}"#.to_vec(), Err((RejectKind::InvalidJson, "invalid JSON at column 18"))),
        (access("good-3", 3).into_bytes(), Ok("good-3")),
    ]
}

struct Fixture {
    _dir: tempfile::TempDir,
    mixed: PathBuf,
    gz: PathBuf,
    expected: Vec<(u64, Expect)>,
    gz_good_lines: usize,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let mixed = dir.path().join("mixed.ndjson");
    let mut f = std::fs::File::create(&mixed).expect("create");
    let mut expected = Vec::new();
    for (i, (bytes, expect)) in mixed_lines().into_iter().enumerate() {
        f.write_all(&bytes).expect("write");
        f.write_all(b"\n").expect("write");
        if !bytes.is_empty() {
            expected.push((i as u64 + 1, expect));
        }
    }
    // A gzip archive cut in the middle of its deflate stream.
    let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::default());
    for i in 0..5000 {
        writeln!(enc, "{}", access("gz-app", i)).expect("gz");
    }
    let compressed = enc.finish().expect("gz finish");
    let gz = dir.path().join("cut.ndjson.gz");
    std::fs::write(&gz, &compressed[..compressed.len() / 2]).expect("write gz");
    Fixture {
        _dir: dir,
        mixed,
        gz,
        expected,
        gz_good_lines: 5000,
    }
}

fn read_dead_letters(path: &Path) -> Vec<DeadLetter> {
    std::fs::read_to_string(path)
        .expect("dead letter file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("dead letter record"))
        .collect()
}

fn check_mixed_dead_letters(fx: &Fixture, dead: &[DeadLetter]) {
    let mixed_name = fx.mixed.display().to_string();
    let from_mixed: Vec<&DeadLetter> = dead.iter().filter(|d| d.source == mixed_name).collect();
    let expected_bad: Vec<&(u64, Expect)> =
        fx.expected.iter().filter(|(_, e)| e.is_err()).collect();
    assert_eq!(
        from_mixed.len(),
        expected_bad.len(),
        "one record per bad line: {from_mixed:#?}"
    );
    for ((line, expect), record) in expected_bad.iter().zip(&from_mixed) {
        let Err((kind, fragment)) = expect else {
            unreachable!()
        };
        assert_eq!(record.line, Some(*line), "{record:?}");
        assert_eq!(record.kind, *kind, "line {line}: {}", record.reason);
        assert!(
            record.reason.contains(fragment),
            "line {line}: {:?} lacks {fragment:?}",
            record.reason
        );
        assert!(record.raw.len() <= 4096 + 3, "raw is cut to 4 KiB");
        assert!(record.offset.is_some());
    }
    let long = from_mixed
        .iter()
        .find(|d| d.kind == RejectKind::LineTooLong)
        .expect("long line");
    assert!(long.raw_truncated);
    assert!(long.raw_bytes > 2 * 1024 * 1024);
    let gz_name = fx.gz.display().to_string();
    let gz: Vec<&DeadLetter> = dead.iter().filter(|d| d.source == gz_name).collect();
    assert_eq!(gz.len(), 1, "the cut gzip leaves one record: {gz:?}");
    assert_eq!(gz[0].kind, RejectKind::ReadError);
    assert!(
        gz[0].reason.contains("gzip stream ended early"),
        "{}",
        gz[0].reason
    );
}

#[test]
fn library_accepts_good_lines_and_dead_letters_the_rest() {
    let fx = fixture();
    let dl_path = fx._dir.path().join("dead.ndjson");
    let writer = DeadLetterWriter::new(Box::new(std::fs::File::create(&dl_path).expect("dl")));
    let mut ingestor = Ingestor::new(IngestOptions::default(), writer);
    let (sources, skipped) =
        expand_inputs(&[fx.mixed.display().to_string(), fx.gz.display().to_string()])
            .expect("inputs");
    assert!(skipped.is_empty());
    let mut accepted: Vec<(String, u64)> = Vec::new();
    for s in &sources {
        ingestor
            .ingest(s, &mut |e: Event, pos| {
                accepted.push((e.client_id().to_string(), pos.line))
            })
            .expect("ingest");
    }
    let summary = ingestor.finish().expect("finish");

    let want_good: Vec<(String, u64)> = fx
        .expected
        .iter()
        .filter_map(|(line, e)| e.as_ref().ok().map(|c| (c.to_string(), *line)))
        .collect();
    let from_mixed: Vec<(String, u64)> = accepted
        .iter()
        .filter(|(c, _)| c != "gz-app")
        .cloned()
        .collect();
    assert_eq!(from_mixed, want_good, "each good event accepted, in order");

    let mixed = &summary.sources[0];
    assert_eq!(mixed.read, fx.expected.len() as u64);
    assert_eq!(mixed.accepted, want_good.len() as u64);
    assert_eq!(
        mixed.dead_lettered,
        (fx.expected.len() - want_good.len()) as u64
    );
    assert_eq!(mixed.blank, 1);
    assert_eq!(mixed.by_reason.get(&RejectKind::WrongType), Some(&2));

    let gz = &summary.sources[1];
    let gz_accepted = accepted.iter().filter(|(c, _)| c == "gz-app").count() as u64;
    assert!(
        gz_accepted > 100 && gz_accepted < fx.gz_good_lines as u64,
        "{gz_accepted}"
    );
    assert_eq!(gz.accepted, gz_accepted);
    assert_eq!(gz.dead_lettered, 1, "the line cut by the truncation");
    assert!(gz.error.is_some());

    for s in &summary.sources {
        assert_eq!(s.read, s.accepted + s.dead_lettered, "{}", s.source);
    }
    let t = &summary.totals;
    assert_eq!(t.read, t.accepted + t.dead_lettered);
    assert_eq!(t.source_errors, 1);
    assert!(!summary.is_clean());

    check_mixed_dead_letters(&fx, &read_dead_letters(&dl_path));
}

#[test]
fn cli_validate_exits_non_zero_and_prints_counts() {
    let fx = fixture();
    let dl_path = fx._dir.path().join("cli-dead.ndjson");
    let summary_path = fx._dir.path().join("summary.json");
    let out = Command::new(env!("CARGO_BIN_EXE_scopewatch"))
        .arg("validate")
        .arg(&fx.mixed)
        .arg(&fx.gz)
        .arg("--dead-letter")
        .arg(&dl_path)
        .arg("--summary")
        .arg(&summary_path)
        .output()
        .expect("run scopewatch");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let good = fx.expected.iter().filter(|(_, e)| e.is_ok()).count();
    let bad = fx.expected.len() - good;
    let mixed_row = stderr
        .lines()
        .find(|l| l.starts_with(&fx.mixed.display().to_string()))
        .expect("a row for the mixed file");
    let numbers: Vec<&str> = mixed_row.split_whitespace().skip(1).collect();
    assert_eq!(
        numbers,
        vec![
            fx.expected.len().to_string(),
            good.to_string(),
            bad.to_string(),
            "0".to_string(),
            "1".to_string()
        ]
    );
    assert!(stderr.lines().any(|l| l.starts_with("total")), "{stderr}");

    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary_path).expect("summary"))
            .expect("summary json");
    let totals = &summary["totals"];
    assert_eq!(
        totals["read"].as_u64(),
        Some(
            totals["accepted"].as_u64().unwrap_or(0)
                + totals["dead_lettered"].as_u64().unwrap_or(0)
        )
    );
    assert_eq!(totals["source_errors"].as_u64(), Some(1));
    assert_eq!(summary["events"]["token"].as_u64(), Some(1));

    check_mixed_dead_letters(&fx, &read_dead_letters(&dl_path));
}

#[test]
fn directories_are_walked_in_name_order_and_other_files_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("b")).expect("mkdir");
    std::fs::write(dir.path().join("b/2.jsonl"), access("two", 2) + "\n").expect("w");
    std::fs::write(dir.path().join("a.ndjson"), access("one", 1) + "\n").expect("w");
    let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    writeln!(enc, "{}", access("three", 3)).expect("gz");
    std::fs::write(dir.path().join("c.json.gz"), enc.finish().expect("gz")).expect("w");
    std::fs::write(dir.path().join("notes.txt"), "hello").expect("w");

    let out = Command::new(env!("CARGO_BIN_EXE_scopewatch"))
        .args(["validate", "--summary", "-", "--dead-letter"])
        .arg(dir.path().join("dl.ndjson"))
        .arg(dir.path())
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("summary on stdout");
    let names: Vec<String> = summary["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .map(|s| {
            let full = s["source"].as_str().unwrap_or_default();
            full.strip_prefix(&dir.path().display().to_string())
                .unwrap_or(full)
                .to_string()
        })
        .collect();
    assert_eq!(names, vec!["/a.ndjson", "/b/2.jsonl", "/c.json.gz"]);
    assert_eq!(summary["totals"]["accepted"].as_u64(), Some(3));
    let skipped = summary["skipped_files"].as_array().expect("skipped");
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0]["path"]
        .as_str()
        .unwrap_or_default()
        .ends_with("notes.txt"));
}

#[test]
fn stdin_and_missing_inputs() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_scopewatch"))
        .args(["validate", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "{}", access("s", 1)).expect("w");
        writeln!(stdin, "not json").expect("w");
    }
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(1));
    let dead = String::from_utf8_lossy(&out.stdout);
    let record: serde_json::Value =
        serde_json::from_str(dead.lines().next().expect("one record")).expect("json");
    assert_eq!(record["source"], "<stdin>");
    assert_eq!(record["line"], 2);
    assert_eq!(record["offset"], access("s", 1).len() as u64 + 1);
    assert_eq!(record["reason"], "invalid JSON at column 2: expected ident");

    let out = Command::new(env!("CARGO_BIN_EXE_scopewatch"))
        .args(["validate", "/definitely/not/here.ndjson"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot open /definitely/not/here.ndjson")
    );
}
