//! Gateway JSON access logs (nginx, Envoy, Kong, …) → canonical access events, through a small
//! TOML mapping that names the JSON field (or dotted path) of each canonical field.

use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::Decoded;
use crate::event::{AccessEvent, Common, Event, Reject, RejectKind, Text, Timestamp};
use crate::smart::request::Method;

const NGINX: &str = include_str!("mappings/nginx.toml");
const ENVOY: &str = include_str!("mappings/envoy.toml");

/// Names of the mappings built in (`--mapping nginx`); the files are in
/// `src/ingest/format/mappings/` to copy and adapt.
pub const BUILT_IN_MAPPINGS: [&str; 2] = ["nginx", "envoy"];

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("cannot read mapping {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("mapping {path} is not valid: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    /// `2024-03-05T09:00:00Z`, `…+01:00` (nginx `$time_iso8601`, Envoy `%START_TIME%`).
    #[default]
    Rfc3339,
    /// nginx `$time_local`: `05/Mar/2024:09:00:00 +0100`.
    Nginx,
    /// Seconds since the epoch, fractions allowed (nginx `$msec`).
    EpochS,
    EpochMs,
}

/// Which JSON field holds each canonical field.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldMap {
    pub time: String,
    pub client_id: String,
    pub method: String,
    pub url: String,
    pub status: String,
    pub token_id: Option<String>,
    pub bytes: Option<String>,
    pub resources_returned: Option<String>,
    pub user: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub patient: Option<String>,
    pub purpose_of_use: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayMapping {
    /// Path prefix of the FHIR base (e.g. `/fhir`), removed from URLs.
    #[serde(default)]
    pub fhir_base: Option<String>,
    #[serde(default)]
    pub time_format: TimeFormat,
    pub fields: FieldMap,
}

impl GatewayMapping {
    /// A built-in mapping by name, or a TOML file.
    pub fn load(name_or_path: &str) -> Result<GatewayMapping, MappingError> {
        let (label, text) = match name_or_path {
            "nginx" => ("nginx (built in)".to_string(), NGINX.to_string()),
            "envoy" => ("envoy (built in)".to_string(), ENVOY.to_string()),
            path => (
                path.to_string(),
                std::fs::read_to_string(Path::new(path)).map_err(|source| MappingError::Read {
                    path: path.to_string(),
                    source,
                })?,
            ),
        };
        GatewayMapping::parse(&text).map_err(|message| MappingError::Invalid {
            path: label,
            message,
        })
    }

    pub fn parse(text: &str) -> Result<GatewayMapping, String> {
        let mapping: GatewayMapping = toml::from_str(text).map_err(|e| e.to_string())?;
        let f = &mapping.fields;
        for (name, path) in [
            ("time", &f.time),
            ("client_id", &f.client_id),
            ("method", &f.method),
            ("url", &f.url),
            ("status", &f.status),
        ] {
            if path.trim().is_empty() {
                return Err(format!("fields.{name} is empty"));
            }
        }
        Ok(mapping)
    }

    /// Decodes one JSON access-log record.
    pub fn decode_object(&self, object: &Map<String, Value>) -> Decoded {
        self.build(object)
            .map(|a| Decoded::Event(Event::Access(a)))
            .unwrap_or_else(Decoded::Rejected)
    }

