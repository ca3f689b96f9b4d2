use std::process::ExitCode;

use scopewatch::cli::EXIT_FATAL;

/// Alerts, dead letters, the history store, state and temporary stores may all hold PHI or
/// point at it: whatever this process creates is owner-only (0600 files, 0700 directories),
/// whatever the caller's umask.
fn owner_only_files() {
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file-creation mask; it cannot fail and touches no
    // memory. It runs first, before any thread or file exists.
    unsafe {
        libc::umask(0o077);
    }
}

fn main() -> ExitCode {
    owner_only_files();
    let args = match scopewatch::cli::config_file::expand(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("scopewatch: error: {e}");
            return ExitCode::from(EXIT_FATAL);
        }
    };
    let cli = scopewatch::cli::parse(args).unwrap_or_else(|e| e.exit());
    match scopewatch::cli::run(cli) {
        Ok(outcome) => outcome.into(),
        // A closed pipe (`scopewatch … | head`) is not an error worth a message.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::from(141)
        }
        Err(e) => {
            eprintln!("scopewatch: error: {e:#}");
            ExitCode::from(EXIT_FATAL)
        }
    }
}
