//! scopewatch: watches how SMART on FHIR apps use the access they were given.
//!
//! The parts (see ARCHITECTURE.md): `event` (the canonical contract), `ingest` (reading lines
//! from files, archives and stdin, with dead-lettering), `smart` (scope algebra and FHIR request
//! grammar). Detection, alerting, SQL and the streaming pipeline build on these.

pub mod alert;
pub mod cli;
pub mod eval;
pub mod report;
pub mod simulate;

pub use scopewatch_core::{detect, event, least_privilege, registry, smart};
pub use scopewatch_ingest as ingest;
pub use scopewatch_runtime::{pipeline, sinks};
pub use scopewatch_store::{baseline, sql};

/// The allocator of every binary that links this crate: the CLI, and the benches and tests
/// that measure it, so a bench measures what the product does. Chosen by measurement (issue
/// #18, docs/benchmarks.md): against glibc's malloc, mimalloc made `detect` about 14 % faster
/// without the history store, about 21 % with it and the Keycloak + AuditEvent run about 15 %,
/// for 14–40 MB more peak RSS. The reader thread allocates events that the engine thread
/// frees, which glibc's per-thread arenas handle poorly.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
