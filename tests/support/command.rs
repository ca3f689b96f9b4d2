//! Running the built `scopewatch` binary from a test, and naming files of this repository.

use std::path::Path;
use std::process::{Command, Output};

/// `scopewatch ARGS…` run in `dir`, with `RUST_LOG` cleared so log levels are the defaults.
pub fn scopewatch(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scopewatch"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("run scopewatch")
}

/// `path` inside the repository (sample-data/, queries/, tests/…), as an absolute path.
pub fn root(path: &str) -> String {
    format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))
}

/// `detect` over sample-data into `dir/store` (alerts in `dir/alerts.ndjson`): the history
/// store the analyst commands read.
pub fn sample_store(dir: &Path) {
    let detect = scopewatch(
        &[
            "detect",
            &root("sample-data/events.ndjson.gz"),
            "--registry",
            &root("sample-data/registry.toml"),
            "--data",
            "store",
            "--alerts",
            "alerts.ndjson",
        ],
        dir,
    );
    assert!(
        detect.status.success(),
        "{}",
        String::from_utf8_lossy(&detect.stderr)
    );
}
