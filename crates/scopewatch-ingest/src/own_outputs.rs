//! A run's own outputs (alerts, dead letters, summary, history store, state), which it must
//! never read back as input: a dead-letter file in a log directory would otherwise feed itself.
//! Known by identity — device and inode for what exists, the resolved path for what a run
//! creates later — never by name.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default)]
pub struct OwnOutputs {
    /// (device, inode) of output files and directories that exist.
    identities: HashSet<(u64, u64)>,
    /// Resolved paths of outputs, existing or not (directories: everything under them).
    paths: Vec<PathBuf>,
    /// Resolved paths of the outputs that are directories now (a store, a state).
    dirs: Vec<PathBuf>,
}

impl OwnOutputs {
    /// The outputs named on the command line (`-` for stdout is not a file and is left out).
    pub fn new<P: AsRef<Path>>(outputs: &[P]) -> OwnOutputs {
        let mut own = OwnOutputs::default();
        for path in outputs.iter().map(AsRef::as_ref) {
            if path.as_os_str() == "-" || path.as_os_str().is_empty() {
                continue;
            }
            if let Some(id) = identity(path) {
                own.identities.insert(id);
            }
            if path.is_dir() {
                own.dirs.extend(resolved(path));
            }
            own.paths.extend(resolved(path));
        }
        own
    }

    /// The output directory an input lies in (`detect . --data .`, `detect logs --state
    /// logs`): reading it would skip every log under it, so it is refused instead.
    pub fn directory_holding(&self, input: &Path) -> Option<&Path> {
        let input = resolved(input)?;
        self.dirs
            .iter()
            .find(|d| input.starts_with(d))
            .map(PathBuf::as_path)
    }

    /// Whether `path` is one of the outputs or lies inside an output directory.
    pub fn contains(&self, path: &Path) -> bool {
        if self.identities.is_empty() && self.paths.is_empty() {
            return false;
        }
        if identity(path).is_some_and(|id| self.identities.contains(&id)) {
            return true;
        }
        resolved(path).is_some_and(|p| self.paths.iter().any(|o| p.starts_with(o)))
    }
}

/// The reason listed for a skipped input that is an output of the run.
pub const OWN_OUTPUT_REASON: &str =
    "an output of this run (alerts, dead letters, summary, history or state): never read back";

fn identity(path: &Path) -> Option<(u64, u64)> {
    super::input::identity(&std::fs::metadata(path).ok()?)
}

/// The path with symbolic links and `..` resolved; for a file that does not exist yet, its
/// resolved directory joined with its name.
fn resolved(path: &Path) -> Option<PathBuf> {
    if let Ok(p) = path.canonicalize() {
        return Some(p);
    }
    let name = path.file_name()?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Some(parent.canonicalize().ok()?.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_known_by_identity_and_by_resolved_path() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dir.path().join("dead.ndjson");
        std::fs::write(&dead, "x\n").unwrap();
        let link = dir.path().join("link.ndjson");
        #[cfg(unix)]
        std::os::unix::fs::symlink(&dead, &link).unwrap();
        let store = dir.path().join("data");
        std::fs::create_dir(&store).unwrap();
        let later = dir.path().join("later.ndjson");
        let own = OwnOutputs::new(&[dead.as_path(), store.as_path(), later.as_path()]);
        assert!(own.contains(&dead));
        #[cfg(unix)]
        assert!(own.contains(&link), "another name of the same file");
        assert!(own.contains(&store.join("store.json")));
        std::fs::write(&later, "").unwrap();
        assert!(own.contains(&later), "created after the run started");
        let input = dir.path().join("events.ndjson");
        std::fs::write(&input, "").unwrap();
        assert!(!own.contains(&input));
        assert!(!OwnOutputs::new(&["-"]).contains(&input));
        assert_eq!(
            own.directory_holding(&store.join("x")),
            Some(store.canonicalize().unwrap().as_path())
        );
        assert_eq!(
            own.directory_holding(dir.path()),
            None,
            "a store inside an input is fine"
        );
    }
}
