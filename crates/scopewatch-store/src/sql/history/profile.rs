//! AWS shared credentials and config files for the object store (object_store reads the
//! environment, not the files).
//!
//! Precedence, as the AWS CLI: the environment first (`AWS_ACCESS_KEY_ID`…, and web-identity
//! or container credentials, which object_store finds itself), then the profile `AWS_PROFILE`
//! (else `default`) of `~/.aws/credentials` (`AWS_SHARED_CREDENTIALS_FILE`) and `~/.aws/config`
//! (`AWS_CONFIG_FILE`, sections `[profile NAME]` and `[default]`). Read from a profile:
//! `aws_access_key_id`, `aws_secret_access_key`, `aws_session_token` (as a set), `region`
//! and `endpoint_url`. A profile named in `AWS_PROFILE` that neither file holds (while the
//! environment gives no credentials), or one that gets its credentials some other way
//! (`role_arn`, `sso_*`, `credential_process`), is an error rather than a silent
//! fall-through to other credentials.

use std::collections::BTreeMap;
use std::path::PathBuf;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};

/// Profile keys that delegate credentials to something scopewatch does not run.
const UNSUPPORTED: [&str; 5] = [
    "role_arn",
    "credential_process",
    "sso_session",
    "sso_start_url",
    "sso_account_id",
];

/// `builder` (already configured from the environment) with what the profile adds.
pub fn apply(builder: AmazonS3Builder) -> Result<AmazonS3Builder, String> {
    apply_with(builder, &|name| {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    })
}

fn apply_with(
    mut builder: AmazonS3Builder,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<AmazonS3Builder, String> {
    let named = env("AWS_PROFILE");
    let profile = named.clone().unwrap_or_else(|| "default".to_string());
    let home = env("HOME").map(PathBuf::from);
    let file = |var: &str, name: &str| {
        env(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)))
    };
    let config_section = match profile.as_str() {
        "default" => "default".to_string(),
        other => format!("profile {other}"),
    };
    let config = file("AWS_CONFIG_FILE", "config")
        .and_then(|p| read_section(&p, &config_section))
        .or_else(|| {
            (profile == "default")
                .then(|| file("AWS_CONFIG_FILE", "config"))
                .flatten()
                .and_then(|p| read_section(&p, "profile default"))
        });
    let credentials =
        file("AWS_SHARED_CREDENTIALS_FILE", "credentials").and_then(|p| read_section(&p, &profile));
    let set = |names: &[&str]| names.iter().any(|n| env(n).is_some());
    let credentials_from_env = set(&[
        "AWS_ACCESS_KEY_ID",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ]);
    if named.is_some() && config.is_none() && credentials.is_none() && !credentials_from_env {
        return Err(format!(
            "AWS_PROFILE={profile}: no such profile in the AWS credentials or config file"
        ));
    }
    let mut settings = config.unwrap_or_default();
    settings.extend(credentials.unwrap_or_default());
    if let Some(key) = UNSUPPORTED.iter().find(|k| settings.contains_key(**k)) {
        return Err(format!(
            "AWS profile {profile} gets its credentials through `{key}`, which scopewatch does not run: export AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (e.g. from `aws configure export-credentials --format env`)"
        ));
    }
    if !credentials_from_env {
        for (key, config) in [
            ("aws_access_key_id", AmazonS3ConfigKey::AccessKeyId),
            ("aws_secret_access_key", AmazonS3ConfigKey::SecretAccessKey),
            ("aws_session_token", AmazonS3ConfigKey::Token),
        ] {
            if let Some(value) = settings.get(key) {
                builder = builder.with_config(config, value.clone());
            }
        }
    }
    if let (Some(region), false) = (
        settings.get("region"),
        set(&["AWS_REGION", "AWS_DEFAULT_REGION"]),
    ) {
        builder = builder.with_config(AmazonS3ConfigKey::Region, region.clone());
    }
    if let (Some(endpoint), false) = (
        settings.get("endpoint_url"),
        set(&["AWS_ENDPOINT", "AWS_ENDPOINT_URL"]),
    ) {
        builder = builder.with_config(AmazonS3ConfigKey::Endpoint, endpoint.clone());
    }
    Ok(builder)
}

/// The `key = value` lines of `[section]` in an INI file; None when the file or the section
/// is absent (the files are optional).
fn read_section(path: &std::path::Path, section: &str) -> Option<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).ok()?;
    parse_section(&text, section)
}

