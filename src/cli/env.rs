//! Configuration from the environment: every long flag `--some-flag` can be given as
//! `SCOPEWATCH_SOME_FLAG`, and each librdkafka setting as `SCOPEWATCH_KAFKA_CONFIG_<KEY>`
//! (dots written as underscores: `SCOPEWATCH_KAFKA_CONFIG_SASL_PASSWORD` is `sasl.password`;
//! a key's own underscore doubled: `SCOPEWATCH_KAFKA_CONFIG_LOG__LEVEL` is `log_level`),
//! so secrets need not sit in files. Precedence: command line, then environment, then the
//! `--config` file.

use std::collections::BTreeMap;

/// The environment variable that gives the flag `--{long}`.
pub fn var_for_flag(long: &str) -> String {
    format!("SCOPEWATCH_{}", long.to_ascii_uppercase().replace('-', "_"))
}

const KAFKA_PREFIX: &str = "SCOPEWATCH_KAFKA_CONFIG_";

/// The environment variable that gives the librdkafka setting `key`.
pub fn var_for_kafka_key(key: &str) -> String {
    let upper = key.to_ascii_uppercase().replace('_', "__");
    format!("{KAFKA_PREFIX}{}", upper.replace(['.', '-'], "_"))
}

/// `SASL_PASSWORD` → `sasl.password`, `LOG__LEVEL` → `log_level`.
fn kafka_key(suffix: &str) -> String {
    suffix
        .to_ascii_lowercase()
        .split("__")
        .map(|part| part.replace('_', "."))
        .collect::<Vec<_>>()
        .join("_")
}

/// `clap` reads each long flag from its variable; `[env: …]` shows in `--help`.
pub fn with_env(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| match arg.get_long() {
            // `detect --input` / `validate --input` add to the positional inputs: a variable
            // would add a path to every run beside the ones the command line names.
            Some(_) if arg.get_id() == "input_paths" => arg,
            Some(long) if long != "help" && long != "version" => {
                let var = var_for_flag(long);
                // `--help` names the variable, never its value (it may hold a secret, and the
                // generated docs/cli.md must not depend on the environment).
                arg.env(var).hide_env_values(true)
            }
            _ => arg,
        })
        .mut_subcommands(with_env)
}

/// librdkafka settings from `SCOPEWATCH_KAFKA_CONFIG_<KEY>` variables (variables that are not
/// UTF-8 are not ours and are passed over).
pub fn kafka_settings(
    vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> BTreeMap<String, String> {
    vars.filter_map(|(name, value)| {
        let (name, value) = (name.into_string().ok()?, value.into_string().ok()?);
        let key = name.strip_prefix(KAFKA_PREFIX)?;
        (!key.is_empty()).then(|| (kafka_key(key), value))
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_names_follow_the_flags() {
        assert_eq!(
            var_for_flag("checkpoint-interval"),
            "SCOPEWATCH_CHECKPOINT_INTERVAL"
        );
        assert_eq!(
            var_for_kafka_key("sasl.password"),
            "SCOPEWATCH_KAFKA_CONFIG_SASL_PASSWORD"
        );
        assert_eq!(
            var_for_kafka_key("log_level"),
            "SCOPEWATCH_KAFKA_CONFIG_LOG__LEVEL"
        );
        for key in [
            "log_level",
            "sasl.password",
            "ssl.endpoint.identification.algorithm",
        ] {
            let var = var_for_kafka_key(key);
            let suffix = var.strip_prefix(KAFKA_PREFIX).expect("prefix");
            assert_eq!(kafka_key(suffix), key);
        }
    }

    #[test]
    fn kafka_settings_come_from_prefixed_variables_only() {
        let vars = [
            ("SCOPEWATCH_KAFKA_CONFIG_SECURITY_PROTOCOL", "SASL_SSL"),
            ("SCOPEWATCH_KAFKA_CONFIG_SASL_PASSWORD", "s3cret"),
            ("SCOPEWATCH_KAFKA_CONFIG_", "ignored: no key"),
            ("SCOPEWATCH_KAFKA_CONFIG", "not the prefix"),
            ("SCOPEWATCH_KAFKA_CONFIG_LOG__LEVEL", "7"),
            ("PATH", "/bin"),
        ]
        .map(|(k, v)| (std::ffi::OsString::from(k), std::ffi::OsString::from(v)));
        let got = kafka_settings(vars.into_iter());
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            vec![
                ("log_level".to_string(), "7".to_string()),
                ("sasl.password".to_string(), "s3cret".to_string()),
                ("security.protocol".to_string(), "SASL_SSL".to_string()),
            ]
        );
    }
}
