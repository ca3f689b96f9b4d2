//! One followed file: an open handle (so a file renamed or deleted by rotation is still read to
//! its end), the byte position of the next line, and the part of a line whose newline has not
//! been written yet — a line is handed on only once complete, so a checkpoint never lands
//! inside one.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::lines::RAW_KEEP_BYTES;
use crate::Source;

const READ_BUFFER: usize = 256 * 1024;

/// A complete line of a followed file.
#[derive(Debug)]
pub struct TailLine<'a> {
    /// 1-based, when the file was read from its start (unknown after resuming mid-file).
    pub number: Option<u64>,
    /// Byte offset of the line's first byte (decompressed for `.gz`).
    pub offset: u64,
    /// Byte offset just past its newline: where reading resumes once the line is processed.
    pub end: u64,
    /// The line without `\n` / `\r\n`; its first 4 KiB when `too_long`.
    pub bytes: &'a [u8],
    /// Full length in bytes (without the newline).
    pub len: u64,
    pub too_long: bool,
}

pub struct TailedFile {
    pub key: String,
    /// The name the file had when first found (counts and dead letters use it).
    pub name: String,
    /// Where it is now, as last seen by a scan.
    pub path: PathBuf,
    /// Device and inode: how a renamed file is recognised between scans.
    pub inode: (u64, u64),
    reader: Box<dyn BufRead + Send>,
    /// Open on a plain file (checked for truncation); None for a gzip stream.
    plain: Option<File>,
    /// A `.gz` file is read once to its end, never followed.
    pub compressed: bool,
    /// Start of the line being assembled: everything before it was handed on.
    line_start: u64,
    line_number: Option<u64>,
    carry: Vec<u8>,
    carry_len: u64,
    max_line_bytes: usize,
    /// Reading reached the end of the file as it was then.
    pub at_eof: bool,
    /// The file can give no more: a gzip stream read to its end, a truncated file, a read error.
    pub ended: bool,
}

impl TailedFile {
    /// Opens `path` and positions it at `start` (a checkpointed line boundary).
    pub fn open(
        key: String,
        path: &Path,
        inode: (u64, u64),
        start: u64,
        max_line_bytes: usize,
    ) -> std::io::Result<TailedFile> {
        let name = path.display().to_string();
        let source = Source::File(path.to_path_buf());
        let (mut reader, compressed) = source
            .open()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut plain = None;
        if compressed {
            // Decompressed bytes before `start` were handed on by an earlier run.
            let skipped = std::io::copy(&mut (&mut reader).take(start), &mut std::io::sink())?;
            if skipped < start {
                return Err(std::io::Error::other(format!(
                    "the checkpoint says {start} bytes were read but it holds {skipped}"
                )));
            }
        } else {
            let mut file = File::open(path)?;
            file.seek(SeekFrom::Start(start))?;
            plain = Some(file.try_clone()?);
            reader = Box::new(BufReader::with_capacity(READ_BUFFER, file));
        }
        Ok(TailedFile {
            key,
            name,
            path: path.to_path_buf(),
            inode,
            reader,
            plain,
            compressed,
            line_start: start,
            line_number: (start == 0).then_some(0),
            carry: Vec::new(),
            carry_len: 0,
            max_line_bytes,
            at_eof: false,
            ended: false,
        })
    }

    /// Where the next complete line starts: the file's end as far as lines go.
    pub fn complete_end(&self) -> u64 {
        self.line_start
    }

    /// Bytes read past the last complete line (a line still being written).
    pub fn partial_bytes(&self) -> u64 {
        self.carry_len
    }

    /// Whether the file on disk is now shorter than what was read: truncated in place.
    pub fn truncated(&self) -> bool {
        let Some(file) = &self.plain else {
            return false;
        };
        file.metadata()
            .is_ok_and(|m| m.len() < self.line_start + self.carry_len)
    }

