//! Where a run's alerts, dead letters and counts go, shared by `detect` and `run`.

use super::defaults;
use crate::alert::AlertFormat;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// scopewatch's own alert records, one JSON object per line.
    Ndjson,
    /// OCSF 1.8.0 Detection Finding objects, one per line.
    Ocsf,
    /// Elastic Common Schema 8.11 alert documents (`event.kind: alert`), one per line.
    Ecs,
    /// Splunk HTTP Event Collector envelopes (`sourcetype: scopewatch:alert`), one per line.
    Hec,
}

impl From<FormatArg> for AlertFormat {
    fn from(f: FormatArg) -> AlertFormat {
        match f {
            FormatArg::Ndjson => AlertFormat::Ndjson,
            FormatArg::Ocsf => AlertFormat::Ocsf,
            FormatArg::Ecs => AlertFormat::Ecs,
            FormatArg::Hec => AlertFormat::Hec,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct OutputArgs {
    /// Where alerts go (- for stdout). A batch run (`detect`, `run --input`) replaces the
    /// file; the Kafka and --follow modes append to it, and after a restart re-emitted alerts
    /// carry the same ids.
    #[arg(long, value_name = "FILE", default_value = defaults::STDOUT)]
    pub alerts: String,

    /// Alert encoding.
    #[arg(long = "alert-format", alias = "format", value_enum, default_value_t = FormatArg::Ndjson)]
    pub format: FormatArg,

    /// Where rejected records and late events go, as NDJSON; created only when needed.
    #[arg(long, value_name = "FILE", default_value = defaults::DEAD_LETTER_FILE)]
    pub dead_letter: String,

    /// Also write the run's counts as JSON to FILE (- for stdout).
    #[arg(long, value_name = "FILE")]
    pub summary: Option<String>,
}

impl OutputArgs {
    pub fn alert_format(&self) -> AlertFormat {
        AlertFormat::from(self.format)
    }

    /// The files the run writes, which an input directory must not read back.
    pub fn files(&self) -> [Option<&String>; 3] {
        [
            Some(&self.alerts),
            Some(&self.dead_letter),
            self.summary.as_ref(),
        ]
    }
}
