//! scopewatch: watches how SMART on FHIR apps use the access they were given.
//!
//! The parts (see ARCHITECTURE.md): `event` (the canonical contract), `ingest` (reading lines
//! from files, archives and stdin, with dead-lettering), `smart` (scope algebra and FHIR request
//! grammar). Detection, alerting, SQL and the streaming pipeline build on these.

pub mod alert;
pub mod baseline;
pub mod cli;
pub mod detect;
pub mod eval;
pub mod event;
pub mod ingest;
pub mod pipeline;
pub mod registry;
pub mod simulate;
pub mod smart;
pub mod sql;