    fn build(&self, object: &Map<String, Value>) -> Result<AccessEvent, Reject> {
        let f = &self.fields;
        let required = |canonical: &str, path: &str| {
            lookup(object, path).ok_or_else(|| {
                Reject::new(
                    RejectKind::MissingField,
                    format!("gateway record has no {canonical} (field '{path}' in the mapping)"),
                )
            })
        };
        let optional = |path: &Option<String>| path.as_deref().and_then(|p| lookup(object, p));
        let time_text = required("time", &f.time)?;
        let time = parse_time(&time_text, self.time_format).map_err(|why| {
            Reject::new(
                RejectKind::InvalidValue,
                format!(
                    "gateway time field '{}' is not {:?} time ({why})",
                    f.time, self.time_format
                ),
            )
        })?;
        let method_text = required("method", &f.method)?;
        let method: Method = method_text.parse().map_err(|()| {
            Reject::new(
                RejectKind::InvalidValue,
                format!(
                    "gateway method field '{}' is not an HTTP method FHIR uses",
                    f.method
                ),
            )
        })?;
        let status_text = required("status", &f.status)?;
        let status = status_text
            .parse::<u16>()
            .ok()
            .filter(|s| (100..=599).contains(s))
            .ok_or_else(|| {
                Reject::new(
                    RejectKind::InvalidValue,
                    format!(
                        "gateway status field '{}' is not an HTTP status code",
                        f.status
                    ),
                )
            })?;
        let count = |canonical: &str, path: &Option<String>| -> Result<Option<u64>, Reject> {
            match optional(path) {
                None => Ok(None),
                Some(v) => v.parse::<u64>().map(Some).map_err(|_| {
                    Reject::new(
                        RejectKind::InvalidValue,
                        format!("gateway {canonical} field is not a non-negative integer"),
                    )
                }),
            }
        };
        let url = required("url", &f.url)?;
        let text = |path: &Option<String>| optional(path).map(|v| Text::from(v.as_str()));
        Ok(AccessEvent {
            common: Common {
                time,
                client_id: Text::from(required("client_id", &f.client_id)?.as_str()),
                user: text(&f.user),
                // X-Forwarded-For lists the original client first.
                source_ip: optional(&f.source_ip)
                    .and_then(|v| v.split(',').next().map(|s| Text::from(s.trim())))
                    .filter(|s| !s.is_empty()),
                user_agent: text(&f.user_agent),
            },
            method,
            url: self.relative_url(&url),
            status,
            token_id: text(&f.token_id),
            resources_returned: count("resources_returned", &f.resources_returned)?,
            bytes: count("bytes", &f.bytes)?,
            patient: text(&f.patient),
            patient_count: None,
            purpose_of_use: text(&f.purpose_of_use),
        })
    }

    /// Removes the configured base path so URLs are relative to the FHIR base.
    fn relative_url(&self, url: &str) -> String {
        let Some(base) = self.fhir_base.as_deref().map(|b| b.trim_end_matches('/')) else {
            return url.to_string();
        };
        if base.is_empty() {
            return url.trim_start_matches('/').to_string();
        }
        match url.strip_prefix(base) {
            Some(rest) if rest.is_empty() || rest.starts_with(['/', '?']) => {
                rest.trim_start_matches('/').to_string()
            }
            _ => url.to_string(),
        }
    }
}

/// The value at `path`: the key as written first, then as a dotted path into nested objects.
/// Strings, numbers and booleans read as text; "", "-" and null are absent.
fn lookup(object: &Map<String, Value>, path: &str) -> Option<String> {
    let value = object.get(path).or_else(|| {
        let mut parts = path.split('.');
        let mut current = object.get(parts.next()?)?;
        for part in parts {
            current = current.as_object()?.get(part)?;
        }
        Some(current)
    })?;
    // An array (a claim with several purposes of use) gives its first string.
    let value = match value {
        Value::Array(items) => items.first()?,
        other => other,
    };
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    let trimmed = text.trim();
    (!trimmed.is_empty() && trimmed != "-").then(|| trimmed.to_string())
}

fn parse_time(text: &str, format: TimeFormat) -> Result<Timestamp, &'static str> {
    match format {
        TimeFormat::Rfc3339 => Timestamp::parse_rfc3339(text),
        TimeFormat::EpochS => {
            let seconds: f64 = text.parse().map_err(|_| "not a number")?;
            Timestamp::from_epoch_seconds_f64(seconds)
        }
        TimeFormat::EpochMs => {
            let ms: f64 = text.parse().map_err(|_| "not a number")?;
            Timestamp::from_epoch_seconds_f64(ms / 1e3)
        }
        TimeFormat::Nginx => parse_time_local(text),
    }
}

