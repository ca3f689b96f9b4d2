//! Turning command-line inputs (files, directories, `-`) into an ordered list of sources.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::counts::SkippedFile;
use super::error::IngestError;

/// File name endings read when walking a directory.
const LINE_FILE_SUFFIXES: &[&str] = &[
    ".ndjson",
    ".jsonl",
    ".json",
    ".ndjson.gz",
    ".jsonl.gz",
    ".json.gz",
    // Keycloak and gateway logs usually end in .log.
    ".log",
    ".log.gz",
];

/// Whether a file name is a rotated log (`events.ndjson.1`, `access.log.2.gz`,
/// `events.ndjson-20241128`, `access.log-20241128.gz`): a log name with a numeric suffix. Read
/// when following a directory, so a restart after a rotation still finishes the rotated file.
pub fn is_rotated_log_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    let Some(cut) = name.rfind(['.', '-']) else {
        return false;
    };
    let (base, number) = (&name[..cut], &name[cut + 1..]);
    !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
        && LINE_FILE_SUFFIXES
            .iter()
            .filter(|s| !s.ends_with(".gz"))
            .any(|s| base.ends_with(s))
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const READ_BUFFER: usize = 256 * 1024;

/// One stream of lines.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    Stdin,
    File(PathBuf),
}

impl Source {
    /// The name used in counts and dead-letter records.
    pub fn name(&self) -> String {
        match self {
            Source::Stdin => "<stdin>".to_string(),
            Source::File(p) => p.display().to_string(),
        }
    }

    /// A regular file, which can be opened and read more than once (not stdin, a pipe or a
    /// FIFO).
    pub fn is_regular_file(&self) -> bool {
        match self {
            Source::Stdin => false,
            Source::File(path) => std::fs::metadata(path).is_ok_and(|m| m.is_file()),
        }
    }

    /// Opens the source, decompressing gzip when its first bytes are the gzip magic
    /// (whatever the file is called). Concatenated gzip members are read in full.
    /// The flag is true for a gzip stream.
    pub fn open(&self) -> Result<(Box<dyn BufRead + Send>, bool), IngestError> {
        let reader: Box<dyn Read + Send> = match self {
            Source::Stdin => Box::new(io::stdin()),
            Source::File(path) => Box::new(File::open(path).map_err(|e| IngestError::Open {
                path: path.display().to_string(),
                source: e,
            })?),
        };
        let mut buffered = BufReader::with_capacity(READ_BUFFER, reader);
        let head = buffered.fill_buf().map_err(|e| IngestError::Open {
            path: self.name(),
            source: e,
        })?;
        if head.starts_with(&GZIP_MAGIC) {
            Ok((
                Box::new(BufReader::with_capacity(
                    READ_BUFFER,
                    MultiGzDecoder::new(buffered),
                )),
                true,
            ))
        } else {
            Ok((Box::new(buffered), false))
        }
    }
}

/// Expands inputs in order: `-` is stdin, a file is read whatever its name, a directory is
/// walked recursively in byte order of names, reading NDJSON files (plain or `.gz`) and listing
/// everything else as skipped. A missing input is an error before anything is read.
pub fn expand_inputs(inputs: &[String]) -> Result<(Vec<Source>, Vec<SkippedFile>), IngestError> {
    if inputs.is_empty() {
        return Err(IngestError::NoInputs);
    }
    let mut sources = Vec::new();
    let mut skipped = Vec::new();
    let mut stdin_seen = false;
    for input in inputs {
        if input == "-" {
            if stdin_seen {
                return Err(IngestError::StdinTwice);
            }
            stdin_seen = true;
            sources.push(Source::Stdin);
            continue;
        }
        let path = Path::new(input);
        let meta = std::fs::metadata(path).map_err(|e| IngestError::Open {
            path: input.clone(),
            source: e,
        })?;
        if meta.is_dir() {
            walk(path, &mut sources, &mut skipped, false)?;
        } else if is_device(&meta) {
            // `/dev/zero` and the like never end and hold no log lines.
            return Err(IngestError::Open {
                path: input.clone(),
                source: io::Error::other(
                    "is a device, not a log: give a file, a directory, a pipe or - for stdin",
                ),
            });
        } else {
            sources.push(Source::File(path.to_path_buf()));
        }
    }
    Ok((sources, skipped))
}

