//! `--config FILE`: a TOML file for everything that has a flag. Each key is the long name of a
//! flag of the subcommand (`checkpoint-interval = 30`, `kafka-brokers = "…"`, `exit-at-end =
//! true`); an array repeats a flag; a table gives a repeatable KEY=VALUE flag its pairs
//! (`[kafka-config]` with `"security.protocol" = "SSL"`); `inputs = [...]` gives the inputs of
//! commands that take them as arguments (`detect`, `validate`); a one-letter key names a short
//! flag. The command line wins over the environment (`SCOPEWATCH_*`), which wins over the
//! file. The file is turned into arguments before clap parses them, so the file and
//! the command line are checked by the same rules and documented by the same `--help`.

use std::ffi::OsString;

use clap::CommandFactory;

use super::Cli;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--config needs a file name")]
    MissingPath,
    #[error("config {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("config {path}: key `{key}`: {reason}")]
    Key {
        path: String,
        key: String,
        reason: String,
    },
}

/// Where the file is named: `--config` on the command line, else `SCOPEWATCH_CONFIG` (then
/// `from_env` is true).
struct ConfigPath {
    path: String,
    from_env: bool,
}

fn config_path(args: &[OsString]) -> Result<Option<ConfigPath>, ConfigError> {
    let Some(at) = args
        .iter()
        .position(|a| a == "--config" || a.to_string_lossy().starts_with("--config="))
    else {
        return Ok(std::env::var(super::env::var_for_flag("config"))
            .ok()
            .map(|path| ConfigPath {
                path,
                from_env: true,
            }));
    };
    let arg = args[at].to_string_lossy().into_owned();
    let path = match arg.strip_prefix("--config=") {
        Some(p) => p.to_string(),
        None => args
            .get(at + 1)
            .map(|p| p.to_string_lossy().into_owned())
            .ok_or(ConfigError::MissingPath)?,
    };
    Ok(Some(ConfigPath {
        path,
        from_env: false,
    }))
}

/// Returns `args` with the flags of the `--config` file (if any) added after the subcommand,
/// and its inputs (`inputs = [...]`, for commands whose inputs are positional) at the end.
/// A flag given on the command line or in its `SCOPEWATCH_*` variable is not taken from the
/// file.
pub fn expand(args: Vec<OsString>) -> Result<Vec<OsString>, ConfigError> {
    let Some(ConfigPath { path, from_env }) = config_path(&args)? else {
        return Ok(args);
    };
    let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::Read {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    expand_text(args, &text, path, from_env)
}

/// `expand` with the file's text read: `path` names it in errors, `from_env` says it came from
/// `SCOPEWATCH_CONFIG`.
fn expand_text(
    args: Vec<OsString>,
    text: &str,
    path: String,
    from_env: bool,
) -> Result<Vec<OsString>, ConfigError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Read {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    let mut command = Cli::command();
    command.build();
    let Some((sub_at, sub)) = args.iter().enumerate().skip(1).find_map(|(i, a)| {
        command
            .find_subcommand(a.to_string_lossy().as_ref())
            .map(|c| (i, c.clone()))
    }) else {
        if from_env {
            // `scopewatch --version` or `--help` with SCOPEWATCH_CONFIG exported.
            return Ok(args);
        }
        return Err(ConfigError::Read {
            path,
            reason: "--config needs a subcommand (e.g. `scopewatch run --config FILE`)".into(),
        });
    };
    let on_command_line = CommandLine::new(&args[..sub_at], &args[sub_at..], &sub);
    let (mut flags, mut inputs): (Vec<OsString>, Vec<OsString>) = (Vec::new(), Vec::new());
    for (key, value) in &table {
        let long = key.replace('_', "-");
        let key_error = |reason: String| ConfigError::Key {
            path: path.clone(),
            key: key.clone(),
            reason,
        };
        if long == "config" {
            return Err(key_error("a config file cannot name another".into()));
        }
        let Some(arg) = find_arg(&sub, &long) else {
            // A file shared through SCOPEWATCH_CONFIG serves every command: a flag of another
            // command is not this one's business, but a flag of none is a mistake.
            if from_env
                && command
                    .get_subcommands()
                    .any(|c| find_arg(c, &long).is_some())
            {
                continue;
            }
            return Err(key_error(format!(
                "`scopewatch {}` has no flag --{long}",
                sub.get_name()
            )));
        };
        if let Some(r) = super::renamed::lookup(sub.get_name(), &long) {
            eprintln!("{} (in {path})", super::renamed::warning(r, "key"));
        }
        if on_command_line.has(arg) && long != "kafka-config" {
            continue;
        }
        // A flag the command line gave that excludes this one wins over the file.
        let excluded = sub.get_arguments().any(|other| {
            on_command_line.has(other)
                && (sub.get_arg_conflicts_with(other).contains(&arg)
                    || sub.get_arg_conflicts_with(arg).contains(&other))
        });
        if excluded {
            continue;
        }
        if arg.is_positional() {
            // Inputs named on the command line in either spelling (`detect a b`, `detect
            // --input a`) replace the file's.
            let named = sub
                .get_arguments()
                .any(|a| a.get_id() == "input_paths" && on_command_line.has(a));
            if !named {
                inputs.extend(values(value).map_err(key_error)?);
            }
            continue;
        }
        let Some(long) = arg.get_long() else {
            return Err(key_error("a flag without a long name".into()));
        };
        if std::env::var_os(super::env::var_for_flag(long)).is_some() {
            continue;
        }
        let name: OsString = format!("--{long}").into();
        let takes_value = arg.get_action().takes_values();
        match value {
            toml::Value::Boolean(b) if !takes_value => {
                if *b {
                    flags.push(name);
                }
            }
            toml::Value::Table(pairs) => {
                for (k, v) in pairs {
                    // `SCOPEWATCH_KAFKA_CONFIG_<KEY>` beats the file for that key.
                    if long == "kafka-config"
                        && (std::env::var_os(super::env::var_for_kafka_key(k)).is_some()
                            || on_command_line.gives_pair(arg, k))
                    {
                        continue;
                    }
                    flags.push(name.clone());
                    flags.push(format!("{k}={}", scalar(v).map_err(key_error)?).into());
                }
            }
            v if takes_value => {
                for item in values(v).map_err(key_error)? {
                    flags.push(name.clone());
                    flags.push(item);
                }
            }
            _ => {
                return Err(key_error(format!(
                    "--{long} is a switch: use true or false"
                )))
            }
        }
    }
    let mut out = args;
    let tail = out.split_off(sub_at + 1);
    out.extend(flags);
    out.extend(tail);
    if !inputs.is_empty() {
        // After `--`, so an input named like a flag stays an input.
        if !out.iter().any(|a| a == "--") {
            out.push("--".into());
        }
        out.extend(inputs);
    }
    Ok(out)
}

/// The subcommand's argument a key names: a long flag, a short one (`c = "…"` for `-c`), or
/// the positional inputs (`inputs` or `input`).
fn find_arg<'a>(sub: &'a clap::Command, key: &str) -> Option<&'a clap::Arg> {
    let mut chars = key.chars();
    let short = match (chars.next(), chars.next()) {
        (Some(c), None) => Some(c),
        _ => None,
    };
    sub.get_arguments().find(|a| {
        a.get_long() == Some(key)
            || a.get_all_aliases()
                .is_some_and(|names| names.contains(&key))
            || (short.is_some() && a.get_short() == short)
            || (a.is_positional() && (a.get_id() == key || a.get_id() == &format!("{key}s")))
    })
}

