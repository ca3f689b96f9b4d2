//! Input options shared by `validate`, `detect` and `sql --input`: format, mapping, limits.

use std::sync::Arc;

use crate::event::Timestamp;
use crate::ingest::format::{DecodeOptions, GatewayMapping, InputFormat, KeycloakOptions};
use crate::ingest::{IngestOptions, DEFAULT_MAX_DOCUMENT_BYTES, DEFAULT_MAX_LINE_BYTES};

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
        let format = match (format, &self.mapping) {
            (InputFormatArg::Auto | InputFormatArg::Gateway, Some(m)) => {
                InputFormat::Gateway(Arc::new(GatewayMapping::load(m)?))
            }
            (InputFormatArg::Gateway, None) => anyhow::bail!(
                "the gateway format needs --mapping (nginx, envoy, or a TOML mapping file)"
            ),
            (other, Some(_)) => {
                anyhow::bail!("--mapping applies to the gateway format only, not {other:?}")
            }
            (InputFormatArg::Auto, None) => InputFormat::Auto,
            (InputFormatArg::Ndjson, None) => InputFormat::Canonical,
            (InputFormatArg::Auditevent, None) => InputFormat::AuditEvent,
            (InputFormatArg::Keycloak, None) => InputFormat::Keycloak,
        };
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
        })
    }
}