fn is_device(meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        meta.file_type().is_char_device() || meta.file_type().is_block_device()
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        false
    }
}

/// Lists `dir` recursively. `tolerant`: a subdirectory that cannot be listed is recorded in
/// `skipped` and the walk goes on (following files: one unreadable directory must not hide
/// the rest); otherwise it is an error (a batch run names it and stops before reading).
pub(super) fn walk(
    dir: &Path,
    sources: &mut Vec<Source>,
    skipped: &mut Vec<SkippedFile>,
    tolerant: bool,
) -> Result<(), IngestError> {
    let mut visited = HashSet::new();
    if let Some(id) = std::fs::metadata(dir).ok().as_ref().and_then(identity) {
        visited.insert(id);
    }
    walk_dir(dir, sources, skipped, tolerant, &mut visited)
}

/// (device, inode) of a file or directory: what it is, whatever it is called (a directory
/// reached twice through symbolic links is walked once; a run's outputs are known by it).
pub(super) fn identity(meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

fn walk_dir(
    dir: &Path,
    sources: &mut Vec<Source>,
    skipped: &mut Vec<SkippedFile>,
    tolerant: bool,
    visited: &mut HashSet<(u64, u64)>,
) -> Result<(), IngestError> {
    let walk_err = |e| IngestError::Walk {
        path: dir.display().to_string(),
        source: e,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(walk_err)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(walk_err)?;
    entries.sort_by(|a, b| {
        a.as_os_str()
            .as_encoded_bytes()
            .cmp(b.as_os_str().as_encoded_bytes())
    });
    for path in entries {
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if tolerant => {
                skipped.push(SkippedFile {
                    path: path.display().to_string(),
                    reason: format!("cannot read: {e}"),
                });
                continue;
            }
            Err(e) => {
                return Err(IngestError::Walk {
                    path: path.display().to_string(),
                    source: e,
                })
            }
        };
        if meta.is_dir() {
            if identity(&meta).is_some_and(|id| !visited.insert(id)) {
                skipped.push(SkippedFile {
                    path: path.display().to_string(),
                    reason: "a directory already walked (a symbolic link loop or a second link)"
                        .into(),
                });
                continue;
            }
            match walk_dir(&path, sources, skipped, tolerant, visited) {
                Err(e) if tolerant => skipped.push(SkippedFile {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                }),
                other => other?,
            }
            continue;
        }
        if !meta.is_file() {
            // A FIFO or device under a log directory would block or never end.
            skipped.push(SkippedFile {
                path: path.display().to_string(),
                reason: "not a regular file (a FIFO, socket or device); name it as an input to read a FIFO once".into(),
            });
            continue;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if LINE_FILE_SUFFIXES.iter().any(|s| name.ends_with(s)) {
            sources.push(Source::File(path));
        } else {
            skipped.push(SkippedFile {
                path: path.display().to_string(),
                reason: "not .ndjson, .jsonl, .json or .log (optionally .gz); name it as an input to read it anyway".into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_rotated_log_name;

    #[test]
    fn rotated_log_names_are_recognised_and_others_are_not() {
        for name in [
            "events.ndjson.1",
            "access.log.2.gz",
            "events.ndjson-20241128",
            "access.LOG-20241128.gz",
        ] {
            assert!(is_rotated_log_name(name), "{name}");
        }
        for name in [
            "events.ndjson",
            "notes.txt.1",
            "events.ndjson.bak",
            "x.log.",
            "log.1",
        ] {
            assert!(!is_rotated_log_name(name), "{name}");
        }
    }
}
