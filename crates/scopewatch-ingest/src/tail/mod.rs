//! Following growing files and directories (`run --follow`), rotation-safe, in the manner of
//! `tail -F`: files are found by scanning the inputs, known by a fingerprint of their first line
//! ([`fingerprint`]), and read through an open handle ([`TailedFile`]) so that a file renamed
//! or deleted by log rotation is read to its end while its successor is picked up as new.
//!
//! Only the scanning and reading live here; positions are kept by the caller (the service's
//! checkpoint, keyed by fingerprint) and handed back through `scan`'s `resume`.
//!
//! A followed file is closed when it has been read to its end and either is no longer found
//! under the inputs (rotated away or deleted) for [`ROTATE_WAIT`], or has not grown for
//! [`IDLE_CLOSE`] while more than [`MAX_OPEN`] files are open; a closed file that is still
//! there is opened again when it changes size. (Idle files are closed only over that many: a
//! line written to a closed file just before it is rotated out of the inputs would be missed.)
//! `.gz` files are read once, when they have not been modified for [`SETTLE`].

mod file;
mod fingerprint;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

pub use file::{TailLine, TailedFile};
pub use fingerprint::{fingerprint, key_of};

use super::counts::SkippedFile;
use super::error::IngestError;
use super::input::{is_rotated_log_name, walk, Source};
use super::own_outputs::OwnOutputs;

/// How long a file no longer found under the inputs is still read for (a writer may not have
/// reopened its log yet).
pub const ROTATE_WAIT: Duration = Duration::from_secs(2);
/// A file still in place that has not grown for this long is closed (bounded open handles over
/// a directory of finished logs) and reopened if it grows.
pub const IDLE_CLOSE: Duration = Duration::from_secs(60);
/// Open files beyond which idle ones are closed.
pub const MAX_OPEN: usize = 256;
/// A `.gz` file modified more recently than this may still be being written: it waits.
pub const SETTLE: Duration = Duration::from_secs(2);
/// Positions of files not seen for this long are forgotten.
pub const FORGET_AFTER: Duration = Duration::from_secs(3600);

/// The waits above, adjustable (tests use short ones).
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub rotate_wait: Duration,
    pub idle_close: Duration,
    pub settle: Duration,
    pub max_open: usize,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            rotate_wait: ROTATE_WAIT,
            idle_close: IDLE_CLOSE,
            settle: SETTLE,
            max_open: MAX_OPEN,
        }
    }
}

/// What a scan or a read found, for the caller's inputs and logs.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// A file to read from `start` (its checkpointed position, or 0).
    Opened {
        key: String,
        name: String,
        start: u64,
    },
    /// A file with the same first line as one already followed: taken for a copy, not read.
    Copy { path: String, of: String },
    /// A file that cannot be opened or read (it is tried again at the next scan).
    Unreadable { path: String, reason: String },
}

/// A followed file and what rotation handling needs to know about it.
pub struct Followed {
    pub file: TailedFile,
    /// Index of the input it was found under (its format is that input's).
    pub root: usize,
    last_growth: Instant,
    /// Since when the scans no longer find it under the inputs.
    gone_since: Option<Instant>,
}

impl Followed {
    /// True once the file is to be closed: read to its end and not going to grow.
    /// `open`: how many files are followed now.
    pub fn finished(&self, now: Instant, timing: &Timing, open: usize) -> bool {
        if self.file.ended {
            return true;
        }
        if !self.file.at_eof {
            return false;
        }
        match self.gone_since {
            Some(since) => {
                now.duration_since(since) >= timing.rotate_wait
                    && now.duration_since(self.last_growth) >= timing.rotate_wait
            }
            None => {
                open > timing.max_open
                    && self.file.partial_bytes() == 0
                    && now.duration_since(self.last_growth) >= timing.idle_close
            }
        }
    }

    /// Whether the file was rotated away (its last partial line, if any, is complete now).
    pub fn gone(&self) -> bool {
        self.gone_since.is_some()
    }
}

pub struct Tailer {
    roots: Vec<PathBuf>,
    max_line_bytes: usize,
    pub timing: Timing,
    /// Followed files in the order they were found (the merge's tie order).
    files: Vec<Followed>,
    /// Fingerprint of every inode seen, with the size it had then.
    fingerprints: HashMap<(u64, u64), String>,
    /// Closed files still in place: inode → size when closed.
    closed: HashMap<(u64, u64), u64>,
    /// Inodes taken for copies of a followed file.
    copies: HashSet<(u64, u64)>,
    /// Key → when a scan last found a file with it.
    last_seen: BTreeMap<String, Instant>,
    warned_missing: HashSet<PathBuf>,
    scans: u64,
    skipped: Vec<SkippedFile>,
    /// The run's own outputs: never followed, however they are named.
    own: OwnOutputs,
}

fn inode_of(meta: &std::fs::Metadata) -> (u64, u64) {
    super::input::identity(meta).unwrap_or((0, 0))
}