/// An array gives each of its items; anything else one value.
fn values(v: &toml::Value) -> Result<Vec<OsString>, String> {
    match v {
        toml::Value::Array(items) => items.iter().map(|i| scalar(i).map(Into::into)).collect(),
        other => Ok(vec![scalar(other)?.into()]),
    }
}

/// What the command line itself gave, as clap reads it (long, short and positional), plus
/// global flags written before the subcommand.
struct CommandLine {
    matches: Option<clap::ArgMatches>,
    before_sub: Vec<String>,
}

impl CommandLine {
    fn new(before_sub: &[OsString], sub_args: &[OsString], sub: &clap::Command) -> CommandLine {
        let matches = sub
            .clone()
            .ignore_errors(true)
            .try_get_matches_from(sub_args)
            .ok();
        let before_sub = before_sub
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        CommandLine {
            matches,
            before_sub,
        }
    }

    fn has(&self, arg: &clap::Arg) -> bool {
        if let Some(long) = arg.get_long() {
            let (flag, with_value) = (format!("--{long}"), format!("--{long}="));
            if self
                .before_sub
                .iter()
                .any(|a| *a == flag || a.starts_with(&with_value))
            {
                return true;
            }
        }
        let Some(m) = &self.matches else {
            // The command line does not parse: clap will say why; the file adds nothing.
            return true;
        };
        let id = arg.get_id().as_str();
        m.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
    }

    /// The command line gave `arg` a `KEY=…` pair for `key` (the file's pair then yields).
    fn gives_pair(&self, arg: &clap::Arg, key: &str) -> bool {
        let Some(m) = &self.matches else {
            return true;
        };
        let prefix = format!("{key}=");
        m.get_raw(arg.get_id().as_str()).is_some_and(|mut values| {
            values.any(|v| v.to_string_lossy().trim_start().starts_with(&prefix))
        })
    }
}

