//! One writer per state directory: a second run on the same `--state` would overwrite the
//! first one's checkpoints (one run's work silently lost), so it is refused instead.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use super::state_dir::StateDirError;

const LOCK_FILE: &str = "LOCK";

/// Held for the whole run; dropping it (or the process ending, however) releases the lock.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

impl StateLock {
    /// Locks `root` (created owner-only if missing), or says which directory is in use.
    pub fn acquire(root: &Path) -> Result<StateLock, StateDirError> {
        let io = |source| StateDirError::Io {
            path: root.display().to_string(),
            source,
        };
        std::fs::create_dir_all(root).map_err(io)?;
        restrict_dir(root);
        let path = root.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(StateLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(StateDirError::Locked(root.display().to_string())),
            Err(TryLockError::Error(e)) => Err(io(e)),
        }
    }
}

/// The state holds PHI: its directory is owner-only.
fn restrict_dir(root: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700));
    }
    #[cfg(not(unix))]
    let _ = root;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_until_the_first_ends() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::acquire(dir.path()).unwrap();
        let second = StateLock::acquire(dir.path()).unwrap_err();
        assert!(
            second.to_string().contains("another scopewatch run"),
            "{second}"
        );
        drop(first);
        assert!(StateLock::acquire(dir.path()).is_ok());
    }
}
