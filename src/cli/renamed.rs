//! Flags renamed so that one name means one thing across commands (`--format` was the input
//! format in `validate` and the alert encoding in `detect`; `--out` a file in `sql` and a
//! directory in `simulate`; `--alerts` an output in `detect` and an input in `eval`). The old
//! spellings stay as hidden aliases for one release: on the command line, in `--config` files
//! and as `SCOPEWATCH_*` variables, each with a warning naming the new spelling.

use std::ffi::OsString;

/// One rename: in `command`, `--old` is now `--new`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Renamed {
    pub command: &'static str,
    pub old: &'static str,
    pub new: &'static str,
}

const fn renamed(command: &'static str, old: &'static str, new: &'static str) -> Renamed {
    Renamed { command, old, new }
}

pub const RENAMED: [Renamed; 11] = [
    renamed("detect", "format", "alert-format"),
    renamed("run", "format", "alert-format"),
    renamed("validate", "format", "input-format"),
    renamed("detect", "lateness", "lateness-seconds"),
    renamed("run", "lateness", "lateness-seconds"),
    renamed("eval", "alerts", "alert-input"),
    renamed("sql", "output", "output-format"),
    renamed("sql", "out", "out-file"),
    renamed("rules", "output", "output-format"),
    renamed("simulate", "out", "out-dir"),
    renamed("man", "out", "out-dir"),
];

/// The rename of `--old` in `command`, if it was renamed.
pub fn lookup(command: &str, old: &str) -> Option<Renamed> {
    RENAMED
        .iter()
        .copied()
        .find(|r| r.command == command && r.old == old)
}

pub fn warning(r: Renamed, what: &str) -> String {
    format!(
        "scopewatch: warning: {what} `{}` of `scopewatch {}` is now `{}`; the old spelling goes in the next release",
        r.old, r.command, r.new
    )
}

/// The subcommand the arguments run (the first argument naming one).
fn command_of(args: &[OsString]) -> Option<&'static str> {
    args.iter().skip(1).find_map(|a| {
        let a = a.to_str()?;
        RENAMED.iter().map(|r| r.command).find(|c| *c == a)
    })
}

/// Warnings for old spellings on the command line and in the environment; an old variable
/// whose new one is not set is carried over to it, so it keeps working for this release.
pub fn apply(args: &[OsString]) -> Vec<String> {
    let Some(command) = command_of(args) else {
        return Vec::new();
    };
    let mut warnings = Vec::new();
    for r in RENAMED.iter().filter(|r| r.command == command) {
        let flag = format!("--{}", r.old);
        let given = args.iter().filter_map(|a| a.to_str()).any(|a| {
            a == flag
                || a.strip_prefix(flag.as_str())
                    .is_some_and(|rest| rest.starts_with('='))
        });
        if given {
            warnings.push(warning(*r, "flag"));
        }
        let (old_var, new_var) = (
            super::env::var_for_flag(r.old),
            super::env::var_for_flag(r.new),
        );
        if let Some(value) = std::env::var_os(&old_var) {
            if std::env::var_os(&new_var).is_none() {
                // Before clap reads the environment, while the process has one thread.
                std::env::set_var(&new_var, value);
            }
            warnings.push(format!(
                "scopewatch: warning: {old_var} is now {new_var} for `scopewatch {command}`; the old name goes in the next release"
            ));
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn old_flags_warn_in_their_command_only() {
        let w = apply(&args(&[
            "scopewatch",
            "detect",
            "--format=ocsf",
            "x.ndjson",
        ]));
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("`format` of `scopewatch detect` is now `alert-format`"));
        // `--format` of `least-privilege` was never renamed; `--formats` is another flag.
        assert!(apply(&args(&["scopewatch", "least-privilege", "--format", "x"])).is_empty());
        assert!(apply(&args(&["scopewatch", "detect", "--formats"])).is_empty());
    }

    #[test]
    fn every_rename_names_a_real_flag_and_keeps_the_old_as_an_alias() {
        let cli = super::super::command();
        for r in RENAMED {
            let sub = cli
                .get_subcommands()
                .find(|s| s.get_name() == r.command)
                .unwrap_or_else(|| panic!("no command {}", r.command));
            let arg = sub
                .get_arguments()
                .find(|a| a.get_long() == Some(r.new))
                .unwrap_or_else(|| panic!("{}: no --{}", r.command, r.new));
            let aliases = arg.get_all_aliases().unwrap_or_default();
            assert!(
                aliases.contains(&r.old),
                "{}: --{} lost its alias",
                r.command,
                r.old
            );
        }
    }
}