/// `05/Mar/2024:09:00:00 +0100` → RFC 3339, then parsed.
fn parse_time_local(text: &str) -> Result<Timestamp, &'static str> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let text = text.trim().trim_start_matches('[').trim_end_matches(']');
    let (date_time, zone) = text.split_once(' ').ok_or("expected a zone offset")?;
    let mut parts = date_time.splitn(3, '/');
    let (day, month, rest) = (
        parts.next().ok_or("expected day")?,
        parts.next().ok_or("expected month")?,
        parts.next().ok_or("expected year")?,
    );
    let (year, time) = rest.split_once(':').ok_or("expected year:time")?;
    let month = MONTHS
        .iter()
        .position(|m| *m == month)
        .ok_or("unknown month")?
        + 1;
    if zone.len() != 5 {
        return Err("expected a zone like +0100");
    }
    let rfc = format!(
        "{year}-{month:02}-{day:0>2}T{time}{}:{}",
        &zone[..3],
        &zone[3..]
    );
    Timestamp::parse_rfc3339(&rfc)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_purpose_of_use_claim_array_gives_its_first_code() {
        let object: Map<String, Value> =
            serde_json::from_str(r#"{"jwt":{"purpose_of_use":["TREAT","HPAYMT"]},"h":["",1]}"#)
                .unwrap();
        assert_eq!(
            lookup(&object, "jwt.purpose_of_use").as_deref(),
            Some("TREAT")
        );
        assert_eq!(lookup(&object, "h"), None);
    }

    use super::*;

    fn access(mapping: &GatewayMapping, json: &str) -> AccessEvent {
        let object: Map<String, Value> = serde_json::from_str(json).unwrap();
        match mapping.decode_object(&object) {
            Decoded::Event(Event::Access(a)) => a,
            other => panic!("expected an access event, got {other:?}"),
        }
    }

    #[test]
    fn nginx_mapping_reads_quoted_numbers_and_strips_the_base() {
        let m = GatewayMapping::load("nginx").unwrap();
        let a = access(
            &m,
            r#"{"time_iso8601":"2024-03-05T10:00:00+01:00","remote_addr":"10.1.2.3","remote_user":"","request_method":"GET","request_uri":"/fhir/Observation?patient=p1&_count=50","status":"200","body_bytes_sent":"5120","http_user_agent":"curl/8","client_id":"growth-chart","token_jti":"t-1"}"#,
        );
        assert_eq!(a.common.time.to_rfc3339(), "2024-03-05T09:00:00.000000Z");
        assert_eq!(a.url, "Observation?patient=p1&_count=50");
        assert_eq!((a.status, a.bytes), (200, Some(5120)));
        assert_eq!(a.common.client_id, "growth-chart");
        assert_eq!(a.token_id.as_deref(), Some("t-1"));
        assert_eq!(a.common.user, None, "empty remote_user is absent");
    }

    #[test]
    fn envoy_mapping_reads_dotted_paths_and_forwarded_for() {
        let m = GatewayMapping::load("envoy").unwrap();
        let a = access(
            &m,
            r#"{"start_time":"2024-03-05T09:00:00.120Z","method":"POST","path":"/fhir/Patient/_search","response_code":200,"bytes_sent":812,"x_forwarded_for":"203.0.113.9, 10.0.0.1","user_agent":"okhttp","jwt":{"client_id":"sync-svc","jti":"j-9","sub":"u-4","patient":"p7"}}"#,
        );
        assert_eq!(a.method, Method::Post);
        assert_eq!(a.url, "Patient/_search");
        assert_eq!(a.common.client_id, "sync-svc");
        assert_eq!(a.common.source_ip.as_deref(), Some("203.0.113.9"));
        assert_eq!(a.patient.as_deref(), Some("p7"));
        assert_eq!(a.bytes, Some(812));
    }

    #[test]
    fn time_formats() {
        assert_eq!(
            parse_time("05/Mar/2024:10:00:00 +0100", TimeFormat::Nginx).unwrap(),
            Timestamp::parse_rfc3339("2024-03-05T09:00:00Z").unwrap()
        );
        assert_eq!(
            parse_time("1709629200.5", TimeFormat::EpochS).unwrap().0,
            1_709_629_200_500_000
        );
        assert_eq!(
            parse_time("1709629200500", TimeFormat::EpochMs).unwrap().0,
            1_709_629_200_500_000
        );
        assert!(parse_time("05/Foo/2024:10:00:00 +0100", TimeFormat::Nginx).is_err());
    }

    #[test]
    fn missing_fields_name_the_mapping_path_and_bad_mappings_are_refused() {
        let m = GatewayMapping::load("envoy").unwrap();
        let object: Map<String, Value> =
            serde_json::from_str(r#"{"start_time":"2024-03-05T09:00:00Z","method":"GET","path":"/fhir/Patient","response_code":200}"#).unwrap();
        match m.decode_object(&object) {
            Decoded::Rejected(r) => assert_eq!(
                r.reason,
                "gateway record has no client_id (field 'jwt.client_id' in the mapping)"
            ),
            other => panic!("{other:?}"),
        }
        let e = GatewayMapping::parse("[fields]\ntime = \"t\"\nclient = \"c\"").unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
    }
}
