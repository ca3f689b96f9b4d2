//! A followed file's identity: a digest of its first line (decompressed), so a renamed file, a
//! rotated one and its later `.gz` copy are known as the same file, and a file truncated and
//! rewritten in place (copytruncate) as a new one. Files whose first lines are identical are
//! taken for copies of each other (the approach of Vector's checksum fingerprint).

use std::io::{BufRead, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::Source;

/// At most this much of the first line is digested; a first line this long with no newline yet
/// is identity enough.
const FINGERPRINT_BYTES: usize = 8 * 1024;

/// `file:<16 hex digits>` for a file with a complete first line (or 8 KiB of one); None while
/// the file is empty or its first line is still being written, or a gzip file's first block is
/// not readable yet.
pub fn fingerprint(path: &Path) -> std::io::Result<Option<String>> {
    let (reader, _) = Source::File(path.to_path_buf())
        .open()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut head = Vec::with_capacity(256);
    let read = reader
        .take(FINGERPRINT_BYTES as u64)
        .read_until(b'\n', &mut head);
    match read {
        Ok(_) => {}
        // A gzip file still being written: try again later.
        Err(_) if head.is_empty() => return Ok(None),
        Err(_) => {}
    }
    let complete = head.last() == Some(&b'\n') || head.len() >= FINGERPRINT_BYTES;
    if !complete {
        return Ok(None);
    }
    if head.last() == Some(&b'\n') {
        head.pop();
        if head.last() == Some(&b'\r') {
            head.pop();
        }
    }
    Ok(Some(key_of(&head)))
}

/// The key of a first line (without its newline).
pub fn key_of(first_line: &[u8]) -> String {
    let digest = Sha256::digest(first_line);
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("file:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_first_complete_line_names_the_file_whatever_it_is_called_or_compressed() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a.ndjson");
        std::fs::write(&plain, b"{\"x\":1}").unwrap();
        assert_eq!(fingerprint(&plain).unwrap(), None, "no newline yet");
        std::fs::write(&plain, b"{\"x\":1}\r\n{\"x\":2}\n").unwrap();
        let key = fingerprint(&plain).unwrap().unwrap();
        assert_eq!(key, key_of(b"{\"x\":1}"));
        let gz = dir.path().join("a.ndjson.1.gz");
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::fast(),
        );
        enc.write_all(b"{\"x\":1}\n{\"x\":2}\n").unwrap();
        enc.finish().unwrap();
        assert_eq!(fingerprint(&gz).unwrap().as_deref(), Some(key.as_str()));
        let other = dir.path().join("b.ndjson");
        std::fs::write(&other, b"{\"x\":2}\n").unwrap();
        assert_ne!(fingerprint(&other).unwrap().unwrap(), key);
    }
}
