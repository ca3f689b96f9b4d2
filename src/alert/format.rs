//! Writing alerts as NDJSON lines in scopewatch's own shape or as OCSF.

use std::io::{self, Write};

use super::model::Alert;
use super::ocsf::to_ocsf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AlertFormat {
    #[default]
    Ndjson,
    Ocsf,
}

/// Writes one alert as one line.
pub fn write_alert(out: &mut dyn Write, alert: &Alert, format: AlertFormat) -> io::Result<()> {
    match format {
        AlertFormat::Ndjson => serde_json::to_writer(&mut *out, alert)?,
        AlertFormat::Ocsf => serde_json::to_writer(&mut *out, &to_ocsf(alert))?,
    }
    out.write_all(b"\n")
}
