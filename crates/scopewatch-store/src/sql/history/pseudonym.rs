//! Pseudonymisation of patient ids for history stores that must not hold identifiers: each id
//! becomes `p_` + the first 16 bytes of HMAC-SHA256(key, id) in hex. The same key gives the same
//! pseudonym, so joins and per-patient counts still work; without the key an id cannot be
//! recovered or confirmed. `scopewatch sql` with the same key offers `pseudonym('pat-…')` for
//! lookups. A store records which key (by fingerprint) wrote it, and refuses another key or a
//! mix of plain and pseudonymised rows.

use std::path::Path;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::HistoryError;

/// Shortest key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 16;
pub(super) const MARKER: &str = "store.json";

#[derive(Clone)]
pub struct Pseudonymizer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        write!(f, "Pseudonymizer({})", self.fingerprint())
    }
}

impl Pseudonymizer {
    pub fn new(key: &[u8]) -> Result<Pseudonymizer, String> {
        let key = key.trim_ascii();
        if key.len() < MIN_KEY_BYTES {
            return Err(format!(
                "the pseudonymisation key is {} bytes; at least {MIN_KEY_BYTES} are needed",
                key.len()
            ));
        }
        Ok(Pseudonymizer { key: key.to_vec() })
    }

    fn mac(&self, data: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }

    pub fn pseudonym(&self, id: &str) -> String {
        let digest = self.mac(id.as_bytes());
        let mut out = String::with_capacity(34);
        out.push_str("p_");
        for b in &digest[..16] {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    /// Names the key without revealing it (HMAC of a fixed label).
    pub fn fingerprint(&self) -> String {
        self.mac(b"scopewatch-store-key")[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct StoreMarker {
    /// Fingerprint of the key that pseudonymised the store; None for plain ids.
    pseudonymized_with: Option<String>,
}

/// Whether the store at `data` was written with pseudonymised ids (its URLs are request shapes).
/// A store without a marker holds plain ids.
pub fn is_pseudonymized(data: &Path) -> Result<bool, HistoryError> {
    let path = data.join(MARKER);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str::<StoreMarker>(&text)
            .map(|m| m.pseudonymized_with.is_some())
            .map_err(|e| HistoryError::Record {
                path: path.display().to_string(),
                line: 1,
                message: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(HistoryError::io(&path, e)),
    }
}

/// Checks that `data` was written the same way (same key, or plain), and records it if new.
pub fn check_store(data: &Path, pseudonymizer: Option<&Pseudonymizer>) -> Result<(), HistoryError> {
    let want = StoreMarker {
        pseudonymized_with: pseudonymizer.map(Pseudonymizer::fingerprint),
    };
    let path = data.join(MARKER);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let have: StoreMarker =
                serde_json::from_str(&text).map_err(|e| HistoryError::Record {
                    path: path.display().to_string(),
                    line: 1,
                    message: e.to_string(),
                })?;
            if have != want {
                let describe = |m: &StoreMarker| match &m.pseudonymized_with {
                    Some(f) => format!("pseudonymised with key {f}"),
                    None => "plain patient ids".to_string(),
                };
                return Err(HistoryError::Record {
                    path: path.display().to_string(),
                    line: 1,
                    message: format!(
                        "this store holds {} but this run would write {}: use another --data directory",
                        describe(&have),
                        describe(&want)
                    ),
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if create_marker(data, &path, &want)? {
                Ok(())
            } else {
                // Another writer created it first: judge this run against theirs.
                check_store(data, pseudonymizer)
            }
        }
        Err(e) => Err(HistoryError::io(&path, e)),
    }
}

/// Creates the marker whole or not at all: written to a private name, then linked into
/// place, which fails when another process created it meanwhile (false). A reader never sees
/// a half-written marker; two writers starting together agree on one.
fn create_marker(data: &Path, path: &Path, want: &StoreMarker) -> Result<bool, HistoryError> {
    std::fs::create_dir_all(data).map_err(|e| HistoryError::io(data, e))?;
    let text = serde_json::to_string(want).unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{MARKER}."))
        .tempfile_in(data)
        .map_err(|e| HistoryError::io(data, e))?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(|e| HistoryError::io(data, e))?;
    match std::fs::hard_link(tmp.path(), path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        // A filesystem without hard links: a rename is still atomic for readers.
        Err(_) => tmp
            .persist(path)
            .map(|_| true)
            .map_err(|e| HistoryError::io(path, e.error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_keyed_and_short_keys_are_refused() {
        let a = Pseudonymizer::new(b"0123456789abcdef-secret").unwrap();
        let b = Pseudonymizer::new(b"another key, also long enough").unwrap();
        assert_eq!(a.pseudonym("pat-00123"), a.pseudonym("pat-00123"));
        assert_ne!(a.pseudonym("pat-00123"), a.pseudonym("pat-00124"));
        assert_ne!(a.pseudonym("pat-00123"), b.pseudonym("pat-00123"));
        assert!(a.pseudonym("pat-00123").starts_with("p_") && a.pseudonym("x").len() == 34);
        assert!(!format!("{a:?}").contains("secret"));
        assert!(Pseudonymizer::new(b"short").unwrap_err().contains("16"));
    }

    #[test]
    fn a_store_refuses_another_key_or_plain_ids() {
        let dir = tempfile::tempdir().unwrap();
        let a = Pseudonymizer::new(b"0123456789abcdef-secret").unwrap();
        check_store(dir.path(), Some(&a)).unwrap();
        check_store(dir.path(), Some(&a)).unwrap();
        let other = Pseudonymizer::new(b"another key, also long enough").unwrap();
        assert!(check_store(dir.path(), Some(&other)).is_err());
        let e = check_store(dir.path(), None).unwrap_err().to_string();
        assert!(e.contains("plain patient ids"), "{e}");
    }

    /// Writers starting together on a new store never read a half-written marker, and agree
    /// on one: a writer with other settings is refused.
    #[test]
    fn writers_starting_together_agree_on_one_marker() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().expect("tempdir");
            let data = dir.path().join("store");
            let results: Vec<_> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..6)
                    .map(|_| s.spawn(|| check_store(&data, None)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("join"))
                    .collect()
            });
            assert!(results.iter().all(Result::is_ok), "{results:?}");
            let key = Pseudonymizer::new(b"0123456789abcdef-secret").expect("key");
            assert!(check_store(&data, Some(&key)).is_err());
            let left: Vec<_> = std::fs::read_dir(&data).expect("dir").flatten().collect();
            assert_eq!(left.len(), 1, "only the marker: {left:?}");
        }
    }
}
