//! Alerts: the record a SOC reads (category, rule, severity, calibrated score, one-sentence
//! summary, window, observed vs baseline, evidence, framework references), deterministic ids,
//! and the NDJSON, OCSF 1.8.0 Detection Finding, ECS and Splunk HEC encodings.

mod format;
mod id;
mod model;
mod ocsf;
mod siem;
pub mod silence;

pub use format::{write_alert, AlertFormat};
pub use id::stable_id;
pub use model::*;
pub use ocsf::{to_ocsf, OCSF_VERSION};
pub use siem::{to_ecs, to_hec, ECS_VERSION};
