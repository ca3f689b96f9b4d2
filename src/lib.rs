//! scopewatch: watches how SMART on FHIR apps use the access they were given.
//!
//! The parts (see ARCHITECTURE.md): `event` (the canonical contract), `ingest` (reading lines
//! from files, archives and stdin, with dead-lettering), `smart` (scope algebra and FHIR request
//! grammar). Detection, alerting, SQL and the streaming pipeline build on these.

pub mod alert;
pub mod baseline;
pub mod cli;
pub mod eval;
pub mod pipeline;
pub mod report;
pub mod simulate;
pub mod sinks;
pub mod sql;

pub use scopewatch_core::{detect, event, least_privilege, registry, smart};
pub use scopewatch_ingest as ingest;
