//! `--config FILE`: a TOML file for everything that has a flag. Each key is the long name of a
//! flag of the subcommand (`checkpoint-interval = 30`, `kafka-brokers = "…"`, `exit-at-end =
//! true`); an array repeats a flag; a table gives a repeatable KEY=VALUE flag its pairs
//! (`[kafka-config]` with `"security.protocol" = "SSL"`). A flag given on the command line wins
//! over the file. The file is turned into arguments before clap parses them, so the file and
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

/// Returns `args` with the flags of the `--config` file (if any) added after the subcommand.
pub fn expand(args: Vec<OsString>) -> Result<Vec<OsString>, ConfigError> {
    let Some(at) = args
        .iter()
        .position(|a| a == "--config" || a.to_string_lossy().starts_with("--config="))
    else {
        return Ok(args);
    };
    let arg = args[at].to_string_lossy().into_owned();
    let path = match arg.strip_prefix("--config=") {
        Some(p) => p.to_string(),
        None => args
            .get(at + 1)
            .map(|p| p.to_string_lossy().into_owned())
            .ok_or(ConfigError::MissingPath)?,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::Read {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Read {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    let command = Cli::command();
    let Some((sub_at, sub)) = args.iter().enumerate().skip(1).find_map(|(i, a)| {
        command
            .find_subcommand(a.to_string_lossy().as_ref())
            .map(|c| (i, c.clone()))
    }) else {
        return Err(ConfigError::Read {
            path,
            reason: "--config needs a subcommand (e.g. `scopewatch run --config FILE`)".into(),
        });
    };
    let given = |long: &str| {
        let flag = format!("--{long}");
        let with_value = format!("--{long}=");
        args.iter().any(|a| {
            let a = a.to_string_lossy();
            a == flag || a.starts_with(&with_value)
        })
    };
    let mut extra: Vec<OsString> = Vec::new();
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
        // The subcommand's own flags, then the global ones (--log-format).
        let Some(flag) = sub
            .get_arguments()
            .chain(command.get_arguments())
            .find(|a| a.get_long() == Some(long.as_str()))
        else {
            return Err(key_error(format!(
                "`scopewatch {}` has no flag --{long}",
                sub.get_name()
            )));
        };
        if given(&long) {
            continue;
        }
        let takes_value = flag.get_action().takes_values();
        let name = format!("--{long}");
        match value {
            toml::Value::Boolean(b) if !takes_value => {
                if *b {
                    extra.push(name.into());
                }
            }
            toml::Value::Array(items) => {
                for item in items {
                    extra.push(name.clone().into());
                    extra.push(scalar(item).map_err(key_error)?.into());
                }
            }
            toml::Value::Table(pairs) => {
                for (k, v) in pairs {
                    extra.push(name.clone().into());
                    extra.push(format!("{k}={}", scalar(v).map_err(key_error)?).into());
                }
            }
            v if takes_value => {
                extra.push(name.into());
                extra.push(scalar(v).map_err(key_error)?.into());
            }
            _ => return Err(key_error(format!("{name} is a switch: use true or false"))),
        }
    }
    let mut out = args;
    let tail = out.split_off(sub_at + 1);
    out.extend(extra);
    out.extend(tail);
    Ok(out)
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
    fn without_config_the_arguments_are_unchanged() {
        let a = args(&["scopewatch", "detect", "x.ndjson"]);
        assert_eq!(expand(a.clone()).expect("expand"), a);
    }
}
