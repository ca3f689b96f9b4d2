//! AWS shared credentials and config files for the object store, read only when the
//! environment gives no access key (object_store reads the environment, not the files).
//!
//! `AWS_PROFILE` names the profile (else `default`); `AWS_SHARED_CREDENTIALS_FILE` and
//! `AWS_CONFIG_FILE` move the files from `~/.aws/credentials` and `~/.aws/config`. Read:
//! `aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`, `region` and
//! `endpoint_url`, the keys the AWS CLI writes; values already set by the environment win.

use std::collections::BTreeMap;
use std::path::PathBuf;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};

/// `builder` with what the profile adds to the environment's settings.
pub fn apply(builder: AmazonS3Builder) -> AmazonS3Builder {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".to_string());
    let home = env("HOME").map(PathBuf::from);
    let file = |var: &str, name: &str| {
        env(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)))
    };
    let mut settings = BTreeMap::new();
    if let Some(path) = file("AWS_CONFIG_FILE", "config") {
        // The config file names a profile `[profile NAME]`, except `[default]`.
        let section = if profile == "default" {
            profile.clone()
        } else {
            format!("profile {profile}")
        };
        settings.extend(read_section(&path, &section));
    }
    if env("AWS_ACCESS_KEY_ID").is_none() {
        if let Some(path) = file("AWS_SHARED_CREDENTIALS_FILE", "credentials") {
            settings.extend(read_section(&path, &profile));
        }
    }
    let mut builder = builder;
    for (key, config, variable) in [
        (
            "aws_access_key_id",
            AmazonS3ConfigKey::AccessKeyId,
            "AWS_ACCESS_KEY_ID",
        ),
        (
            "aws_secret_access_key",
            AmazonS3ConfigKey::SecretAccessKey,
            "AWS_SECRET_ACCESS_KEY",
        ),
        (
            "aws_session_token",
            AmazonS3ConfigKey::Token,
            "AWS_SESSION_TOKEN",
        ),
        ("region", AmazonS3ConfigKey::Region, "AWS_REGION"),
        ("endpoint_url", AmazonS3ConfigKey::Endpoint, "AWS_ENDPOINT"),
    ] {
        if let (Some(value), None) = (settings.get(key), env(variable)) {
            builder = builder.with_config(config, value.clone());
        }
    }
    builder
}

/// The `key = value` lines of `[section]` in an INI file (empty when the file or section is
/// absent: the files are optional).
fn read_section(path: &std::path::Path, section: &str) -> BTreeMap<String, String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return BTreeMap::new();
    };
    parse_section(&text, section)
}

fn parse_section(text: &str, section: &str) -> BTreeMap<String, String> {
    let mut inside = false;
    let mut out = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
        } else if let (true, Some((key, value))) = (inside, line.split_once('=')) {
            out.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_section_of_an_ini_file() {
        let text = "# comment\n[default]\naws_access_key_id = AKIA1\n\n[profile ops]\nregion = eu-west-1\nAWS_SECRET_ACCESS_KEY=s\n[other]\nregion = x\n";
        let default = parse_section(text, "default");
        assert_eq!(
            default.get("aws_access_key_id").map(String::as_str),
            Some("AKIA1")
        );
        assert_eq!(default.len(), 1);
        let ops = parse_section(text, "profile ops");
        assert_eq!(ops.get("region").map(String::as_str), Some("eu-west-1"));
        assert_eq!(
            ops.get("aws_secret_access_key").map(String::as_str),
            Some("s")
        );
        assert!(parse_section(text, "missing").is_empty());
    }
}
