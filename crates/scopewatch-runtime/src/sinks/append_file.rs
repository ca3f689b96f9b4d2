//! An NDJSON file the streaming service appends to across restarts (alerts, dead letters).
//! Created on first write; `flush` also syncs it to disk, so what a checkpoint covers is on
//! disk before the offsets are committed. A process killed mid-write can leave a torn last
//! line: it lies after the last checkpoint (whose flush wrote whole records only), so the
//! restarted service emits that record again — the torn tail is cut off when the file is
//! reopened instead of being glued to the next record.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub struct AppendFile {
    path: PathBuf,
    file: Option<BufWriter<File>>,
}

impl AppendFile {
    pub fn new(path: impl Into<PathBuf>) -> AppendFile {
        AppendFile {
            path: path.into(),
            file: None,
        }
    }

    /// Opens (and repairs) the file now rather than at the first write, so an unwritable path
    /// stops the run before it consumes anything.
    pub fn open_now(&mut self) -> io::Result<()> {
        self.file().map(|_| ())
    }

    fn file(&mut self) -> io::Result<&mut BufWriter<File>> {
        if self.file.is_none() {
            let mut f = OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .open(&self.path)
                .map_err(|e| context(&self.path, "cannot open", e))?;
            let cut = cut_torn_tail(&mut f).map_err(|e| context(&self.path, "cannot repair", e))?;
            if cut > 0 {
                tracing::warn!(
                    file = %self.path.display(),
                    bytes = cut,
                    "removed a partial record left by an interrupted run (it is emitted again)"
                );
            }
            self.file = Some(BufWriter::new(f));
        }
        match self.file.as_mut() {
            Some(f) => Ok(f),
            None => Err(io::Error::other("unreachable: file just opened")),
        }
    }
}

fn context(path: &Path, what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// Truncates the file after its last newline when what follows is a torn record; returns the
/// bytes removed. A complete record without a final newline (a file written by another tool)
/// is kept and given its newline.
fn cut_torn_tail(f: &mut File) -> io::Result<u64> {
    let len = f.metadata()?.len();
    let mut end = len;
    let mut chunk = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let n = usize::try_from(end - start).unwrap_or(chunk.len());
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut chunk[..n])?;
        if let Some(i) = chunk[..n].iter().rposition(|b| *b == b'\n') {
            end = start + i as u64 + 1;
            break;
        }
        end = start;
    }
    if end < len {
        let mut tail = Vec::new();
        f.seek(SeekFrom::Start(end))?;
        f.read_to_end(&mut tail)?;
        if serde_json::from_slice::<serde::de::IgnoredAny>(&tail).is_ok() {
            f.write_all(b"\n")?;
            return Ok(0);
        }
        f.set_len(end)?;
    }
    Ok(len - end)
}

impl Write for AppendFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file()?.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        let path = self.path.clone();
        match self.file.as_mut() {
            Some(f) => {
                f.flush()?;
                f.get_ref()
                    .sync_data()
                    .map_err(|e| context(&path, "cannot sync", e))
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_line_is_cut_before_appending() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("alerts.ndjson");
        std::fs::write(&path, "{\"id\":1}\n{\"id\":2}\n{\"id\":").expect("write");
        let mut f = AppendFile::new(&path);
        f.write_all(b"{\"id\":3}\n").expect("append");
        f.flush().expect("flush");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n"
        );
    }

    #[test]
    fn a_whole_file_is_kept_and_nothing_is_created_before_the_first_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dead.ndjson");
        let mut f = AppendFile::new(&path);
        f.flush().expect("flush");
        assert!(!path.exists());
        std::fs::write(&path, "one\n").expect("write");
        f.write_all(b"two\n").expect("append");
        f.flush().expect("flush");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "one\ntwo\n");
        // A file with no newline at all is one torn record.
        std::fs::write(&path, "torn").expect("write");
        let mut g = AppendFile::new(&path);
        g.write_all(b"x\n").expect("append");
        g.flush().expect("flush");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "x\n");
    }

    /// Issue #16: a complete last record without its newline (another tool wrote the file) is
    /// not a torn write: it is kept.
    #[test]
    fn a_complete_last_record_without_a_newline_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("alerts.ndjson");
        std::fs::write(&path, "{\"id\":1}\n{\"id\":2}").expect("write");
        let mut f = AppendFile::new(&path);
        f.write_all(b"{\"id\":3}\n").expect("append");
        f.flush().expect("flush");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n"
        );
    }
}
