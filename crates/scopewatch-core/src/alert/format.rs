//! Writing alerts as NDJSON lines: scopewatch's own shape, OCSF, ECS or Splunk HEC events.

use std::io::{self, Write};

use super::model::Alert;
use super::ocsf::to_ocsf;
use super::siem::{to_ecs, to_hec};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AlertFormat {
    #[default]
    Ndjson,
    Ocsf,
    Ecs,
    Hec,
}

/// Writes one alert as one line.
pub fn write_alert(out: &mut dyn Write, alert: &Alert, format: AlertFormat) -> io::Result<()> {
    match format {
        AlertFormat::Ndjson => serde_json::to_writer(&mut *out, alert)?,
        AlertFormat::Ocsf => serde_json::to_writer(&mut *out, &to_ocsf(alert))?,
        AlertFormat::Ecs => serde_json::to_writer(&mut *out, &to_ecs(alert))?,
        AlertFormat::Hec => serde_json::to_writer(&mut *out, &to_hec(alert))?,
    }
    out.write_all(b"\n")
}