fn parse_section(text: &str, section: &str) -> Option<BTreeMap<String, String>> {
    let mut inside = false;
    let mut found = false;
    let mut out = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
            found |= inside;
        } else if let (true, Some((key, value))) = (inside, line.split_once('=')) {
            out.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    found.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "# comment\n[default]\nregion = us-west-2\n\n[profile ops]\nregion = eu-west-1\nendpoint_url = http://minio:9000\n[profile sso]\nsso_session = corp\n";
    const CREDENTIALS: &str =
        "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = s1\n[ops]\nAWS_ACCESS_KEY_ID=AKIAOPS\naws_secret_access_key = s2\n";

    /// The builder's settings for `env`, with the two files above.
    fn resolve(env: &[(&str, &str)]) -> Result<BTreeMap<&'static str, Option<String>>, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("config");
        let credentials = dir.path().join("credentials");
        std::fs::write(&config, CONFIG).expect("config");
        std::fs::write(&credentials, CREDENTIALS).expect("credentials");
        let mut vars: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        vars.insert("AWS_CONFIG_FILE".into(), config.display().to_string());
        vars.insert(
            "AWS_SHARED_CREDENTIALS_FILE".into(),
            credentials.display().to_string(),
        );
        let builder = apply_with(AmazonS3Builder::new(), &|name| vars.get(name).cloned())?;
        Ok([
            ("key", AmazonS3ConfigKey::AccessKeyId),
            ("region", AmazonS3ConfigKey::Region),
            ("endpoint", AmazonS3ConfigKey::Endpoint),
        ]
        .into_iter()
        .map(|(name, key)| (name, builder.get_config_value(&key)))
        .collect())
    }

    #[test]
    fn the_default_profile_fills_what_the_environment_leaves_open() {
        let s = resolve(&[]).expect("resolve");
        assert_eq!(s["key"].as_deref(), Some("AKIADEFAULT"));
        assert_eq!(s["region"].as_deref(), Some("us-west-2"));
        assert_eq!(s["endpoint"], None);
    }

    #[test]
    fn a_named_profile_reads_its_sections_and_the_environment_wins() {
        let s = resolve(&[("AWS_PROFILE", "ops")]).expect("resolve");
        assert_eq!(s["key"].as_deref(), Some("AKIAOPS"));
        assert_eq!(s["region"].as_deref(), Some("eu-west-1"));
        assert_eq!(s["endpoint"].as_deref(), Some("http://minio:9000"));
        // Keys and region already in the environment are not replaced (the builder under test
        // did not read the environment, so the file's keys are simply left out).
        let s = resolve(&[
            ("AWS_PROFILE", "ops"),
            ("AWS_ACCESS_KEY_ID", "AKIAENV"),
            ("AWS_DEFAULT_REGION", "ap-south-1"),
            ("AWS_ENDPOINT_URL", "http://env:9000"),
        ])
        .expect("resolve");
        assert_eq!((s["key"].clone(), s["region"].clone()), (None, None));
        assert_eq!(s["endpoint"], None);
        // Web identity (EKS) comes before the credentials file, as in the AWS CLI.
        let s = resolve(&[("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token")]).expect("resolve");
        assert_eq!(s["key"], None);
    }

    #[test]
    fn unknown_and_delegating_profiles_are_errors() {
        let e = resolve(&[("AWS_PROFILE", "nope")]).expect_err("unknown");
        assert!(e.contains("no such profile"), "{e}");
        // Keys in the environment make the profile moot, as in the AWS CLI.
        assert!(resolve(&[("AWS_PROFILE", "nope"), ("AWS_ACCESS_KEY_ID", "AKIAENV")]).is_ok());
        let e = resolve(&[("AWS_PROFILE", "sso")]).expect_err("sso");
        assert!(e.contains("sso_session"), "{e}");
    }

    #[test]
    fn reads_one_section_of_an_ini_file() {
        let ops = parse_section(CONFIG, "profile ops").expect("section");
        assert_eq!(ops.get("region").map(String::as_str), Some("eu-west-1"));
        assert_eq!(ops.len(), 2);
        assert!(parse_section(CONFIG, "missing").is_none());
        let keys = parse_section(CREDENTIALS, "ops").expect("section");
        assert_eq!(
            keys.get("aws_access_key_id").map(String::as_str),
            Some("AKIAOPS")
        );
    }
}
