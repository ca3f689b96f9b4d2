//! Configuration from the environment: every long flag `--some-flag` can be given as
//! `SCOPEWATCH_SOME_FLAG`, and each librdkafka setting as `SCOPEWATCH_KAFKA_CONFIG_<KEY>`
//! (dots written as underscores: `SCOPEWATCH_KAFKA_CONFIG_SASL_PASSWORD` is `sasl.password`),
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
    format!(
        "{KAFKA_PREFIX}{}",
        key.to_ascii_uppercase().replace(['.', '-'], "_")
    )
}

/// `clap` reads each long flag from its variable; `[env: …]` shows in `--help`.
pub fn with_env(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| match arg.get_long() {
            Some(long) if long != "help" && long != "version" => {
                let var = var_for_flag(long);
                arg.env(var)
            }
            _ => arg,
        })
        .mut_subcommands(with_env)
}

/// librdkafka settings from `SCOPEWATCH_KAFKA_CONFIG_<KEY>` variables, keys lower-cased with
/// underscores turned into dots (librdkafka's keys have none).
pub fn kafka_settings(vars: impl Iterator<Item = (String, String)>) -> BTreeMap<String, String> {
    vars.filter_map(|(name, value)| {
        let key = name.strip_prefix(KAFKA_PREFIX)?;
        (!key.is_empty()).then(|| (key.to_ascii_lowercase().replace('_', "."), value))
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
    }

    #[test]
    fn kafka_settings_come_from_prefixed_variables_only() {
        let vars = [
            ("SCOPEWATCH_KAFKA_CONFIG_SECURITY_PROTOCOL", "SASL_SSL"),
            ("SCOPEWATCH_KAFKA_CONFIG_SASL_PASSWORD", "s3cret"),
            ("SCOPEWATCH_KAFKA_CONFIG_", "ignored: no key"),
            ("SCOPEWATCH_KAFKA_CONFIG", "not the prefix"),
            ("PATH", "/bin"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let got = kafka_settings(vars.into_iter());
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            vec![
                ("sasl.password".to_string(), "s3cret".to_string()),
                ("security.protocol".to_string(), "SASL_SSL".to_string()),
            ]
        );
    }
}
