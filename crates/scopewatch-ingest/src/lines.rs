//! Reading lines with bounded memory: a line longer than the limit is measured and skipped,
//! never loaded whole, and a read error mid-line hands back the part that was read.

use std::io::{self, BufRead};

/// How much of a rejected line is kept for the dead-letter record.
pub const RAW_KEEP_BYTES: usize = 4096;

/// One line of input, without its `\n` (and without a `\r` before it).
#[derive(Debug)]
pub struct RawLine<'a> {
    /// 1-based line number.
    pub number: u64,
    /// Byte offset of the line's first byte in the (decompressed) stream.
    pub offset: u64,
    /// The line, or its first [`RAW_KEEP_BYTES`] when `too_long`.
    pub bytes: &'a [u8],
    /// Full length in bytes.
    pub len: u64,
    pub too_long: bool,
}

/// A read error, with the incomplete line read before it (if any).
#[derive(Debug)]
pub struct LineError {
    pub error: io::Error,
    /// (line number, offset, first bytes, length read so far).
    pub partial: Option<(u64, u64, Vec<u8>, u64)>,
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

pub struct LineReader<R> {
    inner: R,
    max_len: usize,
    buf: Vec<u8>,
    line_no: u64,
    offset: u64,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(inner: R, max_len: usize) -> LineReader<R> {
        LineReader {
            inner,
            max_len,
            buf: Vec::new(),
            line_no: 0,
            offset: 0,
        }
    }

    /// Bytes consumed so far (decompressed).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn next_line(&mut self) -> Result<Option<RawLine<'_>>, LineError> {
        self.buf.clear();
        let start = self.offset;
        let mut len: u64 = 0;
        let mut too_long = false;
        loop {
            let available = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    let partial = (len > 0)
                        .then(|| (self.line_no + 1, start, std::mem::take(&mut self.buf), len));
                    if partial.is_some() {
                        self.line_no += 1;
                    }
                    return Err(LineError { error, partial });
                }
            };
            if available.is_empty() {
                if len == 0 {
                    return Ok(None);
                }
                break;
            }
            let (chunk_len, newline) = match memchr::memchr(b'\n', available) {
                Some(i) => (i, true),
                None => (available.len(), false),
            };
            let chunk = &available[..chunk_len];
            len += chunk_len as u64;
            if !too_long && self.buf.len() + chunk.len() > self.max_len {
                too_long = true;
                self.buf.truncate(RAW_KEEP_BYTES);
            }
            if too_long {
                let keep = RAW_KEEP_BYTES
                    .saturating_sub(self.buf.len())
                    .min(chunk.len());
                self.buf.extend_from_slice(&chunk[..keep]);
            } else {
                self.buf.extend_from_slice(chunk);
            }
            let consumed = chunk_len + usize::from(newline);
            self.inner.consume(consumed);
            self.offset += consumed as u64;
            if newline {
                break;
            }
        }
        self.line_no += 1;
        if !too_long && self.buf.last() == Some(&b'\r') {
            self.buf.pop();
            len -= 1;
        }
        // A UTF-8 byte order mark (Windows editors, some exporters) is not part of the record.
        if start == 0 && !too_long && self.buf.starts_with(UTF8_BOM) {
            self.buf.drain(..UTF8_BOM.len());
            len -= UTF8_BOM.len() as u64;
        }
        Ok(Some(RawLine {
            number: self.line_no,
            offset: start,
            bytes: &self.buf,
            len,
            too_long,
        }))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_byte_order_mark_before_the_first_line_is_dropped() {
        let got = lines(b"\xEF\xBB\xBF{\"a\":1}\n\xEF\xBB\xBFx\n", 100);
        assert_eq!(got[0].2, b"{\"a\":1}".to_vec());
        assert_eq!(got[0].3, 7);
        assert_eq!(
            got[1].2,
            b"\xEF\xBB\xBFx".to_vec(),
            "only at the start of the stream"
        );
    }

    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<(u64, u64, Vec<u8>, u64, bool)> {
        // A tiny buffer exercises lines that span many fill_buf calls.
        let mut r = LineReader::new(io::BufReader::with_capacity(7, input), max);
        let mut out = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            out.push((l.number, l.offset, l.bytes.to_vec(), l.len, l.too_long));
        }
        out
    }

    #[test]
    fn numbers_offsets_and_crlf() {
        let got = lines(b"ab\r\n\ncdef\nlast", 100);
        assert_eq!(
            got,
            vec![
                (1, 0, b"ab".to_vec(), 2, false),
                (2, 4, b"".to_vec(), 0, false),
                (3, 5, b"cdef".to_vec(), 4, false),
                (4, 10, b"last".to_vec(), 4, false),
            ]
        );
    }

    #[test]
    fn long_lines_are_measured_not_stored() {
        let mut input = vec![b'x'; 10_000];
        input.extend_from_slice(b"\nok\n");
        let got = lines(&input, 100);
        assert_eq!(got.len(), 2);
        assert!(got[0].4);
        assert_eq!(got[0].3, 10_000);
        assert_eq!(got[0].2.len(), RAW_KEEP_BYTES);
        assert_eq!(got[1], (2, 10_001, b"ok".to_vec(), 2, false));
    }
}
