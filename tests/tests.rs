//! The integration tests: one test binary (ripgrep's pattern), so the crate and its DataFusion
//! and librdkafka dependencies are linked once, not once per file. Each file is a module named
//! after it: `cargo test --test integration cli::` runs one file's tests, and
//! `cargo test --test integration docs_cli` one test.

// Helpers shared by several test files, loaded once.
#[path = "support/command.rs"]
mod command;
#[path = "support/convert.rs"]
mod convert;
#[path = "support/service.rs"]
mod process;
#[cfg(feature = "kafka")]
#[path = "support/tansu.rs"]
mod tansu;

mod alert_formats;
mod cli;
mod contract_docs;
mod detect_cli;
mod detection_quality;
mod fidelity;
mod follow;
mod formats;
mod hostile_input;
mod ingest_mixed;
#[cfg(feature = "kafka")]
mod kafka_service;
mod layers;
mod least_privilege;
#[cfg(feature = "s3")]
mod object_store;
mod report;
mod request_grammar;
mod saved_queries;
mod scope_corpus;
mod scope_laws;
mod state_resume;