/// `.gz` files are read once, when complete.
fn is_gzip_name(path: &std::path::Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

impl Tailer {
    /// Follows `inputs` (files or directories; they may not exist yet). stdin cannot be
    /// followed.
    pub fn new(inputs: &[String], max_line_bytes: usize) -> Result<Tailer, IngestError> {
        if inputs.is_empty() {
            return Err(IngestError::NoInputs);
        }
        if inputs.iter().any(|i| i == "-") {
            return Err(IngestError::Open {
                path: "-".into(),
                source: std::io::Error::other(
                    "stdin cannot be followed: drop --follow to read a pipe to its end",
                ),
            });
        }
        for input in inputs {
            let meta = std::fs::metadata(input);
            if meta.is_ok_and(|m| !m.is_file() && !m.is_dir()) {
                return Err(IngestError::Open {
                    path: input.clone(),
                    source: std::io::Error::other(
                        "not a regular file or directory (a FIFO or device) cannot be followed: drop --follow to read a pipe once",
                    ),
                });
            }
        }
        Ok(Tailer {
            roots: inputs.iter().map(PathBuf::from).collect(),
            max_line_bytes,
            timing: Timing::default(),
            files: Vec::new(),
            fingerprints: HashMap::new(),
            closed: HashMap::new(),
            copies: HashSet::new(),
            last_seen: BTreeMap::new(),
            warned_missing: HashSet::new(),
            scans: 0,
            skipped: Vec::new(),
            own: OwnOutputs::default(),
        })
    }

    /// Never follows these (the run's alerts, dead letters, state, …).
    pub fn with_own_outputs(mut self, own: OwnOutputs) -> Tailer {
        self.own = own;
        self
    }

    pub fn files(&self) -> &[Followed] {
        &self.files
    }

    /// Indexes of the files to close now (see [`Followed::finished`]).
    pub fn finished(&self) -> Vec<usize> {
        let now = Instant::now();
        (0..self.files.len())
            .filter(|&i| self.files[i].finished(now, &self.timing, self.files.len()))
            .collect()
    }

    /// Files inside input directories that are not logs (listed on the first scan only).
    pub fn take_skipped(&mut self) -> Vec<SkippedFile> {
        std::mem::take(&mut self.skipped)
    }

    /// Whether a scan found a file with this key within [`FORGET_AFTER`], or it is followed.
    pub fn remembers(&self, key: &str, now: Instant) -> bool {
        self.files.iter().any(|f| f.file.key == key)
            || self
                .last_seen
                .get(key)
                .is_some_and(|t| now.duration_since(*t) < FORGET_AFTER)
    }

    /// Lists the inputs and opens what is new. `resume` gives a key's checkpointed position.
    pub fn scan(&mut self, resume: &dyn Fn(&str) -> Option<u64>) -> Vec<Change> {
        let now = Instant::now();
        self.scans += 1;
        let mut changes = Vec::new();
        let mut paths: Vec<(PathBuf, usize)> = Vec::new();
        for (root_index, root) in self.roots.iter().enumerate() {
            match std::fs::metadata(root) {
                Ok(m) if m.is_dir() => {
                    let (mut sources, mut skipped) = (Vec::new(), Vec::new());
                    if let Err(e) = walk(root, &mut sources, &mut skipped, true) {
                        changes.push(Change::Unreadable {
                            path: root.display().to_string(),
                            reason: e.to_string(),
                        });
                    }
                    // Rotated logs (`events.ndjson.1`) are followed too: a restart after a
                    // rotation finishes them, and their fingerprint keeps them from being read
                    // twice.
                    let (rotated, other): (Vec<SkippedFile>, Vec<SkippedFile>) =
                        skipped.into_iter().partition(|f| {
                            std::path::Path::new(&f.path)
                                .file_name()
                                .is_some_and(|n| is_rotated_log_name(&n.to_string_lossy()))
                        });
                    paths.extend(
                        rotated
                            .into_iter()
                            .map(|f| (PathBuf::from(f.path), root_index)),
                    );
                    if self.scans == 1 {
                        self.skipped.extend(other);
                    }
                    paths.extend(sources.into_iter().filter_map(|s| match s {
                        Source::File(p) => Some((p, root_index)),
                        Source::Stdin => None,
                    }));
                }
                Ok(_) => paths.push((root.clone(), root_index)),
                Err(e) => {
                    if self.warned_missing.insert(root.clone()) {
                        tracing::warn!(path = %root.display(), "input not there (yet): {e}; watching for it");
                    }
                }
            }
        }
        let mut seen = HashSet::new();
        let followed: HashMap<(u64, u64), usize> = self
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.file.inode, i))
            .collect();
        for (path, root) in paths {
            if self.own.contains(&path) {
                if self.warned_missing.insert(path.clone()) {
                    self.skipped.push(SkippedFile {
                        path: path.display().to_string(),
                        reason: crate::OWN_OUTPUT_REASON.to_string(),
                    });
                }
                continue;
            }
            let Ok(meta) = std::fs::metadata(&path) else {
                continue; // gone between the listing and now
            };
            let inode = inode_of(&meta);
            if !seen.insert(inode) {
                continue; // a second name (hard or symbolic link) of a file already listed
            }
            if let Some(f) = followed.get(&inode).and_then(|&i| self.files.get_mut(i)) {
                f.file.path.clone_from(&path);
                self.last_seen.insert(f.file.key.clone(), now);
                continue;
            }
            if self.copies.contains(&inode) {
                continue;
            }
            let gz = is_gzip_name(&path);
            if let Some(&size) = self.closed.get(&inode) {
                if size == meta.len() {
                    if let Some(key) = self.fingerprints.get(&inode) {
                        self.last_seen.insert(key.clone(), now);
                    }
                    continue;
                }
                // Grown (reopen at its position) or shrunk (rewritten: a new fingerprint).
                self.closed.remove(&inode);
                if meta.len() < size {
                    self.fingerprints.remove(&inode);
                }
            }
            if gz
                && meta.modified().ok().is_some_and(|m| {
                    SystemTime::now()
                        .duration_since(m)
                        .map_or(true, |age| age < self.timing.settle)
                })
            {
                // Still being written; its fingerprint keeps its original's position alive.
                if let Ok(Some(key)) = fingerprint(&path) {
                    self.last_seen.insert(key, now);
                }
                continue;
            }
            let key = match self.fingerprints.get(&inode) {
                Some(k) => k.clone(),
                None => match fingerprint(&path) {
                    Ok(Some(k)) => {
                        self.fingerprints.insert(inode, k.clone());
                        k
                    }
                    Ok(None) => continue, // no complete first line yet
                    Err(e) => {
                        changes.push(Change::Unreadable {
                            path: path.display().to_string(),
                            reason: e.to_string(),
                        });
                        continue;
                    }
                },
            };
            self.last_seen.insert(key.clone(), now);
            if let Some(f) = self.files.iter().find(|f| f.file.key == key) {
                self.copies.insert(inode);
                changes.push(Change::Copy {
                    path: path.display().to_string(),
                    of: f.file.name.clone(),
                });
                continue;
            }
            let mut start = resume(&key).unwrap_or(0);
            if !gz && start > meta.len() {
                // Same first line, less content: a rewritten file, not the one checkpointed.
                tracing::warn!(path = %path.display(), start, len = meta.len(), "file shorter than the checkpointed position: reading it from the start");
                start = 0;
            }
            match TailedFile::open(key.clone(), &path, inode, start, self.max_line_bytes) {
                Ok(file) => {
                    changes.push(Change::Opened {
                        key,
                        name: file.name.clone(),
                        start,
                    });
                    self.files.push(Followed {
                        file,
                        root,
                        last_growth: now,
                        gone_since: None,
                    });
                }
                Err(e) => changes.push(Change::Unreadable {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                }),
            }
        }
        for f in &mut self.files {
            let here = seen.contains(&f.file.inode);
            match (here, f.gone_since) {
                (false, None) => f.gone_since = Some(now),
                (true, Some(_)) => f.gone_since = None,
                _ => {}
            }
        }
        self.fingerprints.retain(|inode, _| seen.contains(inode));
        self.copies.retain(|inode| seen.contains(inode));
        self.closed.retain(|inode, _| seen.contains(inode));
        self.last_seen
            .retain(|_, t| now.duration_since(*t) < FORGET_AFTER);
        changes
    }

    /// Reads up to `budget` lines of file `index`. A file rotated away and finished hands on its
    /// last line even without a newline. A truncated file ends (its inode is fingerprinted
    /// afresh at the next scan). Read errors end the file and are returned.
    pub fn read(
        &mut self,
        index: usize,
        budget: usize,
        on_line: &mut dyn FnMut(TailLine<'_>),
    ) -> std::io::Result<usize> {
        let now = Instant::now();
        let Some(f) = self.files.get_mut(index) else {
            return Ok(0);
        };
        if f.file.ended {
            return Ok(0);
        }
        if f.file.truncated() {
            tracing::warn!(source = %f.file.name, "file truncated in place: what follows is read as a new file");
            f.file.ended = true;
            self.fingerprints.remove(&f.file.inode);
            return Ok(0);
        }
        let before = (f.file.complete_end(), f.file.partial_bytes());
        let n = f.file.read_lines(budget, on_line)?;
        if (f.file.complete_end(), f.file.partial_bytes()) != before {
            f.last_growth = now;
        }
        if f.gone_since.is_some()
            && f.finished(now, &self.timing, 0)
            && f.file.flush_partial(on_line)
        {
            return Ok(n + 1);
        }
        Ok(n)
    }

    /// Closes file `index` (see [`Followed::finished`]); a file still in place is reopened when
    /// its size changes.
    pub fn close(&mut self, index: usize) -> Option<TailedFile> {
        if index >= self.files.len() {
            return None;
        }
        let f = self.files.remove(index);
        if f.gone_since.is_none() && !f.file.truncated() {
            if let Ok(meta) = std::fs::metadata(&f.file.path) {
                if inode_of(&meta) == f.file.inode {
                    self.closed.insert(f.file.inode, meta.len());
                }
            }
        }
        Some(f.file)
    }
}

#[cfg(test)]
mod tests;
