//! The flags that set up the detection engine, shared by `detect` and `run`: the registry,
//! rule settings and silences, event-time lateness, learning period, incident quiet period
//! and the time zone of seasonality.

use std::path::PathBuf;

use super::defaults;
use super::input_args::InputArgs;
use crate::detect::{EngineConfig, DEFAULT_LATENESS_SECONDS};
use crate::registry::Registry;

#[derive(Debug, clap::Args)]
pub struct EngineArgs {
    /// App registry (TOML): per app client_id, name, purpose, allowed_scopes, modes.
    #[arg(long, value_name = "FILE")]
    pub registry: Option<PathBuf>,

    /// Per-rule settings (TOML, one table per rule id: `enabled`, `severity`, `score` and the
    /// rule's parameters); see `scopewatch rules` and docs/rules.md.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,

    /// Silences (TOML `[[silence]]` entries: client_id, rule, optional cause and time range,
    /// reason, author, expires), read at start: matching alert records are not written, only
    /// kept in the history store (`suppressed_by`) and counted; expired entries warn and match
    /// nothing.
    #[arg(long, value_name = "FILE")]
    pub silences: Option<PathBuf>,

    /// How far out of event-time order events may arrive, in seconds; older ones are
    /// dead-lettered as late.
    #[arg(long = "lateness-seconds", alias = "lateness", value_name = "SECONDS", default_value_t = DEFAULT_LATENESS_SECONDS)]
    pub lateness: i64,

    /// Days of an app's own activity before baseline-driven rules fire for it.
    #[arg(long, value_name = "DAYS", default_value_t = crate::baseline::DEFAULT_LEARNING_DAYS)]
    pub learning_days: i64,

    /// An incident (app × rule × cause) closes after this many hours without a finding of its
    /// cause (an hourly or daily rule's incident an hour or a day more, since its next window
    /// is judged after it ends); a cause that keeps recurring stays one incident.
    #[arg(long, value_name = "HOURS", default_value_t = defaults::INCIDENT_QUIET_HOURS, value_parser = clap::value_parser!(u32).range(1..=8760))]
    pub incident_quiet_hours: u32,

    /// Time zone for seasonality (hours of the week, weekdays, days): UTC, an IANA name such
    /// as Europe/Berlin (daylight saving followed), or a fixed offset such as +01:00.
    #[arg(long, value_name = "ZONE", default_value = defaults::TIMEZONE)]
    pub timezone: String,
}

impl EngineArgs {
    /// The registry and the engine's settings, with the input flags that bound its state.
    pub fn setup(&self, input: &InputArgs) -> anyhow::Result<(Registry, EngineConfig)> {
        let registry = match &self.registry {
            Some(path) => Registry::load(path)?,
            None => Registry::default(),
        };
        let clock = crate::baseline::LocalClock::parse(&self.timezone)
            .map_err(|e| anyhow::anyhow!("--timezone: {e}"))?;
        let config = EngineConfig {
            lateness_seconds: self.lateness,
            fhir_base: input.fhir_base.clone(),
            learning_days: self.learning_days,
            quiet_seconds: i64::from(self.incident_quiet_hours) * 3600,
            clock,
            rules: super::rules::load(self.rules.as_deref())?,
            silences: super::silences::load(self.silences.as_deref())?,
            ..EngineConfig::default()
        }
        .with_token_lifetime(input.token_lifetime)
        .with_max_ahead_hours(input.max_ahead_hours)
        .with_max_apps(input.max_apps)
        .with_max_state_bytes(input.max_state_bytes);
        Ok((registry, config))
    }
}
