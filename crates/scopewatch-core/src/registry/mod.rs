//! The optional app registry (`--registry apps.toml`): what each app is registered to do.
//! Detection compares observed behaviour with it (scopes outside `allowed_scopes`, purposes
//! outside `purpose`, contexts outside `modes`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use thiserror::Error;

use crate::smart::scope::{Context, ScopeSet};

#[derive(Debug, Error)]
pub enum RegistryError {
    #[error("cannot read registry {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax errors and unknown keys; the message names the line and column.
    #[error("registry {path}: {message}")]
    Invalid { path: String, message: String },
}

/// How an app may use tokens: `patient`, `user` or `system` context.
pub type Mode = Context;

/// One registered app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredApp {
    pub client_id: String,
    pub name: Option<String>,
    /// v3 PurposeOfUse codes the app is approved for (empty: not stated).
    pub purpose: Vec<String>,
    /// The scopes the app is registered for, normalised (None: not stated).
    pub allowed_scopes: Option<ScopeSet>,
    /// Contexts the app may act in (empty: not stated).
    pub modes: Vec<Mode>,
    /// Lifetime of its access tokens in seconds, for token logs that carry none (Keycloak:
    /// the client's or realm's "Access Token Lifespan").
    pub token_lifetime_seconds: Option<i64>,
}

/// All registered apps, by client id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Registry {
    apps: BTreeMap<String, RegisteredApp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    #[serde(default)]
    app: Vec<AppEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppEntry {
    client_id: String,
    name: Option<String>,
    #[serde(default)]
    purpose: Vec<String>,
    allowed_scopes: Option<String>,
    #[serde(default)]
    modes: Vec<ModeEntry>,
    token_lifetime_seconds: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum ModeEntry {
    Patient,
    User,
    System,
}

impl Registry {
    pub fn load(path: &Path) -> Result<Registry, RegistryError> {
        let text = std::fs::read_to_string(path).map_err(|source| RegistryError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Registry::parse(&text).map_err(|message| RegistryError::Invalid {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parses registry TOML. Errors name the line (unknown keys included).
    pub fn parse(text: &str) -> Result<Registry, String> {
        let file: RegistryFile = toml::from_str(text).map_err(|e| describe(&e, text))?;
        let mut apps = BTreeMap::new();
        for entry in file.app {
            if entry.client_id.trim().is_empty() {
                return Err("an [[app]] has an empty client_id".into());
            }
            if entry.token_lifetime_seconds.is_some_and(|s| s <= 0) {
                return Err(format!(
                    "client_id '{}': token_lifetime_seconds must be positive",
                    entry.client_id
                ));
            }
            let app = RegisteredApp {
                client_id: entry.client_id.clone(),
                name: entry.name,
                purpose: entry.purpose,
                allowed_scopes: entry.allowed_scopes.as_deref().map(ScopeSet::parse),
                modes: entry
                    .modes
                    .into_iter()
                    .map(|m| match m {
                        ModeEntry::Patient => Context::Patient,
                        ModeEntry::User => Context::User,
                        ModeEntry::System => Context::System,
                    })
                    .collect(),
                token_lifetime_seconds: entry.token_lifetime_seconds,
            };
            if apps.insert(entry.client_id.clone(), app).is_some() {
                return Err(format!(
                    "client_id '{}' is registered twice",
                    entry.client_id
                ));
            }
        }
        Ok(Registry { apps })
    }

    pub fn get(&self, client_id: &str) -> Option<&RegisteredApp> {
        self.apps.get(client_id)
    }
    pub fn len(&self) -> usize {
        self.apps.len()
    }
    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
    }
    pub fn apps(&self) -> impl Iterator<Item = &RegisteredApp> {
        self.apps.values()
    }
}

/// `line N, column M: message` from a TOML error.
fn describe(error: &toml::de::Error, text: &str) -> String {
    let message = error.message().to_string();
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[[app]]
client_id = "growth-chart"
name = "Growth Chart"
purpose = ["TREAT"]
allowed_scopes = "launch patient/Observation.read patient/Patient.read openid fhirUser"
modes = ["patient"]

[[app]]
client_id = "bulk-warehouse"
allowed_scopes = "system/*.rs"
modes = ["system"]
"#;

    #[test]
    fn parses_apps() {
        let r = Registry::parse(SAMPLE).unwrap();
        assert_eq!(r.len(), 2);
        let g = r.get("growth-chart").unwrap();
        assert_eq!(g.purpose, vec!["TREAT"]);
        assert_eq!(g.modes, vec![Context::Patient]);
        let allowed = g.allowed_scopes.as_ref().unwrap();
        assert!(allowed.contains(&crate::smart::scope::Scope::parse("patient/Observation.rs")));
        assert_eq!(r.get("bulk-warehouse").unwrap().name, None);
    }

    #[test]
    fn unknown_keys_name_the_line() {
        let text = "[[app]]\nclient_id = \"a\"\nalowed_scopes = \"x\"\n";
        let e = Registry::parse(text).unwrap_err();
        assert!(e.starts_with("line 3, column 1:"), "{e}");
        assert!(e.contains("alowed_scopes"), "{e}");
        let e = Registry::parse("[[app]]\nclient_id = \"a\"\nmodes = [\"robot\"]\n").unwrap_err();
        assert!(e.starts_with("line 3"), "{e}");
        let e = Registry::parse("[apps]\n").unwrap_err();
        assert!(e.starts_with("line 1"), "{e}");
    }

    #[test]
    fn duplicates_and_empty_ids_are_errors() {
        let dup = "[[app]]\nclient_id = \"a\"\n[[app]]\nclient_id = \"a\"\n";
        assert!(Registry::parse(dup).unwrap_err().contains("twice"));
        assert!(Registry::parse("[[app]]\nclient_id = \" \"\n").is_err());
    }
}
