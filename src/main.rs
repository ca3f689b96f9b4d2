use std::process::ExitCode;

use clap::Parser;
use scopewatch::cli::{Cli, EXIT_FATAL};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match scopewatch::cli::run(cli) {
        Ok(outcome) => outcome.into(),
        Err(e) => {
            eprintln!("scopewatch: error: {e:#}");
            ExitCode::from(EXIT_FATAL)
        }
    }
}
