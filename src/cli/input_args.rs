//! Input options shared by `validate`, `detect` and `sql --input`: format, mapping, limits.

use std::sync::Arc;

use crate::event::Timestamp;
use crate::ingest::format::{DecodeOptions, GatewayMapping, InputFormat, KeycloakOptions};
use std::path::Path;

use anyhow::Context as _;

use crate::ingest::{
    expand_inputs, IngestError, IngestOptions, OwnOutputs, SkippedFile, Source, SourceFormats,
    DEFAULT_MAX_DOCUMENT_BYTES, DEFAULT_MAX_LINE_BYTES, OWN_OUTPUT_REASON,
};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormatArg {
    /// Per record: FHIR AuditEvent/Bundle (has "resourceType"), Keycloak event (has realmId),
    /// otherwise canonical NDJSON. Gateway logs need --mapping.
    #[default]
    Auto,
    /// scopewatch's canonical event contract, one JSON object per line.
    Ndjson,
    /// FHIR AuditEvent R4/R5 (incl. IHE BALP): NDJSON of resources, or Bundles and JSON
    /// documents, one per file.
    Auditevent,
    /// Keycloak events: admin REST JSON, JSON event-listener lines, or jboss-logging lines.
    Keycloak,
    /// JSON access logs of a gateway (nginx, Envoy, …), read through --mapping.
    Gateway,
}

#[derive(Debug, clap::Args)]
pub struct InputArgs {
    /// Gateway field mapping: `nginx`, `envoy` (built in) or a TOML file naming the JSON field
    /// of time, client_id, token_id, method, url, status, bytes, … Implies the gateway format.
    #[arg(long, value_name = "NAME|FILE")]
    pub mapping: Option<String>,

    /// Date (YYYY-MM-DD, UTC) for Keycloak console lines whose prefix has only a time of day.
    #[arg(long, value_name = "DATE")]
    pub log_date: Option<String>,

    /// Longest line accepted, in bytes; longer lines are dead-lettered without being loaded.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_LINE_BYTES)]
    pub max_line_bytes: usize,

    /// Largest pretty-printed JSON document (e.g. a FHIR Bundle file) read whole, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_DOCUMENT_BYTES)]
    pub max_document_bytes: usize,

    /// FHIR base URL (e.g. https://ehr.example.org/fhir/r4) for absolute URLs whose base is not
    /// recognised automatically.
    #[arg(long, value_name = "URL")]
    pub fhir_base: Option<String>,

    /// Lifetime of access tokens whose events carry no `expires_in` (Keycloak logs none: give
    /// its Access Token Lifespan), in seconds. Without it (or a registry entry's
    /// token_lifetime_seconds) such tokens are never judged expired.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(i64).range(1..=31_536_000))]
    pub token_lifetime: Option<i64>,

    /// Events dated more than this many hours ahead of the clock (and any before 1970) are
    /// dead-lettered as `time_out_of_window`, so one far-future event cannot make the rest late.
    #[arg(long, value_name = "HOURS", default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=876_000))]
    pub max_ahead_hours: u32,

    /// Apps watched at most; the events of further new apps are dead-lettered as `over_limit`
    /// (each app holds a baseline, so client ids must not grow memory without bound).
    #[arg(long, value_name = "N", default_value_t = crate::detect::DEFAULT_MAX_APPS)]
    pub max_apps: usize,

    /// One byte budget for the detection state (bytes, or with K, M, G: 512M, 8G): a quarter
    /// for events waiting in event-time order (beyond it the earliest are released early), a
    /// quarter for live tokens (the soonest to expire leave), half for the baselines (beyond
    /// it no new app is taken and no new key learned). Estimated from contents, per stream.
    #[arg(long, value_name = "SIZE", default_value = "8G", value_parser = super::sql::parse_size)]
    pub max_state_bytes: usize,
}