    /// Reads up to `budget` complete lines, calling `on_line` for each. Stops at the end of what
    /// is written so far (`at_eof`); a read error ends the file and is returned.
    pub fn read_lines(
        &mut self,
        budget: usize,
        on_line: &mut dyn FnMut(TailLine<'_>),
    ) -> std::io::Result<usize> {
        let mut lines = 0;
        while lines < budget {
            let available = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.ended = true;
                    return Err(e);
                }
            };
            if available.is_empty() {
                self.at_eof = true;
                if self.compressed {
                    self.ended = true;
                }
                return Ok(lines);
            }
            self.at_eof = false;
            let (chunk, newline) = match memchr::memchr(b'\n', available) {
                Some(i) => (&available[..i], true),
                None => (available, false),
            };
            let chunk_len = chunk.len();
            self.carry_len += chunk_len as u64;
            if self.carry_len as usize > self.max_line_bytes {
                // Over the limit: keep only what the dead-letter record shows.
                self.carry.truncate(RAW_KEEP_BYTES);
                let room = RAW_KEEP_BYTES
                    .saturating_sub(self.carry.len())
                    .min(chunk_len);
                self.carry.extend_from_slice(&chunk[..room]);
            } else {
                self.carry.extend_from_slice(chunk);
            }
            self.reader.consume(chunk_len + usize::from(newline));
            if newline {
                self.hand_on(1, on_line);
                lines += 1;
            }
        }
        Ok(lines)
    }

    /// Hands on the line being assembled, even without its newline: the end of a rotated file
    /// that will not grow again. True when there was one.
    pub fn flush_partial(&mut self, on_line: &mut dyn FnMut(TailLine<'_>)) -> bool {
        if self.carry_len == 0 {
            return false;
        }
        self.hand_on(0, on_line);
        true
    }

    fn hand_on(&mut self, newline_bytes: u64, on_line: &mut dyn FnMut(TailLine<'_>)) {
        let too_long = self.carry_len as usize > self.max_line_bytes;
        let mut len = self.carry_len;
        let end = self.line_start + self.carry_len + newline_bytes;
        if !too_long && self.carry.last() == Some(&b'\r') {
            self.carry.pop();
            len -= 1;
        }
        self.line_number = self.line_number.map(|n| n + 1);
        on_line(TailLine {
            number: self.line_number,
            offset: self.line_start,
            end,
            bytes: &self.carry,
            len,
            too_long,
        });
        self.line_start = end;
        self.carry.clear();
        self.carry_len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn collect(f: &mut TailedFile, budget: usize) -> Vec<(Option<u64>, u64, u64, String, bool)> {
        let mut out = Vec::new();
        f.read_lines(budget, &mut |l| {
            out.push((
                l.number,
                l.offset,
                l.end,
                String::from_utf8_lossy(l.bytes).into_owned(),
                l.too_long,
            ))
        })
        .unwrap();
        out
    }

    #[test]
    fn a_line_is_handed_on_only_once_its_newline_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let mut w = std::fs::File::create(&path).unwrap();
        w.write_all(b"one\r\ntw").unwrap();
        let mut f = TailedFile::open("k".into(), &path, (0, 0), 0, 100).unwrap();
        assert_eq!(
            collect(&mut f, 10),
            vec![(Some(1), 0, 5, "one".into(), false)]
        );
        assert!(f.at_eof);
        assert_eq!((f.complete_end(), f.partial_bytes()), (5, 2));
        w.write_all(b"o\nthree\n").unwrap();
        assert_eq!(
            collect(&mut f, 1),
            vec![(Some(2), 5, 9, "two".into(), false)],
            "the budget bounds the lines read"
        );
        assert_eq!(
            collect(&mut f, 10),
            vec![(Some(3), 9, 15, "three".into(), false)]
        );
        w.write_all(b"last").unwrap();
        assert!(collect(&mut f, 10).is_empty());
        let mut tail = Vec::new();
        assert!(f.flush_partial(&mut |l| tail.push((l.offset, l.end, l.bytes.to_vec()))));
        assert_eq!(tail, vec![(15, 19, b"last".to_vec())]);
    }

    #[test]
    fn resuming_mid_file_starts_at_the_position_without_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"one\ntwo\n").unwrap();
        let mut f = TailedFile::open("k".into(), &path, (0, 0), 4, 100).unwrap();
        assert_eq!(collect(&mut f, 10), vec![(None, 4, 8, "two".into(), false)]);
        std::fs::write(&path, b"x\n").unwrap();
        assert!(f.truncated());
    }

    #[test]
    fn an_over_long_line_is_measured_and_cut_and_the_next_line_is_intact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let mut content = vec![b'x'; 10_000];
        content.extend_from_slice(b"\nok\n");
        std::fs::write(&path, &content).unwrap();
        let mut f = TailedFile::open("k".into(), &path, (0, 0), 0, 100).unwrap();
        let mut got = Vec::new();
        f.read_lines(10, &mut |l| {
            got.push((l.len, l.bytes.len(), l.too_long, l.end))
        })
        .unwrap();
        assert_eq!(
            got,
            vec![
                (10_000, RAW_KEEP_BYTES, true, 10_001),
                (2, 2, false, 10_004)
            ]
        );
    }

    #[test]
    fn a_gzip_file_resumes_after_the_decompressed_bytes_already_read_and_then_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.ndjson.gz");
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        enc.write_all(b"one\ntwo\n").unwrap();
        enc.finish().unwrap();
        let mut f = TailedFile::open("k".into(), &path, (0, 0), 4, 100).unwrap();
        assert!(f.compressed);
        assert_eq!(collect(&mut f, 10), vec![(None, 4, 8, "two".into(), false)]);
        assert!(f.ended);
        assert!(TailedFile::open("k".into(), &path, (0, 0), 99, 100).is_err());
    }
}
