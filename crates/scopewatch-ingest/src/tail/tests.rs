use super::*;
use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

/// The tailer plus the positions a service would keep (key → next line start).
struct Harness {
    tailer: Tailer,
    positions: BTreeMap<String, u64>,
    lines: Vec<(String, String)>,
}

impl Harness {
    fn new(inputs: &[&std::path::Path]) -> Harness {
        let inputs: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
        let mut tailer = Tailer::new(&inputs, 1024).unwrap();
        tailer.timing = Timing {
            rotate_wait: Duration::from_millis(0),
            idle_close: Duration::from_millis(0),
            settle: Duration::from_millis(0),
            max_open: 0,
        };
        Harness {
            tailer,
            positions: BTreeMap::new(),
            lines: Vec::new(),
        }
    }

    /// One round of a service loop: scan, read everything, close what is finished.
    fn round(&mut self) -> Vec<Change> {
        let positions = self.positions.clone();
        let changes = self.tailer.scan(&|k| positions.get(k).copied());
        for i in 0..self.tailer.files().len() {
            let key = self.tailer.files()[i].file.key.clone();
            let name = self.tailer.files()[i].file.name.clone();
            let (lines, positions) = (&mut self.lines, &mut self.positions);
            self.tailer
                .read(i, 1000, &mut |l| {
                    lines.push((name.clone(), String::from_utf8_lossy(l.bytes).into_owned()));
                    positions.insert(key.clone(), l.end);
                })
                .unwrap();
        }
        for i in self.tailer.finished().into_iter().rev() {
            self.tailer.close(i);
        }
        changes
    }

    fn texts(&self) -> Vec<&str> {
        self.lines.iter().map(|(_, t)| t.as_str()).collect()
    }
}

fn append(path: &std::path::Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[test]
fn a_rotated_file_is_read_to_its_end_and_its_successor_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("events.ndjson");
    append(&live, "a1\na2\n");
    let mut h = Harness::new(&[&live]);
    h.tailer.timing.max_open = 100;
    let changes = h.round();
    assert!(matches!(&changes[..], [Change::Opened { start: 0, .. }]));
    assert_eq!(h.texts(), ["a1", "a2"]);
    // The writer still holds the old file while it is renamed away, and writes a last line
    // without its newline; then a new file appears under the name.
    let mut writer = std::fs::OpenOptions::new()
        .append(true)
        .open(&live)
        .unwrap();
    std::fs::rename(&live, dir.path().join("events.ndjson.1")).unwrap();
    writer.write_all(b"a3\na4").unwrap();
    append(&live, "b1\n");
    h.round();
    assert_eq!(h.texts(), ["a1", "a2", "a3", "a4", "b1"]);
    assert_eq!(h.tailer.files().len(), 1, "the rotated file is closed");
    append(&live, "b2\n");
    h.round();
    assert_eq!(h.texts().last(), Some(&"b2"));
    assert_eq!(
        h.lines[0].0, h.lines[4].0,
        "counted under the followed name"
    );
}

#[test]
fn a_restart_resumes_each_file_at_its_position_and_a_gzip_copy_is_not_read_twice() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    append(&logs.join("one.ndjson"), "x1\nx2\n");
    append(&logs.join("two.log"), "y1\n");
    std::fs::write(logs.join("notes.txt"), "not a log\n").unwrap();
    let mut h = Harness::new(&[&logs]);
    h.round();
    assert_eq!(h.texts(), ["x1", "x2", "y1"]);
    assert_eq!(
        h.tailer.take_skipped().len(),
        1,
        "notes.txt is listed as skipped"
    );
    // A new process with the checkpointed positions: only what was written since.
    append(&logs.join("one.ndjson"), "x3\n");
    let mut again = Harness::new(&[&logs]);
    again.positions = h.positions.clone();
    again.round();
    assert_eq!(again.texts(), ["x3"]);
    // one.ndjson compressed by rotation: same first line, so the same file, read to its end.
    let gz = logs.join("one.ndjson.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(b"x1\nx2\nx3\nx4\n").unwrap();
    enc.finish().unwrap();
    std::fs::remove_file(logs.join("one.ndjson")).unwrap();
    again.round();
    again.round();
    assert_eq!(again.texts(), ["x3", "x4"]);
}

#[test]
fn a_copy_of_a_followed_file_is_not_read() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("a.ndjson"), "same\nz\n");
    let mut h = Harness::new(&[dir.path()]);
    h.tailer.timing.idle_close = Duration::from_secs(3600);
    h.round();
    std::fs::copy(dir.path().join("a.ndjson"), dir.path().join("b.ndjson")).unwrap();
    let changes = h.round();
    assert!(
        matches!(&changes[..], [Change::Copy { path, .. }] if path.ends_with("b.ndjson")),
        "{changes:?}"
    );
    assert_eq!(h.texts(), ["same", "z"]);
}

#[test]
fn an_idle_file_is_closed_and_reopened_at_its_position_when_it_grows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.ndjson");
    append(&path, "one\n");
    let mut h = Harness::new(&[dir.path()]);
    h.round();
    assert!(
        h.tailer.files().is_empty(),
        "idle (idle_close and max_open are 0 here): closed"
    );
    assert!(h.round().is_empty(), "unchanged: not reopened");
    append(&path, "two\n");
    let changes = h.round();
    assert!(
        matches!(&changes[..], [Change::Opened { start: 4, .. }]),
        "{changes:?}"
    );
    assert_eq!(h.texts(), ["one", "two"]);
}

#[test]
fn a_file_truncated_in_place_is_read_again_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.log");
    append(&path, "first\nsecond\n");
    let mut h = Harness::new(&[&path]);
    h.tailer.timing.idle_close = Duration::from_secs(3600);
    h.round();
    std::fs::write(&path, "new\n").unwrap(); // copytruncate, then a write
    h.round(); // notices the truncation, closes
    h.round(); // opens the rewritten file
    assert_eq!(h.texts(), ["first", "second", "new"]);
}

#[test]
fn stdin_cannot_be_followed() {
    let e = Tailer::new(&["-".to_string()], 10).err().unwrap();
    assert!(e.to_string().contains("stdin cannot be followed"), "{e}");
}

#[test]
fn a_rotation_while_the_service_was_down_is_finished_from_the_rotated_file() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("events.ndjson");
    append(&live, "a1\n");
    let mut h = Harness::new(&[dir.path()]);
    h.tailer.timing.max_open = 100;
    h.round();
    // Down: more lines, then rotation to a numbered name and a new file.
    append(&live, "a2\n");
    std::fs::rename(&live, dir.path().join("events.ndjson.1")).unwrap();
    append(&live, "b1\n");
    let mut again = Harness::new(&[dir.path()]);
    again.tailer.timing.max_open = 100;
    again.positions = h.positions.clone();
    again.round();
    let mut texts = again.texts();
    texts.sort_unstable();
    assert_eq!(
        texts,
        ["a2", "b1"],
        "the rotated file's rest, then the new file"
    );
}

#[cfg(unix)]
#[test]
fn an_unreadable_entry_in_a_followed_directory_does_not_hide_the_others() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        dir.path().join("nowhere"),
        dir.path().join("a-broken.ndjson"),
    )
    .unwrap();
    append(&dir.path().join("b.ndjson"), "b1\n");
    let mut h = Harness::new(&[dir.path()]);
    h.round();
    assert_eq!(h.texts(), ["b1"]);
    let skipped = h.tailer.take_skipped();
    assert!(
        skipped
            .iter()
            .any(|s| s.path.ends_with("a-broken.ndjson") && s.reason.contains("cannot read")),
        "{skipped:?}"
    );
}