impl InputArgs {
    /// The ingest options for `format`, checking the flags fit together.
    pub fn ingest_options(&self, format: InputFormatArg) -> anyhow::Result<IngestOptions> {
        if self.max_line_bytes == 0 {
            anyhow::bail!("--max-line-bytes must be at least 1");
        }
        if self.max_document_bytes == 0 {
            anyhow::bail!("--max-document-bytes must be at least 1");
        }
        let format = self.format_of(format, None)?;
        let log_date = self
            .log_date
            .as_deref()
            .map(|d| {
                Timestamp::parse_rfc3339(&format!("{d}T00:00:00Z"))
                    .map_err(|why| anyhow::anyhow!("--log-date {d}: expected YYYY-MM-DD ({why})"))
            })
            .transpose()?;
        Ok(IngestOptions {
            max_line_bytes: self.max_line_bytes,
            max_document_bytes: self.max_document_bytes,
            decode: DecodeOptions {
                format,
                keycloak: KeycloakOptions { log_date },
            },
            formats: SourceFormats::default(),
        })
    }

    /// The decoder for `format`; `mapping` is an input's own (`gateway+nginx:…`), else
    /// `--mapping` applies.
    fn format_of(
        &self,
        format: InputFormatArg,
        own_mapping: Option<&str>,
    ) -> anyhow::Result<InputFormat> {
        let mapping = own_mapping.or(self.mapping.as_deref());
        Ok(match (format, mapping) {
            (InputFormatArg::Auto | InputFormatArg::Gateway, Some(m)) => {
                InputFormat::Gateway(Arc::new(GatewayMapping::load(m)?))
            }
            (InputFormatArg::Gateway, None) => anyhow::bail!(
                "the gateway format needs a mapping: --mapping, or gateway+nginx:PATH (nginx, envoy, or a TOML mapping file)"
            ),
            (other, Some(_)) => {
                anyhow::bail!("a mapping applies to the gateway format only, not {other:?}")
            }
            (InputFormatArg::Auto, None) => InputFormat::Auto,
            (InputFormatArg::Ndjson, None) => InputFormat::Canonical,
            (InputFormatArg::Auditevent, None) => InputFormat::AuditEvent,
            (InputFormatArg::Keycloak, None) => InputFormat::Keycloak,
        })
    }

    /// The format of each input written `FORMAT[+MAPPING]:PATH` (see [`parse_input_spec`]),
    /// with the paths; `None` for inputs read in the run's format.
    pub fn input_formats(
        &self,
        inputs: &[String],
    ) -> anyhow::Result<Vec<(String, Option<InputFormat>)>> {
        inputs
            .iter()
            .map(|input| {
                let spec = parse_input_spec(input);
                let format = match spec.format {
                    Some((format, mapping)) => Some(
                        self.format_of(format, mapping)
                            .with_context(|| format!("input {input}"))?,
                    ),
                    None => None,
                };
                Ok((spec.path.to_string(), format))
            })
            .collect()
    }

    /// The ingest options for inputs `specs` read in `format` unless they name their own; when
    /// every input names one, the run's format need not be usable on its own.
    pub fn options_for(
        &self,
        specs: &[(String, Option<InputFormat>)],
        format: InputFormatArg,
    ) -> anyhow::Result<IngestOptions> {
        if specs.iter().all(|(_, f)| f.is_some()) {
            self.ingest_options(InputFormatArg::Auto)
        } else {
            self.ingest_options(format)
        }
    }

    /// The ingest options for `format` with the inputs expanded into sources, each input's own
    /// format recorded for its sources; the run's own outputs are listed as skipped, never read.
    pub fn resolve(
        &self,
        inputs: &[String],
        format: InputFormatArg,
        own: &OwnOutputs,
    ) -> anyhow::Result<(IngestOptions, Vec<Source>, Vec<SkippedFile>)> {
        let specs = self.input_formats(inputs)?;
        if inputs.is_empty() {
            return Err(IngestError::NoInputs.into());
        }
        if specs.iter().filter(|(path, _)| path == "-").count() > 1 {
            return Err(IngestError::StdinTwice.into());
        }
        let mut options = self.options_for(&specs, format)?;
        let (mut sources, mut skipped) = (Vec::new(), Vec::new());
        for (path, format) in specs {
            let holding = (path != "-")
                .then(|| own.directory_holding(Path::new(&path)))
                .flatten();
            if let Some(dir) = holding {
                anyhow::bail!(
                    "input {path} lies inside {}, a directory this run writes (--data or --state): give the logs' own directory, or write elsewhere",
                    dir.display()
                );
            }
            let (mut found, not_read) = expand_inputs(std::slice::from_ref(&path))?;
            found.retain(|source| match source {
                Source::File(p) if own.contains(p) => {
                    skipped.push(SkippedFile {
                        path: p.display().to_string(),
                        reason: OWN_OUTPUT_REASON.to_string(),
                    });
                    false
                }
                _ => true,
            });
            if let Some(format) = format {
                for source in &found {
                    options.formats.insert(source.clone(), format.clone());
                }
            }
            sources.extend(found);
            skipped.extend(not_read);
        }
        Ok((options, sources, skipped))
    }
}