fn scalar(v: &toml::Value) -> Result<String, String> {
    match v {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        other => Err(format!(
            "expected a string or number, found {}",
            other.type_str()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn strings(v: Vec<OsString>) -> Vec<String> {
        v.into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn config(text: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("scopewatch.toml");
        std::fs::write(&path, text).expect("write");
        (dir, path.to_string_lossy().into_owned())
    }

    #[test]
    fn keys_become_flags_and_the_command_line_wins() {
        let (_d, path) = config(
            r#"
kafka-brokers = "10.0.0.1:9092"
checkpoint_interval = 5
exit-at-end = true
no-history = false
log-format = "json"
group = "from-file"
[kafka-config]
"security.protocol" = "SSL"
"#,
        );
        let out = strings(
            expand(args(&[
                "scopewatch",
                "run",
                "--config",
                &path,
                "--group",
                "cli",
            ]))
            .expect("expand"),
        );
        let joined = out.join(" ");
        assert!(joined.contains("--kafka-brokers 10.0.0.1:9092"), "{joined}");
        assert!(joined.contains("--checkpoint-interval 5"), "{joined}");
        assert!(joined.contains("--exit-at-end"), "{joined}");
        assert!(joined.contains("--log-format json"), "{joined}");
        assert!(!joined.contains("--no-history"), "{joined}");
        assert!(
            joined.contains("--kafka-config security.protocol=SSL"),
            "{joined}"
        );
        assert!(
            !joined.contains("from-file"),
            "the command line's --group wins: {joined}"
        );
        let parsed = <Cli as clap::Parser>::try_parse_from(out).expect("clap accepts the result");
        assert!(matches!(parsed.command, super::super::Command::Run(_)));
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_the_file_and_the_key() {
        let (_d, path) = config("checkpoint-intervall = 5\n");
        let err = expand(args(&["scopewatch", "run", "--config", &path]))
            .expect_err("unknown key")
            .to_string();
        assert!(err.contains(&path), "{err}");
        assert!(err.contains("checkpoint-intervall"), "{err}");
        assert!(err.contains("has no flag"), "{err}");
    }

    #[test]
    fn a_toml_syntax_error_names_the_file() {
        let (_d, path) = config("group = \n");
        let err = expand(args(&["scopewatch", "run", "--config", &path]))
            .expect_err("bad toml")
            .to_string();
        assert!(err.starts_with(&format!("config {path}:")), "{err}");
    }

    #[test]
    fn a_short_flag_on_the_command_line_wins_and_a_short_key_names_it() {
        let (_d, path) = config("command = \"SELECT 1\"\noutput = \"json\"\n");
        let out = strings(
            expand(args(&[
                "scopewatch",
                "sql",
                "--config",
                &path,
                "-c",
                "SELECT 2",
            ]))
            .expect("expand"),
        );
        assert!(!out.contains(&"SELECT 1".to_string()), "-c wins: {out:?}");
        assert!(out.join(" ").contains("--output-format json"), "{out:?}");
        <Cli as clap::Parser>::try_parse_from(&out).expect("clap accepts the result");

        let (_d, path) = config("f = \"queries/x.sql\"\n");
        let out = strings(expand(args(&["scopewatch", "sql", "--config", &path])).expect("expand"));
        assert!(out.join(" ").contains("--file queries/x.sql"), "{out:?}");
    }

    #[test]
    fn inputs_come_from_the_file_unless_the_command_line_names_some() {
        let (_d, path) = config("inputs = [\"a.ndjson\", \"--odd-name.ndjson\"]\nlateness = 60\n");
        let out =
            strings(expand(args(&["scopewatch", "detect", "--config", &path])).expect("expand"));
        assert!(
            out.ends_with(&["--".into(), "a.ndjson".into(), "--odd-name.ndjson".into()]),
            "{out:?}"
        );
        let parsed = <Cli as clap::Parser>::try_parse_from(&out).expect("clap accepts it");
        let super::super::Command::Detect(d) = parsed.command else {
            panic!("detect")
        };
        assert_eq!(d.inputs.all(), ["a.ndjson", "--odd-name.ndjson"]);
        assert_eq!(d.engine.lateness, 60);

        let out = strings(
            expand(args(&[
                "scopewatch",
                "detect",
                "--config",
                &path,
                "b.ndjson",
            ]))
            .expect("expand"),
        );
        assert!(!out.contains(&"a.ndjson".to_string()), "{out:?}");
        assert!(out.contains(&"b.ndjson".to_string()), "{out:?}");

        // `--input` names inputs as a positional does.
        let out = strings(
            expand(args(&[
                "scopewatch",
                "detect",
                "--config",
                &path,
                "--input",
                "b.ndjson",
            ]))
            .expect("expand"),
        );
        assert!(!out.contains(&"a.ndjson".to_string()), "{out:?}");
    }

    /// A global flag before the subcommand, one `--kafka-config` pair, and a flag that
    /// excludes a file key all win over the file, and only what they name.
    #[test]
    fn the_command_line_wins_key_by_key() {
        let (_d, path) = config(
            "log-format = \"json\"\ndata = \"store\"\n[kafka-config]\n\"security.protocol\" = \"SSL\"\n\"sasl.username\" = \"file\"\n",
        );
        let out = strings(
            expand(args(&[
                "scopewatch",
                "--log-format",
                "text",
                "run",
                "--config",
                &path,
                "--kafka-config",
                "sasl.username=cli",
            ]))
            .expect("expand"),
        );
        let joined = out.join(" ");
        assert!(!joined.contains("--log-format json"), "{joined}");
        assert!(
            joined.contains("--kafka-config security.protocol=SSL"),
            "{joined}"
        );
        assert!(!joined.contains("sasl.username=file"), "{joined}");
        assert!(joined.contains("sasl.username=cli"), "{joined}");

        let (_d2, path) = config("data = \"store\"\noutput = \"csv\"\n");
        let out = strings(
            expand(args(&[
                "scopewatch",
                "sql",
                "--config",
                &path,
                "--input",
                "x.ndjson",
            ]))
            .expect("expand"),
        );
        assert!(out.join(" ").contains("--output-format csv"), "{out:?}");
        assert!(
            !out.contains(&"--data".to_string()),
            "--input excludes --data: {out:?}"
        );
        <Cli as clap::Parser>::try_parse_from(&out).expect("clap accepts the result");
    }

    #[test]
    fn without_config_the_arguments_are_unchanged() {
        let a = args(&["scopewatch", "detect", "x.ndjson"]);
        assert_eq!(expand(a.clone()).expect("expand"), a);
    }
}

/// Issue #16 asks for the `--config` reader to be fuzzed. It needs the whole command line
/// (`Cli`), which links DataFusion and librdkafka, too costly for a cargo-fuzz build; these
/// properties drive the same code with generated documents instead: real flag names of every
/// command and junk ones, every TOML value type, and arbitrary text. Whatever the file holds,
/// the reader gives arguments or an error naming the key, never a panic, and what it gives
/// goes through clap without a panic either.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn flag_names() -> Vec<String> {
        let mut command = Cli::command();
        command.build();
        let mut names: Vec<String> = command
            .get_subcommands()
            .flat_map(|c| c.get_arguments())
            .filter_map(|a| a.get_long().map(str::to_string))
            .collect();
        names.extend(["inputs", "input", "c", "config", "x", "no-such-flag"].map(String::from));
        names.sort();
        names.dedup();
        names
    }

    fn value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            any::<bool>().prop_map(|b| b.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|f| format!("{f:?}").replace("inf", "1e999")),
            "[a-zA-Z0-9=:./ _-]{0,12}".prop_map(|t| format!("{t:?}")),
            Just("\"2024-03-05T09:00:00Z\"".to_string()),
        ];
        leaf.prop_recursive(2, 8, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(", "))),
                prop::collection::vec(("[a-z.]{1,8}", inner), 0..3).prop_map(|v| {
                    let pairs: Vec<String> =
                        v.iter().map(|(k, x)| format!("{k:?} = {x}")).collect();
                    format!("{{ {} }}", pairs.join(", "))
                }),
            ]
        })
    }

    fn document(names: Vec<String>) -> impl Strategy<Value = String> {
        prop::collection::vec((prop::sample::select(names), value()), 0..6).prop_map(|pairs| {
            let mut seen = std::collections::BTreeSet::new();
            pairs
                .into_iter()
                .filter(|(k, _)| seen.insert(k.clone()))
                .map(|(k, v)| format!("{k:?} = {v}\n"))
                .collect()
        })
    }

    fn command_line() -> impl Strategy<Value = Vec<OsString>> {
        prop::sample::select(vec![
            vec!["scopewatch", "detect", "x.ndjson"],
            vec!["scopewatch", "run", "--input", "x.ndjson"],
            vec![
                "scopewatch",
                "--log-format",
                "json",
                "sql",
                "-c",
                "SELECT 1",
            ],
            vec!["scopewatch", "validate"],
            vec!["scopewatch", "eval", "--lateness", "5"],
        ])
        .prop_map(|v| v.into_iter().map(OsString::from).collect())
    }

    fn check(args: Vec<OsString>, text: &str, from_env: bool) {
        if let Ok(out) = expand_text(args, text, "f.toml".into(), from_env) {
            let _ = <Cli as clap::Parser>::try_parse_from(&out);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn generated_documents_never_panic(
            args in command_line(),
            text in document(flag_names()),
            from_env in any::<bool>(),
        ) {
            check(args, &text, from_env);
        }

        #[test]
        fn arbitrary_text_never_panics(args in command_line(), text in ".{0,200}") {
            check(args, &text, false);
        }
    }
}
