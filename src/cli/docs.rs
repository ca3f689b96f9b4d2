//! `scopewatch completions SHELL` and `scopewatch man --out-dir DIR`: shell completions and man
//! pages generated from the command line's own definition, so they cannot drift from it.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use clap_complete::Shell;

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Directory to write `scopewatch.1` and `scopewatch-COMMAND.1` into (created if missing).
    #[arg(long = "out-dir", alias = "out", value_name = "DIR")]
    pub out: PathBuf,
}

pub fn completions(args: CompletionsArgs) -> anyhow::Result<super::Outcome> {
    let mut command = super::command();
    // Into memory first: the generator panics on a write error, and a closed pipe
    // (`… | head`) is not an error.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "scopewatch", &mut script);
    match std::io::Write::write_all(&mut std::io::stdout().lock(), &script) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("writing the completion script")
        }
        _ => Ok(super::Outcome::Clean),
    }
}

pub fn man(args: ManArgs) -> anyhow::Result<super::Outcome> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let command = super::command();
    clap_mangen::generate_to(command, &args.out)
        .with_context(|| format!("writing man pages to {}", args.out.display()))?;
    Ok(super::Outcome::Clean)
}