/// An input as written on the command line: `[FORMAT[+MAPPING]:]PATH`, e.g.
/// `keycloak:/var/log/kc/` or `gateway+nginx:/var/log/gw/access.log`.
#[derive(Debug, PartialEq, Eq)]
pub struct InputSpec<'a> {
    pub format: Option<(InputFormatArg, Option<&'a str>)>,
    pub path: &'a str,
}

/// Splits a format prefix off an input. Only a known format name before the first `:` is a
/// prefix, so ordinary paths are unchanged; a file really called `keycloak:x` is `./keycloak:x`.
pub fn parse_input_spec(input: &str) -> InputSpec<'_> {
    let plain = InputSpec {
        format: None,
        path: input,
    };
    let Some((head, path)) = input.split_once(':') else {
        return plain;
    };
    let (name, mapping) = match head.split_once('+') {
        Some((name, mapping)) => (name, Some(mapping)),
        None => (head, None),
    };
    match <InputFormatArg as clap::ValueEnum>::from_str(name, false) {
        Ok(format) if !path.is_empty() && mapping != Some("") => InputSpec {
            format: Some((format, mapping)),
            path,
        },
        _ => plain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_prefixes_are_split_and_other_paths_are_not() {
        let spec = parse_input_spec("keycloak:/var/log/kc/");
        assert_eq!(spec.format, Some((InputFormatArg::Keycloak, None)));
        assert_eq!(spec.path, "/var/log/kc/");
        let spec = parse_input_spec("gateway+nginx:logs/access.log");
        assert_eq!(spec.format, Some((InputFormatArg::Gateway, Some("nginx"))));
        assert_eq!(spec.path, "logs/access.log");
        let spec = parse_input_spec("auditevent:-");
        assert_eq!((spec.format.is_some(), spec.path), (true, "-"));
        for plain in [
            "/var/log/kc/",
            "./keycloak:x",
            "logs:2024/a.ndjson",
            "keycloak:",
            "gateway+:x",
            "-",
        ] {
            assert_eq!(parse_input_spec(plain).format, None, "{plain}");
            assert_eq!(parse_input_spec(plain).path, plain);
        }
    }
}

/// The inputs of a batch command (`detect`, `validate`): positional, or `--input PATH` as
/// `run` and `sql` take them; both may be given (positional ones first).
#[derive(Debug, clap::Args)]
pub struct InputPaths {
    /// Files (.ndjson, .jsonl, .json, .log, optionally .gz), directories (read recursively in
    /// name order), or - for stdin. Token and access events may be mixed in any file. An input
    /// may name its own format: `keycloak:kc/`, `auditevent:audit.ndjson`,
    /// `gateway+nginx:gw/` (FORMAT[+MAPPING]:PATH).
    #[arg(value_name = "INPUT", required_unless_present = "input_paths")]
    pub inputs: Vec<String>,

    /// An input, as a positional INPUT (the spelling `run --input` and `sql --input` use);
    /// repeatable.
    #[arg(long = "input", value_name = "PATH")]
    pub input_paths: Vec<String>,
}

impl InputPaths {
    /// Every input, positional ones first.
    pub fn all(&self) -> Vec<String> {
        self.inputs
            .iter()
            .chain(&self.input_paths)
            .cloned()
            .collect()
    }
}
